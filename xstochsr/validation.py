"""Every input rule of xstochsr, in one place, checked at the boundary of each public function.

``downscale``, ``verify``, ``train`` (its data entry), ``load_model`` and the command line
call these functions before doing any work, so a rule is written once and an input is
either refused with an :class:`~xstochsr.errors.XStochSRError` that names the fix, or it
is used as it is. Nothing here changes the data.

The rules:

* **values**: a numeric dtype (not bool, complex or text); finite, NaN allowed only as a
  mask of missing cells (infinities are refused); non-negative where the quantity is
  (precipitation, speeds) (:func:`check_values`);
* **grid**: every coordinate that defines the grid, a dimension coordinate or not (1-D
  ``lon``/``lat`` beside dims ``y``/``x`` too), is numeric, finite, strictly monotonic and
  evenly spaced (:func:`check_grid`);
* **time**: datetime64, cftime or numeric, strictly increasing without duplicates, for
  any number of frames >= 2 (:func:`check_time`, :func:`time_steps`);
* **settings**: whole numbers in range (``seed >= 0``, ``members``, ``time_chunk >= 1``,
  ``batch_size >= 1``, ``2 <= factor <= MAX_FACTOR``), an output that fits in memory and
  a device torch has (:func:`check_int`, :func:`check_factor`, :func:`check_device`...).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .errors import (
    DomainTooSmallError,
    InvalidInputError,
    IrregularCoordinateError,
    UnknownModelError,
    UnsupportedFactorError,
)

__all__ = [
    "MAX_FACTOR",
    "SPACING_RTOL",
    "check_dataarray",
    "check_int",
    "check_seed",
    "check_members",
    "check_time_chunk",
    "check_factor",
    "check_device",
    "check_dtype",
    "check_values",
    "check_model_output",
    "check_grid",
    "grid_coords",
    "check_time",
    "time_steps",
    "check_output_size",
    "check_model_ref",
    "is_nonnegative",
    "check_verify_inputs",
    "check_memory_limit",
    "check_tile",
    "total_memory",
]

#: Largest refinement factor accepted (a 64x finer grid already holds 4096 cells per cell).
MAX_FACTOR = 64
#: Relative tolerance on the spacing of a "regular" axis (Gaussian grids pass).
SPACING_RTOL = 1e-2
#: Fraction of the machine's memory an eager output may take.
MEMORY_FRACTION = 0.5

_GRID_NAMES = {"x", "y", "lon", "lat", "longitude", "latitude", "nav_lon", "nav_lat",
               "rlon", "rlat", "xc", "yc"}
_GRID_STANDARD_NAMES = {"longitude", "latitude", "projection_x_coordinate",
                        "projection_y_coordinate", "grid_longitude", "grid_latitude"}


# --- the field itself ------------------------------------------------------------------


def check_dataarray(da: Any, what: str = "downscale") -> xr.DataArray:
    """Refuse anything but an :class:`xarray.DataArray`; return it."""
    if not isinstance(da, xr.DataArray):
        raise InvalidInputError(
            f"{what} needs an xarray.DataArray, got {type(da).__name__}. "
            "Pick a variable first: ds['precip']."
        )
    return da


def check_dtype(da: xr.DataArray | np.ndarray, what: str = "the field") -> None:
    """Refuse non-numeric data (bool, complex, text, datetimes, objects)."""
    kind = np.dtype(da.dtype).kind
    if kind not in "iuf":
        raise InvalidInputError(
            f"{what} has dtype {da.dtype}; xstochsr needs real numbers. Convert it, e.g. "
            "da.astype('float32')."
        )


def is_nonnegative(da: xr.DataArray, transform_kind: str | None = None) -> bool:
    """Whether the field's quantity cannot be negative (precipitation, speeds, amounts).

    Known from the CF ``standard_name`` (any precipitation name, ``*_speed``), else from a
    rain transform of the model (``log_rain``, ``log_threshold``).
    """
    from .units import is_precipitation

    sn = str(da.attrs.get("standard_name") or "").lower()
    if is_precipitation(sn) or sn.endswith("speed") or "_speed_" in sn:
        return True
    return transform_kind in ("log_rain", "log_threshold")


def check_values(x: Any, *, nonnegative: bool = False, what: str = "The field",
                 name: str | None = None) -> None:
    """Check the values of a numeric array: NaN is a mask, infinities and negatives are not.

    Parameters
    ----------
    x : ndarray or DataArray
        Eager values (a dask array is checked chunk by chunk by the caller).
    nonnegative : bool
        Refuse values below zero (precipitation, speeds).
    what : str
        How to name the data in messages.
    name : str, optional
        The variable's name, for the example in the fix.

    Raises
    ------
    InvalidInputError
    """
    a = np.asarray(x)
    check_dtype(a, what)
    if a.dtype.kind != "f":
        if nonnegative and a.size and a.min() < 0:
            _negative(a, what, name)
        return
    with np.errstate(invalid="ignore"):
        if np.isinf(a).any():
            raise InvalidInputError(
                f"{what} holds infinite values. Mark them missing first: "
                "da = da.where(np.isfinite(da)) (NaN cells are treated as a mask)."
            )
        if nonnegative and (a < 0).any():
            _negative(a, what, name)


def _negative(a: np.ndarray, what: str, name: str | None) -> None:
    n = int(np.count_nonzero(a < 0))
    var = name or "da"
    raise InvalidInputError(
        f"{what} is a quantity that cannot be negative (precipitation or a speed), but "
        f"{n} cell(s) are below zero (min {np.nanmin(a):g}). Fix the data, e.g. "
        f"{var} = {var}.clip(min=0) for rounding noise, or mark them missing with "
        f"{var}.where({var} >= 0)."
    )


def check_model_output(y: np.ndarray, model_name: str) -> None:
    """Refuse a model output that is not finite (its input was: NaN is filled first).

    Parameters
    ----------
    y : ndarray (M, B, T, fH, fW)
    model_name : str
    """
    from .errors import ModelError

    if not np.isfinite(y).all():
        raise ModelError(
            f"Model {model_name!r} returned NaN or infinite values from finite input; its "
            "weights are broken (e.g. a diverged training run). Retrain it or load "
            "another model."
        )


# --- settings -------------------------------------------------------------------------


def check_int(value: Any, name: str, *, minimum: int, maximum: int | None = None,
              allow_none: bool = False, example: str | None = None) -> int | None:
    """Check a whole number in ``[minimum, maximum]`` (bool and floats refused).

    Returns
    -------
    int or None
    """
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = int(value)
        ok = value >= minimum and (maximum is None or value <= maximum)
    if not ok:
        rng = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        none = " or None" if allow_none else ""
        eg = f" (e.g. {example})" if example else ""
        raise InvalidInputError(
            f"{name} must be an integer {rng}{none}, got {value!r}. Pass a valid "
            f"{name}{eg}."
        )
    return value


def check_seed(seed: Any) -> int:
    """``None`` draws a fresh seed; else a whole number in ``[0, 2**63)``."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    return check_int(seed, "seed", minimum=0, maximum=2**63 - 1, example="seed=0")


def check_members(members: int | Sequence[int]) -> list[int]:
    """Turn a count (>= 1) or distinct non-negative member indices into a list of indices."""
    if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
        n = check_int(members, "members", minimum=1, maximum=100_000, example="members=10")
        return list(range(n))
    try:
        ids = [check_int(m, "each member index", minimum=0) for m in members]
    except TypeError:
        ids = []
    if not ids or len(set(ids)) != len(ids):
        raise InvalidInputError(
            f"members must be a positive count or a list of distinct non-negative member "
            f"indices, got {members!r}. Pass e.g. members=10 or members=[0, 3]."
        )
    return ids


def check_time_chunk(time_chunk: Any) -> int | None:
    """Frames per chunk: a whole number >= 1, or None for the default."""
    return check_int(time_chunk, "time_chunk", minimum=1, allow_none=True,
                     example="time_chunk=16")


def check_factor(factor: Any) -> int:
    """Check a whole number from 2 to :data:`MAX_FACTOR`."""
    ok = isinstance(factor, (int, np.integer)) and not isinstance(factor, (bool, np.bool_))
    if not ok or factor < 2:
        raise InvalidInputError(
            f"factor must be an integer >= 2, got {factor!r}. Pass e.g. factor=8.")
    if factor > MAX_FACTOR:
        raise UnsupportedFactorError(
            f"factor {factor} is larger than {MAX_FACTOR}: the fine grid would hold "
            f"{int(factor) ** 2} cells per coarse cell. Downscale in two steps or regrid "
            f"the coarse field first; pass factor <= {MAX_FACTOR}."
        )
    return int(factor)


def check_device(device: Any) -> str:
    """Check a torch device exists on this machine (``"cpu"``, ``"cuda"``, ``"cuda:1"``...)."""
    if device is None:
        return "cpu"
    name = str(device)
    if name == "cpu":
        return name
    import torch

    try:
        d = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as err:
        raise InvalidInputError(
            f"Unknown device {device!r}. Use device='cpu', or 'cuda' / 'cuda:N' on a machine "
            "with an NVIDIA GPU."
        ) from err
    if d.type == "cpu":
        return name
    mod = getattr(torch, d.type, None)
    if d.type == "mps":
        available, count = torch.backends.mps.is_available(), 1
    elif mod is not None and hasattr(mod, "is_available"):
        available = bool(mod.is_available())
        count = mod.device_count() if available and hasattr(mod, "device_count") else 0
    else:
        available, count = False, 0
    if not available or (d.index is not None and d.index >= count):
        raise InvalidInputError(
            f"Device {device!r} is not available on this machine (torch sees {count} "
            f"{d.type} device(s)). Use device='cpu' or an existing device."
        )
    return name


def check_output_size(nbytes: int, *, lazy: bool) -> None:
    """Refuse an eager output larger than :data:`MEMORY_FRACTION` of the machine's memory."""
    if lazy:
        return
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return
    if nbytes > MEMORY_FRACTION * total:
        raise InvalidInputError(
            f"The ensemble would take {nbytes / 2**30:.1f} GiB, more than half this "
            f"machine's {total / 2**30:.1f} GiB. Use fewer members, a smaller factor or "
            "domain, or chunk the input with dask (da.chunk(time=1)) so the output is lazy "
            "and can be written piece by piece."
        )


def check_model_ref(ref: Any) -> None:
    """Check a model reference: a model object, a non-empty name or a path."""
    from .models.base import Downscaler

    if isinstance(ref, Downscaler):
        return
    if not isinstance(ref, (str, os.PathLike)) or not str(os.fspath(ref)).strip():
        raise UnknownModelError(
            f"Not a model: {ref!r}. Pass a model name (xstochsr.list_models()), the path of "
            "a saved model (.safetensors), or a model object."
        )


# --- coordinates -----------------------------------------------------------------------


def _defines_grid(name: Hashable, coord: xr.DataArray) -> bool:
    if name in coord.dims:
        return True
    attrs = coord.attrs
    units = str(attrs.get("units", ""))
    return (str(attrs.get("axis", "")).upper() in ("X", "Y")
            or attrs.get("standard_name") in _GRID_STANDARD_NAMES
            or units.startswith("degree") and units.endswith(("east", "north", "E", "N"))
            or str(name).lower() in _GRID_NAMES)


def grid_coords(da: xr.DataArray, axes) -> list[Hashable]:
    """Names of the 1-D coordinates that define the grid along X or Y (dimension or not)."""
    out = []
    for name, c in da.coords.items():
        if c.ndim == 1 and c.dims[0] in (axes.x, axes.y) and _defines_grid(name, c):
            out.append(name)
    return out


def check_grid(da: xr.DataArray, axes, *, min_size: int = 2) -> None:
    """Check every grid-defining 1-D coordinate: numeric, finite, monotonic, regular.

    Parameters
    ----------
    da : xarray.DataArray
    axes : xstochsr.grid.Axes
    min_size : int
        Fewest cells needed along X and Y.

    Raises
    ------
    DomainTooSmallError, IrregularCoordinateError
    """
    for dim in (axes.y, axes.x):
        n = da.sizes[dim]
        if n < min_size:
            raise DomainTooSmallError(
                f"The domain has {n} cell(s) along {dim!r}; at least {min_size} are needed. "
                "Downscale a larger area."
            )
    for name in grid_coords(da, axes):
        _check_spacing(name, da.coords[name])


def _check_spacing(name: Hashable, coord: xr.DataArray) -> None:
    if coord.dtype.kind not in "iuf":
        raise IrregularCoordinateError(
            f"Coordinate {name!r} has dtype {coord.dtype}; a spatial coordinate must be "
            f"numeric. Convert it (da[{name!r}] = da[{name!r}].astype(float)) or drop it."
        )
    v = np.asarray(coord.values, dtype=float)
    if not np.all(np.isfinite(v)):
        raise IrregularCoordinateError(
            f"Coordinate {name!r} holds NaN or infinite values. Fill or drop it: "
            f"da.drop_vars({name!r}).")
    if v.size < 2:
        return
    d = np.diff(v)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise IrregularCoordinateError(
            f"Coordinate {name!r} is not strictly monotonic (or repeats values). "
            f"Sort it first: da.sortby({name!r}), and drop duplicates."
        )
    med = np.median(d)
    if np.max(np.abs(d - med)) > SPACING_RTOL * abs(med):
        raise IrregularCoordinateError(
            f"Coordinate {name!r} is unevenly spaced (spacing from {d.min():g} to "
            f"{d.max():g}). The generator needs a regular grid: regrid first, e.g. "
            "da.sr.regrid(target) or downscale(..., regrid_input=True)."
        )


def time_steps(values: np.ndarray) -> np.ndarray:
    """Return the steps between successive times in seconds (datetime64, cftime or numbers).

    Raises
    ------
    IrregularCoordinateError
        If the values are not times or numbers.
    """
    v = np.asarray(values)
    if v.size < 2:
        return np.zeros(0)
    if v.dtype.kind == "M":
        return np.diff(v).astype("timedelta64[ns]").astype(np.float64) / 1e9
    if v.dtype.kind in "iuf":
        return np.diff(v.astype(np.float64))
    if v.dtype.kind == "m":
        return np.diff(v).astype("timedelta64[ns]").astype(np.float64) / 1e9
    try:  # cftime (or datetime) objects: differences are datetime.timedelta
        d = np.diff(v)
        return np.array([x / _dt.timedelta(seconds=1) for x in d], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise IrregularCoordinateError(
            f"The time coordinate holds {type(v.flat[0]).__name__} values, which are not "
            "times. Decode it (xr.decode_cf(ds), or open with use_cftime=True)."
        ) from err


def check_time(da: xr.DataArray, t: Hashable | None) -> np.ndarray | None:
    """Check the time axis (any length >= 2): strictly increasing, no duplicates.

    Returns
    -------
    ndarray of float or None
        The steps in seconds (numbers for a numeric axis); None if there is no
        time coordinate.
    """
    if t is None or t not in da.coords:
        return None
    d = time_steps(da.coords[t].values)
    if d.size and not np.all(np.isfinite(d)):
        raise IrregularCoordinateError(f"Time coordinate {t!r} holds missing values (NaT).")
    if np.any(d <= 0):
        what = "repeats a time" if np.any(d == 0) else "is not increasing"
        raise IrregularCoordinateError(
            f"Time coordinate {t!r} {what}. Sort it and drop duplicates: "
            f"da = da.sortby({t!r}).drop_duplicates({t!r})."
        )
    return d


# --- other public functions -----------------------------------------------------------


def check_verify_inputs(ens: Any, obs: Any, member_dim: Hashable = "realization") -> None:
    """Entry check of :func:`xstochsr.verify`: DataArrays of real numbers, no infinities.

    Needs no coordinates (verification works on plain dims); the member dimension and
    the pairing of ``ens`` with ``obs`` are checked by the metrics themselves.
    """
    check_dataarray(ens, "verify (ens)")
    check_dataarray(obs, "verify (obs)")
    for what, a in (("The ensemble", ens), ("The observation", obs)):
        check_dtype(a, what)
        if not _is_lazy(a):
            check_values(a.values, what=what)


def _is_lazy(da: xr.DataArray) -> bool:
    return type(da.variable._data).__module__.startswith("dask") or da.chunks is not None


# --- tiled inference (memory_limit=, tile=) ------------------------------------------------

#: Fraction of the machine's memory a model call may use when ``memory_limit`` is not given.
DEFAULT_MEMORY_LIMIT_FRACTION = 0.25
_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
               "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def total_memory() -> int | None:
    """Physical memory of this machine in bytes (psutil if installed, else ``os.sysconf``)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        return None


def check_memory_limit(limit: Any) -> int:
    """Bytes a model call may use, from an int, a string (``"4GB"``) or None.

    None gives :data:`DEFAULT_MEMORY_LIMIT_FRACTION` of the machine's memory (4 GiB when
    that is unknown); strings take B, kB, MB, GB, TB (powers of 10) and KiB, MiB, GiB, TiB.
    """
    if limit is None:
        total = total_memory()
        return int(DEFAULT_MEMORY_LIMIT_FRACTION * total) if total else 4 * 2**30
    value = None
    if isinstance(limit, (int, np.integer)) and not isinstance(limit, (bool, np.bool_)):
        value = int(limit)
    elif isinstance(limit, str):
        import re

        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", limit)
        if m and m.group(2).lower() in _BYTE_UNITS:
            value = int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
    if value is None or value <= 0:
        raise InvalidInputError(
            f"memory_limit must be a positive number of bytes or a string such as '4GB' or "
            f"'512MiB', got {limit!r}. Pass e.g. memory_limit='4GB', or None for "
            f"{DEFAULT_MEMORY_LIMIT_FRACTION:.0%} of this machine's memory."
        )
    return value


def check_tile(tile: Any) -> int | None:
    """Coarse cells per tile side: a whole number >= 1, or None to size tiles from memory."""
    return check_int(tile, "tile", minimum=1, allow_none=True, example="tile=128")
# --- static predictors (orography...) ----------------------------------------------------


def check_static_needed(names: Sequence[str], given: Any, model_name: str) -> None:
    """Refuse a model that needs static predictors without them, and the reverse.

    Parameters
    ----------
    names : sequence of str
        The static predictors the model's card lists (empty for most models).
    given : object
        What the user passed as ``static=`` (None when nothing).
    model_name : str
    """
    from .errors import StaticFieldError

    if names and given is None:
        raise StaticFieldError(
            f"Model {model_name!r} was trained with static predictors {list(names)} on the "
            "fine grid; pass them with static= (a DataArray or Dataset, e.g. "
            "downscale(da, model=..., static=topo)), or choose a model without them "
            "(xstochsr.list_models())."
        )
    if not names and given is not None:
        raise StaticFieldError(
            f"Model {model_name!r} takes no static predictors; drop static=, or use a model "
            "trained with them (xstochsr.train(ds, static=...))."
        )


def check_static_values(values: np.ndarray, name: str, *, source_finite: bool = False) -> None:
    """Refuse a static predictor that is not finite everywhere on the target grid.

    Parameters
    ----------
    values : ndarray
        The field on the grid where it is used.
    name : str
        Its name, for the message.
    source_finite : bool
        The field as given was finite everywhere, so NaN here means it was regridded
        onto a grid it does not cover.
    """
    from .errors import StaticFieldError

    check_dtype(np.asarray(values), f"static field {name!r}")
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    share = f"{bad.mean():.1%} of the cells"
    if source_finite:
        raise StaticFieldError(
            f"Static field {name!r} does not cover the domain: {share} of the fine grid lie "
            "outside it. Give it over the whole domain (with a margin of one cell), on the "
            "same coordinates and projection as the field."
        )
    raise StaticFieldError(
        f"Static field {name!r} holds NaN or infinite values ({share}), e.g. over the sea. "
        "A static predictor must be finite everywhere: fill it (surface altitude over the "
        "sea is 0: static.fillna(0))."
    )
