"""Train the pretrained joint wind generator ``qg-uv-x8`` with ``xstochsr.train``.

Data: the atmosphere-regime quasi-geostrophic runs of ``scripts/make_qg_sequences.py
--regime atmosphere`` (pyqg two-layer model with midlatitude-atmosphere parameters:
Rossby radius 500 km, beta at 45.7 N, upper-layer mean wind 9 m s-1, an 8000 km doubly
periodic domain at 31.25 km, daily snapshots; eastward and northward wind of the upper
layer in m s-1). Three independent runs (different seeds), one per split:
``qg_atmos_train.nc`` (24 sequences x 12 days: all train), ``qg_atmos_val.nc`` (model
choice: ``scripts/ablate_physics.py``) and ``qg_atmos_test.nc`` (read once, for the
card: ``scripts/evaluate_pretrained.py --subset test``).

The settings are those of the ablation arm chosen on validation (``ARM``, see
docs/physics.md): the cpu preset, fair ensemble CRPS over pooled scales plus 4 x the
CRPS of neighbour differences, the additive constraint layer (block means of u and v
exact), and the arm's physics. The shipped weights are the ablation run itself, turned
into the model and card by resuming its checkpoint with nothing left to train::

    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --regime atmosphere
    python scripts/ablate_physics.py run <ARM> --budget 1500
    python scripts/train_qg_uv_x8.py --resume runs/physics/<ARM>/checkpoints
    python scripts/evaluate_pretrained.py runs/qg-uv-x8/qg-uv-x8 --subset test --ship

Without ``--resume`` the same settings train from scratch for ``SETTINGS["steps"]``
steps (the ablation stopped on a CPU-time budget, at that step).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ablate_physics as ap  # noqa: E402
from pretrain_common import train_and_save  # noqa: E402

DEFAULT_DATA = ap.TRAIN
#: The ablation arm chosen on validation (docs/physics.md) and the step it stopped at.
ARM = "joint-smooth+div10"
STEPS = 675

#: Every setting qg-uv-x8 was trained with: exactly the config its card records
#: (tests/training/test_pretrain_scripts.py compares them); the ablation's own.
SETTINGS = dict(preset="cpu", factor=8, steps=STEPS, seed=20261201, **ap.ARMS[ARM],
                val_every=0, checkpoint_every=0, progress=False, num_threads=1,
                channels_last=False)  # the layout it was trained in


#: The end of the card's description for each ablation arm (after "... coarse value").
DESCRIBE = {
    "joint": ".",
    "joint+physics": "; soft terms on block-mean vorticity and divergence and a divergence "
                     "penalty.",
    "streamfunction": "; the winds are centred differences of a generated streamfunction "
                      "(non-divergent before the constraint layer), with a soft term on "
                      "block-mean vorticity and divergence.",
    "joint-smooth": "; the layer spreads its correction of the block means as a smooth "
                    "bilinear field (no steps on block edges).",
    "streamfunction-smooth": "; the winds are centred differences of a generated "
                             "streamfunction, with a soft term on block-mean vorticity and "
                             "divergence, and the layer spreads its correction as a smooth "
                             "bilinear field.",
}
DESCRIBE.update({
    "joint+geopotential": DESCRIBE["joint"][:-1] + "; the coarse geopotential (f0 times the "
                          "streamfunction) is an extra input.",
    "joint-smooth+physics": DESCRIBE["joint-smooth"] + " Soft terms on block-mean vorticity "
                            "and divergence and a divergence penalty.",
    "joint-smooth+geopotential": DESCRIBE["joint-smooth"] + " The coarse geopotential (f0 "
                                 "times the streamfunction) is an extra input.",
    **{name: DESCRIBE[name.split("+div")[0]] + " A divergence penalty (weight "
             f"{ap.ARMS[name]['objective']['divergence']:g})."
       for name in ap.ARMS if "+div" in name},
})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=SETTINGS["steps"])
    p.add_argument("--seed", type=int, default=SETTINGS["seed"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("runs/qg-uv-x8"))
    p.add_argument("--resume", type=Path, default=None)
    args = p.parse_args(argv)

    ds = xr.open_dataset(args.data)[ap.VARS]
    predictors = ap.PREDICTORS.get(ARM)
    if predictors:  # the arm's inputs-only geopotential, derived from the winds
        ds = ap.geopotential(ds.load())
    train_and_save(
        ds, name="qg-uv-x8", var=ap.VARS, out=args.out, resume=args.resume,
        predictors=predictors,
        settings={**SETTINGS, "steps": args.steps, "seed": args.seed}, device=args.device,
        ablation="scripts/ablate_physics.py",
        description=(
            "Recurrent stochastic generator (Leinonen et al. 2021 architecture, CPU size) "
            "for eastward and northward wind jointly at factor 8, trained on pyqg two-layer "
            "quasi-geostrophic turbulence with midlatitude-atmosphere parameters (Rossby "
            "radius 500 km, beta at 45.7 N, 31.25 km fine and 250 km coarse cells, daily "
            "frames, winds of m/s), with the fair ensemble CRPS of the winds and of their "
            "neighbour differences and an additive constraint layer that keeps every 8 x 8 "
            "block mean of u and v equal to the coarse value"
            + DESCRIBE[ARM]),
        license="MIT (weights); training data simulated by xstochsr with pyqg (MIT)",
        card_training=dict(
            script="scripts/train_qg_uv_x8.py", data=str(args.data.name),
            data_description=ds.attrs.get("title", ""), sequences="all 24",
            held_out="qg_atmos_val.nc (model choice) and qg_atmos_test.nc (the card's "
                     "scores, read once): independent pyqg runs from other seeds"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
