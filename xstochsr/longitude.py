"""Longitudes that wrap: unwrap a domain crossing 0 or 180 degrees, and wrap results back.

Europe stored in 0..360 longitudes reads 350, 350.25, ..., 359.75, 0, 0.25, ..., 5.75
(or, sorted, 0..5.75 then 350..359.75); the Pacific in -180..180 reads 170..179.75,
-180..-170. Neither is monotonic and evenly spaced as stored, yet both are one regular
strip of the sphere. :func:`unwrap` reorders the X axis (when sorted) and adds 360 where
it wraps, so the strip is increasing and evenly spaced; :func:`rewrap` maps a result's
longitudes back into the user's convention (``[0, 360)`` or ``[-180, 180)``) and order.

Examples
--------
>>> import numpy as np, xarray as xr
>>> lon = np.r_[np.arange(350, 360, 0.5), np.arange(0, 6, 0.5)]
>>> da = xr.DataArray(np.zeros((3, lon.size)), dims=("lat", "lon"),
...     coords={"lat": [0., 1., 2.], "lon": ("lon", lon, {"units": "degrees_east"})})
>>> u, how = unwrap(da, "lon")
>>> float(u.lon[-1]), how is not None
(365.5, True)
>>> bool((rewrap(u, how).lon == da.lon).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["Unwrapped", "is_longitude", "unwrap", "rewrap"]

_LON_NAMES = ("lon", "longitude", "nav_lon", "glamt", "rlon")


@dataclass(frozen=True)
class Unwrapped:
    """How a longitude axis was unwrapped (what :func:`rewrap` undoes).

    Attributes
    ----------
    dim : str
        The X dimension.
    low : float
        Lower end of the user's convention: 0 for ``[0, 360)``, -180 for ``[-180, 180)``.
    sorted_input : bool
        The input was sorted ascending (so the output is sorted back).
    """

    dim: str
    low: float
    sorted_input: bool


def is_longitude(coord: xr.DataArray, name: str = "") -> bool:
    """Whether a 1-D coordinate holds longitudes (CF attrs, else a usual name)."""
    units = str(coord.attrs.get("units", "")).lower()
    if coord.attrs.get("standard_name") == "longitude":
        return True
    if units.startswith("degree") and ("east" in units or units.endswith("e")):
        return True
    return not units and str(name or coord.name).lower() in _LON_NAMES


def _regular(v: np.ndarray, rtol: float = 1e-2) -> bool:
    d = np.diff(v)
    return v.size > 1 and bool(np.all(d > 0)) and \
        float(np.max(np.abs(d - np.median(d)))) <= rtol * float(np.median(d))


def unwrap(da: xr.DataArray, dim: str) -> tuple[xr.DataArray, Unwrapped | None]:
    """Make a wrapping longitude axis ``dim`` increasing and evenly spaced.

    Parameters
    ----------
    da : xarray.DataArray
    dim : str
        The X dimension (see :func:`xstochsr.grid.find_axes`).

    Returns
    -------
    da : xarray.DataArray
        Unchanged if ``dim`` is not a longitude coordinate or does not wrap (or cannot be
        made regular by unwrapping); else reordered along ``dim`` if needed, with
        longitudes increasing past 360 (or 180).
    how : Unwrapped or None
        What :func:`rewrap` needs, None if nothing was done.
    """
    if dim not in da.coords or da.coords[dim].ndim != 1 or da.sizes[dim] < 3:
        return da, None
    coord = da.coords[dim]
    if not is_longitude(coord, dim):
        return da, None
    v = np.asarray(coord.values, dtype=float)
    if _regular(v) or _regular(-v) or not np.all(np.isfinite(v)):
        return da, None
    low = -180.0 if np.min(v) < 0 else 0.0
    w = np.mod(v - low, 360.0) + low  # all in the user's convention
    order = np.argsort(w, kind="stable")
    ws = w[order]
    gaps = np.diff(np.r_[ws, ws[0] + 360.0])
    start = int(np.argmax(gaps)) + 1  # first cell after the widest gap: the strip's west end
    idx = np.roll(order, -start) if start < ws.size else order
    strip = np.unwrap(w[idx], period=360.0)
    if not _regular(strip):
        return da, None
    sorted_input = bool(np.all(np.diff(v) > 0))
    out = da.isel({dim: idx}) if not np.array_equal(idx, np.arange(v.size)) else da
    out = out.assign_coords({dim: xr.Variable(coord.dims, strip.astype(coord.dtype),
                                              coord.attrs)})
    return out, Unwrapped(dim=dim, low=low, sorted_input=sorted_input)


def rewrap(result: xr.DataArray, how: Unwrapped | None) -> xr.DataArray:
    """Map ``result``'s longitudes along ``how.dim`` back into the user's convention.

    The fine grid of an unwrapped strip (or any result on it) gets longitudes in
    ``[low, low + 360)`` again, sorted ascending if the input was.
    """
    if how is None or how.dim not in result.coords:
        return result
    c = result.coords[how.dim]
    v = np.mod(np.asarray(c.values, dtype=float) - how.low, 360.0) + how.low
    out = result.assign_coords({how.dim: xr.Variable(c.dims, v.astype(c.dtype), c.attrs)})
    if how.sorted_input:
        out = out.sortby(how.dim)
    return out
