import numpy as np
import pytest
import xarray as xr

import xstochsr  # noqa: F401  (registers the .sr accessor)
from xstochsr import metrics
from xstochsr.metrics import verify

EXPECTED = {
    "rank_histogram": ("rank",),
    "rank_ks": (),
    "rank_kl": (),
    "rank_outlier_proportion": (),
    "crps": (),
    "crps_fair": (),
    "pooled_crps_avg": ("pool_size",),
    "pooled_crps_max": ("pool_size",),
    "rmse": (),
    "mae": (),
    "bias": (),
    "spread_skill_ratio": (),
    "log_spectral_distance": (),
    "power_spectrum_ens": ("wavenumber",),
    "power_spectrum_obs": ("wavenumber",),
    "fss": ("threshold", "scale"),
    "quantile_ratio": ("quantile",),
    "wet_fraction_ens": ("threshold",),
    "wet_fraction_obs": ("threshold",),
    "exceedance_ratio": ("threshold",),
    "rank_outlier_proportion_calibrated": (),
    # the pair has a time axis: temporal scores
    "lag_correlation_ens": ("lag",),
    "lag_correlation_obs": ("lag",),
    "lag_correlation_diff": ("lag",),
    "frame_change_std_ensemble": (),
    "frame_change_std_observation": (),
    "frame_change_std_ratio": (),
    "frame_change_quantile_ensemble": ("change_quantile",),
    "frame_change_quantile_observation": ("change_quantile",),
    "frame_change_quantile_ratio": ("change_quantile",),
}
WET = {
    "rank_histogram_wet": ("rank",),
    "rank_ks_wet": (),
    "rank_kl_wet": (),
    "rank_outlier_proportion_wet": (),
    "rank_n_cases_wet": (),
}
BLOCKS = {"block_edge_ratio_ens": (), "block_edge_ratio_obs": ()}


def test_all_scores_in_one_dataset(pair):
    ens, obs = pair
    ds = verify(ens, obs, thresholds=[0.5, 2.0], pool_sizes=[2, 4, 64])
    assert set(ds.data_vars) == set(EXPECTED)
    for name, dims in EXPECTED.items():
        assert ds[name].dims == dims, name
    assert ds.pool_size.values.tolist() == [2, 4]  # 64 > domain: skipped
    # each variable is what the function gives on its own
    assert float(ds.crps) == float(metrics.crps(ens, obs))
    assert float(ds.rank_ks) == pytest.approx(metrics.rank_histogram(ens, obs).attrs["ks"])
    np.testing.assert_array_equal(ds.rank_histogram, metrics.rank_histogram(ens, obs))
    xr.testing.assert_allclose(
        ds.fss, metrics.fss(ens, obs, thresholds=[0.5, 2.0], scales=(1, 3, 9))
    )
    assert float(ds.pooled_crps_max.sel(pool_size=4)) == pytest.approx(
        float(metrics.pooled_crps(ens, obs, k=4, method="max"))
    )
    assert ds.crps.attrs["units"] == "mm/h"
    assert ds.attrs["n_members"] == 8
    # a perfect ensemble scores like one
    assert 0.7 < float(ds.spread_skill_ratio) < 1.3
    np.testing.assert_allclose(ds.wet_fraction_ens, ds.wet_fraction_obs, atol=0.05)
    assert float(ds.rank_outlier_proportion_calibrated) == pytest.approx(2 / 9)
    # the new scores are what their functions give
    ac = metrics.lag_autocorrelation(ens, obs, lags=[1, 2])
    xr.testing.assert_allclose(ds.lag_correlation_ens, ac.ensemble)
    xr.testing.assert_allclose(ds.lag_correlation_diff, ac.difference)
    fc = metrics.frame_change(ens, obs)
    assert float(ds.frame_change_std_ratio) == pytest.approx(float(fc.std_ratio))
    ex = metrics.exceedance_frequency(ens, obs, thresholds=[0.5, 2.0])
    xr.testing.assert_allclose(ds.exceedance_ratio, ex.ratio)
    np.testing.assert_allclose(ds.wet_fraction_ens, ex.ensemble)
    assert ds.attrs["time_dim"] == "time"


def test_wet_cases_and_blocks_when_asked_or_recorded(pair):
    ens, obs = pair
    ds = verify(ens, obs, thresholds=[1.0], wet_threshold=0.5, factor=4)
    assert set(ds.data_vars) == set(EXPECTED) | set(WET) | set(BLOCKS)
    for name, dims in {**WET, **BLOCKS}.items():
        assert ds[name].dims == dims, name
    st = metrics.rank_statistics(ens, obs, threshold=0.5)
    np.testing.assert_array_equal(ds.rank_histogram_wet, st.rank_histogram)
    assert float(ds.rank_ks_wet) == pytest.approx(float(st.ks))
    assert int(ds.rank_n_cases_wet) == int((
        (obs >= 0.5) | (ens >= 0.5).any("realization")).sum())
    assert float(ds.block_edge_ratio_obs) == pytest.approx(
        float(metrics.block_edge_ratio(obs, factor=4)))
    assert ds.attrs["wet_threshold"] == 0.5 and ds.attrs["factor"] == 4
    # the factor downscale records, and the wet threshold of CF precipitation (0.1 mm/h)
    ens2 = ens.assign_attrs(xstochsr_factor=4, standard_name="precipitation_rate")
    obs2 = obs.assign_attrs(standard_name="precipitation_rate", units="mm s-1")
    ds2 = verify(ens2, obs2, thresholds=[1.0])
    assert set(BLOCKS) <= set(ds2.data_vars) and set(WET) <= set(ds2.data_vars)
    assert ds2.attrs["wet_threshold"] == pytest.approx(0.1 / 3600)
    # not precipitation: no guess at a wet threshold
    assert not set(WET) & set(verify(ens, obs, thresholds=[1.0]).data_vars)


def test_no_time_axis_no_temporal_scores(pair):
    ens, obs = pair
    ds = verify(ens.isel(time=0), obs.isel(time=0), thresholds=[1.0])
    assert not [v for v in ds.data_vars if v.startswith(("lag_", "frame_change"))]
    one = verify(ens.isel(time=[0]), obs.isel(time=[0]), thresholds=[1.0])
    assert "lag_correlation_ens" not in one


def test_plain_dims_without_coordinates(pair):
    # issue 14: nothing in verification needs coordinate values
    ens, obs = pair
    bare_ens = xr.DataArray(ens.values, dims=ens.dims)
    bare_obs = xr.DataArray(obs.values, dims=obs.dims, attrs=obs.attrs)
    ds = verify(bare_ens, bare_obs, thresholds=[0.5, 2.0])
    ref = verify(ens, obs, thresholds=[0.5, 2.0])
    for name in ("crps", "log_spectral_distance", "rank_ks", "lag_correlation_ens"):
        np.testing.assert_allclose(ds[name].values, ref[name].values, err_msg=name)
    assert ds.attrs["time_dim"] == "time"


def test_all_nan_obs_is_a_package_error(pair):
    ens, obs = pair
    from xstochsr.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="obs holds no finite value"):
        verify(ens, obs * np.nan)
    with pytest.raises(InvalidInputError, match="obs holds no finite value"):
        verify(ens.chunk(time=1), (obs * np.nan).chunk(time=1))  # default thresholds
    with pytest.raises(InvalidInputError, match="ensemble holds no finite value"):
        verify(ens * np.nan, obs)
    half = obs.where(obs.x < 10)
    with pytest.raises(InvalidInputError, match="common valid"):
        verify(ens.where(ens.x >= 10), half)


def test_masked_fields_give_finite_spectral_scores(pair):
    # issue 15: NaN outside a radar circle
    ens, obs = pair
    yy, xx = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    inside = xr.DataArray((yy - 7.5) ** 2 + (xx - 7.5) ** 2 < 8**2, dims=("y", "x"))
    ds = verify(ens.where(inside), obs.where(inside), thresholds=[1.0])
    assert np.isfinite(float(ds.log_spectral_distance))
    assert np.isfinite(ds.power_spectrum_obs.values[2:]).all()


def test_lazy_two_members_no_warning(make_field, rng):
    # issue 15: lazy verify with 2 members warned "invalid value in divide"
    import warnings

    rain = np.where(rng.random((2, 3, 16, 16)) < 0.7, 0.0, rng.gamma(2.0, size=(2, 3, 16, 16)))
    obs_vals = np.where(rng.random((3, 16, 16)) < 0.7, 0.0, rng.gamma(2.0, size=(3, 16, 16)))
    ens, obs = make_field(rain), make_field(obs_vals)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = verify(ens.chunk(time=1), obs.chunk(time=1), wet_threshold=0.1, factor=4)
        lazy = lazy.compute()
    xr.testing.assert_allclose(lazy, verify(ens, obs, wet_threshold=0.1, factor=4))


def test_default_thresholds_and_dim(pair):
    ens, obs = pair
    ds = verify(ens, obs, dim="time")
    np.testing.assert_allclose(ds.threshold.values, obs.quantile([0.9, 0.99]).values)
    assert ds.crps.dims == ("y", "x")
    assert ds.rank_histogram.dims == ("y", "x", "rank")
    assert ds.fss.dims == ("threshold", "scale")
    assert ds.pooled_crps_avg.dims == ("pool_size",)


def test_dask_stays_lazy(pair, counting_scheduler):
    ens, obs = pair
    kw = dict(thresholds=[0.5, 2.0], wet_threshold=0.5, factor=4)
    ds = verify(ens.chunk(time=1), obs.chunk(time=1), **kw)
    assert counting_scheduler.calls == 0
    constant = "rank_outlier_proportion_calibrated"  # 2/(M+1): nothing to compute
    assert all(ds[v].chunks is not None for v in ds.data_vars if v != constant)
    ref = verify(ens, obs, **kw)
    xr.testing.assert_allclose(ds.compute(), ref)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("rank_histogram", {}),
        ("crps", {"fair": True}),
        ("pooled_crps", {"k": 4}),
        ("rmse", {}),
        ("mae", {}),
        ("bias", {}),
        ("spread_skill_ratio", {}),
        ("log_spectral_distance", {}),
        ("fss", {"thresholds": [1.0]}),
        ("quantile_ratio", {}),
        ("verify", {"thresholds": [1.0]}),
    ],
)
def test_accessor_calls_the_function(pair, name, kwargs):
    ens, obs = pair
    via_accessor = getattr(ens.sr, name)(obs, **kwargs)
    direct = getattr(metrics, name)(ens, obs, **kwargs)
    xr.testing.assert_identical(via_accessor, direct)


def test_accessor_single_field_scores(pair):
    ens, _ = pair
    xr.testing.assert_identical(ens.sr.power_spectrum(), metrics.power_spectrum(ens))
    xr.testing.assert_identical(
        ens.sr.wet_fraction(threshold=1.0), metrics.wet_fraction(ens, threshold=1.0)
    )


def test_top_level_verify_is_the_function():
    assert xstochsr.verify is metrics.verify
