"""Train the pretrained precipitation generator ``rain-x8`` with ``xstochsr.train``.

Data: the simulated rain sequences of scripts/make_rain_sequences.py (pysteps noise
with spectra and intensities fitted to real Meteosat MPE crops; 144 sequences x 24
frames of 256 x 256 at 3 km, 5 min). Sequences 0-111 train; 112-127 (validation: model
choice and gates) and 128-143 (test: read once, for the card) are held out, with the
split's real Meteosat crops (scripts/evaluate_pretrained.py).

Two stages. **base** (``SETTINGS``) is the ablation arm chosen on validation
(docs/training.md, "Ablation on a GPU", round 3): fair ensemble CRPS plus 4 x the CRPS of
neighbour differences, 4 members per input, the multiplicative constraint layer with a
0.1 mm h-1 dry threshold, one fine noise map per upsampling stage whose lag-1 correlation
between frames is 0.9 (``gen_fine_noise_memory``), no critic. 14750 steps take about 6
minutes on one H200 GPU alone (one CPU thread feeding it) and about 6 hours on one CPU
core. It was shipped as rain-x8 on 2026-11-30 (sha256 :data:`BASE_SHA256`): ``scripts/
ablate_objective.py run crps+grad4-c-dry-fine-mem0.9 --device cuda --wall 380`` beside
eight other runs on one H200 (step 4400), continued alone with ``--wall 635`` (same
settings, seed and data; it stopped at step 14750), turned into the model by resuming
its checkpoint with nothing left to train (``--resume runs/gpu4/resume/<arm>/checkpoints``).

**smooth** (``SMOOTH_SETTINGS``, the shipped weights since 2026-12-01) fine-tunes the base
network for 3000 steps under the smooth multiplicative layer (``constraint_prior=
"smooth"``: block means spread by a smooth field instead of a per-block softmax, whose
steps drew 8 x 8 squares), generator learning rate halved, on one CPU thread (about 48
min). It was run as 1000 steps, then resumed to 2000 and 3000 (resuming is exact); the
three were compared on validation (docs/training.md, "Fine-tuning rain-x8 under the
smooth layer") and 3000 chosen::

    python scripts/make_rain_sequences.py --out runs/data/rain_sequences.nc
    python scripts/pack_rain_subset.py runs/data/rain_sequences.nc runs/gpu/rain_train.nc
    python scripts/train_rain_x8.py --data runs/gpu/rain_train.nc --device cuda   # base
    git show 1d5c7e2:xstochsr/data/rain-x8.safetensors > base/rain-x8.safetensors
    git show 1d5c7e2:xstochsr/data/rain-x8.json > base/rain-x8.json  # or the base just built
    python scripts/train_rain_x8.py --stage smooth --init base/rain-x8 \
        --data runs/data/rain_sequences.nc                             # -> runs/rain-x8-smooth
    python scripts/train_rain_x8.py --objective mse  # the deterministic baseline
                                                     # (rain-det-x8, runs/rain-det-x8)

The deterministic baseline is the same generator without noise, trained with MSE on the
same data and seed (issue 5); it is compared in docs/benchmarks.md, not shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr
from pretrain_common import train_and_save

DEFAULT_DATA = Path.home() / ".cache" / "xstochsr" / "training" / "rain_sequences.nc"
TRAIN_SEQUENCES = slice(0, 112)

#: Every setting of the base stage (the card of the weights shipped on 2026-11-30); the
#: shipped card records :data:`SHIPPED` (tests/training/test_pretrain_scripts.py compares).
SETTINGS = dict(preset="cpu", factor=8, steps=14750, seed=20261130,
                batch_size=4, seq_len=4, ensemble_members=4,
                lr_generator=2e-4, lr_critic=2e-4, critic_steps=3,
                objective={"crps": 1.0, "crps-grad": 4.0},
                constraint="multiplicative", constraint_dry=0.1,
                gen_fine_noise=1, gen_fine_noise_memory=0.9,
                checkpoint_every=500, keep_checkpoints=1, val_every=0, num_threads=1,
                progress=False, channels_last=False)  # the layout it was trained in

#: The weights ``--stage smooth`` starts from: the base stage above, shipped as rain-x8
#: on 2026-11-30 (commit 1d5c7e2; ``git show 1d5c7e2:xstochsr/data/rain-x8.safetensors``
#: or a rebuild with ``--stage base`` gives them).
BASE_SHA256 = "692efc7bc162740488cc1a29530b0354b1b82ae28804fc3ffd4a68c8967dbbbe"

#: ``--stage smooth``: the base network fine-tuned under the smooth multiplicative layer
#: (``constraint_prior="smooth"``, no per-block softmax: block edges), everything else
#: as the base stage but the generator's learning rate, halved for a fine-tune.
SMOOTH_SETTINGS = dict(SETTINGS, steps=3000, seed=20261201, lr_generator=1e-4,
                       constraint_prior="smooth", keep_checkpoints=2)
#: What the shipped card records: the smooth stage, whose ``init`` is the base stage
#: (the card names it ``rain-x8`` and pins its sha256, :data:`BASE_SHA256`).
#: ``init=`` also takes the base network's transform and upsampling widths.
SHIPPED = dict(SMOOTH_SETTINGS, init="rain-x8", transform="log_rain",
               gen_upsample_widths=[48, 24, 12])


def _check_base(path: Path) -> None:
    from xstochsr.datasets import file_hash
    from xstochsr.models.gan import model_paths

    got = file_hash(model_paths(path)[0])
    if got != BASE_SHA256:
        raise SystemExit(
            f"--init {path} has weights sha256 {got[:12]}..., not the base stage's "
            f"{BASE_SHA256[:12]}...: give the base stage's weights (git show "
            "1d5c7e2:xstochsr/data/rain-x8.safetensors > base.safetensors, and its .json).")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=None, help="default: the stage's settings")
    p.add_argument("--seed", type=int, default=None, help="default: the stage's settings")
    p.add_argument("--objective", choices=["settings", "mse"], default="settings",
                   help="mse: the deterministic baseline instead of SETTINGS' objective")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--out", type=Path, default=None,
                   help="default runs/rain-x8, or runs/rain-det-x8 with --objective mse")
    p.add_argument("--resume", type=Path, default=None)
    p.add_argument("--stage", choices=["base", "smooth"], default="base",
                   help="base: SETTINGS from scratch; smooth: SMOOTH_SETTINGS from --init")
    p.add_argument("--init", type=Path, default=None,
                   help="--stage smooth: the base stage's weights (sha256 BASE_SHA256)")
    args = p.parse_args(argv)
    smooth = args.stage == "smooth"
    settings = SMOOTH_SETTINGS if smooth else SETTINGS
    if smooth and args.resume is None:
        if args.init is None:
            p.error("--stage smooth needs --init (the base stage's weights) or --resume")
        _check_base(args.init)
        settings = dict(settings, init=str(args.init))
    args.steps = settings["steps"] if args.steps is None else args.steps
    args.seed = settings["seed"] if args.seed is None else args.seed

    det = args.objective == "mse"
    name = "rain-det-x8" if det else "rain-x8"
    out = args.out or Path("runs") / (name + ("-smooth" if smooth else ""))
    ds = xr.open_dataset(args.data).isel(sequence=TRAIN_SEQUENCES)
    what = ("Deterministic recurrent generator (no noise, MSE loss; the paper's deterministic "
            "baseline)" if det else "Recurrent stochastic generator")
    train_and_save(
        ds, name=name, var="rain_rate", out=out, resume=args.resume,
        settings={**settings, "steps": args.steps, "seed": args.seed,
                  **({"objective": "mse", "constraint": None, "constraint_dry": None,
                      "gen_fine_noise": 0, "gen_fine_noise_memory": 0.0}
                     if det else {})},
        device=args.device,
        description=(
            f"{what} (Leinonen et al. 2021 architecture, CPU size) for "
            "precipitation rate at factor 8, trained on simulated rain sequences whose "
            "spectra and intensities were fitted to real Meteosat MPE rain-rate fields"
            + ("." if det else
               ", with the fair ensemble CRPS of the field and of its neighbour "
               "differences (no critic) and a constraint layer that keeps every 8 x 8 "
               "block mean equal to the coarse value (cells below 0.1 mm h-1 dry)"
               + (", then fine-tuned under the smooth multiplicative layer (block means "
                  "spread by a smooth field, not a per-block softmax: no block edges)."
                  if smooth else "."))),
        license="MIT (weights); training data simulated by xstochsr",
        card_training=dict(
            script="scripts/train_rain_x8.py", data=str(args.data.name),
            data_description=ds.attrs.get("title", ""), sequences="0-111 of 144",
            held_out="validation sequences 112-127, test sequences 128-143 and the "
                     "split's real Meteosat MPE crops (scripts/splits/rain.json)",
            **({"stage": "smooth: the base stage fine-tuned under the smooth layer"}
               if smooth else {})),  # train() records init_weights_sha256 itself
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
