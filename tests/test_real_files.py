"""A scientist's real files in, CF-complete files out (issue 15).

Round trips of ERA5-, CMIP- and radar-style files through ``downscale``,
``ens.sr.to_dataset().to_netcdf()`` and reopening with ``decode_coords="all"``; the
accumulation, longitude, axis-guessing and training-range rules each on their own.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xstochsr
from xstochsr.accumulation import from_rate, is_accumulation, to_rate
from xstochsr.errors import MissingAxisError
from xstochsr.longitude import rewrap, unwrap
from xstochsr.training_range import OutOfRangeWarning

cf_xarray = pytest.importorskip("cf_xarray")


def _era5_tp(rng, nt=3, ny=8, nx=16, step="1h"):
    """ERA5-style total precipitation: metres summed over the hour, 0..360 crossing 0."""
    lon = np.mod(354.0 + 0.25 * np.arange(nx), 360.0)  # 354 .. 359.75, 0 .. 1.75
    lat = 50.0 - 0.25 * np.arange(ny)
    v = rng.gamma(0.5, 0.0008, (nt, ny, nx))
    v[v < 2e-4] = 0.0
    return xr.DataArray(
        v.astype("float32"), dims=("time", "latitude", "longitude"), name="tp",
        coords={"time": pd.date_range("2020-01-01T01", periods=nt, freq=step),
                "latitude": ("latitude", lat, {"units": "degrees_north",
                                               "standard_name": "latitude"}),
                "longitude": ("longitude", lon, {"units": "degrees_east",
                                                 "standard_name": "longitude"})},
        attrs={"units": "m", "long_name": "Total precipitation", "cell_methods": "time: sum"},
    )


def _reopen(ens, path):
    ens.sr.to_dataset().to_netcdf(path)
    return xr.open_dataset(path, decode_coords="all")


def _cf_complete(ds, name):
    """cf-xarray finds X, Y, T, bounds (and returns the dataset for more checks)."""
    da = ds[name]
    x, y = da.cf["X"].name, da.cf["Y"].name
    assert ds.cf.bounds[x] == [f"{x}_bounds"] and ds.cf.bounds[y] == [f"{y}_bounds"]
    assert da.cf["T"].name == "time"
    assert ds.attrs["Conventions"] == "CF-1.8" and "downscaled" in ds.attrs["history"]
    return x, y


# --- round trips ---------------------------------------------------------------------------


def test_era5_roundtrip_accumulation_and_longitudes(tmp_path, rng):
    tp = _era5_tp(rng)
    tp.to_dataset().to_netcdf(tmp_path / "era5.nc")
    src = xr.open_dataset(tmp_path / "era5.nc", decode_coords="all").tp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # grid spacing / range warnings: tested elsewhere
        ens = src.sr.downscale(members=2, seed=0)  # auto-picks the rain model: m h-1 is a rate
    assert ens.attrs["xstochsr_model"] == "rain-x8"
    assert ens.attrs["units"] == "m" and ens.attrs["cell_methods"] == "time: sum"
    # coarse means conserved in the user's units: every 8x8 block sums back to the input
    blocks = ens.coarsen(latitude=8, longitude=8).mean()
    np.testing.assert_allclose(blocks.transpose("realization", *tp.dims).values,
                               np.broadcast_to(tp.values, blocks.shape), rtol=2e-4,
                               atol=1e-9)
    lon = ens.longitude.values
    assert lon.min() >= 0 and lon.max() < 360 and lon[0] > 350  # user's order and convention
    ds = _reopen(ens, tmp_path / "out.nc")
    assert _cf_complete(ds, "tp") == ("longitude", "latitude")
    assert ds.tp.attrs["units"] == "m"


def test_cmip_roundtrip_flux_cftime(tmp_path, rng):
    cftime = pytest.importorskip("cftime")
    times = [cftime.DatetimeNoLeap(2050, 1, 1, h) for h in range(3)]
    lat = 40.0 + 0.5 * np.arange(8)
    lon = 5.0 + 0.5 * np.arange(8)
    pr = xr.DataArray(
        rng.gamma(0.5, 1e-4, (3, 8, 8)).astype("float32"), dims=("time", "lat", "lon"),
        name="pr", coords={"time": ("time", times, {"standard_name": "time"}),
                           "lat": ("lat", lat, {"units": "degrees_north", "axis": "Y"}),
                           "lon": ("lon", lon, {"units": "degrees_east", "axis": "X"})},
        attrs={"units": "kg m-2 s-1", "standard_name": "precipitation_flux"})
    pr.to_dataset().to_netcdf(tmp_path / "cmip.nc")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    src = xr.open_dataset(tmp_path / "cmip.nc", decode_coords="all", decode_times=coder).pr
    ens = src.sr.downscale(factor=2, members=2, model="bilinear", seed=0)
    ds = _reopen(ens, tmp_path / "out.nc")
    assert _cf_complete(ds, "pr") == ("lon", "lat")
    assert ds.pr.attrs["units"] == "kg m-2 s-1"


def test_radar_roundtrip_projected_masked_grid_mapping(tmp_path, rng):
    from fields import projected_field

    da = projected_field(rng, nt=3, ny=8, nx=8)
    yy, xx = np.mgrid[:8, :8]
    da = da.where(((yy - 3.5) ** 2 + (xx - 3.5) ** 2) < 12)  # NaN outside the radar circle
    da.to_dataset().to_netcdf(tmp_path / "radar.nc")
    src = xr.open_dataset(tmp_path / "radar.nc", decode_coords="all").precip
    assert "grid_mapping" not in src.attrs and src.encoding["grid_mapping"] == "crs"
    ens = src.sr.downscale(factor=2, members=2, model="bilinear", seed=0)
    assert ens.attrs["grid_mapping"] == "crs" and "crs" in ens.coords
    ds = _reopen(ens, tmp_path / "out.nc")
    assert _cf_complete(ds, "precip") == ("x", "y")
    assert ds.cf.grid_mapping_names == {"lambert_azimuthal_equal_area": ["crs"]}
    assert ds.precip.encoding["grid_mapping"] == "crs"
    assert np.isnan(ds.precip).any() and np.isfinite(ds.precip).any()


# --- accumulations -------------------------------------------------------------------------


def test_accumulation_to_rate_and_back(rng):
    tp = _era5_tp(rng, step="6h")
    assert is_accumulation(tp)
    rate, acc = to_rate(tp)
    assert acc.hours == 6.0 and rate.attrs["units"] == "m h-1"
    assert rate.attrs["standard_name"] == "lwe_precipitation_rate"
    np.testing.assert_allclose(rate.values, tp.values / 6.0, rtol=1e-6)
    back = from_rate(rate, acc)
    np.testing.assert_allclose(back.values, tp.values, rtol=1e-6)
    assert back.attrs == tp.attrs
    tp.attrs["cell_methods"] = "time: sum (interval: 3 hours)"
    assert to_rate(tp)[1].hours == 3.0
    assert not is_accumulation(tp.assign_attrs(cell_methods="time: mean"))
    assert not is_accumulation(tp.assign_attrs(units="mm h-1"))


def test_accumulation_downscale_back_in_user_units(rng):
    tp = _era5_tp(rng)
    ens = xstochsr.downscale(tp, factor=2, members=1, model="bilinear", seed=0)
    plain = xstochsr.downscale(tp.assign_attrs(cell_methods="time: mean"), factor=2,
                               members=1, model="bilinear", seed=0)
    np.testing.assert_allclose(ens.values, plain.values, rtol=1e-6)
    assert ens.attrs["units"] == "m" and ens.attrs["cell_methods"] == "time: sum"


def test_daily_sums_into_a_five_minute_model_warn(rng):
    tp = _era5_tp(rng, step="1D", ny=16, nx=16)
    with pytest.warns(OutOfRangeWarning, match=r"time step is 1 day\(s\).*5 min"):
        xstochsr.downscale(tp, members=1, model="rain-x8", seed=0)


# --- longitudes ----------------------------------------------------------------------------


@pytest.mark.parametrize("lon", [
    np.mod(350.0 + 0.5 * np.arange(24), 360.0),              # 350..359.5, 0..1.5 as stored
    np.sort(np.mod(350.0 + 0.5 * np.arange(24), 360.0)),     # sorted: 0..1.5, 350..359.5
    np.mod(170.0 + 0.5 * np.arange(24) + 180, 360.0) - 180,  # 170..179.5, -180..-178.5
])
def test_longitudes_crossing_0_or_180_work(lon, rng):
    da = xr.DataArray(rng.random((4, lon.size)).astype("float32"), dims=("lat", "lon"), name="t",
                      coords={"lat": ("lat", [0.0, 0.5, 1.0, 1.5], {"units": "degrees_north"}),
                              "lon": ("lon", lon, {"units": "degrees_east"})},
                      attrs={"units": "K"})
    u, how = unwrap(da, "lon")
    assert how is not None and np.allclose(np.diff(u.lon), 0.5)
    assert rewrap(u, how).lon.values.tolist() == lon.tolist()
    ens = da.sr.downscale(factor=2, members=1, model="nearest", seed=0)
    fine = ens.lon.values
    low = -180 if lon.min() < 0 else 0
    assert fine.min() >= low and fine.max() < low + 360
    # nearest: every fine cell equals the coarse cell whose longitude is within 0.25 deg
    for j in (0, 5, 17, 23):
        k = int(np.argmin(np.abs(np.mod(fine - lon[j] + 180, 360) - 180)))
        assert float(ens.isel(realization=0, lon=k)[0]) == float(da[0, j])


def test_regular_longitudes_left_alone(rng):
    da = xr.DataArray(rng.random((3, 5)), dims=("lat", "lon"),
                      coords={"lat": [0.0, 1, 2], "lon": ("lon", [350.0, 351, 352, 353, 354],
                                                          {"units": "degrees_east"})})
    assert unwrap(da, "lon")[1] is None


# --- coordinates without attributes --------------------------------------------------------


@pytest.mark.parametrize("names", [("lat", "lon"), ("latitude", "longitude"), ("y", "x")])
def test_usual_names_without_attrs_are_recognised_and_said(names, rng, caplog):
    from xstochsr.axis_guess import _SAID

    _SAID.clear()
    ydim, xdim = names
    da = xr.DataArray(rng.random((3, 4, 5)), dims=("time", ydim, xdim),
                      coords={ydim: np.arange(4.0), xdim: np.arange(5.0)})
    with caplog.at_level(logging.WARNING, logger="xstochsr"):
        axes = xstochsr.grid.find_axes(da)
    assert (axes.x, axes.y, axes.t) == (xdim, ydim, "time")
    assert "time" in caplog.text and "one sequence" in caplog.text


def test_bare_time_dim_is_one_sequence(rng):
    """Without a time coordinate the frames are still a sequence: the GRU state runs on."""
    from fields import tiny_model

    da = xr.DataArray(rng.gamma(0.6, 2.0, (4, 8, 8)).astype("float32"),
                      dims=("time", "y", "x"), attrs={"units": "mm h-1"},
                      coords={"y": ("y", np.arange(8.0) * 8e3, {"axis": "Y", "units": "m"}),
                              "x": ("x", np.arange(8.0) * 8e3, {"axis": "X", "units": "m"})})
    model = tiny_model(factor=2)
    bare = xstochsr.downscale(da, factor=2, members=1, model=model, seed=0)
    timed = xstochsr.downscale(
        da.assign_coords(time=pd.date_range("2021", periods=4, freq="5min")), factor=2,
        members=1, model=model, seed=0)
    np.testing.assert_array_equal(bare.values, timed.values)
    frames = xstochsr.downscale(da.rename(time="sample"), factor=2, members=1, model=model,
                                seed=0)
    assert not np.array_equal(frames.values, timed.values)  # independent frames differ


def test_dims_without_coordinates_get_an_assign_coords_hint(rng):
    da = xr.DataArray(rng.random((4, 5)), dims=("row", "col"))
    with pytest.raises(MissingAxisError, match=r"assign_coords\(col="):
        xstochsr.grid.find_axes(da)


# --- training range ------------------------------------------------------------------------


def test_wind_far_outside_the_training_range_warns_with_numbers(rng):
    from xstochsr.models.registry import load_model

    card = load_model("qg-wind-x8").card
    assert card.training_range and card.training_range["std"] < 0.1
    n = 16
    u = xr.DataArray(
        rng.normal(2.0, 3.9, (2, n, n)).astype("float32"), dims=("time", "y", "x"),
        name="u10", coords={"time": pd.date_range("2020", periods=2, freq="192h"),
                            "y": ("y", np.arange(n) * 31250.0, {"axis": "Y", "units": "m"}),
                            "x": ("x", np.arange(n) * 31250.0, {"axis": "X", "units": "m"})},
        attrs={"units": "m s-1", "standard_name": "eastward_wind"})
    with pytest.warns(OutOfRangeWarning, match=r"standard deviation is 3\.\d+ m s-1.*0\.0\d+"):
        u.sr.downscale(members=1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfRangeWarning)
        (u * 0.012).assign_attrs(u.attrs).sr.downscale(members=1, seed=0)  # in range: silent


def test_measure_records_what_check_reads(rng):
    from fields import projected_field

    from xstochsr.training_range import measure

    r = measure(projected_field(rng, nt=4), source="test")
    assert set(r) >= {"quantiles", "std", "grid_spacing", "time_step"}
    assert r["time_step"] == {"value": 5.0, "units": "min"}
    assert r["grid_spacing"] == {"value": 8000.0, "units": "m"}
    assert r["quantiles"]["0.01"] <= r["quantiles"]["0.5"] <= r["quantiles"]["0.99"]


def test_training_reads_an_accumulation_as_a_rate(rng):
    """ERA5 tp in metres: train sees mm h-1 (and rain), not metres where all is 'dry'."""
    from xstochsr.training.data import load_training_data

    tp = _era5_tp(rng, nt=6, ny=16, nx=16)
    data = load_training_data(tp, factor=8)
    assert data.info["units"] == "mm h-1" and data.info["rain"]
    np.testing.assert_allclose(np.nanmax(data.fine), float(tp.max()) * 1000.0, rtol=1e-5)


def test_sr_coarsen_says_when_it_trims(rng):
    from fields import projected_field

    from xstochsr.coarsening import TrimWarning
    from xstochsr.errors import InvalidInputError

    da = projected_field(rng, nt=1, ny=20, nx=26)
    with pytest.warns(TrimWarning, match=r"20x26.*4 row\(s\) and 2 column\(s\).*2x3 coarse"):
        c = da.sr.coarsen(8)
    assert c.sizes["y"] == 2 and c.sizes["x"] == 3
    with pytest.raises(InvalidInputError, match="boundary='trim'"):
        da.sr.coarsen(8, boundary="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrimWarning)
        da.isel(y=slice(0, 16), x=slice(0, 24)).sr.coarsen(8)
