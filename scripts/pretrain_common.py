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


def train_config(settings: dict):
    """The :class:`xstochsr.TrainConfig` a script's ``SETTINGS`` give (what its card records).

    ``SETTINGS`` holds ``preset``, ``factor``, ``steps`` and any TrainConfig overrides;
    ``seed`` (not a config field) is ignored here.
    """
    from xstochsr.training.config import from_preset

    kw = {k: v for k, v in settings.items() if k not in ("preset", "seed")}
    return from_preset(settings["preset"], **kw)


def card_mismatches(settings: dict, card: dict) -> dict:
    """``{setting: (script, card)}`` wherever a script's settings and a model card differ.

    Compares every config field the card records (older cards lack newer fields, which
    must then be at their defaults) and the seed.
    """
    ours = train_config(settings).to_dict()
    theirs = card["training"]["config"]
    diff = {k: (ours[k], theirs[k]) for k in theirs if k in ours and ours[k] != theirs[k]}
    diff.update({k: (ours[k], "(absent: default)") for k in ours
                 if k not in theirs and ours[k] != train_config(
                     {"preset": settings["preset"]}).to_dict()[k]})
    if settings.get("seed") != card["training"].get("seed"):
        diff["seed"] = (settings.get("seed"), card["training"].get("seed"))
    return diff


def _resumed_run(resume: Path | None,
                 ablation: str = "scripts/ablate_objective.py") -> dict:
    """What an ablation script (``ablation``) recorded of the run a checkpoint folder holds.

    A model chosen on validation among the ablation's arms is shipped by resuming its
    checkpoint with nothing left to train; its card then says where the steps ran.
    """
    if resume is None:
        return {}
    state = Path(resume).resolve()
    state = (state if state.is_dir() else state.parent).parent / "state.json"
    if not state.is_file():
        return {}
    import json

    s = json.loads(state.read_text())
    keep = ("variant", "steps", "wall_seconds", "device", "device_name", "train_sequences")
    return {"trained_by": f"{ablation} run " + str(s.get("variant")),
            **{f"trained_{k}": s[k] for k in keep if k in s and k != "variant"}}


def train_and_save(ds: xr.Dataset, *, name: str, var: str | list[str], out: Path,
                   settings: dict,
                   resume: Path | None, description: str, license: str,
                   card_training: dict, device: str = "cpu",
                   ablation: str = "scripts/ablate_objective.py", static=None,
                   predictors=None) -> Path:
    """Train with ``settings`` (a script's ``SETTINGS``), write ``out/name.{safetensors,json}``.

    Every training setting comes from ``settings`` so the card (which records the config
    ``xstochsr.train`` ran with) is exactly what the script uses; a test checks the
    shipped cards against the scripts. The card records the steps actually trained
    (fewer after Ctrl-C), the training wall time summed over resumed runs and the
    machine; returns the weights path. ``var``: one variable, or several for a joint
    model (its input range is measured over all of them). ``ablation``: the script
    whose run ``resume`` continues (named on the card). ``static`` and ``predictors``:
    ``xstochsr.train``'s static fine fields and inputs-only coarse predictors (the
    input range is measured over the outputs only).
    """
    t0 = time.time()
    kw = {k: v for k, v in settings.items() if k not in ("preset", "factor", "steps", "seed")}
    steps = settings["steps"]
    model = xstochsr.train(
        ds, var=var, factor=settings["factor"], preset=settings["preset"], steps=steps,
        seed=settings["seed"], checkpoint_dir=out / "checkpoints", resume=resume,
        device=device, static=static, predictors=predictors, **kw,
    )
    wall = time.time() - t0
    model.card.name = name
    model.card.description = description
    model.card.training.update(
        **card_training, **({"resumed_from": str(resume)} if resume else {}),
        **_resumed_run(resume, ablation), device=device,
        machine=(torch.cuda.get_device_name(0) if device.startswith("cuda")
                 else f"{platform.machine()} {platform.processor()}".strip()),
        torch_threads=torch.get_num_threads())
    model.card.license = license
    from xstochsr.grid import coarsen_field  # the coarse input's range, for downscale's warning
    from xstochsr.training_range import measure
    names = [var] if isinstance(var, str) else list(var)
    coarse = [coarsen_field(ds[v], 8) for v in names]
    model.card.training_range = measure(
        coarse[0] if len(coarse) == 1 else xr.concat(coarse, dim="variable"),
        source=f"{', '.join(names)}, block means by 8")
    model.card.citation = CITATION
    w, c = model.save(out / name)
    model.history.to_netcdf(out / "history.nc")
    done = model.card.training.get("steps", "?")
    state = "INTERRUPTED after" if model.card.training.get("interrupted") else "trained"
    print(f"{state} {done} of {steps} steps in {wall / 60:.1f} min -> {w}, {c}")
    return Path(w)
