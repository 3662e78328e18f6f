"""Issue 14, "never silently wrong": each case reproduced on main, now refused or fixed.

Every rejection must be an ``XStochSRError`` whose message names the fix.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from fields import projected_field, rain_values, tiny_model

import xstochsr
from xstochsr import validation
from xstochsr.errors import (
    InvalidInputError,
    IrregularCoordinateError,
    ModelError,
    OutputError,
    UnknownModelError,
    UnsupportedFactorError,
    XStochSRError,
)


def small(rng, nt=3, ny=4, nx=4, **attrs):
    da = projected_field(rng, nt=nt, ny=ny, nx=nx)
    da.attrs.update(attrs)
    return da


# --- 1: model choice never guesses across quantities ------------------------------------


def _unnamed_rain(rng, name):
    da = small(rng, ny=6, nx=6)
    del da.attrs["standard_name"]
    return da.rename(name)


@pytest.mark.parametrize("name", ["field", None, "data"])
def test_1_units_alone_never_choose_a_model(rng, name):
    da = _unnamed_rain(rng, name)
    with pytest.raises(UnknownModelError) as err:
        xstochsr.downscale(da, members=1, seed=0)
    msg = str(err.value)
    assert "rain-x8" in msg and "qg-wind-x8" in msg  # the candidates
    assert "model=" in msg and "standard_name" in msg  # the fixes


def test_1_name_and_units_choose_one_model_and_log_it(rng, caplog):
    from xstochsr.model_choice import choose_model

    with caplog.at_level(logging.INFO, logger="xstochsr"):
        name, reason = choose_model("mm h-1", None, "precip", 8)
    assert name == "rain-x8"
    assert "precip" in reason
    assert any("rain-x8" in r.getMessage() for r in caplog.records)
    assert choose_model("m s-1", None, "u10", 8)[0] == "qg-wind-x8"
    with pytest.raises(UnknownModelError, match="model="):
        choose_model("K", None, "precip", 8)  # the name fits rain, the units fit nothing
    # a standard name still decides, even with an uninformative variable name
    assert choose_model("mm h-1", "lwe_precipitation_rate", "x", 8)[0] == "rain-x8"


def test_1_chosen_model_is_in_history(rng):
    da = _unnamed_rain(rng, "precip")
    ens = xstochsr.downscale(da, members=1, seed=0)
    assert ens.attrs["xstochsr_model"] == "rain-x8"
    assert "variable name 'precip'" in ens.attrs["history"]
    assert float(ens.min()) >= 0.0


# --- 2: time_chunk ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 0, 2.5, "4", True])
def test_2_time_chunk_out_of_range_refused(rng, model, bad):
    with pytest.raises(InvalidInputError, match="time_chunk") as err:
        xstochsr.downscale(small(rng), model=model, factor=4, members=1, seed=0,
                           time_chunk=bad)
    assert "time_chunk=16" in str(err.value)


def test_2_cli_time_chunk_minus_one(rng, tmp_path):
    src = tmp_path / "in.nc"
    small(rng).drop_vars("crs").to_dataset().to_netcdf(src)
    out = tmp_path / "out.nc"
    proc = subprocess.run(
        [sys.executable, "-m", "xstochsr", "downscale", str(src), str(out), "--model",
         "bilinear", "--factor", "2", "--members", "1", "--time-chunk", "-1"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "time_chunk must be an integer >= 1" in proc.stderr
    assert not out.exists()


# --- 4 (model side): non-finite output never becomes "conserved" zeros ------------------


def test_4_nan_weights_refused_in_downscale(rng):
    import torch

    m = tiny_model()
    with torch.no_grad():
        next(m.generator.parameters()).fill_(float("nan"))
    with pytest.raises(ModelError, match="Retrain"):
        xstochsr.downscale(small(rng), model=m, factor=4, members=1, seed=0)


# --- 5: time axes of every kind, any length ---------------------------------------------


def _with_time(da, times):
    return da.assign_coords(time=times)


def _cftime(calendar, n, step_min=5):
    return xr.date_range("2001-01-01", periods=n, freq=f"{step_min}min", calendar=calendar,
                         use_cftime=True)


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "standard"])
@pytest.mark.parametrize("n", [2, 4])
def test_5_cftime_descending_or_duplicated_refused(rng, model, calendar, n):
    da = small(rng, nt=n)
    t = _cftime(calendar, n)
    for bad in (t[::-1], t[[0] * n]):
        with pytest.raises(IrregularCoordinateError, match="sortby") as err:
            xstochsr.downscale(_with_time(da, bad), model=model, factor=4, members=1, seed=0)
        assert "drop_duplicates" in str(err.value)
    ok = xstochsr.downscale(_with_time(da, t), model=model, factor=4, members=1, seed=0)
    assert ok.sizes["time"] == n


def test_5_two_frame_datetime_series_checked(rng, model):
    da = small(rng, nt=2)
    t = pd.to_datetime(["2021-01-01 00:05", "2021-01-01 00:00"])
    with pytest.raises(IrregularCoordinateError):
        xstochsr.downscale(_with_time(da, t), model=model, factor=4, members=1, seed=0)
    with pytest.raises(IrregularCoordinateError):
        xstochsr.downscale(_with_time(da, t[[0, 0]]), model=model, factor=4, members=1, seed=0)


def test_5_cftime_gap_resets_the_state(rng, model):
    """A gap in a cftime series starts a new segment (fresh GRU state), as datetime64 does."""
    da = small(rng, nt=5)
    t = _cftime("noleap", 5)
    gap = xr.CFTimeIndex(list(t[:3]) + [t[3] + pd.Timedelta(hours=2),
                                        t[4] + pd.Timedelta(hours=2)])
    kw = dict(model=model, factor=4, members=1, seed=0)
    with_gap = xstochsr.downscale(_with_time(da, gap), **kw).values
    no_gap = xstochsr.downscale(_with_time(da, t), **kw).values
    np.testing.assert_array_equal(with_gap[:, :3], no_gap[:, :3])  # same noise, same state
    assert not np.allclose(with_gap[:, 3], no_gap[:, 3])  # state re-initialised at the gap


# --- 6: negative rain ----------------------------------------------------------------------


def test_6_negative_rain_refused(rng, model):
    da = small(rng)
    da[0, 1, 1] = -5.0
    with pytest.raises(InvalidInputError, match=r"clip\(min=0\)"):
        xstochsr.downscale(da, model=model, factor=4, members=1, seed=0)
    # the model's rain transform alone is enough to know (no standard_name)
    del da.attrs["standard_name"]
    with pytest.raises(InvalidInputError, match="below zero"):
        xstochsr.downscale(da, model=model, factor=4, members=1, seed=0)
    # and the baselines too, from the standard_name
    da.attrs["standard_name"] = "precipitation_flux"
    with pytest.raises(InvalidInputError, match="below zero"):
        xstochsr.downscale(da, model="bilinear", factor=4, members=1, seed=0)


def test_6_negative_rain_refused_lazily(rng, model):
    da = small(rng)
    da[2, 0, 0] = -1.0
    ens = xstochsr.downscale(da.chunk(time=1), model=model, factor=4, members=1, seed=0)
    with pytest.raises(InvalidInputError, match="below zero"):
        ens.compute()


def test_6_negative_rain_refused_in_training(rng):
    from xstochsr.training.data import load_training_data

    da = projected_field(rng, nt=4, ny=8, nx=8)
    da[1, 2, 2] = -0.5
    with pytest.raises(InvalidInputError, match="below zero"):
        load_training_data(da, factor=4)


def test_6_bilinear_conserve_on_rain_is_multiplicative(rng):
    da = small(rng, ny=5, nx=6)
    da[:, :2, :2] = 0.0  # dry corner beside wet cells
    ens = xstochsr.downscale(da, model="bilinear", factor=4, members=1, seed=0,
                             conserve=True)
    assert "multiplicative" in ens.attrs["history"]
    assert float(ens.min()) >= 0.0
    blocks = ens.isel(realization=0).coarsen(y=4, x=4).mean()
    np.testing.assert_allclose(blocks.values, da.values, rtol=1e-5, atol=1e-6)


# --- 7: integer coordinates ----------------------------------------------------------------


def test_7_integer_coordinates_nest_as_floats(rng):
    da = xr.DataArray(rain_values(rng, (2, 8)), dims=("y", "x"),
                      coords={"y": [0, 1], "x": np.arange(8)},
                      attrs={"units": "mm h-1"})
    ens = xstochsr.downscale(da, model="bilinear", factor=4, members=1, seed=0)
    x = ens["x"].values
    assert x.dtype.kind == "f"
    np.testing.assert_allclose(x[:4], [-0.375, -0.125, 0.125, 0.375])
    np.testing.assert_allclose(x.reshape(8, 4).mean(axis=1), np.arange(8), atol=1e-12)
    assert len(np.unique(x)) == x.size


# --- 9: non-dimension lon/lat -------------------------------------------------------------


def _lonlat_beside_dims(rng, lon):
    return xr.DataArray(
        rain_values(rng, (2, 4, lon.size)), dims=("time", "y", "x"), name="pr",
        coords={"time": pd.date_range("2021-01-01", periods=2, freq="h"),
                "lon": ("x", lon, {"units": "degrees_east", "standard_name": "longitude"}),
                "lat": ("y", 40.0 + 0.5 * np.arange(4),
                        {"units": "degrees_north", "standard_name": "latitude"})},
        attrs={"units": "mm h-1", "standard_name": "lwe_precipitation_rate"})


def test_9_irregular_non_dimension_longitude_refused(rng):
    da = _lonlat_beside_dims(rng, np.array([0.0, 0.5, 1.0, 3.0, 3.5]))
    with pytest.raises(IrregularCoordinateError, match="'lon' is unevenly spaced"):
        xstochsr.downscale(da, model="bilinear", factor=2, members=1, seed=0)
    da = _lonlat_beside_dims(rng, np.array([0.0, 0.5, 1.0, 0.7, 1.5]))
    with pytest.raises(IrregularCoordinateError, match="sortby"):
        xstochsr.downscale(da, model="bilinear", factor=2, members=1, seed=0)


def test_9_non_dimension_lonlat_kept_and_nested(rng):
    da = _lonlat_beside_dims(rng, 10.0 + 0.5 * np.arange(5))
    ens = xstochsr.downscale(da, model="bilinear", factor=2, members=1, seed=0)
    assert ens["lon"].dims == ("x",) and ens["lat"].dims == ("y",)
    assert ens["lon"].attrs["standard_name"] == "longitude"
    np.testing.assert_allclose(ens["lon"].values.reshape(5, 2).mean(axis=1), da["lon"].values)
    np.testing.assert_allclose(ens["lat"].values.reshape(4, 2).mean(axis=1), da["lat"].values)


# --- 11: raw errors become package errors naming the fix -------------------------------


@pytest.mark.parametrize("kw, match", [
    (dict(seed=-1), "seed=0"),
    (dict(seed=1.5), "seed=0"),
    (dict(device="tpu"), "device='cpu'"),
    (dict(time_chunk=2.5), "time_chunk=16"),
    (dict(batch_size=0), "batch_size=8"),
    (dict(members=0), "members=10"),
    (dict(members=[1, 1]), "members=10"),
    (dict(factor=4096), "factor <= 64"),
])
def test_11_settings_refused_with_the_fix(rng, kw, match):
    kw = {"factor": 2, "members": 1, **kw}
    with pytest.raises(XStochSRError, match=match):
        xstochsr.downscale(small(rng), model="bilinear", **kw)


def test_11_factor_4096_is_unsupported_not_memory_error(rng):
    with pytest.raises(UnsupportedFactorError):
        xstochsr.downscale(small(rng), model="bilinear", factor=4096, members=1)


def test_11_output_larger_than_memory_refused(rng, monkeypatch):
    monkeypatch.setattr(validation, "MEMORY_FRACTION", 1e-9)
    with pytest.raises(InvalidInputError, match="dask"):
        xstochsr.downscale(small(rng), model="bilinear", factor=2, members=1)


def test_11_cuda_missing_is_a_clear_error(rng):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InvalidInputError, match="not available"):
        xstochsr.downscale(small(rng), model="bilinear", factor=2, members=1, device="cuda")


@pytest.mark.parametrize("ref", ["", "   ", None, 3])
def test_11_load_model_of_nothing(ref):
    with pytest.raises(UnknownModelError, match="list_models"):
        xstochsr.load_model(ref)


def test_11_full_disk_names_the_problem(rng, tmp_path, monkeypatch):
    from xstochsr.io import write_netcdf

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(OutputError, match="no space left on device") as err:
        write_netcdf(small(rng).to_dataset(), tmp_path / "out.nc")
    assert "Free some space" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_11_full_disk_in_the_cli(rng, tmp_path, monkeypatch, capsys):
    from xstochsr.cli import main

    src = tmp_path / "in.nc"
    small(rng).drop_vars("crs").to_dataset().to_netcdf(src)

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    rc = main(["downscale", str(src), str(tmp_path / "out.nc"), "--model", "bilinear",
               "--factor", "2", "--members", "1"])
    assert rc == 2
    assert "no space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nc"]


def test_11_infinite_values_refused(rng):
    da = small(rng)
    da[0, 0, 0] = np.inf
    with pytest.raises(InvalidInputError, match=r"np.isfinite"):
        xstochsr.downscale(da, model="bilinear", factor=2, members=1)


@pytest.mark.parametrize("dtype", [bool, complex, "U3"])
def test_11_non_numeric_dtype_refused(rng, dtype):
    da = small(rng)
    da = da.copy(data=np.zeros(da.shape, dtype=dtype))
    with pytest.raises(InvalidInputError, match="astype"):
        xstochsr.downscale(da, model="bilinear", factor=2, members=1)


def test_verify_entry_check_refuses_infinities(rng):
    ens = small(rng).expand_dims(realization=2).copy()
    obs = small(rng)
    ens[0, 0, 0, 0] = -np.inf
    with pytest.raises(InvalidInputError, match="np.isfinite"):
        xstochsr.verify(ens, obs)
