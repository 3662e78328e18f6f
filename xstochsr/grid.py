"""CF roles of a field's coordinates, checks on them, and the exact fine grid.

All CF knowledge goes through cf-xarray: X, Y and T are found from ``axis``,
``standard_name``, units (``degrees_east``...) and, as a last resort, cf-xarray's own
name heuristics (``guess_coord_axis``), whatever the dimensions are called.

The fine grid is derived from the coarse cell *bounds*: each coarse cell is split into
``factor`` equal parts along each axis, so fine centres and bounds nest exactly inside
the coarse ones (for projected x/y and for 1-D latitude/longitude alike). Curvilinear
(2-D) latitude/longitude is refined by bilinear interpolation in index space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import (
    DomainTooSmallError,
    InvalidInputError,
    MissingAxisError,
)
from .validation import SPACING_RTOL  # noqa: F401  (kept importable from here)

__all__ = [
    "Axes",
    "find_axes",
    "spatial_dims",
    "check_regular",
    "bounds_1d",
    "refine_1d",
    "refine_2d",
    "fine_coords",
    "coarsen_field",
    "add_bounds",
    "match_grid",
]


@dataclass(frozen=True)
class Axes:
    """Dimension names with a CF role in one field.

    Attributes
    ----------
    x, y : str
        Names of the X and Y *dimensions*.
    t : str or None
        Name of the time dimension, None for a field with no time.
    lon, lat : str or None
        Names of 2-D (curvilinear) longitude/latitude coordinates, if any.
    """

    x: str
    y: str
    t: str | None = None
    lon: str | None = None
    lat: str | None = None

    @property
    def spatial(self) -> tuple[str, str]:
        """``(y, x)`` dimension names."""
        return (self.y, self.x)


def _dims_of(da: xr.DataArray, names: list[str], ndim: int) -> list[str]:
    """Dimensions of ``da`` that are coordinate variables named in ``names`` of ``ndim``."""
    out = []
    for name in names:
        if name in da.coords and da.coords[name].ndim == ndim:
            if ndim == 1:
                dim = da.coords[name].dims[0]
                if dim in da.dims and dim not in out:
                    out.append(dim)
            else:
                out.append(name)
    return out


def _one(found: list[str], role: str, da: xr.DataArray) -> str | None:
    if len(found) > 1:
        raise MissingAxisError(
            f"Multiple candidates for the {role} axis found: {found}; I expected only one. "
            f"Drop the extra coordinates or set the attribute axis='{role}' on one of them."
        )
    return found[0] if found else None


def find_axes(da: xr.DataArray, *, require_time: bool = False) -> Axes:
    """Find the X, Y and T dimensions of ``da`` with cf-xarray.

    Parameters
    ----------
    da : xarray.DataArray
        The field. Dimensions may have any names.
    require_time : bool, default False
        Raise if no time axis is found.

    Returns
    -------
    Axes
        Dimension names of X, Y (and T if present), plus names of 2-D lon/lat coords.

    Raises
    ------
    MissingAxisError
        If X or Y (or T when required) cannot be identified; the message lists the
        dimensions found and how to tag them.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon"),
    ...     coords={"lat": ("lat", [0., 1.], {"units": "degrees_north"}),
    ...             "lon": ("lon", [0., 1., 2.], {"units": "degrees_east"})})
    >>> find_axes(da)
    Axes(x='lon', y='lat', t=None, lon=None, lat=None)
    """
    import cf_xarray  # noqa: F401  (registers .cf)

    if not isinstance(da, xr.DataArray):
        raise InvalidInputError(
            f"Expected an xarray.DataArray, got {type(da).__name__}. "
            "Select one variable first, e.g. ds['precip']."
        )
    axes = da.cf.axes
    coords = da.cf.coordinates
    lon2d = lat2d = None

    x = _one(_dims_of(da, axes.get("X", []), 1), "X", da)
    y = _one(_dims_of(da, axes.get("Y", []), 1), "Y", da)
    if x is None:
        x = _one(_dims_of(da, coords.get("longitude", []), 1), "X", da)
    if y is None:
        y = _one(_dims_of(da, coords.get("latitude", []), 1), "Y", da)
    lons = _dims_of(da, coords.get("longitude", []), 2)
    lats = _dims_of(da, coords.get("latitude", []), 2)
    if lons and lats:
        lon2d, lat2d = _one(lons, "longitude", da), _one(lats, "latitude", da)
        ydim, xdim = da.coords[lon2d].dims
        x = x or xdim
        y = y or ydim
    t = _one(_dims_of(da, axes.get("T", []), 1), "T", da)
    if t is None:
        t = _one(
            [d for d in da.dims if d in da.coords and _is_time(da.coords[d])], "T", da
        )
    if x is None or y is None or t is None:
        guessed = da.copy(deep=False)
        for name in list(guessed.coords):
            guessed.coords[name] = guessed.coords[name].copy(deep=False)
        guessed = guessed.cf.guess_coord_axis(verbose=False)
        gaxes = guessed.cf.axes
        x = x or _one(_dims_of(guessed, gaxes.get("X", []), 1), "X", da)
        y = y or _one(_dims_of(guessed, gaxes.get("Y", []), 1), "Y", da)
        t = t or _one(_dims_of(guessed, gaxes.get("T", []), 1), "T", da)
    from .axis_guess import fill_axes  # usual names, bare dims; logs what it assumed

    x, y, t = fill_axes(da, x, y, t)
    if x is None or y is None:
        missing = " and ".join(r for r, v in (("X", x), ("Y", y)) if v is None)
        raise MissingAxisError(
            f"Could not identify the {missing} axis of {da.name or 'the field'!r} with "
            f"dimensions {tuple(da.dims)}. Give the spatial coordinates CF attributes, e.g. "
            "da['xc'].attrs.update(axis='X', standard_name='projection_x_coordinate', "
            "units='m') (or units='degrees_east' for longitude), and likewise for Y."
        )
    if x == y:
        raise MissingAxisError(f"X and Y resolve to the same dimension {x!r}.")
    if require_time and t is None:
        raise MissingAxisError(
            f"No time axis found among dimensions {tuple(da.dims)}. Give the time "
            "coordinate a datetime dtype or the attribute axis='T'."
        )
    return Axes(x=x, y=y, t=t, lon=lon2d, lat=lat2d)


def _is_time(coord: xr.DataArray) -> bool:
    if np.issubdtype(coord.dtype, np.datetime64):
        return True
    return coord.dtype == object and coord.size > 0 and hasattr(coord.values.flat[0], "calendar")


def spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    """Return the ``(y_dim, x_dim)`` dimension names of ``da`` (see :func:`find_axes`)."""
    return find_axes(da).spatial


def check_regular(da: xr.DataArray, axes: Axes, *, min_size: int = 2) -> None:
    """Check that X and Y are strictly monotonic, evenly spaced and large enough.

    Every 1-D coordinate that defines the grid is checked, a dimension coordinate or not
    (``lon(x)`` beside a dimension ``x`` without values too); the rules live in
    :func:`xstochsr.validation.check_grid`.

    Parameters
    ----------
    da : xarray.DataArray
        The field.
    axes : Axes
        As returned by :func:`find_axes`.
    min_size : int, default 2
        Fewest cells needed along X and Y.

    Raises
    ------
    DomainTooSmallError
        If X or Y has fewer than ``min_size`` cells.
    IrregularCoordinateError
        If a grid coordinate is non-monotonic, repeats values or is unevenly spaced.
    """
    from .validation import check_grid

    check_grid(da, axes, min_size=min_size)


def bounds_1d(centres: np.ndarray) -> np.ndarray:
    """Cell bounds ``(n, 2)`` from 1-D centres: midpoints, ends extrapolated.

    A single cell gets no bounds (there is no spacing to infer): it raises.
    """
    c = np.asarray(centres, dtype=float)
    if c.size < 2:
        raise DomainTooSmallError("Cannot infer cell bounds from a single coordinate value.")
    mid = 0.5 * (c[1:] + c[:-1])
    edges = np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])
    return np.stack([edges[:-1], edges[1:]], axis=-1)


def refine_1d(bounds: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Split each cell of ``bounds`` (n, 2) into ``factor`` equal cells.

    Returns
    -------
    centres : ndarray, shape (n * factor,)
    fine_bounds : ndarray, shape (n * factor, 2)
        Fine cell ``i * factor + k`` spans fraction ``[k/f, (k+1)/f]`` of coarse cell
        ``i``, so fine bounds tile each coarse cell exactly, in the coarse direction.
    """
    b = np.asarray(bounds, dtype=float)
    frac = np.arange(factor + 1) / factor
    edges = b[:, :1] + (b[:, 1:] - b[:, :1]) * frac  # (n, f+1)
    lo = edges[:, :-1].reshape(-1)
    hi = edges[:, 1:].reshape(-1)
    return 0.5 * (lo + hi), np.stack([lo, hi], axis=-1)


def refine_2d(values: np.ndarray, factor: int, *, periodic: float | None = None) -> np.ndarray:
    """Refine a 2-D coordinate (e.g. curvilinear longitude) by ``factor``.

    Bilinear interpolation (linear extrapolation at the edges) at the fine cell centres
    in coarse index space: fine cell ``k`` of coarse cell ``i`` sits at
    ``i + (k + 0.5) / factor - 0.5``.

    Parameters
    ----------
    values : ndarray, shape (ny, nx)
    factor : int
    periodic : float, optional
        Period of the coordinate (360 for longitude): unwrapped before, wrapped back
        into the input's range after, so a grid across the date line refines smoothly.

    Returns
    -------
    ndarray, shape (ny * factor, nx * factor)
    """
    v = np.asarray(values, dtype=float)
    if periodic is not None:
        # keep the input's convention: [0, period) if it has no negative value, else
        # [-period/2, period/2)
        lo = 0.0 if np.nanmin(v) >= 0 else -periodic / 2
        v = np.unwrap(np.unwrap(v, period=periodic, axis=1), period=periodic, axis=0)
    ny, nx = v.shape
    pos = (np.arange(factor) + 0.5) / factor - 0.5

    def _interp_axis(a: np.ndarray, axis: int, n: int) -> np.ndarray:
        q = (np.arange(n)[:, None] + pos[None, :]).reshape(-1)
        if n == 1:
            return np.repeat(a, factor, axis=axis)
        i0 = np.clip(np.floor(q).astype(int), 0, n - 2)
        w = q - i0
        a0 = np.take(a, i0, axis=axis)
        a1 = np.take(a, i0 + 1, axis=axis)
        shape = [1, 1]
        shape[axis] = -1
        w = w.reshape(shape)
        return a0 * (1 - w) + a1 * w

    out = _interp_axis(_interp_axis(v, 0, ny), 1, nx)
    if periodic is not None:
        out = lo + np.mod(out - lo, periodic)
    return out


def _is_longitude(coord: xr.DataArray) -> bool:
    units = str(coord.attrs.get("units", ""))
    return coord.attrs.get("standard_name") == "longitude" or units.startswith("degree") and (
        units.endswith(("east", "E")) or "east" in units
    )


def fine_coords(da: xr.DataArray, axes: Axes, factor: int) -> dict[str, xr.DataArray]:
    """Coordinates of the fine grid for every coordinate that depends on X or Y.

    1-D coordinates that define the grid — the X/Y dimension coordinates and 1-D
    ``lon``/``lat`` (or other X/Y-role) coordinates beside them — are split from their
    cell bounds (:func:`refine_1d`); a missing 1-D coordinate stays missing. Fine
    coordinates are floating point even when the coarse ones are integers (``x = 0..7``
    at factor 4 becomes ``-0.375, -0.125, ...``), so they nest exactly. 2-D coordinates on
    (Y, X) — curvilinear latitude/longitude, say — are refined with :func:`refine_2d`.
    Other coordinates that depend on X or Y (e.g. a land mask) cannot be refined
    honestly and are dropped.

    Returns
    -------
    dict
        Name -> DataArray on the fine dims, attrs kept (``bounds`` attr removed, since
        a DataArray cannot carry bounds variables: use :func:`add_bounds`).
    """
    from .validation import grid_coords

    out: dict[str, xr.DataArray] = {}
    grid = set(grid_coords(da, axes))
    for name, coord in da.coords.items():
        dims = set(coord.dims)
        if not dims & {axes.x, axes.y}:
            continue
        attrs = {k: v for k, v in coord.attrs.items() if k != "bounds"}
        dtype = coord.dtype if coord.dtype.kind == "f" else np.float64
        if name in grid and coord.dtype.kind in "iuf" and coord.size >= 2:
            centres, _ = refine_1d(bounds_1d(coord.values), factor)
            out[name] = xr.DataArray(centres.astype(dtype, copy=False), dims=coord.dims,
                                     attrs=attrs)
        elif coord.ndim == 2 and dims == {axes.x, axes.y} and coord.dtype.kind in "iuf":
            vals = coord.transpose(axes.y, axes.x).values
            period = 360.0 if _is_longitude(coord) else None
            fine = refine_2d(vals, factor, periodic=period).astype(dtype, copy=False)
            out[name] = xr.DataArray(fine, dims=(axes.y, axes.x), attrs=attrs)
    return out


def add_bounds(obj: xr.DataArray | xr.Dataset, axes: Axes | None = None) -> xr.Dataset:
    """Return a Dataset with CF bounds variables for the 1-D X and Y coordinates.

    Bounds are midpoints between centres, which is exact for the regular grids that
    :func:`fine_coords` produces. The coordinate's ``bounds`` attribute names them.
    """
    ds = obj.to_dataset(name=obj.name or "field") if isinstance(obj, xr.DataArray) else obj.copy()
    if axes is None:
        first = next(iter(ds.data_vars.values()))
        axes = find_axes(first)
    for dim in (axes.x, axes.y):
        if dim not in ds.coords or ds.coords[dim].ndim != 1 or ds.sizes[dim] < 2:
            continue
        bname = f"{dim}_bounds"
        ds[bname] = xr.DataArray(bounds_1d(ds[dim].values), dims=(dim, "bounds"),
                                 attrs={"units": ds[dim].attrs.get("units", "")})
        ds = ds.set_coords(bname)
        ds[dim].attrs["bounds"] = bname
    return ds


def coarsen_field(da: xr.DataArray, factor: int, *, axes: Axes | None = None) -> xr.DataArray:
    """Block-average ``da`` by ``factor`` along X and Y (the perfect-prognosis coarse field).

    Coordinates are averaged too, so coarse centres are the means of their fine
    centres. Blocks holding any NaN become NaN (no silent partial means). Trailing
    rows/columns that do not fill a block are trimmed.

    Parameters
    ----------
    da : xarray.DataArray
        Fine field, shape ``(..., Y, X)`` in any dim order.
    factor : int
        Block size.

    Returns
    -------
    xarray.DataArray
        Coarse field with the same attrs.
    """
    axes = axes or find_axes(da)
    if da.sizes[axes.x] < factor or da.sizes[axes.y] < factor:
        raise DomainTooSmallError(
            f"A {da.sizes[axes.y]}x{da.sizes[axes.x]} field cannot be coarsened by {factor}."
        )
    out = da.coarsen({axes.x: factor, axes.y: factor}, boundary="trim", coord_func="mean")
    out = out.reduce(np.mean, keep_attrs=True)  # np.mean propagates NaN
    for name in out.coords:
        if name in da.coords:
            out.coords[name].attrs = {k: v for k, v in da.coords[name].attrs.items()
                                      if k != "bounds"}
    return out


def match_grid(obj: xr.DataArray, ref: xr.DataArray, *, rtol: float = 1e-6) -> xr.DataArray:
    """Give ``obj`` the 1-D coordinate values of ``ref`` where they agree to rounding.

    A fine grid rebuilt from coarse cell bounds equals the original fine grid only to
    floating-point rounding (~1e-10 m on a 3 km grid); exact alignment would then refuse
    to pair an ensemble with its truth. Coordinates shared by both that differ by less
    than ``rtol`` times their spacing are replaced by ``ref``'s; larger differences are
    left alone (so alignment still fails loudly on a genuinely different grid).

    Parameters
    ----------
    obj, ref : xarray.DataArray
    rtol : float
        Tolerance relative to the coordinate spacing.

    Returns
    -------
    xarray.DataArray
        ``obj`` with snapped coordinates.
    """
    updates = {}
    for name, c in obj.coords.items():
        if c.ndim != 1 or name not in ref.coords or name not in obj.dims:
            continue
        r = ref.coords[name]
        if r.shape != c.shape or r.dtype.kind != "f" or c.dtype.kind != "f":
            continue
        a, b = np.asarray(c.values, float), np.asarray(r.values, float)
        step = np.abs(np.diff(b)).min() if b.size > 1 else max(abs(b[0]), 1.0)
        diff = np.max(np.abs(a - b))
        if 0 < diff <= rtol * step:
            updates[name] = r.copy(data=r.values).assign_attrs(c.attrs)
    return obj.assign_coords(updates) if updates else obj
