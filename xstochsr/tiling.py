"""Tiled inference: a domain of any size in overlapping spatial tiles, within a memory budget.

:func:`plan` decides whether a generator needs tiles for a domain (its working set per
model call, :func:`working_set`, against ``memory_limit``) and lays them out
(:class:`TilePlan`); :func:`step` runs one frame of one tile; :func:`run_steps` runs a
time chunk tile by tile in memory. ``downscale`` on dask input builds one task per
(member block, sequence batch, tile) and frame from :func:`step`
(:func:`xstochsr.api._lazy_tiles`), and a zarr store is written the same way
(:mod:`xstochsr.tile_stream`), so all three give the same bits.

Layout. The domain is cut into *cores* of ``tile`` coarse cells per side, starting at
multiples of ``tile`` (the last may be smaller), so that they fall on whole chunks of an
array chunked by ``tile``. Each tile computes its core grown by ``halo`` cells on every
side that borders another tile (not at the domain's edge, where the untiled run sees the
same reflection padding). ``halo`` is the generator's spatial receptive field per frame
(:func:`receptive_field`, from the config, constraint layer included: the smooth and
spreading layers iterate over neighbours and reach 13-19 cells further than the network),
so a tile's output on its core is the untiled output to float rounding, and a tile keeps
only its core: there is nothing to blend, and for a constraint-layer model each core's
block means are exact by themselves. (:class:`TilePlan` can also blend overlaps with a
raised-cosine ``ramp``, for layouts whose halo is too short; ``plan`` does not use it.)

Time. Every tile of a frame reads the GRU state of the previous frame on its extent and
writes the new state of its core. So the state a tile sees is the untiled one, halo
included, at every frame, and a tiled run equals the untiled run however long the
sequence (carrying a separate state per tile instead would let the error at a tile's cut
edge creep inwards by the GRU's reach, two cells, every frame). In memory
(:func:`run_steps`) the state is one array of the whole domain; in a dask graph each
tile's task takes its neighbours' state cores; in a zarr store it lives on disk.

Noise is keyed by global coarse cell (:func:`xstochsr.models.noise.cell_noise`), so a
member is the same field whatever the tiling. ``conserve=``, the NaN mask and units are
applied per tile on its extent (:func:`xstochsr.api.finish_output`), before its core is
kept. Baselines are not tiled: they are cheap and RainFARM's spectral fit is global.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import TilingError

__all__ = ["TilePlan", "Window", "constraint_reach", "receptive_field", "working_set", "plan",
           "run_steps", "run_tiled", "step", "describe", "tile_borders"]

#: Coarse cells of raised-cosine blending on each side of a core border, for a
#: :class:`TilePlan` made by hand (:func:`plan` uses 0: its halos make blending needless).
RAMP = 1
#: Smallest core (coarse cells per side) :func:`plan` will choose from a memory budget.
MIN_TILE = 4


def receptive_field(config) -> int:
    """Coarse cells per frame over which a generator's output depends on its input.

    Counted from the config, per scale, for the per-frame path with the state of the
    previous frame given (as :func:`run_tiled` gives it):

    * state: the frame stem (one 3x3 conv), two per encoder block, and the GRU (gates
      then candidate: two); or, on a segment's first frame, the init stem, two per init
      block, then the GRU's two on that state;
    * decoder: a residual block at the coarse scale (two), then per doubling ``k`` a
      bilinear x2 (one pixel of the coarser scale, ``2**-(k-1)`` cells) and a residual
      block (two pixels of ``2**-k`` cells), and the 3x3 head at the fine scale;
    * the constraint layer (:func:`constraint_reach`).

    Parameters
    ----------
    config : GeneratorConfig

    Returns
    -------
    int, rounded up
    """
    state = max(1 + 2 * config.encoder_blocks, 1 + 2 * config.init_blocks) + 2
    n = config.n_doublings
    decoder = 2 + sum(2.0 ** -(k - 1) + 2 * 2.0**-k for k in range(1, n + 1)) + 2.0**-n
    return int(math.ceil(constraint_reach(config, state + decoder)))


def constraint_reach(config, inner: float) -> float:
    """Coarse cells the output depends on after the constraint layer, ``inner`` before it.

    The layers of :mod:`xstochsr.models.constraints` reach past their block:

    * ``"bilinear"`` prior of the multiplicative layer (:func:`~.constraints.log_prior`):
      one cell per refinement (a bilinear interpolation) and one for the last, on the
      coarse input alone: ``max(inner, PRIOR_ITERATIONS + 1)``;
    * ``"smooth"`` (:func:`~.constraints.smooth_weights`, then
      :func:`~.constraints.smooth_rescale`): the weights are taken relative to a bilinear
      interpolation of block maxima (one cell more than the logits or the prior), then
      each refinement and the final field add two (a 3 x 3 maximum and a bilinear
      interpolation): ``max(inner, PRIOR_ITERATIONS + 1) + 1 + 2 * (RESCALE_ITERATIONS + 1)``;
    * ``"bilinear"`` prior of the additive layer (:func:`~.constraints.smooth_spread`):
      one cell per Jacobi sweep and one for the bilinear interpolation:
      ``inner + SPREAD_SWEEPS + 1``;
    * no prior (a per-block softmax or shift) and ``dry_out``: nothing.
    """
    from .models import constraints as C

    kind, prior = config.constraint, config.constraint_prior
    if not kind or prior is None:
        return inner
    if kind == "additive":
        return inner + C.SPREAD_SWEEPS + 1
    weights = max(inner, C.PRIOR_ITERATIONS + 1)
    if prior == "bilinear":
        return weights
    return weights + 1 + 2 * (C.RESCALE_ITERATIONS + 1)


def working_set(config, ny: int, nx: int) -> int:
    """Bytes one sequence x member of a model call needs on a ``ny x nx`` coarse window.

    ``fine cells * 4 bytes * (3 * (w[-2] + w[-1]) + 12) + coarse cells * 4 * 10 * width``
    with ``w`` the upsampling widths (the last residual block at the fine scale holds its
    input, two activations and a shortcut; the coarse stream about ten ``width``-channel
    tensors). Calibrated on ``rain-x8`` (width 48, widths 48-24-12), float32, 1 thread:
    the peak RSS of ``GANModel.run`` above the loaded model was 34, 120 and 477 MB for
    32, 64 and 128 coarse cells per side with one member and 241 MB at 64 with two, i.e.
    119 fine-resolution float32 channels per sequence x member; this formula gives 127.
    """
    widths = [config.width, *config.upsample_widths]
    f2 = config.factor**2
    fine = ny * nx * f2 * 4 * (3 * (widths[-2] + widths[-1]) + 12)
    return int(fine + ny * nx * 4 * 10 * config.width)


@dataclass(frozen=True)
class Window:
    """One tile: its core and the extent it computes, in global coarse cells ``[0, 1)``."""

    core: tuple[int, int, int, int]  # y0, y1, x0, x1
    extent: tuple[int, int, int, int]


@dataclass(frozen=True)
class TilePlan:
    """How a ``shape`` coarse domain is cut into tiles.

    Cores of at most ``tile`` cells per side, each grown by ``halo + ramp`` on the sides
    that border another tile. Near-equal cores by default; ``aligned`` cores start at
    multiples of ``tile`` (the last may be smaller), so that they fall on whole chunks of
    a store chunked by ``tile`` (:mod:`xstochsr.tile_stream`).
    """

    shape: tuple[int, int]
    tile: int
    halo: int
    ramp: int = RAMP
    aligned: bool = False

    def _cores(self, n: int) -> list[tuple[int, int]]:
        if self.aligned:
            edges = np.array([*range(0, n, self.tile), n])
            return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
        k = -(-n // self.tile)
        edges = np.linspace(0, n, k + 1).round().astype(int)
        return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))

    def _grow(self, a: int, b: int, n: int) -> tuple[int, int]:
        g = self.halo + self.ramp
        return max(0, a - g), min(n, b + g)

    def windows(self) -> list[Window]:
        """Every tile, row by row."""
        ny, nx = self.shape
        out = []
        for y0, y1 in self._cores(ny):
            for x0, x1 in self._cores(nx):
                out.append(Window((y0, y1, x0, x1), (*self._grow(y0, y1, ny),
                                                     *self._grow(x0, x1, nx))))
        return out

    def weights(self, core: tuple[int, int], extent: tuple[int, int], n: int,
                factor: int) -> np.ndarray:
        """1-D blending weights over the fine cells of ``extent`` along one axis.

        One inside the core, raised-cosine ramps of ``2 * ramp`` coarse cells centred on
        each core border that meets another tile (a step there when ``ramp`` is 0), zero
        beyond; the weights of neighbouring tiles sum to one.
        """
        s = np.arange(extent[0] * factor, extent[1] * factor, dtype=np.float64) + 0.5
        w = np.ones_like(s)
        for c, rising in ((core[0], True), (core[1], False)):
            if c in (0, n):
                continue
            if self.ramp == 0:
                up = (s >= c * factor).astype(np.float64)
            else:
                u = np.clip((s - (c - self.ramp) * factor) / (2 * self.ramp * factor), 0, 1)
                up = 0.5 - 0.5 * np.cos(np.pi * u)
            w *= up if rising else 1.0 - up
        return w.astype(np.float32)


def _config(model):
    gen = getattr(model, "generator", None)
    return None if gen is None else gen.config


def plan(model, shape: tuple[int, int], *, batch: int, memory_limit: int,
         tile: int | None = None) -> tuple[TilePlan | None, int]:
    """Decide tiling and the sequences x members per call for one domain.

    Parameters
    ----------
    model : Downscaler
        Only generators are tiled (baselines return ``(None, batch)``).
    shape : (int, int)
        Coarse domain ``(H, W)``.
    batch : int
        Sequences x members per call the caller would use untiled.
    memory_limit : int
        Bytes a model call may use (:func:`xstochsr.validation.check_memory_limit`).
    tile : int, optional
        Force cores of this many coarse cells per side.

    Returns
    -------
    (TilePlan or None, int)
        The layout (None: the whole domain in one piece): aligned cores, no ramp; from a
        memory budget, the fewest tiles whose largest fits, as equal as alignment allows.
        And the batch, lowered so that a call fits ``memory_limit`` where one sequence x
        member does.

    Raises
    ------
    TilingError
        ``tile`` covers the whole domain, the halo makes every tile the whole domain, or
        ``memory_limit`` is too small for one sequence on a :data:`MIN_TILE` tile.
    """
    cfg = _config(model)
    ny, nx = shape
    if cfg is None:
        return None, batch
    halo = receptive_field(cfg)
    if tile is not None:
        if tile >= max(ny, nx):
            raise TilingError(
                f"tile={tile} covers the whole {ny} x {nx} coarse domain, so there is "
                f"nothing to tile. Pass tile < {max(ny, nx)}, or tile=None to tile only "
                "when memory_limit asks for it."
            )
        tp = TilePlan(shape, tile, halo, 0, aligned=True)
        _check_halo(tp)
        per_call = working_set(cfg, *_largest_extent(tp))
        return tp, max(1, min(batch, memory_limit // per_call))
    whole = working_set(cfg, ny, nx)
    if whole <= memory_limit:
        return None, max(1, min(batch, memory_limit // whole))
    batch = 1
    best = None
    lo, hi = 1, max(ny, nx) - 1
    while lo <= hi:  # largest core whose biggest tile fits
        mid = (lo + hi) // 2
        if working_set(cfg, *_largest_extent(TilePlan(shape, mid, halo, 0, aligned=True))) \
                <= memory_limit:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    if best is None or best < min(MIN_TILE, ny, nx):
        need = working_set(cfg, *_largest_extent(TilePlan(shape, MIN_TILE, halo, 0,
                                                          aligned=True)))
        raise TilingError(
            f"memory_limit={memory_limit / 2**20:.3g} MiB is too small for one tile: a "
            f"{MIN_TILE}-cell tile with its {halo}-cell halo needs about "
            f"{need / 2**20:.3g} MiB per sequence and member with model "
            f"{model.name!r}. Raise memory_limit to at least "
            f"'{math.ceil(need / 2**20)}MiB'."
        )
    # as many tiles per side as the largest fitting core needs, as equal as they can be
    side = max(-(-n // -(-n // best)) for n in (ny, nx))
    tp = TilePlan(shape, side, halo, 0, aligned=True)
    _check_halo(tp)
    return tp, batch


def _largest_extent(tp: TilePlan) -> tuple[int, int]:
    wins = tp.windows()
    return (max(w.extent[1] - w.extent[0] for w in wins),
            max(w.extent[3] - w.extent[2] for w in wins))


def _check_halo(tp: TilePlan) -> None:
    """Refuse a layout whose every tile, grown by its halo, is the whole domain."""
    ny, nx = tp.shape
    wins = tp.windows()
    if len(wins) > 1 and all(w.extent == (0, ny, 0, nx) for w in wins):
        raise TilingError(
            f"With a halo of {tp.halo} coarse cells (the generator's receptive field) and "
            f"tile={tp.tile}, every tile of the {ny} x {nx} domain is the whole domain. "
            + (f"Pass a tile of at most {most} cells, or tile=None: a domain this small "
               "needs no tiles." if (most := max(ny, nx) - (tp.halo if tp.aligned else
                                                             2 * (tp.halo + tp.ramp)) - 1) >= 1
               else "Pass tile=None: a domain this small needs no tiles (it fits in one).")
        )


def step(plan, x: np.ndarray, invalid: np.ndarray, *, members, t: int, b0: int, state: Any,
         core: tuple[int, int, int, int], extent: tuple[int, int, int, int]):
    """One frame of one tile: the model on the extent, finished, its core kept.

    The unit every tiled path is made of (in memory, in a dask graph, into zarr), so they
    agree bit for bit.

    Parameters
    ----------
    plan : xstochsr.api._Plan
        The call's plan (model, factor, seed, units, conservation, device, threads).
    x : ndarray (B, 1, eH, eW), float32
        The frame on ``extent``: model units, NaN filled (:func:`xstochsr.api.prepare_input`).
    invalid : ndarray of bool (B, 1, eH, eW)
        Where the input was NaN.
    members : list of int
    t : int
        Global frame (keys the noise).
    b0 : int
        First sequence of the batch (keys the noise).
    state : Tensor (M*B, C, eH, eW) or None
        The previous frame's GRU state on ``extent``; None on a segment's first frame.
    core, extent : (y0, y1, x0, x1)
        Global coarse cells of the core and of what is computed.

    Returns
    -------
    y : ndarray (M, B, 1, cH*f, cW*f), float32
        The core in user units: checked, conserved, masked (:func:`xstochsr.api.finish_output`).
    state : Tensor (M*B, C, cH, cW)
        The new GRU state of the core.
    """
    from . import parallel as _parallel
    from .api import finish_output

    f = int(plan.factor)
    (ey0, _, ex0, _), (cy0, cy1, cx0, cx1) = extent, core
    with _parallel.torch_threads(plan.threads):
        y, h = plan.model.run(x, factor=f, members=members, seed=plan.seed, t0=t,
                              batch_offset=b0, state=state, device=plan.device,
                              origin=(ey0, ex0))
    y = finish_output(plan, y, x, invalid)
    ry, rx = slice((cy0 - ey0) * f, (cy1 - ey0) * f), slice((cx0 - ex0) * f, (cx1 - ex0) * f)
    return (np.ascontiguousarray(y[:, :, :, ry, rx]),
            h[:, :, cy0 - ey0 : cy1 - ey0, cx0 - ex0 : cx1 - ex0])


def run_steps(plan, x: np.ndarray, invalid: np.ndarray, *, members, t0: int, b0: int,
              state: Any) -> tuple[np.ndarray, Any]:
    """Run a time chunk in memory, frame by frame and tile by tile (:func:`step`).

    Parameters
    ----------
    plan : xstochsr.api._Plan
        With ``plan.tiles``.
    x, invalid : ndarray (B, T, H, W)
        The whole domain (:func:`xstochsr.api.prepare_input`).
    members, t0, b0
        As :func:`step` (``t0``: the chunk's first frame).
    state : Tensor (M*B, C, H, W) or None
        The whole domain's GRU state after the previous chunk.

    Returns
    -------
    y : ndarray (M, B, T, H*f, W*f), float32, user units
    state : Tensor (M*B, C, H, W)
    """
    nb, nt, ny, nx = x.shape
    f = int(plan.factor)
    out = np.empty((len(members), nb, nt, ny * f, nx * f), dtype=np.float32)
    for i in range(nt):
        new = None
        for w in plan.tiles.windows():
            (ey0, ey1, ex0, ex1), (cy0, cy1, cx0, cx1) = w.extent, w.core
            h = None if state is None else state[:, :, ey0:ey1, ex0:ex1].contiguous()
            y, h = step(plan, x[:, i : i + 1, ey0:ey1, ex0:ex1],
                        invalid[:, i : i + 1, ey0:ey1, ex0:ex1], members=members, t=t0 + i,
                        b0=b0, state=h, core=w.core, extent=w.extent)
            if new is None:
                new = h.new_empty((*h.shape[:2], ny, nx))
            new[:, :, cy0:cy1, cx0:cx1] = h
            out[:, :, i, cy0 * f : cy1 * f, cx0 * f : cx1 * f] = y[:, :, 0]
        state = new
    return out, state


def run_tiled(model, x: np.ndarray, tiles: TilePlan, *, factor: int, members, seed: int,
              t0: int = 0, batch_offset: int = 0, state: Any = None,
              device: str = "cpu") -> tuple[np.ndarray, Any]:
    """Run a generator tile by tile on one time chunk, blending; same contract as ``model.run``.

    For layouts with a blending ``ramp`` (or a halo too short, to show what it costs);
    ``downscale`` runs :func:`plan`'s layouts through :func:`run_steps` instead.

    Parameters
    ----------
    model : GANModel
    x : ndarray (B, T, H, W), float32
        The whole domain, model units, finite.
    tiles : TilePlan
        For ``(H, W)``.
    factor, members, seed, t0, batch_offset, device
        As :meth:`xstochsr.models.base.Downscaler.run`.
    state : Tensor (M*B, width, H, W), optional
        The whole domain's GRU state after the previous chunk.

    Returns
    -------
    y : ndarray (M, B, T, H*f, W*f), float32
        Blended; block means restored exactly for a constraint layer.
    state : Tensor (M*B, width, H, W)
    """
    nb, nt, ny, nx = x.shape
    f, nm = int(factor), len(members)
    wins = tiles.windows()
    wy = [tiles.weights(w.core[:2], w.extent[:2], ny, f) for w in wins]
    wx = [tiles.weights(w.core[2:], w.extent[2:], nx, f) for w in wins]
    sy, sx = np.zeros(ny * f, np.float32), np.zeros(nx * f, np.float32)
    for w, a, b in zip(wins, wy, wx, strict=True):  # sums over the tiles of one row/column
        if w.core[2] == 0:
            sy[w.extent[0] * f : w.extent[1] * f] += a
        if w.core[0] == 0:
            sx[w.extent[2] * f : w.extent[3] * f] += b
    out = np.zeros((nm, nb, nt, ny * f, nx * f), dtype=np.float32)
    for i in range(nt):
        new_state = None
        for w, a, b in zip(wins, wy, wx, strict=True):
            ey0, ey1, ex0, ex1 = w.extent
            cy0, cy1, cx0, cx1 = w.core
            h = None if state is None else state[:, :, ey0:ey1, ex0:ex1]
            y, h = model.run(x[:, i : i + 1, ey0:ey1, ex0:ex1], factor=f, members=members,
                             seed=seed, t0=t0 + i, batch_offset=batch_offset, state=h,
                             device=device, origin=(ey0, ex0))
            if new_state is None:
                new_state = h.new_empty((*h.shape[:2], ny, nx))
            new_state[:, :, cy0:cy1, cx0:cx1] = h[:, :, cy0 - ey0 : cy1 - ey0,
                                                  cx0 - ex0 : cx1 - ex0]
            out[:, :, i, ey0 * f : ey1 * f, ex0 * f : ex1 * f] += (
                y[:, :, 0] * a[:, None] * b[None, :])
        state = new_state
    out /= sy[:, None]
    out /= sx[None, :]
    kind = model.generator.config.constraint
    if kind and tiles.ramp:  # blended cells mix tiles; cores alone keep their block means
        from .api import conserve_means

        out = conserve_means(out, x, f, kind)
    return out, state


def describe(tiles: TilePlan) -> str:
    """Describe a layout as JSON, ``{"tile": core side, "halo": cells}`` (coarse cells).

    Written to the ``xstochsr_tiles`` attribute of a tiled ``downscale`` result and of a
    store written tile by tile; ``tile`` is what :func:`tile_borders` takes.
    """
    import json

    return json.dumps({"tile": int(tiles.tile), "halo": int(tiles.halo)})


def tile_borders(shape: tuple[int, int], tile: int, factor: int) -> tuple[list[int], list[int]]:
    """Fine-cell indices along (y, x) where the cores of ``tile``-cell tiles meet.

    For :func:`xstochsr.metrics.seam_score` on a tiled ``downscale`` result of a ``shape``
    coarse domain (``tile``: its ``xstochsr_tiles`` attribute's): each index is the
    first fine cell after a border.
    """
    tp = TilePlan(tuple(shape), int(tile), 0, 0, aligned=True)  # as plan() lays them out
    return ([a * factor for a, _ in tp._cores(shape[0])[1:]],
            [a * factor for a, _ in tp._cores(shape[1])[1:]])
