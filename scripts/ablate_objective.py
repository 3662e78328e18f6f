"""Preliminary ablation of the training objective at equal CPU time (issue 10).

Six generators, each trained for the same budget of *process CPU seconds* on one thread
(fair on a machine whose cores are shared: wall time is not), on the simulated rain of
``scripts/make_rain_sequences.py`` (the first ``--train-sequences`` of sequences 0-111,
the training sequences of ``scripts/train_rain_x8.py``; cpu preset plus ``--set``):

    wgan           objective "wgan-gp" (the paper)
    wgan+crps      {"wgan-gp": 1, "crps": 1}
    crps           "crps" alone (no critic)
    ...-c          the same with constraint="multiplicative" (hard conservation layer)

and scored on held-out simulated sequences 112-127 (first ``--frames`` frames of the
first ``--sequences``), coarsened by 8 and downscaled by the *raw* network
(``conserve=False``; no post-hoc rescaling) with ``--members`` members:

    block_err   mean |block mean of a member - coarse value| / mean coarse value
    crps        CRPS (mm h-1), all pixels, :func:`xstochsr.metrics.crps`
    wet_outl    outlier proportion on wet pixels (truth or a member >= 0.1 mm h-1)
    wet_ks      rank-histogram KS on the same wet pixels
    lag1        member lag-1 (5 min) autocorrelation of frames, mean over members,
    lag1_truth  and the truth's, over the same cases

Usage (two runs at a time, one thread each; logs and results in ``runs/ablation``)::

    python scripts/make_rain_sequences.py --out runs/rain_sequences.nc
    python scripts/ablate_objective.py run wgan --data runs/rain_sequences.nc --budget 150
    nohup python scripts/ablate_objective.py all --budget 150 &   # all six, two at a time
    python scripts/ablate_objective.py table          # markdown table of all results

This is a small-budget comparison on simulated data, not the definitive ablation (that
needs the fixed train/validation/test split on real data, and far longer runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "wgan": dict(objective="wgan-gp"),
    "wgan+crps": dict(objective={"wgan-gp": 1.0, "crps": 1.0}),
    "crps": dict(objective="crps"),
    "wgan-c": dict(objective="wgan-gp", constraint="multiplicative"),
    "wgan+crps-c": dict(objective={"wgan-gp": 1.0, "crps": 1.0}, constraint="multiplicative"),
    "crps-c": dict(objective="crps", constraint="multiplicative"),
}
HELD_OUT = 112


def train(name: str, data: Path, budget: float, seed: int, out: Path,
          train_sequences: int = 112, settings: dict | None = None) -> dict:
    """Train variant ``name`` for ``budget`` CPU seconds; save it; return the record.

    ``train_sequences``: the first that many sequences train; ``settings``: TrainConfig
    overrides shared by every variant (on top of the cpu preset).
    """
    import torch
    import xarray as xr

    from xstochsr.training.loop import Trainer

    torch.set_num_threads(1)
    ds = xr.open_dataset(data).isel(sequence=slice(0, min(train_sequences, HELD_OUT)))
    kw = dict(settings or {}, **VARIANTS[name], val_every=0, checkpoint_every=0,
              progress=False, num_threads=1)
    tr = Trainer(ds, "rain_rate", 8, preset="cpu", steps=10**7, seed=seed,
                 checkpoint_dir=out / name / "checkpoints", overrides=kw)
    c0, w0 = time.process_time(), time.perf_counter()
    losses = []
    print(f"{name}: data ready, training for {budget:.0f} CPU s", flush=True)
    while time.process_time() - c0 < budget:
        logs = tr.train_step()
        losses.append(logs["loss_generator"])
        if tr.step % 10 == 0:
            print(f"{name}: step {tr.step}, cpu {time.process_time() - c0:.0f} s, "
                  f"loss_generator {np.mean(losses[-20:]):.4g}", flush=True)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    tr.cfg = tr.cfg.replace(steps=tr.step)
    model = tr.run()  # nothing left to train: writes the checkpoint, builds the model
    model.card.name = f"ablation-{name}"
    model.save(out / name / "model")
    return {"variant": name, "settings": kw, "train_sequences": int(ds.sizes["sequence"]),
            "steps": tr.step, "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),
            "seed": seed}


def lag1(x: np.ndarray) -> float:
    """Mean over sequences of the lag-1 correlation of frames: x (..., T, Y, X)."""
    a = x[..., :-1, :, :].reshape(-1, np.prod(x.shape[-2:]))
    b = x[..., 1:, :, :].reshape(-1, np.prod(x.shape[-2:]))
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    ok = den > 0
    return float(np.mean((a * b).sum(1)[ok] / den[ok]))


def evaluate(model_path: Path, data: Path, frames: int, sequences: int, members: int,
             seed: int, held_out: int = HELD_OUT) -> dict:
    """Scores of the raw network on held-out simulated sequences (see the docstring)."""
    import torch
    import xarray as xr

    import xstochsr
    from xstochsr.grid import coarsen_field, match_grid
    from xstochsr.metrics import crps, rank_histogram

    torch.set_num_threads(1)
    model = xstochsr.load_model(model_path)
    da = xr.open_dataset(data)["rain_rate"].isel(
        sequence=slice(held_out, held_out + sequences), time=slice(0, frames)).load()
    rows = {"block_err": [], "crps": [], "lag1": [], "lag1_truth": []}
    ens_all, obs_all = [], []
    for k in range(da.sizes["sequence"]):
        truth = da.isel(sequence=k, drop=True)
        coarse = coarsen_field(truth, 8)
        ens = xstochsr.downscale(coarse, factor=8, members=members, model=model,
                                 seed=seed + k, conserve=False, progress=False)
        truth = match_grid(truth, ens)
        e = ens.transpose("realization", "time", ...).values
        blocks = e.reshape(members, e.shape[1], coarse.shape[-2], 8, coarse.shape[-1], 8)
        c = coarse.transpose("time", ...).values
        rows["block_err"].append(float(np.abs(blocks.mean(axis=(3, 5)) - c).mean()
                                       / max(float(c.mean()), 1e-9)))
        rows["crps"].append(float(crps(ens, truth).mean()))
        rows["lag1"].append(float(np.mean([lag1(m) for m in e])))
        rows["lag1_truth"].append(lag1(truth.transpose("time", ...).values))
        ens_all.append(ens.expand_dims(sequence=[k]))
        obs_all.append(truth.expand_dims(sequence=[k]))
    ens = xr.concat(ens_all, "sequence")
    obs = xr.concat(obs_all, "sequence")
    rh = rank_histogram(ens, obs, threshold=0.1, threshold_on="any")
    out = {k: float(np.mean(v)) for k, v in rows.items()}
    out["wet_outl"] = float(rh.attrs["outlier_proportion"])
    out["wet_ks"] = float(np.asarray(rh.attrs["ks"]).mean())
    out.update(frames=frames, sequences=int(da.sizes["sequence"]), members=members)
    return out


COLUMNS = ("steps", "cpu_seconds", "block_err", "crps", "wet_outl", "wet_ks", "lag1",
           "lag1_truth")


def table(out: Path) -> str:
    """Markdown table of every ``out/*/result.json``."""
    lines = ["| variant | " + " | ".join(COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name in VARIANTS:
        f = out / name / "result.json"
        if not f.is_file():
            lines.append(f"| {name} | " + " | ".join("not run" for _ in COLUMNS) + " |")
            continue
        r = json.loads(f.read_text())
        cells = []
        for c in COLUMNS:
            v = r.get(c, r.get("scores", {}).get(c))
            cells.append("-" if v is None else "n/a" if v != v  # NaN: members all dry
                         else f"{v:.0f}" if c in ("steps", "cpu_seconds") else f"{v:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_all(args) -> int:
    """Run every variant in its own process, two at a time, one thread each."""
    import os
    import subprocess

    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running, failed = list(VARIANTS), [], []
    common = ["--data", str(args.data), "--out", str(args.out), "--budget", str(args.budget),
              "--train-sequences", str(args.train_sequences),
              *[x for kv in args.overrides for x in ("--set", kv)],
              "--seed", str(args.seed), "--frames", str(args.frames), "--sequences",
              str(args.sequences), "--members", str(args.members), "--held-out",
              str(args.held_out)]
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            log = open(args.out / f"{name}.log", "w")
            proc = subprocess.Popen([sys.executable, __file__, "run", name, *common],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((name, proc, log))
            print(f"started {name} (pid {proc.pid})", flush=True)
        time.sleep(5)
        for item in list(running):
            name, proc, log = item
            if proc.poll() is not None:
                log.close()
                running.remove(item)
                print(f"finished {name}: exit {proc.returncode}", flush=True)
                if proc.returncode:
                    failed.append(name)
    print(table(args.out))
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["run", "all", "table"])
    p.add_argument("variant", nargs="?", choices=list(VARIANTS))
    p.add_argument("--data", type=Path, default=Path("runs/rain_sequences.nc"))
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--budget", type=float, default=150.0, help="CPU seconds of training")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--held-out", type=int, default=HELD_OUT, help="first held-out sequence")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time (all)")
    p.add_argument("--train-sequences", type=int, default=112,
                   help="train on the first N sequences (at most 112)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="TrainConfig override for every variant (JSON)")
    args = p.parse_args(argv)
    if args.command == "table":
        print(table(args.out))
        return 0
    if args.command == "all":
        return run_all(args)
    if args.variant is None:
        p.error("run needs a variant: " + ", ".join(VARIANTS))
    settings = {}
    for item in args.overrides:
        k, v = item.split("=", 1)
        try:
            settings[k] = json.loads(v)
        except json.JSONDecodeError:
            settings[k] = v
    rec = train(args.variant, args.data, args.budget, args.seed, args.out,
                args.train_sequences, settings)
    c0 = time.process_time()
    rec["scores"] = evaluate(args.out / args.variant / "model.safetensors", args.data,
                             args.frames, args.sequences, args.members, args.seed + 1,
                             args.held_out)
    rec["eval_cpu_seconds"] = round(time.process_time() - c0, 1)
    (args.out / args.variant / "result.json").write_text(json.dumps(rec, indent=2))
    print(json.dumps(rec, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
