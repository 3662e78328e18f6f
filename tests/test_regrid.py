"""Regridding: analytic fields (smooth wave, step) on each grid kind and method."""

from __future__ import annotations

import warnings

import dask
import dask.array
import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import MissingDependencyError, RegridError
from xstochsr.regrid import (
    GridSpacingWarning,
    check_spacing,
    default_method,
    grid_spacing,
    native_grid,
    regrid,
    regrid_dataset,
)
from xstochsr.regrid import backends as be

pyproj = pytest.importorskip("pyproj")

LCC = pyproj.CRS.from_proj4(
    "+proj=lcc +lat_1=45 +lat_2=55 +lat_0=50 +lon_0=10 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
)

# --- grids --------------------------------------------------------------------------------


def centres(a, b, d):
    n = int(round((b - a) / d))
    return a + (np.arange(n) + 0.5) * d


def latlon(lat0, lat1, dlat, lon0, lon1, dlon, ydim="lat", xdim="lon"):
    return xr.Dataset(coords={
        ydim: (ydim, centres(lat0, lat1, dlat), {"units": "degrees_north",
                                                 "standard_name": "latitude"}),
        xdim: (xdim, centres(lon0, lon1, dlon), {"units": "degrees_east",
                                                 "standard_name": "longitude"}),
    })


def projected(x0, x1, dx, y0, y1, dy, units="m"):
    f = 1e-3 if units == "km" else 1.0
    ds = xr.Dataset(coords={
        "y": ("y", centres(y0, y1, dy) * f, {"units": units, "axis": "Y",
                                             "standard_name": "projection_y_coordinate"}),
        "x": ("x", centres(x0, x1, dx) * f, {"units": units, "axis": "X",
                                             "standard_name": "projection_x_coordinate"}),
        "crs": ((), 0, LCC.to_cf()),
    })
    return ds


def curvilinear(ny=24, nx=30):
    """An affine (sheared) lat/lon grid on index dims: exact for bilinear of linear fields."""
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    lon = 2.0 + 0.5 * i + 0.1 * j
    lat = 40.0 + 0.4 * j + 0.05 * i
    return xr.Dataset(coords={
        "lat": (("j", "i"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": (("j", "i"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
    })


def positions(grid):
    """2-D (X, Y) positions of centres, in the grid's own coordinates."""
    if "j" in grid.dims:
        return grid.lon.values, grid.lat.values
    yd, xd = ("lat", "lon") if "lat" in grid.dims else ("y", "x")
    x, y = np.meshgrid(grid[xd].values, grid[yd].values)
    return x, y


def field(grid, kind, name="tas", attrs=None):
    x, y = positions(grid)
    if "x" in grid.dims:  # scale projected coordinates to a few waves over the domain
        x, y = x / (1e5 if grid.x.attrs["units"] == "m" else 1e2), y / (
            1e5 if grid.y.attrs["units"] == "m" else 1e2)
    if kind == "wave":
        v = 2.0 + np.sin(x / 3.0) * np.cos(y / 4.0)
    elif kind == "step":
        v = np.where(x > (0.3 if "x" in grid.dims else 10.3), 1.0, 0.0)
    else:  # linear
        v = 1.5 + 0.7 * x - 0.4 * y
    dims = ("j", "i") if "j" in grid.dims else tuple(d for d in grid.dims if d != "bounds")
    da = xr.DataArray(v, dims=dims, coords={k: c for k, c in grid.coords.items()
                                            if k != "crs"}, name=name, attrs=attrs or {})
    if "crs" in grid.coords:
        da = da.assign_coords(crs=grid.crs)
        da.attrs["grid_mapping"] = "crs"
    return da


def sin_area(bounds_lat, bounds_lon):
    """Independent cos(lat)-weighted cell areas (unit sphere) from (n, 2) bounds."""
    lat = np.radians(np.sort(bounds_lat, axis=1))
    dlon = np.radians(np.abs(np.diff(bounds_lon, axis=1)))[:, 0]
    return (np.sin(lat[:, 1]) - np.sin(lat[:, 0]))[:, None] * dlon[None, :]


def edges(c):
    mid = 0.5 * (c[1:] + c[:-1])
    e = np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])
    return np.stack([e[:-1], e[1:]], axis=1)


# --- conservative -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wave", "step"])
def test_conservative_latlon_keeps_area_mean(kind):
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), kind, name="pr")
    tgt = latlon(30, 60, 1.5, 0, 40, 1.6)  # same outer domain, non-aligned interior
    out = regrid(src, tgt, method="conservative")
    assert out.notnull().all()
    a_s = sin_area(edges(src.lat.values), edges(src.lon.values))
    a_t = sin_area(edges(tgt.lat.values), edges(tgt.lon.values))
    ref = float((src.values * a_s).sum() / a_s.sum())
    got = float((out.values * a_t).sum() / a_t.sum())
    assert abs(got / ref - 1) < 1e-6
    # a plain (unweighted) mean would not pass: the test can tell the difference
    assert abs(float(out.mean()) / ref - 1) > 1e-6 or kind == "step"


def test_conservative_latlon_subdomain_reference():
    """Target inside the source; reference integral from explicit cell-by-cell overlaps."""
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), "wave", name="pr")
    tgt = latlon(33.3, 52.8, 0.65, 5.2, 31.6, 1.1)
    out = regrid(src, tgt, method="conservative")
    sb_lat, sb_lon = edges(src.lat.values), edges(src.lon.values)
    lo_lat, hi_lat = 33.3, 52.8
    lo_lon, hi_lon = 5.2, 31.6
    total = 0.0
    for i, (a, b) in enumerate(sb_lat):
        la, lb = max(a, lo_lat), min(b, hi_lat)
        if lb <= la:
            continue
        for k, (c, d) in enumerate(sb_lon):
            xa, xb = max(c, lo_lon), min(d, hi_lon)
            if xb > xa:
                area = (np.sin(np.radians(lb)) - np.sin(np.radians(la))) * np.radians(xb - xa)
                total += area * float(src.values[i, k])
    region = (np.sin(np.radians(hi_lat)) - np.sin(np.radians(lo_lat))) * np.radians(
        hi_lon - lo_lon)
    a_t = sin_area(edges(tgt.lat.values), edges(tgt.lon.values))
    got = float((out.values * a_t).sum() / a_t.sum())
    assert abs(got / (total / region) - 1) < 1e-6


@pytest.mark.parametrize("kind", ["wave", "step"])
def test_conservative_projected_keeps_mean_and_grid_mapping(kind):
    src = field(projected(-4e5, 4e5, 2e4, -3e5, 3e5, 2e4), kind, name="pr")
    tgt = projected(-4e5, 4e5, 3.2e4, -3e5, 3e5, 1.5e4, units="km")  # other units
    out = regrid(src, tgt, method="conservative")
    assert out.notnull().all()
    # equal-area cells in x/y: plain means over the same domain must agree
    assert abs(float(out.mean()) / float(src.mean()) - 1) < 1e-6
    assert out.attrs["grid_mapping"] == "crs"
    assert out.crs.attrs["grid_mapping_name"] == "lambert_conformal_conic"
    assert out.x.attrs["units"] == "km"


def test_conservative_global_across_longitude_conventions():
    src = field(latlon(-90, 90, 2.0, 0, 360, 2.5), "wave", name="pr")
    tgt = latlon(-90, 90, 3.0, -180, 180, 3.0)
    out = regrid(src, tgt, method="conservative")
    assert out.notnull().all()
    a_s = sin_area(edges(src.lat.values), edges(src.lon.values))
    a_t = sin_area(np.clip(edges(tgt.lat.values), -90, 90), edges(tgt.lon.values))
    ref = float((src.values * a_s).sum() / a_s.sum())
    got = float((out.values * a_t).sum() / a_t.sum())
    assert abs(got / ref - 1) < 1e-6


def test_conservative_nan_aware_normalisation():
    grid = latlon(40, 50, 0.5, 0, 10, 0.5)
    src = field(grid, "wave", name="pr") * 0 + 3.0
    src = src.where(~((src.lat > 44) & (src.lat < 46) & (src.lon > 4) & (src.lon < 6)))
    tgt = latlon(40, 50, 1.5, 0, 10.5, 1.5)  # last column half outside the source
    out = regrid(src, tgt, method="conservative")
    # neighbours of the masked block (partially masked cells) are not biased
    finite = out.values[np.isfinite(out.values)]
    np.testing.assert_allclose(finite, 3.0, rtol=1e-12)
    # a target cell entirely inside the masked block is NaN
    assert np.isnan(out.sel(lat=45.25, lon=5.25).item())
    # partial coverage at the domain edge: the mean over the overlap
    assert out.isel(lon=-1).notnull().all()
    strict = regrid(src, tgt, method="conservative", skipna=False)
    assert int(strict.isnull().sum()) > int(out.isnull().sum())
    outside = regrid(src, latlon(40, 50, 1.0, 12, 14, 1.0), method="conservative")
    assert outside.isnull().all()


def test_conservative_curvilinear_refused_without_xesmf():
    src = field(curvilinear(), "wave", name="pr")
    with pytest.raises(RegridError, match="xesmf"):
        regrid(src, latlon(42, 48, 1.0, 4, 16, 1.0), method="conservative",
               backend="pyresample")
    if not be.XesmfBackend.available():
        with pytest.raises(RegridError, match="conda install -c conda-forge xesmf"):
            regrid(src, latlon(42, 48, 1.0, 4, 16, 1.0), method="conservative")


# --- bilinear and nearest -----------------------------------------------------------------


def _target_for(kind):
    return {
        "latlon": (latlon(30, 60, 1.0, 0, 40, 1.0), latlon(33, 57, 0.7, 3, 37, 0.45)),
        "projected": (projected(-4e5, 4e5, 2e4, -3e5, 3e5, 2e4),
                      projected(-3.5e5, 3.5e5, 1.3e4, -2.5e5, 2.5e5, 0.7e4)),
        "curvilinear": (curvilinear(), latlon(43, 48, 0.3, 5, 15, 0.35)),
        "to_curvilinear": (latlon(30, 60, 1.0, 0, 40, 1.0), curvilinear()),
        "projected_to_latlon": (projected(-4e5, 4e5, 2e4, -3e5, 3e5, 2e4),
                                latlon(48, 51.5, 0.2, 7, 13, 0.25)),
    }[kind]


KINDS = ["latlon", "projected", "curvilinear", "to_curvilinear", "projected_to_latlon"]


@pytest.mark.parametrize("kind", KINDS)
def test_bilinear_linear_field_exact_in_interior(kind):
    sgrid, tgt = _target_for(kind)
    src = field(sgrid, "linear")
    out = regrid(src, tgt, method="bilinear")
    if kind == "projected_to_latlon":  # linear in x/y: compare at the projected points
        tr = pyproj.Transformer.from_crs("EPSG:4326", LCC, always_xy=True)
        lon, lat = np.meshgrid(tgt.lon.values, tgt.lat.values)
        x, y = tr.transform(lon, lat)
        expect = 1.5 + 0.7 * x / 1e5 - 0.4 * y / 1e5
    else:
        expect = field(tgt, "linear").values
    assert out.shape == expect.shape
    interior = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(out.values[interior], expect[interior], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pattern", ["wave", "step"])
def test_nearest_takes_source_values(kind, pattern):
    sgrid, tgt = _target_for(kind)
    src = field(sgrid, pattern)
    out = regrid(src, tgt, method="nearest")
    vals = out.values[np.isfinite(out.values)]
    assert vals.size > 0.8 * out.size
    assert np.isin(vals, src.values).all()
    if pattern == "step":
        assert set(np.unique(vals)) == {0.0, 1.0}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pattern", ["wave", "step"])
def test_bilinear_bounded_by_source(kind, pattern):
    sgrid, tgt = _target_for(kind)
    src = field(sgrid, pattern)
    out = regrid(src, tgt, method="bilinear")
    vals = out.values[np.isfinite(out.values)]
    assert vals.size > 0.8 * out.size
    assert vals.min() >= float(src.min()) - 1e-12 and vals.max() <= float(src.max()) + 1e-12
    if pattern == "step":  # the step is smeared over at most one source cell
        assert ((vals > 1e-9) & (vals < 1 - 1e-9)).mean() < 0.3


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_finer_target_has_no_nan_border(method):
    src = field(latlon(40, 50, 1.0, 0, 10, 1.0), "wave")
    out = regrid(src, latlon(40, 50, 0.25, 0, 10, 0.25), method=method)
    assert out.notnull().all()  # xarray-regrid alone leaves the outer half-cell NaN
    beyond = regrid(src, latlon(40, 50, 1.0, 10, 12, 1.0), method=method)
    assert beyond.isnull().all()  # no extrapolation past the source's outer bounds


# --- shape, laziness, metadata ------------------------------------------------------------


def _ensemble(grid, chunks=None):
    base = field(grid, "wave", name="pr", attrs={"units": "mm h-1", "history": "made"})
    times = np.array(["2021-01-01", "2021-01-02", "2021-01-03"], dtype="datetime64[ns]")
    da = base.expand_dims(time=times, realization=[0, 1]).transpose(
        "realization", "time", *base.dims)
    da = da * xr.DataArray([1.0, 2.0], dims="realization")
    da = da.assign_coords(realization=da.realization.assign_attrs(standard_name="realization"))
    da.attrs = base.attrs
    da.name = "pr"
    if chunks:  # dask data; coordinates stay numpy (regrid reads them, as it must)
        sizes = [chunks.get(d, -1) for d in da.dims]
        da = da.copy(data=dask.array.from_array(da.values, chunks=sizes))
    return da


def _refuse(*args, **kwargs):
    raise AssertionError("regrid computed a dask graph")


@pytest.mark.parametrize("kind,method", [("latlon", "conservative"), ("latlon", "bilinear"),
                                         ("latlon", "nearest"), ("curvilinear", "nearest"),
                                         ("curvilinear", "bilinear"),
                                         ("to_curvilinear", "bilinear")])
def test_extra_dims_and_dask_stay_lazy(kind, method):
    sgrid, tgt = _target_for(kind)
    da = _ensemble(sgrid, chunks={"time": 1, "realization": 1})
    with dask.config.set(scheduler=_refuse):
        out = regrid(da, tgt, method=method)
    assert isinstance(out.data, dask.array.Array)
    assert out.dims[:2] == ("realization", "time")
    assert out.sizes["realization"] == 2 and out.sizes["time"] == 3
    np.testing.assert_array_equal(out.time.values, da.time.values)
    assert out.realization.attrs["standard_name"] == "realization"
    eager = regrid(da.compute(), tgt, method=method)
    xr.testing.assert_allclose(out.compute(), eager)
    # members are regridded independently (member 1 is twice member 0)
    np.testing.assert_allclose(eager.isel(realization=1), 2 * eager.isel(realization=0))


def test_metadata_history_and_target_coords():
    src = _ensemble(latlon(30, 60, 1.0, 0, 40, 1.0))
    tgt = latlon(33, 57, 0.7, 3, 37, 0.45, ydim="latitude", xdim="longitude")
    out = regrid(src, tgt)
    assert out.name == "pr" and out.attrs["units"] == "mm h-1"
    lines = out.attrs["history"].splitlines()
    assert lines[0] == "made" and "conservative" in lines[1]  # mm h-1 -> conservative
    assert out.dims == ("realization", "time", "latitude", "longitude")
    assert out.latitude.attrs["standard_name"] == "latitude"
    np.testing.assert_array_equal(out.longitude.values, tgt.longitude.values)


def test_dataset_output_carries_bounds():
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), "wave", name="pr")
    tgt = latlon(33, 57, 1.5, 3, 37, 2.0)
    tgt = tgt.assign_coords(lat_bnds=(("lat", "nv"), edges(tgt.lat.values) + 0.0))
    tgt.lat.attrs["bounds"] = "lat_bnds"
    ds = regrid_dataset(src.to_dataset(), tgt, method="conservative")
    assert ds.lat.attrs["bounds"] == "lat_bnds" and ds.lon.attrs["bounds"] == "lon_bounds"
    np.testing.assert_allclose(ds.lon_bounds.values, edges(tgt.lon.values))
    assert ds.lat_bnds.dims == ("lat", "nv")
    curv = regrid_dataset(src, curvilinear(), method="bilinear")
    assert curv.lat_bounds.dims == ("j", "i", "bounds") and curv.lat_bounds.sizes["bounds"] == 4
    assert curv.lat.attrs["bounds"] == "lat_bounds"


def test_target_bounds_used_for_conservative():
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), "wave", name="pr")
    tgt = latlon(35, 55, 2.0, 5, 35, 2.0)
    narrow = tgt.assign_coords(lon_bounds=(("lon", "bounds"),
                                           np.stack([tgt.lon - 0.5, tgt.lon + 0.9], axis=1)))
    narrow.lon.attrs["bounds"] = "lon_bounds"
    a = regrid(src, tgt, method="conservative")
    b = regrid(src, narrow, method="conservative")
    assert not np.allclose(a.values, b.values)  # narrower cells average less of the wave


# --- spacing and the native grid ----------------------------------------------------------


def test_grid_spacing_and_check_spacing_warns():
    da = field(projected(-4e5, 4e5, 2e4, -3e5, 3e5, 2e4, units="km"), "wave")
    assert grid_spacing(da) == pytest.approx((2e4, 2e4, "m"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_spacing(da, 20, "km") is True
        assert check_spacing(da, 21000, "m") is True
    with pytest.warns(GridSpacingWarning, match="regrid_input=True"):
        assert check_spacing(da, 40, "km") is False
    ll = field(latlon(30, 60, 0.25, 0, 40, 0.25), "wave")
    with pytest.warns(GridSpacingWarning):
        assert check_spacing(ll, 1.0, "degree") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_spacing(ll, 27.8, "km") is True  # 0.25 degree of arc


def test_native_grid_then_conservative():
    da = field(projected(-4e5, 4e5, 1e4, -3e5, 3e5, 1e4, units="km"), "wave", name="pr")
    grid = native_grid(da, 25, "km")
    assert grid.x.attrs["units"] == "km" and "crs" in grid.coords
    assert np.diff(grid.x.values) == pytest.approx(25.0)
    assert grid.x_bounds.values.min() >= -400 - 12.5 and grid.x_bounds.values.max() <= 412.5
    out = regrid(da, grid, method="conservative")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_spacing(out, 25, "km")
    ll = native_grid(field(latlon(30, 60, 0.1, 0, 40, 0.1), "wave"), 0.5, "degree")
    assert ll.sizes == {"lat": 60, "lon": 80, "bounds": 2}
    np.testing.assert_allclose(ll.lat_bounds.values[[0, -1], [0, 1]], [30, 60])
    curv = native_grid(field(curvilinear(), "wave"), 0.5, "degree")
    assert set(curv.dims) == {"lat", "lon", "bounds"}


# --- method choice and errors -------------------------------------------------------------


@pytest.mark.parametrize("attrs,name,expected", [
    ({"standard_name": "precipitation_flux", "units": "kg m-2 s-1"}, "x", "conservative"),
    ({"units": "mm h-1"}, "rr", "conservative"),
    ({"units": "mm/day"}, "v", "conservative"),
    ({"units": "W m-2", "standard_name": "surface_downwelling_shortwave_flux_in_air"}, "rsds",
     "conservative"),
    ({"units": "K", "standard_name": "air_temperature"}, "tas", "bilinear"),
    ({"units": "m s-1", "standard_name": "eastward_wind"}, "ua", "bilinear"),
])
def test_default_method(attrs, name, expected):
    da = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), name=name, attrs=attrs)
    assert default_method(da) == expected


def test_errors_name_the_fix(monkeypatch):
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), "wave")
    tgt = latlon(33, 57, 1.5, 3, 37, 2.0)
    with pytest.raises(RegridError, match="xarray-regrid.*pyresample|pyresample.*xesmf"):
        regrid(src, tgt, backend="esmpy")
    with pytest.raises(RegridError, match="conservative"):
        regrid(src, tgt, method="cubic")
    with pytest.raises(RegridError, match="curvilinear"):
        regrid(src, curvilinear(), backend="xarray-regrid")
    if not be.XesmfBackend.available():
        with pytest.raises(MissingDependencyError, match="conda"):
            regrid(src, tgt, backend="xesmf")
    monkeypatch.setitem(be._AVAILABLE, "pyresample", False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'xstochsr\[regrid\]'"):
        regrid(field(curvilinear(), "wave"), tgt, backend="pyresample")


def test_missing_xarray_regrid_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("xarray_regrid"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.setattr(be.importlib, "import_module",
                        lambda n: fake(n) if n.startswith("xarray_regrid") else real(n))
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), "wave")
    with pytest.raises(MissingDependencyError, match=r"xstochsr\[regrid\]"):
        regrid(src, latlon(33, 57, 1.5, 3, 37, 2.0), method="bilinear",
               backend="xarray-regrid")


def test_agrees_with_xesmf_where_installed():
    pytest.importorskip("xesmf")
    src = field(latlon(30, 60, 1.0, 0, 40, 1.0), "wave", name="pr")
    tgt = latlon(33, 57, 0.7, 3, 37, 0.45)
    for method in ("conservative", "bilinear"):
        ours = regrid(src, tgt, method=method, backend="xarray-regrid")
        theirs = regrid(src, tgt, method=method, backend="xesmf")
        np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-3)


@pytest.mark.parametrize("skipna", [True, False])
def test_sparse_conservative_equals_dense_einsum(skipna):
    """The sparse axis-by-axis weights give the dense einsum's numbers (issue 15)."""
    rng = np.random.default_rng(3)
    n = 64
    lat = np.linspace(40.0, 55.0, n)
    lon = np.linspace(-5.0, 15.0, n)
    vals = rng.gamma(0.6, 2.0, (2, 3, n, n))
    vals[0, 1, 10:20, 30:45] = np.nan
    da = xr.DataArray(vals, dims=("realization", "time", "lat", "lon"), name="pr",
                      coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                              "lon": ("lon", lon, {"units": "degrees_east"})},
                      attrs={"units": "kg m-2 s-1"})
    target = xr.Dataset(coords={
        "lat": ("lat", np.linspace(40.3, 54.7, 13), {"units": "degrees_north"}),
        "lon": ("lon", np.linspace(-4.6, 14.4, 11), {"units": "degrees_east"})})
    out = regrid(da, target, method="conservative", skipna=skipna)
    from xstochsr.regrid._grids import describe

    src, tgt = describe(da), describe(target)
    wy = be.overlap_weights(src.yb, tgt.yb, sine=True)
    wx = be.overlap_weights(src.xb, tgt.xb, period=360.0)
    valid = np.isfinite(vals)
    num = np.einsum("rtyx,yj,xk->rtjk", np.where(valid, vals, 0.0), wy, wx)
    if skipna:
        den = np.einsum("rtyx,yj,xk->rtjk", valid.astype(float), wy, wx)
        ref = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    else:
        bad = np.einsum("rtyx,yj,xk->rtjk", (~valid).astype(float), wy, wx) > 0
        ref = np.where(bad, np.nan, num / np.outer(wy.sum(0), wx.sum(0)))
    got = out.transpose("realization", "time", "lat", "lon").values
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(ref).any() and np.isfinite(ref).any()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12)


def test_regrid_speed_benchmark_runs(capsys):
    from repo_files import load_script

    bench = load_script("benchmarks/regrid_speed.py", "bench_regrid_speed")
    assert bench.main(["--size", "48", "--target", "10", "9"]) == 0
    text = capsys.readouterr().out
    assert "before (dense)" in text and "after (sparse)" in text
    diff = float(text.split("largest difference")[1])
    assert diff < 1e-6
