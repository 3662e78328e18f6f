"""What the pretrained-model training scripts share: train, fill in the card, save.

Used by scripts/train_rain_x8.py and scripts/train_qg_wind_x8.py; not part of the package.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch
import xarray as xr

import xstochsr

CITATION = ("Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9):7211-7223, "
            "doi:10.1109/TGRS.2020.3032790")


def train_and_save(ds: xr.Dataset, *, name: str, var: str, out: Path, steps: int, seed: int,
                   resume: Path | None, description: str, license: str,
                   card_training: dict, **train_kw) -> Path:
    """Train with the CPU preset at factor 8, write ``out/name.{safetensors,json}``.

    The card records the steps actually trained (fewer than ``steps`` after Ctrl-C), the
    training wall time summed over resumed runs (``xstochsr.train`` keeps it in the
    checkpoints) and the machine; returns the weights path.
    """
    t0 = time.time()
    model = xstochsr.train(
        ds, var=var, factor=8, preset="cpu", steps=steps, seed=seed,
        checkpoint_dir=out / "checkpoints", resume=resume, checkpoint_every=100, **train_kw,
    )
    wall = time.time() - t0
    model.card.name = name
    model.card.description = description
    model.card.training.update(
        **card_training, **({"resumed_from": str(resume)} if resume else {}),
        machine=f"{platform.machine()} {platform.processor()}".strip(),
        torch_threads=torch.get_num_threads())
    model.card.license = license
    from xstochsr.grid import coarsen_field  # the coarse input's range, for downscale's warning
    from xstochsr.training_range import measure
    model.card.training_range = measure(coarsen_field(ds[var], 8),
                                        source=f"{var}, block means by 8")
    model.card.citation = CITATION
    w, c = model.save(out / name)
    model.history.to_netcdf(out / "history.nc")
    done = model.card.training.get("steps", "?")
    state = "INTERRUPTED after" if model.card.training.get("interrupted") else "trained"
    print(f"{state} {done} of {steps} steps in {wall / 60:.1f} min -> {w}, {c}")
    return Path(w)
