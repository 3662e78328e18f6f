#!/usr/bin/env python
"""Build the training set of the precipitation model: rain-rate sequences simulated with pysteps.

No long high-resolution rain loop can be had from the package registries reachable here,
so the sequences are simulated, with every statistic that can be taken from real data taken
from the real Meteosat MPE rain-rate crops shipped in ``xstochsr/data/``.

What is REAL (measured on the Meteosat-9 MPE crops of 2008-12-11 16:45 UTC)
    * the spatial power spectrum: a two-slope power-law filter is fitted with
      ``pysteps.noise.fftgenerators.initialize_param_2d_fft_filter`` to each real crop
      (sequence i uses crop i mod 4)
      (log10 rain rate, below 0.1 mm/h set to log10(0.025), as in the paper);
    * the rain-rate intensities: the wet pixels are quantile-mapped onto the empirical
      distribution of that crop's wet pixels (0.144 to 35 mm/h);
    * the grid spacing: the SEVIRI pixel, 3 km, so the fitted filter applies in pixel units.

What is SIMULATED (assumptions, not measurements)
    * time evolution: a STEPS-like AR(1) process in the spectral domain. Each Fourier mode
      k is updated as S(t+1) = rho(k) S_adv(t) + sqrt(1 - rho(k)^2) F(k) W(t+1), where F is
      the fitted filter, W fresh white noise and S_adv the advected field. The lifetime of a
      structure of size L is tau(L) = 90 min (L / 64 km)^0.8 (longer-lived large scales, as
      in STEPS' scale-dependent decorrelation), rho = exp(-dt / tau);
    * motion: semi-Lagrangian advection (``pysteps.extrapolation.semilagrangian``), one
      steady velocity field per sequence: a uniform motion of 2 to 15 m/s in a random
      direction plus a smooth random perturbation (30 % of the speed, scales above 200 km);
      the domain is periodic (the noise is), handled by wrap padding before advection;
    * wet fraction: drawn per sequence between 0.05 and 0.6 and drifting linearly over the
      sequence (growth or decay by up to a factor of 2); the Gaussian field is thresholded
      at the matching quantile, so the rain/no-rain pattern is the upper tail of the field.

Output: one CF netCDF file with ``rain_rate(sequence, time, y, x)`` in mm h-1 (float32,
zlib, quantised to 0.01 mm/h), 5-minute steps, a 3 km synthetic projected grid (no
geolocation), per-sequence metadata (source crop, velocity, wet fractions, filter
parameters). Each sequence is independent; they share the nominal time axis.

Usage
-----
    python scripts/make_rain_sequences.py --quick            # 4 x 12 frames, a few seconds
    python scripts/make_rain_sequences.py                    # 128 x 24 frames of 256x256
    python scripts/make_rain_sequences.py --n-sequences 64 --n-frames 32 --seed 1 --out FILE

Sequences are seeded from ``--seed`` through ``numpy.random.SeedSequence.spawn``, so
sequence i is the same whatever the number of sequences.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DX_KM = 3.0  # SEVIRI pixel at the sub-satellite point
DT_MIN = 5.0
TAU64_MIN = 90.0  # lifetime of a 64 km structure
TAU_EXPONENT = 0.8
LOG_ZERO = np.log10(0.025)  # the paper's value for "no rain" in log units
THRESHOLD = 0.1  # mm/h
DEFAULT_OUT = Path("~/.cache/xstochsr/training/rain_sequences.nc").expanduser()
REAL_CROPS = (
    "meteosat_rain_rate",
    "meteosat_rain_rate_south_africa",
    "meteosat_rain_rate_atlantic_itcz",
    "meteosat_rain_rate_balkans",
)


def _import_pysteps():
    # pysteps prints its configuration line on import; keep it out of the output
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.extrapolation import semilagrangian
        from pysteps.noise import fftgenerators
    return fftgenerators, semilagrangian


def load_templates():
    """Real crops: their fitted spectral filters and wet-pixel intensity distributions."""
    from xstochsr import datasets

    fftgenerators, _ = _import_pysteps()
    out = []
    for name in REAL_CROPS:
        r = datasets.open_sample(name).rain_rate.values[0].astype("float64")
        logr = np.where(r >= THRESHOLD, np.log10(np.maximum(r, THRESHOLD)), LOG_ZERO)
        filt = fftgenerators.initialize_param_2d_fft_filter(logr)
        wet = np.sort(r[r > 0])
        out.append(
            {"name": name, "filter": filt, "wet_values": wet, "wet_fraction": (r > 0).mean()}
        )
    return out


def _radial_wavenumber(n: int) -> np.ndarray:
    k = np.fft.fftfreq(n) * n
    return np.hypot(k[:, None], k[None, :])  # cycles per domain


def decorrelation(n: int) -> np.ndarray:
    """rho(k) for one time step, from the scale-dependent lifetime tau(L)."""
    k = _radial_wavenumber(n)
    scale_km = n * DX_KM / np.maximum(k, 1e-9)
    tau = TAU64_MIN * (scale_km / 64.0) ** TAU_EXPONENT
    rho = np.exp(-DT_MIN / tau)
    rho[0, 0] = 1.0
    return rho


def smooth_velocity(rng: np.random.Generator, n: int) -> tuple[np.ndarray, float, float]:
    """A steady velocity field in pixels per time step, and its mean (u, v) in m/s."""
    speed = rng.uniform(2.0, 15.0)
    direction = rng.uniform(0.0, 2.0 * np.pi)
    u0, v0 = speed * np.cos(direction), speed * np.sin(direction)
    k = _radial_wavenumber(n)
    cutoff = n * DX_KM / 200.0  # keep scales above 200 km
    amp = np.where((k > 0) & (k <= cutoff), 1.0 / np.maximum(k, 1.0) ** 2, 0.0)
    pert = []
    for _ in range(2):
        f = np.real(np.fft.ifft2(amp * np.fft.fft2(rng.standard_normal((n, n)))))
        f = f / (f.std() + 1e-12) * 0.3 * speed
        pert.append(f)
    to_px = DT_MIN * 60.0 / (DX_KM * 1000.0)
    vel = np.stack([(u0 + pert[0]) * to_px, (v0 + pert[1]) * to_px])
    return vel, float(u0), float(v0)


def advect_periodic(field: np.ndarray, vel: np.ndarray, semilagrangian, pad: int) -> np.ndarray:
    fp = np.pad(field, pad, mode="wrap")
    vp = np.pad(vel, ((0, 0), (pad, pad), (pad, pad)), mode="wrap")
    out = semilagrangian.extrapolate(fp, vp, 1, outval=np.nan, interp_order=1)[0]
    return out[pad:-pad, pad:-pad]


def to_rain(x: np.ndarray, wet_fraction: float, wet_values: np.ndarray) -> np.ndarray:
    """Quantile-map a Gaussian field onto zeros plus the real wet-pixel distribution."""
    flat = x.ravel()
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    p = (ranks + 0.5) / flat.size  # 0..1
    dry = 1.0 - wet_fraction
    q = np.clip((p - dry) / wet_fraction, 0.0, 1.0)
    ecdf = (np.arange(wet_values.size) + 0.5) / wet_values.size
    rain = np.where(p > dry, np.interp(q, ecdf, wet_values), 0.0)
    return rain.reshape(x.shape).astype("float32")


def simulate_sequence(seed_seq, tpl: dict, n: int, n_frames: int, rho: np.ndarray):
    """One sequence: (n_frames, n, n) rain rate in mm/h plus its metadata."""
    _, semilagrangian = _import_pysteps()
    rng = np.random.default_rng(seed_seq)
    filt = filter_on_grid(tpl["filter"], n)
    vel, u0, v0 = smooth_velocity(rng, n)
    pad = int(np.ceil(np.abs(vel).max())) + 2
    wf0 = rng.uniform(0.05, 0.6)
    wf1 = float(np.clip(wf0 * np.exp(rng.uniform(-np.log(2), np.log(2))), 0.02, 0.7))
    innov = np.sqrt(1.0 - rho**2)

    state = filt * np.fft.fft2(rng.standard_normal((n, n)))
    frames = np.empty((n_frames, n, n), dtype="float32")
    for t in range(n_frames):
        x = np.real(np.fft.ifft2(state))
        x = (x - x.mean()) / (x.std() + 1e-12)
        wf = wf0 + (wf1 - wf0) * t / max(n_frames - 1, 1)
        frames[t] = to_rain(x, wf, tpl["wet_values"])
        if t + 1 < n_frames:
            xa = advect_periodic(x, vel, semilagrangian, pad)
            state = rho * np.fft.fft2(xa) + innov * filt * np.fft.fft2(rng.standard_normal((n, n)))
    meta = {
        "source_crop": tpl["name"],
        "u": u0,
        "v": v0,
        "wet_fraction_start": wf0,
        "wet_fraction_end": wf1,
        "filter_pars": np.asarray(tpl["filter"]["pars"], dtype="float64"),
    }
    return frames, meta


def filter_on_grid(filt: dict, n: int) -> np.ndarray:
    """The fitted pysteps filter (Fourier amplitude) on an n x n grid of the same pixel size."""
    m = filt["input_shape"][0]
    if filt["field"].shape == (n, n):
        amp = np.array(filt["field"], dtype="float64")
    else:  # same physical scale: wavenumber k on n pixels is k * m / n on the fitted grid
        pf = np.array(filt["pars"], dtype="float64")
        pf[2:] /= 2.0  # slopes of the power spectrum -> of the amplitude (as pysteps does)
        k = _radial_wavenumber(n) * m / n
        with np.errstate(divide="ignore"):
            amp = np.exp(filt["model"](np.log(k), *pf))
    amp[0, 0] = 0.0  # the mean is removed anyway
    amp[~np.isfinite(amp)] = 0.0
    return amp


def write(out: Path, args, templates, n: int, seeds) -> None:
    import netCDF4

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    rho = decorrelation(n)
    t0 = time.perf_counter()
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.setncatts(
                {
                    "Conventions": "CF-1.10",
                    "title": "Simulated rain-rate sequences for training xstochsr "
                    "(pysteps noise fitted to real Meteosat MPE rain)",
                    "institution": "xstochsr developers",
                    "source": "scripts/make_rain_sequences.py: pysteps 2-D FFT noise with a "
                    "filter fitted to real Meteosat-9 MPE crops, spectral AR(1) evolution, "
                    "semi-Lagrangian advection, quantile mapping onto real intensities",
                    "history": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}: "
                    f"{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}",
                    "references": "Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9); "
                    "Seed (2003) and Bowler et al. (2006) for STEPS; pysteps (Pulkkinen "
                    "et al. 2019, GMD 12)",
                    "license": "Simulated data, CC0. The fitted spectra and intensities come "
                    "from EUMETSAT MPE data (c) EUMETSAT 2008.",
                    "comment": __doc__.split("Output:")[0].strip(),
                    "seed": int(args.seed),
                    "dt_minutes": DT_MIN,
                    "dx_km": DX_KM,
                    "tau64_minutes": TAU64_MIN,
                    "tau_exponent": TAU_EXPONENT,
                }
            )
            nc.createDimension("sequence", len(seeds))
            nc.createDimension("time", args.n_frames)
            nc.createDimension("y", n)
            nc.createDimension("x", n)
            nc.createDimension("nv", 2)
            nc.createDimension("npars", 4)
            c = (np.arange(n) + 0.5) * DX_KM * 1000.0
            for name, axis in (("x", "X"), ("y", "Y")):
                v = nc.createVariable(name, "f8", (name,))
                v.setncatts(
                    {
                        "standard_name": f"projection_{name}_coordinate",
                        "long_name": f"{name} distance on a synthetic grid (no geolocation)",
                        "units": "m",
                        "axis": axis,
                        "bounds": f"{name}_bounds",
                    }
                )
                v[:] = c
                b = nc.createVariable(f"{name}_bounds", "f8", (name, "nv"))
                b[:] = np.stack([c - DX_KM * 500.0, c + DX_KM * 500.0], axis=1)
            tv = nc.createVariable("time", "f8", ("time",))
            tv.setncatts(
                {
                    "standard_name": "time",
                    "long_name": "nominal time (every sequence starts at 2000-01-01 00:00)",
                    "units": "minutes since 2000-01-01 00:00:00",
                    "calendar": "standard",
                    "axis": "T",
                }
            )
            tv[:] = np.arange(args.n_frames) * DT_MIN
            sv = nc.createVariable("sequence", "i4", ("sequence",))
            sv.long_name = "sequence index (independent simulations)"
            sv[:] = np.arange(len(seeds))
            rr = nc.createVariable(
                "rain_rate", "f4", ("sequence", "time", "y", "x"), zlib=True, complevel=4,
                shuffle=True, chunksizes=(1, 1, n, n), least_significant_digit=2,
            )  # fmt: skip
            rr.setncatts(
                {
                    "standard_name": "lwe_precipitation_rate",
                    "long_name": "simulated rain rate",
                    "units": "mm h-1",
                    "cell_methods": "time: point",
                    "valid_min": np.float32(0.0),
                }
            )
            meta_vars = {}
            for key, long in (
                ("u", "mean eastward advection velocity"),
                ("v", "mean northward advection velocity"),
            ):
                mv = nc.createVariable(f"advection_{key}", "f4", ("sequence",))
                mv.setncatts({"long_name": long, "units": "m s-1"})
                meta_vars[key] = mv
            for key in ("wet_fraction_start", "wet_fraction_end"):
                mv = nc.createVariable(key, "f4", ("sequence",))
                mv.setncatts({"long_name": key.replace("_", " "), "units": "1"})
                meta_vars[key] = mv
            fp = nc.createVariable("filter_pars", "f8", ("sequence", "npars"))
            fp.long_name = "pysteps parametric filter parameters fitted to the source crop"
            src = nc.createVariable("source_crop", str, ("sequence",))
            src.long_name = "xstochsr sample whose spectrum and intensities were used"

            for i, ss in enumerate(seeds):
                # the real crops in turn, so each one shapes a quarter of the set
                tpl = templates[i % len(templates)]
                frames, meta = simulate_sequence(ss, tpl, n, args.n_frames, rho)
                rr[i] = frames
                for key, mv in meta_vars.items():
                    mv[i] = meta[key]
                fp[i] = meta["filter_pars"]
                src[i] = meta["source_crop"]
                if (i + 1) % max(1, len(seeds) // 10) == 0 or i + 1 == len(seeds):
                    el = time.perf_counter() - t0
                    print(
                        f"  {i + 1}/{len(seeds)} sequences, {el:.1f} s "
                        f"({el / ((i + 1) * args.n_frames) * 1000:.1f} ms/frame)",
                        flush=True,
                    )
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Simulate rain-rate training sequences with pysteps.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file ({DEFAULT_OUT})")
    p.add_argument("--n-sequences", type=int, default=128)
    p.add_argument("--n-frames", type=int, default=24)
    p.add_argument("--size", type=int, default=256, help="frame size in 3 km pixels")
    p.add_argument("--seed", type=int, default=20210510)
    p.add_argument("--quick", action="store_true", help="4 sequences of 12 frames")
    args = p.parse_args(argv)
    if args.quick:
        args.n_sequences, args.n_frames = 4, 12
    t0 = time.perf_counter()
    templates = load_templates()
    for t in templates:
        print(
            f"fitted {t['name']}: wet fraction {t['wet_fraction']:.2f}, filter pars "
            f"{np.round(t['filter']['pars'], 2).tolist()}",
            flush=True,
        )
    seeds = np.random.SeedSequence(args.seed).spawn(args.n_sequences)
    print(
        f"simulating {args.n_sequences} sequences x {args.n_frames} frames of "
        f"{args.size}x{args.size} ({DX_KM} km, {DT_MIN} min) -> {args.out}",
        flush=True,
    )
    write(args.out, args, templates, args.size, seeds)
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
