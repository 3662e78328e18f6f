"""Horizontal divergence and relative vorticity of a wind pair on a CF grid."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ._grid import EARTH_RADIUS, Grid, apply_2d, check_pair, derivative, find_pair, grid_of

__all__ = ["divergence", "vorticity"]


def _components(u, v):
    if isinstance(u, xr.Dataset) and v is None:
        nu, nv = find_pair(u)
        return u[nu], u[nv]
    return u, v


def _kernel(kind: str, grid: Grid):
    """``f(u, v)`` on numpy arrays (..., Y, X) in m s-1, giving s-1."""

    def run(u, v):
        if not grid.spherical:
            if kind == "divergence":
                return derivative(u, grid.xc, -1) + derivative(v, grid.yc, -2)
            return derivative(v, grid.xc, -1) - derivative(u, grid.yc, -2)
        cos = grid.coslat
        with np.errstate(divide="ignore", invalid="ignore"):
            metric = np.where(np.abs(cos) > 1e-10, 1.0 / (EARTH_RADIUS * cos), np.nan)
        dlon = lambda f: derivative(f, grid.xc, -1, periodic=grid.periodic)  # noqa: E731
        dlat = lambda f: derivative(f, grid.yc, -2)  # noqa: E731
        if kind == "divergence":
            return metric * (dlon(u) + dlat(v * cos))
        return metric * (dlon(v) - dlat(u * cos))

    return run


ATTRS = {
    "divergence": {
        "standard_name": "divergence_of_wind",
        "long_name": "horizontal divergence",
        "units": "s-1",
    },
    "vorticity": {
        "standard_name": "atmosphere_relative_vorticity",
        "long_name": "relative vertical vorticity",
        "units": "s-1",
    },
}


def _compute(kind, u, v, y_dim, x_dim):
    u, v = check_pair(*_components(u, v))
    grid = grid_of(u, y_dim, x_dim)
    out = apply_2d(_kernel(kind, grid), u, v, grid=grid)
    out = out.rename(kind)
    attrs = dict(ATTRS[kind])
    method = "spherical (R = 6.371e6 m)" if grid.spherical else "projected x/y"
    attrs["comment"] = (
        f"xstochsr: centred differences on a {method} grid"
        + (", periodic in longitude" if grid.periodic else "")
        + "; one-sided next to edges and NaN"
    )
    out.attrs = attrs
    return out


def divergence(
    u: xr.DataArray | xr.Dataset,
    v: xr.DataArray | None = None,
    *,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Horizontal divergence ``du/dx + dv/dy`` (s-1).

    On a projected grid (x/y in any length unit, converted with pint) the derivatives
    are taken in metres. On a latitude/longitude grid (1-D coordinates in
    degrees_north/degrees_east) with the spherical metric terms:
    ``div = (du/dlon + d(v cos lat)/dlat) / (R cos lat)``, ``R = 6.371e6 m``;
    longitude is periodic when the grid spans 360 degrees. Centred differences;
    one-sided next to the domain's edges and next to NaN; NaN where both neighbours
    are missing (and at a pole).

    Parameters
    ----------
    u : xarray.DataArray or xarray.Dataset
        x (eastward) component, any velocity units; or a Dataset holding both
        components (found by CF standard_name, e.g. eastward_wind/northward_wind).
    v : xarray.DataArray, optional
        y (northward) component on the same grid; required when ``u`` is a DataArray.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with cf-xarray if not given.

    Returns
    -------
    xarray.DataArray
        Same dims and coords as ``u``; ``standard_name: divergence_of_wind``,
        ``units: s-1``. Lazy for dask input.

    Raises
    ------
    InvalidInputError
        ``v`` missing, not a vector pair, different grids, no coordinate values.
    MissingUnitsError, UnitsError
        Units missing or not convertible (velocities; lengths for projected x/y).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> c = np.arange(0.0, 50.0, 5.0)                       # km
    >>> x = xr.DataArray(c, dims="x", attrs={"units": "km", "axis": "X"})
    >>> y = xr.DataArray(c, dims="y", attrs={"units": "km", "axis": "Y"})
    >>> u = (1e-5 * 1e3 * x * xr.ones_like(y)).assign_coords(x=x, y=y)  # u = 1e-5 s-1 * x
    >>> u.attrs["units"] = "m s-1"
    >>> v = xr.zeros_like(u)
    >>> float(divergence(u, v).mean())
    1e-05
    """
    return _compute("divergence", u, v, y_dim, x_dim)


def vorticity(
    u: xr.DataArray | xr.Dataset,
    v: xr.DataArray | None = None,
    *,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Relative vertical vorticity ``dv/dx - du/dy`` (s-1).

    On a latitude/longitude grid: ``zeta = (dv/dlon - d(u cos lat)/dlat) / (R cos lat)``.
    Grids, differences, NaN and errors as :func:`divergence`.

    Parameters
    ----------
    u, v, y_dim, x_dim
        As in :func:`divergence`.

    Returns
    -------
    xarray.DataArray
        ``standard_name: atmosphere_relative_vorticity``, ``units: s-1``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lat = xr.DataArray(np.arange(-60.0, 61.0, 2.0), dims="lat",
    ...                    attrs={"units": "degrees_north"})
    >>> lon = xr.DataArray(np.arange(0.0, 360.0, 2.0), dims="lon",
    ...                    attrs={"units": "degrees_east"})
    >>> u = (10 * np.cos(np.deg2rad(lat)) * xr.ones_like(lon)).assign_coords(lat=lat, lon=lon)
    >>> u.attrs = {"units": "m s-1", "standard_name": "eastward_wind"}
    >>> v = xr.zeros_like(u).assign_attrs(units="m s-1", standard_name="northward_wind")
    >>> z = vorticity(u, v).sel(lat=30.0, lon=0.0)
    >>> round(float(z) / (2 * 10 * 0.5 / 6.371e6), 2)  # 2 U sin(lat) / R; 2-degree grid
    1.0
    """
    return _compute("vorticity", u, v, y_dim, x_dim)
