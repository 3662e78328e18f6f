import numpy as np
import pytest
import xarray as xr
import xskillscore as xs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import RankHistogramAccumulator, rank_histogram, rank_summary, ranks


def da(values, dims):
    return xr.DataArray(np.asarray(values, dtype=float), dims=dims)


def test_hand_worked_small_case():
    # 3 members, 5 cases; ranks worked by hand: 3, 0, 1, 2, 3
    ens = da([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [2, 2, 2, 2, 2]], ("realization", "x"))
    obs = da([5, -1, 0.5, 1.5, 9], "x")
    rh = rank_histogram(ens, obs)
    assert rh.name == "rank_histogram"
    assert rh.dims == ("rank",)
    assert rh["rank"].values.tolist() == [0, 1, 2, 3]
    assert rh.values.tolist() == [1, 1, 1, 2]
    # freq .2 .2 .2 .4 -> cdf .2 .4 .6 1 vs uniform .25 .5 .75 1 -> KS .15
    assert rh.attrs["ks"] == pytest.approx(0.15)
    assert rh.attrs["outlier_proportion"] == pytest.approx(0.6)
    kl = 3 * 0.2 * np.log(0.2 * 4) + 0.4 * np.log(0.4 * 4)
    assert rh.attrs["kl"] == pytest.approx(kl)
    assert rh.attrs["n_cases"] == 5 and rh.attrs["n_members"] == 3
    np.testing.assert_array_equal(ranks(ens, obs).values, [3, 0, 1, 2, 3])


@pytest.mark.parametrize(
    "counts, ks, kl, op",
    [
        ([1, 1, 1, 1], 0.0, 0.0, 0.5),
        ([4, 0, 0, 0], 0.75, np.log(4), 1.0),
        ([2, 1, 1, 0], 0.25, 0.5 * np.log(2), 0.5),
        ([0, 0, 0, 0], np.nan, np.nan, np.nan),
    ],
)
def test_summary_hand_worked(counts, ks, kl, op):
    s = rank_summary(xr.DataArray(counts, dims="rank"))
    np.testing.assert_allclose([s.ks, s.kl, s.outlier_proportion], [ks, kl, op], atol=1e-12)


def test_matches_xskillscore_without_ties(pair):
    ens, obs = pair  # continuous values: no ties, so no randomness
    ours = rank_histogram(ens, obs, dim=["y", "x"])
    ref = xs.rank_histogram(obs, ens, dim=["y", "x"], member_dim="realization")
    np.testing.assert_array_equal(ours.transpose("time", "rank").values, ref.values)


def test_ties_broken_at_random_reproducibly(rng):
    # zero rain everywhere: every member ties with the observation
    ens = da(np.zeros((4, 3000)), ("realization", "x"))
    obs = da(np.zeros(3000), "x")
    a = rank_histogram(ens, obs, seed=1)
    b = rank_histogram(ens, obs, seed=1)
    c = rank_histogram(ens, obs, seed=2)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    assert stats.chisquare(a.values).pvalue > 1e-3  # uniform over 0..M
    gen = rank_histogram(ens, obs, seed=np.random.default_rng(3))
    assert int(gen.sum()) == 3000


def test_partial_ties():
    # obs ties with 2 of 4 members, one member below: rank is 1, 2 or 3 with prob 1/3
    ens = da(np.tile([[-1.0], [0.0], [0.0], [5.0]], (1, 3000)), ("realization", "x"))
    obs = da(np.zeros(3000), "x")
    rh = rank_histogram(ens, obs).values
    assert rh[0] == 0 and rh[4] == 0
    assert stats.chisquare(rh[1:4]).pvalue > 1e-3


def test_nan_cases_skipped():
    ens = da([[0, 0, np.nan, 0], [1, 1, 1, 1]], ("realization", "x"))
    obs = da([0.5, np.nan, 0.5, 2.0], "x")
    rh = rank_histogram(ens, obs)
    assert rh.values.tolist() == [0, 1, 1]
    assert rh.attrs["n_cases"] == 2


def test_threshold_masks_symmetrically(rng):
    ens = da(rng.random((5, 400)), ("realization", "x"))
    obs = da(rng.random(400), "x")
    thr = 0.9
    n_any = int(((obs >= thr) | (ens >= thr).any("realization")).sum())
    n_obs = int((obs >= thr).sum())
    assert int(rank_histogram(ens, obs, threshold=thr).sum()) == n_any
    rh_obs = rank_histogram(ens, obs, threshold=thr, threshold_on="obs")
    assert int(rh_obs.sum()) == n_obs
    assert rh_obs.values[-1] > rh_obs.values[0]  # conditioning on the truth tilts it
    with pytest.raises(InvalidInputError):
        rank_histogram(ens, obs, threshold=thr, threshold_on="members")


def test_perfect_ensemble_is_flat_and_underdispersed_is_u_shaped(rng):
    m, n = 9, 20000
    truth_mean = rng.normal(size=n)  # predictable part, known to the ensemble
    obs = da(truth_mean + rng.normal(size=n), "x")
    perfect = da(truth_mean + rng.normal(size=(m, n)), ("realization", "x"))
    narrow = da(truth_mean + 0.3 * rng.normal(size=(m, n)), ("realization", "x"))
    flat = rank_histogram(perfect, obs)
    assert stats.chisquare(flat.values).pvalue > 1e-3
    assert flat.attrs["ks"] < 0.02
    assert flat.attrs["outlier_proportion"] == pytest.approx(2 / (m + 1), abs=0.02)
    u = rank_histogram(narrow, obs)
    freq = u.values / u.values.sum()
    assert freq[0] > 3 / (m + 1) and freq[-1] > 3 / (m + 1)
    assert np.all(freq[2:-2] < 1 / (m + 1))
    assert u.attrs["outlier_proportion"] > 0.5
    assert u.attrs["kl"] > 10 * flat.attrs["kl"]


def test_dim_keeps_other_dims_and_cf_member_dim(pair):
    ens, obs = pair
    ens = ens.rename(realization="member")  # found by its standard_name
    rh = rank_histogram(ens, obs, dim=["y", "x"])
    assert set(rh.dims) == {"time", "rank"}
    assert (rh.sum("rank") == 16 * 16).all()
    assert rh.attrs["n_cases"] == 3 * 16 * 16
    np.testing.assert_array_equal(rh.time.values, obs.time.values)


def test_dask_stays_lazy_and_matches_numpy(counting_scheduler, make_field):
    rng = np.random.default_rng(0)
    ens = make_field(np.floor(rng.gamma(0.5, 2.0, size=(6, 4, 8, 8))))  # many ties
    obs = make_field(np.floor(rng.gamma(0.5, 2.0, size=(4, 8, 8))))
    lazy = rank_histogram(ens.chunk(time=1, y=4), obs.chunk(time=2), dim=["time", "y"])
    assert lazy.chunks is not None
    assert counting_scheduler.calls == 0
    s = rank_summary(lazy)
    assert s.ks.chunks is not None and counting_scheduler.calls == 0
    eager = rank_histogram(ens, obs, dim=["time", "y"])
    # tie-breaking draws depend on the case position, not on the chunking
    np.testing.assert_array_equal(lazy.compute().values, eager.values)
    assert counting_scheduler.calls >= 1


def test_accumulator_matches_one_shot(pair):
    ens, obs = pair
    acc = RankHistogramAccumulator(dim=["time", "x"])
    for t in range(3):
        acc.update(ens.isel(time=[t]), obs.isel(time=[t]))
    got = acc.compute()
    ref = rank_histogram(ens, obs, dim=["time", "x"])
    xr.testing.assert_equal(got.drop_attrs(), ref.drop_attrs())
    assert got.attrs["ks"] == pytest.approx(ref.attrs["ks"])
    with pytest.raises(InvalidInputError):
        acc.update(ens.isel(realization=[0, 1]), obs)
    with pytest.raises(InvalidInputError):
        RankHistogramAccumulator().compute()


def test_accumulator_ties_use_fresh_draws():
    ens = da(np.zeros((3, 2000)), ("realization", "x"))
    obs = da(np.zeros(2000), "x")
    acc = RankHistogramAccumulator(seed=5)
    acc.update(ens, obs)
    first = acc.compute().values.copy()
    acc.update(ens, obs)
    assert not np.array_equal(acc.compute().values, 2 * first)


def test_input_errors(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError, match="member dimension"):
        rank_histogram(ens.isel(realization=0, drop=True).rename("x2"), obs)
    with pytest.raises(InvalidInputError, match="coordinates"):
        rank_histogram(ens, obs.assign_coords(x=obs.x + 0.5))
    with pytest.raises(InvalidInputError, match="Dataset"):
        rank_histogram(ens.to_dataset(), obs)
    with pytest.raises(InvalidInputError, match="Cannot reduce"):
        rank_histogram(ens, obs, dim="realization")
    with pytest.raises(InvalidInputError):
        rank_histogram(ens, obs, seed="abc")


@settings(max_examples=40, deadline=None)
@given(
    members=st.integers(1, 6),
    data=st.data(),
)
def test_counts_sum_to_valid_cases(members, data):
    vals = st.one_of(st.just(np.nan), st.sampled_from([0.0, 1.0]), st.floats(-5, 5))
    e = data.draw(arrays(float, (members, 7), elements=vals))
    o = data.draw(arrays(float, (7,), elements=vals))
    ens, obs = da(e, ("realization", "x")), da(o, "x")
    rh = rank_histogram(ens, obs, seed=data.draw(st.integers(0, 2**32)))
    valid = np.isfinite(o) & np.isfinite(e).all(axis=0)
    assert rh.sizes["rank"] == members + 1
    assert int(rh.sum()) == int(valid.sum())
    assert np.all(rh.values >= 0)
