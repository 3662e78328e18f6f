"""Score a trained generator on held-out data beside the baselines; ship it or not.

The recipe is chosen by the card's standard_name.

Precipitation (``lwe_precipitation_rate``, e.g. ``rain-x8``), held-out sets never used in
training:

* ``real``: the four real Meteosat MPE crops shipped as samples (256 x 256 at 3 km,
  coarsened by 8). Their pixels were never seen in training, but note that the
  simulator that made the training set fitted its spectra and intensity distribution
  to these same crops.
* ``sim``: simulated sequences 112-127 of the training file (excluded from training by
  scripts/train_rain_x8.py), first ``--frames`` frames each.

Gate (issue 6): CRPS below bilinear interpolation's and rank-histogram KS below
RainFARM's, on every held-out set.

Wind (``eastward_wind``, ``qg-wind-x8``): held-out set ``qg`` is the shipped sample
``qg_wind_sample``, an independent pyqg run from a seed the training set never used.
RainFARM is a precipitation method (it needs a non-negative field), so it cannot be
run on a signed velocity; the gate is CRPS and rank KS below bilinear's, and the
table says so.

Rows: ``model`` is the generator as ``downscale`` runs it by default (coarse means
conserved), ``model_raw`` the bare network (``conserve=False``); the gate is judged on
``model``. With ``--ship`` and a pass, the weights and card are copied into
``xstochsr/data/`` and registered in ``data_registry.txt`` (and its packaged copy) with
their sha256, in a block of their own.

    python scripts/evaluate_pretrained.py runs/rain-x8/rain-x8 --ship
    python scripts/evaluate_pretrained.py runs/qg-wind-x8/qg-wind-x8 --ship

Every card also records a small reproducibility case (``REPRODUCIBILITY``) that the tests
recompute from the shipped weights. To add or refresh only that entry of a shipped card:

    python scripts/evaluate_pretrained.py xstochsr/data/rain-x8 --reproducibility-only --ship
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

import xstochsr
from xstochsr import datasets
from xstochsr.demo import HEADLINE, score_table
from xstochsr.grid import coarsen_field, match_grid
from xstochsr.io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
REAL = ["meteosat_rain_rate", "meteosat_rain_rate_south_africa",
        "meteosat_rain_rate_atlantic_itcz", "meteosat_rain_rate_balkans"]
SIM = Path.home() / ".cache" / "xstochsr" / "training" / "rain_sequences.nc"
#: per standard_name: baselines run, the one whose rank KS the model must beat, the
#: fractions-skill-score threshold (units of the field) and the training script.
RECIPES = {
    "lwe_precipitation_rate": dict(baselines=("bilinear", "rainfarm"), ks_baseline="rainfarm",
                                   fss_threshold=1.0, script="scripts/train_rain_x8.py"),
    "eastward_wind": dict(baselines=("bilinear",), ks_baseline="bilinear",
                          fss_threshold=0.1, script="scripts/train_qg_wind_x8.py"),
}
#: per standard_name: a case small enough to recompute in a test (seconds), scored by the
#: same code as the held-out sets; tests/models/test_registry.py recomputes it from the
#: shipped weights and compares it with the card.
REPRODUCIBILITY = {
    "lwe_precipitation_rate": dict(sample="meteosat_rain_rate", variable="rain_rate",
                                   isel={"time": [0, 1], "y": [96, 160], "x": [96, 160]},
                                   members=4, seed=7),
    "eastward_wind": dict(sample="qg_wind_sample", variable="eastward_wind",
                          isel={"time": [0, 1], "y": [0, 64], "x": [0, 64]},
                          members=4, seed=7),
}


def _pool(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in HEADLINE}


def evaluate(model, cases: list[xr.DataArray], factor: int, members: int, seed: int,
             recipe: dict) -> dict:
    """Mean headline scores over ``cases`` (fine truths) for the model and baselines."""
    out: dict[str, list] = {}
    for i, truth in enumerate(cases):
        coarse = coarsen_field(truth, factor)
        runs = [("model", model, {}), ("model_raw", model, {"conserve": False}),
                *[(b, b, {}) for b in recipe["baselines"]]]
        for name, m, kw in runs:
            ens = xstochsr.downscale(coarse, factor=factor, members=members, model=m,
                                     seed=seed + i, progress=False, **kw)
            out.setdefault(name, []).append(
                score_table(ens, match_grid(truth, ens), coarse, factor, seed=seed + i,
                            threshold=recipe["fss_threshold"]))
    return {name: _pool(rows) for name, rows in out.items()}


def qg_cases() -> list[xr.DataArray]:
    return [datasets.open_sample("qg_wind_sample")["eastward_wind"].load()]


def real_cases() -> list[xr.DataArray]:
    return [datasets.open_sample(n)["rain_rate"] for n in REAL]


def sim_cases(frames: int, n_seq: int) -> list[xr.DataArray]:
    ds = xr.open_dataset(SIM)
    da = ds["rain_rate"].isel(sequence=slice(112, 112 + n_seq), time=slice(0, frames)).load()
    da.attrs.setdefault("units", "mm h-1")
    return [da.isel(sequence=k, drop=True) for k in range(da.sizes["sequence"])]


def reproducibility_case(model, recipe: dict, case: dict) -> dict:
    """Score ``model`` on the small recorded ``case`` (see ``REPRODUCIBILITY``).

    Returns the case (sample, variable, ``isel`` as [start, stop) slices, members, seed,
    fss_threshold) with the model's headline scores under ``model``, as ``downscale``
    runs it by default.
    """
    truth = datasets.open_sample(case["sample"])[case["variable"]]
    truth = truth.isel({d: slice(*ab) for d, ab in case["isel"].items() if d in truth.dims})
    coarse = coarsen_field(truth.load(), model.card.factor)
    ens = xstochsr.downscale(coarse, factor=model.card.factor, members=case["members"],
                             model=model, seed=case["seed"], progress=False)
    row = score_table(ens, match_grid(truth, ens), coarse, model.card.factor,
                      seed=case["seed"], threshold=recipe["fss_threshold"])
    return {**case, "fss_threshold": recipe["fss_threshold"], "model": row}


def _table(title: str, scores: dict) -> str:
    widths = [max(len(c), 8) + 2 for c in HEADLINE]
    head = f"{'method':<10}" + "".join(f"{c:>{w}}" for c, w in zip(HEADLINE, widths, strict=True))
    lines = [title, head]
    for name, row in scores.items():
        lines.append(f"{name:<10}" + "".join(f"{row[c]:>{w}.4f}"
                                             for c, w in zip(HEADLINE, widths, strict=True)))
    return "\n".join(lines)


def gate(scores: dict, ks_baseline: str = "rainfarm") -> tuple[bool, list[str]]:
    """Pass when CRPS < bilinear's and rank KS < ``ks_baseline``'s on every set."""
    why, k = [], ks_baseline
    for name, s in scores.items():
        if not s["model"]["crps"] < s["bilinear"]["crps"]:
            why.append(f"{name}: CRPS {s['model']['crps']:.4f} >= bilinear "
                       f"{s['bilinear']['crps']:.4f}")
        if not s["model"]["rank_ks"] < s[k]["rank_ks"]:
            why.append(f"{name}: rank KS {s['model']['rank_ks']:.4f} >= {k} "
                       f"{s[k]['rank_ks']:.4f}")
    return not why, why


def ship(path: Path, model_name: str, script: str) -> None:
    """Copy weights and card into the package and register them with their sha256."""
    data = REPO / "xstochsr" / "data"
    for suffix in (".safetensors", ".json"):
        src = path.with_suffix(suffix) if path.suffix else path.with_name(path.name + suffix)
        if src.resolve() != (data / f"{model_name}{suffix}").resolve():
            shutil.copyfile(src, data / f"{model_name}{suffix}")
    reg = REPO / "data_registry.txt"
    text = reg.read_text()
    begin, end = f"# >>> model {model_name}", f"# <<< model {model_name}"
    lines = [begin + " (managed by scripts/evaluate_pretrained.py --ship)",
             f"# {model_name}: pretrained generator trained with {script} "
             "(card: docs/models.md).", "#   Licence: MIT (weights)."]
    for suffix, what in ((".safetensors", "weights (safetensors)"),
                         (".json", "model card (JSON; held-out scores under 'scores')")):
        f = data / f"{model_name}{suffix}"
        lines += [f"#   {model_name} {what}",
                  f"xstochsr/data/{f.name} sha256:{datasets.file_hash(f)}"]
    block = "\n".join([*lines, end]) + "\n"
    if begin in text:
        pre, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = pre + block + (after[1:] if after.startswith("\n") else after)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic_write_bytes(reg, text.encode())
    shutil.copyfile(reg, data / "registry.txt")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--members", type=int, default=20)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ship", action="store_true")
    p.add_argument("--reproducibility-only", action="store_true",
                   help="recompute only the card's small reproducibility case and rewrite "
                        "that entry (and, with --ship, the registered hashes); no other score "
                        "changes")
    args = p.parse_args(argv)

    model = xstochsr.load_model(args.model)
    f = model.card.factor
    recipe = RECIPES[model.card.standard_name]
    card_path = args.model.with_name(args.model.name + ".json") if not args.model.suffix \
        else args.model.with_suffix(".json")
    repro = reproducibility_case(model, recipe, REPRODUCIBILITY[model.card.standard_name])
    print("reproducibility case:", json.dumps(repro["model"]))
    if args.reproducibility_only:
        card = json.loads(card_path.read_text())
        card.setdefault("scores", {})["reproducibility"] = repro
        atomic_write_bytes(card_path, json.dumps(card, indent=2, sort_keys=True).encode())
        if args.ship:
            ship(args.model, model.card.name, recipe["script"])
            print(f"re-registered {model.card.name} in xstochsr/data and data_registry.txt")
        return 0
    if model.card.standard_name == "eastward_wind":
        sets = {"qg": qg_cases()}
    else:
        sets = {"real": real_cases()}
        if SIM.exists():
            sets["sim"] = sim_cases(args.frames, args.sequences)
    scores = {name: evaluate(model, cases, f, args.members, args.seed, recipe)
              for name, cases in sets.items()}
    for name, s in scores.items():
        print(_table(f"held-out set {name!r} ({args.members} members):", s))
    ok, why = gate(scores, recipe["ks_baseline"])
    print("GATE:", "PASS" if ok else "FAIL", *why, sep="\n  ")
    card = json.loads(card_path.read_text())
    card["scores"] = {"members": args.members, "held_out": scores, "gate_passed": ok,
                      "gate_failures": why, "gate_ks_baseline": recipe["ks_baseline"],
                      "validation": card.get("scores", {}).get("validation"),
                      "reproducibility": repro,
                      "script": "scripts/evaluate_pretrained.py"}
    atomic_write_bytes(card_path, json.dumps(card, indent=2, sort_keys=True).encode())
    if args.ship and ok:
        ship(args.model, model.card.name, recipe["script"])
        print(f"shipped {model.card.name} into xstochsr/data and data_registry.txt")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
