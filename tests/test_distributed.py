"""dask.distributed: a LocalCluster of two worker processes gives the in-process result.

Torch's thread count changes a convolution's float rounding, so the comparison fixes it
(``xstochsr.parallel``); with it fixed the results are bit-identical.
"""

from __future__ import annotations

import dask
import distributed
import numpy as np
import pytest
import torch
from fields import projected_field, tiny_model

import xstochsr
from xstochsr import parallel
from xstochsr.errors import InvalidInputError


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def field():
    return projected_field(np.random.default_rng(5), nt=4, ny=24, nx=24, dx=24000.0)


@pytest.fixture(scope="module")
def model():
    return xstochsr.load_model("rain-x8")


def _down(da, model, **kw):
    kw = {"members": 3, "batch_size": 2, **kw}
    return xstochsr.downscale(da, model=model, seed=11, progress=False, **kw)


@pytest.fixture
def two_threads():
    """In-process torch at 2 threads (as on CI's two cores), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_cluster_equals_in_process_bit_for_bit(client, field, model, two_threads):
    lazy = _down(field.chunk(time=2), model)
    on_cluster = lazy.compute()  # the active Client computes it
    assert lazy.attrs == on_cluster.attrs
    with dask.config.set({parallel.CONFIG_KEY: 1}):  # the workers' one thread per task
        in_process = _down(field, model)
    np.testing.assert_array_equal(on_cluster.values, in_process.values)
    assert torch.get_num_threads() == 2  # restored after the run


def test_configured_threads_travel_to_the_workers(client, field, model, two_threads):
    with dask.config.set({parallel.CONFIG_KEY: 2}):
        lazy = _down(field.chunk(time=2), model)  # the plan records 2
        in_process = _down(field, model)
    np.testing.assert_array_equal(lazy.compute().values, in_process.values)


def test_tiled_member_on_cluster(client):
    """Tiles are tasks of their own, taking their neighbours' GRU state every frame;
    member 2 alone, on the cluster as in process."""
    da = projected_field(np.random.default_rng(6), nt=4, ny=32, nx=28)
    tiny = tiny_model(factor=2, width=8, noise_channels=4)
    with dask.config.set({parallel.CONFIG_KEY: 1}):
        lazy = _down(da.chunk(time=2), tiny, members=[2], tile=14)
        one = _down(da, tiny, members=[2], tile=14)
    np.testing.assert_array_equal(lazy.compute().values, one.values)


def test_tile_stream_spreads_one_member_over_the_workers(client, tmp_path):
    """A zarr store written tile by tile: one member of one sequence, its tiles' tasks on
    both workers, the same bits as the threads of this process."""
    pytest.importorskip("zarr")
    import xarray as xr

    from xstochsr.streaming import downscale_to_zarr

    da = projected_field(np.random.default_rng(6), nt=3, ny=32, nx=28)
    tiny = tiny_model(factor=2, width=8, noise_channels=4)
    kw = {"model": tiny, "members": [2], "seed": 11, "tile": 12}
    with dask.config.set({parallel.CONFIG_KEY: 1}):
        on_cluster = downscale_to_zarr(da, tmp_path / "cluster.zarr", **kw)
        with dask.config.set(scheduler="threads"):
            here = downscale_to_zarr(da, tmp_path / "here.zarr", **kw)
    ran = client.run(lambda dask_worker: len({  # the tile tasks each worker ran
        str(e[0]) for e in dask_worker.state.log if "run_tile" in str(e[0])}))
    assert len(ran) == 2 and all(n > 0 for n in ran.values()), ran
    np.testing.assert_array_equal(xr.open_zarr(on_cluster)["precip"].values,
                                  xr.open_zarr(here)["precip"].values)


def test_worker_tasks_use_one_torch_thread_per_worker_thread(client):
    def probe():
        with parallel.torch_threads(None) as n:
            return n, torch.get_num_threads()

    assert client.submit(probe, pure=False).result() == (1, 1)
    assert parallel.task_threads(None) is None  # not a worker: torch left as it is


def test_torch_threads_are_restored(two_threads):
    with parallel.torch_threads(3) as n:
        assert n == torch.get_num_threads() == 3
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "many"])
def test_bad_thread_setting_is_refused(bad):
    with dask.config.set({parallel.CONFIG_KEY: bad}):
        with pytest.raises(InvalidInputError, match="whole number >= 1"):
            parallel.configured_threads()


def test_connect_to_a_dead_address_fails_fast_naming_the_fix():
    import socket
    import time

    from xstochsr.errors import SchedulerConnectionError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    t0 = time.perf_counter()
    with pytest.raises(SchedulerConnectionError, match="Start the scheduler") as info:
        parallel.connect(address, timeout=1)
    assert time.perf_counter() - t0 < 8
    assert address in str(info.value) and isinstance(info.value, OSError)
    with pytest.raises(InvalidInputError, match="seconds > 0"):
        parallel.connect(address, timeout=0)
