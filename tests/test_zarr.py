"""Streaming to zarr: ens.to_zarr on lazy output, region by region writes, resume."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
import xarray as xr
from fields import projected_field, tiny_model

import xstochsr
from xstochsr import streaming
from xstochsr.cli import main
from xstochsr.errors import StoreMismatchError, XStochSRError

pytest.importorskip("zarr")

KW = {"members": 3, "seed": 4, "time_chunk": 2, "batch_size": 2}


@pytest.fixture(scope="module")
def field():
    return projected_field(np.random.default_rng(3), nt=6, ny=8, nx=8)


@pytest.fixture
def model():
    return tiny_model(factor=4, width=8)


@pytest.fixture(scope="module")
def reference(field):
    """The lazy run computed in memory: what every store must hold, bit for bit."""
    m = tiny_model(factor=4, width=8)
    return xstochsr.downscale(field.chunk(time=2), model=m, progress=False, **KW).compute()


class Calls:
    """Count a model's chunk calls; raise on call number ``fail_at`` (1-based)."""

    def __init__(self, model, fail_at=None):
        self.run, self.n, self.fail_at = model.run, 0, fail_at
        model.run = self

    def __call__(self, *args, **kwargs):
        self.n += 1
        if self.n == self.fail_at:
            raise RuntimeError("interrupted on purpose")
        return self.run(*args, **kwargs)


def _values(path, name="precip"):
    return xr.open_zarr(path)[name].values


def test_to_zarr_on_lazy_output(tmp_path, field, model, reference):
    ens = xstochsr.downscale(field.chunk(time=2), model=model, progress=False, **KW)
    ens.to_zarr(tmp_path / "lazy.zarr")
    back = xr.open_zarr(tmp_path / "lazy.zarr")[ens.name]
    np.testing.assert_array_equal(back.values, reference.values)
    assert back.attrs["xstochsr_seed"] == 4


def test_stream_writes_each_chunk_once(tmp_path, field, model, reference):
    calls = Calls(model)
    path = streaming.downscale_to_zarr(field, tmp_path / "ens.zarr", model=model, **KW)
    assert calls.n == 2 * 3  # (members 0-1, member 2) x 3 time chunks, none run twice
    np.testing.assert_array_equal(_values(path), reference.values)
    opened = xr.open_zarr(path)
    assert opened.attrs[streaming.STATUS_ATTR] == "complete"
    assert opened.attrs[streaming.DONE_ATTR] == [[0, 2], [2, 4], [4, 6]]
    assert opened.chunks["time"] == (1,) * 6
    np.testing.assert_array_equal(opened["time"].values, field["time"].values)
    assert not (tmp_path / "ens.zarr.xstochsr-states").exists()  # removed when complete


def test_interrupted_stream_resumes_only_missing_regions(tmp_path, field, model, reference):
    path = tmp_path / "ens.zarr"
    Calls(model, fail_at=4)  # chunk order: region by region, two member blocks each
    # synchronous: no task of the failed run still writing in another thread afterwards
    with pytest.raises(RuntimeError, match="on purpose"), dask.config.set(scheduler="sync"):
        streaming.downscale_to_zarr(field, path, model=model, **KW)
    record = streaming.store_record(path)
    assert record["status"] == "incomplete" and record["done"] == [(0, 2)]
    opened = xr.open_zarr(path)  # consolidated metadata: a reader is told it is partial
    assert opened.attrs[streaming.STATUS_ATTR] == "incomplete"
    np.testing.assert_array_equal(opened["precip"].values[:, :2], reference.values[:, :2])

    model.run = model.run.run
    calls = Calls(model)
    kw = {k: v for k, v in KW.items() if k != "seed"}  # the recorded seed is reused
    streaming.downscale_to_zarr(field, path, model=model, **kw)
    assert calls.n == 2 * 2  # regions 2-4 and 4-6 only; region 0-2 not run again
    np.testing.assert_array_equal(_values(path), reference.values)
    assert streaming.store_record(path)["status"] == "complete"
    streaming.downscale_to_zarr(field, path, model=model, **kw)
    assert calls.n == 4  # a complete store: nothing to do


def test_other_settings_or_foreign_store_refused(tmp_path, field, model):
    path = tmp_path / "ens.zarr"
    streaming.downscale_to_zarr(field, path, model=model, **KW)
    with pytest.raises(StoreMismatchError, match=r"members: store 3, now 2.*overwrite=True"):
        streaming.downscale_to_zarr(field, path, model=model, **{**KW, "members": 2})
    with pytest.raises(StoreMismatchError, match="seed"):
        streaming.downscale_to_zarr(field, path, model=model, **{**KW, "seed": 5})
    out = streaming.downscale_to_zarr(field, path, model=model, overwrite=True,
                                      **{**KW, "members": 2})
    assert xr.open_zarr(out).sizes["realization"] == 2
    field.to_dataset().to_zarr(tmp_path / "other.zarr")
    with pytest.raises(StoreMismatchError, match="not written by xstochsr"):
        streaming.downscale_to_zarr(field, tmp_path / "other.zarr", model=model, **KW)
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(XStochSRError, match="another path"):
        streaming.downscale_to_zarr(field, tmp_path / "file.zarr", model=model, **KW)


def test_stale_states_of_a_deleted_store_are_not_reused(tmp_path, field, model, reference):
    import shutil

    path = tmp_path / "ens.zarr"
    Calls(model, fail_at=4)
    with pytest.raises(RuntimeError), dask.config.set(scheduler="sync"):
        streaming.downscale_to_zarr(field, path, model=model, **KW)
    shutil.rmtree(path)  # the user deletes the store but not the states beside it
    model.run = model.run.run
    streaming.downscale_to_zarr(field, path, model=model, **KW)
    np.testing.assert_array_equal(_values(path), reference.values)


def test_cli_streams_resumes_and_refuses(tmp_path, field, monkeypatch, capsys, reference):
    from xstochsr.models.gan import GANModel

    src, out = tmp_path / "in.nc", tmp_path / "out.zarr"
    field.to_dataset().to_netcdf(src)
    tiny_model(factor=4, width=8).save(tmp_path / "tiny")
    args = ["downscale", str(src), str(out), "--model", str(tmp_path / "tiny"),
            "--members", "3", "--seed", "4", "--time-chunk", "2", "--batch-size", "2",
            "--no-progress"]
    run, n = GANModel.run, []

    def failing(self, *a, **kw):
        n.append(1)
        if len(n) == 3:
            raise RuntimeError("interrupted on purpose")
        return run(self, *a, **kw)

    monkeypatch.setattr(GANModel, "run", failing)
    with pytest.raises(RuntimeError), dask.config.set(scheduler="sync"):
        main(args)
    assert streaming.store_record(out)["done"] == [(0, 2)]
    monkeypatch.setattr(GANModel, "run", run)
    assert main(args) == 0
    assert "complete, 3 region(s)" in capsys.readouterr().out
    back = xr.open_zarr(out)
    np.testing.assert_array_equal(back["precip"].values, reference.values)
    assert json.loads(back.attrs[streaming.SETTINGS_ATTR])["members"] == 3
    two = [a if a != "3" else "2" for a in args]  # --members 2
    assert main(two) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*two, "--overwrite"]) == 0
    assert xr.open_zarr(out).sizes["realization"] == 2
