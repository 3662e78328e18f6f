"""Invariants of the temporal, wet-case and block scores (hypothesis)."""

import warnings

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xstochsr.metrics import block_edge_ratio, lag_autocorrelation, rank_statistics

# values on a grid: an affine map of arbitrary floats can merge distinct ones (x + 50 == 50)
finite = st.integers(-100, 100).map(float)


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    scale=st.floats(0.01, 100),
    shift=st.floats(-50, 50),
)
def test_lag_correlation_bounded_and_affine_invariant(data, scale, shift):
    e = data.draw(arrays(float, (2, 5, 3, 3), elements=finite))
    o = data.draw(arrays(float, (5, 3, 3), elements=finite))
    dims = ("time", "y", "x")
    ens, obs = xr.DataArray(e, dims=("realization", *dims)), xr.DataArray(o, dims=dims)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 warning, even for constant sequences
        a = lag_autocorrelation(ens, obs, lags=[1, 2])
        b = lag_autocorrelation(scale * ens + shift, scale * obs + shift, lags=[1, 2])
    for name in ("members", "observation"):
        v = a[name].values
        assert np.all(np.isnan(v) | ((v >= -1 - 1e-9) & (v <= 1 + 1e-9)))
        # constant sequences stay NaN after a shift (no correlation of rounding errors)
        np.testing.assert_allclose(b[name].values, v, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), threshold=st.sampled_from([0.0, 0.1, 1.0]))
def test_wet_counts_are_the_wet_cases(data, threshold):
    vals = st.one_of(st.just(0.0), st.just(np.nan), st.floats(0, 3))
    e = data.draw(arrays(float, (3, 12), elements=vals))
    o = data.draw(arrays(float, (12,), elements=vals))
    ens, obs = xr.DataArray(e, dims=("realization", "x")), xr.DataArray(o, dims="x")
    stats = rank_statistics(ens, obs, threshold=threshold)
    valid = np.isfinite(o) & np.isfinite(e).all(axis=0)
    wet = valid & ((o >= threshold) | (e >= threshold).any(axis=0))
    assert int(stats.n_cases) == int(wet.sum()) == int(stats.rank_histogram.sum())
    assert float(stats.calibrated_outlier_proportion) == 0.5


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    factor=st.integers(2, 4),
    scale=st.floats(0.1, 10),
    shift=st.floats(-10, 10),
)
def test_block_ratio_scale_and_shift_invariant(data, factor, scale, shift):
    # values on a 0.1 grid: an affine map of arbitrary floats can merge distinct ones
    # (a denormal 2e-313 beside zeros scores 0, and after "+ 1" the field is constant: NaN)
    f = data.draw(arrays(float, (9, 10), elements=st.integers(-50, 50).map(lambda v: v / 10)))
    da = xr.DataArray(f, dims=("y", "x"))
    a = float(block_edge_ratio(da, factor=factor))
    b = float(block_edge_ratio(scale * da + shift, factor=factor))
    assert (np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=1e-9) or (a == b == np.inf)
    assert np.isnan(a) or a >= 0
