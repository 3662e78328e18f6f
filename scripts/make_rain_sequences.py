#!/usr/bin/env python
"""Build the simulated rain-rate sequences: pysteps noise fitted to real training regions only.

No long high-resolution rain loop can be had from the package registries reachable here,
so the sequences are simulated. Every statistic that can be taken from real data is taken
from the *training* crops of the fixed split ``scripts/splits/rain.json`` (Meteosat-9 MPE
full disk, 2008-12-11 16:45 UTC; see ``scripts/splits.py`` and ``scripts/make_splits.py``)
and never from a validation or test region. ``fit_simulator`` does the fitting (called by
make_splits.py, which records the fitted parameters in the manifest); this script reads
the parameters back from the manifest, so it needs neither npm nor eccodes.

What is REAL (measured on the training crops, one template per crop)
    * the spatial power spectrum: a two-slope power-law filter fitted with
      ``pysteps.noise.fftgenerators.initialize_param_2d_fft_filter`` to the crop's log10
      rain rate (below 0.1 mm/h set to log10(0.025), as in the paper);
    * the wet fraction at the start of a sequence: the crop's;
    * the rain-rate intensities: wet pixels are quantile-mapped onto the crop's wet-pixel
      quantiles (at ``QUANTILE_PROBS``);
    * the grid spacing: the SEVIRI pixel, 3 km, so the fitted filter applies in pixel units.

What is SIMULATED (assumptions, not measurements)
    * time evolution: a STEPS-like AR(1) process in the spectral domain. Each Fourier mode
      k is updated as S(t+1) = rho(k) S_adv(t) + sqrt(1 - rho(k)^2) F(k) W(t+1), where F is
      the fitted filter normalised to unit variance (so the stationary spectrum is F^2 and
      rho is the lag-1 correlation of each mode), W fresh white noise and S_adv the
      advected field. The lifetime of a structure of size L is tau(L) = 90 min
      (L / 64 km)^0.8 (longer-lived large scales, as in STEPS' scale-dependent
      decorrelation), rho = exp(-dt / tau);
    * motion: semi-Lagrangian advection (``pysteps.extrapolation.semilagrangian``), one
      steady velocity field per sequence: a uniform motion of 2 to 15 m/s in a random
      direction plus a smooth random perturbation (30 % of the speed, scales above 200 km);
      the domain is periodic (the noise is), handled by wrap padding before advection;
    * wet-fraction drift: linear over the sequence, growth or decay by up to a factor of 2
      (clipped to 0.02-0.7); the Gaussian field is thresholded at the matching quantile, so
      the rain/no-rain pattern is the upper tail of the field.

Subsets (seeds and counts from the manifest's ``simulated`` block): ``train`` sequences
for fitting, ``validation`` sequences from an independent seed (model choice, gates, early
stopping) and ``test`` sequences from a third seed (temporal scores only: the real test
crops have no time axis). The sequences of a subset cycle through the training templates
in an order drawn from that subset's seed.

Output: one CF netCDF file with ``rain_rate(sequence, time, y, x)`` in mm h-1 (float32,
zlib, quantised to 0.01 mm/h), 5-minute steps, a 3 km synthetic projected grid (no
geolocation), ``subset(sequence)`` and per-sequence metadata (template crop, velocity, wet
fractions, filter parameters). Each sequence is independent; they share the nominal time
axis. Sequences are ordered train, validation, test (by default 0-111, 112-127, 128-143).

Usage
-----
    python scripts/make_rain_sequences.py --quick            # 4 + 2 + 2 sequences x 12 frames
    python scripts/make_rain_sequences.py                    # 112 + 16 + 16 x 24 frames, 256x256
    python scripts/make_rain_sequences.py --n-frames 32 --out FILE

Sequences are seeded from the subset's seed through ``numpy.random.SeedSequence.spawn``,
so sequence k of a subset is the same whatever the number of sequences.
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
SPLIT = "rain"
SUBSETS = ("train", "validation", "test")
#: probabilities at which each training crop's wet-pixel distribution is recorded
QUANTILE_PROBS = (0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
                  0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99,
                  0.995, 0.999, 1.0)


def _import_pysteps():
    # pysteps prints its configuration line on import; keep it out of the output
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.extrapolation import semilagrangian
        from pysteps.noise import fftgenerators
    return fftgenerators, semilagrangian


# --------------------------------------------------------------------------------------
# fitting (training crops only)
# --------------------------------------------------------------------------------------


def fit_template(field: np.ndarray) -> dict:
    """Fit the simulator's statistics to one real crop.

    Parameters
    ----------
    field : numpy.ndarray
        Rain rate (mm/h), shape (N, N), finite, not all dry.

    Returns
    -------
    dict
        ``filter_pars`` (x0, y0, beta1, beta2 of pysteps' two-slope power law fitted to the
        crop's radially averaged power spectrum), ``fitted_size`` (N), ``wet_fraction`` and
        ``wet_quantiles`` (rain rate of the wet pixels at ``QUANTILE_PROBS``).
    """
    if not np.isfinite(field).all():
        raise ValueError("fit_template got non-finite rain rates: the crop leaves the data "
                         "(or reaches into a NaN-poisoned, non-training region)")
    fftgenerators, _ = _import_pysteps()
    r = field.astype("float64")
    wet = r[r > 0]
    if wet.size == 0:
        raise ValueError("fit_template got a dry crop; choose crops with rain")
    logr = np.where(r >= THRESHOLD, np.log10(np.maximum(r, THRESHOLD)), LOG_ZERO)
    with np.errstate(divide="ignore"):  # pysteps takes log(0) at the mean mode
        filt = fftgenerators.initialize_param_2d_fft_filter(logr)
    q = np.quantile(wet, QUANTILE_PROBS, method="inverted_cdf")
    return {"filter_pars": [round(float(v), 6) for v in filt["pars"]],
            "fitted_size": int(field.shape[0]),
            "wet_fraction": round(float(wet.size / r.size), 6),
            "wet_quantiles": [round(float(v), 4) for v in q]}


def fit_simulator(rate: np.ndarray, split: dict) -> dict:
    """Fit one template per *training* crop of ``split``; no other pixel of ``rate`` is read.

    Parameters
    ----------
    rate : numpy.ndarray
        The full-disk rain rate (mm/h), shape (Y, X) of the split's source grid.
    split : dict
        A split manifest (``splits.load_split``) or at least its ``tiling["crop"]`` and
        ``crops["train"]`` entries.

    Returns
    -------
    dict
        ``templates`` (one ``fit_template`` result per training crop, with the crop's
        ``row``, ``col`` and ``region``), ``quantile_probs``, ``log_zero``,
        ``threshold_mm_h`` and ``fitted_on``.
    """
    size = int(split["tiling"]["crop"])
    templates = []
    for c in split["crops"]["train"]:
        i, j = int(c["row"]), int(c["col"])
        t = fit_template(np.asarray(rate[i:i + size, j:j + size]))
        templates.append({"row": i, "col": j, "region": c["region"], **t})
    if not templates:
        raise ValueError("the split has no training crop to fit the simulator to")
    return {"fitted_on": "train crops of the split only",
            "quantile_probs": list(QUANTILE_PROBS), "log_zero": round(float(LOG_ZERO), 6),
            "threshold_mm_h": THRESHOLD, "templates": templates}


# --------------------------------------------------------------------------------------
# simulating
# --------------------------------------------------------------------------------------


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


def filter_from_pars(pars, fitted_size: int, n: int) -> np.ndarray:
    """The fitted two-slope filter (Fourier amplitude) on an n x n grid, unit variance.

    Parameters
    ----------
    pars : sequence of float
        (x0, y0, beta1, beta2) of ``initialize_param_2d_fft_filter``, fitted on a grid of
        ``fitted_size`` pixels of the same pixel size as this one.
    fitted_size, n : int

    Returns
    -------
    numpy.ndarray
        Amplitude, shape (n, n), in ``numpy.fft`` order, zero at the mean mode, normalised
        so that ``ifft2(amp * fft2(w))`` has unit variance for unit white noise ``w``
        (Parseval: ``mean(amp**2) == 1``), which keeps the AR(1) update
        variance-preserving whatever the fitted level ``y0``.
    """
    x0, y0, b1, b2 = (float(v) for v in pars)
    k = _radial_wavenumber(n) * fitted_size / n  # same physical scale on the fitted grid
    with np.errstate(divide="ignore"):
        logk = np.log(k)
        # pysteps' piecewise power law with halved slopes: power spectrum -> amplitude
        logamp = y0 + np.where(logk < x0, b1 / 2 * (logk - x0), b2 / 2 * (logk - x0))
        amp = np.exp(logamp)
    amp[0, 0] = 0.0  # the mean is removed anyway
    amp[~np.isfinite(amp)] = 0.0
    return amp / np.sqrt(np.mean(amp**2))


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


def to_rain(x: np.ndarray, wet_fraction: float, probs, values) -> np.ndarray:
    """Quantile-map a Gaussian field onto zeros plus a wet-pixel distribution.

    ``values`` are the wet-pixel rain rates at probabilities ``probs`` (increasing, 0 to 1);
    the upper ``wet_fraction`` of ``x`` becomes rain, the rest exactly 0.
    """
    flat = x.ravel()
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    p = (ranks + 0.5) / flat.size  # 0..1
    dry = 1.0 - wet_fraction
    q = np.clip((p - dry) / wet_fraction, 0.0, 1.0)
    rain = np.where(p > dry, np.interp(q, probs, values), 0.0)
    return rain.reshape(x.shape).astype("float32")


def simulate_sequence(seed_seq, tpl: dict, probs, n: int, n_frames: int, rho: np.ndarray):
    """One sequence: (n_frames, n, n) rain rate in mm/h plus its metadata."""
    _, semilagrangian = _import_pysteps()
    rng = np.random.default_rng(seed_seq)
    filt = filter_from_pars(tpl["filter_pars"], tpl["fitted_size"], n)
    vel, u0, v0 = smooth_velocity(rng, n)
    pad = int(np.ceil(np.abs(vel).max())) + 2
    wf0 = float(tpl["wet_fraction"])
    wf1 = float(np.clip(wf0 * np.exp(rng.uniform(-np.log(2), np.log(2))), 0.02, 0.7))
    innov = np.sqrt(1.0 - rho**2)

    state = filt * np.fft.fft2(rng.standard_normal((n, n)))
    frames = np.empty((n_frames, n, n), dtype="float32")
    for t in range(n_frames):
        x = np.real(np.fft.ifft2(state))
        x = (x - x.mean()) / (x.std() + 1e-12)
        wf = wf0 + (wf1 - wf0) * t / max(n_frames - 1, 1)
        frames[t] = to_rain(x, wf, probs, tpl["wet_quantiles"])
        if t + 1 < n_frames:
            xa = advect_periodic(x, vel, semilagrangian, pad)
            state = rho * np.fft.fft2(xa) + innov * filt * np.fft.fft2(rng.standard_normal((n, n)))
    meta = {
        "source_crop": f"MPE train crop row {tpl['row']} col {tpl['col']} ({tpl['region']})",
        "u": u0,
        "v": v0,
        "wet_fraction_start": wf0,
        "wet_fraction_end": wf1,
        "filter_pars": np.asarray(tpl["filter_pars"], dtype="float64"),
    }
    return frames, meta


def plan(split: dict, counts: dict[str, int] | None = None) -> list[tuple[str, object, int]]:
    """(subset, SeedSequence, template index) of every sequence, in file order.

    ``counts`` overrides the manifest's number of sequences per subset.
    """
    sim = split["simulated"]
    n_templates = len(split["simulator"]["templates"])
    out = []
    for subset in SUBSETS:
        spec = sim["subsets"][subset]
        n = (counts or {}).get(subset, spec["n_sequences"])
        seeds = np.random.SeedSequence(spec["seed"]).spawn(n)
        order = np.random.default_rng(spec["seed"]).permutation(n_templates)
        out += [(subset, ss, int(order[k % n_templates])) for k, ss in enumerate(seeds)]
    return out


def write(out: Path, split: dict, jobs, n: int, n_frames: int) -> None:
    import netCDF4

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    rho = decorrelation(n)
    sim = split["simulator"]
    probs = sim["quantile_probs"]
    t0 = time.perf_counter()
    ranges, start = {}, 0
    for subset in SUBSETS:
        k = sum(1 for j in jobs if j[0] == subset)
        ranges[subset] = (start, start + k)
        start += k
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.setncatts(
                {
                    "Conventions": "CF-1.10",
                    "title": "Simulated rain-rate sequences for training xstochsr "
                    "(pysteps noise fitted to the training regions of real Meteosat MPE rain)",
                    "institution": "xstochsr developers",
                    "source": "scripts/make_rain_sequences.py: pysteps 2-D FFT noise with "
                    "filters fitted to the training crops of split 'rain' "
                    "(scripts/splits/rain.json), spectral AR(1) evolution, semi-Lagrangian "
                    "advection, quantile mapping onto the crops' real intensities",
                    "history": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}: "
                    f"{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}",
                    "references": "Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9); "
                    "Seed (2003) and Bowler et al. (2006) for STEPS; pysteps (Pulkkinen "
                    "et al. 2019, GMD 12)",
                    "license": "Simulated data, CC0. The fitted spectra and intensities come "
                    "from EUMETSAT MPE data (c) EUMETSAT 2008.",
                    "comment": __doc__.split("Output:")[0].strip(),
                    "split": SPLIT,
                    "split_seed": int(split["seed"]),
                    **{f"{s}_seed": int(split["simulated"]["subsets"][s]["seed"])
                       for s in SUBSETS},
                    **{f"{s}_sequences": f"{a}-{b - 1}" if b > a else "none"
                       for s, (a, b) in ranges.items()},
                    "dt_minutes": DT_MIN,
                    "dx_km": DX_KM,
                    "tau64_minutes": TAU64_MIN,
                    "tau_exponent": TAU_EXPONENT,
                }
            )
            nc.createDimension("sequence", len(jobs))
            nc.createDimension("time", n_frames)
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
            tv[:] = np.arange(n_frames) * DT_MIN
            sv = nc.createVariable("sequence", "i4", ("sequence",))
            sv.long_name = "sequence index (independent simulations)"
            sv[:] = np.arange(len(jobs))
            sub = nc.createVariable("subset", str, ("sequence",))
            sub.long_name = ("which set of split 'rain' the sequence belongs to (train, "
                             "validation: model choice and early stopping, test: read once)")
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
            src.long_name = "real training crop whose spectrum and intensities were used"

            for i, (subset, ss, t) in enumerate(jobs):
                frames, meta = simulate_sequence(ss, sim["templates"][t], probs, n, n_frames,
                                                 rho)
                rr[i] = frames
                for key, mv in meta_vars.items():
                    mv[i] = meta[key]
                fp[i] = meta["filter_pars"]
                src[i] = meta["source_crop"]
                sub[i] = subset
                if (i + 1) % max(1, len(jobs) // 10) == 0 or i + 1 == len(jobs):
                    el = time.perf_counter() - t0
                    print(
                        f"  {i + 1}/{len(jobs)} sequences, {el:.1f} s "
                        f"({el / ((i + 1) * n_frames) * 1000:.1f} ms/frame)",
                        flush=True,
                    )
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from splits import load_split

    p = argparse.ArgumentParser(description="Simulate rain-rate sequences with pysteps.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file ({DEFAULT_OUT})")
    p.add_argument("--n-frames", type=int, default=None, help="default: the manifest's")
    p.add_argument("--size", type=int, default=None, help="frame size in 3 km pixels")
    p.add_argument("--quick", action="store_true", help="4 + 2 + 2 sequences of 12 frames")
    args = p.parse_args(argv)
    split = load_split(SPLIT)
    sim = split["simulated"]
    n_frames = args.n_frames or (12 if args.quick else sim["n_frames"])
    size = args.size or sim["size"]
    counts = {"train": 4, "validation": 2, "test": 2} if args.quick else None
    jobs = plan(split, counts)
    t0 = time.perf_counter()
    used = sorted({t for _, _, t in jobs})
    print(f"split {SPLIT!r}: {len(split['simulator']['templates'])} templates fitted on "
          f"training crops; {len(used)} used", flush=True)
    print(f"simulating {len(jobs)} sequences "
          f"({', '.join(f'{s} {sum(j[0] == s for j in jobs)}' for s in SUBSETS)}) x "
          f"{n_frames} frames of {size}x{size} ({DX_KM} km, {DT_MIN} min) -> {args.out}",
          flush=True)
    write(args.out, split, jobs, size, n_frames)
    mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({mb:.1f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
