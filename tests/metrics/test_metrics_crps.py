import numpy as np
import properscoring as ps
import pytest
import xarray as xr
import xskillscore as xs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.lib.stride_tricks import sliding_window_view

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import CRPSAccumulator, crps, mae, pooled_crps


def brute_force_crps(x, y, fair):
    """O(M^2) textbook formula over the last axis of x."""
    m = x.shape[-1]
    skill = np.abs(x - y[..., None]).mean(-1)
    pairs = np.abs(x[..., :, None] - x[..., None, :]).sum((-1, -2))
    return skill - pairs / (2 * m * (m - 1) if fair else 2 * m * m)


def test_matches_properscoring_per_point(pair):
    ens, obs = pair
    ours = crps(ens, obs, dim=[])
    ref = ps.crps_ensemble(obs.values, np.moveaxis(ens.values, 0, -1))
    np.testing.assert_allclose(ours.transpose(*obs.dims).values, ref, rtol=1e-10, atol=1e-12)
    assert ours.attrs["units"] == "mm/h"
    assert ours.name == "crps"


def test_matches_xskillscore_mean(pair):
    ens, obs = pair
    ref = xs.crps_ensemble(obs, ens, member_dim="realization", dim=["y", "x"])
    xr.testing.assert_allclose(crps(ens, obs, dim=["y", "x"]), ref.rename("crps"), rtol=1e-10)
    assert crps(ens, obs).ndim == 0


def test_fair_matches_brute_force(pair):
    ens, obs = pair
    ours = crps(ens, obs, dim=[], fair=True)
    ref = brute_force_crps(np.moveaxis(ens.values, 0, -1), obs.values, fair=True)
    np.testing.assert_allclose(ours.transpose(*obs.dims).values, ref, rtol=1e-10, atol=1e-12)
    assert ours.name == "crps_fair"
    # the fair score is below the standard one by the finite-ensemble term
    assert float(crps(ens, obs, fair=True)) < float(crps(ens, obs))


def test_fair_needs_two_members(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError, match="at least 2"):
        crps(ens.isel(realization=[0]), obs, fair=True)


def test_nan_cases_skipped():
    ens = xr.DataArray([[0.0, np.nan, 1.0], [1.0, 1.0, 1.0]], dims=("realization", "x"))
    obs = xr.DataArray([0.5, 0.5, np.nan], dims="x")
    per_point = crps(ens, obs, dim=[])
    assert np.isnan(per_point.values[1:]).all()
    assert float(crps(ens, obs)) == pytest.approx(0.25)


def test_dask_lazy(pair, counting_scheduler):
    ens, obs = pair
    lazy = crps(ens.chunk(time=1, realization=4), obs.chunk(time=1), dim=["y", "x"], fair=True)
    lazy_pooled = pooled_crps(ens.chunk(time=1), obs, k=4, method="max")
    assert lazy.chunks is not None and lazy_pooled.chunks is not None
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(lazy.compute(), crps(ens, obs, dim=["y", "x"], fair=True))
    xr.testing.assert_allclose(lazy_pooled.compute(), pooled_crps(ens, obs, k=4, method="max"))


def _pool_np(a, k, method, stride):
    w = sliding_window_view(a, (k, k), axis=(-2, -1))[..., ::stride, ::stride, :, :]
    return w.mean((-1, -2)) if method == "avg" else w.max((-1, -2))


@pytest.mark.parametrize("method", ["avg", "max"])
@pytest.mark.parametrize("k, stride", [(4, None), (3, None), (3, 1), (2, 2)])
def test_pooled_matches_manual_pooling(pair, method, k, stride):
    ens, obs = pair
    s = k if stride is None else stride
    pe = _pool_np(ens.values, k, method, s)  # (M, T, Y', X')
    po = _pool_np(obs.values, k, method, s)
    ref = ps.crps_ensemble(po, np.moveaxis(pe, 0, -1)).mean()
    got = pooled_crps(ens, obs, k=k, method=method, stride=stride)
    assert float(got) == pytest.approx(ref, rel=1e-10)
    assert got.attrs["pool_size"] == k and got.attrs["units"] == "mm/h"


def test_pooled_k1_is_plain_crps(pair):
    ens, obs = pair
    assert float(pooled_crps(ens, obs, k=1)) == pytest.approx(float(crps(ens, obs)))


def test_pooled_errors(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError, match="larger than the domain"):
        pooled_crps(ens, obs, k=32)
    with pytest.raises(InvalidInputError, match="method"):
        pooled_crps(ens, obs, method="median")


def test_accumulator_matches_one_shot(pair):
    ens, obs = pair
    for dim, fair in [(None, False), (["time"], True)]:
        acc = CRPSAccumulator(dim=dim, fair=fair)
        for t in range(3):
            acc.update(ens.isel(time=[t]).chunk(), obs.isel(time=[t]))
        xr.testing.assert_allclose(acc.compute(), crps(ens, obs, dim=dim, fair=fair))
    with pytest.raises(InvalidInputError):
        CRPSAccumulator().compute()


finite = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), members=st.integers(1, 8))
def test_crps_nonnegative(data, members):
    x = data.draw(arrays(float, (members, 5), elements=finite))
    y = data.draw(arrays(float, (5,), elements=finite))
    ens = xr.DataArray(x, dims=("realization", "x"))
    obs = xr.DataArray(y, dims="x")
    assert (crps(ens, obs, dim=[]) >= 0).all()
    if members > 1:
        assert (crps(ens, obs, dim=[], fair=True) >= 0).all()


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(float, (1, 6), elements=finite),
    y=arrays(float, (6,), elements=finite),
)
def test_one_member_crps_equals_mae(x, y):
    ens = xr.DataArray(x, dims=("realization", "x"))
    obs = xr.DataArray(y, dims="x")
    assert float(crps(ens, obs)) == pytest.approx(float(mae(ens, obs)), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(crps(ens, obs, dim=[]).values, np.abs(x[0] - y), atol=1e-12)
