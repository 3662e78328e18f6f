"""Train the pretrained wind generator ``qg-wind-x8`` with ``xstochsr.train``.

Data: the quasi-geostrophic sequences of scripts/make_qg_sequences.py (pyqg two-layer
model, standard parameters; upper-layer eastward velocity, 32 sequences x 24 frames of
256 x 256 at 3.9 km, 8 days apart; ~25 min to build in its own venv with pyqg). All 32
sequences train (time-block validation split inside); the held-out sample
``qg_wind_sample`` is a separate run from another seed, used by
scripts/evaluate_pretrained.py for the model card's scores.

    python scripts/make_qg_sequences.py              # see its docstring for the venv
    python scripts/train_qg_wind_x8.py               # CPU preset, 1000 steps (the card)

Validation (gates while developing) is another independent run, ``qg_wind_val.nc``
(``make_qg_sequences.py --seed 20240608 --n-sequences 4 --n-frames 8 --out ...``; see
``scripts/evaluate_pretrained.py``), the test the shipped sample.

The recipe is the one chosen on validation for the joint wind model ``qg-uv-x8``
(``scripts/ablate_physics.py``'s arm ``joint-smooth``, docs/physics.md) on one
component: the fair ensemble CRPS on scales 1, 4 and 16 plus 4 x the CRPS of neighbour
differences, no critic, and the additive constraint layer (block means exact, the
correction spread bilinearly). The weights shipped before (2026-11-26) were the paper's
WGAN-GP at 1800 steps, which put 64 % of the held-out truth outside its ensemble.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr
from pretrain_common import train_and_save

DEFAULT_DATA = Path.home() / ".cache" / "xstochsr" / "training" / "qg_wind_sequences.nc"

#: Every setting qg-wind-x8 was trained with: exactly the config its card records
#: (tests/training/test_pretrain_scripts.py compares them).
SETTINGS = dict(preset="cpu", factor=8, steps=1000, seed=20261201,
                objective={"crps": 1.0, "crps-grad": 4.0}, crps_scales=[1, 4, 16],
                constraint="additive", constraint_prior="bilinear",
                checkpoint_every=250, keep_checkpoints=1, val_every=0, num_threads=1,
                progress=False, channels_last=False)  # the layout it was trained in


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=SETTINGS["steps"])
    p.add_argument("--seed", type=int, default=SETTINGS["seed"])
    p.add_argument("--out", type=Path, default=Path("runs/qg-wind-x8"))
    p.add_argument("--resume", type=Path, default=None)
    args = p.parse_args(argv)

    ds = xr.open_dataset(args.data)[["eastward_wind"]]
    train_and_save(
        ds, name="qg-wind-x8", var="eastward_wind", out=args.out, resume=args.resume,
        settings={**SETTINGS, "steps": args.steps, "seed": args.seed},
        description=(
            "Recurrent stochastic generator (Leinonen et al. 2021 architecture, CPU size) for "
            "eastward velocity at factor 8, trained on pyqg two-layer quasi-geostrophic "
            "turbulence (standard, ocean-like parameters: velocities of a few cm/s) with the "
            "fair ensemble CRPS (scales 1, 4, 16) and of neighbour differences (no critic) "
            "and an additive constraint layer that keeps every 8 x 8 block mean equal to "
            "the coarse value."),
        license="MIT (weights); training data simulated by xstochsr with pyqg (MIT)",
        card_training=dict(
            script="scripts/train_qg_wind_x8.py", data=str(args.data.name),
            data_description=ds.attrs.get("title", ""), sequences="0-31 of 32",
            held_out="qg_wind_sample (an independent pyqg run from another seed)"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
