"""Training speed of the presets: generator steps/s, sequences/s and peak memory.

    python benchmarks/train_speed.py                     # cpu preset, 2 threads
    python benchmarks/train_speed.py --preset paper --steps 2
    python benchmarks/train_speed.py --preset cpu --device cuda --threads 8

A step is one generator update after ``critic_steps`` critic updates; "sequences/s"
counts every sequence the networks process (batch x (critic_steps + 1) per step).
The data are synthetic advected rain (``xstochsr.training.data.synthetic_rain``);
data preparation is timed separately and excluded from the step rate.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    p.add_argument("--steps", type=int, default=20, help="timed steps (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=None, help="fine grid side (default 4 patches)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="TrainConfig override (JSON value)")
    args = p.parse_args(argv)

    import json

    import torch

    from xstochsr.training.config import from_preset
    from xstochsr.training.data import synthetic_rain
    from xstochsr.training.loop import Trainer

    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.overrides:
        k, v = item.split("=", 1)
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    cfg = from_preset(args.preset, **overrides)
    size = args.size or 2 * cfg.patch_size * cfg.factor
    t0 = time.perf_counter()
    ds = synthetic_rain(args.frames, size, size, seed=0)
    t_data = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tr = Trainer(ds, "precip", cfg.factor, preset=args.preset, seed=0, device=args.device,
                     checkpoint_dir=tmp, overrides={**overrides, "progress": False,
                                                    "val_every": 0})
        t_setup = time.perf_counter() - t0
        if tr.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(tr.device)
        for _ in range(2):
            tr.train_step()

        def sync():
            if tr.device.type == "cuda":
                torch.cuda.synchronize(tr.device)

        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            tr.train_step()
        sync()
        dt = time.perf_counter() - t0
    c = tr.cfg
    per_step = c.batch_size * ((c.critic_steps + 1) if tr.D is not None else 1)
    n_g = sum(q.numel() for q in tr.G.parameters())
    n_d = sum(q.numel() for q in tr.D.parameters()) if tr.D is not None else 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MiB on Linux
    print(f"preset {args.preset}: factor {c.factor}, patch {c.patch_size}x{c.patch_size} coarse"
          f" -> {c.patch_size * c.factor}x{c.patch_size * c.factor} fine, T={c.seq_len}, "
          f"batch {c.batch_size}, critic_steps {c.critic_steps}")
    print(f"  generator {n_g / 1e6:.2f} M params, critic {n_d / 1e6:.2f} M params")
    print(f"  device {tr.device}, torch threads {torch.get_num_threads()}")
    print(f"  synthetic data {t_data:.1f} s, setup {t_setup:.1f} s")
    print(f"  {args.steps / dt:.3f} steps/s ({dt / args.steps:.2f} s/step), "
          f"{args.steps * per_step / dt:.1f} sequences/s, "
          f"{args.steps * c.batch_size / dt:.1f} training samples/s")
    print(f"  {c.steps} steps (the preset) would take {c.steps * dt / args.steps / 3600:.2f} h")
    print(f"  peak host memory (max RSS) {rss:.0f} MiB")
    if tr.device.type == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated(tr.device) / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
