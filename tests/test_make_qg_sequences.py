"""The quasi-geostrophic wind data (scripts/make_qg_sequences.py), without running pyqg.

pyqg is not a dependency of xstochsr (the script runs in its own venv), so these tests check
the pure-numpy pieces: the linear stability and time-step limits behind the parameter sets
(above all ``--regime atmosphere``'s: supercritical, synoptic wavelengths, a time step well
inside the AB3 limit), and the statistics written into the files (KE spectrum and its slope,
rms). The one test that needs pyqg (spectral refinement of the spin-up) skips without it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from repo_files import load_script

# the script sets OMP_NUM_THREADS=1 (for pyqg) when imported: keep this process's setting
_ENV = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
mq = load_script("scripts/make_qg_sequences.py", "make_qg_sequences")
for _k, _v in _ENV.items():
    if _v is None:
        os.environ.pop(_k, None)
    else:
        os.environ[_k] = _v

ATMOS = mq.QG_PARAMS_ATMOS


def test_ab3_limit_and_pyqg_cfl():
    # AB3's stability interval on the imaginary axis is 0.7236...
    assert mq.ab3_imaginary_limit() == pytest.approx(0.72362, abs=2e-5)
    # pyqg leaves |k| dx <= 0.65 pi unfiltered: speed dt / dx must stay below ~0.354
    assert mq.max_stable_cfl() == pytest.approx(0.7236 / (0.65 * np.pi), rel=1e-3)
    assert mq.cfl_time_step(50.0, 31250.0, 0.25) == pytest.approx(156.25)


@pytest.mark.parametrize("params", [mq.QG_PARAMS, ATMOS], ids=["ocean", "atmosphere"])
def test_critical_shear_is_where_linear_growth_starts(params):
    uc = mq.critical_shear(params)
    k = np.linspace(0.02, 5.0, 1500) / params["rd"]
    below = mq.phillips_growth_rate({**params, "U1": params["U2"] + 0.97 * uc}, k)
    above = mq.phillips_growth_rate({**params, "U1": params["U2"] + 1.05 * uc}, k)
    assert below.max() == 0.0
    assert above.max() > 0.0
    assert mq.supercriticality(params) > 1.0  # both parameter sets make eddies


def test_ocean_parameters_are_pyqg_defaults():
    assert mq.QG_PARAMS == {
        "beta": 1.5e-11, "rd": 15000.0, "delta": 0.25, "H1": 500.0, "U1": 0.025,
        "U2": 0.0, "rek": 5.787e-7, "filterfac": 23.6,
    }  # fmt: skip
    assert (mq.L_M, mq.DT_S, mq.LAT0) == (1.0e6, 3600.0, 49.06)


def test_atmosphere_parameters_are_midlatitude_troposphere():
    # beta of 45-50 N, rd of a two-layer troposphere, equal layers
    assert 45.0 <= mq.nominal_latitude(ATMOS["beta"]) <= 50.0
    assert mq.ATMOS_LAT0 == pytest.approx(mq.nominal_latitude(ATMOS["beta"]), abs=0.01)
    assert 4.0e5 <= ATMOS["rd"] <= 8.0e5
    assert ATMOS["delta"] == 1.0 and ATMOS["U2"] == 0.0
    # supercritical but near criticality; synoptic waves grow within days
    assert 1.0 < mq.supercriticality(ATMOS) < 2.0
    rate, wavelength = mq.fastest_growth(ATMOS)
    assert 3.0e6 <= wavelength <= 6.0e6
    assert 1.0 / rate / 86400.0 < 15.0
    rate_dom, wl_dom = mq.fastest_growth(ATMOS, mq.ATMOS_L_M)
    assert rate_dom > 0 and mq.ATMOS_L_M / wl_dom >= 2  # the domain holds such waves
    # drag of a few days; domain a few thousand km, factor-8 cells of 250 km at 256x256
    assert 2.0 <= 1.0 / ATMOS["rek"] / 86400.0 <= 5.0
    assert mq.ATMOS_L_M / ATMOS["rd"] >= 10
    assert mq.ATMOS_L_M / 256 * 8 == 250e3


def test_atmosphere_time_step_is_inside_the_ab3_limit():
    dx = mq.ATMOS_L_M / 256
    # winds up to 80 m s-1 (beyond the measured 59) stay below the AB3 limit
    assert mq.ATMOS_DT_S <= mq.cfl_time_step(80.0, dx, mq.max_stable_cfl())
    # the time step divides the hour (snapshots land on steps), also at half resolution
    assert mq._steps(1.0, mq.ATMOS_DT_S) * mq.ATMOS_DT_S == 3600.0
    assert mq._steps(24.0, 2 * mq.ATMOS_DT_S) == 360
    with pytest.raises(SystemExit):
        mq._steps(0.01, mq.ATMOS_DT_S)


def test_atmosphere_splits_are_separate_runs_with_their_own_seeds(tmp_path):
    seeds = [mq.ATMOS_SEEDS[s] for s in mq.ATMOS_SPLITS]
    assert len(set(seeds)) == 3
    assert not set(seeds) & {mq.TRAIN_SEED, mq.SAMPLE_SEED}
    paths = mq.atmos_paths(tmp_path, quick=False)
    assert {s: p.name for s, p in paths.items()} == {
        "train": "qg_atmos_train.nc", "val": "qg_atmos_val.nc", "test": "qg_atmos_test.nc",
    }  # fmt: skip
    assert all("_quick" in p.name for p in mq.atmos_paths(tmp_path, quick=True).values())
    with pytest.raises(SystemExit):  # --out belongs to the ocean regime
        mq.main(["--regime", "atmosphere", "--out", str(tmp_path / "x.nc")])
    with pytest.raises(SystemExit):
        mq.main(["--regime", "atmosphere", "--splits", "train,holdout"])
    with pytest.raises(SystemExit):  # atmosphere options are refused for the ocean regime
        mq.main(["--spinup-days", "10"])


def test_field_stats_of_a_single_wave():
    n, L = 64, 8.0e6
    x = (np.arange(n) + 0.5) * L / n
    u = 10.0 + 4.0 * np.sin(2 * np.pi * 5 * x / L)[None, None, :] * np.ones((1, n, n))
    v = np.zeros_like(u)
    fs = mq.FieldStats(n, L, u_background=10.0)
    fs.add(u.astype("float32"), v.astype("float32"))
    e = fs.spectrum()
    assert e[5] == pytest.approx(4.0**2 / 4, rel=1e-5)  # mean KE 0.5 <u'^2> = A^2 / 4
    assert e.sum() == pytest.approx(e[5], rel=1e-5)
    assert np.sqrt(fs.s_u2 / fs.n) == pytest.approx(4.0 / np.sqrt(2), rel=1e-5)
    assert fs.max_speed == pytest.approx(14.0, rel=1e-3)


def test_field_stats_slope_of_a_k_minus_3_field():
    n, L = 128, 8.0e6
    rng = np.random.default_rng(0)
    k = np.fft.fftfreq(n) * n
    kk = np.hypot(k[:, None], k[None, :])
    amp = np.where(kk > 0, np.maximum(kk, 1.0) ** -2.0, 0.0)  # E(k) ~ k * amp^2 ~ k^-3

    def field():
        return np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n))))) * 1e4

    u = np.stack([field() for _ in range(4)])
    v = np.stack([field() for _ in range(4)])
    fs = mq.FieldStats(n, L, u_background=0.0)
    fs.add(u, v)
    assert fs.fit_band_km(mq.ATMOS_SLOPE_BAND_KM) == (250.0, 1000.0)  # 4 dx at 62.5 km
    assert fs.slope(mq.ATMOS_SLOPE_BAND_KM) == pytest.approx(-3.0, abs=0.3)


def test_refine_keeps_the_coarse_state():
    pytest.importorskip("pyqg")
    kw = mq._atmos_model_kw(240.0)
    m = mq.make_model(5, 32, 1, **kw)
    for _ in range(20):
        m._step_forward()
    m._invert()
    f = mq.refine(m, 64, 1, **mq._atmos_model_kw(120.0))
    f._invert()
    q_lo, q_hi = np.asarray(m.q), np.asarray(f.q)
    np.testing.assert_allclose(q_hi[:, ::2, ::2], q_lo, atol=1e-6 * q_lo.std())
    assert f._calc_ke() == pytest.approx(m._calc_ke(), rel=1e-9)
    assert mq.model_time_s(f) == mq.model_time_s(m) == 20 * 240.0
