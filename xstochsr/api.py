"""``downscale``: from a coarse DataArray to an ensemble of fine DataArrays.

The recipe, step by step (each step lives in its own module)::

    DataArray --grid.find_axes/check_regular--> X, Y, T found and checked
              --units--> values in the model's units (converted per chunk, lazily)
              --NaN filled from the nearest valid cell, mask kept--
              --model.run--> (members, sequences, time, fY, fX), GRU state carried
              --mask restored, units converted back--
              --grid.fine_coords--> exact fine coordinates, attrs, history
              --regrid (optional)--> DataArray on the user's grid
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from . import grid as _grid
from . import units as _units
from .errors import InvalidInputError, IrregularCoordinateError
from .models.base import Downscaler

__all__ = ["downscale"]

REALIZATION = "realization"
#: Default frames per time chunk (GRU state is carried between chunks).
DEFAULT_TIME_CHUNK = 16
#: Rough memory budget per model call when ``batch_size`` is not given.
MEMORY_BUDGET = 1 << 30


@dataclass(frozen=True)
class _Plan:
    """Everything a chunk worker needs (picklable, no xarray)."""

    model: Downscaler
    factor: int
    seed: int
    src_units: str | None
    model_units: str | None
    device: str
    conserve: str | None = None  # None, "multiplicative" or "additive"


def conserve_means(y: np.ndarray, x: np.ndarray, factor: int, mode: str) -> np.ndarray:
    """Adjust each fine ``factor x factor`` block so its mean equals the coarse value.

    Parameters
    ----------
    y : ndarray (M, B, T, H*f, W*f)
        Fine members.
    x : ndarray (B, T, H, W)
        Coarse input, same units.
    factor : int
    mode : {"multiplicative", "additive"}
        Multiplicative keeps zeros and signs (rain rate): a block is scaled by
        ``x / mean``; a block that is all zero under a positive coarse value takes the
        shape of the bilinear interpolation of ``x`` there (a ramp towards the wetter
        neighbours, not a flat square), scaled to the coarse value. Additive shifts the
        block by ``x - mean`` (temperature, winds).

    Returns
    -------
    ndarray, same shape as ``y``
    """
    m, b, t, fh, fw = y.shape
    h, w = fh // factor, fw // factor
    blocks = y.reshape(m, b, t, h, factor, w, factor)
    mean = blocks.mean(axis=(4, 6), keepdims=True)
    target = x[None, :, :, :, None, :, None].astype(np.float64)
    if mode == "additive":
        out = blocks + (target - mean)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(mean > 0, target / np.where(mean > 0, mean, 1.0), 0.0)
        out = np.where(mean > 0, blocks * ratio, 0.0)
        empty = (mean <= 0) & (target > 0)  # (M, B, T, H, 1, W, 1)
        if empty.any():
            from .models.interpolation import upsample

            ramp = np.clip(upsample(x.astype(np.float64), factor, "bilinear"), 0.0, None)
            ramp = ramp.reshape(1, b, t, h, factor, w, factor)
            rmean = ramp.mean(axis=(4, 6), keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                fill = np.where(rmean > 0, ramp * (target / np.where(rmean > 0, rmean, 1.0)),
                                target)
            out = np.where(empty, np.broadcast_to(fill, blocks.shape), out)
    return out.reshape(m, b, t, fh, fw).astype(np.float32)


def _fill_nan(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN from the nearest valid cell, frame by frame.

    Parameters
    ----------
    x : ndarray (B, T, H, W)

    Returns
    -------
    filled : ndarray (B, T, H, W), finite
    invalid : ndarray of bool (B, T, H, W), where ``x`` was NaN
    """
    from scipy import ndimage

    invalid = ~np.isfinite(x)
    if not invalid.any():
        return x, invalid
    if np.isinf(x).any():
        raise InvalidInputError(
            "The field holds infinite values. Replace them (e.g. da.where(np.isfinite(da))) "
            "so they are treated as missing."
        )
    out = x.copy()
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            bad = invalid[b, t]
            if not bad.any():
                continue
            if bad.all():
                out[b, t] = 0.0
                continue
            idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
            out[b, t] = x[b, t][tuple(idx)]
    return out, invalid


def _run_chunk(plan: _Plan, x: np.ndarray, members: list[int], t0: int, b0: int,
               state: Any) -> tuple[np.ndarray, Any]:
    """Run one (members, sequences, time) chunk in user units: (B,T,H,W) -> (M,B,T,fH,fW)."""
    x = np.asarray(x, dtype=np.float32)
    if plan.model_units and plan.src_units:
        x = _units.convert(x, plan.src_units, plan.model_units).astype(np.float32, copy=False)
    filled, invalid = _fill_nan(x)
    y, state = plan.model.run(filled, factor=plan.factor, members=members, seed=plan.seed,
                              t0=t0, batch_offset=b0, state=state, device=plan.device)
    if plan.conserve:
        y = conserve_means(y, filled, plan.factor, plan.conserve)
    if invalid.any():
        f = plan.factor
        fine_bad = np.repeat(np.repeat(invalid, f, axis=-2), f, axis=-1)
        y = np.where(fine_bad[None], np.float32(np.nan), y)
    if plan.model_units and plan.src_units:
        y = _units.convert(y, plan.model_units, plan.src_units).astype(np.float32, copy=False)
    return y, state


def _segments(da: xr.DataArray, t: str | None) -> list[tuple[int, int]]:
    """Split the time axis at gaps (a step over 1.5x the median): ``[(start, stop), ...]``.

    The GRU state is re-initialised at the start of each segment, as the paper does.
    """
    if t is None:
        return [(0, 1)]
    n = da.sizes[t]
    if n < 3 or t not in da.coords:
        return [(0, n)]
    v = da.coords[t].values
    try:
        d = np.diff(v).astype("timedelta64[ns]").astype(np.float64) if v.dtype.kind == "M" \
            else np.diff(np.asarray(v, dtype=np.float64))
    except (TypeError, ValueError):
        return [(0, n)]
    if np.any(d <= 0):
        raise IrregularCoordinateError(
            f"Time coordinate {t!r} is not strictly increasing. Sort it: da.sortby({t!r})."
        )
    breaks = np.flatnonzero(d > 1.5 * np.median(d)) + 1
    edges = [0, *breaks.tolist(), n]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _auto_batch(model: Downscaler, h: int, w: int, factor: int) -> int:
    """Sequences x members per call within :data:`MEMORY_BUDGET` (rough)."""
    arch = getattr(model.card, "architecture", None) or {}
    widths = arch.get("upsample_widths") or [8]
    per_seq = (h * factor) * (w * factor) * 4 * (3 * widths[-1] + 4)
    return max(1, MEMORY_BUDGET // per_seq)


def _in_notebook_or_tty() -> bool:
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _resolve_members(members: int | Sequence[int]) -> list[int]:
    if isinstance(members, (int, np.integer)):
        if members < 1:
            raise InvalidInputError(f"members must be at least 1, got {members}.")
        return list(range(int(members)))
    ids = [int(m) for m in members]
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise InvalidInputError(
            f"members must be a positive count or a list of distinct non-negative member "
            f"indices, got {members!r}."
        )
    return ids


def _resolve_model(model, da: xr.DataArray, factor: int) -> tuple[Downscaler, str | None]:
    from .models.registry import load_model, select_model

    if model is None:
        name = select_model(da.attrs.get("units"), da.attrs.get("standard_name"), factor)
        return load_model(name), f"chosen from the field's standard_name and units: {name}"
    return load_model(model), None


def _history(da: xr.DataArray, text: str) -> str:
    from . import __version__

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp}: xstochsr {__version__}: {text}"
    old = da.attrs.get("history", "")
    return f"{old}\n{line}" if old else line


def downscale(
    da: xr.DataArray,
    factor: int | None = None,
    members: int | Sequence[int] = 10,
    *,
    model: str | Downscaler | None = None,
    seed: int | None = None,
    time_chunk: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    target_grid: xr.Dataset | xr.DataArray | None = None,
    regrid_method: str | None = None,
    regrid_input: bool = False,
    conserve: bool | None = None,
    progress: bool | None = None,
) -> xr.DataArray:
    """Downscale a coarse field into an ensemble of fine, temporally consistent fields.

    Parameters
    ----------
    da : xarray.DataArray
        Coarse field with X and Y axes that cf-xarray can find (any dim names), an
        optional time axis, and any other dims (levels, forecast leads), which are
        batched over. Needs a ``units`` attribute when the model has units. NaN cells
        (e.g. outside radar range) stay NaN in the fine cells under them.
    factor : int, optional
        Refinement factor along X and Y. Default: the factor of ``model`` when it was
        built for one (its card's ``factor``), else 8.
    members : int or sequence of int, default 10
        Number of members, or the indices of the members to generate: member ``k``
        gets the same noise whether generated alone or with others (equal to float
        rounding, ~1e-6 relative: convolution sums depend on the batch size).
    model : str, path or Downscaler, optional
        A pretrained name, a baseline (``"bilinear"``, ``"rainfarm"``...), a path
        to a saved model, or a model object. None picks the pretrained model whose
        units and standard_name fit ``da`` (see :func:`xstochsr.list_models`).
    seed : int, optional
        Makes the output bit-identical on the same machine. None draws one, stored
        in the output's ``xstochsr_seed`` attribute so the run can be repeated.
    time_chunk : int, optional
        Frames per chunk (the recurrent state is carried across chunks, so results
        do not depend on it). Default: the input's dask chunks, else 16.
    batch_size : int, optional
        Sequences x members per model call; bounds memory. Default: sized to ~1 GiB.
    device : str, default "cpu"
        Torch device for network models, e.g. ``"cuda"``.
    target_grid : Dataset or DataArray, optional
        Regrid the ensemble onto this grid (see :func:`xstochsr.regrid.regrid`).
    regrid_method : str, optional
        Method for ``target_grid`` (default: conservative for fluxes, else bilinear).
    regrid_input : bool, default False
        First regrid ``da`` conservatively onto the model's native coarse spacing.
    conserve : bool, optional
        Make every fine ``factor x factor`` block average exactly to its coarse cell
        (see :func:`conserve_means`): multiplicative for rain-like transforms, additive
        otherwise. Default: on for generator models (the GAN of Leinonen et al. ties
        nothing to the coarse means), off for baselines. Recorded in ``history``.
    progress : bool, optional
        Show a progress bar (default: in Jupyter or a terminal, for eager input).

    Returns
    -------
    xarray.DataArray
        Dims ``("realization", *da.dims)`` on the fine grid; same name, attrs, units
        and non-spatial coords as ``da``; ``history`` gains a line. Lazy (dask) if
        ``da`` is dask-backed.

    Raises
    ------
    MissingAxisError, IrregularCoordinateError, DomainTooSmallError, MissingUnitsError,
    UnitsError, UnsupportedFactorError, UnknownModelError, InvalidInputError

    Examples
    --------
    >>> import xstochsr  # doctest: +SKIP
    >>> ens = coarse.sr.downscale(factor=8, members=10, seed=1)  # doctest: +SKIP
    >>> ens.dims  # doctest: +SKIP
    ('realization', 'time', 'y', 'x')
    """
    if not isinstance(da, xr.DataArray):
        raise InvalidInputError(
            f"downscale needs an xarray.DataArray, got {type(da).__name__}. "
            "Pick a variable first: ds['precip'].sr.downscale(...)."
        )
    if factor is None:
        from .models.registry import load_model

        if model is not None:
            model = load_model(model)  # once: _resolve_model passes model objects through
        factor = (model.card.factor if model is not None else None) or 8
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 2:
        raise InvalidInputError(f"factor must be an integer >= 2, got {factor!r}.")
    factor = int(factor)
    if REALIZATION in da.dims:
        raise InvalidInputError(
            f"The input already has a {REALIZATION!r} dimension. Downscale one member at a "
            f"time or rename it: da.rename({{{REALIZATION!r}: 'source_member'}})."
        )
    member_ids = _resolve_members(members)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    seed = int(seed)

    model_obj, picked = _resolve_model(model, da, factor)
    model_obj.check_factor(factor)
    axes = _grid.find_axes(da)
    _grid.check_regular(da, axes, min_size=model_obj.min_size)
    if regrid_input or model_obj.card.native_grid_spacing:
        da = _native_spacing(da, model_obj, regrid_input)
        axes = _grid.find_axes(da)

    model_units = model_obj.card.units
    src_units = da.attrs.get("units")
    if model_units:
        _units.to_units(da.isel({d: slice(0, 0) for d in da.dims}), model_units,
                        expected=_expected(model_obj))  # raises early on bad units
    plan = _Plan(model_obj, factor, seed, src_units if model_units else None, model_units,
                 device, _conserve_mode(model_obj, conserve))

    # Arrange as (sequences, time, y, x)
    other = [d for d in da.dims if d not in (axes.t, axes.y, axes.x)]
    work = da.transpose(*other, *([axes.t] if axes.t else []), axes.y, axes.x)
    if axes.t is None:
        work = work.expand_dims("__time__", axis=len(other))
    nseq = int(np.prod([da.sizes[d] for d in other])) if other else 1
    nt, ny, nx = work.shape[-3:]
    data = work.data.reshape(nseq, nt, ny, nx)
    lazy = _is_dask(data)

    segments = _segments(da, axes.t)
    tchunk = time_chunk or (_first_chunk(da, axes.t) if lazy and axes.t else DEFAULT_TIME_CHUNK)
    bsize = batch_size or _auto_batch(model_obj, ny, nx, factor)
    jobs = _jobs(member_ids, nseq, bsize)

    if lazy:
        out = _lazy(plan, data, jobs, segments, tchunk, (ny, nx))
    else:
        show = _in_notebook_or_tty() if progress is None else progress
        out = _eager(plan, np.asarray(data), jobs, segments, tchunk, (ny, nx), show)

    fine = out.reshape(len(member_ids), *[da.sizes[d] for d in other], nt, ny * factor,
                       nx * factor)
    if axes.t is None:
        fine = fine[..., 0, :, :]
    result = _wrap(da, fine, axes, other, member_ids, factor, model_obj, seed, picked,
                   plan.conserve)
    if target_grid is not None:
        from .regrid import regrid

        result = regrid(result, target_grid, method=regrid_method)
    return result


def _expected(model: Downscaler) -> str:
    c = model.card
    what = c.standard_name or c.variable
    return f"{what} in {c.units!r} ({_units.describe(c.units)})"


def _native_spacing(da: xr.DataArray, model: Downscaler, regrid_input: bool) -> xr.DataArray:
    """Warn on (or fix, with ``regrid_input``) a grid spacing unlike the model's."""
    spacing = model.card.native_grid_spacing
    if not spacing:
        return da
    import warnings

    from . import regrid as rg

    with warnings.catch_warnings():
        if regrid_input:  # we fix it, so no warning
            warnings.simplefilter("ignore", rg.GridSpacingWarning)
        same = rg.check_spacing(da, spacing["value"], spacing["units"])
    if regrid_input and not same:
        target = rg.native_grid(da, spacing["value"], spacing["units"])
        return rg.regrid(da, target, method="conservative")
    return da


def _is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask")


def _first_chunk(da: xr.DataArray, t: str) -> int:
    chunks = da.chunksizes.get(t) if da.chunks else None
    return int(chunks[0]) if chunks else DEFAULT_TIME_CHUNK


def _jobs(member_ids: list[int], nseq: int, bsize: int) -> list[tuple[list[int], int, int]]:
    """Split members x sequences into calls of at most ``bsize`` sequences x members."""
    per_member_group = max(1, min(len(member_ids), bsize))
    seq_per_call = max(1, bsize // per_member_group)
    jobs = []
    for i in range(0, len(member_ids), per_member_group):
        for b0 in range(0, nseq, seq_per_call):
            jobs.append((member_ids[i : i + per_member_group], b0, min(nseq, b0 + seq_per_call)))
    return jobs


def _time_chunks(segments, tchunk):
    for s0, s1 in segments:
        for t0 in range(s0, s1, tchunk):
            yield t0, min(s1, t0 + tchunk), t0 == s0


def _eager(plan, data, jobs, segments, tchunk, shape, show) -> np.ndarray:
    from tqdm.auto import tqdm

    ny, nx = shape
    f = plan.factor
    nm = sum(len(m) for m, b0, b1 in jobs if b0 == 0)
    out = np.empty((nm, data.shape[0], data.shape[1], ny * f, nx * f), dtype=np.float32)
    steps = list(_time_chunks(segments, tchunk))
    bar = tqdm(total=len(jobs) * len(steps), desc=f"downscale x{f}", unit="chunk",
               disable=not show, leave=False)
    offsets = {}
    with bar:
        for mids, b0, b1 in jobs:
            m0 = offsets.setdefault(tuple(mids), sum(len(k) for k in offsets))
            state = None
            for t0, t1, fresh in steps:
                if fresh:
                    state = None
                y, state = _run_chunk(plan, data[b0:b1, t0:t1], mids, t0, b0, state)
                out[m0 : m0 + len(mids), b0:b1, t0:t1] = y
                bar.update()
    return out


def _lazy(plan, data, jobs, segments, tchunk, shape):
    """Build the ensemble as a dask array: one delayed task per chunk, state chained."""
    import dask
    import dask.array as dsa

    ny, nx = shape
    f = plan.factor
    run = dask.delayed(_run_chunk, nout=2, pure=False)
    groups: dict[tuple, list] = {}
    for mids, b0, b1 in jobs:
        pieces, state = [], None
        for t0, t1, fresh in _time_chunks(segments, tchunk):
            if fresh:
                state = None
            y, state = run(plan, data[b0:b1, t0:t1], mids, t0, b0, state)
            pieces.append(dsa.from_delayed(y, (len(mids), b1 - b0, t1 - t0, ny * f, nx * f),
                                           dtype=np.float32))
        groups.setdefault(tuple(mids), []).append(dsa.concatenate(pieces, axis=2))
    return dsa.concatenate([dsa.concatenate(v, axis=1) for v in groups.values()], axis=0)


def _conserve_mode(model: Downscaler, conserve: bool | None) -> str | None:
    if conserve is None:  # a constraint layer already conserves: no post-hoc rescaling
        conserve = (model.card.kind == "generator"
                    and not (model.card.architecture or {}).get("constraint"))
    if not conserve:
        return None
    rain_like = model.card.transform.get("kind") in ("log_rain", "log_threshold")
    return "multiplicative" if rain_like else "additive"


def _wrap(da, fine, axes, other, member_ids, factor, model, seed, picked,
          conserve=None) -> xr.DataArray:
    """Put the fine array into a DataArray with exact coordinates and kept metadata."""
    dims = [REALIZATION, *other, *([axes.t] if axes.t else []), axes.y, axes.x]
    coords: dict[str, Any] = {}
    for name, c in da.coords.items():
        if not set(c.dims) & {axes.x, axes.y}:
            coords[name] = c
    coords.update(_grid.fine_coords(da, axes, factor))
    coords[REALIZATION] = xr.DataArray(
        np.asarray(member_ids, dtype=np.int32), dims=REALIZATION,
        attrs={"standard_name": "realization", "long_name": "ensemble member", "units": "1"},
    )
    attrs = dict(da.attrs)
    note = (f"downscaled by {factor} with model {model.name!r} ({model.card.kind}), "
            f"{len(member_ids)} member(s), seed {seed}")
    if conserve:
        note += f"; coarse means conserved ({conserve})"
    if picked:
        note += f"; model {picked}"
    attrs["history"] = _history(da, note)
    attrs["xstochsr_model"] = model.name
    attrs["xstochsr_seed"] = seed
    attrs["xstochsr_factor"] = factor
    out = xr.DataArray(fine, dims=dims, coords=coords, name=da.name, attrs=attrs)
    return out.transpose(REALIZATION, *da.dims)
