import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import block_edge_ratio


def smooth(rng, shape, sigma=3.0):
    return gaussian_filter(rng.normal(size=shape), (0,) * (len(shape) - 2) + (sigma, sigma),
                           mode="wrap")


def test_smooth_random_field_scores_one(make_field, rng):
    truth = make_field(smooth(rng, (6, 64, 64)))
    r = block_edge_ratio(truth, factor=8)
    assert r.name == "block_edge_ratio" and r.attrs["factor"] == 8
    assert float(r) == pytest.approx(1.0, abs=0.05)
    per_frame = block_edge_ratio(truth, factor=8, dim=[])
    assert per_frame.dims == ("time",)


def test_piecewise_constant_blocks_are_infinitely_blocky(make_field, rng):
    blocks = np.kron(rng.random((2, 8, 8)), np.ones((1, 4, 4)))
    assert float(block_edge_ratio(make_field(blocks), factor=4)) == np.inf
    # a constant field has no gradient at all: undefined, not blocky
    assert np.isnan(float(block_edge_ratio(make_field(np.ones((2, 8, 8))), factor=4)))


def test_nearest_upsample_is_detected(make_field, rng):
    fine = smooth(rng, (4, 64, 64))
    coarse = fine.reshape(4, 8, 8, 8, 8).mean(axis=(2, 4))
    nearest = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    texture = 0.2 * smooth(rng, (4, 64, 64), sigma=1.0) / smooth(rng, (4, 64, 64), 1.0).std()
    up = make_field(nearest + texture * nearest.std())
    r = float(block_edge_ratio(up, factor=8))
    assert 3 < r < np.inf
    assert float(block_edge_ratio(make_field(fine), factor=8)) < 1.1
    # edges sit on the factor-8 grid: scored at a factor they do not follow, blocks hide
    assert float(block_edge_ratio(up, factor=3)) < 0.5 * r


def test_by_hand_and_offset():
    # rows 0 1 2 | 10 11 12 at factor 3, four rows alike (y steps are all 0)
    row = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 12.0])
    da = xr.DataArray(np.tile(row, (4, 1)), dims=("y", "x"))
    # x: per row 4 inner steps of 1 and 1 edge step of 8; y: per column 2 inner, 1 edge (0)
    inner = (4 * 4 * 1.0) / (4 * 4 + 6 * 2)
    edge = (4 * 8.0) / (4 * 1 + 6 * 1)
    assert float(block_edge_ratio(da, factor=3)) == pytest.approx(edge / inner)
    # cut one column off: the block edge now follows index 1, so blocks start at 2
    cut = da.isel(x=slice(1, None))
    inner = (4 * 3 * 1.0) / (4 * 3 + 5 * 2)
    edge = (4 * 8.0) / (4 * 1 + 5 * 1)
    assert float(block_edge_ratio(cut, factor=3, offset=(0, 2))) == pytest.approx(edge / inner)
    assert float(block_edge_ratio(cut, factor=3)) < 1  # the jump counted as inside


def test_nan_masked_and_lazy(make_field, rng, counting_scheduler):
    vals = np.kron(rng.random((2, 8, 8)), np.ones((1, 4, 4))) + 0.05 * rng.random((2, 32, 32))
    vals[:, :5, :] = np.nan
    da = make_field(vals)
    lazy = block_edge_ratio(da.chunk(time=1), factor=4)
    assert counting_scheduler.calls == 0
    eager = block_edge_ratio(da, factor=4)
    assert np.isfinite(float(eager)) and float(eager) > 5
    xr.testing.assert_allclose(lazy.compute(), eager)


def test_errors(make_field, rng):
    da = make_field(rng.random((2, 8, 8)))
    with pytest.raises(InvalidInputError, match=">= 2"):
        block_edge_ratio(da, factor=1)
    with pytest.raises(InvalidInputError, match=">= 2"):
        block_edge_ratio(da, factor=2.5)
    with pytest.raises(InvalidInputError, match="no block edge"):
        block_edge_ratio(da, factor=8)
