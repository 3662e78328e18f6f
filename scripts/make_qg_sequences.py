#!/usr/bin/env python
"""Build the training set (and the held-out sample) of the wind model: quasi-geostrophic turbulence.

What is simulated
    pyqg's two-layer quasi-geostrophic model (``pyqg.QGModel``) with its STANDARD parameters
    (pyqg 0.4 defaults): a doubly periodic beta-plane channel of 1000 km x 1000 km
    (``L = 1e6`` m), beta = 1.5e-11 m-1 s-1, deformation radius rd = 15 km, layer depths
    H1 = 500 m and H2 = 2000 m (delta = H1/H2 = 0.25), an imposed uniform vertical shear
    U1 = 0.025 m s-1 (upper layer), U2 = 0 (lower layer), linear bottom drag
    rek = 5.787e-7 s-1 (20 days), the Arbic & Flierl exponential small-scale filter
    (filterfac 23.6) and third-order Adams-Bashforth time stepping. The only changes from
    the defaults are the resolution, nx = 256 (dx = 3.906 km, so rd is resolved by ~4 grid
    points), the time step, dt = 1 h (maximum CFL number about 0.4), and the initial state
    (see below). Baroclinic instability of the imposed shear feeds a turbulent eddy field;
    there is no other forcing. Velocities are in m s-1 exactly as pyqg gives them.

    The written field is the UPPER-LAYER velocity: ``eastward_wind`` is the full zonal
    velocity U1 + u (background plus eddy), ``northward_wind`` the meridional velocity v.
    CAVEAT: pyqg's standard parameters describe mid-latitude ocean-like mesoscale
    turbulence (rd = 15 km). The velocities are those of that flow (eddy standard deviation
    about 0.06 m s-1, maxima about 0.3 m s-1), i.e. weak compared with atmospheric winds;
    the variable names follow the project's request for a wind field, and the physics
    (geostrophic turbulence, an inverse energy cascade and a steep enstrophy-cascade
    spectrum) is the same as for synoptic-scale atmospheric QG flow, only scaled.

Spin-up and sampling
    * Initial state: band-limited random upper-layer PV (wavelengths 25-330 km, rms 2e-5 s-1,
      drawn from ``numpy.random.default_rng(seed)``), lower layer at rest. This starts the
      flow close to its equilibrium energy instead of waiting years for the linear
      instability to grow from round-off-sized noise.
    * Spin-up: ``--spinup-years`` (default 2) years. From this initial state the eddy
      kinetic energy settles within about 0.8 year (at 256x256 it then fluctuates by a few
      per cent around 6.4e-4 m2 s-2 over years 1-4); the KE of the last two half-years of
      the spin-up is printed and stored in the file (``spinup_ke_*`` attributes).
    * Training set: after the spin-up, one long run: each sequence is ``--n-frames``
      snapshots ``--interval-hours`` apart, then the model runs on for ``--gap-days``
      before the next sequence starts, so consecutive sequences are practically
      weakly correlated (the correlation across a gap is measured and stored).
    * Held-out sample (``--sample``): an independent run from a DIFFERENT seed (its own
      initial state and spin-up), one sequence of 8 frames (8 days apart) written as
      (time, y, x).

    The snapshot interval is chosen for the coarse (factor-8, 31 km) field. This flow
    evolves slowly (eddy turnover of weeks): measured at 256x256 over 40 model days, the
    correlation of the 8x8-block-averaged eddy u at lag 1, 4, 8, 12, 20, 30 days is
    0.997, 0.962, 0.880, 0.780, 0.575, 0.360 (full resolution 0.992, 0.924, 0.816, 0.707,
    0.500, 0.298). Hours-apart snapshots would be near copies, so the default interval is
    8 days (lag-1 about 0.88 coarse) and sequences are 56 days apart (7 intervals). The
    lag-1 correlations are measured again while writing and stored
    (``lag1_correlation_coarse8``, ``lag1_correlation_full_resolution``, and
    ``correlation_across_gap_coarse8`` between the last frame of a sequence and the first
    of the next).

Geolocation
    A beta-plane has none. So that CF tools work, the grid is given a NOMINAL Lambert
    azimuthal equal-area projection (sphere, R = 6371 km) centred at 49.06 N, 30 W (over the
    North Atlantic): 49.06 N is where 2 Omega cos(lat) / R equals the model's beta. The
    domain centre is the projection origin (false easting/northing 500 km), so x and y are
    pyqg's own coordinates (cell centres at (i + 0.5) dx). lat/lon are derived from this
    nominal mapping only.

Output
    Training set: ``eastward_wind(sequence, time, y, x)`` and ``northward_wind`` in m s-1
    (float32, zlib, quantised to about 1e-4 m s-1), a nominal time axis shared by all
    sequences (every sequence starts at 2000-01-01 00:00, like
    ``scripts/make_rain_sequences.py``), the real model time of each sequence start in
    ``sequence_start_time``, projected x/y in metres with bounds, nominal lat/lon and the
    grid mapping. Default file ``~/.cache/xstochsr/training/qg_wind_sequences.nc``
    (not committed).
    Held-out sample: ``eastward_wind(time, y, x)`` only, 8 frames, packed to 0.001 m s-1,
    written to ``xstochsr/data/qg_wind_sample.nc`` (shipped; it must stay below 1.5 MB).
    Written there, the script also rewrites its own block of ``data_registry.txt`` (the
    lines between ``# >>> qg`` and ``# <<< qg``, with the file's sha256 and provenance; every
    other line is kept) and copies the registry byte for byte to
    ``xstochsr/data/registry.txt``.
    Licence of the data: CC0-1.0 (simulated by the xstochsr developers); pyqg itself is MIT.

Environment (pyqg is NOT an xstochsr dependency; build it in its own virtual env)
-----------------------------------------------------------------------------------
A plain ``pip install pyqg`` fails with Cython 3. This works (Python 3.11)::

    python -m venv /tmp/venv-qg
    /tmp/venv-qg/bin/pip install "cython<3" "numpy<2" setuptools wheel pyfftw netCDF4 pyproj
    /tmp/venv-qg/bin/pip install --no-build-isolation pyqg

(Do not put the venv inside the repository: only ``.venv/`` and ``.venv-ci/`` are
git-ignored.) The script sets ``OMP_NUM_THREADS=1`` and ``OMP_WAIT_POLICY=passive``
unless they are set; pyqg runs its FFTs on ``--threads`` threads (default 1).

Usage
-----
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --quick    # 64x64 grid, ~10 s
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py            # 32 x 24 frames of 256x256
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --sample   # the shipped held-out sample
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --sample --quick  # smoke test (cache)
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --out FILE --n-sequences 16 --seed 3
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --regime atmosphere --quick  # ~1 min
    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --regime atmosphere  # 3 files, ~1.5 h

Reproducibility: a run is fully determined by its arguments in exact arithmetic, but the
flow is chaotic and FFTW's choice of algorithm can differ between machines, so another
machine (or pyfftw/FFTW version) gives a statistically equivalent, not bit-identical, file.

Atmosphere regime (``--regime atmosphere``): training data of the joint (u, v) model
    The same two-layer model with the parameters of a MIDLATITUDE TROPOSPHERE
    (``QG_PARAMS_ATMOS``), so that the winds have atmospheric scales and speeds in m s-1.
    Each number, and why:

    * beta = 1.6e-11 m-1 s-1: 2 Omega cos(lat) / R at 45.66 N (the nominal centre latitude).
    * rd = 500 km, the baroclinic deformation radius of the two layers,
      sqrt(g' H1 H2 / H) / f0 with H1 = H2 = 5 km, f0 = 1.04e-4 s-1 (45.66 N) and
      g' = g dtheta / theta: a 25-35 K potential-temperature difference between the lower
      and upper halves of the troposphere (theta about 290 K below 500 hPa, 315-325 K above)
      gives 430-510 km, so 500 km is at the upper end (the continuous troposphere's
      NH/f0 ~ 1000 km is about twice the two-layer rd). With it the fastest
      growing wave is 3900 km long, the wavelength of synoptic waves (zonal wavenumber 6-7 at
      45 N, about 4000 km; in the domain: 4000 km, two per side).
    * delta = H1/H2 = 1, H1 = 5000 m: the upper and lower halves of a 10 km troposphere;
      the written wind is the upper layer's, to be read as a mid/upper-tropospheric
      (about 300-500 hPa) wind.
    * U1 = 9 m s-1, U2 = 0: the imposed vertical shear (thermal wind) U1 - U2. The
      critical shear beta / F2 = 2 beta rd**2 is 8.0 m s-1, so the flow is 1.125 times
      supercritical: the midlatitude troposphere sits close to baroclinic criticality (Stone
      1978). The observed 250-850 hPa shear is larger (10-25 m s-1), but here the imposed
      shear is a reservoir the eddies never deplete (no baroclinic adjustment), so U1 is set
      by the eddy amplitude it gives: in trials (128x128, 200 days) U1 = 12 m s-1
      (supercriticality 1.5) gave rms eddy winds of 15-18 m s-1 and maxima of 93 m s-1, and
      rd = 600 km with U1 = 12 m s-1 (supercriticality 1.04) piled the energy up at the
      domain scale. The price: a linear e-folding time of 7.9 days for the fastest wave
      (8.4 days for the domain's 4000 km wave; Eady estimates for the atmosphere are 2-3
      days).
    * rek = 3.858e-6 s-1 (1 / 3 days): linear drag on the lower layer only, the boundary
      layer's Ekman spin-down of a few days (the eddy amplitude barely changed between 2 and
      4 days in trials).
    * filterfac = 23.6: pyqg's default exponential small-scale filter (Arbic & Flierl).
    * L = 8000 km: two synoptic wavelengths per side (L / rd = 16). At nx = 256,
      dx = 31.25 km (about ERA5's 0.25 deg) and the factor-8 coarse cell is 250 km (a
      2-2.5 deg reanalysis or GCM cell).
    * dt = 120 s: pyqg's filter leaves wavenumbers up to 0.65 pi / dx untouched and AB3 is
      stable for advection only up to omega dt = 0.7236, so max speed x dt / dx must stay
      below 0.7236 / (0.65 pi) = 0.354 (``max_stable_cfl``; a 128x128 trial with speed CFL
      about 0.35-0.45 blew up). A 120-day trial at 256x256 reached 59 m s-1: speed CFL 0.23
      at 120 s (0.34 at 180 s); the limit is reached only at 92 m s-1. The speed CFL is
      checked every model hour and the run stops on non-finite fields.

    Initial state: band-limited random upper-layer PV (wavelengths 800-4000 km, rms
    3e-5 s-1, eddy winds about 5 m s-1), lower layer at rest. Spin-up: ``--spinup-days``
    (150) at half resolution (128x128, dt 240 s; ten times cheaper), then the PV is
    spectrally interpolated to 256x256 (``refine``) and run ``--adjust-days`` (20) more so
    that the small scales fill in. The eddy KE grows for 50-60 days, then fluctuates by
    +-40 % around its mean (few eddies per domain; bursts); the KE series every 2 days and the
    mean KE of the middle and last thirds of the spin-up and of the adjustment are stored
    (``spinup_ke_*``).

    Sampling: frames every ``--interval-hours`` (24 h): in the 256x256 trial the correlation
    of the 8x8-block-mean u at lag 12, 24, 48 h was 0.96, 0.88, 0.72 (full resolution 0.95,
    0.87, 0.72), so 24 h gives a lag-1 of about 0.88, like the rain data's. ``--n-frames``
    (12) frames per sequence, ``--gap-days`` (10) days between sequences.

    Splits: train (``--n-sequences``, 24), val and test (``--n-eval-sequences``, 6 each) are
    THREE INDEPENDENT RUNS, each from its own seed (``ATMOS_SEEDS``): own initial state, own
    spin-up; each is written to its own file as soon as its run ends:
    ``~/.cache/xstochsr/training/qg_atmos_{train,val,test}.nc`` (``--out-dir``; with
    ``--quick`` ``qg_atmos_*_quick.nc``).

    Output per file: ``eastward_wind`` (U1 + u, upper layer) and ``northward_wind`` (v) as
    (sequence, time, y, x), m s-1, float32, zlib, quantised to 0.01 m s-1; grid, nominal
    time and geolocation as for the ocean regime, but the nominal Lambert azimuthal equal-area
    mapping is centred at 45.66 N 30 W (where 2 Omega cos(lat) / R = beta; false easting and
    northing 4000 km). Measured and stored per file: rms of u - U1 and of v, maximum and
    99th/99.9th percentile speed, the upper-layer KE spectrum and its slope over 150-1000 km
    wavelength, lag-1 correlations (block-mean and full resolution, u and v), the correlation
    across gaps, the largest CFL (pyqg's) and speed CFL, and the linear-stability figures.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("~/.cache/xstochsr/training/qg_wind_sequences.nc").expanduser()
QUICK_OUT = DEFAULT_OUT.with_name("qg_wind_sequences_quick.nc")
SAMPLE_OUT = ROOT / "xstochsr" / "data" / "qg_wind_sample.nc"
TRAIN_SEED = 20240606
SAMPLE_SEED = 20240607  # the held-out sample: a different seed, hence an independent run

L_M = 1.0e6  # domain side (pyqg default)
DT_S = 3600.0
INIT_PV_RMS = 2e-5  # s-1, upper layer
INIT_BAND_KM = (25.0, 333.0)  # wavelengths of the initial PV noise
# pyqg.QGModel defaults (0.4.0), written out so the file records them
QG_PARAMS = {
    "beta": 1.5e-11,
    "rd": 15000.0,
    "delta": 0.25,
    "H1": 500.0,
    "U1": 0.025,
    "U2": 0.0,
    "rek": 5.787e-7,
    "filterfac": 23.6,
}
# nominal geolocation (see the docstring)
OMEGA = 7.2921e-5
R_EARTH = 6371000.0
LAT0 = round(float(np.degrees(np.arccos(QG_PARAMS["beta"] * R_EARTH / (2 * OMEGA)))), 2)  # 49.06
LON0 = -30.0
TIME_UNITS = "hours since 2000-01-01 00:00:00"

# --- the atmosphere regime (--regime atmosphere; see "Atmosphere regime" in the docstring) --
ATMOS_L_M = 8.0e6  # domain side: 8000 km (dx 31.25 km at nx = 256, factor-8 cells 250 km)
ATMOS_DT_S = 120.0  # s at nx = 256: speed CFL 0.23 at 59 m s-1 (AB3 limit 0.354 at 92 m s-1)
ATMOS_INIT_PV_RMS = 3e-5  # s-1, upper layer
ATMOS_INIT_BAND_KM = (800.0, 4000.0)  # wavelengths of the initial PV noise
#: Two-layer midlatitude troposphere (justified number by number in the docstring)
QG_PARAMS_ATMOS = {
    "beta": 1.6e-11,  # m-1 s-1: 2 Omega cos(lat) / R at 45.66 N
    "rd": 5.0e5,  # m: baroclinic deformation radius of a two-layer troposphere
    "delta": 1.0,  # H1 / H2: upper and lower halves of the troposphere
    "H1": 5000.0,  # m
    "U1": 9.0,  # m s-1: imposed upper-layer wind (vertical shear U1 - U2)
    "U2": 0.0,  # m s-1
    "rek": 3.858e-6,  # s-1: lower-layer linear drag, 1 / (3 days)
    "filterfac": 23.6,  # pyqg's default small-scale filter
}
ATMOS_LAT0 = round(
    float(np.degrees(np.arccos(QG_PARAMS_ATMOS["beta"] * R_EARTH / (2 * OMEGA)))), 2
)  # 45.66
ATMOS_LON0 = -30.0
ATMOS_SPLITS = ("train", "val", "test")
#: one seed per split: three independent runs (own initial state and spin-up each)
ATMOS_SEEDS = {"train": 20250612, "val": 20250613, "test": 20250614}
ATMOS_DIR = DEFAULT_OUT.parent
#: wavelengths (km) over which the KE-spectrum slope is fitted
ATMOS_SLOPE_BAND_KM = (150.0, 1000.0)


# --- pure physics checks (no pyqg needed; tests/test_make_qg_sequences.py) --------------------


def layer_coupling(params: dict) -> tuple[float, float]:
    """pyqg's F1 = rd**-2 / (1 + delta) and F2 = delta * F1 (m-2)."""
    f1 = params["rd"] ** -2 / (1.0 + params["delta"])
    return f1, params["delta"] * f1


def critical_shear(params: dict) -> float:
    """Smallest vertical shear U1 - U2 (m s-1) that is baroclinically unstable: beta / F2.

    Above it the lower layer's PV gradient beta - F2 (U1 - U2) changes sign (Phillips 1954;
    the two-layer model's necessary and, here, sufficient condition).
    """
    return params["beta"] / layer_coupling(params)[1]


def supercriticality(params: dict) -> float:
    """(U1 - U2) / critical shear: 1 is marginal."""
    return (params["U1"] - params["U2"]) / critical_shear(params)


def phillips_growth_rate(params: dict, k) -> np.ndarray:
    """Linear growth rate (s-1) of zonal waves exp(i k x) of pyqg's two-layer model (inviscid).

    Normal modes of (d/dt + U_j d/dx) q_j + Qy_j d(psi_j)/dx = 0 with
    q = A psi, A = [[-k2 - F1, F1], [F2, -k2 - F2]]: the phase speeds c are the eigenvalues
    of A^-1 (diag(U) A + diag(Qy)); growth rate k Im(c).
    """
    f1, f2 = layer_coupling(params)
    u = np.diag([params["U1"], params["U2"]])
    qy = np.diag(
        [params["beta"] + f1 * (params["U1"] - params["U2"]),
         params["beta"] - f2 * (params["U1"] - params["U2"])]
    )  # fmt: skip
    out = []
    for kk in np.atleast_1d(np.asarray(k, dtype=float)):
        a = np.array([[-kk * kk - f1, f1], [f2, -kk * kk - f2]])
        c = np.linalg.eigvals(np.linalg.solve(a, u @ a + qy))
        out.append(max(0.0, kk * float(c.imag.max())))
    return np.array(out)


def fastest_growth(params: dict, L: float | None = None) -> tuple[float, float]:
    """(largest growth rate in s-1, its wavelength in m): over the zonal wavenumbers the
    doubly periodic domain of side ``L`` allows, or over a fine continuum if ``L`` is None."""
    if L is None:
        k = np.linspace(0.02, 5.0, 2000) / params["rd"]
    else:
        k = 2 * np.pi * np.arange(1, 257) / L
    g = phillips_growth_rate(params, k)
    i = int(np.argmax(g))
    return float(g[i]), float(2 * np.pi / k[i])


def ab3_imaginary_limit() -> float:
    """Largest y with third-order Adams-Bashforth stable for d(q)/dt = i (y / dt) q (~0.7236)."""

    def stable(y: float) -> bool:
        z = 1j * y
        roots = np.roots([12.0, -12.0 - 23.0 * z, 16.0 * z, -5.0 * z])
        return bool(np.abs(roots).max() <= 1.0 + 1e-12)

    lo, hi = 0.0, 1.5
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


def max_stable_cfl(filter_cutoff: float = 0.65 * np.pi) -> float:
    """Largest speed * dt / dx for pyqg's AB3 + spectral filter (~0.354).

    Wavenumbers up to ``filter_cutoff / dx`` (pyqg: 0.65 pi / dx) are not filtered at all, so
    advection at speed s gives them frequencies up to s * 0.65 pi / dx; AB3 is stable on the
    imaginary axis only up to 0.7236 / dt.
    """
    return ab3_imaginary_limit() / filter_cutoff


def cfl_time_step(max_speed: float, dx: float, cfl: float) -> float:
    """The time step (s) that gives ``cfl`` = max_speed * dt / dx."""
    return cfl * dx / max_speed


def nominal_latitude(beta: float) -> float:
    """Latitude (deg N) where 2 Omega cos(lat) / R equals ``beta``."""
    return float(np.degrees(np.arccos(beta * R_EARTH / (2 * OMEGA))))


# --- simulation ----------------------------------------------------------------------------


def make_model(
    seed: int | None,
    nx: int,
    threads: int,
    *,
    params: dict | None = None,
    L: float = L_M,
    dt: float = DT_S,
    init_pv_rms: float = INIT_PV_RMS,
    init_band_km: tuple[float, float] = INIT_BAND_KM,
):
    """A pyqg two-layer model and a seeded initial state.

    The defaults are the ocean-like standard parameters; ``--regime atmosphere`` passes its
    own. With ``seed=None`` the initial state is left to the caller (``refine``).
    """
    import pyqg

    m = pyqg.QGModel(
        nx=nx,
        L=L,
        dt=dt,
        tmax=1e15,  # we step by hand
        tavestart=1e15,  # no pyqg diagnostics (they cost time)
        twrite=10**9,
        ntd=threads,
        log_level=0,
        **(QG_PARAMS if params is None else params),
    )
    if seed is None:
        return m
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(nx) * nx  # cycles per domain
    kk = np.hypot(k[:, None], k[None, :])
    lo, hi = L / 1e3 / init_band_km[1], L / 1e3 / init_band_km[0]
    band = ((kk >= lo) & (kk <= hi)).astype(float)
    q1 = np.real(np.fft.ifft2(band * np.fft.fft2(rng.standard_normal((nx, nx)))))
    q1 *= init_pv_rms / q1.std()
    m.set_q1q2(q1, np.zeros_like(q1))
    return m


def _steps(hours: float, dt: float = DT_S) -> int:
    n = hours * 3600.0 / dt
    if abs(n - round(n)) > 1e-9 or n < 1:
        raise SystemExit(f"{hours} h is not a whole number of {dt / 3600:g} h time steps")
    return int(round(n))


def model_time_s(m) -> float:
    """Model time in s, counting a spin-up done on another (coarser) model (``refine``)."""
    return float(m.t) + getattr(m, "time_offset_s", 0.0)


def spin_up(m, years: float) -> dict:
    """Run ``years`` years; return the KE of the last two half-years (steadiness check)."""
    n_total = _steps(years * 365.0 * 24.0)
    n_month = _steps(30 * 24.0)
    ke, t_days = [], []
    t0 = time.perf_counter()
    for i in range(n_total):
        m._step_forward()
        if (i + 1) % n_month == 0 or i + 1 == n_total:
            ke.append(float(m._calc_ke()))
            t_days.append(m.t / 86400.0)
            if (i + 1) % (6 * n_month) == 0 or i + 1 == n_total:
                print(
                    f"  spin-up day {t_days[-1]:6.0f}: KE {ke[-1]:.3e} m2 s-2, CFL "
                    f"{m._calc_cfl():.2f} ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    ke_a, t_a = np.array(ke), np.array(t_days)
    end = t_a[-1]
    last = ke_a[t_a > end - 182.5].mean()
    prev = ke_a[(t_a > end - 365) & (t_a <= end - 182.5)].mean() if end > 365 else np.nan
    print(
        f"  spin-up done: mean KE {prev:.3e} (second-last half-year) -> {last:.3e} (last); "
        f"{time.perf_counter() - t0:.0f} s, {(time.perf_counter() - t0) / n_total * 1e3:.1f} "
        "ms/step",
        flush=True,
    )
    return {"spinup_ke_second_last_half_year": float(prev), "spinup_ke_last_half_year": float(last)}


def run_sequence(m, n_frames: int, every: int, with_v: bool):
    """n_frames snapshots, ``every`` steps apart; the first is the current state."""
    nx = m.nx
    u = np.empty((n_frames, nx, nx), dtype="float32")
    v = np.empty_like(u) if with_v else None
    t_h = np.empty(n_frames)
    cfl = 0.0
    for t in range(n_frames):
        if t:
            for _ in range(every):
                m._step_forward()
        # pyqg's u, v are diagnosed from q in _invert(), called at the start of a step:
        # invert once more so that the snapshot is the current state
        m._invert()
        u[t] = m.u[0] + m.Ubg[0]  # full upper-layer zonal velocity
        if with_v:
            v[t] = m.v[0]
        t_h[t] = model_time_s(m) / 3600.0
        cfl = max(cfl, float(m._calc_cfl()))
    return u, v, t_h, cfl


def block_mean(a: np.ndarray, f: int = 8) -> np.ndarray:
    n = a.shape[-1] // f
    return a[..., : n * f, : n * f].reshape(*a.shape[:-2], n, f, n, f).mean(axis=(-3, -1))


def lag_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two stacks of fields (spatial means removed), pooled."""
    a = a - a.mean(axis=(-2, -1), keepdims=True)
    b = b - b.mean(axis=(-2, -1), keepdims=True)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


class Stats:
    """Running lag-1 correlations (fine and 8x8-block coarse) and the correlation across gaps."""

    def __init__(self):
        self.sums = {k: np.zeros(3) for k in ("fine", "coarse", "gap")}
        self.last_coarse = None

    def _add(self, key, a, b):
        a = a - a.mean(axis=(-2, -1), keepdims=True)
        b = b - b.mean(axis=(-2, -1), keepdims=True)
        self.sums[key] += [(a * b).sum(), (a * a).sum(), (b * b).sum()]

    def add(self, u: np.ndarray):
        c = block_mean(u.astype("float64"))
        self._add("fine", u[:-1].astype("float64"), u[1:].astype("float64"))
        self._add("coarse", c[:-1], c[1:])
        if self.last_coarse is not None:
            self._add("gap", self.last_coarse, c[0])
        self.last_coarse = c[-1]

    def corr(self, key) -> float:
        s = self.sums[key]
        return float(s[0] / np.sqrt(s[1] * s[2])) if s[1] > 0 and s[2] > 0 else float("nan")


# --- netCDF ----------------------------------------------------------------------------------


def _crs(lat0: float = LAT0, lon0: float = LON0, L: float = L_M):
    import pyproj

    return pyproj.CRS.from_cf(
        {
            "grid_mapping_name": "lambert_azimuthal_equal_area",
            "latitude_of_projection_origin": lat0,
            "longitude_of_projection_origin": lon0,
            "false_easting": L / 2,
            "false_northing": L / 2,
            "earth_radius": R_EARTH,
        }
    )


def _global_attrs(args, extra: dict, sample: bool) -> dict:
    import pyqg

    kind = "held-out sample" if sample else "training set"
    params = ", ".join(f"{k}={v:g}" for k, v in QG_PARAMS.items())
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"Quasi-geostrophic turbulence: upper-layer velocity ({kind} of the xstochsr "
        "wind model, factor 8)",
        "institution": "xstochsr developers",
        "source": f"Simulation with pyqg {pyqg.__version__} (two-layer QGModel, standard "
        f"parameters: {params}; nx={args.size}, L={L_M:g} m, dt={DT_S:g} s) by "
        "scripts/make_qg_sequences.py",
        "history": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}: "
        f"{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}",
        "references": "pyqg: https://pyqg.readthedocs.io (Abernathey et al., pyqg, Zenodo "
        "doi:10.5281/zenodo.50569); Phillips (1954) Tellus 6; Arbic & Flierl (2003) J. Phys. "
        "Oceanogr. 33 (filter); Leinonen, Nerini & Berne (2021) IEEE TGRS 59(9)",
        "license": "CC0-1.0: simulated data made by the xstochsr developers. pyqg (the "
        "software that made them) is MIT-licensed.",
        "provenance": f"Simulated, not observed. scripts/make_qg_sequences.py "
        f"{'--sample ' if sample else ''}--seed {args.seed} (pyqg {pyqg.__version__}, "
        f"numpy {np.__version__}): spin-up {args.spinup_years:g} years from seeded random "
        f"PV, then snapshots every {args.interval_hours:g} h.",
        "comment": __doc__.split("Environment")[0].strip(),
        "seed": int(args.seed),
        "pyqg_version": pyqg.__version__,
        "nx": int(args.size),
        "L_m": L_M,
        "dx_m": L_M / args.size,
        "dt_s": DT_S,
        "spinup_years": float(args.spinup_years),
        "interval_hours": float(args.interval_hours),
        "initial_pv_rms_s-1": INIT_PV_RMS,
    }
    attrs.update({f"pyqg_{k}": float(v) for k, v in QG_PARAMS.items()})
    attrs.update(extra)
    return attrs


def _write_grid(
    nc, n: int, with_lat_lon: bool = True, *, L: float = L_M, lat0: float = LAT0,
    lon0: float = LON0,
) -> None:  # fmt: skip
    import pyproj

    dx = L / n
    c = (np.arange(n) + 0.5) * dx
    for name, axis in (("x", "X"), ("y", "Y")):
        v = nc.createVariable(name, "f8", (name,))
        v.setncatts(
            {
                "standard_name": f"projection_{name}_coordinate",
                "long_name": f"{name} (pyqg model coordinate; nominal Lambert azimuthal "
                "equal-area projection)",
                "units": "m",
                "axis": axis,
                "bounds": f"{name}_bounds",
            }
        )
        v[:] = c
        b = nc.createVariable(f"{name}_bounds", "f8", (name, "nv"))
        b[:] = np.stack([c - dx / 2, c + dx / 2], axis=1)
    crs = _crs(lat0, lon0, L)
    gm = nc.createVariable("crs", "i4", ())
    cf = crs.to_cf()
    cf["crs_wkt"] = crs.to_wkt()
    cf["comment"] = (
        "NOMINAL: the model is a doubly periodic beta-plane without geolocation; this "
        f"mapping (centre {lat0:.2f} N {abs(lon0):g} W, where 2 Omega cos(lat)/R equals the "
        "model's beta) only lets CF tools place the grid."
    )
    gm.setncatts({k: v for k, v in cf.items() if v is not None})
    if with_lat_lon:
        xx, yy = np.meshgrid(c, c)
        lon, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(
            xx, yy
        )
        for name, arr, std, units in (
            ("lat", lat, "latitude", "degrees_north"),
            ("lon", lon, "longitude", "degrees_east"),
        ):
            v = nc.createVariable(
                name, "f4", ("y", "x"), zlib=True, complevel=6, shuffle=True,
                least_significant_digit=4,
            )  # fmt: skip
            v.setncatts({"standard_name": std, "long_name": f"nominal {std}", "units": units})
            v[:] = arr.astype("float32")


def _wind_attrs(component: str) -> dict:
    east = component == "u"
    return {
        "standard_name": "eastward_wind" if east else "northward_wind",
        "long_name": (
            "upper-layer zonal velocity U1 + u (background shear flow plus eddies)"
            if east
            else "upper-layer meridional velocity v"
        )
        + " of pyqg's two-layer quasi-geostrophic model",
        "units": "m s-1",
        "cell_methods": "time: point",
        "grid_mapping": "crs",
        "coordinates": "lat lon",
        "comment": "Layer 1 of 2 (H1 = 500 m) of a QG model with pyqg's standard, ocean-like "
        "mesoscale parameters (rd = 15 km): velocities are weaker than atmospheric winds. "
        "Spectral model: the field is smooth at the grid scale (exponential filter).",
    }


def write_training(out: Path, args) -> dict:
    import netCDF4

    n, nf = args.size, args.n_frames
    every = _steps(args.interval_hours)
    gap = _steps(args.gap_days * 24.0)
    t0 = time.perf_counter()
    m = make_model(args.seed, n, args.threads)
    print(f"spin-up: {args.spinup_years:g} years on a {n}x{n} grid", flush=True)
    spin = spin_up(m, args.spinup_years)
    stats = Stats()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    max_cfl = 0.0
    t_sim = time.perf_counter()
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.createDimension("sequence", args.n_sequences)
            nc.createDimension("time", nf)
            nc.createDimension("y", n)
            nc.createDimension("x", n)
            nc.createDimension("nv", 2)
            _write_grid(nc, n)
            tv = nc.createVariable("time", "f8", ("time",))
            tv.setncatts(
                {
                    "standard_name": "time",
                    "long_name": "nominal time (every sequence starts at 2000-01-01 00:00)",
                    "units": TIME_UNITS,
                    "calendar": "standard",
                    "axis": "T",
                }
            )
            tv[:] = np.arange(nf) * args.interval_hours
            sv = nc.createVariable("sequence", "i4", ("sequence",))
            sv.long_name = "sequence index (consecutive stretches of one long run, gaps between)"
            sv[:] = np.arange(args.n_sequences)
            st = nc.createVariable("sequence_start_time", "f8", ("sequence",))
            st.setncatts(
                {
                    "long_name": "model time of the first frame of the sequence (the "
                    "simulation starts at 2000-01-01 00:00)",
                    "units": TIME_UNITS,
                    "calendar": "standard",
                }
            )
            vars_ = {}
            for comp, name in (("u", "eastward_wind"), ("v", "northward_wind")):
                var = nc.createVariable(
                    name, "f4", ("sequence", "time", "y", "x"), zlib=True, complevel=4,
                    shuffle=True, chunksizes=(1, 1, n, n), least_significant_digit=4,
                )  # fmt: skip
                var.setncatts(_wind_attrs(comp))
                vars_[comp] = var
            for i in range(args.n_sequences):
                if i:
                    for _ in range(gap):
                        m._step_forward()
                u, v, t_h, cfl = run_sequence(m, nf, every, with_v=True)
                max_cfl = max(max_cfl, cfl)
                vars_["u"][i] = u
                vars_["v"][i] = v
                st[i] = t_h[0]
                stats.add(u)
                if (i + 1) % max(1, args.n_sequences // 8) == 0 or i + 1 == args.n_sequences:
                    el = time.perf_counter() - t_sim
                    print(
                        f"  {i + 1}/{args.n_sequences} sequences, {el:.0f} s; lag-1 corr "
                        f"coarse {stats.corr('coarse'):.3f}, fine {stats.corr('fine'):.3f}; "
                        f"across gaps {stats.corr('gap'):.3f}; max CFL {max_cfl:.2f}",
                        flush=True,
                    )
            extra = dict(spin)
            extra.update(
                {
                    "gap_days": float(args.gap_days),
                    "lag1_correlation_coarse8": stats.corr("coarse"),
                    "lag1_correlation_full_resolution": stats.corr("fine"),
                    "correlation_across_gap_coarse8": stats.corr("gap"),
                    "max_cfl": max_cfl,
                    "build_seconds": round(time.perf_counter() - t0, 1),
                }
            )
            nc.setncatts(_global_attrs(args, extra, sample=False))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return extra


def write_sample(out: Path, args) -> dict:
    import netCDF4

    n, nf = args.size, args.n_frames
    every = _steps(args.interval_hours)
    t0 = time.perf_counter()
    m = make_model(args.seed, n, args.threads)
    print(f"held-out sample: spin-up {args.spinup_years:g} years, seed {args.seed}", flush=True)
    spin = spin_up(m, args.spinup_years)
    u, _, t_h, cfl = run_sequence(m, nf, every, with_v=False)
    c = block_mean(u.astype("float64"))
    extra = dict(spin)
    extra.update(
        {
            "lag1_correlation_coarse8": lag_corr(c[:-1], c[1:]),
            "lag1_correlation_full_resolution": lag_corr(
                u[:-1].astype("float64"), u[1:].astype("float64")
            ),
            "max_cfl": cfl,
            "packing": f"eastward_wind stored as int16 in steps of {args.pack_step:g} m s-1",
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.createDimension("time", nf)
            nc.createDimension("y", n)
            nc.createDimension("x", n)
            nc.createDimension("nv", 2)
            _write_grid(nc, n)
            tv = nc.createVariable("time", "f8", ("time",))
            tv.setncatts(
                {
                    "standard_name": "time",
                    "long_name": "model time (the simulation starts at 2000-01-01 00:00)",
                    "units": TIME_UNITS,
                    "calendar": "standard",
                    "axis": "T",
                }
            )
            tv[:] = t_h
            var = nc.createVariable(
                "eastward_wind", "i2", ("time", "y", "x"), zlib=True, complevel=9,
                shuffle=True, chunksizes=(1, n, n), fill_value=np.int16(-32768),
            )  # fmt: skip
            attrs = _wind_attrs("u")
            attrs["scale_factor"] = np.float32(args.pack_step)
            attrs["add_offset"] = np.float32(0.0)
            var.setncatts(attrs)
            var.set_auto_maskandscale(True)
            if np.abs(u).max() / args.pack_step > 32000:
                raise SystemExit("velocities too large for int16 packing; raise --pack-step")
            var[:] = u
            extra["build_seconds"] = round(time.perf_counter() - t0, 1)
            nc.setncatts(_global_attrs(args, extra, sample=True))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return extra


QG_BEGIN = (
    "# >>> qg (managed by scripts/make_qg_sequences.py --sample; edit the script, not these lines)"
)
QG_END = "# <<< qg"


def register_sample(
    path: Path,
    info: dict,
    args,
    key: str | None = None,
    root: Path = ROOT,
) -> str:
    """Rewrite the ``# >>> qg`` block of the registry and copy it byte for byte into the package.

    Every other line of ``data_registry.txt`` is kept; the block is appended at the end if it
    is not there yet.
    """
    import hashlib

    import pyqg

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    key = key or path.resolve().relative_to(ROOT).as_posix()
    lines = [
        QG_BEGIN,
        f"# qg_wind_sample: upper-layer eastward velocity U1 + u (m s-1) of pyqg's two-layer "
        f"quasi-geostrophic model (standard parameters, beta-plane, 1000 km doubly periodic, "
        f"{args.size}x{args.size} at {L_M / args.size / 1e3:.1f} km), {args.n_frames} "
        f"snapshots {args.interval_hours / 24:g} days apart after a {args.spinup_years:g}-year "
        f"spin-up; held-out: seed {args.seed} (the training set uses {TRAIN_SEED}).",
        f"#   Simulated data, not observed. Licence: CC0-1.0 (xstochsr developers); made with "
        f"pyqg {pyqg.__version__} (MIT). Geolocation nominal (Lambert azimuthal equal-area, "
        f"{LAT0:.2f} N {abs(LON0):g} W). Lag-1 correlation of the 8x8-block mean "
        f"{info['lag1_correlation_coarse8']:.2f}.",
        f"#   Made by scripts/make_qg_sequences.py --sample, run in its own venv with pyqg "
        "(recipe in the script's docstring); int16-packed in steps of "
        f"{args.pack_step:g} m s-1.",
        f"{key} sha256:{sha}",
        QG_END,
    ]
    from registry_blocks import write_block

    write_block(QG_BEGIN, QG_END, "\n".join(lines) + "\n", root)
    print(
        f"registered {key} (sha256 {sha[:12]}...) in data_registry.txt; copied to "
        f"{root / 'xstochsr' / 'data' / 'registry.txt'}",
        flush=True,
    )  # fmt: skip
    return sha


# --- the atmosphere regime ----------------------------------------------------------------


def _atmos_model_kw(dt: float) -> dict:
    return {
        "params": QG_PARAMS_ATMOS,
        "L": ATMOS_L_M,
        "dt": dt,
        "init_pv_rms": ATMOS_INIT_PV_RMS,
        "init_band_km": ATMOS_INIT_BAND_KM,
    }


def refine(m_lo, nx: int, threads: int, **model_kw):
    """A new ``nx`` x ``nx`` model started from ``m_lo``'s PV, spectrally interpolated.

    The coarse model's Fourier coefficients are copied into the low wavenumbers of the fine
    grid (its Nyquist row and column, damped to nothing by the filter, are dropped), so the
    fine PV equals the coarse PV at the coarse grid points up to that Nyquist content. Model
    time carries on (``time_offset_s``).
    """
    m = make_model(None, nx, threads, **model_kw)
    n = m_lo.nx
    h = n // 2
    qh = np.asarray(m_lo.qh)
    big = np.zeros((qh.shape[0], nx, nx // 2 + 1), dtype=complex)
    big[:, :h, :h] = qh[:, :h, :h]
    big[:, nx - h + 1 :, :h] = qh[:, n - h + 1 :, :h]
    q = np.fft.irfft2(big, s=(nx, nx)) * (nx / n) ** 2
    m.set_q1q2(q[0], q[1])
    m.time_offset_s = model_time_s(m_lo)
    return m


class Monitor:
    """Every ``every`` steps: stop on a non-finite field, record the largest speed CFL.

    Speed CFL = max |(U + u, v)| dt / dx over both layers (pyqg's own ``_calc_cfl`` takes the
    largest single component instead, which can be up to sqrt(2) smaller).
    """

    def __init__(self, every: int):
        self.every = every
        self.max_cfl = 0.0

    def check(self, m) -> None:
        u = np.asarray(m.u) + np.asarray(m.Ubg)[:, None, None]
        sp = float(np.sqrt(u * u + np.asarray(m.v) ** 2).max())
        if not np.isfinite(sp):
            raise SystemExit(
                f"the model blew up before day {model_time_s(m) / 86400:.1f} (non-finite "
                f"velocity; last speed CFL {self.max_cfl:.2f}): use a smaller --dt"
            )
        self.max_cfl = max(self.max_cfl, sp * m.dt / m.dx)


def advance(m, n: int, mon: Monitor | None = None) -> None:
    for i in range(n):
        m._step_forward()
        if mon is not None and (i + 1) % mon.every == 0:
            mon.check(m)


def atmos_spin_up(seed: int, args, mon: Monitor) -> tuple:
    """Spin up at half resolution (twice the time step), then refine and adjust at full.

    Returns the full-resolution model and a dict with the KE time series (every 2 days).
    """
    nx = args.size
    nx_c = nx // 2 if nx >= 64 else nx
    dt_c = args.dt * nx / nx_c
    t0 = time.perf_counter()
    m = make_model(seed, nx_c, args.threads, **_atmos_model_kw(dt_c))
    mon_c = Monitor(max(1, int(round(3600.0 / dt_c))))
    ke, days = [], []
    every = _steps(48.0, dt_c)
    n_c = _steps(args.spinup_days * 24.0, dt_c)
    for i in range(0, n_c, every):
        advance(m, min(every, n_c - i), mon_c)
        ke.append(float(m._calc_ke()))
        days.append(model_time_s(m) / 86400.0)
    print(
        f"  spin-up {args.spinup_days:g} days at {nx_c}x{nx_c} (dt {dt_c:g} s): "
        f"{time.perf_counter() - t0:.0f} s; KE every 10 days "
        + " ".join(f"{k:.0f}" for k in ke[4::5])
        + " m2 s-2",
        flush=True,
    )
    n_spin = len(ke)
    if nx_c != nx:
        m = refine(m, nx, args.threads, **_atmos_model_kw(args.dt))
    every = _steps(48.0, args.dt)
    n_a = _steps(args.adjust_days * 24.0, args.dt)
    for i in range(0, n_a, every):
        advance(m, min(every, n_a - i), mon)
        ke.append(float(m._calc_ke()))
        days.append(model_time_s(m) / 86400.0)
    ke_a, d_a = np.array(ke), np.array(days)
    third = args.spinup_days / 3.0
    mid = ke_a[:n_spin][(d_a[:n_spin] > third) & (d_a[:n_spin] <= 2 * third)].mean()
    last = ke_a[:n_spin][d_a[:n_spin] > 2 * third].mean()
    adj = ke_a[n_spin:].mean() if len(ke_a) > n_spin else float("nan")
    print(
        f"  spin-up done ({time.perf_counter() - t0:.0f} s): mean KE {mid:.1f} (days "
        f"{third:.0f}-{2 * third:.0f}), {last:.1f} (days {2 * third:.0f}-{args.spinup_days:g}), "
        f"{adj:.1f} m2 s-2 ({args.adjust_days:g} adjustment days at {nx}x{nx}); max speed CFL "
        f"{max(mon_c.max_cfl, mon.max_cfl):.2f}",
        flush=True,
    )
    return m, {
        "spinup_ke_series_m2_s-2": np.round(ke_a, 3),
        "spinup_ke_series_day": np.round(d_a, 3),
        "spinup_ke_middle_third": float(mid),
        "spinup_ke_last_third": float(last),
        "spinup_ke_adjustment": float(adj),
        "spinup_grid": f"{nx_c}x{nx_c} (dt {dt_c:g} s) for {args.spinup_days:g} days, then "
        f"refined spectrally to {nx}x{nx} (dt {args.dt:g} s) for {args.adjust_days:g} days",
        "spinup_max_speed_cfl_coarse_grid": mon_c.max_cfl,
    }


class FieldStats:
    """Pooled upper-layer statistics of written frames: rms, speed, isotropic KE spectrum."""

    def __init__(self, nx: int, L: float, u_background: float):
        self.nx, self.L, self.ubg = nx, L, u_background
        self.n = 0
        self.s_u2 = self.s_v2 = 0.0
        self.max_speed = 0.0
        self.edges = np.arange(0.0, 200.25, 0.25)
        self.hist = np.zeros(len(self.edges) - 1)
        k = np.fft.fftfreq(nx) * nx
        self.kbin = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
        self.spec = np.zeros(self.kbin.max() + 1)

    def add(self, u: np.ndarray, v: np.ndarray) -> None:
        ue = u.astype("float64") - self.ubg
        vv = v.astype("float64")
        self.n += ue.size
        self.s_u2 += float((ue * ue).sum())
        self.s_v2 += float((vv * vv).sum())
        sp = np.hypot(u.astype("float64"), vv)
        self.max_speed = max(self.max_speed, float(sp.max()))
        self.hist += np.histogram(np.clip(sp, 0, 200), self.edges)[0]
        e = 0.5 * (np.abs(np.fft.fft2(ue)) ** 2 + np.abs(np.fft.fft2(vv)) ** 2)
        e = e.sum(axis=0) / self.nx**4  # sum over modes = mean KE of one frame
        self.spec += np.bincount(self.kbin.ravel(), e.ravel(), minlength=len(self.spec))
        self.frames = getattr(self, "frames", 0) + u.shape[0]

    def percentile(self, q: float) -> float:
        c = np.cumsum(self.hist) / self.hist.sum()
        return float(self.edges[1:][np.searchsorted(c, q / 100.0)])

    def spectrum(self) -> np.ndarray:
        """Mean KE per integer wavenumber (cycles per domain), index 0 .. nx/2, m2 s-2."""
        return self.spec[: self.nx // 2 + 1] / max(1, self.frames)

    def fit_band_km(self, band_km: tuple[float, float]) -> tuple[float, float]:
        """``band_km``, its short end raised to 4 dx (the filter acts below ~3 dx)."""
        return (max(band_km[0], 4e-3 * self.L / self.nx), band_km[1])

    def slope(self, band_km: tuple[float, float]) -> float:
        band_km = self.fit_band_km(band_km)
        e = self.spectrum()
        k = np.arange(len(e))
        wl = np.divide(self.L / 1e3, k, out=np.full(len(e), np.inf), where=k > 0)
        sel = (k > 0) & (wl >= band_km[0]) & (wl <= band_km[1])
        if sel.sum() < 3:
            return float("nan")
        return float(np.polyfit(np.log(k[sel]), np.log(e[sel]), 1)[0])


def _atmos_wind_attrs(component: str) -> dict:
    east = component == "u"
    return {
        "standard_name": "eastward_wind" if east else "northward_wind",
        "long_name": (
            "upper-layer zonal wind U1 + u (imposed background plus eddies and jets)"
            if east
            else "upper-layer meridional wind v"
        )
        + " of a two-layer quasi-geostrophic model with midlatitude-atmosphere parameters",
        "units": "m s-1",
        "cell_methods": "time: point",
        "grid_mapping": "crs",
        "coordinates": "lat lon",
        "comment": "Upper layer (upper half of the troposphere, H1 = 5 km; read it as a "
        "mid/upper-tropospheric wind, about 300-500 hPa) of pyqg's two-layer QG model on an "
        "8000 km doubly periodic beta-plane, rd = 500 km. Quantised to 0.01 m s-1. Spectral "
        "model: the field is smooth at the grid scale (exponential filter).",
    }


def _atmos_doc() -> str:
    d = __doc__
    return d[d.index("Atmosphere regime") :].strip()


def _atmos_global_attrs(args, split: str, extra: dict) -> dict:
    import pyqg

    params = ", ".join(f"{k}={v:g}" for k, v in QG_PARAMS_ATMOS.items())
    g, wl = fastest_growth(QG_PARAMS_ATMOS, ATMOS_L_M)
    f0 = 2 * OMEGA * np.sin(np.radians(ATMOS_LAT0))
    seeds = {s: ATMOS_SEEDS[s] + args.seed_offset for s in ATMOS_SPLITS}
    attrs = {
        "Conventions": "CF-1.10",
        "title": "Quasi-geostrophic turbulence with midlatitude-atmosphere scales: "
        f"upper-layer wind ({split} split of the xstochsr joint (u, v) wind model, factor 8)",
        "institution": "xstochsr developers",
        "source": f"Simulation with pyqg {pyqg.__version__} (two-layer QGModel, "
        f"midlatitude-atmosphere parameters: {params}; nx={args.size}, L={ATMOS_L_M:g} m, "
        f"dt={args.dt:g} s) by scripts/make_qg_sequences.py --regime atmosphere",
        "history": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}: "
        f"{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}",
        "references": "pyqg: https://pyqg.readthedocs.io (Abernathey et al., pyqg, Zenodo "
        "doi:10.5281/zenodo.50569); Phillips (1954) Tellus 6; Vallis (2017) Atmospheric and "
        "Oceanic Fluid Dynamics, 2nd ed., ch. 9 and 12; Arbic & Flierl (2003) J. Phys. "
        "Oceanogr. 33 (filter); Leinonen, Nerini & Berne (2021) IEEE TGRS 59(9)",
        "license": "CC0-1.0: simulated data made by the xstochsr developers. pyqg (the "
        "software that made them) is MIT-licensed.",
        "provenance": "Simulated, not observed. scripts/make_qg_sequences.py --regime "
        f"atmosphere, split {split}, seed {seeds[split]} (pyqg {pyqg.__version__}, numpy "
        f"{np.__version__}): spin-up from seeded random PV, then snapshots every "
        f"{args.interval_hours:g} h.",
        "comment": _atmos_doc(),
        "regime": "atmosphere",
        "split": split,
        "seed": int(seeds[split]),
        "split_seeds": ", ".join(f"{s}={v}" for s, v in seeds.items()),
        "split_independence": "train, val and test are three separate runs, each from its "
        "own seed: own random initial state and own spin-up; no state is shared",
        "pyqg_version": pyqg.__version__,
        "nx": int(args.size),
        "L_m": ATMOS_L_M,
        "dx_m": ATMOS_L_M / args.size,
        "dt_s": float(args.dt),
        "spinup_days": float(args.spinup_days),
        "adjustment_days": float(args.adjust_days),
        "interval_hours": float(args.interval_hours),
        "gap_days": float(args.gap_days),
        "initial_pv_rms_s-1": ATMOS_INIT_PV_RMS,
        "initial_pv_band_km": np.array(ATMOS_INIT_BAND_KM),
        "nominal_latitude_deg_north": ATMOS_LAT0,
        "nominal_f0_s-1": float(f0),
        "critical_shear_m_s-1": critical_shear(QG_PARAMS_ATMOS),
        "supercriticality": supercriticality(QG_PARAMS_ATMOS),
        "linear_growth_efolding_days": 1.0 / g / 86400.0,
        "linear_fastest_wavelength_km": wl / 1e3,
        "max_stable_speed_cfl_ab3": max_stable_cfl(),
    }
    attrs.update({f"pyqg_{k}": float(v) for k, v in QG_PARAMS_ATMOS.items()})
    attrs.update(extra)
    return attrs


def write_atmos_split(out: Path, args, split: str) -> dict:
    """One split: its own model (seed), spin-up and ``n`` sequences; written when done."""
    import netCDF4

    n = args.size
    nf = args.n_frames
    n_seq = args.n_sequences if split == "train" else args.n_eval_sequences
    seed = ATMOS_SEEDS[split] + args.seed_offset
    every = _steps(args.interval_hours, args.dt)
    gap = _steps(args.gap_days * 24.0, args.dt)
    t0 = time.perf_counter()
    print(
        f"[{split}] seed {seed}: {n_seq} sequences x {nf} frames of {n}x{n} "
        f"({ATMOS_L_M / n / 1e3:.2f} km, every {args.interval_hours:g} h, {args.gap_days:g} "
        f"days apart) -> {out}",
        flush=True,
    )
    mon = Monitor(max(1, int(round(3600.0 / args.dt))))
    m, spin = atmos_spin_up(seed, args, mon)
    stats_u, stats_v = Stats(), Stats()
    fs = FieldStats(n, ATMOS_L_M, QG_PARAMS_ATMOS["U1"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    max_cfl = 0.0
    t_sim = time.perf_counter()
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.createDimension("sequence", n_seq)
            nc.createDimension("time", nf)
            nc.createDimension("y", n)
            nc.createDimension("x", n)
            nc.createDimension("nv", 2)
            _write_grid(nc, n, L=ATMOS_L_M, lat0=ATMOS_LAT0, lon0=ATMOS_LON0)
            tv = nc.createVariable("time", "f8", ("time",))
            tv.setncatts(
                {
                    "standard_name": "time",
                    "long_name": "nominal time (every sequence starts at 2000-01-01 00:00)",
                    "units": TIME_UNITS,
                    "calendar": "standard",
                    "axis": "T",
                }
            )
            tv[:] = np.arange(nf) * args.interval_hours
            sv = nc.createVariable("sequence", "i4", ("sequence",))
            sv.long_name = (
                f"sequence index (consecutive stretches of one long run, {args.gap_days:g} "
                "days between)"
            )
            sv[:] = np.arange(n_seq)
            st = nc.createVariable("sequence_start_time", "f8", ("sequence",))
            st.setncatts(
                {
                    "long_name": "model time of the first frame of the sequence (the "
                    "simulation starts at 2000-01-01 00:00)",
                    "units": TIME_UNITS,
                    "calendar": "standard",
                }
            )
            vars_ = {}
            for comp, name in (("u", "eastward_wind"), ("v", "northward_wind")):
                var = nc.createVariable(
                    name, "f4", ("sequence", "time", "y", "x"), zlib=True, complevel=4,
                    shuffle=True, chunksizes=(1, 1, n, n), least_significant_digit=2,
                )  # fmt: skip
                var.setncatts(_atmos_wind_attrs(comp))
                vars_[comp] = var
            for i in range(n_seq):
                if i:
                    advance(m, gap, mon)
                u = np.empty((nf, n, n), dtype="float32")
                v = np.empty_like(u)
                for t in range(nf):
                    if t:
                        advance(m, every, mon)
                    m._invert()  # the snapshot is the current state (see run_sequence)
                    u[t] = m.u[0] + m.Ubg[0]
                    v[t] = m.v[0]
                    if t == 0:
                        st[i] = model_time_s(m) / 3600.0
                    mon.check(m)
                    max_cfl = max(max_cfl, float(m._calc_cfl()))
                vars_["u"][i] = u
                vars_["v"][i] = v
                stats_u.add(u)
                stats_v.add(v)
                fs.add(u, v)
                if (i + 1) % max(1, n_seq // 8) == 0 or i + 1 == n_seq:
                    el = time.perf_counter() - t_sim
                    print(
                        f"  [{split}] {i + 1}/{n_seq} sequences, {el:.0f} s; rms u-U1 "
                        f"{np.sqrt(fs.s_u2 / fs.n):.1f}, v {np.sqrt(fs.s_v2 / fs.n):.1f}, max "
                        f"speed {fs.max_speed:.1f} m s-1; lag-1 u coarse "
                        f"{stats_u.corr('coarse'):.3f}, fine {stats_u.corr('fine'):.3f}; "
                        f"across gaps {stats_u.corr('gap'):.3f}; speed CFL {mon.max_cfl:.2f}",
                        flush=True,
                    )
            extra = dict(spin)
            extra.update(
                {
                    "rms_eddy_eastward_wind_m_s-1": float(np.sqrt(fs.s_u2 / fs.n)),
                    "rms_northward_wind_m_s-1": float(np.sqrt(fs.s_v2 / fs.n)),
                    "max_speed_m_s-1": fs.max_speed,
                    "speed_p99_m_s-1": fs.percentile(99.0),
                    "speed_p99_9_m_s-1": fs.percentile(99.9),
                    "ke_spectrum_slope": fs.slope(ATMOS_SLOPE_BAND_KM),
                    "ke_spectrum_slope_band_km": np.array(fs.fit_band_km(ATMOS_SLOPE_BAND_KM)),
                    "ke_spectrum_upper_layer_m2_s-2": fs.spectrum().astype("float32"),
                    "ke_spectrum_wavenumber_comment": "ke_spectrum_upper_layer_m2_s-2[k]: mean "
                    "eddy KE (u - U1, v) of the upper layer in the annulus |k| = k cycles per "
                    "domain (wavelength 8000 km / k), k = 0 .. nx/2",
                    "lag1_correlation_coarse8": stats_u.corr("coarse"),
                    "lag1_correlation_full_resolution": stats_u.corr("fine"),
                    "correlation_across_gap_coarse8": stats_u.corr("gap"),
                    "lag1_correlation_coarse8_northward_wind": stats_v.corr("coarse"),
                    "lag1_correlation_full_resolution_northward_wind": stats_v.corr("fine"),
                    "correlation_across_gap_coarse8_northward_wind": stats_v.corr("gap"),
                    "max_cfl": max_cfl,
                    "max_speed_cfl": mon.max_cfl,
                    "build_seconds": round(time.perf_counter() - t0, 1),
                }
            )
            nc.setncatts(_atmos_global_attrs(args, split, extra))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(
        f"[{split}] wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in "
        f"{time.perf_counter() - t0:.0f} s: rms u-U1 {extra['rms_eddy_eastward_wind_m_s-1']:.2f}"
        f", rms v {extra['rms_northward_wind_m_s-1']:.2f}, max speed "
        f"{extra['max_speed_m_s-1']:.1f} (p99 {extra['speed_p99_m_s-1']:.1f}) m s-1; KE slope "
        f"{extra['ke_spectrum_slope']:.2f} ({extra['ke_spectrum_slope_band_km'][0]:g}-"
        f"{extra['ke_spectrum_slope_band_km'][1]:g} km); lag-1 coarse u "
        f"{extra['lag1_correlation_coarse8']:.3f}"
        f" v {extra['lag1_correlation_coarse8_northward_wind']:.3f}; across gaps u "
        f"{extra['correlation_across_gap_coarse8']:.3f}; max CFL (pyqg) {max_cfl:.2f}, speed "
        f"CFL {mon.max_cfl:.2f}",
        flush=True,
    )
    return extra


def atmos_paths(out_dir: Path, quick: bool) -> dict:
    tail = "_quick" if quick else ""
    return {s: out_dir / f"qg_atmos_{s}{tail}.nc" for s in ATMOS_SPLITS}


def main_atmosphere(p: argparse.ArgumentParser, args) -> int:
    """``--regime atmosphere``: three independent runs, one file per split."""
    if args.sample or args.out is not None:
        p.error("--regime atmosphere writes train/val/test files: use --out-dir, not --out "
                "or --sample")  # fmt: skip
    if args.spinup_years is not None:
        p.error("--regime atmosphere: use --spinup-days")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not splits or set(splits) - set(ATMOS_SPLITS) or len(set(splits)) != len(splits):
        p.error(f"--splits: a comma-separated subset of {','.join(ATMOS_SPLITS)}")
    if args.quick:
        args.size = 64
        args.n_sequences = args.n_sequences or 3
        args.n_eval_sequences = min(args.n_eval_sequences, 2)
        args.n_frames = args.n_frames or 6
        args.spinup_days = args.spinup_days or 30.0
        args.adjust_days = args.adjust_days or 4.0
    args.n_sequences = args.n_sequences or 24
    args.n_frames = args.n_frames or 12
    args.interval_hours = args.interval_hours or 24.0
    args.gap_days = 10.0 if args.gap_days is None else args.gap_days
    args.spinup_days = args.spinup_days or 150.0
    args.adjust_days = 20.0 if args.adjust_days is None else args.adjust_days
    args.dt = args.dt or ATMOS_DT_S
    args.seed_offset = 0 if args.seed is None else args.seed - ATMOS_SEEDS["train"]
    if args.size % 8:
        p.error("--size must be a multiple of 8 (factor-8 blocks)")
    paths = atmos_paths((args.out_dir or ATMOS_DIR).expanduser(), args.quick)
    print(
        f"atmosphere regime: {', '.join(splits)}; rd {QG_PARAMS_ATMOS['rd'] / 1e3:g} km, "
        f"L {ATMOS_L_M / 1e3:g} km, beta {QG_PARAMS_ATMOS['beta']:g} ({ATMOS_LAT0:.1f} N), "
        f"U1 {QG_PARAMS_ATMOS['U1']:g} m s-1 (critical {critical_shear(QG_PARAMS_ATMOS):.1f}, "
        f"supercriticality {supercriticality(QG_PARAMS_ATMOS):.2f}), dt {args.dt:g} s "
        f"(AB3 speed-CFL limit {max_stable_cfl():.3f})",
        flush=True,
    )
    t0 = time.perf_counter()
    for split in splits:
        write_atmos_split(paths[split], args, split)
    print(f"all done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Simulate quasi-geostrophic wind sequences with pyqg (run in its own venv)."
    )
    p.add_argument(
        "--regime",
        choices=("ocean", "atmosphere"),
        default="ocean",
        help="ocean: pyqg's standard parameters, one training file (the default); "
        "atmosphere: midlatitude-atmosphere parameters, independent train/val/test files",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output file (default {DEFAULT_OUT}; with --sample {SAMPLE_OUT}); not with "
        "--regime atmosphere (see --out-dir)",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help=f"--regime atmosphere: folder of qg_atmos_{{train,val,test}}.nc (default {ATMOS_DIR})",
    )
    p.add_argument(
        "--splits",
        default="test,val,train",
        help="--regime atmosphere: which splits to make, in this order (each file is written "
        "as soon as its run ends)",
    )
    p.add_argument(
        "--sample",
        action="store_true",
        help=f"write the held-out sample (seed {SAMPLE_SEED}, 8 frames, (time, y, x))",
    )
    p.add_argument(
        "--n-sequences", type=int, default=None, help="32 (ocean), 24 (atmosphere train)"
    )
    p.add_argument(
        "--n-eval-sequences", type=int, default=6, help="--regime atmosphere: val and test"
    )
    p.add_argument(
        "--n-frames", type=int, default=None, help="24 (training), 8 (--sample), 12 (atmosphere)"
    )
    p.add_argument(
        "--interval-hours", type=float, default=None, help="192 (ocean), 24 (atmosphere)"
    )
    p.add_argument(
        "--gap-days",
        type=float,
        default=None,
        help="model days between the end of one sequence and the next: 56 (ocean), 10 (atmosphere)",
    )
    p.add_argument("--spinup-years", type=float, default=None, help="ocean: 2")
    p.add_argument(
        "--spinup-days",
        type=float,
        default=None,
        help="atmosphere: 150, at half resolution (then --adjust-days at full resolution)",
    )
    p.add_argument("--adjust-days", type=float, default=None, help="atmosphere: 20")
    p.add_argument(
        "--dt", type=float, default=None, help=f"atmosphere: time step in s ({ATMOS_DT_S:g})"
    )
    p.add_argument(
        "--size", type=int, default=256, help="nx = ny (the domain is 1000 km, 8000 km atmosphere)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"{TRAIN_SEED} ({SAMPLE_SEED} with --sample); atmosphere: the train seed "
        f"({ATMOS_SEEDS['train']}), val and test take the next two",
    )
    p.add_argument(
        "--pack-step", type=float, default=0.001, help="--sample: int16 packing step in m s-1"
    )
    p.add_argument("--threads", type=int, default=1, help="FFTW threads of pyqg")
    p.add_argument(
        "--quick",
        action="store_true",
        help="64x64 grid, 4 sequences x 8 frames, 1-year spin-up (a smoke test); atmosphere: "
        "64x64, 3 (train) / 2 (val, test) sequences x 6 frames, 30 + 4 spin-up days",
    )
    args = p.parse_args(argv)
    if args.regime == "atmosphere":
        return main_atmosphere(p, args)
    for name in ("spinup_days", "adjust_days", "dt", "out_dir"):
        if getattr(args, name) is not None:
            p.error(f"--{name.replace('_', '-')} is for --regime atmosphere")
    if args.n_sequences is None:
        args.n_sequences = 32
    if args.interval_hours is None:
        args.interval_hours = 192.0  # 8 days
    if args.gap_days is None:
        args.gap_days = 56.0
    if args.spinup_years is None:
        args.spinup_years = 2.0
    if args.quick:
        args.size, args.n_sequences, args.spinup_years = 64, 4, 1.0
        args.n_frames = args.n_frames or 8
    if args.n_frames is None:
        args.n_frames = 8 if args.sample else 24
    if args.seed is None:
        args.seed = SAMPLE_SEED if args.sample else TRAIN_SEED
    if args.sample and args.seed == TRAIN_SEED:
        print("warning: --sample with the training seed is not a held-out sample", flush=True)
    if args.out is None:
        if args.sample:  # --quick --sample never overwrites the shipped sample
            args.out = (
                DEFAULT_OUT.with_name("qg_wind_sample_quick.nc") if args.quick else SAMPLE_OUT
            )
        else:
            args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    args.out = args.out.expanduser()
    t0 = time.perf_counter()
    if args.sample:
        print(f"writing the held-out sample ({args.n_frames} frames) -> {args.out}", flush=True)
        info = write_sample(args.out, args)
        if args.out.resolve() == SAMPLE_OUT.resolve():
            register_sample(args.out, info, args)
        else:
            print("not the packaged sample path: the registry is left alone", flush=True)
    else:
        print(
            f"simulating {args.n_sequences} sequences x {args.n_frames} frames of "
            f"{args.size}x{args.size} ({L_M / args.size / 1e3:.2f} km, every "
            f"{args.interval_hours:g} h, {args.gap_days:g} days apart) -> {args.out}",
            flush=True,
        )
        info = write_training(args.out, args)
    size = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({size:.2f} MB) in {time.perf_counter() - t0:.1f} s; lag-1 "
        f"correlation of the 8x8-block mean {info['lag1_correlation_coarse8']:.3f} "
        f"(full resolution {info['lag1_correlation_full_resolution']:.3f})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
