"""``downscale``: from a coarse DataArray to an ensemble of fine DataArrays.

The recipe is four steps, each a function here: :func:`_validate` (every input rule, from
:mod:`xstochsr.validation`; model choice from :mod:`xstochsr.model_choice`), :func:`_plan`
(units, conservation, chunks), :func:`_run` (eager or lazy) and :func:`_wrap` (exact fine
coordinates, attrs, history). In data terms::

    DataArray --validation: values, grid, time, settings--> X, Y, T found and checked
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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from . import accumulation as _accumulation
from . import grid as _grid
from . import longitude as _longitude
from . import parallel as _parallel
from . import precision as _precision
from . import resume as _resume
from . import static as _static
from . import tiling as _tiling
from . import training_range as _training_range
from . import units as _units
from . import validation as _check
from .errors import InvalidInputError
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
    nonnegative: bool = False  # refuse negative input (precipitation, speeds)
    name: str | None = None  # the field's name, for messages
    tiles: Any = None  # tiling.TilePlan when the domain is run in tiles
    threads: int | None = None  # torch threads per chunk (parallel.torch_threads)
    checkpoint: Any = None  # resume.Checkpoint while streaming.to_zarr builds the graph


@dataclass(frozen=True)
class _Request:
    """The checked inputs of one ``downscale`` call (what :func:`_validate` returns)."""

    da: xr.DataArray
    axes: _grid.Axes
    model: Downscaler
    factor: int
    member_ids: list[int]
    seed: int
    picked: str | None
    time_chunk: int | None
    batch_size: int | None
    device: str
    time_steps: np.ndarray | None
    nonnegative: bool
    wrapped: Any = None  # longitude.unwrap's record, undone on output
    memory_limit: int = 0  # bytes a model call may use (tiling.plan)
    tile: int | None = None  # forced tile side, coarse cells


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
        Checked already (:func:`xstochsr.validation.check_values`): no infinities.

    Returns
    -------
    filled : ndarray (B, T, H, W), finite
    invalid : ndarray of bool (B, T, H, W), where ``x`` was NaN
    """
    from scipy import ndimage

    invalid = ~np.isfinite(x)
    if not invalid.any():
        return x, invalid
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
    cp, t1 = plan.checkpoint, t0 + x.shape[1]
    if cp is not None:  # a resumed stream: chunks already written give their saved state
        f = plan.factor
        hit = cp.skip(members, b0, t0, t1, (len(members), *x.shape[:2], x.shape[2] * f,
                                            x.shape[3] * f), plan.device)
        if hit is not None:
            return hit
    with _parallel.torch_threads(plan.threads):  # same count in process and on workers
        y, state = _run_chunk_body(plan, x, members, t0, b0, state)
    if cp is not None:
        cp.save(members, b0, t1, state)
    return y, state


def _run_chunk_body(plan, x, members, t0, b0, state):
    filled, invalid = prepare_input(plan, x)
    if plan.tiles is not None:
        return _tiling.run_steps(plan, filled, invalid, members=members, t0=t0, b0=b0,
                                 state=state)
    y, state = plan.model.run(filled, factor=plan.factor, members=members, seed=plan.seed,
                              t0=t0, batch_offset=b0, state=state, device=plan.device)
    return finish_output(plan, y, filled, invalid), state


def prepare_input(plan: _Plan, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """User units to the model's, checked, NaN filled: ``(B, T, H, W)`` twice.

    Returns
    -------
    filled : ndarray (B, T, H, W), float32, model units, finite
    invalid : ndarray of bool (B, T, H, W), the NaN mask to restore on output
    """
    x = np.asarray(x, dtype=np.float32)
    if plan.model_units and plan.src_units:
        x = _units.convert(x, plan.src_units, plan.model_units).astype(np.float32, copy=False)
    _check.check_values(x, nonnegative=plan.nonnegative, what="The field", name=plan.name)
    return _fill_nan(x)


def finish_output(plan: _Plan, y: np.ndarray, filled: np.ndarray,
                  invalid: np.ndarray) -> np.ndarray:
    """Check, conserve and mask the model's output ``(M, B, T, fH, fW)``; back to user units.

    ``filled`` and ``invalid`` are :func:`prepare_input`'s, on the same cells as ``y``.
    Each step reaches one coarse cell at most (the bilinear fill of empty blocks), so a
    tile's output finished on its extent equals the whole domain's on its core.
    """
    _check.check_model_output(y, plan.model.name)
    if plan.conserve:
        y = conserve_means(y, filled, plan.factor, plan.conserve)
    if invalid.any():
        f = plan.factor
        fine_bad = np.repeat(np.repeat(invalid, f, axis=-2), f, axis=-1)
        y = np.where(fine_bad[None], np.float32(np.nan), y)
    if plan.model_units and plan.src_units:
        y = _units.convert(y, plan.model_units, plan.src_units).astype(np.float32, copy=False)
    return y


def _segments(n: int, steps: np.ndarray | None) -> list[tuple[int, int]]:
    """Split ``n`` frames at gaps (a step over 1.5x the median): ``[(start, stop), ...]``.

    ``steps`` are the checked time steps (:func:`xstochsr.validation.check_time`), None
    without a time coordinate. The GRU state is re-initialised at the start of each
    segment, as the paper does.
    """
    if steps is None or steps.size < 2:
        return [(0, n)]
    breaks = np.flatnonzero(steps > 1.5 * np.median(steps)) + 1
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


def _resolve_model(model, da: xr.DataArray, factor: int) -> tuple[Downscaler, str | None]:
    from .model_choice import choose_model
    from .models.registry import load_model

    if model is None:
        name, reason = choose_model(da.attrs.get("units"), da.attrs.get("standard_name"),
                                    da.name, factor)
        return load_model(name), reason
    return load_model(model), None


def _history(da: xr.DataArray, text: str) -> str:
    from ._version import __version__

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
    memory_limit: int | str | None = None,
    tile: int | None = None,
    static: Any = None,
    precision: str = "auto",
    variables: Sequence[str] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Downscale a coarse field into an ensemble of fine, temporally consistent fields.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        Coarse field with X and Y axes that cf-xarray can find (any dim names), an
        optional time axis, and any other dims (levels, forecast leads), which are
        batched over. Needs a ``units`` attribute when the model has units. NaN cells
        (e.g. outside radar range) stay NaN in the fine cells under them. A Dataset
        gives a Dataset of ensembles (:func:`xstochsr.joint.downscale_dataset`): a
        model trained on several variables (wind components) downscales them jointly.
    factor : int, optional
        Refinement factor along X and Y. Default: the factor of ``model`` when it was
        built for one (its card's ``factor``), else 8.
    members : int or sequence of int, default 10
        Number of members, or the indices of the members to generate: member ``k``
        gets the same noise whether generated alone or with others (equal to float
        rounding, ~1e-6 relative: convolution sums depend on the batch size).
    model : str, path or Downscaler, optional
        A pretrained name, a baseline (``"bilinear"``, ``"rainfarm"``...), a path
        to a saved model, or a model object. None picks the one pretrained model whose
        units and standard_name fit ``da`` — without a standard_name, its units and
        variable name (``"precip"``, ``"pr"``, ``"u10"``...) — and raises, listing the
        candidates, when none or several fit (:mod:`xstochsr.model_choice`). The choice
        is logged (logger ``"xstochsr"``) and written to ``history``.
    seed : int, optional
        A whole number >= 0; makes the output bit-identical on the same machine. None
        draws one, stored in the output's ``xstochsr_seed`` attribute so the run can be
        repeated.
    time_chunk : int, optional
        Frames per chunk, a whole number >= 1 (the recurrent state is carried across
        chunks, so results do not depend on it). Default: the input's dask chunks, else 16.
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
    memory_limit : int or str, optional
        Bytes one model call may use (``4_000_000_000``, ``"4GB"``, ``"512MiB"``);
        default a quarter of this machine's memory. A generator whose working set on the
        whole domain is larger runs in overlapping spatial tiles (:mod:`xstochsr.tiling`):
        each computes its core plus a halo of the receptive field and keeps the core,
        taking its neighbours' GRU state every frame, noise keyed by global coarse cell,
        so the result equals the untiled run to float rounding and block means are
        conserved exactly. Dask input then gives one task per (member block, sequence
        batch, tile) and frame, the output chunked by tile core and frame. Baselines are
        not tiled.
    tile : int, optional
        Force tile cores of this many coarse cells per side (a whole number >= 1,
        smaller than the domain; the last core of a row or column may be smaller).
    static : DataArray or Dataset, optional
        Static fine-resolution predictors (surface altitude...) for a model trained with
        them (its card's ``static``): matched by standard_name, regridded onto the exact
        fine grid of the output when given on another grid, converted to the card's
        units; required by such models, refused by others (:mod:`xstochsr.static`).
        Slopes a card lists (``terrain_slope_x``, ``terrain_slope_y``) are derived from
        the given surface altitude when not given (:func:`xstochsr.static.terrain_slopes`).
    precision : {"auto", "float32", "bfloat16"}, default "auto"
        Arithmetic of the network: ``"auto"`` is bfloat16 (autocast) only where the
        device has native bfloat16 (CUDA >= 8.0, CPUs with AVX512-BF16 or AMX) *and* the
        model's card records that bfloat16 kept its CRPS within 1 % of float32's; float32
        otherwise (:mod:`xstochsr.precision`). Written to ``xstochsr_precision``.
    variables : sequence of str, optional
        Only for a Dataset: the variables to downscale (default: a several-variable
        model's own, found by name or standard_name; else the Dataset's one field).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Dims ``("realization", *da.dims)`` on the fine grid; same name, attrs, units
        and non-spatial coords as ``da``; ``history`` gains a line. Lazy (dask) if
        ``da`` is dask-backed. A Dataset for a Dataset: one such ensemble per variable.

    Raises
    ------
    MissingAxisError, IrregularCoordinateError, DomainTooSmallError, MissingUnitsError,
    UnitsError, UnsupportedFactorError, UnknownModelError, InvalidInputError, TilingError
        Every input is checked first (:mod:`xstochsr.validation`): values finite (NaN is
        a mask) and non-negative for precipitation and speeds, grid coordinates (1-D
        lon/lat beside the dims too) monotonic and regular, time (datetime64 or cftime)
        increasing without duplicates, settings in range, the device present.
    ModelError
        The model returned NaN or infinite values from finite input.

    Examples
    --------
    >>> import xstochsr  # doctest: +SKIP
    >>> ens = coarse.sr.downscale(factor=8, members=10, seed=1)  # doctest: +SKIP
    >>> ens.dims  # doctest: +SKIP
    ('realization', 'time', 'y', 'x')
    """
    kw = dict(model=model, seed=seed, time_chunk=time_chunk, batch_size=batch_size,
              device=device, target_grid=target_grid, regrid_method=regrid_method,
              regrid_input=regrid_input, conserve=conserve, progress=progress,
              memory_limit=memory_limit, tile=tile, static=static, precision=precision)
    if isinstance(da, xr.Dataset):
        from .joint import downscale_dataset

        return downscale_dataset(da, factor, members, variables=variables, **kw)
    if variables is not None:
        raise InvalidInputError(
            "variables= picks variables of a Dataset; this is a DataArray. Pass the Dataset "
            "(xstochsr.downscale(ds, variables=[...])) or drop variables=.")
    return _downscale_array(da, factor, members, **kw)


def _downscale_array(da, factor=None, members=10, *, model=None, seed=None, time_chunk=None,
                     batch_size=None, device="cpu", target_grid=None, regrid_method=None,
                     regrid_input=False, conserve=None, progress=None, memory_limit=None,
                     tile=None, static=None, precision="auto", channel_dim=None):
    """:func:`downscale` of one DataArray; ``channel_dim`` stacks a joint model's variables.

    ``channel_dim`` (set by :mod:`xstochsr.joint` only) is the dimension holding a
    several-variable model's inputs in its channel order, the last of the batched dims.
    """
    prep = prepare_array(da, factor, members, model=model, seed=seed, time_chunk=time_chunk,
                         batch_size=batch_size, device=device, regrid_input=regrid_input,
                         conserve=conserve, memory_limit=memory_limit, tile=tile,
                         static=static, precision=precision, channel_dim=channel_dim)
    out = _run(prep.plan, prep.layout, progress)
    return _finish_array(prep, out, target_grid, regrid_method)


def _finish_array(prep: Prepared, out, target_grid=None, regrid_method=None) -> xr.DataArray:
    """Wrap ``_run``'s array as ``downscale``'s DataArray: coords, attrs, units, regrid."""
    req, plan, layout, used, accumulated = prep
    result = _wrap(layout.da, out, layout.axes, layout.other, req.member_ids, req.factor,
                   req.model, req.seed, req.picked, plan.conserve)
    if getattr(req.model, "generator", None) is not None:
        result.attrs["xstochsr_precision"] = used
    if plan.tiles is not None:  # for tiling.tile_borders and seam_score
        result.attrs["xstochsr_tiles"] = _tiling.describe(plan.tiles)
    result = _accumulation.from_rate(_longitude.rewrap(result, req.wrapped), accumulated)
    if target_grid is not None:
        from .regrid import regrid

        result = regrid(result, target_grid, method=regrid_method)
    return result


def ensemble_template(prep: Prepared) -> xr.DataArray:
    """Build the DataArray ``downscale`` gives for ``prep``, lazy and never to be computed.

    Coordinates, dims, name and attrs are the real ones; the values are one uninitialised
    dask chunk, so a store's metadata can be written without a task graph of the run.
    """
    import dask.array as dsa

    layout, f = prep.layout, prep.plan.factor
    ny, nx = layout.shape
    shape = (layout.n_members, *[layout.da.sizes[d] for d in layout.other],
             layout.data.shape[1], ny * f, nx * f)
    out = dsa.empty(shape, dtype=np.float32, chunks=shape)
    if layout.axes.t is None:
        out = out[..., 0, :, :]
    return _finish_array(prep, out)


@dataclass(frozen=True)
class Prepared:
    """One checked and planned ``downscale`` call of a DataArray, before any work.

    What :func:`prepare_array` returns: the request, the chunk workers' plan, the layout
    of the data, the precision used and the accumulation undone on output.
    """

    req: _Request
    plan: _Plan
    layout: _Layout
    precision: str
    accumulated: Any

    def __iter__(self):
        return iter((self.req, self.plan, self.layout, self.precision, self.accumulated))


def prepare_array(da, factor=None, members=10, *, model=None, seed=None, time_chunk=None,
                  batch_size=None, device="cpu", regrid_input=False, conserve=None,
                  memory_limit=None, tile=None, static=None, precision="auto",
                  channel_dim=None) -> Prepared:
    """Check, plan and bind everything of :func:`downscale` on a DataArray; run nothing.

    Arguments as :func:`downscale`'s. :mod:`xstochsr.tile_stream` runs the plan tile by
    tile instead of chunk by chunk.
    """
    _check.check_dataarray(da, "downscale")
    da, accumulated = _accumulation.to_rate(da)  # ERA5 tp (m, time: sum) -> m h-1; undone later
    req = _validate(da, factor, members, model, seed, time_chunk, batch_size, device,
                    memory_limit=memory_limit, tile=tile)
    nch = _joint_channels(req.model, da, channel_dim)
    plan, layout = _plan(req, conserve, regrid_input, group=nch)
    plan = _static.attach(plan, layout, static)  # the model bound to its static fields
    plan, used = _precision.attach(plan, precision)
    if nch > 1:  # rows of one variable each <-> the network's channels
        from .joint import Interleaved

        plan = replace(plan, model=Interleaved(plan.model, nch,
                                               len(req.model.card.channels or []) or 1))
    return Prepared(req, plan, layout, used, accumulated)


def _joint_channels(model: Downscaler, da: xr.DataArray, channel_dim: str | None) -> int:
    """Variables a model takes at once (1 for most), checked against ``da``'s layout."""
    channels = model.card.channels or []
    if not channels:
        if channel_dim is not None:
            raise InvalidInputError(f"Model {model.name!r} downscales one variable at a time.")
        return 1
    names = [c["name"] for c in model.card.inputs]
    if channel_dim is None:
        raise InvalidInputError(
            f"Model {model.name!r} downscales {names} together; pass a Dataset that holds "
            f"them: xstochsr.downscale(ds, model={model.name!r}) or "
            f"ds.sr.downscale(model={model.name!r}).")
    if da.sizes.get(channel_dim) != len(names):
        raise InvalidInputError(f"Model {model.name!r} needs {len(names)} variables {names}.")
    return len(names)


def _validate(da, factor, members, model, seed, time_chunk, batch_size, device, *,
              memory_limit=None, tile=None) -> _Request:
    """Check every input (:mod:`xstochsr.validation`) and pick the model; no work yet."""
    _check.check_dataarray(da, "downscale")
    if REALIZATION in da.dims:
        raise InvalidInputError(
            f"The input already has a {REALIZATION!r} dimension. Downscale one member at a "
            f"time or rename it: da.rename({{{REALIZATION!r}: 'source_member'}})."
        )
    _check.check_dtype(da)
    member_ids = _check.check_members(members)
    seed = _check.check_seed(seed)
    time_chunk = _check.check_time_chunk(time_chunk)
    batch_size = _check.check_int(batch_size, "batch_size", minimum=1, allow_none=True,
                                  example="batch_size=8")
    device = _check.check_device(device)
    memory_limit = _check.check_memory_limit(memory_limit)
    tile = _check.check_tile(tile)
    if model is not None:
        _check.check_model_ref(model)
    if factor is None:
        from .models.registry import load_model

        if model is not None:
            model = load_model(model)  # once: _resolve_model passes model objects through
        factor = (model.card.factor if model is not None else None) or 8
    factor = _check.check_factor(factor)

    model_obj, picked = _resolve_model(model, da, factor)
    model_obj.check_factor(factor)
    axes = _grid.find_axes(da)
    da, wrapped = _longitude.unwrap(da, axes.x)  # 350..360,0..6 -> 350..366 (undone on output)
    _check.check_grid(da, axes, min_size=model_obj.min_size)
    steps = _check.check_time(da, axes.t)
    nonneg = _check.is_nonnegative(da, model_obj.card.transform.get("kind"))
    if not _is_dask(da.data):  # dask input is checked chunk by chunk as it runs
        _check.check_values(da.values, nonnegative=nonneg, what="The field", name=da.name)
    if model_obj.card.units:
        _units.to_units(da.isel({d: slice(0, 0) for d in da.dims}), model_obj.card.units,
                        expected=_expected(model_obj))  # raises early on bad units
    return _Request(da, axes, model_obj, factor, member_ids, seed, picked, time_chunk,
                    batch_size, device, steps, nonneg, wrapped, memory_limit, tile)


@dataclass(frozen=True)
class _Layout:
    """How the field is arranged for the model: ``data`` is (sequences, time, y, x)."""

    da: xr.DataArray
    axes: _grid.Axes
    other: list
    data: Any
    lazy: bool
    jobs: list
    segments: list
    tchunk: int
    shape: tuple[int, int]
    n_members: int


def _plan(req: _Request, conserve: bool | None, regrid_input: bool,
          group: int = 1) -> tuple[_Plan, _Layout]:
    """Units, conservation, sequences, time chunks and batches of one call.

    ``group``: rows that must stay in one model call (a joint model's variables).
    """
    da, axes, model_obj, factor = req.da, req.axes, req.model, req.factor
    if regrid_input or model_obj.card.native_grid_spacing:
        da = _native_spacing(da, model_obj, regrid_input)
        axes = _grid.find_axes(da)
    model_units = model_obj.card.units
    src_units = da.attrs.get("units")
    _training_range.check(da, model_obj.card, t=axes.t,
                          src_units=src_units if model_units else None)  # warns with numbers
    plan = _Plan(model_obj, factor, req.seed, src_units if model_units else None, model_units,
                 req.device, _conserve_mode(model_obj, conserve, req.nonnegative),
                 req.nonnegative, None if da.name is None else str(da.name))

    # Arrange as (sequences, time, y, x)
    other = [d for d in da.dims if d not in (axes.t, axes.y, axes.x)]
    work = da.transpose(*other, *([axes.t] if axes.t else []), axes.y, axes.x)
    if axes.t is None:
        work = work.expand_dims("__time__", axis=len(other))
    nseq = int(np.prod([da.sizes[d] for d in other])) if other else 1
    nt, ny, nx = work.shape[-3:]
    data = work.data.reshape(nseq, nt, ny, nx)
    lazy = _is_dask(data)
    _check.check_output_size(len(req.member_ids) * nseq * nt * ny * nx * factor**2 * 4,
                             lazy=lazy)
    steps = req.time_steps if axes.t is not None else None
    segments = _segments(nt, steps)
    tchunk = req.time_chunk or (_first_chunk(da, axes.t) if lazy and axes.t
                                else DEFAULT_TIME_CHUNK)
    bsize = req.batch_size or _auto_batch(model_obj, ny, nx, factor)
    tiles, bsize = _tiling.plan(model_obj, (ny, nx), batch=bsize,
                                memory_limit=req.memory_limit, tile=req.tile)
    plan = replace(plan, tiles=tiles, threads=_parallel.configured_threads(),
                   checkpoint=_resume.current())
    jobs = _jobs(req.member_ids, nseq, bsize, group)
    layout = _Layout(da, axes, other, data, lazy, jobs, segments, tchunk, (ny, nx),
                     len(req.member_ids))
    return plan, layout


def _run(plan: _Plan, layout: _Layout, progress: bool | None):
    """Run the model over every chunk: (members, *other, [time], fY, fX), eager or dask."""
    da, axes, f = layout.da, layout.axes, plan.factor
    ny, nx = layout.shape
    if layout.lazy:
        out = _lazy(plan, layout.data, layout.jobs, layout.segments, layout.tchunk, (ny, nx))
    else:
        show = _in_notebook_or_tty() if progress is None else progress
        out = _eager(plan, np.asarray(layout.data), layout.jobs, layout.segments,
                     layout.tchunk, (ny, nx), show)
    nt = layout.data.shape[1]
    fine = out.reshape(layout.n_members, *[da.sizes[d] for d in layout.other], nt, ny * f,
                       nx * f)
    if axes.t is None:
        fine = fine[..., 0, :, :]
    return fine


def _expected(model: Downscaler) -> str:
    c = model.card
    what = c.standard_name or c.variable
    return f"{what} in {c.units!r} ({_units.describe(c.units)})"


def _native_spacing(da: xr.DataArray, model: Downscaler, regrid_input: bool) -> xr.DataArray:
    """Warn on (or fix, with ``regrid_input``) a grid spacing unlike the model's."""
    spacing = model.card.native_grid_spacing
    if not spacing or not spacing.get("units"):  # cards from before units were required
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


def _jobs(member_ids: list[int], nseq: int, bsize: int,
          group: int = 1) -> list[tuple[list[int], int, int]]:
    """Split members x sequences into calls of at most ``bsize`` sequences x members.

    Rows go in whole groups of ``group`` (a joint model's variables of one sequence), so a call
    may exceed ``bsize`` when a group alone does.
    """
    per_member_group = max(1, min(len(member_ids), bsize // group))
    seq_per_call = max(group, bsize // per_member_group // group * group)
    jobs = []
    for i in range(0, len(member_ids), per_member_group):
        for b0 in range(0, nseq, seq_per_call):
            jobs.append((member_ids[i : i + per_member_group], b0, min(nseq, b0 + seq_per_call)))
    return jobs


def _time_chunks(segments, tchunk):
    for s0, s1 in segments:
        for t0 in range(s0, s1, tchunk):
            yield t0, min(s1, t0 + tchunk), t0 == s0


def member_offsets(jobs) -> dict[tuple, int]:
    """Position in the output of each member block's first member (jobs of ``_jobs``)."""
    offsets: dict[tuple, int] = {}
    for mids, _, _ in jobs:
        offsets.setdefault(tuple(mids), sum(len(k) for k in offsets))
    return offsets


def segment_starts(segments) -> dict[int, int]:
    """Map each frame to the first frame of its segment (where the GRU state starts afresh)."""
    return {t: s0 for s0, s1 in segments for t in range(s0, s1)}


def _eager(plan, data, jobs, segments, tchunk, shape, show) -> np.ndarray:
    from tqdm.auto import tqdm

    ny, nx = shape
    f = plan.factor
    nm = sum(len(m) for m, b0, b1 in jobs if b0 == 0)
    out = np.empty((nm, data.shape[0], data.shape[1], ny * f, nx * f), dtype=np.float32)
    steps = list(_time_chunks(segments, tchunk))
    bar = tqdm(total=len(jobs) * len(steps), desc=f"downscale x{f}", unit="chunk",
               disable=not show, leave=False)
    offsets = member_offsets(jobs)
    with bar:
        for mids, b0, b1 in jobs:
            m0 = offsets[tuple(mids)]
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
    import uuid

    if plan.tiles is not None:
        return _lazy_tiles(plan, data, jobs, segments, shape)

    import dask
    import dask.array as dsa

    ny, nx = shape
    f = plan.factor
    run = dask.delayed(_run_chunk, nout=2, pure=False)
    plan = dask.delayed(plan, name=f"xstochsr-plan-{uuid.uuid4().hex}")  # one copy, not one a task
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


def _tile_task(plan, filled, invalid, members, t, b0, core, extent, neighbours):
    """One (member block, sequence batch, tile, frame) task of :func:`_lazy_tiles`.

    ``filled``/``invalid`` are the whole prepared frame ``(B, 1, H, W)``; ``neighbours``
    is None on a segment's first frame, else ``[(state core, core window), ...]`` of the
    previous frame's tiles whose cores meet ``extent`` (they cover it).
    """
    ey0, ey1, ex0, ex1 = extent
    h = None
    if neighbours is not None:
        first = neighbours[0][0]
        h = first.new_empty((*first.shape[:2], ey1 - ey0, ex1 - ex0))
        for hs, (cy0, cy1, cx0, cx1) in neighbours:
            y0, y1, x0, x1 = max(cy0, ey0), min(cy1, ey1), max(cx0, ex0), min(cx1, ex1)
            h[:, :, y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0] = hs[
                :, :, y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
        h = h.to(plan.device)
    y, h = _tiling.step(plan, filled[:, :, ey0:ey1, ex0:ex1], invalid[:, :, ey0:ey1, ex0:ex1],
                        members=members, t=t, b0=b0, state=h, core=core, extent=extent)
    return y, h.cpu().contiguous()


def _lazy_tiles(plan, data, jobs, segments, shape):
    """Build the ensemble of a tiled domain as a dask array chunked by tile core and frame.

    One task per (member block, sequence batch, tile) and frame (:func:`_tile_task`):
    it takes the previous frame's state cores of the tiles its extent reaches, so time
    runs in order while the tiles of a frame, and the chains of different member
    blocks, run in parallel; nothing of the whole domain is one task's. A per-frame
    task prepares the coarse frame (units, NaN fill) for its tiles.
    """
    import uuid

    import dask
    import dask.array as dsa

    f = plan.factor
    nt = data.shape[1]
    wins = plan.tiles.windows()
    ncols = len({w.core[2:] for w in wins})
    reach = [[j for j, v in enumerate(wins)
              if v.core[0] < w.extent[1] and w.extent[0] < v.core[1]
              and v.core[2] < w.extent[3] and w.extent[2] < v.core[3]] for w in wins]
    start = segment_starts(segments)
    prepare = dask.delayed(prepare_input, nout=2, pure=False)
    task = dask.delayed(_tile_task, nout=2, pure=False)
    plan_key = dask.delayed(plan, name=f"xstochsr-plan-{uuid.uuid4().hex}")
    groups: dict[tuple, list] = {}
    for mids, b0, b1 in jobs:
        frames, states = [], None
        for t in range(nt):
            filled, invalid = prepare(plan_key, data[b0:b1, t : t + 1])
            fresh = start[t] == t
            new, cores = [], []
            for k, w in enumerate(wins):
                nbrs = None if fresh else [(states[j], wins[j].core) for j in reach[k]]
                y, h = task(plan_key, filled, invalid, mids, t, b0, w.core, w.extent, nbrs)
                new.append(h)
                cy0, cy1, cx0, cx1 = w.core
                cores.append(dsa.from_delayed(
                    y, (len(mids), b1 - b0, 1, (cy1 - cy0) * f, (cx1 - cx0) * f),
                    dtype=np.float32))
            states = new
            frames.append(dsa.block([cores[i : i + ncols]
                                     for i in range(0, len(cores), ncols)]))
        groups.setdefault(tuple(mids), []).append(dsa.concatenate(frames, axis=2))
    return dsa.concatenate([dsa.concatenate(v, axis=1) for v in groups.values()], axis=0)


def _conserve_mode(model: Downscaler, conserve: bool | None,
                   nonnegative: bool = False) -> str | None:
    """Multiplicative for rain-like transforms and non-negative fields, else additive.

    Additive conservation on rain (``model="bilinear", conserve=True``) would shift dry
    cells below zero; scaling keeps zeros and signs.
    """
    if conserve is None:  # a constraint layer already conserves: no post-hoc rescaling
        conserve = (model.card.kind == "generator"
                    and not (model.card.architecture or {}).get("constraint"))
    if not conserve:
        return None
    rain_like = model.card.transform.get("kind") in ("log_rain", "log_threshold")
    return "multiplicative" if rain_like or nonnegative else "additive"


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
    from .cf_output import keep_grid_mapping  # grid_mapping may sit in da.encoding

    return keep_grid_mapping(da, out.transpose(REALIZATION, *da.dims))
