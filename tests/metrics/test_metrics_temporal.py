import warnings

import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import InvalidInputError, MissingAxisError
from xstochsr.metrics import frame_change, lag_autocorrelation


def ar1(rng, phi, shape):
    """Stationary AR(1) sequences along axis -3 (time), unit variance: (..., T, Y, X)."""
    x = np.empty(shape)
    x[..., 0, :, :] = rng.normal(size=shape[:-3] + shape[-2:])
    for t in range(1, shape[-3]):
        noise = rng.normal(size=shape[:-3] + shape[-2:])
        x[..., t, :, :] = phi * x[..., t - 1, :, :] + np.sqrt(1 - phi**2) * noise
    return x


def test_ar1_gives_phi_to_the_lag(make_field, rng):
    # members with phi 0.9, truth with phi 0.5: both recovered, their difference signed
    ens = make_field(ar1(rng, 0.9, (4, 40, 16, 16)))
    obs = make_field(ar1(rng, 0.5, (40, 16, 16)))
    ac = lag_autocorrelation(ens, obs, lags=[1, 2, 3])
    assert ac.ensemble.dims == ("lag",) and ac.lag.values.tolist() == [1, 2, 3]
    np.testing.assert_allclose(ac.ensemble, [0.9, 0.81, 0.729], atol=0.03)
    np.testing.assert_allclose(ac.observation, [0.5, 0.25, 0.125], atol=0.04)
    np.testing.assert_allclose(ac.difference, ac.ensemble - ac.observation)
    assert ac.members.sizes["realization"] == 4
    np.testing.assert_allclose(ac.members.mean("realization"), ac.ensemble)
    assert ac.ensemble.attrs["units"] == "1"


def test_frozen_field_is_one_and_white_noise_is_zero(make_field, rng):
    frozen = np.repeat(rng.gamma(0.7, 2.0, size=(1, 16, 16)), 12, axis=0)
    noise = rng.normal(size=(3, 12, 16, 16))
    ac = lag_autocorrelation(make_field(noise), make_field(frozen), lags=1)
    assert ac.lag.ndim == 0 and int(ac.lag) == 1
    assert float(ac.observation) == pytest.approx(1.0, abs=1e-12)
    assert abs(float(ac.ensemble)) < 0.05
    assert float(ac.difference) == pytest.approx(float(ac.ensemble) - 1.0)


def test_matches_numpy_by_hand(make_field, rng):
    vals = rng.normal(size=(2, 5, 4, 4))
    obs_vals = rng.normal(size=(5, 4, 4))
    ac = lag_autocorrelation(make_field(vals), make_field(obs_vals), lags=2)
    a, b = obs_vals[:-2].ravel(), obs_vals[2:].ravel()
    assert float(ac.observation) == pytest.approx(np.corrcoef(a, b)[0, 1])
    m1 = np.corrcoef(vals[1, :-2].ravel(), vals[1, 2:].ravel())[0, 1]
    assert float(ac.members[1]) == pytest.approx(m1)


def test_per_point_and_nan_pairs_skipped(make_field, rng):
    vals = ar1(rng, 0.7, (2, 30, 4, 4))
    obs_vals = ar1(rng, 0.7, (30, 4, 4))
    obs_vals[10, 0, 0] = np.nan  # drops pairs (9, 10) and (10, 11) at that point
    ens, obs = make_field(vals), make_field(obs_vals)
    per_point = lag_autocorrelation(ens, obs, lags=1, dim=[])
    assert set(per_point.observation.dims) == {"y", "x"}
    keep = np.ones(29, bool)
    keep[[9, 10]] = False
    s = obs_vals[:, 0, 0]
    want = np.corrcoef(s[:-1][keep], s[1:][keep])[0, 1]
    assert float(per_point.observation.sel(y=0, x=0)) == pytest.approx(want)
    # the members are scored on the same pairs
    e = vals[0, :, 0, 0]
    want_m = np.corrcoef(e[:-1][keep], e[1:][keep])[0, 1]
    assert float(per_point.members.isel(realization=0, y=0, x=0)) == pytest.approx(want_m)


def test_dask_lazy_and_equal(make_field, rng, counting_scheduler):
    ens = make_field(ar1(rng, 0.8, (3, 10, 8, 8)))
    obs = make_field(ar1(rng, 0.8, (10, 8, 8)))
    lazy = lag_autocorrelation(ens.chunk(time=3), obs.chunk(time=3))
    fc = frame_change(ens.chunk(time=3), obs.chunk(time=3))
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(lazy.compute(), lag_autocorrelation(ens, obs))
    xr.testing.assert_allclose(fc.compute(), frame_change(ens, obs))


def test_time_found_without_coordinates_or_named(rng):
    vals = ar1(rng, 0.6, (2, 8, 4, 4))
    ens = xr.DataArray(vals, dims=("realization", "time", "y", "x"))
    obs = xr.DataArray(vals[0], dims=("time", "y", "x"))
    ac = lag_autocorrelation(ens, obs, lags=1)
    assert ac.attrs["time_dim"] == "time"
    framed = ens.rename(time="frame")
    with pytest.raises(MissingAxisError, match="time_dim"):
        lag_autocorrelation(framed, obs.rename(time="frame"))
    by_name = lag_autocorrelation(framed, obs.rename(time="frame"), lags=1, time_dim="frame")
    assert float(by_name.observation) == float(ac.observation)


def test_errors(make_field, rng):
    ens = make_field(rng.normal(size=(2, 3, 4, 4)))
    obs = make_field(rng.normal(size=(3, 4, 4)))
    with pytest.raises(InvalidInputError, match="frames"):
        lag_autocorrelation(ens, obs, lags=3)
    with pytest.raises(InvalidInputError, match=">= 1"):
        lag_autocorrelation(ens, obs, lags=0)
    with pytest.raises(InvalidInputError, match="integers"):
        lag_autocorrelation(ens, obs, lags=1.5)
    with pytest.raises(InvalidInputError, match="not a dimension"):
        frame_change(ens, obs, time_dim="step")


def test_frame_change_known_ratio(make_field, rng):
    obs_vals = ar1(rng, 0.5, (20, 8, 8))
    obs = make_field(obs_vals)
    ens = make_field(np.stack([2 * obs_vals, 2 * obs_vals + 5.0]))  # changes twice as large
    fc = frame_change(ens, obs, quantiles=[0.5, 0.9])
    assert float(fc.std_ratio) == pytest.approx(2.0)
    d = np.diff(obs_vals, axis=0)
    pooled = np.quantile(abs(np.stack([2 * d, 2 * d])), [0.5, 0.9])  # pooling moves interpolation
    np.testing.assert_allclose(fc.quantile_ensemble, pooled)
    np.testing.assert_allclose(fc.quantile_ratio, 2.0, rtol=0.01)
    assert float(fc.std_observation) == pytest.approx(d.std())
    np.testing.assert_allclose(fc.quantile_observation, np.quantile(abs(d), [0.5, 0.9]))
    assert fc.std_observation.attrs["units"] == "mm/h"
    frozen = make_field(np.repeat(obs_vals[:1], 20, axis=0))
    still = frame_change(frozen.expand_dims(realization=2), obs)
    assert float(still.std_ratio) == 0.0


def test_two_members_lazy_no_warning(make_field, rng):
    rain = np.where(rng.random((2, 6, 8, 8)) < 0.7, 0.0, 1.0)  # much of it dry and still
    ens, obs = make_field(rain), make_field(rain[0] * 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ac = lag_autocorrelation(ens.chunk(time=2), obs.chunk(time=2), dim=[]).compute()
        frame_change(ens.chunk(time=2), obs.chunk(time=2), dim=[]).compute()
    assert np.isnan(ac.observation).all()  # a constant truth has no correlation


def test_shifted_constant_is_nan_not_rounding(make_field, rng):
    # 15.9 - mean(15.9, ...) is not exactly 0 in floating point: still no correlation
    const = make_field(np.full((5, 3, 3), 15.911145521763899))
    ac = lag_autocorrelation(const.expand_dims(realization=2), const, lags=[1, 2])
    assert np.isnan(ac.observation).all() and np.isnan(ac.members).all()


def test_cftime_axis_found(rng):
    import cftime

    times = [cftime.Datetime360Day(2000, 1, d) for d in range(1, 7)]
    vals = ar1(rng, 0.6, (2, 6, 4, 4))
    dims = ("time", "y", "x")
    obs = xr.DataArray(vals[0], dims=("t6", "y", "x"), coords={"t6": times})
    ens = xr.DataArray(vals, dims=("realization", "t6", "y", "x"), coords={"t6": times})
    ac = lag_autocorrelation(ens, obs, lags=1)
    assert ac.attrs["time_dim"] == "t6"
    plain = lag_autocorrelation(xr.DataArray(vals, dims=("realization", *dims)),
                                xr.DataArray(vals[0], dims=dims), lags=1)
    assert float(ac.observation) == float(plain.observation)
