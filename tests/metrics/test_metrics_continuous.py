import numpy as np
import pytest
import xarray as xr
import xskillscore as xs

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import bias, mae, rmse, spread_skill_ratio


@pytest.mark.parametrize("dim", [None, ["y", "x"], "time", []])
def test_against_xskillscore(pair, dim):
    ens, obs = pair
    em = ens.mean("realization")
    ref_dim = list(obs.dims) if dim is None else dim
    for ours, ref in [
        (rmse(ens, obs, dim=dim), xs.rmse(em, obs, dim=ref_dim)),
        (mae(ens, obs, dim=dim), xs.mae(em, obs, dim=ref_dim)),
        (bias(ens, obs, dim=dim), xs.me(em, obs, dim=ref_dim)),
    ]:
        np.testing.assert_allclose(ours.values, ref.transpose(*ours.dims).values, rtol=1e-10)
        assert ours.attrs["units"] == "mm/h"


def test_member_average_rmse(pair):
    ens, obs = pair
    ref = np.sqrt(((ens.values - obs.values) ** 2).mean(axis=(1, 2, 3))).mean()
    assert float(rmse(ens, obs, ensemble_mean=False)) == pytest.approx(ref)
    assert float(rmse(ens, obs, ensemble_mean=False)) > float(rmse(ens, obs))


def test_bias_sign():
    ens = xr.DataArray([[2.0, 3.0]], dims=("realization", "x"))
    obs = xr.DataArray([1.0, 1.0], dims="x")
    assert float(bias(ens, obs)) == 1.5


def test_nan_skipped_consistently():
    ens = xr.DataArray([[1.0, np.nan, 3.0], [1.0, 5.0, 3.0]], dims=("realization", "x"))
    obs = xr.DataArray([0.0, 0.0, np.nan], dims="x")
    assert float(rmse(ens, obs)) == 1.0
    assert float(mae(ens, obs)) == 1.0
    assert float(rmse(ens, obs, ensemble_mean=False)) == 1.0


def test_spread_skill_formula(pair):
    ens, obs = pair
    e = ens.values
    m = e.shape[0]
    spread = np.sqrt(e.var(axis=0, ddof=1).mean())
    skill = np.sqrt(((e.mean(0) - obs.values) ** 2).mean())
    got = spread_skill_ratio(ens, obs)
    assert float(got) == pytest.approx(np.sqrt((m + 1) / m) * spread / skill)
    plain = spread_skill_ratio(ens, obs, finite_ensemble_correction=False)
    assert float(plain) == pytest.approx(spread / skill)
    assert got.attrs["units"] == "1"


def test_spread_skill_calibrated_and_underdispersed(rng):
    m, n = 5, 40000
    mu = rng.normal(size=n)
    obs = xr.DataArray(mu + rng.normal(size=n), dims="x")
    good = xr.DataArray(mu + rng.normal(size=(m, n)), dims=("realization", "x"))
    narrow = xr.DataArray(mu + 0.3 * rng.normal(size=(m, n)), dims=("realization", "x"))
    assert float(spread_skill_ratio(good, obs)) == pytest.approx(1.0, abs=0.03)
    assert float(spread_skill_ratio(narrow, obs)) < 0.5


def test_spread_skill_needs_two_members(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError, match="at least 2"):
        spread_skill_ratio(ens.isel(realization=[0]), obs)


def test_obs_broadcast_and_member_in_obs(pair):
    ens, obs = pair
    # obs with a length-1 member dim is accepted; obs lacking time is broadcast
    assert float(rmse(ens, obs.expand_dims(realization=[0]))) == float(rmse(ens, obs))
    static = obs.isel(time=0, drop=True)
    assert rmse(ens, static, dim=[]).dims == ("time", "y", "x")
    with pytest.raises(InvalidInputError, match="one field"):
        rmse(ens, ens)
    with pytest.raises(InvalidInputError, match="lacks"):
        rmse(ens.isel(time=0), obs)
    with pytest.raises(InvalidInputError, match="numbers"):
        rmse(ens.astype(str), obs)


def test_dask_lazy(pair, counting_scheduler):
    ens, obs = pair
    outs = [
        f(ens.chunk(time=1), obs.chunk(time=1), dim="time")
        for f in (rmse, mae, bias, spread_skill_ratio)
    ]
    assert all(o.chunks is not None for o in outs)
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(outs[0].compute(), rmse(ens, obs, dim="time"))
