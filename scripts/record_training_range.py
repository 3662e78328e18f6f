"""Record a shipped model's training range in its card, without retraining.

The range is measured on the coarse input the model saw in training: the fine training
sequences block-averaged by the model's factor (``xstochsr.grid.coarsen_field``), in the
model's units (see :mod:`xstochsr.training_range`). The card JSON is rewritten by code
(``ModelCard.from_dict`` -> ``training_range`` -> ``to_json``) and its sha256 updated in
``data_registry.txt`` and the packaged ``xstochsr/data/registry.txt``.

Data, per model (the training scripts' own files and splits):

* ``rain-x8``: ``~/.cache/xstochsr/training/rain_sequences.nc`` sequences 0-111
  (regenerate with ``python scripts/make_rain_sequences.py``, ~3 min; it is seeded, so
  the file is the one the model was trained on).
* ``qg-wind-x8``: ``~/.cache/xstochsr/training/qg_wind_sequences.nc`` (needs pyqg; see
  ``scripts/make_qg_sequences.py``). Without it, ``--sample`` measures the shipped
  ``qg_wind_sample`` instead, an independent run of the same simulator, and the card's
  ``training_range.source`` says so.

    python scripts/record_training_range.py rain-x8 --data /tmp/rain_sequences.nc
    python scripts/record_training_range.py qg-wind-x8 --sample qg_wind_sample
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import xarray as xr

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "xstochsr" / "training"
#: model -> (training file, variable, sequences used in training)
TRAINING = {
    "rain-x8": (CACHE / "rain_sequences.nc", "rain_rate", slice(0, 112)),
    "qg-wind-x8": (CACHE / "qg_wind_sequences.nc", "eastward_wind", None),
}


def register(card_path: Path) -> None:
    """Put ``card_path``'s new sha256 into both registry files."""
    from xstochsr import datasets

    rel = f"xstochsr/data/{card_path.name}"
    line = f"{rel} sha256:{datasets.file_hash(card_path)}"
    reg = REPO / "data_registry.txt"
    lines = reg.read_text().splitlines()
    hits = [i for i, ln in enumerate(lines) if ln.startswith(f"{rel} ")]
    if len(hits) != 1:
        raise SystemExit(f"{rel} is registered {len(hits)} times in {reg}; expected once.")
    lines[hits[0]] = line
    reg.write_text("\n".join(lines) + "\n")
    (REPO / "xstochsr" / "data" / "registry.txt").write_text(reg.read_text())


def main(argv: list[str] | None = None) -> int:
    from xstochsr import datasets
    from xstochsr.models.base import ModelCard
    from xstochsr.training_range import measure

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(TRAINING), help="shipped model whose card to update")
    p.add_argument("--data", type=Path, default=None, help="training file (default: the cache)")
    p.add_argument("--sample", default=None,
                   help="measure this bundled sample instead of the training file (said so "
                        "in the card)")
    p.add_argument("--card", type=Path, default=None,
                   help="card to rewrite (default: xstochsr/data/<model>.json)")
    p.add_argument("--no-register", action="store_true", help="leave the registries alone")
    args = p.parse_args(argv)

    card_path = args.card or REPO / "xstochsr" / "data" / f"{args.model}.json"
    card = ModelCard.from_dict(json.loads(card_path.read_text()))
    path, var, seqs = TRAINING[args.model]
    if args.sample:
        ds = datasets.open_sample(args.sample)
        source = (f"bundled sample {args.sample!r} (an independent run of the training "
                  "simulator; the training file itself was not at hand), block means by "
                  f"{card.factor}")
    else:
        path = args.data or path
        if not path.is_file():
            raise SystemExit(f"{path} not found: regenerate it (see this script's docstring) "
                             "or pass --sample.")
        ds = xr.open_dataset(path)
        if seqs is not None and "sequence" in ds.dims:
            ds = ds.isel(sequence=seqs)
        used = f" sequences {seqs.start}-{seqs.stop - 1}" if seqs else ""
        seed = f", seed {ds.attrs['seed']}" if "seed" in ds.attrs else ""
        source = (f"{path.name}{used} ({ds.attrs.get('title', '')}; made by "
                  f"{str(ds.attrs.get('source', '')).split(':')[0] or 'its script'}{seed}), "
                  f"block means by {card.factor}")
    da = ds[var]
    if card.units:
        from xstochsr.units import to_units

        da = to_units(da, card.units)
    from xstochsr.grid import coarsen_field

    coarse = coarsen_field(da, card.factor)
    if "sequence" in coarse.dims and "time" in coarse.dims:
        coarse = coarse.isel(sequence=0) if coarse.sizes["sequence"] == 1 else coarse
    rng = measure(coarse, units=card.units, source=source)
    card.training_range = rng
    card_path.write_text(card.to_json())  # as ModelCard.save writes it
    print(f"{card.name}: training_range = {json.dumps(rng, indent=1)}")
    if not args.no_register and card_path.parent == REPO / "xstochsr" / "data":
        register(card_path)
        print(f"registered the new sha256 of {card_path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
