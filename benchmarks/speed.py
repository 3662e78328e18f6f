"""Inference speed and peak memory of every method, training steps/s, share of peak.

One run measures, for every method (the baselines and the generator, ``--arch cpu``
and/or ``paper``; random weights, which do not change the speed):

* three sweeps around a base case: coarse domain size (``--sizes``, capped by
  ``--max-size``), sequence length (``--steps``) and members (``--members``); the first
  value of ``--steps``/``--members`` and the smallest kept size make the base case.
  Each case runs ``xstochsr.downscale`` in a fresh subprocess (``run_case`` of
  ``benchmarks/downscale_speed.py``), so its peak resident memory is its own; a case
  whose estimated memory exceeds ``--mem-limit`` is skipped with its estimate printed,
  and one that exceeds ``--timeout`` is reported as such;
* the generator's floating-point rate: its FLOPs per fine frame are counted from its
  convolutions (``torch.utils.flop_counter.FlopCounterMode`` on one small frame, scaled
  by area; 1 MAC = 2 FLOP; element-wise ops are not counted) times the member-frames
  per second of each case, divided by the float32 matrix-multiply GFLOP/s measured in
  this run (``matmul_gflops``), as a percentage ("% peak");
* the same in bfloat16: the bfloat16 matmul rate and the bare forward under bfloat16
  autocast (whether bfloat16 is native here is printed; ``downscale(precision="auto")``
  uses it only where it is); ``pct_bare``: end-to-end over the bare forward's rate;
* member-frames per second of a lazy ``downscale`` on a dask LocalCluster of 1 and 2
  one-thread worker processes (``--workers``);
* training steps per second through ``benchmarks/train_speed.py`` (if present).

    python benchmarks/speed.py                                  # defaults: a few minutes
    python benchmarks/speed.py --max-size 1024 --mem-limit 20   # the whole range
    python benchmarks/speed.py --arch cpu paper --max-size 128 --methods bilinear
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import format_table, machine_line, total_memory_gb, write_csv  # noqa: E402
from downscale_speed import matmul_gflops, run_case  # noqa: E402

BASE_RSS_GB = 0.4  # interpreter + torch + xstochsr, measured ~0.37 GB on Linux


def _generator(arch: str, factor: int):
    from downscale_speed import _model

    return _model(arch, factor)


def generator_flops(arch: str, factor: int, n: int = 16) -> dict:
    """FLOPs per fine pixel: per frame, and once per sequence (the initial GRU state).

    Counted on an ``n x n`` coarse input with T=1 and T=2 (the difference is one
    frame); convolutions scale with area, so per-pixel figures hold at any size.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    g = _generator(arch, factor).generator.eval()
    nz = g.config.noise_channels
    total = []
    for t in (1, 2):
        x = torch.zeros(1, t, 1, n, n)
        noise = torch.zeros(1, t, g.config.noise_channels_total, n, n) if nz else None
        init = torch.zeros(1, nz, n, n) if nz else None
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            g(x, noise, None, init)
        total.append(fc.get_total_flops())
    fine = (n * factor) ** 2
    frame = (total[1] - total[0]) / fine
    return dict(per_frame_px=frame, per_seq_px=(total[0] - frame * fine) / fine,
                params=sum(q.numel() for q in g.parameters()))


def network_gflops(arch: str, factor: int, n: int = 64, reps: int = 3,
                   precision: str = "float32") -> float:
    """GFLOP/s of the bare network forward on one ``n x n`` coarse frame (this process),
    in float32 or under bfloat16 autocast (what ``downscale(precision=)`` runs), in the
    memory layout ``downscale`` uses (``GANModel.channels_last``)."""
    import contextlib

    import torch

    model = _generator(arch, factor)
    fmt = torch.channels_last if model.channels_last else torch.contiguous_format
    g = model.generator.to(memory_format=fmt).eval()
    nz = g.config.noise_channels
    x, noise, init = (torch.rand(1, 1, 1, n, n),
                      torch.randn(1, 1, g.config.noise_channels_total, n, n),
                      torch.randn(1, nz, n, n))
    f = generator_flops(arch, factor)
    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16"
            else contextlib.nullcontext())
    with torch.inference_mode(), cast:
        g(x, noise, None, init)
        t0 = time.perf_counter()
        for _ in range(reps):
            g(x, noise, None, init)
        dt = (time.perf_counter() - t0) / reps
    return (f["per_frame_px"] + f["per_seq_px"]) * (n * factor) ** 2 / dt / 1e9


def estimate_gb(method: str, arch: str, n: int, steps: int, members: int, factor: int) -> float:
    """Rough peak memory of a case (GB), calibrated on this machine's measured peaks."""
    fine = (n * factor) ** 2
    out = 4.0 * fine * steps * members  # the float32 ensemble
    if method == "generator":
        from xstochsr.api import _auto_batch

        model = _generator(arch, factor)
        batch = min(_auto_batch(model, n, n, factor), members)
        w_last = model.generator.config.upsample_widths[-1]
        work = 40.0 * w_last * fine * batch  # decoder activations at fine resolution
    else:
        work = (80.0 if method == "rainfarm" else 32.0) * fine
    return BASE_RSS_GB + (2.5 * out + work) / 1e9


def _matmul_peak(tries: int = 5, dtype: str = "float32", n: int = 1024) -> float:
    """Best of ``tries`` matmul measurements (the first call in a process runs cold)."""
    return max(matmul_gflops(n=n, dtype=dtype) for _ in range(tries))


def dask_throughput(workers: int, arch: str, n: int, steps: int, members: int,
                    factor: int) -> dict:
    """Member-frames per second of a lazy ``downscale`` on a LocalCluster of ``workers``
    one-thread processes (one task per member: ``batch_size=1``), cluster start and the
    first (warm-up) compute not counted."""
    import distributed
    from downscale_speed import _field

    import xstochsr

    model = _generator(arch, factor)
    da = _field(n, steps).chunk(time=steps)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        kw = dict(factor=factor, model=model, seed=0, batch_size=1, progress=False)
        xstochsr.downscale(da, members=workers, **kw).compute()  # every worker warm
        t0 = time.perf_counter()
        xstochsr.downscale(da, members=members, **kw).compute()
        wall = time.perf_counter() - t0
    return dict(workers=workers, wall_s=wall, frames_per_s=members * steps / wall)


def cases_for(sizes, steps, members):
    """Unique (sweep, n, steps, members) cases: size, sequence-length, members sweeps."""
    base_n, base_t, base_m = sizes[0], steps[0], members[0]
    cases, seen = [], set()
    for sweep, items in (("size", [(n, base_t, base_m) for n in sizes]),
                         ("steps", [(base_n, t, base_m) for t in steps]),
                         ("members", [(base_n, base_t, m) for m in members])):
        for c in items:
            if c not in seen:
                seen.add(c)
                cases.append((sweep, *c))
    return cases


def _run_subprocess(case: list, timeout: float) -> dict:
    try:
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--case",
                              json.dumps(case)], capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out (> {timeout:.0f} s)"}
    if out.returncode:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"failed (rc {out.returncode}): {tail[:120]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_speed(steps: int, preset: str, timeout: float) -> tuple[float | None, str]:
    """(steps/s, its output) from ``benchmarks/train_speed.py``; None if unavailable."""
    script = HERE / "train_speed.py"
    if not script.is_file():
        return None, "benchmarks/train_speed.py not found: training speed not available"
    try:
        out = subprocess.run([sys.executable, str(script), "--preset", preset, "--steps",
                              str(steps), "--frames", "16"], capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"train_speed.py timed out (> {timeout:.0f} s)"
    text = (out.stdout + ("\n" + out.stderr[-1500:] if out.returncode else "")).strip()
    m = re.search(r"([0-9.]+) steps/s", out.stdout)
    return (float(m.group(1)) if m and out.returncode == 0 else None), text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--methods", nargs="+", help="baselines and/or 'generator' "
                   "(default: every baseline and the generator)")
    p.add_argument("--arch", nargs="+", choices=["cpu", "paper"], default=["cpu"],
                   help="generator architecture(s), random weights")
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024],
                   help="coarse domain sides")
    p.add_argument("--max-size", type=int, default=256,
                   help="skip sizes above this (default keeps the run to a few minutes)")
    p.add_argument("--steps", type=int, nargs="+", default=[2, 8],
                   help="sequence lengths; the first is the base case")
    p.add_argument("--members", type=int, nargs="+", default=[2, 8],
                   help="ensemble sizes; the first is the base case")
    p.add_argument("--mem-limit", type=float, default=round(0.5 * total_memory_gb(), 1),
                   help="GB; skip cases estimated above it (default: half the RAM)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per case")
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps (0: skip)")
    p.add_argument("--train-preset", default="cpu", choices=["cpu", "paper"])
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                   help="dask LocalCluster sizes for the throughput section (none: skip)")
    p.add_argument("--csv", help="write the case table here (atomically)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(*json.loads(args.case))))
        return 0

    from xstochsr.models.registry import list_models

    methods = args.methods or [*list_models("baseline"), "generator"]
    runs = [(m, a) for m in methods for a in (args.arch if m == "generator" else ["-"])]
    sizes = sorted(args.sizes)
    kept = [n for n in sizes if n <= args.max_size] or sizes[:1]
    cases = cases_for(kept, args.steps, args.members)

    from xstochsr.precision import native_bf16

    print(f"speed benchmark: {machine_line()}")
    ref = _matmul_peak()
    native, why = native_bf16("cpu")
    # emulated bfloat16 runs ~100 times slower: measure it small, only to show the gap
    ref16 = _matmul_peak(dtype="bfloat16") if native else _matmul_peak(1, "bfloat16", 256)
    print(f"reference: float32 matmul {ref:.1f} GFLOP/s (torch, 1024^2, best of 5, this "
          f"run), bfloat16 matmul {ref16:.1f} GFLOP/s"
          + ("" if native else " (256^2, once: emulated, not a rate to aim at)")
          + f"; native bfloat16: {'yes' if native else 'no'} ({why})")
    flops = {a: generator_flops(a, args.factor) for a in args.arch if "generator" in methods}
    bare = {}
    for a, f in flops.items():
        net = bare[a] = network_gflops(a, args.factor)
        net16 = (network_gflops(a, args.factor, precision="bfloat16") if native
                 else network_gflops(a, args.factor, n=16, reps=1, precision="bfloat16"))
        print(f"generator {a}: {f['params'] / 1e6:.2f} M params (random weights), "
              f"{f['per_frame_px'] / 1e3:.1f} kFLOP per fine pixel per frame + "
              f"{f['per_seq_px'] / 1e3:.1f} kFLOP per fine pixel per sequence (initial "
              f"state); bare forward, one 64x64 coarse frame: float32 {net:.1f} GFLOP/s = "
              f"{100 * net / ref:.0f}% of the float32 matmul rate, bfloat16 autocast "
              f"{net16:.1f} GFLOP/s = {100 * net16 / ref16:.0f}% of the bfloat16 matmul rate")
    print(f"cases: sizes {kept} (steps {args.steps[0]}, members {args.members[0]}), "
          f"steps {args.steps} and members {args.members} at size {kept[0]}; factor "
          f"{args.factor}; mem-limit {args.mem_limit} GB; one subprocess per case")

    rows = []
    for method, arch in runs:
        label = method if method != "generator" else f"generator-{arch}"
        for sweep, n, t, m in cases:
            row = dict(method=label, sweep=sweep, coarse=n, fine=n * args.factor, steps=t,
                       members=m)
            est = estimate_gb(method, arch, n, t, m, args.factor)
            row["est_gb"] = est
            if est > args.mem_limit:
                row["status"] = f"skipped (est. {est:.1f} GB)"
            else:
                r = _run_subprocess([method, arch if arch != "-" else "cpu", n, t, m,
                                     args.factor], args.timeout + 60)
                row["status"] = r.get("status", "ok")
                if "wall_s" in r:
                    row.update(wall_s=r["wall_s"], mpx_per_s=r["mpx_per_s"],
                               frames_per_s=m * t / r["wall_s"],
                               peak_gb=r["peak_mib"] * 2**20 / 1e9)
                    if method == "generator":
                        f = flops[arch]
                        total = m * (n * args.factor) ** 2 * (t * f["per_frame_px"]
                                                              + f["per_seq_px"])
                        row["gflops"] = total / r["wall_s"] / 1e9
                        row["pct_bare"] = 100 * row["gflops"] / bare[arch]
            rows.append(row)
            print(f"  {label:<16} {sweep:<8} n={n:<5} steps={t:<3} members={m:<3} "
                  f"{row['status']}" + (f" {row['wall_s']:.2f} s" if "wall_s" in row else ""),
                  flush=True)
        for n in sizes:
            if n not in kept:
                rows.append(dict(method=label, sweep="size", coarse=n, fine=n * args.factor,
                                 steps=args.steps[0], members=args.members[0],
                                 est_gb=estimate_gb(method, arch, n, args.steps[0],
                                                    args.members[0], args.factor),
                                 status=f"skipped (> --max-size {args.max_size})"))

    ref_after = _matmul_peak()
    peak = max(ref, ref_after)  # the best matmul rate seen in this run
    for row in rows:
        if "gflops" in row:
            row["pct_peak"] = 100 * row["gflops"] / peak
    cols = ["method", "sweep", "coarse", "fine", "steps", "members", "wall_s", "mpx_per_s",
            "frames_per_s", "peak_gb", "est_gb", "gflops", "pct_peak", "pct_bare", "status"]
    print()
    print(format_table(rows, cols, formats={"wall_s": ".2f", "mpx_per_s": ".2f",
                                            "frames_per_s": ".2f", "peak_gb": ".2f",
                                            "est_gb": ".1f", "gflops": ".1f",
                                            "pct_peak": ".1f", "pct_bare": ".0f"}))
    print("coarse/fine: domain side in cells; mpx_per_s: fine pixels x members x steps per "
          "second; frames_per_s: member-frames per second; peak_gb: max RSS of the case's "
          f"process (~{BASE_RSS_GB} GB is the imported libraries); est_gb: the estimate used "
          "for --mem-limit; gflops/pct_peak: generator FLOP/s end to end (noise, transforms, "
          "mean conservation included) and its share of the best matmul rate of the run; "
          "pct_bare: end-to-end FLOP/s over the bare network forward's (issue 11's target: "
          ">= 85)")
    print(f"reference: float32 matmul {ref:.1f} GFLOP/s before the cases, {ref_after:.1f} "
          f"after; pct_peak divides by the larger, {peak:.1f} (a big gap means the machine "
          "was shared)")

    if args.workers and "generator" in methods:
        a, n, t = args.arch[0], kept[0], args.steps[0]
        m = max(args.members[-1], 2 * max(args.workers))
        print()
        print(f"dask.distributed throughput (generator-{a}, coarse {n}, {t} frames, {m} "
              "members, one task per member, one-thread worker processes):")
        base = None
        for w in args.workers:
            r = dask_throughput(w, a, n, t, m, args.factor)
            base = base or r["frames_per_s"]
            print(f"  {w} worker(s): {r['wall_s']:.2f} s, {r['frames_per_s']:.2f} "
                  f"member-frames/s ({r['frames_per_s'] / base:.2f} x the first)", flush=True)

    if args.train_steps > 0:
        rate, text = train_speed(args.train_steps, args.train_preset, args.timeout)
        print()
        print(f"training ({args.train_preset} preset, {args.train_steps} timed steps, "
              "benchmarks/train_speed.py):")
        print("\n".join("  " + line for line in text.splitlines()))
        if rate is not None:
            print(f"training: {rate:.3f} steps/s")
    else:
        print("training: skipped (--train-steps 0)")

    if args.csv:
        print(f"wrote {write_csv(args.csv, rows, cols)}")
    failed = [r for r in rows if r["status"].startswith("failed")]
    ok = [r for r in rows if r["status"] == "ok"]
    return 1 if failed or not ok or not all(math.isfinite(r["wall_s"]) for r in ok) else 0


if __name__ == "__main__":
    raise SystemExit(main())
