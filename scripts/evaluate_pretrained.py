"""Score a trained generator on held-out data beside bilinear and RainFARM; ship it or not.

Held-out sets (never used in training):

* ``real``: the four real Meteosat MPE crops shipped as samples (256 x 256 at 3 km,
  coarsened by 8). Their pixels were never seen in training, but note that the
  simulator that made the training set fitted its spectra and intensity distribution
  to these same crops.
* ``sim``: simulated sequences 112-127 of the training file (excluded from training by
  scripts/train_rain_x8.py), first ``--frames`` frames each.

The gate (issue 6): the model is shipped as pretrained only if, on every held-out set,
its CRPS is below bilinear interpolation's and its rank-histogram KS below RainFARM's.
With ``--ship`` and a pass, the weights and card are copied into ``xstochsr/data/`` and
registered in ``data_registry.txt`` (and its packaged copy) with their sha256.

    python scripts/evaluate_pretrained.py runs/rain-x8/rain-x8 --ship
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

REPO = Path(__file__).resolve().parents[1]
REAL = ["meteosat_rain_rate", "meteosat_rain_rate_south_africa",
        "meteosat_rain_rate_atlantic_itcz", "meteosat_rain_rate_balkans"]
SIM = Path.home() / ".cache" / "xstochsr" / "training" / "rain_sequences.nc"
BASELINES = ("bilinear", "rainfarm")


def _pool(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in HEADLINE}


def evaluate(model, cases: list[xr.DataArray], factor: int, members: int, seed: int) -> dict:
    """Mean headline scores over ``cases`` (fine truths) for the model and baselines."""
    out: dict[str, list] = {}
    for i, truth in enumerate(cases):
        coarse = coarsen_field(truth, factor)
        for name, m in [("model", model), *[(b, b) for b in BASELINES]]:
            ens = xstochsr.downscale(coarse, factor=factor, members=members, model=m,
                                     seed=seed + i, progress=False)
            out.setdefault(name, []).append(
                score_table(ens, match_grid(truth, ens), coarse, factor, seed=seed + i))
    return {name: _pool(rows) for name, rows in out.items()}


def real_cases() -> list[xr.DataArray]:
    return [datasets.open_sample(n)["rain_rate"] for n in REAL]


def sim_cases(frames: int, n_seq: int) -> list[xr.DataArray]:
    ds = xr.open_dataset(SIM)
    da = ds["rain_rate"].isel(sequence=slice(112, 112 + n_seq), time=slice(0, frames)).load()
    da.attrs.setdefault("units", "mm h-1")
    return [da.isel(sequence=k, drop=True) for k in range(da.sizes["sequence"])]


def _table(title: str, scores: dict) -> str:
    head = f"{'method':<10}" + "".join(f"{c:>12}" for c in HEADLINE)
    lines = [title, head]
    for name, row in scores.items():
        lines.append(f"{name:<10}" + "".join(f"{row[c]:>12.4f}" for c in HEADLINE))
    return "\n".join(lines)


def gate(scores: dict) -> tuple[bool, list[str]]:
    """Pass when CRPS < bilinear's and rank KS < RainFARM's on every set."""
    why = []
    for name, s in scores.items():
        if not s["model"]["crps"] < s["bilinear"]["crps"]:
            why.append(f"{name}: CRPS {s['model']['crps']:.4f} >= bilinear "
                       f"{s['bilinear']['crps']:.4f}")
        if not s["model"]["rank_ks"] < s["rainfarm"]["rank_ks"]:
            why.append(f"{name}: rank KS {s['model']['rank_ks']:.4f} >= RainFARM "
                       f"{s['rainfarm']['rank_ks']:.4f}")
    return not why, why


def ship(path: Path, model_name: str) -> None:
    """Copy weights and card into the package and register them with their sha256."""
    data = REPO / "xstochsr" / "data"
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(path.with_suffix(suffix) if path.suffix else
                        path.with_name(path.name + suffix), data / f"{model_name}{suffix}")
    reg = REPO / "data_registry.txt"
    text = reg.read_text()
    begin, end = "# >>> models", "# <<< models"
    lines = [begin,
             f"# {model_name}: pretrained generator trained with scripts/train_rain_x8.py "
             "(card: docs/models.md).", "#   Licence: MIT (weights)."]
    for suffix in (".safetensors", ".json"):
        f = data / f"{model_name}{suffix}"
        lines.append(f"xstochsr/data/{f.name} sha256:{datasets.file_hash(f)}")
    block = "\n".join([*lines, end]) + "\n"
    if begin in text:
        pre, rest = text.split(begin, 1)
        text = pre + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    reg.write_text(text)
    shutil.copyfile(reg, data / "registry.txt")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--members", type=int, default=20)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ship", action="store_true")
    args = p.parse_args(argv)

    model = xstochsr.load_model(args.model)
    f = model.card.factor
    scores = {"real": evaluate(model, real_cases(), f, args.members, args.seed)}
    if SIM.exists():
        scores["sim"] = evaluate(model, sim_cases(args.frames, args.sequences), f,
                                 args.members, args.seed)
    for name, s in scores.items():
        print(_table(f"held-out set {name!r} ({args.members} members):", s))
    ok, why = gate(scores)
    print("GATE:", "PASS" if ok else "FAIL", *why, sep="\n  ")
    card_path = args.model.with_name(args.model.name + ".json") if not args.model.suffix \
        else args.model.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["scores"] = {"members": args.members, "held_out": scores, "gate_passed": ok,
                      "gate_failures": why,
                      "script": "scripts/evaluate_pretrained.py"}
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True))
    if args.ship and ok:
        ship(args.model, model.card.name)
        print(f"shipped {model.card.name} into xstochsr/data and data_registry.txt")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
