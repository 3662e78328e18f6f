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

Reproducibility: a run is fully determined by its arguments in exact arithmetic, but the
flow is chaotic and FFTW's choice of algorithm can differ between machines, so another
machine (or pyfftw/FFTW version) gives a statistically equivalent, not bit-identical, file.
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


# --- simulation ----------------------------------------------------------------------------


def make_model(seed: int, nx: int, threads: int):
    """A pyqg two-layer model with standard parameters and a seeded initial state."""
    import pyqg

    m = pyqg.QGModel(
        nx=nx,
        L=L_M,
        dt=DT_S,
        tmax=1e15,  # we step by hand
        tavestart=1e15,  # no pyqg diagnostics (they cost time)
        twrite=10**9,
        ntd=threads,
        log_level=0,
        **QG_PARAMS,
    )
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(nx) * nx  # cycles per domain
    kk = np.hypot(k[:, None], k[None, :])
    lo, hi = L_M / 1e3 / INIT_BAND_KM[1], L_M / 1e3 / INIT_BAND_KM[0]
    band = ((kk >= lo) & (kk <= hi)).astype(float)
    q1 = np.real(np.fft.ifft2(band * np.fft.fft2(rng.standard_normal((nx, nx)))))
    q1 *= INIT_PV_RMS / q1.std()
    m.set_q1q2(q1, np.zeros_like(q1))
    return m


def _steps(hours: float) -> int:
    n = hours * 3600.0 / DT_S
    if abs(n - round(n)) > 1e-9 or n < 1:
        raise SystemExit(f"{hours} h is not a whole number of {DT_S / 3600:g} h time steps")
    return int(round(n))


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
        t_h[t] = m.t / 3600.0
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


def _crs():
    import pyproj

    return pyproj.CRS.from_cf(
        {
            "grid_mapping_name": "lambert_azimuthal_equal_area",
            "latitude_of_projection_origin": LAT0,
            "longitude_of_projection_origin": LON0,
            "false_easting": L_M / 2,
            "false_northing": L_M / 2,
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


def _write_grid(nc, n: int, with_lat_lon: bool = True) -> None:
    import pyproj

    dx = L_M / n
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
    crs = _crs()
    gm = nc.createVariable("crs", "i4", ())
    cf = crs.to_cf()
    cf["crs_wkt"] = crs.to_wkt()
    cf["comment"] = (
        "NOMINAL: the model is a doubly periodic beta-plane without geolocation; this "
        f"mapping (centre {LAT0:.2f} N {abs(LON0):g} W, where 2 Omega cos(lat)/R equals the "
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
    root_registry: Path = ROOT / "data_registry.txt",
    packaged_registry: Path = ROOT / "xstochsr" / "data" / "registry.txt",
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
    block = "\n".join(lines) + "\n"
    text = root_registry.read_text(encoding="utf-8")
    if QG_BEGIN in text and QG_END in text:
        i = text.index(QG_BEGIN)
        j = text.index(QG_END, i) + len(QG_END)
        if text[j : j + 1] == "\n":
            j += 1
        text = text[:i] + block + text[j:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    root_registry.write_text(text, encoding="utf-8")
    packaged_registry.write_bytes(root_registry.read_bytes())
    print(
        f"registered {key} (sha256 {sha[:12]}...) in {root_registry.name}; copied to "
        f"{packaged_registry}",
        flush=True,
    )  # fmt: skip
    return sha


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Simulate quasi-geostrophic wind sequences with pyqg (run in its own venv)."
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output file (default {DEFAULT_OUT}; with --sample {SAMPLE_OUT})",
    )
    p.add_argument(
        "--sample",
        action="store_true",
        help=f"write the held-out sample (seed {SAMPLE_SEED}, 8 frames, (time, y, x))",
    )
    p.add_argument("--n-sequences", type=int, default=32)
    p.add_argument("--n-frames", type=int, default=None, help="24 (training), 8 (--sample)")
    p.add_argument("--interval-hours", type=float, default=192.0, help="8 days")
    p.add_argument(
        "--gap-days",
        type=float,
        default=56.0,
        help="model days between the end of one sequence and the next",
    )
    p.add_argument("--spinup-years", type=float, default=2.0)
    p.add_argument("--size", type=int, default=256, help="nx = ny (the domain is always 1000 km)")
    p.add_argument(
        "--seed", type=int, default=None, help=f"{TRAIN_SEED} ({SAMPLE_SEED} with --sample)"
    )
    p.add_argument(
        "--pack-step", type=float, default=0.001, help="--sample: int16 packing step in m s-1"
    )
    p.add_argument("--threads", type=int, default=1, help="FFTW threads of pyqg")
    p.add_argument(
        "--quick",
        action="store_true",
        help="64x64 grid, 4 sequences x 8 frames, 1-year spin-up (a smoke test)",
    )
    args = p.parse_args(argv)
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
