import numpy as np
import pandas as pd
import pytest
import xarray as xr


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _make_field(values, *, units="mm/h", dx=2.0):
    """A (time, y, x) or (realization, time, y, x) field with CF-tagged coordinates."""
    values = np.asarray(values, dtype=float)
    dims = ("time", "y", "x") if values.ndim == 3 else ("realization", "time", "y", "x")
    shape = dict(zip(dims, values.shape, strict=True))
    coords = {
        "time": pd.date_range("2021-07-01", periods=shape["time"], freq="5min"),
        "y": ("y", dx * np.arange(shape["y"]), {"axis": "Y", "units": "km"}),
        "x": ("x", dx * np.arange(shape["x"]), {"axis": "X", "units": "km"}),
    }
    if "realization" in shape:
        coords["realization"] = (
            "realization",
            np.arange(shape["realization"]),
            {"standard_name": "realization"},
        )
    return xr.DataArray(values, dims=dims, coords=coords, name="precip", attrs={"units": units})


@pytest.fixture
def make_field():
    return _make_field


@pytest.fixture
def pair(rng):
    """A perfect 8-member ensemble and its truth, (realization, time, y, x) = (8, 3, 16, 16)."""
    ens = _make_field(rng.gamma(0.7, 2.0, size=(8, 3, 16, 16)))
    obs = _make_field(rng.gamma(0.7, 2.0, size=(3, 16, 16)))
    return ens, obs


class ComputeCounter:
    """A dask scheduler that counts how often it is asked to compute."""

    def __init__(self):
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        import dask

        self.calls += 1
        return dask.get(dsk, keys, **kwargs)


@pytest.fixture
def counting_scheduler():
    import dask

    counter = ComputeCounter()
    with dask.config.set(scheduler=counter):
        yield counter
