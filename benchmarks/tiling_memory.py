"""Peak memory of untiled, tiled and tile-streamed ``downscale`` as the domain grows.

Each case runs ``xstochsr.downscale`` in a fresh subprocess on a synthetic rain field
(gamma-distributed, 40% dry) of ``side x side`` coarse cells with the shipped model
(``rain-x8`` by default), a few frames and members, one torch thread, and reports the
process's peak RSS (``resource.getrusage``), the wall time, the number of tiles and the
largest difference from the untiled run of the same case when both ran, absolute and
relative cell by cell (``|tiled - untiled| / (|untiled| + 0.01)``, in the field's units),
and how many fine cells differ by more than 1e-3 relative, of which how many are zero in
one run and not the other: the rain transform sets values under its threshold (0.1 mm h-1)
to zero, so a float-rounding difference in the network can flip a cell at the threshold
(then scaled by its block's conservation ratio). "untiled" passes
a memory limit far above any case (one piece); "tiled" passes ``--memory-limit``, so the
network's working set per call stays under it while the domain grows. "zarr" writes the
same call tile by tile into a zarr store (:func:`xstochsr.streaming.downscale_to_zarr`,
:mod:`xstochsr.tile_stream`): no whole-domain output or GRU state in memory, so its peak
should stay flat beyond the tile size; its values are read back for the comparison
where the untiled run fits. ``--dask-threads`` tasks run at once (one tile each).

    python benchmarks/tiling_memory.py --sides 2048 --modes zarr --members 2 --memory-limit 1GB

    python benchmarks/tiling_memory.py                          # 64..512, limit 512MB
    python benchmarks/tiling_memory.py --sides 64 128 --untiled-max 128 --memory-limit 256MB

Memory that tiling in memory does not bound is still there: the process (torch, the
model, ~0.3 GB), the input, the eager output (members x frames x fine cells x 4 bytes) and
``downscale``'s conservation and unit steps on a time chunk, and the GRU state of the
whole domain (state channels x coarse cells x 4 bytes per member). The zarr mode keeps
one frame of the coarse input and one tile per running task.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402

UNLIMITED = 1 << 50


def _field(side: int, frames: int):
    import numpy as np
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(0)
    v = rng.gamma(0.6, 2.0, (frames, side, side)).astype(np.float32)
    v[rng.random(v.shape) < 0.4] = 0.0
    dx = 24000.0
    return xr.DataArray(
        v, dims=("time", "y", "x"), name="precip",
        coords={"time": pd.date_range("2021-06-01", periods=frames, freq="15min"),
                "y": ("y", np.arange(side) * dx, {"axis": "Y", "units": "m",
                                                  "standard_name": "projection_y_coordinate"}),
                "x": ("x", np.arange(side) * dx, {"axis": "X", "units": "m",
                                                  "standard_name": "projection_x_coordinate"})},
        attrs={"units": "mm h-1", "standard_name": "lwe_precipitation_rate"})


def child(side: int, mode: str, limit: str, model: str, frames: int, members: int,
          save: str | None, threads: int = 1, store: str | None = None,
          torch_threads: int = 1) -> None:
    """Run one case in this process and print one JSON line."""
    import resource
    import warnings

    import dask
    import numpy as np
    import torch

    torch.set_num_threads(torch_threads)
    import xstochsr
    from xstochsr import tiling
    from xstochsr.validation import check_memory_limit

    m = xstochsr.load_model(model)
    da = _field(side, frames)
    lim = UNLIMITED if mode == "untiled" else check_memory_limit(limit)
    tp, _ = tiling.plan(m, (side, side), batch=members, memory_limit=lim)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "zarr":
            from xstochsr.streaming import downscale_to_zarr

            with dask.config.set(num_workers=threads):
                downscale_to_zarr(da, store, overwrite=True, model=m, members=members,
                                  seed=0, progress=False, memory_limit=lim)
            if tp is not None:
                import zarr

                side_ = json.loads(zarr.open_group(store, mode="r").attrs["xstochsr_tiles"])
                tp = tiling.TilePlan(tp.shape, side_["tile"], tp.halo, 0, aligned=True)
        else:
            ens = xstochsr.downscale(da, model=m, members=members, seed=0, progress=False,
                                     memory_limit=lim)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    out = {"side": side, "mode": mode, "peak_mb": round(peak), "wall_s": round(wall, 1),
           "tiles": len(tp.windows()) if tp else 1,
           "tile": max(w.core[1] - w.core[0] for w in tp.windows()) if tp else side}
    if save:
        if mode == "zarr":
            import xarray as xr

            ens = xr.open_zarr(store)[da.name]
        np.save(save, ens.values)
    print(json.dumps(out))


def _run(args, side: int, mode: str, save: str | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(side), mode,
           "--memory-limit", args.memory_limit, "--model", args.model, "--frames",
           str(args.frames), "--members", str(args.members)]
    if save:
        cmd += ["--save", save]
    cmd += ["--torch-threads", str(args.torch_threads)]
    if mode == "zarr":
        cmd += ["--store", str(Path(args.scratch) / f"{side}.zarr"), "--dask-threads",
                str(args.dask_threads)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                           env={**__import__("os").environ,
                                "OMP_NUM_THREADS": str(args.torch_threads)})
    except subprocess.TimeoutExpired:
        return {"side": side, "mode": mode, "error": f"over {args.timeout:.0f} s"}
    if p.returncode != 0:
        return {"side": side, "mode": mode, "error": p.stderr.strip().splitlines()[-1][:80]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sides", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--untiled-max", type=int, default=512,
                   help="largest side also run untiled (the baseline)")
    p.add_argument("--memory-limit", default="512MB", help="memory_limit of the tiled runs")
    p.add_argument("--model", default="rain-x8")
    p.add_argument("--frames", type=int, default=2)
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--modes", nargs="+", default=["untiled", "tiled"],
                   choices=["untiled", "tiled", "zarr"],
                   help="untiled is run only up to --untiled-max")
    p.add_argument("--tiled-max", type=int, default=1 << 30,
                   help="largest side also run tiled in memory")
    p.add_argument("--dask-threads", type=int, default=1, help="tasks at once in the zarr mode")
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads a model call")
    p.add_argument("--scratch", help="folder for the zarr stores (default: a temporary one)")
    p.add_argument("--child", nargs=2, metavar=("SIDE", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(int(args.child[0]), args.child[1], args.memory_limit, args.model, args.frames,
              args.members, args.save, args.dask_threads, args.store, args.torch_threads)
        return 0

    import shutil
    import tempfile

    import numpy as np

    print("tiling memory benchmark:", machine_line())
    print(f"model {args.model}, {args.frames} frames, {args.members} member(s), "
          f"{args.torch_threads} torch thread(s); tiled and zarr runs with "
          f"memory_limit={args.memory_limit!r}, zarr with {args.dask_threads} task(s) at "
          "once; one subprocess per case")
    head = (f"{'side':>6} {'fine':>6} {'mode':>8} {'tiles':>6} {'core':>5} {'peak MB':>8} "
            f"{'wall s':>7} {'max abs diff':>13} {'max rel diff':>13} {'cells >1e-3':>12} "
            f"{'of which dry/wet flips':>23}")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        args.scratch = args.scratch or tmp
        for side in args.sides:
            ref = None
            for mode in ("untiled", "tiled", "zarr"):
                if mode not in args.modes or (mode == "untiled" and side > args.untiled_max) \
                        or (mode == "tiled" and side > args.tiled_max):
                    continue
                save = str(Path(tmp) / f"{side}_{mode}.npy") if side <= args.untiled_max \
                    else None
                r = _run(args, side, mode, save)
                if "error" in r:
                    print(f"{side:>6} {side * 8:>6} {mode:>8}  failed: {r['error']}")
                    continue
                diff = ""
                if mode == "zarr":
                    shutil.rmtree(Path(args.scratch) / f"{side}.zarr", ignore_errors=True)
                if save is None:
                    pass
                elif mode == "untiled":
                    ref = np.load(save)
                elif ref is not None:
                    tiled = np.load(save)
                    d = np.abs(tiled - ref)
                    rel = d / (np.abs(ref) + 0.01)
                    off = rel > 1e-3
                    flips = int((off & ((ref == 0) != (tiled == 0))).sum())
                    diff = (f"{float(d.max()):>13.2e} {float(rel.max()):>13.2e} "
                            f"{int(off.sum()):>12} {flips:>23}")
                if save:
                    Path(save).unlink(missing_ok=True)
                print(f"{side:>6} {side * 8:>6} {mode:>8} {r['tiles']:>6} {r['tile']:>5} "
                      f"{r['peak_mb']:>8} {r['wall_s']:>7} {diff}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
