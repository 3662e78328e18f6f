"""Generator speed on one device: float32 against bfloat16, bare forward against end to end.

Issue 11 asks for the network's share of the matmul peak of the precision used and for
end-to-end ``downscale`` at 85 % of the bare forward, and for both to be measured where
a GPU is at hand. One run measures, on ``--device`` (``cuda`` or ``cpu``), beside each
other:

* the matmul rate in float32 (TF32 off, and with TF32) and in bfloat16, ``--matmul``
  square: the reference "peak" of each precision, this run. On CUDA, cuDNN runs float32
  convolutions on the TF32 tensor cores by default (``torch.backends.cudnn.allow_tf32``),
  so the float32 network is measured against the TF32 rate there;
* the bare network forward (random weights; the speed does not depend on them) of the
  cpu-sized and the paper-sized generator on ``--batch`` frames of ``--size`` coarse
  cells in float32 and under bfloat16 autocast: GFLOP/s from the convolutions' FLOPs
  (``speed.generator_flops``) and the share of the matmul rate of that precision;
* end-to-end ``xstochsr.downscale`` of a ``--size`` square, ``--steps`` frames, ``--members``
  members on the device with ``precision="float32"`` and ``"bfloat16"``: member-frames/s,
  GFLOP/s and ``pct_bare`` (its rate over the bare forward's of the same precision).

Every timing synchronises the device before it reads the clock and is the best of
``--reps`` after one warm-up call.

    python benchmarks/device_speed.py --device cuda
    python benchmarks/device_speed.py --device cpu --size 16 --batch 2 --steps 2 --members 2
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import format_table, machine_line  # noqa: E402
from downscale_speed import _field, _model  # noqa: E402
from speed import generator_flops  # noqa: E402


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best(fn, device: str, reps: int) -> float:
    """Best wall seconds of ``reps`` calls of ``fn`` after one warm-up call."""
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_rate(device: str, dtype: str, n: int, reps: int, tf32: bool = False) -> float:
    """GFLOP/s of an ``n x n`` matrix product in ``dtype`` on ``device``."""
    import torch

    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        dt = getattr(torch, dtype)
        a = torch.randn(n, n, device=device, dtype=dt)
        b = torch.randn(n, n, device=device, dtype=dt)
        return 2 * n**3 / _best(lambda: a @ b, device, reps) / 1e9
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _autocast(device: str, precision: str):
    import torch

    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16)


def bare_forward(arch: str, factor: int, device: str, size: int, batch: int, precision: str,
                 reps: int, f: dict) -> float:
    """GFLOP/s of the generator's forward on ``batch`` single frames of ``size``^2 cells.

    ``f``: the network's FLOPs per fine pixel (``speed.generator_flops(arch, factor)``).
    """
    import torch

    g = _model(arch, factor).generator.to(device).eval()
    cfg = g.config
    x = torch.rand(batch, 1, 1, size, size, device=device)
    noise = torch.randn(batch, 1, cfg.noise_channels_total, size, size, device=device)
    init = torch.randn(batch, cfg.noise_channels, size, size, device=device)
    flops = (f["per_frame_px"] + f["per_seq_px"]) * batch * (size * factor) ** 2

    def call():
        with torch.inference_mode(), _autocast(device, precision):
            g(x, noise, None, init)

    return flops / _best(call, device, reps) / 1e9


def end_to_end(arch: str, factor: int, device: str, size: int, steps: int, members: int,
               precision: str, reps: int, f: dict) -> tuple[float, float]:
    """``(member-frames/s, GFLOP/s)`` of ``xstochsr.downscale`` on ``device`` (``f`` as in
    :func:`bare_forward`)."""
    import xstochsr

    model = _model(arch, factor)
    da = _field(size, steps)
    fine = (size * factor) ** 2
    flops = members * (f["per_frame_px"] * steps + f["per_seq_px"]) * fine

    def call():
        xstochsr.downscale(da, factor=factor, members=members, model=model, seed=0,
                           device=device, precision=precision, progress=False)

    dt = _best(call, device, reps)
    return members * steps / dt, flops / dt / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", nargs="+", choices=["cpu", "paper"], default=["cpu", "paper"])
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--size", type=int, default=64, help="coarse cells per side")
    p.add_argument("--batch", type=int, default=8, help="frames in one bare forward")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--matmul", type=int, default=8192)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    import torch

    dev = args.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else "cpu"
    print(machine_line())
    print(f"device {dev} ({name}), torch {torch.__version__}")
    f32 = matmul_rate(dev, "float32", args.matmul, args.reps)
    peak = {"float32": f32,
            "bfloat16": matmul_rate(dev, "bfloat16", args.matmul, args.reps)}
    tf32 = matmul_rate(dev, "float32", args.matmul, args.reps, tf32=True)
    conv_tf32 = dev.startswith("cuda") and torch.backends.cudnn.allow_tf32
    if conv_tf32:
        peak["float32"] = tf32
    print(f"reference (this run, {args.matmul}^2 matmul): float32 {f32:.0f} "
          f"GFLOP/s (TF32 off; {tf32:.0f} with TF32), bfloat16 {peak['bfloat16']:.0f} GFLOP/s"
          + ("; float32 convolutions run as TF32 (cuDNN default): their % peak is of the "
             "TF32 rate" if conv_tf32 else ""))
    rows = []
    for arch in args.arch:
        f = generator_flops(arch, args.factor)  # counted once per network, on the CPU
        for prec in ("float32", "bfloat16"):
            bare = bare_forward(arch, args.factor, dev, args.size, args.batch, prec, args.reps, f)
            mfs, e2e = end_to_end(arch, args.factor, dev, args.size, args.steps, args.members,
                                  prec, args.reps, f)
            rows.append(dict(arch=arch, precision=prec, bare_gflops=round(bare, 1),
                             bare_pct_peak=round(100 * bare / peak[prec], 1),
                             e2e_member_frames_s=round(mfs, 2), e2e_gflops=round(e2e, 1),
                             e2e_pct_peak=round(100 * e2e / peak[prec], 1),
                             pct_bare=round(100 * e2e / bare, 1)))
    print(f"coarse {args.size}^2 x factor {args.factor}; bare forward: {args.batch} frames at "
          f"once; end to end: downscale, {args.steps} frames x {args.members} members")
    print(format_table(rows, list(rows[0]), default_fmt=".1f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
