"""Regrid fields onto the grid a user needs, respecting CF coordinates.

Targets are Datasets or DataArrays whose CF X/Y define the grid: 1-D latitude/longitude,
projected x/y (with a ``grid_mapping``), or 2-D curvilinear latitude/longitude.
Methods: ``"conservative"`` (default for precipitation and fluxes), ``"bilinear"``,
``"nearest"``. Backends: see :mod:`xstochsr.regrid.backends`.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from xstochsr.regrid import regrid
>>> lat = np.arange(40.5, 50, 1.0); lon = np.arange(0.5, 10, 1.0)
>>> pr = xr.DataArray(np.ones((10, 10)), dims=("lat", "lon"), name="pr",
...     coords={"lat": ("lat", lat, {"units": "degrees_north"}),
...             "lon": ("lon", lon, {"units": "degrees_east"})},
...     attrs={"standard_name": "precipitation_flux", "units": "kg m-2 s-1"})
>>> target = xr.Dataset(coords={
...     "lat": ("lat", np.arange(40.25, 50, 0.5), {"units": "degrees_north"}),
...     "lon": ("lon", np.arange(0.25, 10, 0.5), {"units": "degrees_east"})})
>>> out = regrid(pr, target)          # conservative: pr is a flux
>>> out.sizes["lat"], float(out.mean())
(20, 1.0)
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings

import numpy as np
import xarray as xr

from ..errors import InvalidInputError, RegridError
from ..grid import find_axes
from ._grids import (
    CURVILINEAR,
    LATLON,
    M_PER_DEGREE,
    PROJECTED,
    GridInfo,
    _to_metres,
    as_dataset,
    describe,
    spacing_of,
)
from .backends import BACKENDS, METHODS, SRC_DIMS, TGT_DIMS, get_backend, same_system

__all__ = [
    "regrid",
    "regrid_dataset",
    "native_grid",
    "grid_spacing",
    "check_spacing",
    "default_method",
    "GridSpacingWarning",
    "BACKENDS",
    "METHODS",
]

#: Words in standard_name/long_name/name that make conservative the default method.
CONSERVATIVE_WORDS = ("precipitation", "flux", "rainfall", "snowfall")
#: Whole words (or variable names) that do the same: CMIP's pr, ERA5's tp.
CONSERVATIVE_NAMES = ("pr", "tp", "precip", "prcp", "rain", "rr")
#: Unit dimensionalities that make conservative the default (kg m-2 s-1, W m-2).
CONSERVATIVE_DIMENSIONALITIES = ("[mass] / [length] ** 2 / [time]", "[mass] / [time] ** 3",
                                 "[mass] / [length] ** 2")
#: A speed slower than this (m s-1) is a precipitation rate (mm h-1, mm/day), not a wind.
PRECIP_RATE_MAX = 1e-3

_ALIASES = {"linear": "bilinear", "conservative_normed": "conservative",
            "nearest_s2d": "nearest", "nearest-neighbour": "nearest"}


class GridSpacingWarning(UserWarning):
    """A field's grid spacing differs from the model's native coarse spacing."""


def default_method(da: xr.DataArray) -> str:
    """``"conservative"`` for precipitation and fluxes, else ``"bilinear"``.

    Decided from ``standard_name``/``long_name``/name (:data:`CONSERVATIVE_WORDS`) and
    from units: mass fluxes (kg m-2 s-1), energy fluxes (W m-2), amounts (kg m-2) and
    slow speeds such as mm h-1 or mm/day count as fluxes; m s-1 (wind) does not.
    """
    text = " ".join(str(da.attrs.get(k, "")) for k in ("standard_name", "long_name"))
    text = f"{text} {da.name or ''}".lower()
    if any(w in text for w in CONSERVATIVE_WORDS):
        return "conservative"
    if set(re.split(r"[\s_]+", text)) & set(CONSERVATIVE_NAMES):
        return "conservative"
    units = da.attrs.get("units")
    if units:
        from cf_xarray.units import units as ureg

        try:
            q = ureg.Quantity(1.0, str(units))
        except Exception:  # unparsable units: no opinion
            return "bilinear"
        dim = str(q.dimensionality)
        if dim in CONSERVATIVE_DIMENSIONALITIES:
            return "conservative"
        if dim == "[length] / [time]" and q.to("m/s").magnitude < PRECIP_RATE_MAX:
            return "conservative"
    return "bilinear"


def _method(da: xr.DataArray, method: str | None) -> str:
    if method is None:
        return default_method(da)
    m = _ALIASES.get(str(method).lower(), str(method).lower())
    if m not in METHODS:
        raise RegridError(
            f"Unknown regridding method {method!r}. Choose one of {list(METHODS)} "
            "(or method=None: conservative for fluxes and precipitation, else bilinear)."
        )
    return m


def _history(attrs: dict, line: str) -> dict:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    from .. import __version__

    new = f"{stamp} xstochsr {__version__}: {line}"
    attrs = dict(attrs)
    attrs["history"] = f"{attrs['history']}\n{new}" if attrs.get("history") else new
    return attrs


def _regrid_info(da: xr.DataArray, src: GridInfo, tgt: GridInfo, *, method, backend,
                 skipna) -> tuple[xr.DataArray, str, str]:
    if not np.issubdtype(da.dtype, np.number):
        raise InvalidInputError(f"Cannot regrid a field of dtype {da.dtype}.")
    m = _method(da, method)
    be = get_backend(backend, src, tgt)
    be.check(src, tgt, m)
    if m not in be.methods:
        raise RegridError(
            f"Backend {be.name!r} has no {m!r} method here (it offers {list(be.methods)}). "
            "Choose another method or backend."
        )
    ydim, xdim = src.dims
    tydim, txdim = tgt.dims
    others = [d for d in da.dims if d not in (ydim, xdim)]
    clash = {tydim, txdim} & set(others)
    if clash:
        raise RegridError(
            f"The target's spatial dims {sorted(clash)} clash with other dims of the field "
            f"{tuple(da.dims)}. Rename them first (e.g. target.rename(...))."
        )
    work = da.drop_vars([c for c in da.coords if set(da[c].dims) & {ydim, xdim}])
    work = work.rename({ydim: SRC_DIMS[0], xdim: SRC_DIMS[1]}).transpose(..., *SRC_DIMS)
    out = be.regrid(work, src, tgt, m, skipna)
    out = out.rename({TGT_DIMS[0]: tydim, TGT_DIMS[1]: txdim})
    order = [tydim if d == ydim else txdim if d == xdim else d for d in da.dims]
    out = out.transpose(*order)
    if np.issubdtype(da.dtype, np.floating) and out.dtype != da.dtype:
        out = out.astype(da.dtype)
    # coordinates: the field's non-spatial ones, then the target's grid
    keep = {k: v for k, v in da.coords.items() if not set(v.dims) & {ydim, xdim}}
    from ..cf_output import grid_mapping_name

    gm_src = grid_mapping_name(da)  # attrs, or encoding after decode_coords="all"
    if tgt.grid_mapping is not None or not same_system(src, tgt):
        keep.pop(gm_src, None)  # the source's projection no longer applies
    out = out.assign_coords(keep)
    grid = {}
    for name, c in tgt.coords.items():
        attrs = {k: v for k, v in c.attrs.items() if k != "bounds"}
        grid[name] = xr.Variable(c.dims, c.values, attrs)
    out = out.assign_coords(grid)
    attrs = dict(da.attrs)
    if tgt.grid_mapping is not None:
        gname, gvar = tgt.grid_mapping
        out = out.assign_coords({gname: gvar.variable})
        attrs["grid_mapping"] = gname
    elif not same_system(src, tgt):
        attrs.pop("grid_mapping", None)
    attrs = _history(attrs, f"regridded ({m}, backend {be.name}) from a {src.kind} "
                            f"{src.shape[0]}x{src.shape[1]} grid onto a {tgt.kind} "
                            f"{tgt.shape[0]}x{tgt.shape[1]} grid")
    out.attrs = attrs
    out.name = da.name
    out.encoding = {}
    return out, m, be.name


def regrid(da: xr.DataArray, target: xr.Dataset | xr.DataArray, *, method: str | None = None,
           backend: str | None = None, skipna: bool = True) -> xr.DataArray:
    """Regrid ``da`` onto the horizontal grid of ``target``.

    Parameters
    ----------
    da : xarray.DataArray
        Field with CF X/Y (any dim names) and any other dims (realization, time,
        levels...). Dask-backed input stays lazy.
    target : xarray.Dataset or xarray.DataArray
        Its CF X/Y define the grid: 1-D lat/lon, projected x/y (with a grid_mapping), or
        2-D curvilinear lat/lon. Its bounds variables are used when present.
    method : {"conservative", "bilinear", "nearest"}, optional
        Default: conservative for precipitation and fluxes (:func:`default_method`),
        else bilinear.
    backend : {"xesmf", "xarray-regrid", "pyresample"}, optional
        Default: xesmf if it imports, else xarray-regrid for two rectilinear grids in
        one coordinate system, else pyresample.
    skipna : bool, default True
        Conservative only: NaN source cells are left out and the weights renormalised
        over the valid overlap, so a masked block does not bias its neighbours; a
        target whose whole overlap is NaN is NaN. With False any NaN in the overlap
        makes the target NaN. Bilinear and nearest propagate NaN.

    Returns
    -------
    xarray.DataArray
        On the target's X/Y (with their CF attributes), with the field's name, attrs
        (plus a ``history`` line), non-spatial coordinates and dim order, and the
        target's grid_mapping variable as a coordinate. Conservative output is the
        area-weighted mean over each target cell's overlap with the source (target cells
        outside the source are NaN). A DataArray cannot hold bounds variables: use
        :func:`regrid_dataset` (or :func:`xstochsr.grid.add_bounds` on the result).

    Raises
    ------
    RegridError
        Unknown method or backend, or a method a backend cannot do on these grids.
    MissingDependencyError
        The chosen backend's package is not installed.
    """
    if not isinstance(da, xr.DataArray):
        raise InvalidInputError(
            f"regrid expects a DataArray, got {type(da).__name__}; for a Dataset use "
            "regrid_dataset."
        )
    src = describe(da)
    tgt = describe(target)
    return _regrid_info(da, src, tgt, method=method, backend=backend, skipna=skipna)[0]


def regrid_dataset(obj: xr.Dataset | xr.DataArray, target: xr.Dataset | xr.DataArray, *,
                   method: str | None = None, backend: str | None = None,
                   skipna: bool = True) -> xr.Dataset:
    """Regrid every variable of ``obj`` on its X/Y and return a CF Dataset with bounds.

    Variables without the spatial dims are copied; bounds and grid_mapping variables of
    the source are replaced by the target's. X/Y coordinates carry a ``bounds``
    attribute naming a bounds variable (the target's own, else built with cf-xarray:
    ``(n, 2)`` for 1-D coordinates, ``(ny, nx, 4)`` vertices for 2-D lat/lon). Other
    arguments as :func:`regrid`; ``method=None`` is decided per variable.
    """
    ds = as_dataset(obj)
    tgt = describe(target)
    tds = as_dataset(target)
    out_vars = {}
    src = None
    skip = {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}
    for name, var in ds.data_vars.items():
        if name in skip or "grid_mapping_name" in var.attrs:
            continue
        try:
            axes = find_axes(var)
        except Exception:
            axes = None
        if axes is None or var.ndim < 2:
            out_vars[name] = var
            continue
        src = describe(var, axes)
        out_vars[name] = _regrid_info(var, src, tgt, method=method, backend=backend,
                                      skipna=skipna)[0]
    if src is None:
        raise RegridError(f"No variable of the dataset has X/Y dims: {list(ds.data_vars)}.")
    result = xr.Dataset({k: v for k, v in out_vars.items()}, attrs=dict(ds.attrs))
    result = result.drop_vars([k for k in skip if k in result.variables])
    for key, bvar in tgt.bounds.items():
        coord = result[key]
        bname = tds[key].attrs.get("bounds") if key in tds.variables else None
        bname = bname or f"{key}_bounds"
        result = result.assign_coords({bname: bvar})
        result[key].attrs = {**coord.attrs, "bounds": bname}
    return result


# --- spacing and the model's native grid ----------------------------------------------------


def grid_spacing(da: xr.DataArray | xr.Dataset) -> tuple[float, float, str]:
    """Median ``(dx, dy, units)`` of ``da``'s grid.

    Units are ``"degree"`` for 1-D lat/lon and ``"m"`` for projected x/y (converted from
    the coordinate's units) and for curvilinear grids (great-circle distances).
    """
    return spacing_of(describe(da))


def _spacing_in(info: GridInfo, spacing: float, units: str) -> float:
    """``spacing`` in the grid's internal units (degree for lat/lon, m otherwise)."""
    from cf_xarray.units import units as ureg

    try:
        q = ureg.Quantity(float(spacing), str(units))
    except Exception as err:
        raise InvalidInputError(f"Cannot read spacing units {units!r} ({err}).") from err
    is_length = q.check("[length]")
    if not is_length and q.dimensionality:
        raise InvalidInputError(
            f"Spacing units {units!r} are neither a length nor an angle (e.g. 'km', 'degree')."
        )
    if info.kind == LATLON:
        return q.to("m").magnitude / M_PER_DEGREE if is_length else q.to("degree").magnitude
    return q.to("m").magnitude if is_length else q.to("degree").magnitude * M_PER_DEGREE


def check_spacing(da: xr.DataArray, spacing: float, units: str, rtol: float = 0.1) -> bool:
    """Warn (:class:`GridSpacingWarning`) if ``da``'s spacing is not ``spacing``.

    Lengths and angles are compared with 1 degree = 111.2 km (arc of a great circle).

    Returns
    -------
    bool
        True if dx and dy are within ``rtol`` (relative) of the native spacing.
    """
    info = describe(da)
    dx, dy, u = spacing_of(info)
    s = _spacing_in(info, spacing, units) if info.kind != CURVILINEAR else \
        _spacing_in(GridInfo(PROJECTED, info.axes, info.shape), spacing, units)
    ok = bool(abs(dx / s - 1) <= rtol and abs(dy / s - 1) <= rtol)
    if not ok:
        warnings.warn(
            f"The field's grid spacing (dx={dx:.4g} {u}, dy={dy:.4g} {u}) differs from the "
            f"model's native coarse spacing ({spacing:g} {units}) by more than {rtol:.0%}. "
            "The network expects its native spacing: pass regrid_input=True to regrid "
            "the input conservatively onto it first (or regrid it yourself with "
            "xstochsr.regrid.regrid(da, xstochsr.regrid.native_grid(da, spacing, units))).",
            GridSpacingWarning,
            stacklevel=2,
        )
    return ok


def _axis_1d(lo: float, hi: float, step: float, descending: bool) -> tuple[np.ndarray, ...]:
    n = max(1, int(round((hi - lo) / step)))
    mid = 0.5 * (lo + hi)
    edges = mid + (np.arange(n + 1) - n / 2) * step
    if descending:
        edges = edges[::-1]
    b = np.stack([edges[:-1], edges[1:]], axis=-1)
    return 0.5 * (b[:, 0] + b[:, 1]), b


def native_grid(da: xr.DataArray | xr.Dataset, spacing: float, units: str) -> xr.Dataset:
    """Build a regular grid over ``da``'s domain with the given spacing, with bounds.

    The grid is in ``da``'s own coordinates (projected x/y in ``da``'s units, with its
    grid_mapping; or lat/lon in degrees), centred on ``da``'s domain with
    ``round(extent / spacing)`` cells per axis. A curvilinear ``da`` gets a 1-D lat/lon
    grid over its bounding box. ``spacing`` is converted with pint (cf-xarray's
    registry); lengths and angles are related by 1 degree = 111.2 km.

    Returns
    -------
    xarray.Dataset
        Coordinates only (X, Y, their bounds, and the grid_mapping if any): a target for
        :func:`regrid`.
    """
    info = describe(da)
    ds = as_dataset(da)
    if info.kind == CURVILINEAR:
        s = _spacing_in(GridInfo(LATLON, info.axes, info.shape), spacing, units)
        lonb = ds.cf.add_bounds([info.axes.lon], dim=list(info.dims))[f"{info.axes.lon}_bounds"]
        latb = ds.cf.add_bounds([info.axes.lat], dim=list(info.dims))[f"{info.axes.lat}_bounds"]
        x, xb = _axis_1d(float(lonb.min()), float(lonb.max()), s, False)
        y, yb = _axis_1d(max(-90.0, float(latb.min())), min(90.0, float(latb.max())), s, False)
        out = xr.Dataset(coords={
            "lat": ("lat", y, {"standard_name": "latitude", "units": "degrees_north",
                               "axis": "Y", "bounds": "lat_bounds"}),
            "lon": ("lon", x, {"standard_name": "longitude", "units": "degrees_east",
                               "axis": "X", "bounds": "lon_bounds"}),
        })
        return out.assign_coords(lat_bounds=(("lat", "bounds"), yb),
                                 lon_bounds=(("lon", "bounds"), xb))
    ydim, xdim = info.dims
    s = _spacing_in(info, spacing, units)
    coords = {}
    for dim, b, c in ((ydim, info.yb, info.y), (xdim, info.xb, info.x)):
        scale = 1.0
        if info.kind == PROJECTED:  # back to the coordinate's own units
            scale = 1.0 / float(_to_metres(np.array(1.0), str(ds[dim].attrs.get("units", "")),
                                           dim))
        centres, bounds = _axis_1d(float(b.min()), float(b.max()), s,
                                   c.size > 1 and c[0] > c[-1])
        if info.kind == LATLON and dim == ydim:
            keep = (centres > -90) & (centres < 90)
            centres, bounds = centres[keep], np.clip(bounds[keep], -90, 90)
        attrs = {k: v for k, v in ds[dim].attrs.items() if k != "bounds"}
        attrs["bounds"] = f"{dim}_bounds"
        coords[dim] = (dim, centres * scale, attrs)
        coords[f"{dim}_bounds"] = ((dim, "bounds"), bounds * scale,
                                   {"units": attrs.get("units", "")})
    out = xr.Dataset(coords=coords)
    if info.grid_mapping is not None:
        out = out.assign_coords({info.grid_mapping[0]: info.grid_mapping[1].variable})
    return out
