"""Ablation of static terrain predictors at equal training budgets (issue 13).

Three generators trained alike on the training ranges of the terrain-shaped rain of
``scripts/make_orographic_sequences.py`` (split ``scripts/splits/orographic.json``), cpu
preset plus ``--set``, with the objective and constraint chosen for rain in issue 10
(fair CRPS + 4 x CRPS of neighbour differences, multiplicative layer, 0.1 mm h-1 dry
threshold), differing only in what they see at fine resolution:

    blind              the coarse rain alone
    orography          + ``surface_altitude``
    orography+slopes   + the terrain's slopes along x and y (``terrain_slope_x``,
                       ``terrain_slope_y``, m/m, computed here from the altitude)

and the same three with the coarse steering wind as inputs-only predictors
(``blind+wind``, ``orography+wind``, ``orography+slopes+wind``): the file's eastward and
northward wind of each frame, as fields ``ua``, ``va`` on the rain's grid (m s-1) that
the generator sees block-averaged beside the coarse rain. Where rain falls on a slope
depends on which way the wind blows up it (the linear theory's source is the upslope
wind ``u . grad h``); static fields alone do not carry the wind, so the ``+wind`` arms
test whether terrain helps once the network can know it.

Scored on the *validation* ranges (first ``--frames`` frames of the first
``--sequences``), the raw network with ``--members`` members, by
:func:`xstochsr.metrics.verify` (CRPS, wet rank KS and outliers, LSD) and by the error of
the windward/lee contrast of rain (mean rain where the terrain rises along the wind over
mean rain where it falls; ``make_orographic_sequences.windward_lee_contrast``): members'
mean log contrast against the truth's.

Budgets and resumption as in ``scripts/ablate_objective.py`` (whose ``train`` this
uses): ``--budget`` CPU seconds, or ``--device cuda`` with ``--steps``/``--wall``;
``--no-eval`` then ``score``.

    python scripts/make_orographic_sequences.py              # ~/.cache/.../orographic_*.nc
    python scripts/ablate_terrain.py run orography --budget 600
    python scripts/ablate_terrain.py table
    python scripts/ablate_terrain.py coarse     # the contrast of the coarse field alone
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from xstochsr.static import SLOPES as DERIVED_SLOPES

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ablate_objective as ao  # noqa: E402
from make_orographic_sequences import windward_lee_contrast  # noqa: E402

DATA = Path.home() / ".cache" / "xstochsr" / "training" / "orographic_sequences.nc"
#: The slope predictors' names: those ``downscale`` derives from the altitude.
SLOPES = tuple(DERIVED_SLOPES)
ARMS = {"blind": None, "orography": ["surface_altitude"],
        "orography+slopes": ["surface_altitude", *SLOPES]}
#: The coarse steering wind, inputs-only predictors of the ``+wind`` arms.
WIND = ("ua", "va")
ARMS.update({f"{arm}+wind": static for arm, static in list(ARMS.items())})
#: Issue 10's choice for rain, shared by every arm.
OBJECTIVE = dict(objective={"crps": 1.0, "crps-grad": 4.0}, constraint="multiplicative",
                 constraint_dry=0.1)
COLUMNS = (("steps", "steps"), ("cpu_seconds", "CPU s"), ("crps", "CRPS (mm h-1)"),
           ("rank_ks_wet", "wet rank KS"), ("rank_outlier_proportion_wet", "wet outliers"),
           ("log_spectral_distance", "LSD (dB)"), ("contrast_log_error",
                                                   "windward/lee log-contrast error"),
           ("contrast_members", "contrast, members"), ("contrast_truth", "contrast, truth"))


def with_slopes(ds):
    """``ds`` with the terrain's slopes along x and y (m/m) beside ``surface_altitude``
    (:func:`xstochsr.static.terrain_slopes`: what ``downscale`` derives from the altitude
    for a model that needs them)."""
    from xstochsr.static import terrain_slopes

    for name, da in terrain_slopes(ds["surface_altitude"]).items():
        ds[name] = da
    return ds


def predictors_of(arm: str) -> list[str] | None:
    """The inputs-only predictors of ``arm``: the wind pair for ``+wind`` arms, else None."""
    return list(WIND) if arm.endswith("+wind") else None


def with_wind(ds):
    """``ds`` with its frames' steering wind as fields ``ua``, ``va`` on the rain's grid.

    ``eastward_wind`` and ``northward_wind`` (one value per frame) broadcast over y and
    x, float32, m s-1: what a coarse wind analysis beside the rain would give.
    """
    for name, src in zip(WIND, ("eastward_wind", "northward_wind"), strict=True):
        ds[name] = ds[src].broadcast_like(ds["rain_rate"]).transpose(
            *ds["rain_rate"].dims).astype("float32").assign_attrs(
            units="m s-1", standard_name=src, long_name=f"steering {src.replace('_', ' ')}")
    return ds


def coarse_input(case, predictors=None, factor: int = 8):
    """What a model is given for one case: the coarse rain, or with ``predictors`` a
    Dataset of the coarse rain and the coarse wind fields (:func:`with_wind`).

    ``case``: one sequence, dims ``(time, y, x)``, with ``rain_rate`` and the per-frame
    ``eastward_wind``, ``northward_wind``.
    """
    import xarray as xr

    from xstochsr.grid import coarsen_field

    coarse = coarsen_field(case["rain_rate"], factor)
    if not predictors:
        return coarse
    wind = with_wind(case[["rain_rate", "eastward_wind", "northward_wind"]])
    return xr.Dataset({"rain_rate": coarse,
                       **{n: coarsen_field(wind[n], factor) for n in predictors}})


def subset(ds, which: str):
    """The sequences of ``which`` (train, validation, test) in the file's ``subset``."""
    return ds.isel(sequence=np.flatnonzero(ds["subset"].values == which))


def evaluate(model, ds, static, frames: int, sequences: int, members: int,
             seed: int, predictors=None, which: str = "validation") -> dict:
    """Scores of ``model`` on the first ``sequences`` of subset ``which``.

    ``model``: a path, a loaded model, or a baseline's name (``"bilinear"``,
    ``"rainfarm"``). ``predictors``: the model's inputs-only predictors (``WIND``),
    block-averaged from :func:`with_wind` and given beside the coarse rain as a Dataset.
    The test ranges are read only by ``scripts/evaluate_pretrained.py``, once.
    """
    import torch
    import xarray as xr

    import xstochsr
    from xstochsr.grid import match_grid
    from xstochsr.metrics import verify

    torch.set_num_threads(1)
    if not isinstance(model, str) or model.endswith(".safetensors"):
        model = xstochsr.load_model(model)
    val = subset(ds, which).isel(time=slice(0, frames))
    val = val.isel(sequence=slice(0, sequences)).load()
    dx = float(abs(val["x"][1] - val["x"][0]))
    ens_all, obs_all, errs, c_ens, c_obs = [], [], [], [], []
    for k in range(val.sizes["sequence"]):
        one = val.isel(sequence=k, drop=True)
        st = one[static] if static else None
        ens = xstochsr.downscale(coarse_input(one, predictors), factor=8, members=members,
                                 model=model, seed=seed + k, progress=False, static=st)
        if predictors:
            ens = ens["rain_rate"]
        obs = match_grid(one["rain_rate"], ens)
        h = one["surface_altitude"].values
        u, v = one["eastward_wind"].values, one["northward_wind"].values
        truth_c = windward_lee_contrast(obs.transpose("time", ...).values, h, u, v, dx)
        member_c = [windward_lee_contrast(ens.isel(realization=m).transpose("time", ...)
                                          .values, h, u, v, dx) for m in range(members)]
        good = [c for c in member_c if np.isfinite(c) and c > 0]
        if np.isfinite(truth_c) and truth_c > 0 and good:
            errs.append(abs(float(np.mean(np.log(good))) - np.log(truth_c)))
            c_ens.append(float(np.exp(np.mean(np.log(good)))))
            c_obs.append(truth_c)
        ens_all.append(ens.expand_dims(sequence=[k]))
        obs_all.append(obs.expand_dims(sequence=[k]))
    v = verify(xr.concat(ens_all, "sequence"), xr.concat(obs_all, "sequence"), factor=8,
               thresholds=[1.0], wet_threshold=0.1, lags=[1])
    out = {k: float(v[k].values.ravel()[0]) for k in (
        "crps", "rank_ks_wet", "rank_outlier_proportion_wet", "log_spectral_distance")}
    out.update(contrast_log_error=float(np.mean(errs)) if errs else float("nan"),
               contrast_members=float(np.mean(c_ens)) if c_ens else float("nan"),
               contrast_truth=float(np.mean(c_obs)) if c_obs else float("nan"),
               frames=frames, sequences=int(val.sizes["sequence"]), members=members)
    return out


def coarse_contrast(ds, frames: int, sequences: int) -> dict:
    """Windward/lee contrast of the truth and of the coarse field held constant per block.

    The reference for the members' contrast: what a downscaler gets with no fine
    terrain information at all (the coarse rain repeated over its 8 x 8 fine cells), on
    the cases ``evaluate`` scores.
    """
    from xstochsr.grid import coarsen_field

    val = subset(ds, "validation").isel(time=slice(0, frames))
    val = val.isel(sequence=slice(0, sequences)).load()
    dx = float(abs(val["x"][1] - val["x"][0]))
    c_coarse, c_obs = [], []
    for k in range(val.sizes["sequence"]):
        one = val.isel(sequence=k, drop=True)
        rain = one["rain_rate"].transpose("time", "y", "x")
        block = coarsen_field(rain, 8).transpose("time", "y", "x").values
        block = np.repeat(np.repeat(block, 8, axis=-2), 8, axis=-1)
        h = one["surface_altitude"].transpose("y", "x").values
        u, v = one["eastward_wind"].values, one["northward_wind"].values
        t = windward_lee_contrast(rain.values, h, u, v, dx)
        c = windward_lee_contrast(block, h, u, v, dx)
        if np.isfinite(t) and t > 0 and np.isfinite(c) and c > 0:
            c_obs.append(t)
            c_coarse.append(c)
    return dict(contrast_coarse=float(np.mean(c_coarse)), contrast_truth=float(np.mean(c_obs)),
                contrast_log_error_coarse=float(np.mean(np.abs(np.log(c_coarse)
                                                               - np.log(c_obs)))))


def table(out: Path) -> str:
    """Markdown table of every ``out/<arm>/result.json`` (``ablate_objective.table``)."""
    return ao.table(out, names=ARMS, columns=COLUMNS, label="arm", optional=())


def main(argv=None) -> int:
    import xarray as xr

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["run", "score", "table", "coarse"])
    p.add_argument("arm", nargs="?", choices=list(ARMS))
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=Path("runs/terrain"))
    p.add_argument("--budget", type=float, default=600.0, help="CPU seconds in all")
    p.add_argument("--checkpoint-cpu", type=float, default=600.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--wall", type=float, default=None)
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="TrainConfig override for every arm (JSON)")
    args = p.parse_args(argv)
    if args.command == "table":
        print(table(args.out))
        return 0
    if args.command == "coarse":
        print(json.dumps(coarse_contrast(xr.open_dataset(args.data), args.frames,
                                         args.sequences), indent=2))
        return 0
    if args.arm is None:
        p.error("run and score need an arm: " + ", ".join(ARMS))
    settings = ao.parse_settings(args.overrides)
    ds = with_slopes(xr.open_dataset(args.data))
    static, predictors = ARMS[args.arm], predictors_of(args.arm)
    if args.command == "score":
        rec = ao.record(json.loads((args.out / args.arm / "state.json").read_text()))
    else:
        train = subset(ds, "train").drop_vars(["subset", "range_name"])
        if predictors:
            train = with_wind(train.load())
        rec = ao.train(args.arm, args.data, args.budget, args.seed, args.out,
                       settings=settings, checkpoint_cpu=args.checkpoint_cpu,
                       device=args.device, max_steps=args.steps, max_wall=args.wall,
                       dataset=train, arm=OBJECTIVE, static=static, predictors=predictors)
        if args.no_eval:
            return 0
    c0 = time.process_time()
    rec["static"], rec["predictors"] = static, predictors
    rec["scores"] = evaluate(args.out / args.arm / "model.safetensors", ds, static,
                             args.frames, args.sequences, args.members, args.seed + 1,
                             predictors=predictors)
    rec["eval_cpu_seconds"] = round(time.process_time() - c0, 1)
    ao._write_result(args.out / args.arm, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
