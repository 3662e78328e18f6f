"""Writing a tiled domain to zarr tile by tile (xstochsr.tile_stream): untiled values,
chunks of one tile, state on disk, resume after an interruption, refusals."""

from __future__ import annotations

import json
import shutil

import dask
import numpy as np
import pytest
import xarray as xr
from fields import projected_field
from test_tiling import _model, _rel
from test_zarr import Calls

import xstochsr
from xstochsr import streaming, tile_stream
from xstochsr.errors import InvalidInputError
from xstochsr.grid import coarsen_field

pytest.importorskip("zarr")

NT, NY, NX = 4, 30, 26
KW = {"members": 3, "seed": 4, "batch_size": 2}


@pytest.fixture(scope="module")
def field():
    da = projected_field(np.random.default_rng(8), nt=NT, ny=NY, nx=NX)
    da[1, 3:6, 20:24] = np.nan  # a mask (outside radar range) across a tile border
    return da


def _reference(field, model, **kw):
    return xstochsr.downscale(field, model=model, progress=False, **{**KW, **kw})


@pytest.mark.parametrize("constraint", [None, "multiplicative", "additive"])
def test_store_equals_untiled_run(tmp_path, field, constraint):
    m = _model(constraint)
    ref = _reference(field, m)
    path = streaming.downscale_to_zarr(field, tmp_path / "ens.zarr", model=m, tile=12, **KW)
    out = xr.open_zarr(path)
    ens = out["precip"]
    assert ens.dims == ref.dims and ens.shape == ref.shape
    assert _rel(ens.fillna(0), ref.fillna(0)) < 1e-5
    # the same tiles in memory give the same bits (every path runs tiling.step)
    np.testing.assert_array_equal(ens.values, _reference(field, m, tile=12).values)
    np.testing.assert_array_equal(np.isnan(ens.values), np.isnan(ref.values))  # mask kept
    back = coarsen_field(ens.load(), 2)  # block means exact: layer or conserve=, per core
    np.testing.assert_allclose(back.values, np.broadcast_to(field.values, back.shape),
                               rtol=2e-6, atol=2e-6)
    assert out.attrs[streaming.STATUS_ATTR] == "complete"
    assert out.attrs[streaming.DONE_ATTR] == [[t, t + 1] for t in range(NT)]
    assert json.loads(out.attrs[tile_stream.TILES_ATTR]) == {"tile": 12, "halo": 10}
    # one chunk per member, frame and tile core: every task writes chunks of its own
    assert ens.encoding["chunks"] == (1, 1, 24, 24)
    np.testing.assert_array_equal(out["time"].values, field["time"].values)
    np.testing.assert_array_equal(out["x"].values, ref["x"].values)
    assert ens.attrs["xstochsr_seed"] == 4 and ens.attrs["units"] == "mm h-1"
    assert not (tmp_path / "ens.zarr.xstochsr-states").exists()  # removed when complete


def test_one_task_per_member_block_tile_and_frame(tmp_path, field):
    m = _model()
    calls = Calls(m)
    streaming.downscale_to_zarr(field, tmp_path / "ens.zarr", model=m, tile=12, **KW)
    tiles = len(xstochsr.api.prepare_array(field, model=m, tile=12, **KW).plan.tiles.windows())
    assert tiles == 3 * 3
    assert calls.n == NT * 2 * tiles  # (members 0-1, member 2) x tiles x frames, once each


def test_interrupted_store_resumes_from_the_first_unfinished_frame(tmp_path, field):
    m = _model("multiplicative")
    ref = _reference(field, m)
    path = tmp_path / "ens.zarr"
    per_frame = 2 * 9
    Calls(m, fail_at=2 * per_frame + 5)  # in the middle of frame 2
    with pytest.raises(RuntimeError, match="on purpose"), dask.config.set(scheduler="sync"):
        streaming.downscale_to_zarr(field, path, model=m, tile=12, **KW)
    record = streaming.store_record(path)
    assert record["status"] == "incomplete" and record["done"] == [(0, 1), (1, 2)]
    assert (tmp_path / "ens.zarr.xstochsr-states" / "gru.zarr").is_dir()

    m.run = m.run.run
    calls = Calls(m)
    kw = {k: v for k, v in KW.items() if k != "seed"}  # the store's seed is reused
    streaming.downscale_to_zarr(field, path, model=m, tile=12, **kw)
    assert calls.n == 2 * per_frame  # frames 2 and 3 only, from the saved state of frame 1
    got = xr.open_zarr(path)["precip"]
    assert _rel(got.fillna(0), ref.fillna(0)) < 1e-5
    streaming.downscale_to_zarr(field, path, model=m, tile=12, **kw)
    assert calls.n == 2 * per_frame  # complete: nothing to do


def test_resume_without_states_restarts_the_segment(tmp_path, field):
    m = _model()
    ref = _reference(field, m)
    path = tmp_path / "ens.zarr"
    Calls(m, fail_at=2 * 18 + 1)
    with pytest.raises(RuntimeError), dask.config.set(scheduler="sync"):
        streaming.downscale_to_zarr(field, path, model=m, tile=12, **KW)
    shutil.rmtree(tmp_path / "ens.zarr.xstochsr-states")  # lost: the state must be rebuilt
    m.run = m.run.run
    calls = Calls(m)
    streaming.downscale_to_zarr(field, path, model=m, tile=12, **KW)
    assert calls.n == NT * 18
    assert _rel(xr.open_zarr(path)["precip"].fillna(0), ref.fillna(0)) < 1e-5


def test_batched_dims_and_untiled_calls(tmp_path):
    """A level dim is batched (two sequences a call); a domain that needs no tiles takes
    the region-by-region writer as before."""
    one = projected_field(np.random.default_rng(2), nt=3, ny=26, nx=26)
    da = xr.concat([one, one * 0.5], dim="level").assign_coords(level=[850, 500])
    da = da.transpose("time", "level", "y", "x")
    m = _model()
    kw = {"members": 2, "seed": 1, "batch_size": 4}
    ref = xstochsr.downscale(da, model=m, progress=False, **kw)
    path = streaming.downscale_to_zarr(da, tmp_path / "ens.zarr", model=m, tile=12, **kw)
    got = xr.open_zarr(path)["precip"]
    assert got.dims == ref.dims == ("realization", "time", "level", "y", "x")
    assert _rel(got, ref) < 1e-5
    plain = streaming.downscale_to_zarr(da, tmp_path / "plain.zarr", model=m, **kw)
    assert tile_stream.TILES_ATTR not in xr.open_zarr(plain).attrs
    assert _rel(xr.open_zarr(plain)["precip"], ref) < 1e-5


def test_refusals_name_the_fix(tmp_path, field):
    m = _model()
    grid = xr.Dataset(coords={"y": field.y.values[:4], "x": field.x.values[:4]})
    with pytest.raises(InvalidInputError, match="regrid from it lazily"):
        streaming.downscale_to_zarr(field, tmp_path / "a.zarr", model=m, tile=12,
                                    target_grid=grid, **KW)
    assert not (tmp_path / "a.zarr").exists()
    lon = np.r_[np.arange(350.0, 360.0, 1.0), np.arange(0.0, 16.0, 1.0)]
    wrapped = xr.DataArray(
        field.values, dims=("time", "lat", "lon"), name="precip", attrs=field.attrs,
        coords={"time": field.time, "lat": ("lat", 40.0 + np.arange(NY),
                                            {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})})
    with pytest.raises(InvalidInputError, match="Roll the input"):
        streaming.downscale_to_zarr(wrapped, tmp_path / "b.zarr", model=m, tile=12, **KW)
    assert not (tmp_path / "b.zarr").exists()


def test_cli_writes_a_tiled_store_and_resumes(tmp_path, field):
    from xstochsr.cli import main

    m = _model()
    weights, _ = m.save(tmp_path / "tiny")
    src, out = tmp_path / "in.nc", tmp_path / "out.zarr"
    field.to_netcdf(src)
    args = ["downscale", str(src), str(out), "--model", str(weights), "--members", "3",
            "--seed", "4", "--batch-size", "2", "--tile", "12", "--no-progress"]
    assert main(args) == 0
    got = xr.open_zarr(out)
    assert json.loads(got.attrs[tile_stream.TILES_ATTR])["tile"] == 12
    ref = _reference(field, m)
    assert _rel(got["precip"].fillna(0), ref.fillna(0)) < 1e-5
    assert main(args) == 0  # complete: left as it is


def test_a_store_keeps_its_layout_when_resumed_with_another_memory(tmp_path, field,
                                                                  monkeypatch):
    """A tiled store resumed where the default memory budget would not tile (or tile
    otherwise) is finished with its own tiles, and a region-by-region store stays one."""
    from xstochsr import validation

    m = _model()
    ref = _reference(field, m)
    path = tmp_path / "ens.zarr"
    whole = xstochsr.tiling.working_set(m.generator.config, NY, NX)
    frac = validation.DEFAULT_MEMORY_LIMIT_FRACTION
    monkeypatch.setattr(validation, "total_memory", lambda: int(0.9 * whole / frac))
    Calls(m, fail_at=20)
    with pytest.raises(RuntimeError), dask.config.set(scheduler="sync"):
        streaming.downscale_to_zarr(field, path, model=m, **KW)
    tiles = json.loads(xr.open_zarr(path).attrs[tile_stream.TILES_ATTR])
    m.run = m.run.run
    monkeypatch.setattr(validation, "total_memory", lambda: 1 << 50)
    streaming.downscale_to_zarr(field, path, model=m, **KW)
    got = xr.open_zarr(path)
    assert json.loads(got.attrs[tile_stream.TILES_ATTR]) == tiles
    assert _rel(got["precip"].fillna(0), ref.fillna(0)) < 1e-5


def test_gaps_in_time_and_a_single_frame(tmp_path, field):
    """A gap re-initialises the state at the segment's first frame, as in memory; a field
    without time is one region."""
    m = _model()
    gap = field.assign_coords(time=field.time.values + np.array(
        [0, 5, 60, 65], dtype="timedelta64[m]"))  # frames 2-3 after an hour's gap
    ref = _reference(gap, m)
    path = streaming.downscale_to_zarr(gap, tmp_path / "gap.zarr", model=m, tile=12, **KW)
    assert _rel(xr.open_zarr(path)["precip"].fillna(0), ref.fillna(0)) < 1e-5
    flat = field.isel(time=0, drop=True)
    ref = _reference(flat, m)
    path = streaming.downscale_to_zarr(flat, tmp_path / "flat.zarr", model=m, tile=12, **KW)
    got = xr.open_zarr(path)
    assert got["precip"].dims == ("realization", "y", "x")
    assert _rel(got["precip"].fillna(0), ref.fillna(0)) < 1e-5
    assert got.attrs[streaming.DONE_ATTR] == [[0, 1]]
