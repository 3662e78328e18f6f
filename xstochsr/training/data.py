"""Training samples from xarray: space-time patches of (coarse, fine) sequence pairs.

The steps, each a function or class here:

1. :func:`load_training_data` picks the variable, finds its CF axes, brings it into the
   model's units, arranges it as ``(S, T, Y, X)`` (S independent sequences: an extra
   dimension such as ``sequence`` or ``sample``; gaps in time split a series too) and
   makes the coarse input, either by block averaging the fine field by ``factor``
   (perfect prognosis, in linear units as the paper does) or from a user-given,
   time-aligned coarse field (MOS pairs).
2. :func:`split_blocks` cuts every gap-free run into blocks of ``split_block`` frames
   and holds a random ``val_fraction`` of the blocks out for validation: validation is
   by blocks of time, never by shuffled frames, and no patch crosses a block boundary.
3. :class:`PatchSampler` draws random patches (``patch_size`` coarse cells square,
   ``seq_len`` frames) with probability proportional to ``importance_floor + wet
   fraction`` for rain (the paper's importance sampling of patches with signal),
   augments them by flips and 90-degree rotations, transforms them to network space,
   and returns a finite-value mask of the fine target (NaN never reaches a loss).

Array shapes: S sequences, T frames, Y x X fine cells, f = factor, P = patch size
(coarse cells), L = sequence length, B = batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DomainTooSmallError, InvalidInputError
from ..models import transforms

__all__ = [
    "TrainingData",
    "Batch",
    "load_training_data",
    "split_blocks",
    "PatchSampler",
    "is_precipitation",
    "choose_transform",
    "fit_transform",
    "synthetic_rain",
]

_PRECIP_NAMES = {"pr", "tp", "rr", "precip", "precipitation", "rain", "rainrate", "rain_rate",
                 "prcp", "precipitation_rate", "rr_rate"}


def is_precipitation(da: xr.DataArray) -> bool:
    """Whether ``da`` is a precipitation (rain) field, from its CF metadata or its name.

    A ``standard_name`` decides when there is one (``lwe_precipitation_rate``,
    ``precipitation_flux``, ``rainfall_rate``... but not ``atmosphere_mass_content_of_
    water_vapor``); otherwise the variable name does. "precipitable" (water vapour)
    never counts.
    """
    sn = str(da.attrs.get("standard_name", "")).lower()
    if sn:
        return any(w in sn for w in ("precipitation", "rain", "snowfall")) and \
            "precipitable" not in sn
    name = str(da.name or "").lower()
    if "precipitable" in name:
        return False
    return name in _PRECIP_NAMES or "rain" in name or "precip" in name


def choose_transform(kind: str, rain: bool) -> str:
    """Resolve ``"auto"``: ``log_rain`` for precipitation, ``standardize`` otherwise."""
    if kind == "auto":
        return "log_rain" if rain else "standardize"
    if kind not in transforms.KINDS:
        raise InvalidInputError(
            f"Unknown transform {kind!r}; use 'auto' or one of {transforms.KINDS}."
        )
    return kind


@dataclasses.dataclass
class TrainingData:
    """A field ready for sampling.

    Attributes
    ----------
    fine : ndarray ``(S, T, Y, X)`` or ``(S, T, C, Y, X)`` float32
        Fine field in model units; NaN where missing. Y and X are multiples of f.
        The channel axis is there only for several variables trained jointly.
    coarse : ndarray ``(S, T, Y/f, X/f)`` or ``(S, T, C, Y/f, X/f)`` float32
        Coarse input in model units; NaN only where a whole block is missing.
    factor : int
    runs : list of (s, t0, t1)
        Gap-free runs of frames ``t0 <= t < t1`` of sequence ``s``.
    info : dict
        Description for the model card (variable, units, standard_name, dims, period,
        grid spacing, whether the coarse input is block-averaged or given); with
        static predictors ``info["static"]`` holds their card entries.
    static : ndarray ``(S or 1, n, Y, X)`` float32 or None
        Static predictors on the fine grid, normalised (:mod:`xstochsr.static`); one
        row shared by every sequence, or one per sequence.
    n_outputs : int or None
        With inputs-only predictors (``info["predictors"]``): how many of the leading
        channels are outputs; the others are only seen coarse. None: all of them.
    """

    fine: np.ndarray
    coarse: np.ndarray
    factor: int
    runs: list[tuple[int, int, int]]
    info: dict[str, Any]
    static: np.ndarray | None = None
    n_outputs: int | None = None

    @property
    def channels(self) -> int:
        """C, the number of variables (1 without a channel axis), predictors included."""
        return 1 if self.fine.ndim == 4 else int(self.fine.shape[2])

    @property
    def outputs(self) -> int:
        """The first ``outputs`` channels are downscaled; the rest are inputs only."""
        return self.channels if self.n_outputs is None else int(self.n_outputs)

    def fine5(self) -> np.ndarray:
        """``fine`` as ``(S, T, C, Y, X)`` (a view)."""
        return self.fine if self.fine.ndim == 5 else self.fine[:, :, None]

    def coarse5(self) -> np.ndarray:
        """``coarse`` as ``(S, T, C, Y/f, X/f)`` (a view)."""
        return self.coarse if self.coarse.ndim == 5 else self.coarse[:, :, None]


@dataclasses.dataclass
class Batch:
    """One batch in network space.

    Attributes
    ----------
    coarse : ndarray ``(B, L, C, P, P)`` float32, finite (C = 1 for one variable)
    fine : ndarray ``(B, L, C, P*f, P*f)`` float32, finite (missing values filled)
    mask : ndarray ``(B, L, C, P*f, P*f)`` float32 or None
        1 where the fine target is valid, 0 where it was NaN; None if all valid.
    coarse_phys : ndarray ``(B, L, C, P, P)`` float32 or None
        The coarse input in physical (model) units, NaN filled with 0.
    fine_phys : ndarray ``(B, L, C, P*f, P*f)`` float32 or None
        The fine target in physical units, unsmoothed, NaN filled with 0.
    static : ndarray ``(B, n, P*f, P*f)`` float32 or None
        Normalised static predictors cut at the target's window (same flips/rotations).
    """

    coarse: np.ndarray
    fine: np.ndarray
    mask: np.ndarray | None
    coarse_phys: np.ndarray | None = None
    fine_phys: np.ndarray | None = None
    static: np.ndarray | None = None


# --- loading ------------------------------------------------------------------------------


def _select(obj: xr.Dataset | xr.DataArray, var: str | None) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        if var is not None and obj.name is not None and var != obj.name:
            raise InvalidInputError(
                f"var={var!r} was given but the DataArray is named {obj.name!r}; pass the "
                "Dataset instead, or drop var=."
            )
        return obj
    if not isinstance(obj, xr.Dataset):
        raise InvalidInputError(
            f"Training data must be an xarray Dataset or DataArray, got {type(obj).__name__}."
        )
    names = list(obj.data_vars)
    if var is None:
        cands = [n for n in names if obj[n].ndim >= 3]
        if len(cands) != 1:
            raise InvalidInputError(
                f"The Dataset holds {len(cands)} candidate variables {cands}; pick one with "
                "var=, e.g. xstochsr.train(ds, var=" + repr(cands[0] if cands else "precip")
                + ")."
            )
        var = cands[0]
    if var not in obj.data_vars:
        raise InvalidInputError(f"No variable {var!r} in the Dataset; it holds {names}.")
    return obj[var]


def _to_units(da: xr.DataArray, units: str | None) -> xr.DataArray:
    """Convert ``da`` to ``units`` (None: leave it in its own)."""
    from .. import units as U

    src = da.attrs.get("units")
    if units is None or (src is not None and str(src).strip() == units):
        return da
    return U.to_units(da, units)


def _rain_units(da: xr.DataArray) -> str | None:
    """``"mm h-1"`` for a precipitation rate or flux; None (its own units) for an amount."""
    from .. import units as U
    from ..errors import UnitsError

    src = da.attrs.get("units")
    if src is None:  # to_units then says the attribute is missing, and how to set it
        return "mm h-1"
    try:
        U.affine(str(src), "mm h-1")
    except UnitsError:
        return None
    return "mm h-1"


def _extra_dim(da: xr.DataArray, keep: tuple[str, ...]) -> str | None:
    extra = [d for d in da.dims if d not in keep]
    if len(extra) > 1:
        raise InvalidInputError(
            f"The field has dimensions {tuple(da.dims)}: besides time, y and x, at most one "
            f"more (independent sequences, e.g. 'sequence') is allowed; found {extra}. "
            "Select or stack them first, e.g. da.stack(sequence=(...))."
        )
    return extra[0] if extra else None


def _runs_from_time(time: np.ndarray | None, n: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` where the time step is more than 1.5 x the median step."""
    if time is None or n < 3:
        return [(0, n)]
    try:
        t = np.asarray(time)
        if np.issubdtype(t.dtype, np.datetime64):
            d = np.diff(t).astype("timedelta64[ns]").astype(np.float64)
        elif t.dtype == object:  # cftime
            d = np.array([(b - a).total_seconds() for a, b in zip(t[:-1], t[1:], strict=True)])
        else:
            d = np.diff(t.astype(np.float64))
    except (TypeError, ValueError):
        return [(0, n)]
    if np.any(d <= 0):
        raise InvalidInputError(
            "The time coordinate is not strictly increasing; sort it first "
            "(ds.sortby('time')) and drop duplicated times."
        )
    step = np.median(d)
    cuts = [0, *(np.nonzero(d > 1.5 * step)[0] + 1).tolist(), n]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _spacing(da: xr.DataArray, dim: str, factor: int) -> dict | None:
    """Return the coarse grid spacing along ``dim`` for the card.

    None without coordinate units: a number without units cannot be compared with a
    user's grid.
    """
    if dim not in da.coords or da.sizes[dim] < 2:
        return None
    v = np.asarray(da[dim].values, dtype=np.float64)
    units = str(da[dim].attrs.get("units", ""))
    if units.startswith("degree"):
        units = "degree"
    if not units:
        return None
    return {"value": float(abs(np.median(np.diff(v))) * factor), "units": units}


_CHUNK = 64  # frames processed at once when reducing to coarse cells (bounds memory)


def _block_nanmean(fine: np.ndarray, f: int) -> np.ndarray:
    """Mean of the finite values of each ``f x f`` block: ``(S, T, Y/f, X/f)``."""
    s_, t_, y, x = fine.shape
    out = np.empty((s_, t_, y // f, x // f), np.float32)
    for s in range(s_):
        for a in range(0, t_, _CHUNK):
            blocks = fine[s, a:a + _CHUNK].reshape(-1, y // f, f, x // f, f)
            valid = np.isfinite(blocks)
            n = valid.sum(axis=(2, 4))
            tot = np.where(valid, blocks, 0.0).sum(axis=(2, 4), dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = tot / n
            m[n == 0] = np.nan
            out[s, a:a + _CHUNK] = m
    return out


def _cell_fraction(frames: np.ndarray, f: int, fn) -> np.ndarray:
    """Fraction of the fine cells of each coarse cell where ``fn`` holds: ``(T, H, W)``."""
    t_, y, x = frames.shape
    out = np.empty((t_, y // f, x // f))
    for a in range(0, t_, _CHUNK):
        blk = frames[a:a + _CHUNK].reshape(-1, y // f, f, x // f, f)
        out[a:a + _CHUNK] = fn(blk).mean(axis=(2, 4))
    return out


def load_training_data(
    obj: xr.Dataset | xr.DataArray,
    var: str | list[str] | None = None,
    factor: int = 8,
    *,
    coarse: xr.DataArray | None = None,
    units: str | None = None,
    rain: bool | None = None,
    static: Any = None,
    static_stats: list[dict] | None = None,
    predictors: list[str] | None = None,
) -> TrainingData:
    """Prepare a fine field (and optional coarse partner) for :class:`PatchSampler`.

    Parameters
    ----------
    obj : xarray.Dataset or DataArray
        Fine sequences with time, y and x axes (CF roles found by
        :func:`xstochsr.grid.find_axes`, any dimension names), optionally one more
        dimension of independent sequences. Loaded into memory as float32.
    var : str or list of str, optional
        Variable of a Dataset (needed if it holds several). A list of two or more
        names trains one model on all of them jointly (e.g. ``["ua", "va"]``): the
        arrays gain a channel axis, ``fine`` ``(S, T, C, Y, X)``, each variable keeps
        its own units (a wind pair is brought to the eastward component's units) and
        ``info["channels"]`` describes each.
    factor : int
        Downscaling factor.
    coarse : xarray.DataArray, optional
        Coarse partner (MOS pairs): same time steps (and sequences) as the fine field,
        ``1/factor`` of its size along y and x. None: block-average the fine field.
    units : str, optional
        Units to train in; None: ``"mm h-1"`` for precipitation, else the field's own.
    rain : bool, optional
        Treat as precipitation; None: guessed from the metadata.
    static : DataArray, Dataset, str or list, optional
        Static fine-resolution predictors (:func:`xstochsr.static.training_fields`).
    static_stats : list of dict, optional
        Their normalisation (card entries) when it is not fitted here.
    predictors : list of str, optional
        Variables of the Dataset the model sees coarse but does not downscale (e.g.
        geopotential beside ``var=["ua", "va"]``): they become the last channels, the
        outputs the first ``n_outputs``; ``info["predictors"]`` describes them.

    Returns
    -------
    TrainingData

    Raises
    ------
    DomainTooSmallError
        The domain is smaller than ``factor`` cells.
    InvalidInputError
        Unusable input (no time axis, misaligned coarse field, several extra dims...).
    """
    from ..grid import find_axes
    from ..validation import check_values

    if predictors:
        outputs = list(var) if isinstance(var, (list, tuple)) else [var]
        if outputs == [None]:
            raise InvalidInputError("predictors= needs var= (the variables to downscale).")
        return _load_several(obj, [*outputs, *predictors], factor, coarse=coarse,
                             units=units, rain=rain, static=static,
                             static_stats=static_stats, n_outputs=len(outputs))
    if isinstance(var, (list, tuple)):
        if len(var) == 1:
            var = var[0]
        else:
            return _load_several(obj, list(var), factor, coarse=coarse, units=units,
                                 rain=rain, static=static, static_stats=static_stats)
    da = _select(obj, var)
    from ..accumulation import to_rate  # ERA5 tp (m, time: sum) -> a rate, not "0.1 m dry"

    da = to_rate(da)[0]
    rain = is_precipitation(da) if rain is None else rain
    axes = find_axes(da, require_time=True)
    if units is None and rain:
        units = _rain_units(da)
    da = _to_units(da, units)
    seq = _extra_dim(da, (axes.t, axes.y, axes.x))
    order = ((seq,) if seq else ()) + (axes.t, axes.y, axes.x)
    da = da.transpose(*order)
    ny, nx = da.sizes[axes.y], da.sizes[axes.x]
    if ny < factor or nx < factor:
        raise DomainTooSmallError(
            f"The field is {ny} x {nx} cells; training at factor {factor} needs at least "
            f"{factor} x {factor} (and a patch of several coarse cells)."
        )
    if coarse is None:
        ny, nx = ny - ny % factor, nx - nx % factor
    da = da.isel({axes.y: slice(0, ny), axes.x: slice(0, nx)})
    fine = np.asarray(da.values, dtype=np.float32)
    if seq is None:
        fine = fine[None]
    if not np.isfinite(fine).any():
        raise InvalidInputError("The training field holds no finite value.")
    check_values(fine, nonnegative=bool(rain), what="The training field", name=str(da.name))

    if coarse is None:
        cdata = _block_nanmean(fine, factor)
        source = "block mean of the fine field (perfect prognosis)"
        spacing = _spacing(da, axes.x, factor) or _spacing(da, axes.y, factor)
    else:
        cdata, spacing = _coarse_partner(coarse, da, axes, seq, factor, units)
        cy, cx = cdata.shape[2] * factor, cdata.shape[3] * factor
        fine = np.ascontiguousarray(fine[..., :cy, :cx])
        source = f"given coarse field {coarse.name!r} (MOS pairs)"

    time = np.asarray(da[axes.t].values) if axes.t in da.coords else None
    runs = [(s, a, b) for s in range(fine.shape[0])
            for a, b in _runs_from_time(time, fine.shape[1])]
    period = None
    if time is not None and time.size:
        period = [str(time[0]), str(time[-1])]
    info = {
        "variable": str(da.name) if da.name is not None else "field",
        "standard_name": da.attrs.get("standard_name"),
        "long_name": da.attrs.get("long_name"),
        "units": units if units is not None else da.attrs.get("units"),
        "dims": list(order),
        "shape": list(fine.shape),
        "period": period,
        "frames": int(fine.shape[0] * fine.shape[1]),
        "sequences": int(fine.shape[0]),
        "runs": len(runs),
        "coarse_input": source,
        "rain": bool(rain),
        "native_grid_spacing": spacing,
        "nan_fraction": float(1.0 - np.isfinite(fine).mean()),
    }
    sarr = None
    if static is not None:
        from ..static import training_fields

        sarr, info["static"] = training_fields(static, obj, da, seq=seq, stats=static_stats)
        sarr = np.ascontiguousarray(sarr[..., : fine.shape[2], : fine.shape[3]])
    return TrainingData(fine=fine, coarse=cdata, factor=factor, runs=runs, info=info,
                        static=sarr)


#: standard_name prefixes of vector components: the second of a pair takes the first's units
_VECTOR_PAIRS = (("eastward_", "northward_"), ("x_", "y_"), ("grid_eastward_", "grid_northward_"))


def _pair_units(obj: xr.Dataset, names: list[str]) -> list[str | None]:
    """Units to load each variable in: a vector's northward part in its eastward part's."""
    out: list[str | None] = [None] * len(names)
    sn = [str(obj[n].attrs.get("standard_name", "")) for n in names]
    for i, a in enumerate(sn):
        for j, b in enumerate(sn):
            for east, north in _VECTOR_PAIRS:
                if a.startswith(east) and b == north + a[len(east):]:
                    out[j] = obj[names[i]].attrs.get("units")
    return out


def _load_several(obj, names, factor, *, coarse, units, rain, static, static_stats,
                  n_outputs=None):
    """:func:`load_training_data` for several variables at once: a channel axis.

    ``n_outputs``: the first names are outputs, the rest inputs-only predictors.
    """
    if not isinstance(obj, xr.Dataset):
        raise InvalidInputError(
            f"var={names} names several variables; pass the Dataset that holds them, not a "
            f"{type(obj).__name__}.")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"var={names} names a variable twice.")
    missing = [n for n in names if n not in obj.data_vars]
    if missing:
        raise InvalidInputError(
            f"No variable {missing[0]!r} in the Dataset; it holds {list(obj.data_vars)}.")
    if coarse is not None:
        raise InvalidInputError(
            "coarse= (MOS pairs) takes one variable; train several variables on block means "
            "of their fine fields (drop coarse=), or one variable at a time.")
    if units is not None:
        raise InvalidInputError(
            "units= converts one variable; with several, convert them in the Dataset first "
            "(each variable trains in its own units).")
    no = len(names) if n_outputs is None else int(n_outputs)
    wet = [n for n in names if is_precipitation(obj[n])] if rain is None else (
        names[:1] if rain else [])
    # one precipitation output with inputs-only predictors (rain beside the coarse wind
    # that steers it): the rain keeps its own transform and checks, the predictors theirs
    rain_out = no == 1 and wet == names[:1]
    if wet and not rain_out:
        if no == 1 and names[0] not in wet:
            raise InvalidInputError(
                f"{wet} look like precipitation: an inputs-only predictor must be a signed "
                "or unbounded field (wind, temperature, geopotential); downscale the "
                f"precipitation itself (var={wet[0]!r}) with the others as predictors=.")
        raise InvalidInputError(
            f"{wet} look like precipitation: joint models of several outputs are for "
            "signed, unbounded fields (winds, temperature) for now; train precipitation "
            "on its own (var=" + repr(wet[0]) + "), with other fields as predictors=.")
    parts = [load_training_data(obj, n, factor, units=u, rain=rain_out and i == 0,
                                static=static if i == 0 else None,
                                static_stats=static_stats if i == 0 else None)
             for i, (n, u) in enumerate(zip(names, _pair_units(obj, names), strict=True))]
    first = parts[0]
    for n, p in zip(names[1:], parts[1:], strict=True):
        if p.fine.shape != first.fine.shape or p.runs != first.runs:
            raise InvalidInputError(
                f"{n!r} has shape {p.fine.shape} and {names[0]!r} {first.fine.shape} (after "
                "arranging as sequence, time, y, x): variables trained jointly must share "
                "their grid and times. Regrid them onto one grid first (ds.sr.regrid).")
    info = dict(first.info)
    entries = [{"name": n, "standard_name": p.info["standard_name"],
                "long_name": p.info["long_name"], "units": p.info["units"]}
               for n, p in zip(names, parts, strict=True)]
    channels, preds = entries[:no], entries[no:]
    # the model's units: one for every input channel, or none (each channel has its own)
    same_units = len({c["units"] for c in entries}) == 1
    info.update(variable="+".join(names[:no]), standard_name=None, long_name=None,
                units=channels[0]["units"] if same_units else None, channels=channels,
                predictors=preds or None,
                shape=[*first.fine.shape[:2], len(names), *first.fine.shape[2:]],
                nan_fraction=float(np.mean([p.info["nan_fraction"] for p in parts])))
    if no == 1:  # one output (+ predictors): its own standard_name and long_name
        info.update({k: first.info[k] for k in ("standard_name", "long_name")})
    fine = np.stack([p.fine for p in parts], axis=2)
    cdata = np.stack([p.coarse for p in parts], axis=2)
    return TrainingData(fine=fine, coarse=cdata, factor=factor, runs=first.runs, info=info,
                        static=first.static, n_outputs=None if n_outputs is None else no)


def _coarse_partner(coarse, da, axes, seq, factor, units):
    from ..grid import find_axes

    if not isinstance(coarse, xr.DataArray):
        raise InvalidInputError(
            f"coarse= must be an xarray.DataArray, got {type(coarse).__name__}."
        )
    cax = find_axes(coarse, require_time=True)
    cseq = _extra_dim(coarse, (cax.t, cax.y, cax.x))
    if (cseq is None) != (seq is None):
        raise InvalidInputError("The coarse and fine fields must both have, or both lack, "
                                "a sequence dimension.")
    coarse = _to_units(coarse, units or da.attrs.get("units"))
    coarse = coarse.transpose(*(((cseq,) if cseq else ()) + (cax.t, cax.y, cax.x)))
    if coarse.sizes[cax.t] != da.sizes[axes.t]:
        raise InvalidInputError(
            f"The coarse field has {coarse.sizes[cax.t]} time steps and the fine field "
            f"{da.sizes[axes.t]}: MOS pairs must be time-aligned. Select the common times "
            "first, e.g. xr.align(fine, coarse, join='inner')."
        )
    if cax.t in coarse.coords and axes.t in da.coords:
        if not np.array_equal(np.asarray(coarse[cax.t].values), np.asarray(da[axes.t].values)):
            raise InvalidInputError(
                "The coarse and fine time coordinates differ: MOS pairs must be time-aligned "
                "(use xr.align(fine, coarse, join='inner') first)."
            )
    cy, cx = coarse.sizes[cax.y], coarse.sizes[cax.x]
    fy, fx = da.sizes[axes.y], da.sizes[axes.x]
    if fy < cy * factor or fx < cx * factor:
        raise InvalidInputError(
            f"The coarse field is {cy} x {cx} and the fine field {fy} x {fx}; at factor "
            f"{factor} the fine field must be {cy * factor} x {cx * factor}."
        )
    cdata = np.asarray(coarse.values, dtype=np.float32)
    if cseq is None:
        cdata = cdata[None]
    spacing = _spacing(coarse, cax.x, 1) or _spacing(coarse, cax.y, 1)
    return cdata, spacing


# --- train / validation split ------------------------------------------------------------


def split_blocks(
    runs: list[tuple[int, int, int]],
    *,
    block: int,
    val_fraction: float,
    seq_len: int,
    rng: np.random.Generator,
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Split gap-free runs into training and validation runs by blocks of time.

    Each run is cut into blocks of ``block`` frames (a remainder shorter than
    ``seq_len`` joins the previous block); ``round(val_fraction * n_blocks)`` blocks,
    at least one when ``val_fraction > 0`` and there are two or more blocks, are held
    out. Adjacent training blocks are merged back so training patches can straddle
    them, but never a validation block.

    Returns
    -------
    train_runs, val_runs : list of (s, t0, t1)
    """
    blocks = []
    for s, a, b in runs:
        edges = list(range(a, b, block)) + [b]
        if len(edges) > 2 and edges[-1] - edges[-2] < seq_len:
            edges.pop(-2)
        blocks += [(s, lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    n = len(blocks)
    nval = int(round(val_fraction * n))
    if val_fraction > 0 and n >= 2:
        nval = max(nval, 1)
    nval = min(nval, n - 1) if n > 1 else 0
    val_idx = set(rng.choice(n, size=nval, replace=False).tolist()) if nval else set()
    val = [blocks[i] for i in sorted(val_idx)]
    train: list[tuple[int, int, int]] = []
    for i, (s, lo, hi) in enumerate(blocks):
        if i in val_idx:
            continue
        if train and train[-1][0] == s and train[-1][2] == lo:
            train[-1] = (s, train[-1][1], hi)
        else:
            train.append((s, lo, hi))
    return train, val


# --- sampling ------------------------------------------------------------------------------


def _box_mean(a: np.ndarray, lt: int, p: int) -> np.ndarray:
    """Mean of ``a`` (T, H, W) over every (lt, p, p) box: shape (T-lt+1, H-p+1, W-p+1)."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1, a.shape[2] + 1))
    c[1:, 1:, 1:] = a.cumsum(0).cumsum(1).cumsum(2)
    t0, t1 = slice(0, -lt), slice(lt, None)
    y0, y1 = slice(0, -p), slice(p, None)
    x0, x1 = slice(0, -p), slice(p, None)
    s = (c[t1, y1, x1] - c[t0, y1, x1] - c[t1, y0, x1] - c[t1, y1, x0]
         + c[t0, y0, x1] + c[t0, y1, x0] + c[t1, y0, x0] - c[t0, y0, x0])
    return s / (lt * p * p)


class PatchSampler:
    """Random (coarse, fine) patch sequences from a :class:`TrainingData`.

    Parameters
    ----------
    data : TrainingData
    runs : list of (s, t0, t1)
        The runs to draw from (training or validation, from :func:`split_blocks`).
    spec : dict
        Transform spec (physical -> network space), fitted on the training data.
    patch_size : int
        P, the patch side in coarse cells.
    seq_len : int
        L, frames per sequence.
    rng : numpy.random.Generator
        Source of every random choice (its state is what a checkpoint stores).
    importance_floor : float or None
        Weight floor added to the wet fraction; None draws uniformly.
    wet_threshold : float
        Value (model units) above which a fine pixel is wet.
    min_valid_fraction : float
        Patches with fewer finite fine values are never drawn.
    augment : bool
        Random flips and rotations by 90 degrees.
    zero_batch_fraction : float
        Probability that each sequence of a batch is all zeros (rain): about that
        fraction of every batch, as in the paper.
    target_smoothing : float
        Gaussian sigma (fine pixels) applied to the transformed target.

    Raises
    ------
    DomainTooSmallError
        The domain is smaller than a patch, or no run holds ``seq_len`` frames.
    """

    def __init__(
        self,
        data: TrainingData,
        runs: list[tuple[int, int, int]],
        spec: dict,
        *,
        patch_size: int,
        seq_len: int,
        rng: np.random.Generator,
        importance_floor: float | None = None,
        wet_threshold: float = 0.1,
        min_valid_fraction: float = 0.5,
        augment: bool = True,
        zero_batch_fraction: float = 0.0,
        target_smoothing: float = 0.0,
    ):
        self.data, self.spec, self.rng = data, spec, rng
        # the targets are the outputs alone (predictors are inputs only)
        self.out_spec = transforms.leading(spec, data.outputs)
        self.p, self.lt, self.f = int(patch_size), int(seq_len), data.factor
        self.augment = augment
        self.zero_batch_fraction = float(zero_batch_fraction)
        self.target_smoothing = float(target_smoothing)
        hc, wc = data.coarse.shape[-2:]
        if hc < self.p or wc < self.p:
            raise DomainTooSmallError(
                f"The coarse domain is {hc} x {wc} cells (fine {hc * self.f} x {wc * self.f} at "
                f"factor {self.f}), smaller than one training patch of {self.p} x {self.p} "
                f"coarse cells. Use a larger domain or a smaller patch_size=."
            )
        longest = max((b - a for _, a, b in runs), default=0)
        if longest < self.lt:
            raise DomainTooSmallError(
                f"The longest gap-free stretch of time available here has {longest} frames, "
                f"shorter than one training sequence (seq_len={self.lt}). Provide longer "
                "series, fill the gaps, or lower seq_len= (and split_block=)."
            )
        self._build_candidates(runs, importance_floor, wet_threshold, min_valid_fraction)

    def _build_candidates(self, runs, floor, thr, min_valid):
        f, p, lt = self.f, self.p, self.lt
        fine = self.data.fine5()
        hc, wc = fine.shape[-2] // f, fine.shape[-1] // f
        parts = []
        weights = []
        for s, a, b in runs:
            if b - a < lt:
                continue
            frames = fine[s, a:b, :, : hc * f, : wc * f]
            valid = np.isfinite(frames).all(axis=1)  # every variable present
            vbox = _box_mean(_cell_fraction(valid, f, lambda v: v), lt, p)
            if floor is None:
                w = np.ones_like(vbox)
            else:
                with np.errstate(invalid="ignore"):  # NaN counts as dry
                    wet = _cell_fraction(frames[:, 0], f, lambda v: v > thr)
                w = floor + _box_mean(wet, lt, p)
            w = np.where(vbox >= min_valid, w, 0.0)
            nt, ny, nx = w.shape
            tt, yy, xx = np.meshgrid(np.arange(nt) + a, np.arange(ny), np.arange(nx),
                                     indexing="ij")
            parts.append(np.stack([np.full(tt.size, s), tt.ravel(), yy.ravel(), xx.ravel()], 1))
            weights.append(w.ravel())
        if not parts:
            raise DomainTooSmallError(f"No stretch of time holds {lt} frames.")
        self.candidates = np.concatenate(parts).astype(np.int32)
        w = np.concatenate(weights)
        if not np.any(w > 0):
            raise InvalidInputError(
                f"No training patch has at least {min_valid:.0%} finite values; the field is "
                "mostly NaN. Lower min_valid_fraction= or check the data."
            )
        self.cdf = np.cumsum(w)

    def __len__(self) -> int:
        """Count the candidate patches with non-zero probability."""
        return int(np.count_nonzero(np.diff(self.cdf, prepend=0.0) > 0))

    def draw(self, n: int) -> np.ndarray:
        """Draw ``(n, 4)`` (sequence, t, y, x) patch origins, importance-weighted."""
        u = self.rng.random(n) * self.cdf[-1]
        idx = np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.cdf) - 1)
        return self.candidates[idx]

    def sample(self, n: int) -> Batch:
        """Draw a batch of ``n`` random sequences in network space (see :class:`Batch`).

        Each sequence is replaced by zeros with probability ``zero_batch_fraction``.
        """
        origins = self.draw(n)
        ops = self.rng.integers(0, 8, size=n) if self.augment else np.zeros(n, dtype=int)
        batch = self.assemble(origins, ops)
        if self.zero_batch_fraction > 0:
            rows = self.rng.random(n) < self.zero_batch_fraction
            if rows.any():
                z = self.zero_batch(int(rows.sum()))
                for name in ("coarse", "fine", "coarse_phys", "fine_phys"):
                    getattr(batch, name)[rows] = getattr(z, name)
                if batch.mask is not None:
                    batch.mask[rows] = 1.0
        return batch

    def zero_batch(self, n: int) -> Batch:
        """``n`` sequences of zeros (no rain) in physical units, transformed."""
        p, lt, f, nc, no = self.p, self.lt, self.f, self.data.channels, self.data.outputs
        c = np.zeros((n, lt, nc, p, p), np.float32)
        y = np.zeros((n, lt, no, p * f, p * f), np.float32)
        return Batch(coarse=np.asarray(transforms.forward(c, self.spec), np.float32),
                     fine=np.asarray(transforms.forward(y, self.out_spec), np.float32),
                     mask=None, coarse_phys=c, fine_phys=y)

    def assemble(self, origins: np.ndarray, ops: np.ndarray | None = None) -> Batch:
        """Cut, augment and transform the patches at ``origins`` ``(n, 4)``.

        ``ops[i]`` in 0..7: ``k = op % 4`` rotations by 90 degrees, then a left-right
        flip if ``op >= 4`` (the 8 symmetries of the square).
        """
        p, lt, f, nc, no = self.p, self.lt, self.f, self.data.channels, self.data.outputs
        n = len(origins)
        c = np.empty((n, lt, nc, p, p), np.float32)
        y = np.empty((n, lt, no, p * f, p * f), np.float32)
        sd = self.data.static
        st = None if sd is None else np.empty((n, sd.shape[1], p * f, p * f), np.float32)
        coarse, fine = self.data.coarse5(), self.data.fine5()
        for k, (s, t, i, j) in enumerate(origins):
            c[k] = coarse[s, t:t + lt, :, i:i + p, j:j + p]
            y[k] = fine[s, t:t + lt, :no, i * f:(i + p) * f, j * f:(j + p) * f]
            if st is not None:
                st[k] = sd[s if len(sd) > 1 else 0, :, i * f:(i + p) * f, j * f:(j + p) * f]
            if ops is not None and ops[k]:
                rot, flip = int(ops[k]) % 4, int(ops[k]) >= 4
                c[k] = np.rot90(c[k], rot, axes=(-2, -1))
                y[k] = np.rot90(y[k], rot, axes=(-2, -1))
                if st is not None:
                    st[k] = np.rot90(st[k], rot, axes=(-2, -1))
                if flip:
                    c[k], y[k] = c[k][..., ::-1], y[k][..., ::-1]
                    if st is not None:
                        st[k] = st[k][..., ::-1]
        valid = np.isfinite(y)
        cn = np.asarray(transforms.forward(np.nan_to_num(c, nan=0.0), self.spec), np.float32)
        cn = np.where(np.isfinite(c), cn, 0.0).astype(np.float32)
        yn = np.asarray(transforms.forward(np.nan_to_num(y, nan=0.0), self.out_spec),
                        np.float32)
        yn = np.where(valid, yn, 0.0).astype(np.float32)
        if self.target_smoothing > 0:
            from scipy.ndimage import gaussian_filter

            s = self.target_smoothing
            yn = gaussian_filter(yn, sigma=(0, 0, 0, s, s), mode="reflect").astype(np.float32)
        mask = None if valid.all() else valid.astype(np.float32)
        return Batch(coarse=cn, fine=yn, mask=mask, coarse_phys=np.nan_to_num(c, nan=0.0),
                     fine_phys=np.nan_to_num(y, nan=0.0), static=st)


def fit_transform(data: TrainingData, runs: list[tuple[int, int, int]], kind: str) -> dict:
    """Fit transform ``kind`` on the frames of the training ``runs`` only.

    With several variables (a channel axis) each channel gets its own statistics: a
    ``{"kind": "channels", "channels": [...]}`` spec. The inputs-only predictors of a
    rain model (``kind`` ``log_rain`` or ``log_threshold``: winds, temperature) are
    standardised instead.
    """
    if kind in ("log_rain", "log_threshold", "identity") and data.channels == 1:
        return transforms.fit(np.empty(0), kind)
    fine = data.fine5()
    specs = []
    for ch in range(data.channels):
        if ch >= data.outputs and kind in ("log_rain", "log_threshold"):
            kind = "standardize"  # a rain model's predictors (winds...) are not rain
        if kind in ("log_rain", "log_threshold", "identity"):
            specs.append(transforms.fit(np.empty(0), kind))
            continue
        frames = [fine[s, a:b, ch] for s, a, b in runs]
        sample = (np.concatenate([f.ravel() for f in frames]) if frames
                  else fine[:, :, ch].ravel())
        if sample.size > 5_000_000:  # a strided subset is plenty for a mean and a std
            sample = sample[:: sample.size // 5_000_000 + 1]
        specs.append(transforms.fit(sample, kind))
    if data.channels == 1:
        return specs[0]
    return {"kind": transforms.CHANNELS, "channels": specs}


def synthetic_rain(
    frames: int = 48,
    ny: int = 64,
    nx: int = 64,
    *,
    sequences: int | None = None,
    seed: int = 0,
    wet_fraction: float = 0.3,
    velocity: tuple[float, float] = (0.7, 1.3),
    spacing: float = 2000.0,
    nan_fraction: float = 0.0,
) -> xr.Dataset:
    """Synthetic advected rain sequences with CF metadata, for tests, demos and benchmarks.

    A smooth Gaussian random field (multiscale: sum of Gaussian-filtered noise at
    several scales) evolves as a first-order autoregressive process while being
    advected at ``velocity`` (cells per frame); rain is ``exp`` of the field above the
    quantile giving ``wet_fraction`` wet cells, in mm h-1.

    Parameters
    ----------
    frames, ny, nx : int
        Frames per sequence and grid size.
    sequences : int, optional
        Independent sequences along a ``sequence`` dimension; None: one series, no
        extra dimension.
    seed : int
    wet_fraction : float
        Fraction of wet cells.
    velocity : (float, float)
        Advection (y, x) in cells per frame.
    spacing : float
        Grid spacing in metres.
    nan_fraction : float
        Fraction of frames with a NaN stripe (missing radar data).

    Returns
    -------
    xarray.Dataset
        Variable ``precip`` (``[sequence,] time, y, x``), ``units="mm h-1"``,
        ``standard_name="rainfall_rate"``, 5-minute steps, projected x/y in metres.
    """
    from scipy.ndimage import gaussian_filter, shift

    rng = np.random.default_rng(seed)
    ns = sequences or 1
    pad = 16
    out = np.empty((ns, frames, ny, nx), np.float32)

    def field():
        z = np.zeros((ny + 2 * pad, nx + 2 * pad))
        for sigma, amp in ((8.0, 1.0), (4.0, 0.5), (2.0, 0.25), (1.0, 0.12)):
            g = gaussian_filter(rng.standard_normal(z.shape), sigma, mode="wrap")
            z += amp * g / (g.std() + 1e-12)
        return z

    for s in range(ns):
        z = field()
        for t in range(frames):
            out[s, t] = z[pad:pad + ny, pad:pad + nx]
            z = shift(z, velocity, order=1, mode="wrap")
            z = 0.97 * z + np.sqrt(1 - 0.97**2) * field()
    thr = np.quantile(out, 1.0 - wet_fraction)
    rain = np.where(out > thr, 0.1 * np.exp(2.5 * (out - thr) / out.std()), 0.0).astype(np.float32)
    if nan_fraction > 0:
        for s in range(ns):
            for t in np.nonzero(rng.random(frames) < nan_fraction)[0]:
                j = rng.integers(0, max(nx - 8, 1))
                rain[s, t, :, j:j + 8] = np.nan
    time = np.datetime64("2021-06-01T00:00") + np.arange(frames) * np.timedelta64(5, "m")
    dims = ("time", "y", "x")
    if sequences is None:
        rain = rain[0]
    else:
        dims = ("sequence",) + dims
    coords = {
        "time": ("time", time),
        "y": ("y", (np.arange(ny) + 0.5) * spacing,
              {"axis": "Y", "standard_name": "projection_y_coordinate", "units": "m"}),
        "x": ("x", (np.arange(nx) + 0.5) * spacing,
              {"axis": "X", "standard_name": "projection_x_coordinate", "units": "m"}),
    }
    da = xr.DataArray(rain, dims=dims, coords=coords, name="precip",
                      attrs={"units": "mm h-1", "standard_name": "rainfall_rate",
                             "long_name": "synthetic rain rate"})
    return da.to_dataset()
