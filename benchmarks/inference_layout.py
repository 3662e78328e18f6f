"""Inference in the contiguous against the channels_last memory layout, same run.

``GANModel.channels_last`` (default True) runs the generator's convolutions in the
channels_last layout. For each network (the shipped ``rain-x8`` and the paper-size one,
random weights) and precision (float32; bfloat16 autocast too where the CPU has it
natively, or with ``--precisions``) this prints, in both layouts:

* the bare network forward, constraint layer included, on steady frames (GRU state
  given) of ``--members`` rows, ``--frames`` of them: member-frames per second, best of
  ``--reps``;
* end-to-end ``downscale``: member-frames per second (noise, transforms, the first
  frame's state initialisation and xarray included);
* each over contiguous float32 (``x base``), and ``e2e/bare``: the share of the bare
  forward's rate reached end to end (issue 11 asks for 0.85);
* the largest difference from contiguous float32's output, relative to its range.

The cases alternate rep by rep, so a machine whose load drifts slows them alike.

    python benchmarks/inference_layout.py                         # 64 x 64 coarse, 2 members
    python benchmarks/inference_layout.py --size 32 --arch rain-x8 --reps 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402
from downscale_speed import _field, _model  # noqa: E402


def _network(arch: str, factor: int):
    import xstochsr

    return xstochsr.load_model(arch) if arch == "rain-x8" else _model(arch, factor)


def bare(model, n: int, precision: str = "float32", members: int = 1, frames: int = 4) -> float:
    """Seconds per member-frame of the bare network: ``frames`` steady frames (GRU state
    given, as every frame but a sequence's first) of ``members`` rows, in the model's
    layout, one after the other."""
    import contextlib

    import torch

    g = model.generator
    fmt = torch.channels_last if model.channels_last else torch.contiguous_format
    g = g.to(memory_format=fmt).eval()
    c = g.config
    x = torch.rand(members, 1, c.in_channels, n, n)
    noise = torch.randn(members, 1, c.noise_channels_total, n, n) if c.noise_channels else None
    init = torch.randn(members, c.noise_channels, n, n) if c.noise_channels else None
    kw = {}
    if c.constraint:
        kw = {"coarse": x.clone(), "transform": model.card.transform}
    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16"
            else contextlib.nullcontext())
    with torch.inference_mode(), cast:
        _, h = g(x, noise, None, init, **kw)
        t0 = time.perf_counter()
        for _ in range(frames):
            _, h = g(x, noise, h, None, **kw)
        return (time.perf_counter() - t0) / (members * frames)


def end_to_end(model, da, members: int, precision: str = "float32"):
    """Seconds of ``downscale`` and its values."""
    import xstochsr

    t0 = time.perf_counter()
    ens = xstochsr.downscale(da, model=model, members=members, seed=0, progress=False,
                             precision=precision)
    return time.perf_counter() - t0, ens.values


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["rain-x8", "paper"],
                   choices=["rain-x8", "paper", "cpu"])
    p.add_argument("--size", type=int, default=64, help="coarse cells per side")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--precisions", nargs="+", choices=["float32", "bfloat16"],
                   help="default: float32, and bfloat16 where the CPU has it natively")
    args = p.parse_args(argv)

    import numpy as np

    from xstochsr.precision import native_bf16

    native, why = native_bf16("cpu")
    precisions = args.precisions or (["float32", "bfloat16"] if native else ["float32"])

    print("inference layout benchmark:", machine_line())
    print(f"{args.size} x {args.size} coarse cells, factor {args.factor}, {args.frames} "
          f"frames, {args.members} members; best of {args.reps} (cases alternate); native "
          f"bfloat16: {native} ({why})")
    print(f"{'network':>8} {'precision':>9} {'layout':>14} {'bare m-frames/s':>15} {'x base':>7} "
          f"{'e2e member-frames/s':>20} {'x base':>7} {'e2e/bare':>9} {'max rel diff':>13}")
    cases = [(p_, cl) for p_ in precisions for cl in (False, True)]
    for arch in args.arch:
        models = {}
        for cl in (False, True):  # one copy per layout, each kept in its layout
            models[cl] = _network(arch, args.factor)
            models[cl].channels_last = cl
        da = _field(args.size, args.frames)
        spacing = models[False].card.native_grid_spacing
        if spacing:  # the model's own grid spacing, so nothing is regridded or warned
            da = da.assign_coords(y=da.y * spacing["value"] / 8000.0,
                                  x=da.x * spacing["value"] / 8000.0)
        best = {c: [np.inf, np.inf] for c in cases}
        values = {}
        for prec, cl in cases:  # warm every case
            bare(models[cl], args.size, prec, args.members)
            end_to_end(models[cl], da.isel(time=[0]), 1, prec)
        for _ in range(args.reps):
            for prec, cl in cases:
                best[prec, cl][0] = min(best[prec, cl][0],
                                        bare(models[cl], args.size, prec, args.members,
                                             args.frames))
                dt, values[prec, cl] = end_to_end(models[cl], da, args.members, prec)
                best[prec, cl][1] = min(best[prec, cl][1], dt)
        base = ("float32", False)
        ref = values[base]
        span = float(np.nanmax(ref) - np.nanmin(ref)) or 1.0
        for prec, cl in cases:
            b, e = best[prec, cl]
            per_frame = e / (args.frames * args.members)
            diff = float(np.nanmax(np.abs(values[prec, cl] - ref))) / span
            print(f"{arch:>8} {prec:>9} {('channels_last' if cl else 'contiguous'):>14} "
                  f"{1 / b:>15.3f} {best[base][0] / b:>7.2f} {1 / per_frame:>20.3f} "
                  f"{best[base][1] / e:>7.2f} {b / per_frame:>9.2f} "
                  f"{(f'{diff:.1e}' if (prec, cl) != base else '-'):>13}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
