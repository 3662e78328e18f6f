"""Ship the 500 hPa winds of the January 1996 blizzard as a sample (issue 12's real case).

A real coarse wind analysis for the joint wind model ``qg-uv-x8``: the eastward and
northward wind at 500 hPa of NCL's blizzard example (``U500storm.cdf``, ``V500storm.cdf``
of Debian's ``libncarg-data``: 64 six-hourly analyses from 1996-01-05 00 UTC, 33 x 36
points at 1.25 deg latitude x 2.5 deg longitude, 20-60 N, 140-52.5 W, m s-1).

The files mask two triangles at the southern corners (224 of 1188 points, NaN in every
frame: the analysis is a conic cut-out), and ``V500storm.cdf`` has no analysis at all at
1996-01-14 00 UTC (frame 36: NaN everywhere). The sample keeps the largest block with no
NaN and a regular time axis: every latitude, longitudes 122.5-70 W (22 points), frames
0-35 (1996-01-05 00 UTC to 01-13 18 UTC, 36 analyses), which hold the storm over the
eastern United States (6-8 January). Values are the files' float32, unchanged.

Output ``xstochsr/data/blizzard_1996_500hpa.nc`` (``ua``, ``va`` with CF standard names,
units, ``time``, ``lat``/``lon`` with bounds, a scalar ``plev`` of 50000 Pa), registered
with its sha256 and provenance between ``# >>> blizzard`` and ``# <<< blizzard`` of
``data_registry.txt`` (copied byte for byte into the package).

    apt-get download libncarg-data                 # any Debian/Ubuntu mirror
    python scripts/make_blizzard_sample.py --deb libncarg-data_*.deb
    python scripts/make_blizzard_sample.py --cdf-dir /usr/share/ncarg/data/cdf  # installed
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
OUT = ROOT / "xstochsr" / "data" / "blizzard_1996_500hpa.nc"
BEGIN = ("# >>> blizzard (managed by scripts/make_blizzard_sample.py; edit the script, "
         "not these lines)")
END = "# <<< blizzard"
CDF = "usr/share/ncarg/data/cdf"
LICENSE = ("BSD-4-clause (c) 2013 University Corporation for Atmospheric Research: NCL "
           "example data, Debian package libncarg-data; see its copyright file")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wgs84_wkt() -> str:
    import pyproj

    return pyproj.CRS.from_epsg(4326).to_wkt()


def read_storm(cdf_dir: Path) -> tuple[xr.Dataset, dict]:
    """The two 500 hPa wind files as one CF Dataset (the NaN-free rectangle)."""
    u = xr.open_dataset(cdf_dir / "U500storm.cdf", decode_times=False)
    v = xr.open_dataset(cdf_dir / "V500storm.cdf", decode_times=False)
    ref = u["reftime"].values.item().decode().strip()  # "1996 01 05 00:00"
    t0 = np.datetime64(f"{ref[:4]}-{ref[5:7]}-{ref[8:10]}T{ref[11:16]}")
    if not (u["timestep"].values == v["timestep"].values).all():
        raise SystemExit("U500storm and V500storm have different time steps")
    both = np.isnan(u["u"].values) | np.isnan(v["v"].values)  # (time, lat, lon)
    frames = np.flatnonzero(both.all(axis=(1, 2)))  # analyses missing altogether
    nt = int(frames[0]) if frames.size else both.shape[0]  # the regular run before a gap
    nan = both[:nt].any(axis=0)
    cols = np.flatnonzero(~nan.any(axis=0))
    if nan[:, cols].any() or not (np.diff(cols) == 1).all():
        raise SystemExit("the NaN-free columns are not one block: the files changed")
    lat = u["lat"].values.astype("float64")
    lon = u["lon"].values.astype("float64")[cols]
    dlat, dlon = float(np.diff(lat).mean()), float(np.diff(lon).mean())
    time = t0 + u["timestep"].values[:nt].astype("timedelta64[h]")
    ds = xr.Dataset(
        {
            "ua": (("time", "lat", "lon"), u["u"].values[:nt, :, cols].astype("float32"),
                   {"standard_name": "eastward_wind", "long_name": "eastward wind at 500 hPa",
                    "units": "m s-1", "grid_mapping": "crs"}),
            "va": (("time", "lat", "lon"), v["v"].values[:nt, :, cols].astype("float32"),
                   {"standard_name": "northward_wind",
                    "long_name": "northward wind at 500 hPa", "units": "m s-1",
                    "grid_mapping": "crs"}),
            "crs": ((), np.int32(0), {
                "grid_mapping_name": "latitude_longitude", "crs_wkt": _wgs84_wkt(),
                "comment": "the files state no datum: WGS 84 assumed (immaterial at 1.25 deg)"}),
        },
        coords={
            "time": ("time", time.astype("datetime64[ns]"),
                     {"standard_name": "time", "axis": "T"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north",
                                 "axis": "Y", "bounds": "lat_bounds"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east",
                                 "axis": "X", "bounds": "lon_bounds"}),
            "lat_bounds": (("lat", "nv"), np.stack([lat - dlat / 2, lat + dlat / 2], 1)),
            "lon_bounds": (("lon", "nv"), np.stack([lon - dlon / 2, lon + dlon / 2], 1)),
            "plev": ((), 50000.0, {"standard_name": "air_pressure", "units": "Pa",
                                   "positive": "down", "axis": "Z"}),
        },
    )
    info = dict(reftime=ref, columns=(int(cols[0]), int(cols[-1])), frames=nt,
                missing_frames=[int(f) for f in frames],
                masked=int(nan.sum()), points=int(nan.size),
                u_sha=_sha(cdf_dir / "U500storm.cdf"), v_sha=_sha(cdf_dir / "V500storm.cdf"))
    ds.attrs = {
        "Conventions": "CF-1.10",
        "title": "500 hPa winds of the January 1996 North American blizzard, six-hourly",
        "source": "analyses distributed as NCL example data (U500storm.cdf, V500storm.cdf)",
        "license": LICENSE,
        "provenance": (
            f"Debian package libncarg-data, files {CDF}/U500storm.cdf (sha256 "
            f"{info['u_sha'][:12]}...) and V500storm.cdf (sha256 {info['v_sha'][:12]}...); "
            f"reference time {ref} UTC plus the files' 'timestep' (hours). Kept: the "
            f"NaN-free rectangle, longitude columns {cols[0]}-{cols[-1]} of 0-35 (the files "
            f"mask {info['masked']} of {info['points']} points at the southern corners); "
            f"frames 0-{nt - 1} of {both.shape[0]} (V500storm.cdf has no analysis at frame(s) "
            f"{info['missing_frames']}); values unchanged (float32)."),
        "history": "made by scripts/make_blizzard_sample.py",
        "references": "https://www.ncl.ucar.edu/Applications/ (NCL examples, 'storm' data)",
    }
    return ds, info


def register(path: Path, info: dict, root: Path = ROOT) -> str:
    """Rewrite the ``# >>> blizzard`` block of the registry; copy it into the package."""
    from registry_blocks import register_file

    return register_file(path, BEGIN, END, [
        "# blizzard_1996_500hpa: eastward and northward wind (m s-1) at 500 hPa of the January "
        f"1996 North American blizzard, {info['frames']} six-hourly analyses from 1996-01-05 "
        "00 UTC, "
        "33x22 points at 1.25 deg lat x 2.5 deg lon (20-60 N, 122.5-70 W).",
        f"#   Real (analysis) data. Licence: {LICENSE}.",
        f"#   Source: Debian libncarg-data, {CDF}/U500storm.cdf (sha256 {info['u_sha'][:12]}...) "
        f"and V500storm.cdf (sha256 {info['v_sha'][:12]}...); the NaN-free block. Made "
        "by scripts/make_blizzard_sample.py."], root)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--deb", type=Path, help="libncarg-data_*.deb (apt-get download)")
    src.add_argument("--cdf-dir", type=Path, help=f"a folder holding the files ({CDF})")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--no-register", action="store_true")
    args = p.parse_args(argv)
    from registry_blocks import save_sample

    with tempfile.TemporaryDirectory() as tmp:
        cdf_dir = args.cdf_dir
        if args.deb is not None:
            subprocess.run(["dpkg-deb", "-x", str(args.deb), tmp], check=True)
            cdf_dir = Path(tmp) / CDF
        ds, info = read_storm(cdf_dir)
    enc = {v: {"zlib": True, "complevel": 4} for v in ("ua", "va")}
    enc["time"] = {"units": "hours since 1996-01-05 00:00:00", "dtype": "int32"}
    save_sample(ds, args.out, enc,
                None if args.no_register else lambda: register(args.out, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
