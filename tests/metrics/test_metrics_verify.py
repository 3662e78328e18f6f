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
}


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
    ds = verify(ens.chunk(time=1), obs.chunk(time=1), thresholds=[0.5, 2.0])
    assert counting_scheduler.calls == 0
    assert all(ds[v].chunks is not None for v in ds.data_vars)
    ref = verify(ens, obs, thresholds=[0.5, 2.0])
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
