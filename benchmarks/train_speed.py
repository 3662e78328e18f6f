"""Training speed of the presets: generator steps/s, sequences/s and peak memory.

    python benchmarks/train_speed.py                     # cpu preset, 2 threads
    python benchmarks/train_speed.py --preset paper --steps 2
    python benchmarks/train_speed.py --preset cpu --device cuda --threads 8

A step is one generator update after ``critic_steps`` critic updates; "sequences/s"
counts every sequence the networks process (batch x (critic_steps + 1) per step).
The data are synthetic advected rain (``xstochsr.training.data.synthetic_rain``);
data preparation is timed separately and excluded from the step rate.

It then prints whether bf16 is native here (CPU flags ``avx512_bf16`` / ``amx_bf16`` in
``/proc/cpuinfo``, or a CUDA device of compute capability >= 8.0) and compares, in the
same run, steps/s of the objectives (``wgan-gp``, ``crps`` with k = 2 and 4) in float32,
with ``channels_last`` and, where bf16 is native (or with ``--bf16``), with bf16
autocast (``amp``); beside each, the largest change of any generator weight after
``--check-steps`` steps against float32 from the same seed (how far results move).
Rates are per *process CPU second* as well as per wall second: on a shared machine the
CPU rate is the comparable one. ``--no-compare`` prints only the first block.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

from xstochsr.precision import native_bf16  # one detection for training and inference


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
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the objective x layout x precision comparison")
    p.add_argument("--compare-steps", type=int, default=4, help="timed steps per variant")
    p.add_argument("--check-steps", type=int, default=2,
                   help="steps after which weights are compared with float32")
    p.add_argument("--bf16", action="store_true", help="time bf16 autocast even if not native")
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
    native, why = native_bf16(args.device)
    print(f"native bf16: {'yes' if native else 'no'} ({why})")
    if args.compare:
        compare(args, ds, overrides, native or args.bf16)
    return 0


def _trainer(ds, overrides: dict, args, tmp: str):
    from xstochsr.training.loop import Trainer

    return Trainer(ds, "precip", overrides.get("factor", 8), preset=args.preset, seed=0,
                   device=args.device, checkpoint_dir=tmp,
                   overrides={**overrides, "progress": False, "val_every": 0})


def compare(args, ds, base: dict, bf16: bool) -> None:
    """Steps/s and weight drift for objectives x (float32, channels_last[, bf16])."""
    import tempfile
    import time

    import torch

    objectives = {"wgan-gp": {"objective": "wgan-gp"},
                  "crps k=2": {"objective": "crps", "ensemble_members": 2},
                  "crps k=4": {"objective": "crps", "ensemble_members": 4}}
    variants = {"float32": {}, "channels_last": {"channels_last": True}}
    if bf16:
        variants["bf16 autocast"] = {"amp": True}
        variants["bf16 + channels_last"] = {"amp": True, "channels_last": True}
    print(f"comparison: {args.compare_steps} timed steps per row (after 1 warm-up); "
          f"weight change after {args.check_steps} steps vs float32, same seed")
    print(f"  {'objective':<10} {'variant':<22} {'steps/s':>8} {'steps/cpu-s':>12} "
          f"{'max|dW|':>9}")
    for oname, okw in objectives.items():
        ref = None
        for vname, vkw in variants.items():
            kw = {**base, **okw, **vkw}
            with tempfile.TemporaryDirectory() as tmp:
                tr = _trainer(ds, kw, args, tmp)
                for _ in range(args.check_steps):
                    tr.train_step()
                w = torch.cat([p.detach().float().reshape(-1).cpu()
                               for p in tr.G.parameters()])
                if ref is None:
                    ref = w
                drift = float((w - ref).abs().max())
                if tr.device.type == "cuda":
                    torch.cuda.synchronize(tr.device)
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(args.compare_steps):
                    tr.train_step()
                if tr.device.type == "cuda":
                    torch.cuda.synchronize(tr.device)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            print(f"  {oname:<10} {vname:<22} {args.compare_steps / wall:>8.3f} "
                  f"{args.compare_steps / cpu:>12.3f} {drift:>9.2e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
