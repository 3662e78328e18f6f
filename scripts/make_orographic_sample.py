"""Ship one validation sequence of the terrain-shaped rain as a sample (issue 13).

A small case for the terrain-aware rain model, its card's reproducibility case and the
docs: the first ``--frames`` frames (10 min apart) of one *validation* sequence of
``scripts/make_orographic_sequences.py``'s file (by default the file's sequence 97, on
Tian Shan: a range no training sequence saw; never a test sequence), 256 x 256 cells of
3 km:

* ``rain_rate`` (time, y, x), mm h-1: the simulated rain (linear orographic theory of
  Smith & Barstad 2004 over the real terrain, times small-scale log-normal noise; see
  that script), the file's values (quantised to 0.01 mm h-1);
* ``surface_altitude`` (y, x), m: ETOPO5 relief on the grid, clipped at sea level;
* ``ua``, ``va`` (time, y, x), m s-1: the steering wind of each frame (uniform over the
  domain in the file), as fields on the grid, what a coarse wind analysis gives;
* ``crs``: the domain's Lambert azimuthal equal-area projection (CF grid mapping).

Output ``xstochsr/data/orographic_rain_tian_shan.nc``, registered with its sha256 and
provenance between ``# >>> orographic sample`` and ``# <<< orographic sample`` of
``data_registry.txt`` (copied byte for byte into the package).

    python scripts/make_orographic_sequences.py            # the file (~3 min)
    python scripts/make_orographic_sample.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
DATA = Path.home() / ".cache" / "xstochsr" / "training" / "orographic_sequences.nc"
OUT = ROOT / "xstochsr" / "data" / "orographic_rain_tian_shan.nc"
SEQUENCE = 97
FRAMES = 6
BEGIN = ("# >>> orographic sample (managed by scripts/make_orographic_sample.py; edit the "
         "script, not these lines)")
END = "# <<< orographic sample"
LICENSE = ("CC0-1.0 (simulated rain, xstochsr developers); terrain: ETOPO5, NOAA NGDC, "
           "US-government public domain")


def _latlon(crs, x: np.ndarray, y: np.ndarray) -> dict:
    """2-D latitude and longitude of the cell centres (CF auxiliary coordinates)."""
    from pyproj import Transformer

    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return {"lat": (("y", "x"), lat.astype("float32"), {
                "standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"}),
            "lon": (("y", "x"), lon.astype("float32"), {
                "standard_name": "longitude", "long_name": "longitude",
                "units": "degrees_east"})}


def build(data: Path, sequence: int, frames: int) -> xr.Dataset:
    """The sample Dataset of ``sequence`` (a validation sequence) of ``data``."""
    import pyproj

    src = xr.open_dataset(data)
    one = src.isel(sequence=sequence)
    if str(one["subset"].values) != "validation":
        raise SystemExit(f"sequence {sequence} is in subset {one['subset'].values!s}: the "
                         "sample must be a validation sequence (the test ranges are read "
                         "once, by scripts/evaluate_pretrained.py)")
    one = one.isel(time=slice(0, frames)).drop_vars("sequence").load()
    lat0, lon0 = float(one["origin_latitude"]), float(one["origin_longitude"])
    crs = pyproj.CRS.from_proj4(f"+proj=laea +lat_0={lat0} +lon_0={lon0} +x_0=0 +y_0=0 "
                                "+ellps=WGS84 +units=m")
    gm = {"grid_mapping_name": "lambert_azimuthal_equal_area",
          "latitude_of_projection_origin": lat0, "longitude_of_projection_origin": lon0,
          "false_easting": 0.0, "false_northing": 0.0, "crs_wkt": crs.to_wkt()}
    rng = str(one["range_name"].values)
    shape = one["rain_rate"].shape
    wind = {}
    for name, srcname in (("ua", "eastward_wind"), ("va", "northward_wind")):
        vals = np.broadcast_to(one[srcname].values[:, None, None], shape).astype("float32")
        wind[name] = (("time", "y", "x"), vals, {
            "standard_name": srcname, "units": "m s-1", "grid_mapping": "crs",
            "long_name": f"steering {srcname.replace('_', ' ')} "
                         f"(grid {'x' if name == 'ua' else 'y'})",
            "comment": "one wind per frame, uniform over the domain"})
    ds = xr.Dataset(
        {"rain_rate": (("time", "y", "x"), one["rain_rate"].values.astype("float32"),
                       {**one["rain_rate"].attrs, "grid_mapping": "crs"}),
         "surface_altitude": (("y", "x"), one["surface_altitude"].values.astype("float32"),
                              {**one["surface_altitude"].attrs, "grid_mapping": "crs"}),
         **wind,
         "crs": ((), np.int32(0), gm)},
        coords={"time": one["time"], "x": one["x"], "y": one["y"],
                "x_bounds": one["x_bounds"], "y_bounds": one["y_bounds"],
                **_latlon(crs, one["x"].values, one["y"].values)})
    ds["time"].attrs = {"standard_name": "time", "axis": "T"}
    ds.attrs = {
        "Conventions": "CF-1.10",
        "title": f"Terrain-shaped rain over {rng.replace('_', ' ').title()}, {frames} frames "
                 "10 min apart, 3 km cells",
        "source": "scripts/make_orographic_sequences.py (linear orographic precipitation, "
                  "Smith & Barstad 2004, PyPI orographic-precipitation, over ETOPO5 relief, "
                  "times small-scale log-normal noise)",
        "license": LICENSE,
        "provenance": (f"{data.name} (terrain_file_sha256 "
                       f"{str(src.attrs.get('terrain_file_sha256', '?'))[:12]}...), sequence "
                       f"{sequence} (validation subset, range {rng}), frames 0-{frames - 1}; "
                       "values unchanged; ua, va broadcast from the file's per-frame "
                       "eastward_wind, northward_wind"),
        "history": "made by scripts/make_orographic_sample.py",
        "references": "Smith, R. B. and Barstad, I. (2004), J. Atmos. Sci. 61, 1377-1391",
    }
    return ds


def register(path: Path, ds: xr.Dataset, root: Path = ROOT) -> str:
    """Rewrite the ``# >>> orographic sample`` block of the registry; copy it into the package."""
    from registry_blocks import register_file

    return register_file(path, BEGIN, END, [
        f"# {path.stem}: {ds.attrs['title']}; rain_rate (mm h-1), surface_altitude (m), "
        "steering wind ua, va (m s-1) on a Lambert azimuthal equal-area grid.",
        f"#   Simulated rain over real terrain. Licence: {LICENSE}.",
        f"#   Source: {ds.attrs['provenance']}. Made by scripts/make_orographic_sample.py."],
        root)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--sequence", type=int, default=SEQUENCE)
    p.add_argument("--frames", type=int, default=FRAMES)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--no-register", action="store_true")
    args = p.parse_args(argv)
    from registry_blocks import save_sample

    ds = build(args.data, args.sequence, args.frames)
    enc = {v: {"zlib": True, "complevel": 6} for v in ("rain_rate", "surface_altitude",
                                                        "ua", "va")}
    enc["time"] = {"units": "minutes since 2000-01-01 00:00:00", "dtype": "int32"}
    save_sample(ds, args.out, enc,
                None if args.no_register else lambda: register(args.out, ds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
