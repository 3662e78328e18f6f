"""Quality of every downscaling method on held-out data: one row per method.

Each case (a fine field) is block-averaged by ``--factor`` (the perfect-prognosis
coarse input), downscaled by every method with the same members and seed, and scored
against the fine truth with :func:`xstochsr.demo.score_table`:

crps, crps_pool4_avg (CRPS after 4x4 average pooling), rank_ks, rank_kl and
outlier_proportion (rank histogram; deterministic methods get one too: their members
are identical, so the histogram is U-shaped, which is the honest comparison),
rmse (ensemble mean), lsd_db (log spectral distance), fss (at ``--threshold``, 9 fine
cells), q99_ratio (99th percentile of the members over the truth's; 1 is best) and
mass_error (mean absolute relative error of the members' block means against the
coarse input; 0 for mean-preserving methods).

The printed row of a method is the mean over the cases; ``--per-case`` adds the
per-case rows. ``downscale_s`` is the wall time of the ``downscale`` calls only (for
orientation; ``benchmarks/speed.py`` is the speed benchmark).

Data: by default the four bundled real Meteosat rain-rate crops (256x256 at ~3 km,
one frame each), which no shipped model was trained on (those train on simulated
sequences), or ``--data FILE --var NAME``: a netCDF of fine fields (all frames are
one case, the whole file is held out; ``--max-frames`` caps it).

Methods: every baseline, any ``--model PATH_OR_NAME`` (repeatable) and every
pretrained generator that ``downscale(model=None)`` would choose for the field;
``--methods`` replaces the baselines.

    python benchmarks/quality.py                                   # baselines, 10 members
    python benchmarks/quality.py --members 100 --csv quality.csv   # as the paper
    python benchmarks/quality.py --model runs/rain-x8/rain-x8.safetensors
    python benchmarks/quality.py --data my_radar.nc --var precip --factor 8
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import format_table, machine_line, write_csv  # noqa: E402

DEFAULT_SAMPLE_PREFIX = "meteosat_rain_rate"


def _headline() -> tuple[str, ...]:
    from xstochsr.demo import HEADLINE

    return HEADLINE


def _crop(da, crop: int | None, factor: int):
    """Centre crop to ``crop`` x ``crop`` fine cells and trim to whole coarse blocks."""
    from xstochsr.grid import find_axes

    ax = find_axes(da)
    sel = {}
    for dim in (ax.y, ax.x):
        n = da.sizes[dim]
        want = min(n, crop) if crop else n
        want -= want % factor
        start = (n - want) // 2
        sel[dim] = slice(start, start + want)
    return da.isel(sel)


def _drop_aux(da):
    """Drop non-index coordinates on the spatial dims (2-D lat/lon, bounds)."""
    from xstochsr.grid import find_axes

    ax = find_axes(da)
    return da.drop_vars([c for c in da.coords if c not in da.dims
                         and set(da[c].dims) & {ax.x, ax.y}])


def load_cases(data: str | None, var: str | None, *, crop: int | None, factor: int,
               max_frames: int | None = None, samples: list[str] | None = None):
    """``[(name, truth DataArray)]``: the user's file or the bundled Meteosat crops."""
    import xarray as xr

    from xstochsr import datasets
    from xstochsr.grid import find_axes

    cases = []
    if data:
        with xr.open_dataset(data, decode_coords="all") as ds:
            if var is None:
                if len(ds.data_vars) != 1:
                    raise SystemExit(f"{data} holds {list(ds.data_vars)}: pick one with --var.")
                var = next(iter(ds.data_vars))
            if var not in ds:
                raise SystemExit(f"No variable {var!r} in {data}; it holds {list(ds.data_vars)}.")
            da = ds[var]
            ax = find_axes(da)
            if max_frames and ax.t:
                da = da.isel({ax.t: slice(0, max_frames)})
            da = da.load()
        cases.append((Path(data).stem, da))
    else:
        names = samples or [s for s in datasets.list_samples()
                            if s.startswith(DEFAULT_SAMPLE_PREFIX)]
        for name in names:
            ds = datasets.open_sample(name)
            v = var or next(iter(ds.data_vars))
            cases.append((name, ds[v]))
    return [(name, _drop_aux(_crop(da, crop, factor))) for name, da in cases]


def fitting_pretrained(field, factor: int) -> tuple[list[str], list[str]]:
    """The pretrained generator ``downscale`` would choose for ``field``; and notes.

    The same rule as ``downscale(model=None)`` (:func:`xstochsr.model_choice.choose_model`:
    standard_name first, the variable name without one; units alone never pick a model),
    so a wind model is never scored on rain because both units convert.
    """
    from xstochsr.errors import UnknownModelError
    from xstochsr.model_choice import choose_model

    attrs = field.attrs
    try:
        name, reason = choose_model(attrs.get("units"), attrs.get("standard_name"),
                                    field.name, factor)
    except UnknownModelError as e:
        return [], [f"no pretrained generator scored: {str(e).splitlines()[0]}"]
    return [name], [f"pretrained {name!r} {reason.split(': ')[0]}"]


def pick_methods(methods: list[str] | None, models: list[str], field,
                 factor: int, *, pretrained: bool = True):
    """``[(label, model object)]``: generators first, then baselines; and notes."""
    from xstochsr.models.registry import list_models, load_model

    notes = []
    names = list(models)
    if pretrained:
        fits, notes = fitting_pretrained(field, factor)
        names = fits + [m for m in names if m not in fits]
    names += list(methods) if methods is not None else list_models("baseline")
    out, seen = [], set()
    for name in names:
        m = load_model(name)
        label = m.name if m.name not in seen else str(name)
        if label in seen:
            continue
        seen.add(label)
        out.append((label, m))
    return out, notes


def evaluate(cases, methods, *, factor: int, members: int, seed: int, threshold: float,
             echo=print):
    """Score every method on every case; returns (mean rows, per-case rows, failures)."""
    import numpy as np

    import xstochsr
    from xstochsr.demo import score_table
    from xstochsr.grid import coarsen_field, match_grid

    head = _headline()
    coarse = {name: coarsen_field(truth, factor) for name, truth in cases}
    per_case, failures = [], []
    for label, model in methods:
        for name, truth in cases:
            t0 = time.perf_counter()
            try:
                ens = xstochsr.downscale(coarse[name], factor=factor, members=members,
                                         model=model, seed=seed, progress=False)
            except Exception as e:  # noqa: BLE001 (a method that cannot run is reported)
                failures.append(f"{label} on {name}: {type(e).__name__}: {str(e)[:300]}")
                continue
            dt = time.perf_counter() - t0
            row = score_table(ens, match_grid(truth, ens), coarse[name], factor,
                              threshold=threshold, seed=seed)
            per_case.append(dict(method=label, case=name, members=members, seed=seed,
                                 factor=factor, **row, downscale_s=dt))
        echo(f"  scored {label}")
    means = []
    for label, _ in methods:
        rows = [r for r in per_case if r["method"] == label]
        if not rows:
            continue
        mean = dict(method=label, case="all" if len(rows) > 1 else rows[0]["case"],
                    cases=len(rows), members=members, seed=seed, factor=factor)
        for c in (*head, "downscale_s"):
            mean[c] = float(np.mean([r[c] for r in rows]))
        means.append(mean)
    for r in per_case:
        r["cases"] = 1
    return means, per_case, failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--data", help="netCDF of fine fields (default: the bundled Meteosat crops)")
    p.add_argument("--var", help="variable in --data (default: the only one)")
    p.add_argument("--samples", nargs="+", help="bundled samples to use instead of the "
                   f"{DEFAULT_SAMPLE_PREFIX}* crops")
    p.add_argument("--methods", nargs="+", help="baselines to run (default: all)")
    p.add_argument("--model", action="append", default=[], metavar="PATH_OR_NAME",
                   help="a generator to add (repeatable)")
    p.add_argument("--no-pretrained", action="store_true",
                   help="do not add the fitting pretrained generators")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--threshold", type=float, default=1.0, help="FSS threshold (data units)")
    p.add_argument("--crop", type=int, help="centre-crop each case to N x N fine cells")
    p.add_argument("--max-frames", type=int, help="use only the first N frames of --data")
    p.add_argument("--per-case", action="store_true", help="also print/write per-case rows")
    p.add_argument("--csv", help="write the table here (atomically)")
    args = p.parse_args(argv)

    head = _headline()
    print(f"quality benchmark: {machine_line()}")
    cases = load_cases(args.data, args.var, crop=args.crop, factor=args.factor,
                       max_frames=args.max_frames, samples=args.samples)
    methods, notes = pick_methods(args.methods, args.model, cases[0][1], args.factor,
                                  pretrained=not args.no_pretrained)
    for n in notes:
        print(f"note: {n}")
    for name, truth in cases:
        print(f"case {name}: {dict(truth.sizes)} fine, coarsened by {args.factor}, "
              f"units {truth.attrs.get('units')!r}")
    print(f"methods: {', '.join(m for m, _ in methods)}; {args.members} members, seed "
          f"{args.seed}, FSS threshold {args.threshold}")
    means, per_case, failures = evaluate(cases, methods, factor=args.factor,
                                         members=args.members, seed=args.seed,
                                         threshold=args.threshold)
    per_case_shown = args.per_case and len(cases) > 1  # one case: the mean is that case
    rows = means + (per_case if per_case_shown else [])
    cols = ["method", "cases", *head, "downscale_s"]
    if per_case_shown:
        cols.insert(1, "case")
    print()
    print(format_table(rows, cols, formats={"downscale_s": ".2f", "cases": "d"}))
    print("lower is better except fss (higher) and q99_ratio (1 is best); rows are means "
          "over the cases")
    for f in failures:
        print(f"failed: {f}")
    bad = [r["method"] for r in rows if not all(math.isfinite(r[c]) for c in head)]
    if bad:
        print(f"warning: non-finite scores for {bad}")
    if args.csv:
        out = write_csv(args.csv, rows, ["method", "case", "cases", "members", "seed", "factor",
                                         *head, "downscale_s"])
        print(f"wrote {out}")
    return 1 if not means else 0


if __name__ == "__main__":
    raise SystemExit(main())
