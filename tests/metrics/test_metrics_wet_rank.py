"""Rank statistics on wet cases: dry ties must not flatter the ensemble."""

import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import rank_histogram, rank_statistics


def test_hand_worked_wet_cases():
    # 3 members; cases: dry everywhere (left out), then ranks 0, 3, 1, 3 on wet cases
    ens = xr.DataArray(
        [[0.0, 1.0, 0.0, 0.2, 0.5], [0.0, 2.0, 0.1, 0.6, 1.0], [0.0, 3.0, 0.3, 0.9, 2.0]],
        dims=("realization", "x"),
    )
    obs = xr.DataArray([0.0, 0.5, 0.4, 0.4, 7.0], dims="x")
    st = rank_statistics(ens, obs, threshold=0.1)
    assert st.rank_histogram.values.tolist() == [1, 1, 0, 2]
    assert int(st.n_cases) == 4
    assert float(st.outlier_proportion) == pytest.approx(3 / 4)
    # KS: max |cumsum(h) - (i+1)/4| with h = (1/4, 1/4, 0, 1/2): |0.5 - 0.75| at i = 2
    assert float(st.ks) == pytest.approx(0.25)
    assert float(st.calibrated_outlier_proportion) == pytest.approx(2 / 4)
    assert st.attrs["threshold"] == 0.1 and st.attrs["n_members"] == 3
    assert "0.1" in st.ks.attrs["cases"]
    # all cases: the dry case comes in with a random rank among 4 tied members
    every = rank_statistics(ens, obs)
    assert int(every.n_cases) == 5 and "threshold" not in every.attrs


def test_any_member_reaching_the_threshold_counts():
    ens = xr.DataArray([[0.0, 0.0], [0.0, 0.5]], dims=("realization", "x"))
    obs = xr.DataArray([0.0, 0.0], dims="x")
    st = rank_statistics(ens, obs, threshold=0.1)
    # case 1: truth dry, one member wet: counted (symmetric condition), rank 0 or 1
    assert int(st.n_cases) == 1
    assert st.rank_histogram.values.tolist() in ([1, 0, 0], [0, 1, 0])


def test_dry_ties_flatter_the_all_pixel_scores(rng):
    # an under-dispersed ensemble of rain that is dry (exactly 0) in 80 % of the cases,
    # truth and members alike: the dry ties spread evenly over the ranks
    n, m = 20000, 9
    wet = rng.random(n) < 0.2
    centre = rng.gamma(2.0, 2.0, n)
    obs = np.where(wet, centre + rng.normal(0, 1.0, n), 0.0).clip(0)
    members = np.where(wet, centre + rng.normal(0, 0.3, (m, n)), 0.0).clip(0)
    ens_da = xr.DataArray(members, dims=("realization", "x"))
    obs_da = xr.DataArray(obs, dims="x")
    everything = rank_statistics(ens_da, obs_da)
    wet_only = rank_statistics(ens_da, obs_da, threshold=0.1)
    # all cases: 0.2 * 0.66 + 0.8 * 0.2 (dry ties spread evenly) = 0.29
    assert float(wet_only.outlier_proportion) > 2 * float(everything.outlier_proportion)
    assert float(wet_only.ks) > float(everything.ks) + 0.05
    assert float(wet_only.outlier_proportion) > 3 * float(wet_only.calibrated_outlier_proportion)
    # the same counts as rank_histogram with the same threshold and seed
    np.testing.assert_array_equal(
        wet_only.rank_histogram, rank_histogram(ens_da, obs_da, threshold=0.1)
    )


def test_calibrated_stays_flat_on_wet_cases(rng):
    n, m = 20000, 9
    wet = rng.random(n) < 0.3
    draw = lambda size: np.where(wet, rng.gamma(2.0, 2.0, size), 0.0)  # noqa: E731
    ens = xr.DataArray(draw((m, n)), dims=("realization", "x"))
    obs = xr.DataArray(draw(n), dims="x")
    st = rank_statistics(ens, obs, threshold=0.1)
    assert float(st.outlier_proportion) == pytest.approx(0.2, abs=0.02)
    assert float(st.ks) < 0.03


def test_lazy_matches_and_dims(pair, counting_scheduler):
    ens, obs = pair
    lazy = rank_statistics(ens.chunk(time=1), obs.chunk(time=1), threshold=1.0, dim=["y", "x"])
    assert counting_scheduler.calls == 0
    assert lazy.ks.dims == ("time",)
    xr.testing.assert_allclose(
        lazy.compute(), rank_statistics(ens, obs, threshold=1.0, dim=["y", "x"])
    )


def test_bad_threshold(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError, match="finite"):
        rank_statistics(ens, obs, threshold=float("nan"))
