import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import quantile_ratio, quantiles, wet_fraction

Q = [0.5, 0.9, 0.99]


def test_quantiles_against_numpy(pair):
    ens, obs = pair
    ds = quantiles(ens, obs, quantiles=Q)
    np.testing.assert_allclose(ds.ensemble.values, np.quantile(ens.values, Q))
    np.testing.assert_allclose(ds.observation.values, np.quantile(obs.values, Q))
    np.testing.assert_allclose(ds.ratio.values, ds.ensemble.values / ds.observation.values)
    assert ds.ensemble.attrs["units"] == "mm/h"
    qr = quantile_ratio(ens, obs, quantiles=Q)
    assert qr.name == "quantile_ratio" and qr.attrs["units"] == "1"
    np.testing.assert_allclose(qr.values, ds.ratio.values)


def test_ratio_of_scaled_ensemble(pair):
    ens, obs = pair
    ens3 = 3 * obs.expand_dims(realization=4)
    got = quantile_ratio(ens3, obs, quantiles=Q).values
    # pooling 4 identical members changes only the interpolation between order statistics
    np.testing.assert_allclose(got, np.quantile(ens3.values, Q) / np.quantile(obs.values, Q))
    np.testing.assert_allclose(got, 3.0, rtol=0.02)
    per_time = quantile_ratio(ens3, obs, quantiles=Q, dim=["y", "x"])
    assert set(per_time.dims) == {"quantile", "time"}


def test_nan_cases_left_out_of_both():
    ens = xr.DataArray([[1.0, 2.0, 100.0], [1.0, 2.0, 100.0]], dims=("realization", "x"))
    obs = xr.DataArray([1.0, 2.0, np.nan], dims="x")
    np.testing.assert_allclose(quantile_ratio(ens, obs, quantiles=[1.0]).values, 1.0)


def test_dask_lazy(pair, counting_scheduler):
    ens, obs = pair
    lazy = quantile_ratio(ens.chunk(time=1), obs.chunk(time=1), quantiles=Q)
    wet = wet_fraction(ens.chunk(time=1), threshold=[0.1, 1.0])
    assert lazy.chunks is not None and wet.chunks is not None
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(lazy.compute(), quantile_ratio(ens, obs, quantiles=Q))


def test_wet_fraction(pair):
    ens, obs = pair
    assert float(wet_fraction(obs, threshold=1.0)) == pytest.approx((obs.values >= 1.0).mean())
    wf = wet_fraction(ens, threshold=[0.1, 1.0], dim=["time", "y", "x"])
    assert wf.dims == ("realization", "threshold")
    np.testing.assert_allclose(
        wf.sel(threshold=1.0).values, (ens.values >= 1.0).mean(axis=(1, 2, 3))
    )
    nan = xr.DataArray([np.nan, 0.0, 2.0], dims="x")
    assert float(wet_fraction(nan, threshold=1.0)) == 0.5
    assert wf.attrs["units"] == "1"


def test_errors(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError):
        quantile_ratio(ens, obs, quantiles=[1.5])
    with pytest.raises(InvalidInputError):
        wet_fraction(obs, threshold=[[1.0]])


def test_exceedance_frequency_by_hand():
    from xstochsr.metrics import exceedance_frequency

    ens = xr.DataArray(
        [[0.0, 5.0, 20.0, 30.0, 99.0], [0.0, 1.0, 2.0, 30.0, 99.0]], dims=("realization", "x")
    )
    obs = xr.DataArray([0.0, 2.0, 25.0, 40.0, np.nan], dims="x")  # the last case is left out
    ex = exceedance_frequency(ens, obs, thresholds=[10.0, 35.0, 50.0])
    np.testing.assert_allclose(ex.members.transpose("threshold", ...).values,
                               [[0.5, 0.25], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(ex.ensemble, [0.375, 0.0, 0.0])
    np.testing.assert_allclose(ex.observation, [0.5, 0.25, 0.0])
    np.testing.assert_allclose(ex.ratio, [0.75, 0.0, np.nan])  # never observed: NaN
    scalar = exceedance_frequency(ens, obs, thresholds=10.0)
    assert scalar.ratio.ndim == 0 and float(scalar.threshold) == 10.0
    with pytest.raises(InvalidInputError):
        exceedance_frequency(ens, obs, thresholds=[np.inf])


def test_zero_observed_quantile_gives_nan_without_warning(make_field, rng):
    import warnings

    rain = np.where(rng.random((2, 3, 8, 8)) < 0.8, 0.0, rng.gamma(2.0, size=(2, 3, 8, 8)))
    ens, obs = make_field(rain), make_field(rain[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qr = quantile_ratio(ens.chunk(time=1), obs.chunk(time=1), quantiles=[0.5, 0.99])
        qr = qr.compute()
    assert np.isnan(qr.values[0]) and np.isfinite(qr.values[1])
