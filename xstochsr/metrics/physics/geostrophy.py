"""Geostrophic wind from geopotential, and the ageostrophic ratio of a wind."""

from __future__ import annotations

import warnings
from collections.abc import Hashable

import numpy as np
import xarray as xr

from ...errors import InvalidInputError, MissingUnitsError, UnitsError
from .._inputs import _check_da
from ._grid import (
    EARTH_RADIUS,
    OMEGA,
    STANDARD_GRAVITY,
    apply_2d,
    check_pair,
    derivative,
    grid_of,
)

__all__ = ["geostrophic_wind", "ageostrophic_ratio", "thermal_wind_residual", "GeostrophyWarning"]

#: Below this |latitude| (degrees) geostrophy is not computed (|f| too small).
MIN_LATITUDE = 5.0


class GeostrophyWarning(UserWarning):
    """Cells too close to the equator (|f| too small) were set to NaN."""


def _geopotential(z: xr.DataArray) -> xr.DataArray:
    """``z`` as geopotential in m2 s-2 (from geopotential height in m, or geopotential)."""
    from ...units import affine

    sn = z.attrs.get("standard_name")
    units = z.attrs.get("units")
    if sn is not None and sn not in ("geopotential_height", "geopotential"):
        raise InvalidInputError(
            f"geostrophic_wind takes geopotential height or geopotential; got a field "
            f"with standard_name {sn!r}. Pass e.g. ds['zg'] (geopotential_height, m) or "
            "ds['z'] (geopotential, m2 s-2)."
        )
    if not units:
        raise MissingUnitsError(
            "The geopotential field has no 'units'. Set it: z.attrs['units'] = 'm' for "
            "geopotential height, or 'm2 s-2' for geopotential."
        )
    for target, scale in (("m2 s-2", 1.0), ("m", STANDARD_GRAVITY)):
        try:
            a, b = affine(str(units), target)
        except UnitsError:
            continue
        return (z * a + b) * scale
    raise UnitsError(
        f"The geopotential field is in {units!r}, neither a height ('m') nor a "
        "geopotential ('m2 s-2'). Fix its units attribute."
    )


def geostrophic_wind(
    z: xr.DataArray,
    *,
    f0: float | None = None,
    beta: float = 0.0,
    min_latitude: float = MIN_LATITUDE,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Geostrophic wind ``(u_g, v_g) = (-dPhi/dy, dPhi/dx) / f`` (m s-1).

    ``Phi`` is the geopotential (``g0 * z`` for geopotential height, ``g0 = 9.80665``).
    On a latitude/longitude grid ``f = 2 Omega sin(lat)`` and the derivatives carry the
    spherical metric terms (``dx = R cos(lat) dlon``, ``dy = R dlat``). On a projected
    grid a beta-plane ``f = f0 + beta (y - y_mid)`` is used, ``y_mid`` the middle of the
    y coordinate (``f0`` required; given on a latitude/longitude grid, it replaces
    ``2 Omega sin(lat)`` by ``f0 + beta R (lat - lat_mid)``). Where
    ``|f| < 2 Omega sin(min_latitude)`` the wind is NaN and a :class:`GeostrophyWarning`
    says how many cells. Derivatives as :func:`divergence`.

    Parameters
    ----------
    z : xarray.DataArray
        Geopotential height (``standard_name: geopotential_height``, a length unit)
        or geopotential (``standard_name: geopotential``, m2 s-2).
    f0 : float, optional
        Coriolis parameter (s-1) at ``y_mid``; required on projected grids.
    beta : float, default 0
        ``df/dy`` (m-1 s-1) of the beta-plane.
    min_latitude : float, default 5
        Latitude (degrees) equatorward of which ``|f|`` counts as too small.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with cf-xarray if not given.

    Returns
    -------
    (xarray.DataArray, xarray.DataArray)
        ``u_g`` and ``v_g`` in m s-1 with standard_names ``geostrophic_eastward_wind``
        and ``geostrophic_northward_wind``, on the grid of ``z``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> y = xr.DataArray(np.arange(0.0, 500.0, 50.0), dims="y", attrs={"units": "km"})
    >>> x = xr.DataArray(np.arange(0.0, 500.0, 50.0), dims="x", attrs={"units": "km"})
    >>> z = (5500 - 1e-4 * 1e3 * y * xr.ones_like(x)).assign_coords(x=x, y=y)  # 0.1 m per km
    >>> z.attrs = {"units": "m", "standard_name": "geopotential_height"}
    >>> ug, vg = geostrophic_wind(z, f0=1e-4)
    >>> round(float(ug.mean()), 2), round(float(abs(vg).max()), 2)
    (9.81, 0.0)
    """
    z = _check_da(z, "z")
    phi = _geopotential(z)
    grid = grid_of(z, y_dim, x_dim)
    ny = z.sizes[grid.y]
    if grid.spherical:
        lat = grid.yc
        if f0 is None:
            f = 2 * OMEGA * np.sin(lat)
        else:
            f = f0 + beta * EARTH_RADIUS * (lat - 0.5 * (lat[0] + lat[-1]))
    else:
        if f0 is None:
            raise InvalidInputError(
                "z is on a projected grid, so the Coriolis parameter cannot come from "
                "latitude. Pass f0= (s-1, e.g. 1e-4 at 45N) and optionally beta= "
                "(m-1 s-1, e.g. 1.6e-11) for a beta-plane."
            )
        y = grid.yc
        f = f0 + beta * (y - 0.5 * (y[0] + y[-1]))
    f = np.asarray(f, dtype=float).reshape(ny, 1)
    small = np.abs(f) < 2 * OMEGA * np.sin(np.deg2rad(min_latitude))
    if small.any():
        warnings.warn(
            f"{int(small.sum())} of {ny} rows have |f| < 2 Omega sin({min_latitude} deg) "
            f"(too close to the equator for geostrophy): the geostrophic wind is NaN "
            "there. Select a region poleward of it, or lower min_latitude=.",
            GeostrophyWarning,
            stacklevel=2,
        )
    finv = np.where(small, np.nan, 1.0 / np.where(small, 1.0, f))

    def _ddx(p):
        d = derivative(p, grid.xc, -1, periodic=grid.periodic)
        return d / (EARTH_RADIUS * grid.coslat) if grid.spherical else d

    def _ddy(p):
        d = derivative(p, grid.yc, -2)
        return d / EARTH_RADIUS if grid.spherical else d

    ug = apply_2d(lambda p: -finv * _ddy(p), phi, grid=grid)
    vg = apply_2d(lambda p: finv * _ddx(p), phi, grid=grid)
    note = "xstochsr: geostrophic wind from " + str(z.name or "geopotential")
    ug = ug.rename("ug").assign_attrs(
        standard_name="geostrophic_eastward_wind", units="m s-1", comment=note)
    vg = vg.rename("vg").assign_attrs(
        standard_name="geostrophic_northward_wind", units="m s-1", comment=note)
    if not grid.spherical:
        ug.attrs["long_name"], vg.attrs["long_name"] = "geostrophic x wind", "geostrophic y wind"
    return ug, vg


def ageostrophic_ratio(
    u: xr.DataArray,
    v: xr.DataArray,
    ug: xr.DataArray,
    vg: xr.DataArray,
    *,
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Ageostrophic ratio ``mean |V - V_g| / mean |V|`` (1).

    ``V = (u, v)``, ``V_g = (ug, vg)`` (e.g. from :func:`geostrophic_wind`); the means
    are over ``dim`` and skip cells where any of the four is NaN. 0 for a geostrophic
    wind; about 0.1 for a synoptic-scale midlatitude flow.

    Parameters
    ----------
    u, v : xarray.DataArray
        The wind, a vector pair (see :func:`divergence`).
    ug, vg : xarray.DataArray
        The geostrophic wind on the same grid (any velocity units).
    dim : str or list of str, optional
        Dimensions to average over: None (default) the two spatial dimensions, ``[]``
        none (the pointwise ratio ``|V - V_g| / |V|``).
    y_dim, x_dim : str, optional
        Spatial dimensions; found with cf-xarray if not given.

    Returns
    -------
    xarray.DataArray
        Named ``ageostrophic_ratio``, units ``1``.
    """
    u, v = check_pair(u, v)
    ug, vg = check_pair(ug, vg)
    try:
        u, v, ug, vg = xr.align(u, v, ug, vg, join="exact")
    except ValueError as err:
        raise InvalidInputError(
            f"The wind and the geostrophic wind are on different grids: {err}. Compute "
            "the geostrophic wind on the wind's grid, e.g. from z.interp_like(u)."
        ) from err
    if dim is None:
        grid = grid_of(u, y_dim, x_dim)
        dim = [grid.y, grid.x]
    elif isinstance(dim, str):
        dim = [dim]
    ok = u.notnull() & v.notnull() & ug.notnull() & vg.notnull()
    num = np.hypot(u - ug, v - vg).where(ok)
    den = np.hypot(u, v).where(ok)
    out = num / den if not dim else num.mean(dim, skipna=True) / den.mean(dim, skipna=True)
    out = out.rename("ageostrophic_ratio")
    out.attrs = {"long_name": "ageostrophic ratio |V - V_g| / |V|", "units": "1"}
    return out


#: Gas constant of dry air (J kg-1 K-1), for thickness from a layer-mean temperature.
DRY_AIR_GAS_CONSTANT = 287.05


def thermal_wind_residual(
    lower: tuple[xr.DataArray, xr.DataArray],
    upper: tuple[xr.DataArray, xr.DataArray],
    *,
    thickness: xr.DataArray | None = None,
    temperature: xr.DataArray | None = None,
    pressure: tuple[float, float] | None = None,
    f0: float | None = None,
    beta: float = 0.0,
    min_latitude: float = MIN_LATITUDE,
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Thermal-wind residual ``mean |dV - V_T| / mean |dV|`` between two levels (1).

    ``dV = V_upper - V_lower`` is the wind shear; the thermal wind ``V_T`` is the
    geostrophic wind of the layer's thickness ``h = z_upper - z_lower``
    (:func:`geostrophic_wind` of ``h``). The thickness is given, or comes from the
    layer-mean temperature by the hypsometric equation
    ``h = (R_d / g0) T ln(p_lower / p_upper)``. 0 for a shear in thermal-wind balance.

    Parameters
    ----------
    lower, upper : (xarray.DataArray, xarray.DataArray)
        ``(u, v)`` at the lower and upper level (vector pairs on one grid).
    thickness : xarray.DataArray, optional
        Geopotential thickness of the layer (a length unit, or m2 s-2 for a geopotential
        difference).
    temperature : xarray.DataArray, optional
        Layer-mean temperature (units convertible to K), with ``pressure``.
    pressure : (float, float), optional
        ``(p_lower, p_upper)`` in any one unit (only their ratio enters).
    f0, beta, min_latitude, y_dim, x_dim
        As in :func:`geostrophic_wind`.
    dim
        As in :func:`ageostrophic_ratio`.

    Returns
    -------
    xarray.DataArray
        Named ``thermal_wind_residual``, units ``1``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> c = {"units": "km"}
    >>> y = xr.DataArray(np.arange(0.0, 500.0, 50.0), dims="y", attrs=c)
    >>> x = xr.DataArray(np.arange(0.0, 500.0, 50.0), dims="x", attrs=c)
    >>> h = (5000 - 1e-4 * 1e3 * y * xr.ones_like(x)).assign_coords(x=x, y=y)  # thickness
    >>> h.attrs["units"] = "m"
    >>> low = [xr.zeros_like(h).assign_attrs(units="m s-1") for _ in range(2)]
    >>> up = [(low[0] + 9.80665).assign_attrs(units="m s-1"), low[1]]  # g/f * 1e-4, f = 1e-4
    >>> float(thermal_wind_residual(low, up, thickness=h, f0=1e-4)) < 1e-12
    True
    """
    if (thickness is None) == (temperature is None):
        raise InvalidInputError(
            "Give the layer either thickness= (geopotential height difference, m) or "
            "temperature= (layer mean, K) with pressure=(p_lower, p_upper)."
        )
    if temperature is not None:
        from ...units import to_units

        if pressure is None or len(pressure) != 2 or not all(float(p) > 0 for p in pressure):
            raise InvalidInputError(
                "temperature= needs pressure=(p_lower, p_upper), two positive values in "
                f"one unit, e.g. (850, 500) hPa; got {pressure!r}."
            )
        t = to_units(_check_da(temperature, "temperature"), "K",
                     expected="a temperature (e.g. 'K')")
        ratio = float(pressure[0]) / float(pressure[1])
        thickness = t * (DRY_AIR_GAS_CONSTANT / STANDARD_GRAVITY * np.log(ratio))
        thickness.attrs = {"units": "m"}
    else:
        thickness = _check_da(thickness, "thickness")
        thickness = thickness.copy(deep=False)
        thickness.attrs = {k: a for k, a in thickness.attrs.items() if k != "standard_name"}
    (ul, vl), (uu, vu) = check_pair(*lower), check_pair(*upper)
    ut, vt = geostrophic_wind(thickness.rename("thickness"), f0=f0, beta=beta,
                              min_latitude=min_latitude, y_dim=y_dim, x_dim=x_dim)
    shear_u = (uu - ul).assign_attrs(units="m s-1")
    shear_v = (vu - vl).assign_attrs(units="m s-1")
    out = ageostrophic_ratio(shear_u, shear_v, ut, vt, dim=dim, y_dim=y_dim, x_dim=x_dim)
    out = out.rename("thermal_wind_residual")
    out.attrs = {"long_name": "thermal-wind residual |dV - V_T| / |dV|", "units": "1"}
    return out
