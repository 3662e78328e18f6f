"""The fixed train / validation / test split of the real rain data, and how to read it.

Not part of the package: imported by the data, training and evaluation scripts
(``sys.path`` holds ``scripts/`` when one of them runs). The split itself is written once by
``scripts/make_splits.py`` into ``scripts/splits/<name>.json`` (committed) and read here.

The split (``rain``) partitions the Meteosat-9 MPE full disk of 2008-12-11 16:45 UTC
(3712 x 3712 SEVIRI pixels, row 0 southernmost, column 0 westernmost) into square tiles of
``tile`` pixels. Each tile keeps only its *interior* (``guard`` pixels are dropped on every
side), so two regions are at least ``2 * guard`` pixels apart and a ``crop`` x ``crop``
window lying inside one interior can never touch another region. Tiles are ranked by their
wet-pixel count and dealt, in consecutive blocks of ``len(pattern)``, into the sets of
``pattern`` in an order drawn from ``numpy.random.default_rng(seed)`` (stratified, so that
every set gets rainy and dry tiles); tiles touching a ``train_only`` window (pixels some
earlier simulator or model was fitted to) go to ``train`` and stay out of the draw.
Candidate crops sit at ``crop_offsets`` inside each interior; a crop is listed when every
pixel is on the disk, ``|lat| <= max_abs_lat`` and its wet fraction is at least
``min_wet_fraction``.

Rule: the simulator that makes training sequences is fitted on ``train`` crops only;
``validation`` chooses models, gates them and stops training; ``test`` is read once per
shipped model and reported on its card.

Examples
--------
>>> from splits import crop_fields, load_split  # doctest: +SKIP
>>> split = load_split("rain")  # doctest: +SKIP
>>> [(c["row"], c["col"]) for c in split["crops"]["test"]][:2]  # doctest: +SKIP
>>> truths = crop_fields("rain", "validation")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
SETS = ("train", "validation", "test")


# --------------------------------------------------------------------------------------
# reading a split
# --------------------------------------------------------------------------------------


def split_path(name: str) -> Path:
    """Path of the committed manifest ``scripts/splits/<name>.json``."""
    return SPLITS_DIR / f"{name}.json"


def load_split(name: str = "rain") -> dict:
    """Return the manifest of split ``name`` (a plain dict, as written by make_splits.py).

    Keys: ``source`` (raw file and sha256), ``seed``, ``tiling`` (tile, guard, crop, ...),
    ``train_only`` (windows whose regions are training data outside the draw), ``regions``
    (list of dicts with ``id``, ``set``, ``drawn``, ``rows``, ``cols``: half-open interior
    bounds in full-disk pixels, ``usable_pixels``, ``wet_pixels``), ``crops``
    (``{set: [{"row", "col", "region", ...}]}``, first pixel of each ``crop`` x ``crop``
    window), ``counts``, ``simulator`` (fitted
    on training crops) and ``simulated`` (seeds and sizes of the simulated sequences).
    """
    path = split_path(name)
    if not path.exists():
        known = sorted(p.stem for p in SPLITS_DIR.glob("*.json"))
        raise FileNotFoundError(f"no split {name!r} in {SPLITS_DIR} (known: {known}); "
                                "run scripts/make_splits.py to write it")
    return json.loads(path.read_text(encoding="utf-8"))


def windows(split: dict, subset: str) -> list[tuple[int, int]]:
    """``(row, col)`` first pixels of the crops of ``subset`` (train, validation or test)."""
    if subset not in SETS:
        raise ValueError(f"subset must be one of {SETS}, not {subset!r}")
    return [(int(c["row"]), int(c["col"])) for c in split["crops"][subset]]


def sequences(split: dict, subset: str) -> slice:
    """The ``sequence`` indices of ``subset`` in the simulated file make_rain_sequences.py writes.

    Use as ``ds.isel(sequence=sequences(split, "validation"))``; the file's ``subset``
    variable says the same per sequence.
    """
    if subset not in SETS:
        raise ValueError(f"subset must be one of {SETS}, not {subset!r}")
    lo, hi = split["simulated"]["subsets"][subset]["sequences"]
    return slice(int(lo), int(hi))


def set_mask(split: dict, subset: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean mask of the full-disk grid: True on the interiors of ``subset``'s regions."""
    shape = tuple(shape or split["source"]["shape"])
    mask = np.zeros(shape, dtype=bool)
    for r in split["regions"]:
        if r["set"] == subset:
            mask[r["rows"][0]:r["rows"][1], r["cols"][0]:r["cols"][1]] = True
    return mask


def crop_digest(field: np.ndarray) -> str:
    """sha256 of a crop's values (float32, C order): identifies the data, not the file."""
    return hashlib.sha256(np.ascontiguousarray(field, dtype="<f4").tobytes()).hexdigest()


def cache_dir() -> Path:
    """Where ``make_splits.py --crops`` writes the real crops (below ``XSTOCHSR_DATA_DIR``)."""
    base = os.environ.get("XSTOCHSR_DATA_DIR")
    root = Path(base).expanduser() if base else Path("~/.cache/xstochsr").expanduser()
    return root / "splits"


def crops_path(name: str, subset: str) -> Path:
    """File of the real crops of ``subset`` written by ``make_splits.py --crops``."""
    return cache_dir() / f"{name}_{subset}_crops.nc"


def open_crops(name: str = "rain", subset: str = "test"):
    """The real crops of ``subset`` as ``rain_rate(crop, time, y, x)`` (xarray), checked.

    Each crop's values are checked against the sha256 the manifest records, so a crop file
    that is stale or from another split is refused. Write the file with
    ``python scripts/make_splits.py --crops`` (needs npm and eccodes).
    """
    import xarray as xr

    split = load_split(name)
    path = crops_path(name, subset)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; write it with "
                                "`python scripts/make_splits.py --crops`")
    ds = xr.open_dataset(path)
    want = [c["sha256"] for c in split["crops"][subset]]
    got = [crop_digest(ds["rain_rate"].values[k, 0]) for k in range(ds.sizes["crop"])]
    if got != want:
        raise ValueError(f"{path} does not hold the {subset} crops of split {name!r} "
                         "(sha256 differ); rewrite it with `python scripts/make_splits.py --crops`")
    return ds


def crop_fields(name: str = "rain", subset: str = "test") -> list:
    """The real crops of ``subset`` as a list of ``rain_rate(time, y, x)`` DataArrays (mm h-1).

    Ready for ``xstochsr.downscale`` / ``verify`` like a shipped sample; ``row``, ``col``
    and ``region`` are kept as scalar coordinates. See ``open_crops``.
    """
    ds = open_crops(name, subset)
    return [ds["rain_rate"].isel(crop=k).load() for k in range(ds.sizes["crop"])]


# --------------------------------------------------------------------------------------
# making a split (pure numpy: make_splits.py runs it on the real disk, tests on toy fields)
# --------------------------------------------------------------------------------------


def tile_regions(shape: tuple[int, int], tile: int, guard: int) -> list[dict]:
    """Square tiles of ``tile`` pixels over ``shape``, each shrunk by ``guard`` on every side.

    Returns one dict per tile: ``id`` ('r<i>c<j>', i counted from row 0), ``rows`` and
    ``cols`` (half-open interior bounds). Tiles are laid from pixel 0; a remainder smaller
    than a tile at the top or right edge is left out of every set.
    """
    if tile <= 2 * guard:
        raise ValueError(f"tile ({tile}) must exceed twice the guard ({guard})")
    out = []
    for i in range(shape[0] // tile):
        for j in range(shape[1] // tile):
            out.append({"id": f"r{i}c{j}",
                        "rows": [i * tile + guard, (i + 1) * tile - guard],
                        "cols": [j * tile + guard, (j + 1) * tile - guard]})
    return out


def usable(rate: np.ndarray, lat: np.ndarray, max_abs_lat: float) -> np.ndarray:
    """Pixels that may be used: on the disk (finite rate and latitude), ``|lat| <= max_abs_lat``."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(rate) & np.isfinite(lat) & (np.abs(lat) <= max_abs_lat)


def assign_sets(wet_pixels: list[int], seed: int, pattern: list[str]) -> list[str]:
    """Stratified, seeded assignment of regions to sets.

    Regions are ranked by ``wet_pixels`` (most first; ties keep their order) and dealt in
    consecutive blocks of ``len(pattern)``; within each block the sets of ``pattern`` are
    handed out in an order drawn from ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    wet_pixels : list of int
        Wet-pixel count of each region, shape (R,).
    seed : int
    pattern : list of str
        Sets of one block, e.g. ``["train", "train", "train", "validation", "test"]``.

    Returns
    -------
    list of str
        The set of each region, shape (R,), in the order of ``wet_pixels``.
    """
    rng = np.random.default_rng(seed)
    order = sorted(range(len(wet_pixels)), key=lambda k: -wet_pixels[k])
    out = [""] * len(wet_pixels)
    for b in range(0, len(order), len(pattern)):
        block = order[b:b + len(pattern)]
        deal = [pattern[k] for k in rng.permutation(len(pattern))]
        for k, region in enumerate(block):
            out[region] = deal[k]
    return out


def make_split(rate: np.ndarray, lat: np.ndarray, *, tile: int, guard: int, crop: int,
               crop_offsets: list[int], max_abs_lat: float, min_wet_fraction: float,
               seed: int, pattern: list[str], train_only: list | None = None) -> dict:
    """Regions, their sets and the crops of each set for one rain field.

    Parameters
    ----------
    rate : numpy.ndarray
        Rain rate (mm/h), shape (Y, X); NaN off the Earth's disk.
    lat : numpy.ndarray
        Latitude (degrees), shape (Y, X); NaN off the disk.
    tile, guard, crop, crop_offsets, max_abs_lat, min_wet_fraction, seed, pattern
        See the module docstring.
    train_only : list of [row, col, size], optional
        Windows whose pixels may only be training data (e.g. crops an older simulator was
        fitted to): every region they overlap goes to ``train`` and is left out of the
        draw; the other regions are drawn as usual.

    Returns
    -------
    dict
        ``{"regions": [...], "crops": {set: [...]}, "counts": {set: {...}}}``; regions without
        a usable pixel are left out. Crop dicts hold ``row``, ``col``, ``region``,
        ``wet_fraction``, ``mean_rate`` and ``sha256`` (of the crop's float32 values).
    """
    ok = usable(rate, lat, max_abs_lat)
    wet = ok & (np.nan_to_num(rate) > 0)
    regions = []
    for reg in tile_regions(rate.shape, tile, guard):
        sl = (slice(*reg["rows"]), slice(*reg["cols"]))
        n_ok = int(ok[sl].sum())
        if n_ok == 0:
            continue
        reg.update(usable_pixels=n_ok, wet_pixels=int(wet[sl].sum()))
        regions.append(reg)
    forced = [any(overlaps(r, *w) for w in (train_only or [])) for r in regions]
    drawn = assign_sets([r["wet_pixels"] for r, f in zip(regions, forced, strict=True)
                         if not f], seed, pattern)[::-1]
    sets = ["train" if f else drawn.pop() for f in forced]
    crops: dict[str, list] = {s: [] for s in SETS}
    for reg, s, f in zip(regions, sets, forced, strict=True):
        reg["set"] = s
        reg["drawn"] = not f
        for di in crop_offsets:
            for dj in crop_offsets:
                i, j = reg["rows"][0] + di, reg["cols"][0] + dj
                if i + crop > reg["rows"][1] or j + crop > reg["cols"][1]:
                    raise ValueError(f"crop offset {di, dj} leaves region {reg['id']}")
                sl = (slice(i, i + crop), slice(j, j + crop))
                if not ok[sl].all():
                    continue
                field = rate[sl]
                wf = float((field > 0).mean())
                if wf < min_wet_fraction:
                    continue
                crops[s].append({"row": i, "col": j, "region": reg["id"],
                                 "wet_fraction": round(wf, 4),
                                 "mean_rate": round(float(field.mean()), 4),
                                 "sha256": crop_digest(field)})
    counts = {}
    for s in SETS:
        mine = [r for r in regions if r["set"] == s]
        counts[s] = {"regions": len(mine),
                     "usable_pixels": sum(r["usable_pixels"] for r in mine),
                     "wet_pixels": sum(r["wet_pixels"] for r in mine),
                     "crops": len(crops[s]),
                     "crop_wet_pixels": int(sum(round(c["wet_fraction"] * crop * crop)
                                                for c in crops[s]))}
    return {"regions": regions, "crops": crops, "counts": counts}


def overlaps(region: dict, row: int, col: int, size: int) -> bool:
    """Whether a ``size`` x ``size`` window at (row, col) shares a pixel with ``region``."""
    return (row < region["rows"][1] and row + size > region["rows"][0]
            and col < region["cols"][1] and col + size > region["cols"][0])


def region_of(split: dict, row: int, col: int, size: int) -> str:
    """Where a ``size`` x ``size`` window at (row, col) lies.

    Returns the set's name when the window is inside one region's interior, else
    ``"overlaps <sets> and guard"`` (or ``"guard"`` when it touches no region).
    """
    hits = set()
    for r in split["regions"]:
        r0, r1 = r["rows"]
        c0, c1 = r["cols"]
        if r0 <= row and row + size <= r1 and c0 <= col and col + size <= c1:
            return r["set"]
        if overlaps(r, row, col, size):
            hits.add(r["set"])
    return f"overlaps {'/'.join(sorted(hits))} and guard" if hits else "guard"
