"""Write a small copy of the training sequences for a GPU machine (32 MB instead of 64).

A GPU lease takes the working tree and at most 64 MiB in all, so the rain sequences of
``scripts/make_rain_sequences.py`` travel as the training split only (sequences 0-111),
rain rate packed as int16 in steps of 0.01 mm h-1 (the source already keeps two decimals:
``least_significant_digit=2``; the packed copy differs from it by at most 0.005 mm h-1),
zlib level 9. xarray unpacks it on reading (CF ``scale_factor``); the engine ``h5netcdf``
reads it where the netCDF4 library is missing.

    python scripts/pack_rain_subset.py runs/data/rain_sequences.nc runs/gpu/rain_train.nc
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr

from xstochsr.io import write_netcdf

TRAIN = slice(0, 112)


def rain_encoding(rain: xr.DataArray) -> dict:
    """netCDF encoding of ``rain_rate``: int16 in 0.01 mm h-1, zlib 9, a chunk per sequence."""
    return {rain.name: dict(dtype="int16", scale_factor=0.01, _FillValue=-1, zlib=True,
                            complevel=9, shuffle=True, chunksizes=(1, *rain.shape[1:]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    ds = xr.open_dataset(args.source).isel(sequence=TRAIN)
    ds = ds.drop_vars([v for v in ("subset", "source_crop") if v in ds]).load()
    enc = rain_encoding(ds["rain_rate"])
    ds.attrs["history"] += (f"\n{Path(__file__).name}: sequences 0-111 of {args.source.name}, "
                            "rain_rate packed as int16 in 0.01 mm h-1")
    write_netcdf(ds, args.out, encoding=enc)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
