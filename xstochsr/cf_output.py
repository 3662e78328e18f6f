"""CF metadata on the way out: grid_mapping, bounds, ``Conventions`` and a global ``history``.

A file opened with ``decode_coords="all"`` carries its ``grid_mapping`` and ``bounds``
names in ``.encoding``, not in ``.attrs``, and xarray writes them back only from there
or from attrs. This module finds them wherever they are, keeps the grid-mapping variable
beside a result, and builds the Dataset that is written to netCDF: the field, CF bounds
for its 1-D X/Y coordinates, its grid mapping, ``Conventions`` and a global ``history``
(that cf-xarray finds X, Y, T, bounds and grid_mapping in after reopening).

Examples
--------
>>> import numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"), name="t",
...     coords={"y": ("y", [0., 1.], {"axis": "Y", "units": "m"}),
...             "x": ("x", [0., 1., 2.], {"axis": "X", "units": "m"}),
...             "crs": ((), 0, {"grid_mapping_name": "lambert_azimuthal_equal_area"})})
>>> da.encoding["grid_mapping"] = "crs"
>>> ds = to_cf_dataset(da)
>>> ds["t"].attrs["grid_mapping"], ds.attrs["Conventions"], ds["x"].attrs["bounds"]
('crs', 'CF-1.8', 'x_bounds')
"""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["CONVENTIONS", "grid_mapping_name", "drop_stale_bounds", "keep_grid_mapping",
           "to_cf_dataset",
           "global_attrs", "netcdf_encoding"]

#: The CF version the written files follow.
CONVENTIONS = "CF-1.8"


def grid_mapping_name(obj: xr.DataArray) -> str | None:
    """Name of ``obj``'s grid-mapping variable, from attrs or (``decode_coords="all"``) encoding.

    A scalar coordinate with a ``grid_mapping_name`` or ``crs_wkt`` attribute counts too.
    """
    name = obj.attrs.get("grid_mapping") or obj.encoding.get("grid_mapping")
    if name:
        return str(name).split(":")[0].strip()
    for n, c in obj.coords.items():
        if c.ndim == 0 and ("grid_mapping_name" in c.attrs or "crs_wkt" in c.attrs):
            return str(n)
    return None


def keep_grid_mapping(src: xr.DataArray, out: xr.DataArray) -> xr.DataArray:
    """Give ``out`` the grid mapping of ``src``: the attribute and the variable as a coordinate.

    Parameters
    ----------
    src : xarray.DataArray
        The input (the attribute may sit in ``src.encoding``).
    out : xarray.DataArray
        A result on the same projection (downscaled: same CRS, finer cells).

    Returns
    -------
    xarray.DataArray
        ``out`` with ``attrs["grid_mapping"]`` and the grid-mapping coordinate, if
        ``src`` had one; else ``out`` unchanged.
    """
    name = grid_mapping_name(src)
    if not name:
        return out
    if name not in out.coords and name in src.coords and src.coords[name].ndim == 0:
        out = out.assign_coords({name: src.coords[name].variable})
    if name in out.coords:
        out.attrs["grid_mapping"] = name
    return out


def global_attrs(da: xr.DataArray, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the global attributes of a written file.

    ``extra`` (e.g. the input file's) first, then ``Conventions`` and ``history`` (the
    input's global history followed by ``da``'s lines).
    """
    attrs = dict(extra or {})
    lines = [ln for ln in str(attrs.get("history", "")).splitlines() if ln.strip()]
    for ln in str(da.attrs.get("history", "")).splitlines():
        if ln.strip() and ln not in lines:
            lines.append(ln)
    if lines:
        attrs["history"] = "\n".join(lines)
    attrs["Conventions"] = _newer_conventions(str(attrs.get("Conventions", "")))
    return attrs


def _newer_conventions(conv: str) -> str:
    """Return the input's ``CF-1.x`` string if it is at least :data:`CONVENTIONS`, else ours."""
    def _ver(s: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in s.strip().removeprefix("CF-").split("."))
        except ValueError:
            return ()

    mine = _ver(CONVENTIONS)
    theirs = _ver(conv.split()[0].split(",")[0]) if conv.strip().startswith("CF-") else ()
    return conv.strip() if theirs >= mine else CONVENTIONS


def drop_stale_bounds(ds: xr.Dataset) -> xr.Dataset:
    """Remove ``bounds`` names (attrs or encoding) that point at a wrong or missing variable.

    A coordinate may name as its bounds only a variable that exists and has the
    coordinate's own dimensions (a coarse ``x_coarse`` must not point at the fine
    ``x_bounds``: cf-xarray then fails to find X). Valid names move from ``encoding``
    (``decode_coords="all"``) to ``attrs``, where ``to_netcdf`` writes them. Returns a
    shallow copy.
    """
    ds = ds.copy(deep=False)
    for name in list(ds.variables):
        var = ds.variables[name]
        for store in (var.attrs, var.encoding):
            b = store.pop("bounds", None)
            target = ds.variables.get(str(b)) if b is not None else None
            if target is not None and set(var.dims) <= set(target.dims) and name != b:
                var.attrs["bounds"] = str(b)  # attrs: what to_netcdf writes
    return ds


def to_cf_dataset(da: xr.DataArray, *, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """Dataset of ``da`` ready for ``to_netcdf``: bounds, grid mapping, Conventions, history.

    Parameters
    ----------
    da : xarray.DataArray
        A field or ensemble with CF X/Y (``downscale``'s output, say).
    attrs : dict, optional
        Global attributes to start from (the input file's ``ds.attrs``).

    Returns
    -------
    xarray.Dataset
        One data variable named ``da.name`` (or ``"field"``); 1-D X/Y coordinates point
        at ``<dim>_bounds`` variables; ``grid_mapping`` names a kept grid-mapping
        coordinate; no coordinate carries a stale ``bounds`` name; global
        ``Conventions`` and ``history``. X, Y and T coordinates carry ``axis``.
    """
    from .grid import add_bounds, find_axes

    name = da.name if da.name is not None else "field"
    gm = grid_mapping_name(da)
    clean = da.copy(deep=False)
    clean.encoding = {k: v for k, v in da.encoding.items() if k not in ("grid_mapping",
                                                                        "coordinates")}
    for c in list(clean.coords):
        var = clean.coords[c]
        var.attrs = {k: v for k, v in var.attrs.items() if k != "bounds"}
        var.encoding = {k: v for k, v in var.encoding.items() if k != "bounds"}
    axes = find_axes(clean)
    for role, dim in (("X", axes.x), ("Y", axes.y), ("T", axes.t)):
        if dim is not None and dim in clean.coords and "axis" not in clean.coords[dim].attrs:
            clean.coords[dim].attrs["axis"] = role  # readers need not guess
    if axes.t is not None and axes.t in clean.coords:
        clean.coords[axes.t].attrs.setdefault("standard_name", "time")
    ds = add_bounds(clean.rename(name), axes)
    if gm and gm in ds.coords:
        ds[name].attrs["grid_mapping"] = gm
    else:
        ds[name].attrs.pop("grid_mapping", None)
    ds.attrs = global_attrs(da, attrs)
    return drop_stale_bounds(ds)


def netcdf_encoding(ds: xr.Dataset, *, complevel: int = 4) -> dict[str, dict[str, Any]]:
    """``to_netcdf`` encoding that zlib-compresses every floating or integer data variable."""
    enc = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fiu" and var.ndim > 0:
            enc[name] = {"zlib": True, "complevel": complevel}
    return enc
