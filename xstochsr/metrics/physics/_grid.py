"""Horizontal derivatives on CF grids, and the checks on wind pairs (private).

A grid is *projected* (x/y coordinates in a length unit, converted to metres with
pint) or *latitude/longitude* (1-D coordinates in degrees, found with cf-xarray).
On a sphere of radius :data:`EARTH_RADIUS` the metric terms are
``dx = R cos(lat) dlon`` and ``dy = R dlat``; a longitude that spans 360 degrees is
periodic. Curvilinear (2-D) latitude/longitude grids are not supported.

Derivatives are centred differences ``(f[i+1] - f[i-1]) / (x[i+1] - x[i-1])``. Where
one neighbour is missing (the edge of the domain or a NaN) the one-sided difference to
the other neighbour is used; where both are missing the derivative is NaN.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ...errors import InvalidInputError, MissingUnitsError, UnitsError
from .._inputs import _check_da, _spatial

#: Mean Earth radius (m), as in the issue and most meteorological software.
EARTH_RADIUS = 6.371e6
#: Earth's rotation rate (s-1).
OMEGA = 7.2921e-5
#: Standard gravity (m s-2), geopotential = STANDARD_GRAVITY * geopotential height.
STANDARD_GRAVITY = 9.80665

#: CF standard_name pairs of horizontal vector components (first: the x/east one).
VECTOR_PAIRS = (
    ("eastward_wind", "northward_wind"),
    ("x_wind", "y_wind"),
    ("eastward_sea_water_velocity", "northward_sea_water_velocity"),
    ("sea_water_x_velocity", "sea_water_y_velocity"),
    ("geostrophic_eastward_wind", "geostrophic_northward_wind"),
)
_FIRST = {a: b for a, b in VECTOR_PAIRS}
_SECOND = {b: a for a, b in VECTOR_PAIRS}


@dataclass(frozen=True)
class Grid:
    """Where a field lives: its spatial dims and what a derivative along them needs.

    Attributes
    ----------
    y, x : str
        Spatial dimension names.
    spherical : bool
        Latitude/longitude grid (coordinates in radians below) or projected (metres).
    yc, xc : numpy.ndarray
        Coordinates along y and x: metres, or radians of latitude and longitude.
    periodic : bool
        x wraps around (a longitude spanning 360 degrees).
    """

    y: Hashable
    x: Hashable
    spherical: bool
    yc: np.ndarray
    xc: np.ndarray
    periodic: bool

    @property
    def coslat(self) -> np.ndarray:
        """``cos(lat)`` along y, shape ``(Y, 1)`` (spherical grids only)."""
        return np.cos(self.yc)[:, None]


def _coord(da: xr.DataArray, dim: Hashable) -> xr.DataArray:
    if dim not in da.coords:
        raise InvalidInputError(
            f"The spatial dimension {dim!r} has no coordinate values, so grid spacing is "
            f"unknown. Assign them with units, e.g. da = da.assign_coords({dim}=("
            f"'{dim}', values, {{'units': 'km'}})) or degrees_north/degrees_east."
        )
    return da.coords[dim]


def _is_degrees(coord: xr.DataArray, kind: str) -> bool:
    sn = coord.attrs.get("standard_name")
    units = str(coord.attrs.get("units", "")).lower()
    return sn == kind or units in {
        "latitude": ("degrees_north", "degree_north", "degree_n", "degrees_n"),
        "longitude": ("degrees_east", "degree_east", "degree_e", "degrees_e"),
    }[kind]


def grid_of(da: xr.DataArray, y_dim=None, x_dim=None) -> Grid:
    """Find the spatial dims of ``da`` with cf-xarray and convert their coordinates.

    Raises
    ------
    InvalidInputError
        No coordinate values, or a non-monotonic coordinate.
    MissingUnitsError, UnitsError
        A projected coordinate without units, or in units that are not a length.
    """
    y, x = _spatial(da, y_dim, x_dim)
    cy, cx = _coord(da, y), _coord(da, x)
    lat, lon = _is_degrees(cy, "latitude"), _is_degrees(cx, "longitude")
    if lat != lon:
        raise InvalidInputError(
            f"One spatial coordinate is latitude/longitude and the other is not ({y!r}: "
            f"{cy.attrs.get('units')!r}, {x!r}: {cx.attrs.get('units')!r}). Give both "
            "degrees_north/degrees_east, or both projected lengths (e.g. 'km')."
        )
    yv = np.asarray(cy.values, dtype=float)
    xv = np.asarray(cx.values, dtype=float)
    for name, v in ((y, yv), (x, xv)):
        d = np.diff(v)
        if v.size < 2 or not (np.all(d > 0) or np.all(d < 0)):
            raise InvalidInputError(
                f"The coordinate {name!r} must be strictly monotonic with at least 2 values "
                "to take derivatives along it. Sort it first, e.g. da.sortby("
                f"{name!r})."
            )
    if lat:
        if np.any(np.abs(yv) > 90):
            raise InvalidInputError(f"Latitudes of {y!r} outside [-90, 90]: fix the coordinate.")
        step = float(np.median(np.abs(np.diff(xv))))
        periodic = bool(np.isclose(step * xv.size, 360.0, rtol=1e-3))
        return Grid(y, x, True, np.deg2rad(yv), np.deg2rad(xv), periodic)
    from ...units import affine

    out = []
    for name, c, v in ((y, cy, yv), (x, cx, xv)):
        units = c.attrs.get("units")
        if not units:
            raise MissingUnitsError(
                f"The coordinate {name!r} has no 'units', so the grid spacing is unknown. "
                f"Set it, e.g. da[{name!r}].attrs['units'] = 'km' (or 'm'; "
                "degrees_north/degrees_east for latitude/longitude)."
            )
        try:
            a, b = affine(str(units), "m")
        except UnitsError as err:
            raise UnitsError(
                f"The coordinate {name!r} is in {units!r}, not a length: {err}"
            ) from err
        out.append(a * v + b)
    return Grid(y, x, False, out[0], out[1], False)


def derivative(f: np.ndarray, c: np.ndarray, axis: int, periodic: bool = False,
               period: float = 2 * np.pi) -> np.ndarray:
    """``df/dc`` along ``axis`` of ``f``: centred, one-sided next to edges and NaN.

    Parameters
    ----------
    f : numpy.ndarray
        Field(s), any shape.
    c : numpy.ndarray
        Coordinate values along ``axis`` (monotonic), shape ``(f.shape[axis],)``.
    axis : int
        Axis to differentiate along.
    periodic : bool, default False
        Whether the axis wraps (then ``period`` is added across the seam).
    """
    f = np.moveaxis(np.asarray(f, dtype=np.float64), axis, -1)
    c = np.asarray(c, dtype=np.float64)
    n = f.shape[-1]
    if periodic:
        fp = np.concatenate([f[..., -1:], f, f[..., :1]], axis=-1)
        sign = 1.0 if c[-1] > c[0] else -1.0
        cp = np.concatenate([[c[-1] - sign * period], c, [c[0] + sign * period]])
    else:
        nanpad = np.full(f.shape[:-1] + (1,), np.nan)
        fp = np.concatenate([nanpad, f, nanpad], axis=-1)
        cp = np.concatenate([[np.nan], c, [np.nan]])
    with np.errstate(invalid="ignore"):
        fwd = (fp[..., 2:] - fp[..., 1:-1]) / (cp[2:] - cp[1:-1])
        bwd = (fp[..., 1:-1] - fp[..., :-2]) / (cp[1:-1] - cp[:-2])
        ctr = (fp[..., 2:] - fp[..., :-2]) / (cp[2:] - cp[:-2])
    ok_f, ok_b = np.isfinite(fwd), np.isfinite(bwd)
    out = np.where(ok_f & ok_b, ctr, np.where(ok_f, fwd, np.where(ok_b, bwd, np.nan)))
    assert out.shape[-1] == n
    return np.moveaxis(out, -1, axis)


def _sn(da) -> str | None:
    return da.attrs.get("standard_name")


def check_pair(u, v, *, what: str = "u, v") -> tuple[xr.DataArray, xr.DataArray]:
    """Check that ``u`` and ``v`` are the two components of one vector on one grid.

    Returns ``u`` and ``v`` aligned, both converted to m s-1 (attrs kept).

    Raises
    ------
    InvalidInputError
        ``v`` missing, standard_names that are not an (x, y) pair, or different grids.
    MissingUnitsError, UnitsError
        Units missing, not a velocity, or not convertible into each other.
    """
    if v is None:
        raise InvalidInputError(
            f"Got the component u ({_sn(u) or getattr(u, 'name', None)!r}) without v: "
            "divergence, vorticity and kinetic energy need both horizontal components. "
            "Pass v too, e.g. vorticity(ds['ua'], ds['va']), or a Dataset holding both."
        )
    u, v = _check_da(u, "u"), _check_da(v, "v")
    su, sv = _sn(u), _sn(v)
    if su in _SECOND or sv in _FIRST:
        raise InvalidInputError(
            f"u has standard_name {su!r} and v {sv!r}: the components are swapped. "
            "Pass the x/eastward component first."
        )
    for name, sn, table in (("u", su, _FIRST), ("v", sv, _SECOND)):
        if sn is not None and sn not in table:
            raise InvalidInputError(
                f"{name} has standard_name {sn!r}, which is not a horizontal vector "
                f"component; expected one of {sorted(table)}. Pass a wind or current "
                "component (a scalar field such as geopotential height has no divergence)."
            )
    if su is not None and sv is not None and _FIRST[su] != sv:
        raise InvalidInputError(
            f"u ({su!r}) and v ({sv!r}) are components of different vectors; pass a "
            f"matching pair, e.g. {su!r} with {_FIRST[su]!r}."
        )
    if u.dims != v.dims:
        try:
            v = v.transpose(*u.dims)
        except ValueError as err:
            raise InvalidInputError(
                f"u and v have different dimensions ({u.dims} and {v.dims}); they must "
                "be on one grid."
            ) from err
    try:
        u, v = xr.align(u, v, join="exact")
    except ValueError as err:
        raise InvalidInputError(
            "u and v are on different grids (e.g. a staggered Arakawa C grid): "
            f"{err}. Interpolate one onto the other first, e.g. v = v.interp_like(u)."
        ) from err
    from ...units import to_units

    out = []
    for name, c in (("u", u), ("v", v)):
        try:
            out.append(to_units(c, "m s-1", expected="a velocity (e.g. 'm s-1')"))
        except MissingUnitsError as err:
            raise MissingUnitsError(
                f"{name} has no 'units' attribute. Set it, e.g. {name}.attrs['units'] = "
                "'m s-1'."
            ) from err
    return out[0], out[1]


def find_pair(ds: xr.Dataset) -> tuple[str, str]:
    """Names of the (x, y) vector components in ``ds``, found by CF standard_name."""
    if not isinstance(ds, xr.Dataset):
        raise InvalidInputError(f"Expected an xarray.Dataset, got {type(ds).__name__}.")
    by_sn = {ds[n].attrs.get("standard_name"): n for n in ds.data_vars}
    for a, b in VECTOR_PAIRS:
        if a in by_sn and b in by_sn:
            return by_sn[a], by_sn[b]
        if a in by_sn or b in by_sn:
            have, lack = (a, b) if a in by_sn else (b, a)
            raise InvalidInputError(
                f"The Dataset holds {by_sn[have]!r} ({have}) but no variable with "
                f"standard_name {lack!r}: both components are needed. Add it, or set its "
                "standard_name attribute."
            )
    raise InvalidInputError(
        f"No wind pair found among {list(ds.data_vars)} by CF standard_name (expected "
        f"one of {[list(p) for p in VECTOR_PAIRS[:4]]}). Set the standard_name attributes "
        "or pass the components explicitly."
    )


def apply_2d(func, *arrays: xr.DataArray, grid: Grid) -> xr.DataArray:
    """Run ``func(*numpy arrays (..., Y, X))`` over the horizontal dims of ``arrays``."""
    y, x = grid.y, grid.x
    if any(a.chunks is not None for a in arrays):
        arrays = tuple(a.chunk({y: -1, x: -1}) for a in arrays)
    return xr.apply_ufunc(
        func,
        *arrays,
        input_core_dims=[[y, x]] * len(arrays),
        output_core_dims=[[y, x]],
        dask="parallelized",
        output_dtypes=[np.float64],
    ).transpose(*arrays[0].dims)
