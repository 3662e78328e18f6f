"""Regridding backends behind one small interface.

A backend is a class with ``name``, ``package``, ``available()`` and
``regrid(da, src, tgt, method, skipna)``. ``da`` arrives with its spatial dims renamed
to ``SRC_DIMS`` (last two dims) and the result has ``TGT_DIMS`` instead; the public
:func:`xstochsr.regrid.regrid` renames, attaches coordinates and attributes.

- ``"xesmf"``: ESMF weights, any grid pair and method (conda-forge only; not tested on
  machines where it does not import).
- ``"xarray-regrid"``: rectilinear grids in one coordinate system. Bilinear and nearest
  call xarray-regrid on a source padded by one edge cell (xarray-regrid leaves NaN
  wherever a target centre lies outside the source's outer cell *centres*). Conservative
  uses exact factorised overlap weights (see :func:`overlap_weights`), which is the
  algorithm xarray-regrid uses, done without its two inaccuracies: xarray-regrid
  approximates the spherical cell-area weights from the median latitude spacing (about
  4e-7 relative error on a 1-degree grid, more near the poles) and also NaN-masks
  target cells whose centre lies outside the source centres.
- ``"pyresample"``: everything that involves a curvilinear grid or two coordinate
  systems, bilinear and nearest only. From a rectilinear source, target points are
  located in the source's own coordinates (pyproj for projections) and interpolated
  with xarray: exact bilinear in the source grid. From a curvilinear source, nearest
  uses pyresample's KD-tree; bilinear inverts each source cell's bilinear map
  (:func:`curvilinear_bilinear`), exact for linear fields on affine grids, where
  pyresample's own bilinear (four nearest corners by quadrant) is off by ~1e-2 on a
  sheared grid and needs a regular target. pyresample has no conservative method
  (its bucket average is not conservative), so conservative is refused with the fix
  (xesmf from conda-forge).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings

import numpy as np
import xarray as xr

from ..errors import MissingDependencyError, RegridError, missing_dependency
from ._grids import LATLON, GridInfo, import_pyproj

SRC_DIMS = ("__src_y", "__src_x")
TGT_DIMS = ("__tgt_y", "__tgt_x")
METHODS = ("conservative", "bilinear", "nearest")
_SY, _SX = SRC_DIMS
_AVAILABLE: dict[str, bool] = {}
_TY, _TX = TGT_DIMS


def _need(package: str):
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise missing_dependency(package, "regrid", "Regridding") from err


def same_system(src: GridInfo, tgt: GridInfo) -> bool:
    """Tell whether both grids are rectilinear in one coordinate system."""
    if not (src.rectilinear and tgt.rectilinear) or src.kind != tgt.kind:
        return False
    if src.kind == LATLON:
        return True
    a, b = src.crs() if src.grid_mapping else None, tgt.crs() if tgt.grid_mapping else None
    return a is None or b is None or a == b


# --- exact conservative weights -----------------------------------------------------------


def overlap_weights(sb: np.ndarray, tb: np.ndarray, *, sine: bool = False,
                    period: float | None = None) -> np.ndarray:
    """Overlap measure ``(n_src, n_tgt)`` of 1-D cells with bounds ``sb`` and ``tb``.

    With ``sine=True`` (latitude) the measure is ``sin(lat_hi) - sin(lat_lo)``: the area
    of a lat/lon cell is ``R**2 * dlon * (sin(lat_hi) - sin(lat_lo))``, so the 2-D overlap
    area factorises exactly into a longitude and a latitude part. With ``period`` (360
    for longitude) source cells shifted by +-period are counted too.
    """
    s = np.sort(np.asarray(sb, dtype=float), axis=1)
    t = np.sort(np.asarray(tb, dtype=float), axis=1)
    shifts = (-period, 0.0, period) if period else (0.0,)
    w = np.zeros((s.shape[0], t.shape[0]))
    for sh in shifts:
        lo = np.maximum(s[:, :1] + sh, t[None, :, 0])
        hi = np.minimum(s[:, 1:] + sh, t[None, :, 1])
        if sine:
            ov = np.where(hi > lo, np.sin(np.radians(hi)) - np.sin(np.radians(lo)), 0.0)
        else:
            ov = np.where(hi > lo, hi - lo, 0.0)
        w += ov
    width = np.abs(np.diff(np.sin(np.radians(s)) if sine else s, axis=1))
    w[w < 1e-9 * width] = 0.0  # slivers from rounding where bounds meet
    return w


def _sparse_apply(a: np.ndarray, wy, wx) -> np.ndarray:
    """Contract the last two axes of ``a`` (..., ny_src, nx_src) with sparse weights.

    ``wy`` (n_src_y, n_tgt_y) and ``wx`` (n_src_x, n_tgt_x) are scipy CSC/CSR matrices;
    returns (..., ny_tgt, nx_tgt) in float64. Two sparse products, one per axis: the
    overlap matrices of 1-D cells have a few non-zeros per row, so this costs
    O(n_src) per slice instead of the dense O(n_src * n_tgt).
    """
    lead = a.shape[:-2]
    sy, sx = a.shape[-2:]
    a2 = np.ascontiguousarray(a, dtype=np.float64).reshape(-1, sx)          # (N*sy, sx)
    t1 = np.asarray((wx.T @ a2.T).T)                                        # (N*sy, tx)
    tx = t1.shape[-1]
    t1 = t1.reshape(-1, sy, tx).transpose(1, 0, 2).reshape(sy, -1)          # (sy, N*tx)
    t2 = np.asarray(wy.T @ t1)                                              # (ty, N*tx)
    ty = t2.shape[0]
    return t2.reshape(ty, -1, tx).transpose(1, 0, 2).reshape(*lead, ty, tx)


def conservative_rectilinear(da: xr.DataArray, src: GridInfo, tgt: GridInfo,
                             skipna: bool) -> xr.DataArray:
    """Exact area-weighted regridding between rectilinear grids; NaN-aware, lazy.

    The 2-D overlap areas factorise into a Y and an X part (:func:`overlap_weights`);
    each is held as a scipy sparse matrix and applied axis by axis
    (:func:`_sparse_apply`), to the values and to the valid-cell mask.
    """
    from scipy import sparse

    sphere = src.kind == LATLON
    wy = overlap_weights(src.yb, tgt.yb, sine=sphere)
    wx = overlap_weights(src.xb, tgt.xb, period=360.0 if sphere else None)
    Wy, Wx = sparse.csr_matrix(wy), sparse.csr_matrix(wx)
    total = np.outer(wy.sum(0), wx.sum(0))  # (ty, tx) overlap of each target cell
    thresh = 1e-12 * total.max() if total.size else 0.0

    def _kernel(a: np.ndarray) -> np.ndarray:
        valid = np.isfinite(a)
        num = _sparse_apply(np.where(valid, a, 0.0), Wy, Wx)
        if skipna:
            den = _sparse_apply(valid.astype(np.float64), Wy, Wx)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(den > thresh, num / np.where(den > thresh, den, 1.0), np.nan)
        bad = _sparse_apply((~valid).astype(np.float64), Wy, Wx) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(total > 0, num / np.where(total > 0, total, 1.0), np.nan)
        return np.where(bad, np.nan, out)

    data = da.reset_coords(drop=True).drop_vars([_SY, _SX], errors="ignore")
    return xr.apply_ufunc(
        _kernel, data, input_core_dims=[[_SY, _SX]], output_core_dims=[[_TY, _TX]],
        dask="parallelized", output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {_TY: wy.shape[1], _TX: wx.shape[1]},
                            "allow_rechunk": True},
    )


# --- backends -----------------------------------------------------------------------------


class Backend:
    """Interface of a regridding backend."""

    name: str = ""
    package: str | None = None
    methods: tuple[str, ...] = METHODS

    @classmethod
    def available(cls) -> bool:
        """Tell whether the backend's package imports (xesmf can install yet fail to import)."""
        if cls.package is None:
            return True
        if cls.package not in _AVAILABLE:
            try:
                importlib.import_module(cls.package)
                _AVAILABLE[cls.package] = True
            except Exception:  # ImportError, or ESMF failing to load its library
                _AVAILABLE[cls.package] = False
        return _AVAILABLE[cls.package]

    def check(self, src: GridInfo, tgt: GridInfo, method: str) -> None:
        """Raise :class:`RegridError` if this backend cannot do ``method`` here."""

    def regrid(self, da: xr.DataArray, src: GridInfo, tgt: GridInfo, method: str,
               skipna: bool) -> xr.DataArray:
        """Regrid ``da`` (dims ``(..., *SRC_DIMS)``) to ``(..., *TGT_DIMS)``."""
        raise NotImplementedError


def _pad_edges(da: xr.DataArray, src: GridInfo) -> xr.DataArray:
    """Sort ascending and add one cell on each side along ``SRC_DIMS``.

    The added cells sit on the source's outer bounds with the edge values (or the
    wrapped neighbour for a global longitude axis), so interpolation reaches every
    target centre inside the source domain and nothing beyond it.
    """
    da = da.assign_coords({_SY: src.y, _SX: src.x}).sortby([_SY, _SX])
    for dim, b in ((_SY, src.yb), (_SX, src.xb)):
        c = da[dim].values
        if dim == _SX and src.periodic:
            da = da.pad({dim: (1, 1)}, mode="wrap")
            new = np.concatenate([[c[-1] - 360.0], c, [c[0] + 360.0]])
        else:
            da = da.pad({dim: (1, 1)}, mode="edge")
            new = np.concatenate([[np.min(b)], c, [np.max(b)]])
        da = da.assign_coords({dim: new})
    return da


def _lon_into(lon: np.ndarray, src: GridInfo) -> np.ndarray:
    """Shift longitudes by multiples of 360 into the source's longitude range."""
    lo = float(np.min(src.xb)) if not src.periodic else float(np.min(src.x)) - 180.0
    return lo + np.mod(np.asarray(lon, dtype=float) - lo, 360.0)


class XarrayRegridBackend(Backend):
    """Rectilinear grids in one coordinate system (xarray-regrid + exact conservative)."""

    name = "xarray-regrid"
    package = "xarray_regrid"

    def check(self, src, tgt, method):  # noqa: D102
        if not same_system(src, tgt):
            raise RegridError(
                f"The 'xarray-regrid' backend handles rectilinear grids in one coordinate "
                f"system; here the source is {src.kind} and the target {tgt.kind}. Use "
                "backend='pyresample' (bilinear/nearest) or 'xesmf', or backend=None."
            )

    def regrid(self, da, src, tgt, method, skipna):  # noqa: D102
        if method == "conservative":
            return conservative_rectilinear(da, src, tgt, skipna)
        _need("xarray_regrid")
        padded = _pad_edges(da.reset_coords(drop=True), src)
        tx = _lon_into(tgt.x, src) if src.kind == LATLON else tgt.x
        target = xr.Dataset(coords={_SY: tgt.y, _SX: tx})
        fn = padded.regrid.linear if method == "bilinear" else padded.regrid.nearest
        out = fn(target, time_dim=None)
        return out.rename({_SY: _TY, _SX: _TX}).drop_vars([_TY, _TX])


class PyresampleBackend(Backend):
    """Curvilinear grids, or two coordinate systems: bilinear and nearest only."""

    name = "pyresample"
    package = "pyresample"
    methods = ("bilinear", "nearest")

    def check(self, src, tgt, method):  # noqa: D102
        if method == "conservative":
            raise RegridError(
                f"Conservative regridding from a {src.kind} to a {tgt.kind} grid needs "
                "xesmf (conda install -c conda-forge xesmf; then backend='xesmf'): "
                "pyresample has no conservative method (its bucket average is not "
                "conservative). Alternatives: method='bilinear' or 'nearest', or a target "
                "grid in the source's own coordinates (1-D lat/lon, or x/y in the same "
                "projection), where conservative regridding is exact."
            )

    def regrid(self, da, src, tgt, method, skipna):  # noqa: D102
        if src.rectilinear:
            return self._from_rectilinear(da, src, tgt, method)
        if method == "nearest":
            _need("pyresample")
            return _apply_points(da, *_pyresample_nearest(src, tgt), tgt.shape)
        idx, w = curvilinear_bilinear(src, tgt)
        padded = da.reset_coords(drop=True).drop_vars(list(SRC_DIMS), errors="ignore")
        padded = padded.pad({_SY: (1, 1), _SX: (1, 1)}, mode="edge")
        return _apply_points(padded, idx, w, tgt.shape)

    @staticmethod
    def _from_rectilinear(da, src, tgt, method):
        lon, lat = tgt.lonlat()
        if src.kind == LATLON:
            px, py = _lon_into(lon, src), np.asarray(lat, dtype=float)
        else:
            crs = src.crs()
            if crs is None:
                raise RegridError(
                    "The source is projected x/y without a grid_mapping, so target "
                    "longitudes/latitudes cannot be placed on it. Add a CF grid_mapping "
                    "variable to the source (and the attribute grid_mapping on the field)."
                )
            pyproj = import_pyproj()
            tr = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
            px, py = tr.transform(lon, lat)
        padded = _pad_edges(da.reset_coords(drop=True), src)
        m = "linear" if method == "bilinear" else "nearest"
        out = padded.interp({_SY: xr.DataArray(np.asarray(py), dims=TGT_DIMS),
                             _SX: xr.DataArray(np.asarray(px), dims=TGT_DIMS)}, method=m)
        return out.drop_vars([_SY, _SX], errors="ignore")


def _swath(lon, lat):
    from pyresample.geometry import SwathDefinition

    lon = ((np.asarray(lon, dtype=float) + 180.0) % 360.0) - 180.0
    return SwathDefinition(lons=lon, lats=np.asarray(lat, dtype=float))


def _radius(src: GridInfo) -> float:
    """Search radius (m): a bit more than half the largest source cell diagonal."""
    lon, lat = np.radians(src.lon2d), np.radians(src.lat2d)
    from ._grids import _great_circle

    diag = _great_circle(lon[1:, 1:], lat[1:, 1:], lon[:-1, :-1], lat[:-1, :-1])
    return 0.55 * float(np.max(diag)) + 1.0


def _pyresample_nearest(src: GridInfo, tgt: GridInfo):
    from pyresample import kd_tree

    tl, ta = tgt.lonlat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vin, vout, index, _ = kd_tree.get_neighbour_info(
            _swath(src.lon2d, src.lat2d), _swath(tl, ta), _radius(src), neighbours=1)
    valid_in = np.flatnonzero(vin)
    n_out = tgt.shape[0] * tgt.shape[1]
    idx = np.zeros((n_out, 1), dtype=np.int64)
    w = np.full((n_out, 1), np.nan)
    index = np.asarray(index).reshape(-1)
    ok = index < valid_in.size
    out_pos = np.flatnonzero(vout)[ok]
    idx[out_pos, 0] = valid_in[index[ok]]
    w[out_pos, 0] = 1.0
    return idx, w


def _xyz(lon, lat):
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def _pad_centres(v: np.ndarray) -> np.ndarray:
    """Add a ring of points half a cell beyond the outer centres (linear extrapolation)."""
    v = np.concatenate([1.5 * v[:1] - 0.5 * v[1:2], v, 1.5 * v[-1:] - 0.5 * v[-2:-1]], 0)
    return np.concatenate([1.5 * v[:, :1] - 0.5 * v[:, 1:2], v,
                           1.5 * v[:, -1:] - 0.5 * v[:, -2:-1]], 1)


def curvilinear_bilinear(src: GridInfo, tgt: GridInfo):
    """Exact bilinear weights from a curvilinear source, by inverting each cell's map.

    The source is padded by half a cell (edge values), the nearest padded centre of each
    target point found with a KD-tree, and the bilinear map of the four cells around it
    inverted (Newton) in longitude/latitude: the cell with ``0 <= s, t <= 1`` gives the
    weights. Exact for fields bilinear in the source's index space (so for linear fields
    on affine grids). Weights index the *padded* grid, shape ``(ny + 2, nx + 2)``.
    """
    from scipy.spatial import cKDTree

    lon = _pad_centres(np.unwrap(np.unwrap(src.lon2d, period=360.0, axis=1), period=360.0,
                                 axis=0))
    lat = _pad_centres(src.lat2d)
    ny, nx = lat.shape
    tl, ta = (np.asarray(a, dtype=float).reshape(-1) for a in tgt.lonlat())
    _, near = cKDTree(_xyz(lon, lat).reshape(-1, 3)).query(_xyz(tl, ta))
    jn, in_ = np.divmod(near, nx)
    n = tl.size
    idx = np.zeros((n, 4), dtype=np.int64)
    w = np.full((n, 4), np.nan)
    done = np.zeros(n, dtype=bool)
    for dj in (-1, 0):
        for di in (-1, 0):
            j0 = np.clip(jn + dj, 0, ny - 2)
            i0 = np.clip(in_ + di, 0, nx - 2)
            corners = [(j0, i0), (j0, i0 + 1), (j0 + 1, i0), (j0 + 1, i0 + 1)]
            px = [((lon[c] - tl + 180.0) % 360.0) - 180.0 for c in corners]  # target at 0
            py = [lat[c] - ta for c in corners]
            sv, tv = np.full(n, 0.5), np.full(n, 0.5)
            for _ in range(8):  # Newton on P(s, t) = 0
                fx = ((1 - sv) * (1 - tv) * px[0] + sv * (1 - tv) * px[1]
                      + (1 - sv) * tv * px[2] + sv * tv * px[3])
                fy = ((1 - sv) * (1 - tv) * py[0] + sv * (1 - tv) * py[1]
                      + (1 - sv) * tv * py[2] + sv * tv * py[3])
                a = (1 - tv) * (px[1] - px[0]) + tv * (px[3] - px[2])
                b = (1 - sv) * (px[2] - px[0]) + sv * (px[3] - px[1])
                c = (1 - tv) * (py[1] - py[0]) + tv * (py[3] - py[2])
                d = (1 - sv) * (py[2] - py[0]) + sv * (py[3] - py[1])
                det = a * d - b * c
                det = np.where(det == 0, np.nan, det)
                sv = sv - (d * fx - b * fy) / det
                tv = tv - (a * fy - c * fx) / det
            tol = 1e-9
            hit = ~done & (sv >= -tol) & (sv <= 1 + tol) & (tv >= -tol) & (tv <= 1 + tol)
            sv, tv = np.clip(sv, 0, 1), np.clip(tv, 0, 1)
            ww = np.stack([(1 - sv) * (1 - tv), sv * (1 - tv), (1 - sv) * tv, sv * tv], -1)
            ii = np.stack([cj * nx + ci for cj, ci in corners], -1)
            w[hit], idx[hit] = ww[hit], ii[hit]
            done |= hit
    return idx, w


def _apply_points(da: xr.DataArray, idx: np.ndarray, w: np.ndarray,
                  shape: tuple[int, int]) -> xr.DataArray:
    """Apply gather weights ``(n_tgt, k)`` lazily; NaN weights give NaN."""

    def _fn(a):
        flat = a.reshape(a.shape[:-2] + (-1,))
        vals = flat[..., idx]
        res = np.where(w > 0, vals, 0.0) * np.where(np.isnan(w), np.nan, w)
        bad = np.isnan(w).any(axis=-1) | np.any((w > 0) & np.isnan(vals), axis=-1)
        res = np.where(bad, np.nan, res.sum(axis=-1))
        return res.reshape(a.shape[:-2] + shape).astype(a.dtype, copy=False)

    data = da.reset_coords(drop=True).drop_vars(list(SRC_DIMS), errors="ignore")
    if data.chunks is not None:
        data = data.chunk({_SY: -1, _SX: -1})
    return xr.apply_ufunc(
        _fn, data, input_core_dims=[list(SRC_DIMS)], output_core_dims=[list(TGT_DIMS)],
        dask="parallelized", output_dtypes=[da.dtype],
        dask_gufunc_kwargs={"output_sizes": dict(zip(TGT_DIMS, shape, strict=True))},
    )


class XesmfBackend(Backend):
    """ESMF weights through xesmf (conda-forge only)."""

    name = "xesmf"
    package = "xesmf"
    _METHOD = {"conservative": "conservative_normed", "bilinear": "bilinear",
               "nearest": "nearest_s2d"}

    @staticmethod
    def _ds(info: GridInfo, corners: bool) -> xr.Dataset:
        lon, lat = info.lonlat()
        ds = xr.Dataset(coords={"lon": (("y", "x"), lon), "lat": (("y", "x"), lat)})
        if corners:
            if info.rectilinear and info.kind == LATLON:
                xe = np.append(info.xb[:, 0], info.xb[-1, 1])
                ye = np.append(info.yb[:, 0], info.yb[-1, 1])
                lon_b, lat_b = np.meshgrid(xe, ye)
            else:
                from cf_xarray import bounds_to_vertices

                ds2 = xr.Dataset(coords={"lon": ds.lon, "lat": ds.lat}).cf.add_bounds(
                    ["lon", "lat"], dim=["y", "x"])
                lon_b = bounds_to_vertices(ds2.lon_bounds, "bounds", order=None).values
                lat_b = bounds_to_vertices(ds2.lat_bounds, "bounds", order=None).values
            ds = ds.assign_coords(lon_b=(("y_b", "x_b"), lon_b), lat_b=(("y_b", "x_b"), lat_b))
        return ds

    def regrid(self, da, src, tgt, method, skipna):  # noqa: D102
        xe = _need("xesmf")
        corners = method == "conservative"
        sds, tds = self._ds(src, corners), self._ds(tgt, corners)
        data = da.reset_coords(drop=True).drop_vars(list(SRC_DIMS), errors="ignore")
        data = data.rename({_SY: "y", _SX: "x"})
        regridder = xe.Regridder(sds, tds, self._METHOD[method], periodic=src.periodic,
                                 unmapped_to_nan=True)
        out = regridder(data, skipna=skipna, na_thres=1.0, keep_attrs=True)
        out = out.rename({"y": _TY, "x": _TX})
        return out.drop_vars([c for c in out.coords if set(out[c].dims) & set(TGT_DIMS)])


#: name -> backend class
BACKENDS: dict[str, type[Backend]] = {
    "xesmf": XesmfBackend,
    "xarray-regrid": XarrayRegridBackend,
    "pyresample": PyresampleBackend,
}


def get_backend(name: str | None, src: GridInfo, tgt: GridInfo) -> Backend:
    """Return the backend called ``name``, or the default for this pair of grids.

    ``None`` picks xesmf if it imports, else xarray-regrid for two rectilinear grids in
    one coordinate system, else pyresample.
    """
    if name is None:
        if XesmfBackend.available():
            return XesmfBackend()
        return XarrayRegridBackend() if same_system(src, tgt) else PyresampleBackend()
    if name not in BACKENDS:
        raise RegridError(
            f"Unknown regridding backend {name!r}. Available names: {sorted(BACKENDS)} "
            "(or backend=None to choose automatically)."
        )
    cls = BACKENDS[name]
    if not cls.available():
        if name == "xesmf":
            raise MissingDependencyError(
                "Regridding with backend='xesmf' needs xesmf, which needs ESMF and is not "
                "on PyPI: install it with conda (conda install -c conda-forge xesmf), or "
                "use backend=None (xarray-regrid and pyresample: "
                "pip install 'xstochsr[regrid]')."
            )
        raise missing_dependency(cls.package, "regrid", f"Regridding with backend={name!r}")
    return cls()
