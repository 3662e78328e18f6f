"""Describe the horizontal grid of a field or a target: kind, centres, bounds, CRS.

Axes come from :func:`xstochsr.grid.find_axes` (cf-xarray). Missing bounds are built
with cf-xarray's ``add_bounds`` (1-D: midpoints; 2-D curvilinear: averaged corners).
Projected coordinates are converted to metres internally with pint, so a source in m
and a target in km line up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import InvalidInputError, RegridError, missing_dependency
from ..grid import Axes, find_axes

#: Mean Earth radius (m), as pyresample and ESMF use for great-circle distances.
EARTH_RADIUS = 6_371_000.0
M_PER_DEGREE = EARTH_RADIUS * np.pi / 180.0

LATLON, PROJECTED, CURVILINEAR = "latlon", "projected", "curvilinear"


@dataclass
class GridInfo:
    """The horizontal grid of a field or target.

    ``x``/``y`` are 1-D centres (degrees for lat/lon, metres for projected) and
    ``xb``/``yb`` their ``(n, 2)`` bounds; ``lon2d``/``lat2d`` are set for curvilinear
    grids. ``coords`` are the coordinates that live on the spatial dims (carried to a
    regridded output), ``bounds`` the CF bounds variables of those coordinates.
    """

    kind: str
    axes: Axes
    shape: tuple[int, int]
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    xb: np.ndarray | None = None
    yb: np.ndarray | None = None
    lon2d: np.ndarray | None = None
    lat2d: np.ndarray | None = None
    coords: dict = field(default_factory=dict)
    bounds: dict = field(default_factory=dict)
    grid_mapping: tuple[str, xr.DataArray] | None = None
    xunits: str = ""

    @property
    def dims(self) -> tuple[str, str]:
        """``(y, x)`` dimension names."""
        return self.axes.y, self.axes.x

    @property
    def rectilinear(self) -> bool:
        """True for 1-D X/Y coordinates (lat/lon or projected)."""
        return self.kind != CURVILINEAR

    @property
    def periodic(self) -> bool:
        """True for a lat/lon grid whose longitudes span the globe."""
        if self.kind != LATLON:
            return False
        return abs(float(np.sum(np.abs(self.xb[:, 1] - self.xb[:, 0]))) - 360.0) < 1e-6 * 360

    def crs(self):
        """Return the pyproj CRS of the grid's grid_mapping, or None."""
        if self.grid_mapping is None:
            return None
        pyproj = import_pyproj()
        try:
            return pyproj.CRS.from_cf(dict(self.grid_mapping[1].attrs))
        except Exception as err:  # pyproj raises several types
            raise RegridError(
                f"Cannot read the grid_mapping variable {self.grid_mapping[0]!r} as a CRS "
                f"({err}). Give it CF attributes (grid_mapping_name, ...) or a crs_wkt."
            ) from err

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """2-D longitude and latitude of the cell centres, shape ``(ny, nx)``."""
        if self.kind == CURVILINEAR:
            return self.lon2d, self.lat2d
        if self.kind == LATLON:
            lon, lat = np.meshgrid(self.x, self.y)
            return lon, lat
        crs = self.crs()
        if crs is None:
            raise RegridError(
                "A projected x/y grid without a grid_mapping cannot be related to longitude "
                "and latitude. Add a CF grid_mapping variable (e.g. with "
                "pyproj.CRS(...).to_cf()) and set the attribute grid_mapping on the field."
            )
        pyproj = import_pyproj()
        tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        xx, yy = np.meshgrid(self.x, self.y)
        return tr.transform(xx, yy)


def import_pyproj():
    """Import pyproj or raise the error that names the extra."""
    try:
        import pyproj
    except ImportError as err:
        raise missing_dependency("pyproj", "regrid", "Regridding between projections") from err
    return pyproj


def _is_degrees(coord: xr.DataArray) -> bool:
    units = str(coord.attrs.get("units", "")).lower()
    sn = coord.attrs.get("standard_name", "")
    return units.startswith("degree") or sn in ("longitude", "latitude", "grid_longitude",
                                                "grid_latitude")


def _to_metres(values: np.ndarray, units: str, name: str) -> np.ndarray:
    from cf_xarray.units import units as ureg

    if not units:
        return np.asarray(values, dtype=float)
    try:
        factor = ureg.Quantity(1.0, units).to("m").magnitude
    except Exception as err:  # pint raises several types
        raise RegridError(
            f"The projected coordinate {name!r} has units {units!r}, which are not a "
            "length. Set units='m' (or 'km') on it."
        ) from err
    return np.asarray(values, dtype=float) * factor


def _bounds_names(ds: xr.Dataset) -> set[str]:
    names = {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}
    return {n for n in names if n in ds.variables}


def _grid_mapping_names(ds: xr.Dataset) -> set[str]:
    out = {str(v.attrs["grid_mapping"]) for v in ds.variables.values()
           if "grid_mapping" in v.attrs}
    out |= {str(k) for k, v in ds.variables.items() if "grid_mapping_name" in v.attrs
            or "crs_wkt" in v.attrs and v.ndim == 0}
    return {n for n in out if n in ds.variables}


def as_dataset(obj: xr.DataArray | xr.Dataset) -> xr.Dataset:
    """Return a Dataset view of ``obj`` (a DataArray keeps its name or becomes ``"field"``)."""
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "field")
    if isinstance(obj, xr.Dataset):
        return obj
    raise InvalidInputError(
        f"A target grid must be an xarray Dataset or DataArray, got {type(obj).__name__}."
    )


def template(ds: xr.Dataset) -> xr.DataArray:
    """Return a DataArray carrying the grid coordinates of ``ds`` (for :func:`find_axes`)."""
    skip = _bounds_names(ds) | _grid_mapping_names(ds)
    for name, var in ds.data_vars.items():
        if name not in skip and var.ndim >= 2:
            return var
    coords = {k: v for k, v in ds.coords.items() if k not in skip}
    dims: list[str] = []
    for v in coords.values():
        dims += [d for d in v.dims if d not in dims]
    if len(dims) < 2:
        raise RegridError(
            f"The target grid has coordinates {list(coords)} on dims {dims}: it needs X and "
            "Y (1-D lat/lon, projected x/y, or 2-D lat/lon on two dims)."
        )
    shape = tuple(ds.sizes[d] for d in dims)
    return xr.DataArray(np.broadcast_to(np.float32(0), shape), dims=dims,
                        coords={k: v.variable for k, v in coords.items()})


def describe(obj: xr.DataArray | xr.Dataset, axes: Axes | None = None) -> GridInfo:
    """Build the :class:`GridInfo` of a field or target grid."""
    ds = as_dataset(obj)
    tmpl = obj if isinstance(obj, xr.DataArray) else template(ds)
    axes = axes or find_axes(tmpl)
    ydim, xdim = axes.y, axes.x
    shape = (tmpl.sizes[ydim], tmpl.sizes[xdim])
    skip = _bounds_names(ds) | _grid_mapping_names(ds)
    coords = {k: v for k, v in tmpl.coords.items()
              if k not in skip and v.ndim > 0 and set(v.dims) <= {xdim, ydim}}
    have_1d = xdim in tmpl.coords and ydim in tmpl.coords
    gm = _find_grid_mapping(ds, tmpl)

    info: GridInfo
    if have_1d and not (_is_degrees(tmpl[xdim]) != _is_degrees(tmpl[ydim])):
        xc, yc = tmpl[xdim], tmpl[ydim]
        kind = LATLON if _is_degrees(xc) else PROJECTED
        xb = _bounds_1d(ds, xdim)
        yb = _bounds_1d(ds, ydim)
        xv = np.asarray(xc.values, dtype=float)
        yv = np.asarray(yc.values, dtype=float)
        if kind == PROJECTED:
            xu = str(xc.attrs.get("units", ""))
            yu = str(yc.attrs.get("units", ""))
            xv, xb = _to_metres(xv, xu, xdim), _to_metres(xb, xu, xdim)
            yv, yb = _to_metres(yv, yu, ydim), _to_metres(yb, yu, ydim)
        else:
            yb = np.clip(yb, -90.0, 90.0)
        info = GridInfo(kind, axes, shape, x=xv, y=yv, xb=xb, yb=yb,
                        xunits=str(xc.attrs.get("units", "")))
    elif axes.lon is not None and axes.lat is not None:
        lon = tmpl[axes.lon].transpose(ydim, xdim).values.astype(float)
        lat = tmpl[axes.lat].transpose(ydim, xdim).values.astype(float)
        info = GridInfo(CURVILINEAR, axes, shape, lon2d=lon, lat2d=lat)
    else:
        raise RegridError(
            f"Cannot tell the grid of {tmpl.name or 'the field'!r}: dims {tuple(tmpl.dims)}, "
            f"coordinates {list(tmpl.coords)}. It needs 1-D X/Y coordinate variables "
            "(lat/lon in degrees or projected x/y with units) or 2-D latitude/longitude."
        )
    info.coords = coords
    info.grid_mapping = gm
    info.bounds = _bounds_vars(ds, info)
    return info


def _find_grid_mapping(ds: xr.Dataset, tmpl: xr.DataArray):
    name = tmpl.attrs.get("grid_mapping") or tmpl.encoding.get("grid_mapping")
    if name and str(name) in ds.variables:
        return str(name), xr.DataArray(ds[str(name)].variable)
    for n in sorted(_grid_mapping_names(ds)):
        return n, xr.DataArray(ds[n].variable)
    return None


def _bounds_1d(ds: xr.Dataset, dim: str) -> np.ndarray:
    """``(n, 2)`` bounds of a 1-D coordinate: the CF bounds variable, else cf-xarray's guess."""
    coord = ds[dim]
    bname = coord.attrs.get("bounds")
    if bname and bname in ds.variables:
        b = ds[bname]
        other = [d for d in b.dims if d != dim]
        return np.asarray(b.transpose(dim, *other).values, dtype=float)
    if coord.size < 2:
        raise RegridError(
            f"Cannot infer cell bounds of {dim!r} from a single value. Provide a CF bounds "
            f"variable (ds[{dim!r}].attrs['bounds'] = '{dim}_bounds')."
        )
    guessed = xr.Dataset(coords={dim: coord.variable}).cf.add_bounds(dim, dim=dim)
    return np.asarray(guessed[f"{dim}_bounds"].transpose(dim, ...).values, dtype=float)


def _bounds_vars(ds: xr.Dataset, info: GridInfo) -> dict[str, xr.DataArray]:
    """CF bounds variables for the grid's coordinates, taken from ``ds`` or built."""
    out: dict[str, xr.DataArray] = {}
    ydim, xdim = info.dims
    if info.rectilinear:
        for dim, c in ((xdim, ds[xdim]), (ydim, ds[ydim])):
            bname = c.attrs.get("bounds")
            if bname and bname in ds.variables:
                out[dim] = ds[bname].reset_coords(drop=True).variable
            else:
                vals = _bounds_1d(ds, dim)
                if info.kind == LATLON and dim == ydim:
                    vals = np.clip(vals, -90.0, 90.0)
                out[dim] = xr.Variable((dim, "bounds"), vals.astype(c.dtype, copy=False),
                                       {"units": c.attrs.get("units", "")})
        return out
    for name in (info.axes.lon, info.axes.lat):
        c = ds[name]
        bname = c.attrs.get("bounds")
        if bname and bname in ds.variables:
            out[name] = ds[bname].reset_coords(drop=True).variable
            continue
        guessed = xr.Dataset(coords={name: c.variable}).cf.add_bounds(name, dim=[ydim, xdim])
        b = guessed[f"{name}_bounds"].transpose(ydim, xdim, "bounds")
        attrs = {"units": c.attrs.get("units", "")}
        out[name] = xr.Variable(b.dims, b.values, attrs)
    return out


def spacing_of(info: GridInfo) -> tuple[float, float, str]:
    """Median ``(dx, dy, units)`` of a grid (degrees for lat/lon, m otherwise)."""
    if info.kind == LATLON:
        return (float(np.median(np.abs(np.diff(info.x)))),
                float(np.median(np.abs(np.diff(info.y)))), "degree")
    if info.kind == PROJECTED:
        return (float(np.median(np.abs(np.diff(info.x)))),
                float(np.median(np.abs(np.diff(info.y)))), "m")
    lon, lat = np.radians(info.lon2d), np.radians(info.lat2d)
    dx = _great_circle(lon[:, 1:], lat[:, 1:], lon[:, :-1], lat[:, :-1])
    dy = _great_circle(lon[1:], lat[1:], lon[:-1], lat[:-1])
    return float(np.median(dx)), float(np.median(dy)), "m"


def _great_circle(lon1, lat1, lon2, lat2):
    h = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
