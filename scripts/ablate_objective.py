"""Ablation of the training objective at equal CPU time (issue 10).

Generators, each trained for the same budget of *process CPU seconds* on one thread
(fair on a machine whose cores are shared: wall time is not), on the simulated rain of
``scripts/make_rain_sequences.py`` (the first ``--train-sequences`` of sequences 0-111,
the training sequences of the fixed split; cpu preset plus ``--set``):

    wgan           objective "wgan-gp" (the paper)
    wgan+crps      {"wgan-gp": 1, "crps": 1}
    crps           "crps" alone (no critic)
    ...-c          the same with constraint="multiplicative" (hard conservation layer)
    ...-fine       noise also injected at every upsampling scale (gen_fine_noise=1)
    ...-adaptive   the adversarial weight rescaled to keep the CRPS term's share of the
                   gradient (term_balance="adaptive")
    ...-prior      the constraint layer's logits start from a smooth interpolation of the
                   coarse field (constraint_prior="bilinear")
    ...-dry        cells below 0.1 mm h-1 come out of the constraint layer exactly dry
                   (constraint_dry=0.1)
    crps+grad...   + the fair CRPS of neighbour differences (term "crps-grad", weight 1,
                   or 4, 8, 16 for grad4, grad8, grad16), which a jump at a block edge
                   pays for
    ...-memR       the fine noise an AR(1) in time with lag-1 correlation R
                   (gen_fine_noise_memory=R) instead of fresh every frame
    ...-smooth     the constraint layer meets the block means with a smooth positive
                   field instead of a per-block softmax (constraint_prior="smooth")

and scored on the split's *validation* sequences 112-127 (first ``--frames`` frames of the
first ``--sequences``), coarsened by 8 and downscaled by the *raw* network
(``conserve=False``; no post-hoc rescaling) with ``--members`` members, with
:func:`xstochsr.metrics.verify` (the function users call): CRPS, wet-pixel (truth or a
member >= 0.1 mm h-1) rank KS and outlier proportion, member and truth lag-1 (5 min)
autocorrelation, log spectral distance, block-edge ratio of members and truth; plus
the block-mean error, mean |block mean of a member - coarse value| / mean coarse value.
``baselines`` scores bilinear interpolation and RainFARM on the same cases.

Runs resume: ``run``/``all`` with a larger ``--budget`` continue each variant from its
checkpoint (kept every ``--checkpoint-cpu`` CPU seconds with the CPU time spent), so the
budget can grow across sessions; every budget reached keeps its scores in
``<out>/<variant>/results/cpu-<seconds>.json``.

Usage (two runs at a time, one thread each; logs and results in ``runs/ablation``)::

    python scripts/make_rain_sequences.py --out runs/rain_sequences.nc
    python scripts/ablate_objective.py run wgan --data runs/rain_sequences.nc --budget 150
    nohup python scripts/ablate_objective.py all --budget 1200 &   # all, two at a time
    python scripts/ablate_objective.py baselines      # bilinear and RainFARM, same cases
    python scripts/ablate_objective.py table          # markdown table of all results
    python scripts/ablate_objective.py layer-check    # the layer's block edges, untrained
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
    # issue 10's further levers, on the best objectives with the constraint
    "crps-c-fine": dict(objective="crps", constraint="multiplicative", gen_fine_noise=1),
    "wgan+crps-c-adaptive": dict(objective={"wgan-gp": 1.0, "crps": 1.0},
                                 constraint="multiplicative", term_balance="adaptive"),
    "crps-c-dry": dict(objective="crps", constraint="multiplicative", constraint_dry=0.1),
    "crps-c-prior": dict(objective="crps", constraint="multiplicative",
                         constraint_prior="bilinear"),
    "wgan+crps-c-fine-adaptive": dict(objective={"wgan-gp": 1.0, "crps": 1.0},
                                      constraint="multiplicative", term_balance="adaptive",
                                      gen_fine_noise=1),
    # the dry threshold (the lever that mattered at 600 CPU s) with each of the others
    "crps-c-dry-fine": dict(objective="crps", constraint="multiplicative",
                            constraint_dry=0.1, gen_fine_noise=1),
    "crps-c-dry-prior": dict(objective="crps", constraint="multiplicative",
                             constraint_dry=0.1, constraint_prior="bilinear"),
    "wgan+crps-c-dry": dict(objective={"wgan-gp": 1.0, "crps": 1.0},
                            constraint="multiplicative", constraint_dry=0.1),
    "wgan+crps-c-dry-adaptive": dict(objective={"wgan-gp": 1.0, "crps": 1.0},
                                     constraint="multiplicative", constraint_dry=0.1,
                                     term_balance="adaptive"),
    "wgan+crps-c-dry-fine-adaptive": dict(objective={"wgan-gp": 1.0, "crps": 1.0},
                                          constraint="multiplicative", constraint_dry=0.1,
                                          term_balance="adaptive", gen_fine_noise=1),
    # + the CRPS of neighbour differences (term "crps-grad"), against block-edge jumps
    "crps+grad-c-dry": dict(objective={"crps": 1.0, "crps-grad": 1.0},
                            constraint="multiplicative", constraint_dry=0.1),
    "crps+grad4-c-dry": dict(objective={"crps": 1.0, "crps-grad": 4.0},
                             constraint="multiplicative", constraint_dry=0.1),
    "crps+grad-c-dry-fine": dict(objective={"crps": 1.0, "crps-grad": 1.0},
                                 constraint="multiplicative", constraint_dry=0.1,
                                 gen_fine_noise=1),
    "crps+grad-c-dry-prior": dict(objective={"crps": 1.0, "crps-grad": 1.0},
                                  constraint="multiplicative", constraint_dry=0.1,
                                  constraint_prior="bilinear"),
    # heavier neighbour-difference terms, and fine noise that remembers the last frame
    **{f"crps+grad{w}-c-dry": dict(objective={"crps": 1.0, "crps-grad": float(w)},
                                   constraint="multiplicative", constraint_dry=0.1)
       for w in (8, 16)},
    "crps+grad4-c-dry-fine": dict(objective={"crps": 1.0, "crps-grad": 4.0},
                                  constraint="multiplicative", constraint_dry=0.1,
                                  gen_fine_noise=1),
    **{f"crps+grad4-c-dry-fine-mem{r}": dict(objective={"crps": 1.0, "crps-grad": 4.0},
                                             constraint="multiplicative", constraint_dry=0.1,
                                             gen_fine_noise=1, gen_fine_noise_memory=r)
       for r in (0.7, 0.9)},
    # the smooth multiplicative layer (no per-block softmax normalisation) on the
    # shipped rain-x8 recipe and on its control without fine noise
    "crps+grad4-c-dry-smooth": dict(objective={"crps": 1.0, "crps-grad": 4.0},
                                    constraint="multiplicative", constraint_dry=0.1,
                                    constraint_prior="smooth"),
    "crps+grad4-c-dry-fine-mem0.9-smooth": dict(
        objective={"crps": 1.0, "crps-grad": 4.0}, constraint="multiplicative",
        constraint_dry=0.1, gen_fine_noise=1, gen_fine_noise_memory=0.9,
        constraint_prior="smooth"),
}
HELD_OUT = 112


#: What a run's record keeps of its ``state.json``.
RECORD_KEYS = ("variant", "settings", "train_sequences", "steps", "cpu_seconds",
               "wall_seconds", "seed", "device", "device_name")


def record(state: dict) -> dict:
    """A run's record: what its ``state.json`` says of it (:data:`RECORD_KEYS`)."""
    return {k: state[k] for k in RECORD_KEYS if k in state}


def parse_settings(items) -> dict:
    """``--set KEY=VALUE`` items -> TrainConfig overrides (JSON values, else strings)."""
    settings = {}
    for item in items:
        k, v = item.split("=", 1)
        try:
            settings[k] = json.loads(v)
        except json.JSONDecodeError:
            settings[k] = v
    return settings


def _latest(ckpt_dir: Path) -> Path | None:
    return ckpt_dir if any(ckpt_dir.glob("ckpt-*.json")) else None


def train(name: str, data: Path, budget: float, seed: int, out: Path,
          train_sequences: int = 112, settings: dict | None = None,
          checkpoint_cpu: float = 600.0, device: str = "cpu",
          max_steps: int | None = None, max_wall: float | None = None, *,
          dataset=None, arm: dict | None = None, static=None,
          var: str = "rain_rate", predictors=None) -> dict:
    """Train variant ``name`` until it has used ``budget`` CPU seconds in all; save it.

    Resumable across sessions: the CPU seconds spent so far are kept in
    ``out/name/state.json`` beside the checkpoints (written every ``checkpoint_cpu`` CPU
    seconds and at the end), so ``run`` with a larger budget continues the same run
    (bit-identical to an uninterrupted one on CPU). ``train_sequences``: the first that
    many sequences train; ``settings``: TrainConfig overrides shared by every variant
    (on top of the cpu preset). On a GPU (``device="cuda"``) CPU seconds measure nothing
    useful: there the run stops at ``max_steps`` steps or ``max_wall`` wall seconds in
    all, whichever comes first (either alone is fine; ``budget`` is then ignored).
    ``dataset``, ``arm``, ``static``, ``var`` and ``predictors``: another script's
    training sequences, settings, static predictors, variable(s) and inputs-only
    predictors (``scripts/ablate_terrain.py``, ``scripts/ablate_physics.py``) instead of
    the rain file's first sequences and ``VARIANTS[name]``. Returns the record.
    """
    import torch
    import xarray as xr

    from xstochsr.training.loop import Trainer

    torch.set_num_threads(1)
    ds = dataset if dataset is not None else xr.open_dataset(data).isel(
        sequence=slice(0, min(train_sequences, HELD_OUT)))
    kw = dict(settings or {}, **(VARIANTS[name] if arm is None else arm), val_every=0,
              checkpoint_every=0, progress=False, num_threads=1)
    run_dir = out / name
    state_file = run_dir / "state.json"
    ckpt_dir = run_dir / "checkpoints"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    resume = _latest(ckpt_dir) if state else None
    spent, wall_before = float(state.get("cpu_seconds", 0.0)), float(state.get("wall_seconds", 0))
    if resume is not None and state.get("settings") not in (None, kw):
        raise SystemExit(f"{name}: {run_dir} was trained with other settings "
                         f"({state['settings']}); use another --out.")
    tr = Trainer(ds, var, 8, preset="cpu", steps=10**7, seed=seed, resume=resume,
                 checkpoint_dir=ckpt_dir, overrides=kw, device=device, static=static,
                 predictors=predictors)
    if max_steps is not None or max_wall is not None:
        budget = float("inf")
    max_steps = 10**9 if max_steps is None else max_steps
    max_wall = float("inf") if max_wall is None else max_wall
    tr._t_start = time.perf_counter()  # save_checkpoint reads it (run() sets it otherwise)
    c0, w0 = time.process_time(), time.perf_counter()
    last_ckpt = c0
    losses = []

    def save_state():
        tr.save_checkpoint()
        state.update(variant=name, settings=kw, steps=tr.step, seed=seed,
                     cpu_seconds=round(spent + time.process_time() - c0, 1),
                     wall_seconds=round(wall_before + time.perf_counter() - w0, 1),
                     train_sequences=int(ds.sizes["sequence"]), device=str(tr.device),
                     **({"device_name": torch.cuda.get_device_name(tr.device)}
                        if tr.device.type == "cuda" else {}))
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_file)

    print(f"{name}: {'resumed at step ' + str(tr.step) if resume else 'new run'}, "
          f"{spent:.0f} CPU s spent, training to {budget:.0f} CPU s, step {max_steps} "
          f"or {max_wall:.0f} wall s on {tr.device}", flush=True)
    while (spent + time.process_time() - c0 < budget and tr.step < max_steps
           and wall_before + time.perf_counter() - w0 < max_wall):
        logs = tr.train_step()
        losses.append(logs["loss_generator"])
        if tr.step % (10 if tr.device.type == "cpu" else 200) == 0:
            print(f"{name}: step {tr.step}, cpu {spent + time.process_time() - c0:.0f} s, "
                  f"wall {wall_before + time.perf_counter() - w0:.0f} s, "
                  f"loss_generator {np.mean(losses[-20:]):.4g}", flush=True)
        if time.process_time() - last_ckpt > checkpoint_cpu:
            save_state()
            last_ckpt = time.process_time()
    save_state()
    tr.cfg = tr.cfg.replace(steps=tr.step)
    model = tr.run()  # nothing left to train: builds the model from the state
    model.card.name = f"ablation-{name}"
    model.save(run_dir / "model")
    return record(state)


def _cases(data: Path, held_out: int, sequences: int, frames: int):
    """Truth ``(sequence, time, y, x)`` of the scored held-out sequences and its coarse copy."""
    import xarray as xr

    from xstochsr.grid import coarsen_field

    da = xr.open_dataset(data)["rain_rate"].isel(
        sequence=slice(held_out, held_out + sequences), time=slice(0, frames)).load()
    return da, [coarsen_field(da.isel(sequence=k, drop=True), 8)
                for k in range(da.sizes["sequence"])]


def evaluate(model, data: Path, frames: int, sequences: int, members: int,
             seed: int, held_out: int = HELD_OUT, conserve=False,
             dry: float | None = None, drizzle: float | None = None) -> dict:
    """Scores of ``model`` (a path, a loaded model or a baseline name) on held-out sequences.

    Every score but the block-mean error comes from :func:`xstochsr.metrics.verify`,
    the function users call; the network is scored raw (``conserve=False``). ``dry``:
    apply the constraint layer's dry threshold after the fact
    (:func:`xstochsr.models.constraints.dry_out`, per 8 x 8 block), the ``dry-check``
    command's question: what would the layer's threshold change in a trained model?
    """
    import torch
    import xarray as xr

    import xstochsr
    from xstochsr.grid import match_grid
    from xstochsr.metrics import verify

    torch.set_num_threads(1)
    if isinstance(model, Path):
        model = xstochsr.load_model(model)
    truth, coarse = _cases(data, held_out, sequences, frames)
    ens_all, obs_all, block_err = [], [], []
    for k, c in enumerate(coarse):
        ens = xstochsr.downscale(c, factor=8, members=members, model=model,
                                 seed=seed + k, conserve=conserve, progress=False)
        if dry is not None:
            ens = ens.copy(data=_dry_out_blocks(ens.values, dry, 8))
        if drizzle is not None:
            ens = ens.copy(data=_concentrate_drizzle(ens.values, drizzle, 8))
        obs = match_grid(truth.isel(sequence=k, drop=True), ens)
        e = ens.transpose("realization", "time", ...).values
        blocks = e.reshape(members, e.shape[1], c.shape[-2], 8, c.shape[-1], 8)
        cv = c.transpose("time", ...).values
        block_err.append(float(np.abs(blocks.mean(axis=(3, 5)) - cv).mean()
                               / max(float(cv.mean()), 1e-9)))
        ens_all.append(ens.expand_dims(sequence=[k]))
        obs_all.append(obs.expand_dims(sequence=[k]))
    ens = xr.concat(ens_all, "sequence")
    obs = xr.concat(obs_all, "sequence")
    v = verify(ens, obs, factor=8, thresholds=[1.0, 10.0], wet_threshold=0.1, lags=[1])
    one = {k: float(v[k].values.ravel()[0]) for k in (
        "crps", "rank_outlier_proportion_wet", "rank_ks_wet", "log_spectral_distance",
        "block_edge_ratio_ens", "block_edge_ratio_obs", "lag_correlation_ens",
        "lag_correlation_obs", "spread_skill_ratio", "bias")}
    one["block_err"] = float(np.mean(block_err))
    one["calibrated_outlier"] = 2.0 / (members + 1)
    one.update(frames=frames, sequences=int(truth.sizes["sequence"]), members=members)
    return one


def layer_check(data: Path, frames: int, sequences: int, held_out: int = HELD_OUT) -> dict:
    """Block-edge ratio of the multiplicative layer's *untrained* start on held-out frames.

    The coarsened truth through the layer with zero logits (what a network that has
    learned nothing gives), for each prior, without and with the 0.1 mm h-1 dry
    threshold, beside the truth's own ratio: how many block squares the layer draws
    before training has to unlearn them.
    """
    import torch
    import xarray as xr

    from xstochsr.metrics import block_edge_ratio
    from xstochsr.models.constraints import multiplicative, smooth_rescale, smooth_weights

    truth, coarse = _cases(data, held_out, sequences, frames)

    def ratio(a):
        return float(block_edge_ratio(xr.DataArray(a, dims=("n", "y", "x")), factor=8,
                                      y_dim="y", x_dim="x"))

    x = torch.as_tensor(np.stack([c.transpose("time", ...).values for c in coarse])
                        .reshape(-1, 1, *coarse[0].shape[-2:]), dtype=torch.float32)
    z = torch.zeros((x.shape[0], 1, x.shape[-2] * 8, x.shape[-1] * 8))
    out = {"truth": ratio(truth.transpose("sequence", "time", ...).values
                          .reshape(-1, *truth.shape[-2:]))}
    for prior in (None, "bilinear", "smooth"):
        for dry in (None, 0.1):
            y = multiplicative(z, x, 8, prior=prior, dry=dry)[:, 0].numpy()
            out[f"{prior or 'none'}{'' if dry is None else '-dry'}"] = ratio(y)
    for taper in (0.0, 1.0, 2.0, 3.0):  # the smooth layer's taper towards dry blocks
        y = smooth_rescale(smooth_weights(z, x, 8), x, 8, taper=taper)[:, 0].numpy()
        out[f"smooth-taper{taper:g}"] = ratio(y)
    out.update(frames=frames, sequences=int(truth.sizes["sequence"]))
    return out


def _concentrate_drizzle(a: np.ndarray, threshold: float, f: int) -> np.ndarray:
    """Blocks of ``a (..., Y, X)`` whose every cell is below ``threshold`` but not all zero:
    keep their ``max(1, floor(sum / threshold))`` largest cells, scaled to keep the block's
    sum, the others dry (the ``drizzle-check`` question: are the light-rain squares at rain
    edges the layer leaving such blocks uniform?)."""
    *lead, ny, nx = a.shape
    b = np.ascontiguousarray(a, dtype=np.float64).reshape(*lead, ny // f, f, nx // f, f)
    b = np.moveaxis(b, -3, -2).reshape(*lead, ny // f, nx // f, f * f)
    total = b.sum(-1, keepdims=True)
    drizzle = (b.max(-1, keepdims=True) < threshold) & (total > 0)
    k = np.clip(np.floor(total / threshold), 1, f * f)
    rank = np.argsort(np.argsort(-b, axis=-1), axis=-1)  # 0 = largest cell
    keep = rank < k
    kept = (b * keep).sum(-1, keepdims=True)
    out = np.where(drizzle, b * keep * total / np.where(kept > 0, kept, 1.0), b)
    out = np.moveaxis(out.reshape(*lead, ny // f, nx // f, f, f), -2, -3)
    return out.reshape(*lead, ny, nx).astype(np.float32)


def _dry_out_blocks(a: np.ndarray, threshold: float, f: int) -> np.ndarray:
    """:func:`xstochsr.models.constraints.dry_out` on every ``f x f`` block of ``a (..., Y, X)``."""
    import torch

    from xstochsr.models.constraints import dry_out

    *lead, ny, nx = a.shape
    b = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(
        *lead, ny // f, f, nx // f, f).movedim(-3, -2)  # (..., Y/f, X/f, f, f)
    out = dry_out(b.reshape(*b.shape[:-2], f * f), threshold).reshape(b.shape)
    return out.movedim(-2, -3).reshape(*lead, ny, nx).numpy()


#: Table columns: (result key, header).
COLUMNS = (("steps", "steps"), ("cpu_seconds", "CPU s"), ("block_err", "block-mean error"),
           ("crps", "CRPS (mm h-1)"), ("rank_outlier_proportion_wet", "wet outlier prop."),
           ("rank_ks_wet", "wet rank KS"), ("lag_correlation_ens", "member lag-1"),
           ("lag_correlation_obs", "truth lag-1"), ("log_spectral_distance", "LSD (dB)"),
           ("block_edge_ratio_ens", "block-edge"), ("block_edge_ratio_obs", "truth block-edge"))
BASELINES = ("bilinear", "rainfarm")


def table(out: Path, names=None, columns=COLUMNS, label: str = "variant",
          optional=BASELINES) -> str:
    """Markdown table of every ``out/<name>/result.json``.

    ``names`` (default the variants) are listed, "not run" where they have no result;
    ``optional`` ones (default the baselines) only where they have one. ``columns``:
    (result key, header) pairs; ``label``: the first column's header.
    """
    names = list(VARIANTS if names is None else names)
    lines = [f"| {label} | " + " | ".join(h for _, h in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name in (*names, *optional):
        f = out / name / "result.json"
        if not f.is_file():
            if name in names:
                lines.append(f"| {name} | " + " | ".join("not run" for _ in columns) + " |")
            continue
        r = json.loads(f.read_text())
        cells = []
        for c, _ in columns:
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
    pending, running, failed = list(args.only or VARIANTS), [], []
    common = ["--data", str(args.data), "--out", str(args.out), "--budget", str(args.budget),
              "--checkpoint-cpu", str(args.checkpoint_cpu),
              "--train-sequences", str(args.train_sequences),
              *[x for kv in args.overrides for x in ("--set", kv)],
              "--seed", str(args.seed), "--frames", str(args.frames), "--sequences",
              str(args.sequences), "--members", str(args.members), "--held-out",
              str(args.held_out), "--device", args.device,
              *(["--steps", str(args.steps)] if args.steps is not None else []),
              *(["--wall", str(args.wall)] if args.wall is not None else []),
              *(["--no-eval"] if args.no_eval else [])]
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            log = open(args.out / f"{name}.log", "a")
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


def _write_result(run_dir: Path, rec: dict) -> None:
    """``result.json`` (latest) and ``results/cpu-<seconds>.json`` (one per budget reached)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rec, indent=2)
    (run_dir / "result.json").write_text(text)
    if "cpu_seconds" in rec:
        (run_dir / "results").mkdir(exist_ok=True)
        key = (f"cpu-{round(rec['cpu_seconds']):06d}" if rec.get("device", "cpu") == "cpu"
               else f"{rec['device'].split(':')[0]}-step-{rec['steps']:07d}")
        (run_dir / "results" / f"{key}.json").write_text(text)
    print(text, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["run", "all", "table", "baselines", "dry-check",
                                        "drizzle-check", "score", "layer-check"])
    p.add_argument("variant", nargs="?", choices=list(VARIANTS))
    p.add_argument("--data", type=Path, default=Path("runs/rain_sequences.nc"))
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--budget", type=float, default=150.0,
                   help="CPU seconds of training in all (a larger one continues a run)")
    p.add_argument("--checkpoint-cpu", type=float, default=600.0,
                   help="write a resumable checkpoint every this many CPU seconds")
    p.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    p.add_argument("--steps", type=int, default=None,
                   help="train to this step in all (instead of --budget; for GPUs)")
    p.add_argument("--wall", type=float, default=None,
                   help="train for at most this many wall seconds in all (instead of "
                        "--budget; for GPUs)")
    p.add_argument("--no-eval", action="store_true",
                   help="run: train and save only; score later with `score`")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--held-out", type=int, default=HELD_OUT, help="first held-out sequence")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time (all)")
    p.add_argument("--only", nargs="+", choices=list(VARIANTS), default=None,
                   help="with all: these variants only")
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
    if args.command == "layer-check":  # the constraint layer's untrained start
        rec = {"layer_check": layer_check(args.data, args.frames, args.sequences,
                                          args.held_out)}
        _write_result(args.out / "layer-check", rec)
        return 0
    if args.command == "baselines":
        for name in BASELINES:
            c0 = time.process_time()
            rec = {"variant": name, "scores": evaluate(
                name, args.data, args.frames, args.sequences, args.members, args.seed + 1,
                args.held_out, conserve=None)}
            rec["eval_cpu_seconds"] = round(time.process_time() - c0, 1)
            _write_result(args.out / name, rec)
        return 0
    if args.variant is None:
        p.error("run needs a variant: " + ", ".join(VARIANTS))
    if args.command == "drizzle-check":  # a trained variant, light-rain blocks concentrated
        rec = {"variant": args.variant, "post_hoc_drizzle_threshold": 0.1, "scores": evaluate(
            args.out / args.variant / "model.safetensors", args.data, args.frames,
            args.sequences, args.members, args.seed + 1, args.held_out, drizzle=0.1)}
        _write_result(args.out / f"{args.variant}+drizzle-post", rec)
        return 0
    if args.command == "dry-check":  # re-score a trained variant with a 0.1 mm/h dry threshold
        rec = {"variant": args.variant, "post_hoc_dry_threshold": 0.1, "scores": evaluate(
            args.out / args.variant / "model.safetensors", args.data, args.frames,
            args.sequences, args.members, args.seed + 1, args.held_out, dry=0.1)}
        _write_result(args.out / f"{args.variant}+dry-post", rec)
        return 0
    settings = parse_settings(args.overrides)
    if args.command == "score":  # a run trained elsewhere (a GPU) with --no-eval
        rec = record(json.loads((args.out / args.variant / "state.json").read_text()))
    else:
        rec = train(args.variant, args.data, args.budget, args.seed, args.out,
                    args.train_sequences, settings, args.checkpoint_cpu, args.device,
                    args.steps, args.wall)
        if args.no_eval:
            return 0
    c0 = time.process_time()
    rec["scores"] = evaluate(args.out / args.variant / "model.safetensors", args.data,
                             args.frames, args.sequences, args.members, args.seed + 1,
                             args.held_out)
    rec["eval_cpu_seconds"] = round(time.process_time() - c0, 1)
    _write_result(args.out / args.variant, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
