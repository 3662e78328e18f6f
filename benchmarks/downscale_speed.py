"""Inference throughput and peak memory of ``downscale`` for growing domains and series.

Prints one row per case: coarse size, steps, members, wall time, throughput in fine
pixels x members x steps per second, and the peak resident memory of the process that
ran it (each case runs in a fresh subprocess, so peaks do not mix). Beside the
generator, the same cases run with bilinear interpolation through the same API (the
cost of everything that is not the network), and a float32 matrix multiply gives the
machine's reference GFLOP/s, all measured in this run.

Weights are random (speed does not depend on them); ``--arch paper`` uses the paper's
13.6 M-parameter network, ``--arch cpu`` the small one.

    python benchmarks/downscale_speed.py                 # quick set
    python benchmarks/downscale_speed.py --arch paper --sizes 32 64 --steps 8
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _field(n: int, steps: int):
    import numpy as np
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(0)
    return xr.DataArray(
        rng.gamma(0.6, 2.0, (steps, n, n)).astype("float32"), dims=("time", "y", "x"),
        coords={"time": pd.date_range("2021-01-01", periods=steps, freq="5min"),
                "y": ("y", np.arange(n) * 8000.0, {"axis": "Y", "units": "m"}),
                "x": ("x", np.arange(n) * 8000.0, {"axis": "X", "units": "m"})},
        attrs={"units": "mm h-1"},
    )


def _model(arch: str, factor: int):
    import torch

    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=factor) if arch == "paper" else GeneratorConfig.small(factor)
    card = ModelCard(name=f"bench-{arch}", units="mm h-1",
                     transform={"kind": "log_rain", "threshold": 0.1, "fill": 0.025,
                                "max": 100.0})
    return GANModel(Generator(cfg), card)


def run_case(method: str, arch: str, n: int, steps: int, members: int, factor: int) -> dict:
    """Run one case in this process and return its figures."""
    import torch

    import xstochsr

    torch.set_num_threads(torch.get_num_threads())
    da = _field(n, steps)
    model = _model(arch, factor) if method == "generator" else method
    xstochsr.downscale(da.isel(time=[0]), factor=factor, members=1, model=model, seed=0)  # warm
    t0 = time.perf_counter()
    ens = xstochsr.downscale(da, factor=factor, members=members, model=model, seed=0)
    wall = time.perf_counter() - t0
    px = ens.sizes["x"] * ens.sizes["y"] * members * steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    return dict(method=method, arch=arch if method == "generator" else "-", n=n, steps=steps,
                members=members, wall_s=wall, mpx_per_s=px / wall / 1e6, peak_mib=peak)


def matmul_gflops(n: int = 1024, reps: int = 10, dtype: str = "float32") -> float:
    """Matrix-multiply GFLOP/s of this machine in ``dtype`` (float32, bfloat16), measured now."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=["cpu", "paper"], default="cpu")
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--steps", type=int, nargs="+", default=[4, 16])
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(*json.loads(args.case))))
        return 0

    print(f"reference: float32 matmul {matmul_gflops():.1f} GFLOP/s (torch, this machine, now)")
    head = (f"{'method':<10}{'arch':<6}{'coarse':>8}{'steps':>6}{'members':>8}{'wall s':>9}"
            f"{'Mpx/s':>9}{'peak MiB':>10}")
    print(head)
    print("-" * len(head))
    for steps in args.steps:
        for n in args.sizes:
            for method in ("bilinear", "generator"):
                case = json.dumps([method, args.arch, n, steps, args.members, args.factor])
                out = subprocess.run([sys.executable, __file__, "--case", case],
                                     capture_output=True, text=True, check=False)
                if out.returncode:
                    print(f"{method:<10} n={n} steps={steps} failed:\n{out.stderr[-2000:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{r['method']:<10}{r['arch']:<6}{r['n']:>8}{r['steps']:>6}"
                      f"{r['members']:>8}{r['wall_s']:>9.2f}{r['mpx_per_s']:>9.3f}"
                      f"{r['peak_mib']:>10.0f}")
    print("Mpx/s: fine pixels x members x steps per second; peak MiB: max RSS of the case's "
          "process (includes ~400 MiB of imported libraries).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
