#!/usr/bin/env python
"""Build terrain-shaped rain sequences: linear orographic precipitation over real mountains.

The data of issue 13 ("a case where terrain must matter"): rain whose fine-scale pattern is
set by the ground under it, with the split made by *mountain range*, so that the test
ranges are terrain no training sequence ever saw.

What is REAL
    * the terrain: ETOPO5 (NOAA NGDC 1988, 5 arc-minute global relief, variable ``ROSE``),
      as shipped in Debian's ``ferret-datasets`` package (``etopo5.cdf``). It is not an
      xstochsr dependency and is never shipped with it: the script finds it (``--etopo``,
      ``$XSTOCHSR_ETOPO5``, ``~/.cache/xstochsr/terrain/etopo5.cdf``,
      ``/usr/share/ferret-vis/data/etopo5.cdf``), or fetches it at script time with
      ``--fetch-terrain`` (``apt-get download ferret-datasets`` + ``dpkg-deb -x``), and checks
      its sha256 against the manifest.
    * the ranges: one domain of ``size`` x ``size`` cells of 3 km (768 km square by default)
      per mountain range, centred on the lat/lon of ``scripts/splits/orographic.json``.

Grid (pyproj)
    Each domain is a Lambert azimuthal equal-area projection (WGS84) centred on its range,
    x east and y north from the centre, cell centres at (i + 0.5 - size / 2) * 3 km, row 0
    southernmost. The relief is interpolated from ETOPO5 at the cells' latitude/longitude
    with a cubic spline (``scipy.ndimage.map_coordinates``, order 3; ETOPO5's 9 km cells are
    finer than the 24 km coarse grid of a factor-8 model, coarser than the 3 km fine grid).
    ``surface_altitude`` is the relief clipped at 0 m (the sea surface);
    ``land_binary_mask`` is relief > 0.

What is SIMULATED (the physics is the PyPI package ``orographic-precipitation``)
    * Orographic rain: ``compute_orographic_precip`` (Smith & Barstad 2004, linear theory:
      upslope condensation, advection of cloud water and hydrometeors with conversion and
      fall-out delays, moist gravity-wave decay with height, Coriolis), every frame, on the
      domain plus a margin of ``margin`` cells of real terrain on every side (whose outer
      half is tapered to sea level with a cosine, since the package pads with zeros);
      only the inner ``size`` x ``size`` cells are written.
    * Weather per sequence, drawn from the subset's seed: wind speed 5-20 m/s and a
      from-direction uniform over the compass, each a smooth random walk in time
      (a damped random walk of the rate of change); background rain ``precip_base``
      0.1-2 mm/h; conversion and fall-out times 200-2000 s (slowly varying); moist
      stability 0.003-0.01 s-1; a surface temperature 0-20 degC that sets the uplift
      sensitivity cw (saturation vapour density times a lapse-rate ratio 0.8-1.1) and the
      water-vapour scale height hw = R_v T^2 / (L gamma).
    * Small-scale structure: a multiplicative log-normal field exp(s g - s^2 / 2), s 0.3-0.8,
      times an intermittency mask g > z (a dry fraction 0-0.4), where g is unit-variance
      Gaussian noise with the two-slope spectrum of real Meteosat rain (median of the
      pysteps fits to the training crops of split ``rain``, recorded in the manifest),
      evolving as a spectral AR(1) with the lifetimes of ``make_rain_sequences.py``
      (90 min at 64 km, exponent 0.8) and advected with the wind (an exact Fourier shift,
      periodic domain). Wavelengths above 200 km are damped (``two_slope_filter``), so the
      noise adds small-scale structure instead of synoptic-scale modulation.

Measured per subset and written into the file's attributes (and printed): wet fraction
(>= 0.1 mm/h), mean rain, the windward/lee contrast (mean rain where the terrain slope
along the wind is above 1 %, over the mean where it is below -1 %) and the correlation of
rain with the upslope wind u . grad(h).

Output: one CF netCDF file (default ``~/.cache/xstochsr/training/orographic_sequences.nc``,
not committed) with ``rain_rate(sequence, time, y, x)`` in mm h-1 (float32, zlib, quantised to
0.01 mm h-1), ``surface_altitude(sequence, y, x)`` (m) and ``land_binary_mask(sequence, y, x)``
on the same grid, ``subset(sequence)``, ``range_name(sequence)``, the projection origin of
each sequence, and the weather of every frame (wind speed and from-direction, eastward and
northward wind, precip_base, conversion and fall-out times) and sequence (nm, hw, cw,
noise). Sequences are ordered train, validation, test; sequence k of a subset is on range
k modulo the subset's ranges (manifest order) and is seeded by
``SeedSequence(subset seed).spawn(n)[k]``, so it is the same whatever the count.

Usage
-----
    python scripts/make_orographic_sequences.py --fetch-terrain   # ETOPO5 into the cache
    python scripts/make_orographic_sequences.py --quick           # 1 + 1 + 1 sequences x 6 frames
    python scripts/make_orographic_sequences.py                   # the manifest's counts
    python scripts/make_orographic_sequences.py --write-manifest  # rewrite the split manifest
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from xstochsr.datasets import file_hash  # noqa: E402  (the registry's own sha256 of a file)

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "splits" / "orographic.json"
DEFAULT_OUT = Path("~/.cache/xstochsr/training/orographic_sequences.nc").expanduser()
QUICK_OUT = DEFAULT_OUT.with_name("orographic_sequences_quick.nc")
ETOPO_CACHE = Path("~/.cache/xstochsr/terrain/etopo5.cdf").expanduser()
ETOPO_SYSTEM = Path("/usr/share/ferret-vis/data/etopo5.cdf")
ETOPO_MEMBER = "usr/share/ferret-vis/data/etopo5.cdf"
ETOPO_ENV = "XSTOCHSR_ETOPO5"
SUBSETS = ("train", "validation", "test")
THRESHOLD = 0.1  # mm/h, wet
MIN_SLOPE = 0.01  # windward / lee: slope along the wind above 1 % / below -1 %

#: name -> (latitude, longitude, subset) of each range's domain centre; written into the
#: manifest by --write-manifest (the manifest is what the build reads)
RANGES = {
    "alps": (46.4, 10.0, "train"),
    "pyrenees": (42.7, 0.5, "train"),
    "carpathians": (47.3, 24.5, "train"),
    "scandinavian_mountains": (61.5, 8.5, "train"),
    "southern_rockies": (39.3, -106.0, "train"),
    "cascades": (46.8, -121.5, "train"),
    "southern_alps_nz": (-43.5, 170.5, "train"),
    "caucasus": (42.7, 44.0, "train"),
    "japanese_alps": (36.0, 137.8, "train"),
    "high_atlas": (31.3, -6.5, "train"),
    "central_andes": (-32.5, -70.0, "train"),
    "southern_appalachians": (36.5, -81.5, "train"),
    "sierra_nevada": (37.5, -119.0, "validation"),
    "tian_shan": (42.3, 79.0, "validation"),
    "taiwan_central_range": (23.7, 121.0, "validation"),
    "himalaya_foothills": (28.3, 84.0, "test"),
    "drakensberg": (-29.3, 29.5, "test"),
    "australian_alps": (-36.5, 148.3, "test"),
}


# --------------------------------------------------------------------------------------
# terrain: ETOPO5, the projected grid, regridding
# --------------------------------------------------------------------------------------

MISSING_ETOPO = """\
ETOPO5 relief not found (looked at: {looked}).
It comes from Debian's ferret-datasets package (NOAA's ETOPO5, public domain). Either
    python scripts/make_orographic_sequences.py --fetch-terrain
(runs `apt-get download ferret-datasets` and `dpkg-deb -x` in a temporary folder and copies
etopo5.cdf to {cache}), or by hand:
    apt-get download ferret-datasets && dpkg-deb -x ferret-datasets_*.deb ferret
    python scripts/make_orographic_sequences.py --etopo ferret/{member}
(or set ${env} to the file)."""


def etopo_candidates(explicit: Path | None = None) -> list[Path]:
    """Where the ETOPO5 file is looked for, in order."""
    out = [explicit] if explicit else []
    if os.environ.get(ETOPO_ENV):
        out.append(Path(os.environ[ETOPO_ENV]).expanduser())
    return out + [ETOPO_CACHE, ETOPO_SYSTEM]


def find_etopo(explicit: Path | None = None) -> Path:
    """The first existing ETOPO5 file of ``etopo_candidates``; SystemExit explains how to get it."""
    cands = etopo_candidates(explicit)
    if explicit is not None and not explicit.is_file():
        cands = [explicit]  # a file asked for by name is never replaced by another
    for c in cands:
        if c.is_file():
            return c
    raise SystemExit(MISSING_ETOPO.format(looked=", ".join(map(str, cands)), cache=ETOPO_CACHE,
                                          member=ETOPO_MEMBER, env=ETOPO_ENV))


def fetch_etopo(dest: Path = ETOPO_CACHE) -> Path:
    """Script-time step: ``apt-get download ferret-datasets``, unpack, copy ``etopo5.cdf``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SystemExit("--fetch-terrain needs apt-get and dpkg-deb (Debian/Ubuntu); get "
                         "ferret-datasets' etopo5.cdf another way and pass --etopo FILE")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "ferret-datasets"], cwd=tmp, check=True)
        deb = next(Path(tmp).glob("ferret-datasets_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        shutil.copyfile(Path(tmp) / "x" / ETOPO_MEMBER, part)
        os.replace(part, dest)
    print(f"ETOPO5 from {deb.name} -> {dest}", flush=True)
    return dest


def read_etopo(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relief (m, float32, shape (lat, lon)), latitudes and longitudes of ETOPO5's ``ROSE``."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        lat = np.asarray(nc["ETOPO05_Y"][:], dtype="float64")
        lon = np.asarray(nc["ETOPO05_X"][:], dtype="float64")
        rose = np.asarray(nc["ROSE"][:], dtype="float32")
    if not np.isfinite(rose).all() or np.abs(rose).max() > 1.2e4:
        raise SystemExit(f"{path}: ROSE holds missing or implausible values; is it ETOPO5?")
    return rose, lat, lon


def _fractional_index(coord: np.ndarray, values: np.ndarray, periodic: bool) -> np.ndarray:
    """Fractional index of ``values`` on an evenly spaced ``coord`` (ascending or not).

    A periodic axis (longitude spanning the globe: n points, spacing 360 / n) maps every
    value into [0, n); ETOPO5's stored longitudes carry a float32 rounding of the spacing
    (0.08333411 instead of 1 / 12), so the spacing of a global axis is taken as 360 / n.
    """
    n = coord.size
    if periodic:
        step = 360.0 / n * np.sign(coord[-1] - coord[0])
        return np.mod((values - coord[0]) / step, n)
    step = (coord[-1] - coord[0]) / (n - 1)
    return (values - coord[0]) / step


def is_global_longitude(lon: np.ndarray) -> bool:
    """True when ``lon`` (evenly spaced, degrees) covers the full circle."""
    step = abs(lon[-1] - lon[0]) / (lon.size - 1)
    return abs(step * lon.size - 360.0) < 0.5 * step


def regrid_relief(relief: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                  target_lat: np.ndarray, target_lon: np.ndarray, order: int = 3) -> np.ndarray:
    """Interpolate a regular lat/lon relief at arbitrary points (cubic spline by default).

    Parameters
    ----------
    relief : numpy.ndarray
        Heights, shape (nlat, nlon), on evenly spaced ``lat`` and ``lon`` (degrees; either
        may descend). A longitude axis that spans the globe wraps around.
    lat, lon : numpy.ndarray
        1-D coordinates of ``relief``.
    target_lat, target_lon : numpy.ndarray
        Points (any matching shape, degrees); longitudes in any convention.
    order : int
        Spline order of ``scipy.ndimage.map_coordinates`` (1: bilinear, 3: cubic).

    Returns
    -------
    numpy.ndarray
        float64 heights at the points, same shape as ``target_lat``.

    Raises
    ------
    ValueError
        When a point lies outside a non-periodic source.

    Notes
    -----
    The spline reproduces planes exactly away from the edges of the source; within a few
    cells of the edge of a non-periodic source it pads with the edge values (ETOPO5's only
    edges are the poles).

    Examples
    --------
    >>> lat = np.linspace(40, 50, 121); lon = np.linspace(0, 10, 121)
    >>> h = np.add.outer(lat * 0, lon * 100.0)   # 100 m per degree of longitude
    >>> round(float(regrid_relief(h, lat, lon, np.array([45.0]), np.array([2.5]))[0]), 6)
    250.0
    """
    from scipy import ndimage

    periodic = is_global_longitude(lon)
    fi = _fractional_index(lat, np.asarray(target_lat, dtype="float64"), periodic=False)
    tlon = np.asarray(target_lon, dtype="float64")
    if not periodic:
        tlon = lon.min() + np.mod(tlon - lon.min() + 180.0, 360.0) - 180.0
    fj = _fractional_index(lon, tlon, periodic=periodic)
    if fi.min() < 0 or fi.max() > lat.size - 1 or (
            not periodic and (fj.min() < 0 or fj.max() > lon.size - 1)):
        raise ValueError("target points lie outside the relief's latitude/longitude range")
    pad = order + 2
    i0 = max(int(np.floor(fi.min())) - pad, 0)
    i1 = min(int(np.ceil(fi.max())) + pad + 1, lat.size)
    # a longitude window that may cross the wrap point: unwrap around the first target
    ref = fj.ravel()[0]
    if periodic:
        fj = ref + np.mod(fj - ref + lon.size / 2, lon.size) - lon.size / 2
    j0 = int(np.floor(fj.min())) - pad
    j1 = int(np.ceil(fj.max())) + pad + 1
    cols = np.arange(j0, j1)
    if periodic:
        cols = np.mod(cols, lon.size)
    else:
        j0 = max(j0, 0)
        cols = np.arange(j0, min(j1, lon.size))
    block = relief[i0:i1][:, cols].astype("float64")
    coords = np.stack([(fi - i0).ravel(), (fj - j0).ravel()])
    out = ndimage.map_coordinates(block, coords, order=order, mode="nearest")
    return out.reshape(np.shape(target_lat))


def domain_coords(n: int, dx: float) -> np.ndarray:
    """Cell centres (m) of an n-cell axis centred on 0: (i + 0.5 - n / 2) * dx."""
    return (np.arange(n) + 0.5 - n / 2.0) * dx


def laea_crs(lat0: float, lon0: float) -> str:
    return f"+proj=laea +lat_0={lat0} +lon_0={lon0} +x_0=0 +y_0=0 +datum=WGS84 +units=m"


def domain_lonlat(lat0: float, lon0: float, n: int, dx: float) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (degrees, shape (n, n), row 0 southernmost) of a LAEA domain."""
    try:
        from pyproj import Transformer
    except ImportError as err:  # pragma: no cover - pyproj comes with pyresample
        raise SystemExit("the projected grid needs pyproj: pip install pyproj") from err
    c = domain_coords(n, dx)
    xx, yy = np.meshgrid(c, c)
    tr = Transformer.from_crs(laea_crs(lat0, lon0), "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(xx, yy)
    return np.asarray(lat), np.asarray(lon)


def lonlat_box(lat: np.ndarray, lon: np.ndarray, lon0: float) -> dict:
    """Bounding box {"lat": [s, n], "lon": [w, e]} (longitudes unwrapped around ``lon0``)."""
    ulon = lon0 + np.mod(lon - lon0 + 180.0, 360.0) - 180.0
    return {"lat": [round(float(lat.min()), 4), round(float(lat.max()), 4)],
            "lon": [round(float(ulon.min()), 4), round(float(ulon.max()), 4)]}


def boxes_overlap(a: dict, b: dict) -> bool:
    """Whether two lat/lon boxes of ``lonlat_box`` intersect (longitude taken modulo 360)."""
    if a["lat"][1] < b["lat"][0] or b["lat"][1] < a["lat"][0]:
        return False
    for shift in (-360.0, 0.0, 360.0):
        if not (a["lon"][1] < b["lon"][0] + shift or b["lon"][1] + shift < a["lon"][0]):
            return True
    return False


def taper(n: int, ramp: int) -> np.ndarray:
    """1-D window: 0 at both ends rising with a half cosine over ``ramp`` cells to 1."""
    w = np.ones(n)
    if ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        w[:ramp] = r
        w[-ramp:] = r[::-1]
    return w


def domain_terrain(etopo, lat0: float, lon0: float, n: int, dx: float, margin: int):
    """Relief of a range's domain plus margin.

    Returns
    -------
    altitude : numpy.ndarray
        Surface altitude (m), shape (n + 2 margin,) * 2, relief clipped at 0 (sea surface).
    land : numpy.ndarray
        bool, relief > 0, same shape.
    """
    relief, lat, lon = etopo
    m = n + 2 * margin
    tlat, tlon = domain_lonlat(lat0, lon0, m, dx)
    h = regrid_relief(relief, lat, lon, tlat, tlon, order=3)
    return np.maximum(h, 0.0), h > 0.0


# --------------------------------------------------------------------------------------
# weather: smooth random walks, moisture
# --------------------------------------------------------------------------------------


def smooth_walk(rng: np.random.Generator, n: int, start: float, sd: float,
                damping: float = 0.3, lo: float = -np.inf, hi: float = np.inf) -> np.ndarray:
    """A smooth random walk: the rate of change itself does a damped random walk.

    ``r(t+1) = (1 - damping) r(t) + sd * N(0, 1)``, ``x(t+1) = x(t) + r(t+1)``, reflected at
    ``lo`` and ``hi``. Returns ``n`` values starting at ``start``.
    """
    x = np.empty(n)
    x[0], r = start, 0.0
    for t in range(1, n):
        r = (1.0 - damping) * r + sd * rng.standard_normal()
        v = x[t - 1] + r
        if v > hi:
            v, r = 2 * hi - v, -r
        if v < lo:
            v, r = 2 * lo - v, -r
        x[t] = v
    return x


def saturation_vapour_density(t_c: np.ndarray | float) -> np.ndarray | float:
    """kg m-3 over water at ``t_c`` degC (Bolton 1980 vapour pressure / (R_v T))."""
    es = 611.2 * np.exp(17.67 * t_c / (t_c + 243.5))
    return es / (461.5 * (t_c + 273.15))


def vapour_scale_height(t_c: float, gamma: float = 6.5e-3) -> float:
    """Water-vapour scale height (m), R_v T^2 / (L gamma) (Smith & Barstad 2004)."""
    t = t_c + 273.15
    return 461.5 * t * t / (2.5e6 * gamma)


def package_wind_dir(u: float, v: float) -> float:
    """The ``wind_dir`` argument of ``compute_orographic_precip`` for grid velocity (u, v).

    The package takes ``u0 = -sin(d) U`` along increasing column and ``v0 = cos(d) U`` along
    increasing row; here rows increase northward, so d = atan2(-u, v). (This is not the
    meteorological from-direction, atan2(-u, -v), on a south-to-north grid.)
    """
    return float(np.degrees(np.arctan2(-u, v)))


def weather(rng: np.random.Generator, n_frames: int, dt_min: float) -> dict:
    """Per-frame and per-sequence parameters of one sequence (see the module docstring)."""
    k = dt_min / 10.0  # walk steps are sized for 10-minute frames
    speed = smooth_walk(rng, n_frames, rng.uniform(5.0, 20.0), 0.15 * k, lo=3.0, hi=25.0)
    dirn = smooth_walk(rng, n_frames, rng.uniform(0.0, 360.0), 1.0 * k)  # degrees
    dirn = np.mod(dirn, 360.0)
    base = smooth_walk(rng, n_frames, rng.uniform(0.1, 2.0), 0.01 * k, lo=0.05, hi=3.0)
    conv = smooth_walk(rng, n_frames, rng.uniform(200.0, 2000.0), 5.0 * k, lo=200.0, hi=2000.0)
    fall = smooth_walk(rng, n_frames, rng.uniform(200.0, 2000.0), 5.0 * k, lo=200.0, hi=2000.0)
    t_c = rng.uniform(0.0, 20.0)
    ratio = rng.uniform(0.8, 1.1)
    rad = np.radians(dirn)
    return {
        "wind_speed": speed,
        "wind_from_direction": dirn,  # meteorological: where the wind comes from
        "eastward_wind": -speed * np.sin(rad),
        "northward_wind": -speed * np.cos(rad),
        "precip_base": base,
        "conv_time": conv,
        "fall_time": fall,
        "nm": rng.uniform(0.003, 0.01),
        "surface_temperature": t_c,
        "cw": float(saturation_vapour_density(t_c) * ratio),
        "hw": vapour_scale_height(t_c),
        "noise_sigma": rng.uniform(0.3, 0.8),
        "dry_fraction": rng.uniform(0.0, 0.4),
    }


# --------------------------------------------------------------------------------------
# small-scale structure: advected spectral AR(1) noise
# --------------------------------------------------------------------------------------


def _radial_wavenumber(n: int) -> np.ndarray:
    k = np.fft.fftfreq(n) * n
    return np.hypot(k[:, None], k[None, :])


def two_slope_filter(pars, fitted_size: int, n: int, dx_km: float | None = None,
                     cutoff_km: float | None = None) -> np.ndarray:
    """Unit-variance Fourier amplitude of pysteps' two-slope power law (numpy fft order).

    With ``cutoff_km`` (and the cell size ``dx_km``), wavelengths L above the cutoff are
    damped by ``1 - exp(-(cutoff_km / L)^2)``, so the noise is small-scale structure and
    does not drown the terrain's pattern in synoptic-scale modulation.
    """
    x0, y0, b1, b2 = (float(v) for v in pars)
    k = _radial_wavenumber(n) * fitted_size / n
    with np.errstate(divide="ignore"):
        logk = np.log(k)
        amp = np.exp(y0 + np.where(logk < x0, b1 / 2 * (logk - x0), b2 / 2 * (logk - x0)))
    amp[0, 0] = 0.0
    amp[~np.isfinite(amp)] = 0.0
    if cutoff_km:
        wavelength_km = n * dx_km / np.maximum(_radial_wavenumber(n), 1e-9)
        amp *= 1.0 - np.exp(-((cutoff_km / wavelength_km) ** 2))
    return amp / np.sqrt(np.mean(amp**2))


def decorrelation(n: int, dx_km: float, dt_min: float, tau64: float = 90.0,
                  exponent: float = 0.8) -> np.ndarray:
    """Lag-1 correlation rho(k) = exp(-dt / tau(L)), tau(L) = tau64 (L / 64 km)^exponent."""
    k = _radial_wavenumber(n)
    scale_km = n * dx_km / np.maximum(k, 1e-9)
    rho = np.exp(-dt_min / (tau64 * (scale_km / 64.0) ** exponent))
    rho[0, 0] = 1.0
    return rho


def fourier_shift(spec: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Move a periodic field (given by its fft2) by (sx, sy) cells along (column, row)."""
    n_r, n_c = spec.shape
    ky = np.fft.fftfreq(n_r)[:, None]
    kx = np.fft.fftfreq(n_c)[None, :]
    return spec * np.exp(-2j * np.pi * (kx * sx + ky * sy))


def _normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


# --------------------------------------------------------------------------------------
# windward / lee diagnostics
# --------------------------------------------------------------------------------------


def upslope_wind(altitude: np.ndarray, u, v, dx: float, dy: float | None = None) -> np.ndarray:
    """Vertical velocity forced by the terrain, w = u dh/dx + v dh/dy (m s-1).

    Parameters
    ----------
    altitude : numpy.ndarray
        (Y, X) heights (m), rows increasing northward (y), columns eastward (x).
    u, v : float or numpy.ndarray
        Eastward and northward wind (m s-1): scalars, or (T,) for one value per frame.
    dx, dy : float
        Cell sizes (m); ``dy`` defaults to ``dx``.

    Returns
    -------
    numpy.ndarray
        (Y, X) for scalar winds, else (T, Y, X).
    """
    dhdy, dhdx = np.gradient(np.asarray(altitude, dtype="float64"), dy or dx, dx)
    u = np.asarray(u, dtype="float64")
    v = np.asarray(v, dtype="float64")
    return u[..., None, None] * dhdx + v[..., None, None] * dhdy


def windward_lee_sums(rain, altitude, u, v, dx: float, min_slope: float = MIN_SLOPE):
    """Sums and counts of rain on windward and lee cells.

    A cell is windward when the terrain slope along the wind, (u, v) . grad(h) / |(u, v)|,
    exceeds ``min_slope``, lee when it is below ``-min_slope``.

    Parameters
    ----------
    rain : numpy.ndarray
        (Y, X) or (T, Y, X) rain rate.
    altitude : numpy.ndarray
        (Y, X) heights (m), rows northward.
    u, v : float or numpy.ndarray
        Wind (m s-1), scalars or (T,).
    dx : float
        Cell size (m).

    Returns
    -------
    tuple
        (windward sum, windward count, lee sum, lee count).
    """
    rain = np.asarray(rain, dtype="float64")
    speed = np.hypot(np.asarray(u, dtype="float64"), np.asarray(v, dtype="float64"))
    slope = upslope_wind(altitude, u, v, dx) / np.maximum(speed, 1e-12)[..., None, None]
    slope = np.broadcast_to(slope, rain.shape)
    ww, lee = slope > min_slope, slope < -min_slope
    return float(rain[ww].sum()), int(ww.sum()), float(rain[lee].sum()), int(lee.sum())


def windward_lee_contrast(rain, altitude, u, v, dx: float, min_slope: float = MIN_SLOPE):
    """Mean rain on windward slopes over mean rain on lee slopes (see ``windward_lee_sums``).

    Examples
    --------
    >>> x = np.arange(64) * 3000.0
    >>> hill = 1000 * np.exp(-((x[None, :] - 96e3) ** 2 + (x[:, None] - 96e3) ** 2) / 30e3**2)
    >>> rain = np.where(np.gradient(hill, axis=1) > 0, 2.0, 0.5)  # wetter where it rises east
    >>> windward_lee_contrast(rain, hill, u=10.0, v=0.0, dx=3000.0)   # wind from the west
    4.0
    """
    sw, nw, sl, nl = windward_lee_sums(rain, altitude, u, v, dx, min_slope)
    if nw == 0 or nl == 0:
        return float("nan")
    return (sw / nw) / (sl / nl) if sl > 0 else float("inf")


class SubsetStats:
    """Running wet fraction, mean, windward/lee sums and rain-upslope correlation of a subset."""

    def __init__(self):
        self.n = self.wet = 0
        self.s = self.ss = 0.0
        self.ww = [0.0, 0, 0.0, 0]
        self.w = self.ww2 = self.rw = 0.0  # sums of w, w^2, rain * w

    def add(self, rain: np.ndarray, altitude: np.ndarray, u, v, dx: float) -> None:
        r = np.asarray(rain, dtype="float64")
        self.n += r.size
        self.wet += int((r >= THRESHOLD).sum())
        self.s += float(r.sum())
        self.ss += float((r * r).sum())
        for i, val in enumerate(windward_lee_sums(r, altitude, u, v, dx)):
            self.ww[i] += val
        w = upslope_wind(altitude, u, v, dx)
        self.w += float(w.sum())
        self.ww2 += float((w * w).sum())
        self.rw += float((r * w).sum())

    def result(self) -> dict:
        n = max(self.n, 1)
        mr, mw = self.s / n, self.w / n
        cov = self.rw / n - mr * mw
        var_r, var_w = self.ss / n - mr * mr, self.ww2 / n - mw * mw
        sw, nw, sl, nl = self.ww
        return {
            "wet_fraction": self.wet / n,
            "mean_rain_mm_h": mr,
            "windward_mean_mm_h": sw / max(nw, 1),
            "lee_mean_mm_h": sl / max(nl, 1),
            "windward_lee_contrast": (sw / max(nw, 1)) / (sl / nl) if nl and sl > 0 else
            float("nan"),
            "rain_upslope_correlation": cov / np.sqrt(max(var_r * var_w, 1e-300)),
        }


# --------------------------------------------------------------------------------------
# simulating
# --------------------------------------------------------------------------------------


def orographic_rain(altitude: np.ndarray, dx: float, latitude: float, u: float, v: float,
                    **params) -> np.ndarray:
    """``compute_orographic_precip`` for grid wind (u east, v north) on a south-up array."""
    try:
        from orographic_precipitation import compute_orographic_precip
    except ImportError as err:
        raise SystemExit("the physics needs the PyPI package orographic-precipitation "
                         "(pip install orographic-precipitation; a script-time tool, "
                         "not an xstochsr dependency)") from err
    return compute_orographic_precip(altitude, dx, dx, latitude=latitude,
                                     wind_speed=float(np.hypot(u, v)),
                                     wind_dir=package_wind_dir(u, v), **params)


def simulate_sequence(seed_seq, terrain: np.ndarray, latitude: float, n: int, n_frames: int,
                      grid: dict, noise: dict) -> tuple[np.ndarray, dict]:
    """One sequence: rain (n_frames, n, n) in mm/h over the inner cells of ``terrain``."""
    rng = np.random.default_rng(seed_seq)
    dx, dt_min, margin = grid["dx_m"], grid["dt_minutes"], grid["margin"]
    w = weather(rng, n_frames, dt_min)
    window = taper(n + 2 * margin, grid["taper"])
    h = terrain * np.outer(window, window)
    filt = two_slope_filter(noise["filter_pars"], noise["fitted_size"], n, dx / 1000.0,
                            noise.get("large_scale_cutoff_km"))
    rho = decorrelation(n, dx / 1000.0, dt_min, noise["tau64_minutes"], noise["tau_exponent"])
    innov = np.sqrt(1.0 - rho**2)
    z_dry = _normal_quantile(w["dry_fraction"]) if w["dry_fraction"] > 0 else -np.inf
    sig = w["noise_sigma"]
    state = filt * np.fft.fft2(rng.standard_normal((n, n)))
    frames = np.empty((n_frames, n, n), dtype="float32")
    inner = slice(margin, margin + n)
    for t in range(n_frames):
        u, v = w["eastward_wind"][t], w["northward_wind"][t]
        p = orographic_rain(h, dx, latitude, u, v, precip_base=w["precip_base"][t],
                            conv_time=w["conv_time"][t], fall_time=w["fall_time"][t],
                            nm=w["nm"], hw=w["hw"], cw=w["cw"])[inner, inner]
        g = np.real(np.fft.ifft2(state))
        g = (g - g.mean()) / (g.std() + 1e-12)
        mod = np.exp(sig * g - sig * sig / 2) * (g > z_dry)
        frames[t] = np.round(p * mod, 2)
        if t + 1 < n_frames:
            shift = dt_min * 60.0 / dx
            state = (rho * fourier_shift(state, u * shift, v * shift)
                     + innov * filt * np.fft.fft2(rng.standard_normal((n, n))))
    return frames, w


def plan(manifest: dict, counts: dict | None = None, ranges_per_subset: int | None = None):
    """(subset, SeedSequence, range entry) of every sequence, in file order."""
    jobs = []
    for subset in SUBSETS:
        spec = manifest["simulated"]["subsets"][subset]
        rng_list = [r for r in manifest["ranges"] if r["set"] == subset]
        if ranges_per_subset:
            rng_list = rng_list[:ranges_per_subset]
        n = (counts or {}).get(subset, spec["n_sequences"])
        seeds = np.random.SeedSequence(spec["seed"]).spawn(n)
        jobs += [(subset, ss, rng_list[k % len(rng_list)]) for k, ss in enumerate(seeds)]
    return jobs


def _fmt(stats: dict) -> str:
    return (f"wet fraction {stats['wet_fraction']:.3f}, mean {stats['mean_rain_mm_h']:.3f} mm/h, "
            f"windward/lee {stats['windward_mean_mm_h']:.3f}/{stats['lee_mean_mm_h']:.3f} = "
            f"{stats['windward_lee_contrast']:.2f}, corr(rain, upslope wind) "
            f"{stats['rain_upslope_correlation']:.3f}")


SEQ_VARS = {  # per-sequence scalars: name -> (long_name, units, standard_name or None)
    "nm": ("moist buoyancy frequency", "s-1", None),
    "hw": ("water vapour scale height", "m", None),
    "cw": ("uplift sensitivity (saturation vapour density x moist/environment lapse-rate "
           "ratio)", "kg m-3", None),
    "surface_temperature": ("surface air temperature setting cw and hw", "degC", None),
    "noise_sigma": ("standard deviation of the log of the multiplicative noise", "1", None),
    "dry_fraction": ("fraction of the noise field below the intermittency threshold", "1",
                     None),
}
FRAME_VARS = {  # per-frame: name -> (long_name, units, standard_name or None)
    "wind_speed": ("steering wind speed", "m s-1", "wind_speed"),
    "wind_from_direction": ("steering wind from-direction", "degree", "wind_from_direction"),
    "eastward_wind": ("steering eastward wind (grid x)", "m s-1", "eastward_wind"),
    "northward_wind": ("steering northward wind (grid y)", "m s-1", "northward_wind"),
    "precip_base": ("background (non-orographic) rain rate", "mm h-1", None),
    "conv_time": ("cloud-water to hydrometeor conversion time", "s", None),
    "fall_time": ("hydrometeor fall-out time", "s", None),
}


def write(out: Path, manifest: dict, jobs, etopo, n: int, n_frames: int, argv) -> dict:
    """Simulate ``jobs`` and write the CF file atomically; return the per-subset statistics."""
    import netCDF4

    grid = {**manifest["grid"], "dt_minutes": manifest["simulated"]["dt_minutes"]}
    dx, margin = grid["dx_m"], grid["margin"]
    noise = manifest["noise"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    ranges, start = {}, 0
    for subset in SUBSETS:
        k = sum(1 for j in jobs if j[0] == subset)
        ranges[subset] = (start, start + k)
        start += k
    stats = {s: SubsetStats() for s in SUBSETS}
    terrain_cache: dict[str, tuple] = {}
    t0 = time.perf_counter()
    try:
        from importlib.metadata import version

        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.createDimension("sequence", len(jobs))
            nc.createDimension("time", n_frames)
            nc.createDimension("y", n)
            nc.createDimension("x", n)
            nc.createDimension("nv", 2)
            c = domain_coords(n, dx)
            for name, axis in (("x", "X"), ("y", "Y")):
                var = nc.createVariable(name, "f8", (name,))
                var.setncatts({
                    "standard_name": f"projection_{name}_coordinate",
                    "long_name": f"{'east' if name == 'x' else 'north'}ward distance from the "
                    "domain centre on the sequence's Lambert azimuthal equal-area projection "
                    "(origin: origin_latitude, origin_longitude)",
                    "units": "m", "axis": axis, "bounds": f"{name}_bounds"})
                var[:] = c
                b = nc.createVariable(f"{name}_bounds", "f8", (name, "nv"))
                b[:] = np.stack([c - dx / 2, c + dx / 2], axis=1)
            tv = nc.createVariable("time", "f8", ("time",))
            tv.setncatts({"standard_name": "time", "axis": "T", "calendar": "standard",
                          "long_name": "nominal time (every sequence starts at 2000-01-01)",
                          "units": "minutes since 2000-01-01 00:00:00"})
            tv[:] = np.arange(n_frames) * grid["dt_minutes"]
            sv = nc.createVariable("sequence", "i4", ("sequence",))
            sv.long_name = "sequence index (independent simulations)"
            sv[:] = np.arange(len(jobs))
            sub = nc.createVariable("subset", str, ("sequence",))
            sub.long_name = ("set of split 'orographic' (train; validation: model choice and "
                             "early stopping; test: ranges never seen in training, read once)")
            rname = nc.createVariable("range_name", str, ("sequence",))
            rname.long_name = "mountain range of the domain (scripts/splits/orographic.json)"
            olat = nc.createVariable("origin_latitude", "f8", ("sequence",))
            olat.setncatts({"long_name": "latitude of the projection origin (domain centre)",
                            "units": "degrees_north"})
            olon = nc.createVariable("origin_longitude", "f8", ("sequence",))
            olon.setncatts({"long_name": "longitude of the projection origin (domain centre)",
                            "units": "degrees_east"})
            rr = nc.createVariable("rain_rate", "f4", ("sequence", "time", "y", "x"),
                                   zlib=True, complevel=4, shuffle=True,
                                   chunksizes=(1, 1, n, n), least_significant_digit=2)
            rr.setncatts({"standard_name": "lwe_precipitation_rate",
                          "long_name": "simulated orographic rain rate", "units": "mm h-1",
                          "cell_methods": "time: point", "valid_min": np.float32(0.0)})
            alt = nc.createVariable("surface_altitude", "f4", ("sequence", "y", "x"), zlib=True,
                                    complevel=4, shuffle=True, chunksizes=(1, n, n))
            alt.setncatts({"standard_name": "surface_altitude", "units": "m",
                           "long_name": "surface altitude (ETOPO5 relief, cubic spline on the "
                           "grid, clipped at 0 over the sea)"})
            land = nc.createVariable("land_binary_mask", "i1", ("sequence", "y", "x"),
                                     zlib=True, chunksizes=(1, n, n))
            land.setncatts({"standard_name": "land_binary_mask", "units": "1",
                            "long_name": "1 where the ETOPO5 relief is above sea level",
                            "flag_values": np.array([0, 1], dtype="i1"),
                            "flag_meanings": "sea land"})
            fvars = {}
            for key, (long, units, std) in FRAME_VARS.items():
                fvars[key] = nc.createVariable(key, "f4", ("sequence", "time"))
                fvars[key].setncatts({"long_name": long, "units": units,
                                      **({"standard_name": std} if std else {})})
                if "wind" in key:
                    fvars[key].comment = ("one steering wind per frame, uniform over the "
                                          "domain in grid coordinates; grid x points east "
                                          "and grid y north at the domain centre")
            svars = {}
            for key, (long, units, _) in SEQ_VARS.items():
                svars[key] = nc.createVariable(key, "f4", ("sequence",))
                svars[key].setncatts({"long_name": long, "units": units})

            for i, (subset, ss, rng_entry) in enumerate(jobs):
                name = rng_entry["name"]
                if name not in terrain_cache:
                    terrain_cache[name] = domain_terrain(etopo, rng_entry["lat"],
                                                         rng_entry["lon"], n, dx, margin)
                h, is_land = terrain_cache[name]
                frames, w = simulate_sequence(ss, h, rng_entry["lat"], n, n_frames, grid, noise)
                inner = slice(margin, margin + n)
                h_in = h[inner, inner]
                rr[i] = frames
                alt[i] = h_in.astype("float32")
                land[i] = is_land[inner, inner].astype("i1")
                sub[i], rname[i] = subset, name
                olat[i], olon[i] = rng_entry["lat"], rng_entry["lon"]
                for key, var in fvars.items():
                    var[i] = w[key]
                for key, var in svars.items():
                    var[i] = w[key]
                stats[subset].add(frames, h_in, w["eastward_wind"], w["northward_wind"], dx)
                if (i + 1) % max(1, len(jobs) // 10) == 0 or i + 1 == len(jobs):
                    el = time.perf_counter() - t0
                    print(f"  {i + 1}/{len(jobs)} sequences, {el:.1f} s "
                          f"({el / ((i + 1) * n_frames) * 1000:.0f} ms/frame)", flush=True)

            results = {s: stats[s].result() for s in SUBSETS if ranges[s][1] > ranges[s][0]}
            attrs = {
                "Conventions": "CF-1.10",
                "title": "Terrain-shaped rain sequences for xstochsr (linear orographic "
                "precipitation over real ETOPO5 mountain ranges, with advected noise)",
                "institution": "xstochsr developers",
                "source": "scripts/make_orographic_sequences.py: orographic-precipitation "
                f"{version('orographic-precipitation')} (Smith & Barstad 2004) over ETOPO5 "
                "relief (Debian ferret-datasets) on per-range LAEA grids, smooth random walks "
                "of the weather, multiplicative advected spectral noise",
                "history": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}: "
                f"{' '.join([Path(sys.argv[0]).name] + list(argv))}",
                "references": "Smith & Barstad (2004), J. Atmos. Sci. 61, 1377-1391; "
                "NOAA NGDC (1988) ETOPO5; Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9); "
                "pysteps (Pulkkinen et al. 2019, GMD 12) for the noise spectrum",
                "license": "Simulated data, CC0-1.0. Terrain: ETOPO5, NOAA NGDC, US-government "
                "public domain. orographic-precipitation is MIT.",
                "comment": __doc__.split("Output:")[0].strip(),
                "split": "orographic",
                "terrain_file_sha256": manifest["terrain"]["sha256"],
                **{f"{s}_seed": int(manifest["simulated"]["subsets"][s]["seed"])
                   for s in SUBSETS},
                **{f"{s}_sequences": f"{a}-{b - 1}" if b > a else "none"
                   for s, (a, b) in ranges.items()},
                "dt_minutes": float(grid["dt_minutes"]),
                "dx_m": float(dx),
                "margin_cells": int(margin),
                "wet_threshold_mm_h": THRESHOLD,
                "windward_lee_min_slope": MIN_SLOPE,
            }
            for s, res in results.items():
                for key, val in res.items():
                    attrs[f"{s}_{key}"] = round(float(val), 5)
            nc.setncatts(attrs)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return results


# --------------------------------------------------------------------------------------
# the manifest
# --------------------------------------------------------------------------------------


def build_manifest(etopo_path: Path, seed: int = 20261130) -> dict:
    """The split manifest from ``RANGES``: boxes (pyproj) and relief statistics (ETOPO5)."""
    etopo = read_etopo(etopo_path)
    n, dx, margin = 256, 3000.0, 64
    ranges = []
    for name, (lat0, lon0, subset) in RANGES.items():
        lat, lon = domain_lonlat(lat0, lon0, n, dx)
        mlat, mlon = domain_lonlat(lat0, lon0, n + 2 * margin, dx)
        h = regrid_relief(*etopo, lat, lon)
        ranges.append({
            "name": name, "set": subset, "lat": lat0, "lon": lon0,
            "box": lonlat_box(lat, lon, lon0),
            "box_with_margin": lonlat_box(mlat, mlon, lon0),
            "relief": {"max_m": round(float(h.max()), 1),
                       "mean_m": round(float(np.maximum(h, 0).mean()), 1),
                       "land_fraction": round(float((h > 0).mean()), 4)},
        })
    n_seq = {"train": 96, "validation": 15, "test": 15}
    rain = json.loads((HERE / "splits" / "rain.json").read_text())
    pars = np.median([t["filter_pars"] for t in rain["simulator"]["templates"]], axis=0)
    return {
        "name": "orographic",
        "description": "Split by mountain range of the terrain-shaped rain sequences of "
        "issue 13: linear orographic precipitation (orographic-precipitation, Smith & "
        "Barstad 2004) over ETOPO5 relief; test ranges are terrain training never saw",
        "made_by": "python scripts/make_orographic_sequences.py --write-manifest",
        "rule": "train: fitting. validation: model choice, gates and early stopping. test: "
        "ranges never seen in training, read once per shipped model, reported on its card. "
        "No two subsets share a range, and the lat/lon box (with the physics margin) of a "
        "range never meets the box of a range of another subset.",
        "terrain": {
            "package": "ferret-datasets 7.6.0-5 (Debian bookworm)",
            "member": ETOPO_MEMBER, "variable": "ROSE",
            "sha256": file_hash(etopo_path),
            "what": "ETOPO5, 5 arc-minute global relief (m), NOAA NGDC 1988",
            "licence": "NOAA NGDC, US-government work, public domain (Debian package under "
            "the Ferret License Agreement, NOAA PMEL)",
        },
        "grid": {
            "projection": "Lambert azimuthal equal-area (WGS84) centred on each range's lat/lon",
            "dx_m": dx, "size": n, "margin": margin, "taper": margin // 2,
            "interpolation": "cubic spline (scipy.ndimage.map_coordinates, order 3) of ETOPO5 "
            "at the cell centres' lat/lon; relief clipped at 0 m (sea surface)",
        },
        "noise": {
            "filter_pars": [round(float(v), 6) for v in pars], "fitted_size": 256,
            "from": "median of the pysteps two-slope fits to the 73 training crops of split "
            "'rain' (scripts/splits/rain.json, simulator.templates)",
            "tau64_minutes": 90.0, "tau_exponent": 0.8, "large_scale_cutoff_km": 200.0,
        },
        "seed": seed,
        "simulated": {
            "file": "~/.cache/xstochsr/training/orographic_sequences.nc",
            "n_frames": 24, "dt_minutes": 10.0,
            "subsets": {s: {"seed": seed + 1 + i, "n_sequences": n_seq[s]}
                        for i, s in enumerate(SUBSETS)},
        },
        "counts": {s: {"ranges": sum(r["set"] == s for r in ranges),
                       "sequences": n_seq[s]} for s in SUBSETS},
        "ranges": ranges,
    }


def write_manifest(manifest: dict, path: Path = MANIFEST) -> None:
    lines = [json.dumps({k: v for k, v in manifest.items() if k != "ranges"}, indent=1)[:-2]
             + ",", ' "ranges": [']
    lines += ["  " + json.dumps(r) + ("," if i + 1 < len(manifest["ranges"]) else "")
              for i, r in enumerate(manifest["ranges"])]
    lines += [" ]", "}"]
    text = "\n".join(lines) + "\n"
    json.loads(text)  # it must still parse
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description="Simulate terrain-shaped rain sequences.")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output file ({DEFAULT_OUT}; --quick: {QUICK_OUT.name})")
    p.add_argument("--etopo", type=Path, default=None, help="ETOPO5 etopo5.cdf")
    p.add_argument("--fetch-terrain", action="store_true",
                   help=f"apt-get download ferret-datasets, copy etopo5.cdf to {ETOPO_CACHE}")
    p.add_argument("--write-manifest", action="store_true",
                   help=f"rewrite {MANIFEST.relative_to(HERE.parent)} from RANGES and exit")
    p.add_argument("--n-frames", type=int, default=None, help="default: the manifest's")
    p.add_argument("--size", type=int, default=None, help="domain size in 3 km cells")
    p.add_argument("--quick", action="store_true",
                   help="one range and one sequence per subset, 6 frames")
    args = p.parse_args(argv)
    if args.fetch_terrain:
        fetch_etopo()
        if not args.write_manifest and args.out is None and not args.quick:
            return 0
    etopo_path = find_etopo(args.etopo)
    if args.write_manifest:
        write_manifest(build_manifest(etopo_path))
        print(f"wrote {MANIFEST}", flush=True)
        return 0
    manifest = load_manifest()
    digest = file_hash(etopo_path)
    if digest != manifest["terrain"]["sha256"]:
        raise SystemExit(f"{etopo_path} has sha256 {digest}, the manifest expects "
                         f"{manifest['terrain']['sha256']} (ferret-datasets 7.6.0-5's "
                         "etopo5.cdf); pass the right file with --etopo")
    sim = manifest["simulated"]
    n_frames = args.n_frames or (6 if args.quick else sim["n_frames"])
    size = args.size or manifest["grid"]["size"]
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    counts = {s: 1 for s in SUBSETS} if args.quick else None
    jobs = plan(manifest, counts, ranges_per_subset=1 if args.quick else None)
    print("split 'orographic': "
          + ", ".join(f"{s} {sum(j[0] == s for j in jobs)} sequences on "
                      f"{len({j[2]['name'] for j in jobs if j[0] == s})} ranges"
                      for s in SUBSETS)
          + f"; {n_frames} frames of {size}x{size} ({manifest['grid']['dx_m'] / 1000:g} km, "
          f"{sim['dt_minutes']:g} min) -> {out}", flush=True)
    t0 = time.perf_counter()
    etopo = read_etopo(etopo_path)
    results = write(out, manifest, jobs, etopo, size, n_frames, argv)
    for s, res in results.items():
        print(f"{s:>10}: {_fmt(res)}", flush=True)
    mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({mb:.1f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
