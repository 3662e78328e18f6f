"""Train the pretrained precipitation generator ``rain-x8`` with ``xstochsr.train``.

Data: the simulated rain sequences of scripts/make_rain_sequences.py (pysteps noise
with spectra and intensities fitted to real Meteosat MPE crops; 128 sequences x 24
frames of 256 x 256 at 3 km, 5 min). Sequences 0-111 train (time-block validation
split inside), 112-127 are held out entirely for the model card's scores
(scripts/evaluate_pretrained.py), together with the real Meteosat crops.

    python scripts/make_rain_sequences.py            # ~2.5 min, writes ~/.cache/...
    python scripts/train_rain_x8.py --steps 1200     # CPU preset, 2 cores
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
import xarray as xr

import xstochsr

DEFAULT_DATA = Path.home() / ".cache" / "xstochsr" / "training" / "rain_sequences.nc"
TRAIN_SEQUENCES = slice(0, 112)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--out", type=Path, default=Path("runs/rain-x8"))
    p.add_argument("--resume", type=Path, default=None)
    args = p.parse_args(argv)

    ds = xr.open_dataset(args.data).isel(sequence=TRAIN_SEQUENCES)
    t0 = time.time()
    model = xstochsr.train(
        ds, var="rain_rate", factor=8, preset="cpu", steps=args.steps, seed=args.seed,
        checkpoint_dir=args.out / "checkpoints", resume=args.resume,
        val_every=300, val_sequences=8, val_members=8, checkpoint_every=100,
    )
    wall = time.time() - t0
    model.card.name = "rain-x8"
    model.card.description = (
        "Recurrent stochastic generator (Leinonen et al. 2021 architecture, CPU size) for "
        "precipitation rate at factor 8, trained on simulated rain sequences whose spectra "
        "and intensities were fitted to real Meteosat MPE rain-rate fields.")
    model.card.training.update(
        script="scripts/train_rain_x8.py", data=str(args.data.name),
        data_description=ds.attrs.get("title", ""), sequences="0-111 of 128",
        held_out="sequences 112-127 and the four real Meteosat MPE crops",
        wall_time_s=round(wall, 1), machine=f"{platform.machine()} {platform.processor()}",
        torch_threads=torch.get_num_threads())
    model.card.license = "MIT (weights); training data simulated by xstochsr"
    model.card.citation = ("Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9):7211-7223, "
                           "doi:10.1109/TGRS.2020.3032790")
    w, c = model.save(args.out / "rain-x8")
    model.history.to_netcdf(args.out / "history.nc")
    print(f"trained {args.steps} steps in {wall / 60:.1f} min -> {w}, {c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
