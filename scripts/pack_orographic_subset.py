"""Write a small copy of the terrain-shaped rain's training ranges for a GPU machine.

The terrain ablation (``scripts/ablate_terrain.py``) trains on the *training* ranges of
``scripts/make_orographic_sequences.py`` (834 MB in memory, 224 MB on disk), more than a
GPU lease carries (64 MiB with everything else). This copy keeps, of the training subset
only (validation and test ranges stay home), the first ``--per-range`` sequences of each
of the 12 training ranges and their first ``--frames`` frames, with rain packed as int16
in steps of 0.01 mm h-1 (at most 0.005 mm h-1 from the source) and zlib level 9, exactly
as ``scripts/pack_rain_subset.py`` packs the rain of issue 10. Every other variable
(terrain, weather parameters, the ``subset`` and ``range_name`` labels) is kept as is.

    python scripts/pack_orographic_subset.py ~/.cache/xstochsr/training/orographic_sequences.nc \\
        runs/gpu/orographic_train.nc --per-range 2 --frames 12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr
from pack_rain_subset import rain_encoding

from xstochsr.io import write_netcdf


def pick(ds: xr.Dataset, per_range: int, frames: int) -> xr.Dataset:
    """The first ``per_range`` training sequences of every range, first ``frames`` frames."""
    train = np.flatnonzero(ds["subset"].values == "train")
    names = ds["range_name"].values[train]
    keep = [i for r in dict.fromkeys(names) for i in train[names == r][:per_range]]
    return ds.isel(sequence=keep, time=slice(0, frames))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--per-range", type=int, default=2)
    p.add_argument("--frames", type=int, default=12)
    args = p.parse_args(argv)
    ds = pick(xr.open_dataset(args.source), args.per_range, args.frames).load()
    ds.attrs["history"] += (
        f"\n{Path(__file__).name}: training ranges only, first {args.per_range} sequences per "
        f"range (sequences {', '.join(map(str, ds['sequence'].values))}), first "
        f"{args.frames} frames, rain_rate packed as int16 in 0.01 mm h-1")
    write_netcdf(ds, args.out, encoding=rain_encoding(ds["rain_rate"]))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, "
          f"{ds.sizes['sequence']} sequences x {ds.sizes['time']} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
