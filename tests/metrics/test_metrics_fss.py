import numpy as np
import pytest
import xarray as xr
from pysteps.verification.spatialscores import fss as pysteps_fss
from pysteps.verification.spatialscores import fss_accum, fss_compute, fss_init

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import fss

THR = [0.5, 2.0]
SCALES = [1, 3, 4, 7]


def test_single_member_matches_pysteps_per_frame(pair):
    ens, obs = pair
    one = ens.isel(realization=[0])
    got = fss(one, obs, thresholds=THR, scales=SCALES, dim=[])
    assert got.dims == ("threshold", "scale", "time")
    for it, thr in enumerate(THR):
        for js, s in enumerate(SCALES):
            for t in range(obs.sizes["time"]):
                ref = pysteps_fss(one.values[0, t], obs.values[t], thr, s)
                assert got.values[it, js, t] == pytest.approx(ref, rel=1e-10)


def test_accumulates_over_frames_like_pysteps(pair):
    ens, obs = pair
    one = ens.isel(realization=[0])
    got = fss(one, obs, thresholds=THR, scales=SCALES)
    for it, thr in enumerate(THR):
        for js, s in enumerate(SCALES):
            obj = fss_init(thr, s)
            for t in range(obs.sizes["time"]):
                fss_accum(obj, one.values[0, t], obs.values[t])
            assert got.values[it, js] == pytest.approx(fss_compute(obj), rel=1e-10)


def test_ensemble_probability_hand_worked():
    obs = xr.DataArray(np.eye(6), dims=("y", "x"))
    ens = xr.concat([obs, 0 * obs], "realization")  # probability 0.5 where obs is wet
    # 1 - sum (0.5 o - o)^2 / (sum 0.25 o^2 + sum o^2) = 1 - 0.25 / 1.25
    got = fss(ens, obs, thresholds=0.5, scales=1, y_dim="y", x_dim="x")
    assert float(got.squeeze()) == pytest.approx(0.8)
    same = fss(
        xr.concat([obs, obs], "realization"),
        obs,
        thresholds=0.5,
        scales=[1, 3],
        y_dim="y",
        x_dim="x",
    )
    np.testing.assert_allclose(same.values, 1.0)


def test_identical_members_equal_deterministic(pair):
    ens, obs = pair
    one = ens.isel(realization=[2])
    many = xr.concat([one] * 4, "realization")
    xr.testing.assert_allclose(
        fss(many, obs, thresholds=THR, scales=SCALES), fss(one, obs, thresholds=THR, scales=SCALES)
    )


def test_skill_grows_with_scale(pair):
    ens, obs = pair
    got = fss(ens, obs, thresholds=1.0, scales=[1, 3, 9])
    assert got.dims == ("scale",) and float(got.threshold) == 1.0
    assert np.all(np.diff(got.values) > 0)
    assert got.scale.values.tolist() == [1, 3, 9]
    assert got.threshold.attrs["units"] == "mm/h"


def test_nan_and_no_events():
    obs = xr.DataArray(np.zeros((5, 5)), dims=("y", "x"))
    ens = obs.expand_dims(realization=2).copy()
    assert np.isnan(float(fss(ens, obs, thresholds=1.0, scales=1, y_dim="y", x_dim="x")))
    obs2 = obs.copy()
    obs2[2, 2] = 3.0
    ens2 = ens.copy()
    ens2[:, 2, 2] = 3.0
    ens2[0, 0, 0] = np.nan  # NaN cell left out, not a false alarm
    got = fss(ens2, obs2, thresholds=1.0, scales=[1, 3], y_dim="y", x_dim="x")
    np.testing.assert_allclose(got.values, 1.0)


def test_dask_lazy(pair, counting_scheduler):
    ens, obs = pair
    lazy = fss(ens.chunk(time=1, x=8), obs.chunk(time=1), thresholds=THR, scales=SCALES)
    assert lazy.chunks is not None
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(lazy.compute(), fss(ens, obs, thresholds=THR, scales=SCALES))


def test_bad_arguments(pair):
    ens, obs = pair
    with pytest.raises(InvalidInputError):
        fss(ens, obs, thresholds=[1.0], scales=[0])
    with pytest.raises(InvalidInputError):
        fss(ens, obs, thresholds=[np.nan], scales=[1])
    with pytest.raises(InvalidInputError):
        fss(ens, obs, thresholds=[1.0], scales=[1.5])
