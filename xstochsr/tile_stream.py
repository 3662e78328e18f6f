"""Stream a domain too big for memory into zarr: one task per (member block, tile), frame by frame.

``downscale`` in tiles (:mod:`xstochsr.tiling`) bounds the network's working set, but its
output and the GRU state it carries still cover the whole domain: at 2048 x 2048 coarse
cells and factor 8, one member's frame is 1 GiB of output and ``rain-x8``'s state (132
coarse channels) another 2.2 GiB. :func:`write` runs such a call with one tile in memory
per task, for :func:`xstochsr.streaming.downscale_to_zarr` when the call needs tiles:

- **output**: each task writes its tile's core straight into the zarr store, which is
  chunked by core (one member, one frame, ``tile * factor`` fine cells a side), so every
  task writes whole chunks of its own;
- **state**: the GRU state lives in a zarr store beside the output
  (``<store>.xstochsr-states/gru.zarr``), two buffers per member block: frame ``t``
  reads buffer ``(t - 1) % 2`` on the tile's extent (core and halo) and writes buffer
  ``t % 2`` on its core. A tile sees the untiled state at every frame, as in
  :func:`xstochsr.tiling.run_steps`, so the result equals the untiled run to float
  rounding however long the sequence, with no state held in memory between frames;
- **tasks**: frames run in order; the tasks of one frame, one per (member block,
  sequence batch, tile), are independent and run on the active dask scheduler: threads
  in this process, or the workers of a ``distributed.Client`` (the store must then be on
  storage they all reach). A single member of a single huge domain keeps every worker busy;
- **same bits**: each task is :func:`xstochsr.tiling.step`, as in memory and in the lazy
  output's graph, so the store holds what ``downscale`` returns for the same tiles.

Resume: each finished frame is recorded in the store (``xstochsr_done_regions``, one
``[t, t + 1]`` per frame) after all its tasks; a rerun starts at the first unfinished
frame from the state buffer of the one before (or from the start of that segment when
the states are gone). The tile layout is recorded in the store (``xstochsr_tiles``) and
reused on resume, whatever memory the machine has then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError

__all__ = ["TILES_ATTR", "TileWriter", "check_supported", "run_tile", "write"]

#: Store attribute recording the tile layout: ``{"tile": coarse cells, "halo": cells}``.
TILES_ATTR = "xstochsr_tiles"


def check_supported(prep, target_grid: Any = None) -> None:
    """Refuse what the tile-by-tile writer cannot do, naming the fix."""
    if target_grid is not None:
        raise InvalidInputError(
            "target_grid= regrids the whole ensemble, which does not fit in memory when the "
            "domain is written tile by tile. Write the store without target_grid, then "
            "regrid from it lazily: xstochsr.regrid.regrid(xr.open_zarr(store)[name], grid).")
    if prep.req.wrapped is not None:
        raise InvalidInputError(
            "The domain crosses the longitude wrap (e.g. 350..360, 0..10 degrees east); the "
            "tile-by-tile writer needs longitudes in one increasing run. Roll the input "
            "first: da.assign_coords(lon=(da.lon + 180) % 360 - 180).sortby('lon').")


@dataclass(frozen=True)
class TileWriter:
    """What every task of one store needs besides its own inputs (sent once per frame).

    ``plan`` is the chunk workers' plan (:class:`xstochsr.api._Plan`); ``out`` the zarr
    array of the ensemble; ``states`` the folder of the state store; ``dims`` the
    array's dims; ``realization``, ``other``, ``t``, ``y``, ``x`` the names of its roles;
    ``other_sizes`` the sizes of the batched dims; ``hours`` the accumulation period
    multiplied back in (None for a rate).
    """

    plan: Any
    out: str
    states: str
    dims: tuple[str, ...]
    realization: str
    other: tuple[str, ...]
    other_sizes: tuple[int, ...]
    t: str | None
    y: str
    x: str
    hours: float | None = None

    def state_path(self, job: int) -> str:
        """Return the zarr array of member block ``job``'s state: ``(2, rows, C, H, W)``."""
        return str(Path(self.states) / "gru.zarr" / f"job{job}")

    def index(self, m0: int, nm: int, b: int, t: int, ys: slice, xs: slice):
        """Index the store at members ``m0:m0+nm`` of sequence ``b``, frame ``t``, a core.

        Returns
        -------
        (tuple, list of str)
            The index in the array's dim order, and the order of the dims it leaves.
        """
        where: dict[str, Any] = {self.realization: slice(m0, m0 + nm), self.y: ys, self.x: xs}
        if self.other:
            where.update(zip(self.other,
                             (int(i) for i in np.unravel_index(b, self.other_sizes)),
                             strict=True))
        if self.t is not None:
            where[self.t] = int(t)
        idx = tuple(where[d] for d in self.dims)
        left = [d for d in self.dims if isinstance(where[d], slice)]
        return idx, left


def _open(path: str, mode: str = "r+"):
    import zarr

    return zarr.open_array(path, mode=mode)


def run_tile(w: TileWriter, job: int, members: list[int], m0: int, b0: int, t: int,
             fresh: bool, core: tuple[int, int, int, int], extent: tuple[int, int, int, int],
             x: np.ndarray, invalid: np.ndarray) -> None:
    """One task: frame ``t`` of one member block and sequence batch on one tile.

    Parameters
    ----------
    w : TileWriter
    job, members, m0, b0
        The member block (its index, member ids, position of the first in the store) and
        the first sequence of the batch.
    t : int
        Global frame.
    fresh : bool
        The first frame of a segment: the GRU starts from noise, no state is read.
    core, extent : (y0, y1, x0, x1)
        Coarse cells of the tile's core and of what it computes.
    x : ndarray (B, 1, eH, eW), float32
        The frame on ``extent``, model units, NaN filled (:func:`xstochsr.api.prepare_input`).
    invalid : ndarray of bool, same shape
        Where the input was NaN.
    """
    import torch

    from .tiling import step

    plan, f = w.plan, int(w.plan.factor)
    (ey0, ey1, ex0, ex1), (cy0, cy1, cx0, cx1) = extent, core
    states = _open(w.state_path(job))
    h = None
    if not fresh:
        h = torch.from_numpy(np.ascontiguousarray(
            states[(t - 1) % 2, :, :, ey0:ey1, ex0:ex1])).to(plan.device)
    y, h = step(plan, x, invalid, members=members, t=t, b0=b0, state=h, core=core,
                extent=extent)
    states[t % 2, :, :, cy0:cy1, cx0:cx1] = h.float().cpu().numpy()
    part = y[:, :, 0]
    if w.hours is not None:
        part = part * np.float32(w.hours)
    out = _open(w.out)
    ys, xs = slice(cy0 * f, cy1 * f), slice(cx0 * f, cx1 * f)
    order = {w.realization: 0, w.y: 1, w.x: 2}
    for k in range(part.shape[1]):
        idx, left = w.index(m0, part.shape[0], b0 + k, t, ys, xs)
        out[idx] = np.ascontiguousarray(part[:, k].transpose([order[d] for d in left]))


def _state_arrays(w: TileWriter, jobs, shape, channels: int, tile: int, fresh: bool) -> bool:
    """Create (or check) each member block's state array; False when any was (re)made."""
    import zarr

    ny, nx = shape
    kept = not fresh
    root = Path(w.states) / "gru.zarr"
    for j, (mids, b0, b1) in enumerate(jobs):
        want = (2, len(mids) * (b1 - b0), channels, ny, nx)
        try:
            ok = kept and tuple(_open(w.state_path(j), "r").shape) == want
        except Exception:  # missing or unreadable: start the segment again
            ok = False
        if not ok:
            root.mkdir(parents=True, exist_ok=True)
            zarr.open_array(w.state_path(j), mode="w", shape=want, dtype="float32",
                            chunks=(1, want[1], channels, tile, tile))
            kept = False
    return kept


def write(prep, w: TileWriter, tiles, *, done: set[tuple[int, int]],
          mark, progress: bool) -> None:
    """Run every frame not in ``done`` tile by tile into ``w.out``; ``mark(t)`` after each.

    Parameters
    ----------
    prep : xstochsr.api.Prepared
    w : TileWriter
    tiles : TilePlan
        The call's layout (``prep.plan.tiles``: aligned cores, the store's chunks).
    done : set of (t, t + 1)
        Frames already written and recorded.
    mark : callable
        Called with ``t`` once every task of frame ``t`` has finished.
    progress : bool
        A progress bar over tasks.
    """
    import dask
    from tqdm.auto import tqdm

    from .api import member_offsets, prepare_input, segment_starts

    layout, plan = prep.layout, w.plan
    nt = layout.data.shape[1]
    seg_start = segment_starts(layout.segments)
    start = next((t for t in range(nt) if (t, t + 1) not in done), nt)
    if start == nt:
        return
    cfg = plan.model.generator.config
    kept = _state_arrays(w, layout.jobs, layout.shape, cfg.state_channels, tiles.tile,
                         fresh=start == seg_start[start])
    if not kept and start != seg_start[start]:
        start = seg_start[start]  # the states are gone: run this segment again
        _state_arrays(w, layout.jobs, layout.shape, cfg.state_channels, tiles.tile, True)
    wins = tiles.windows()
    offsets = member_offsets(layout.jobs)
    total = (nt - start) * len(layout.jobs) * len(wins)
    run = dask.delayed(run_tile, pure=False)
    with tqdm(total=total, desc=f"downscale x{plan.factor} tiles", unit="tile",
              disable=not progress, leave=False) as bar:
        for t in range(start, nt):
            frame = np.asarray(layout.data[:, t : t + 1])  # (sequences, 1, H, W)
            filled, invalid = prepare_input(plan, frame)
            ctx = dask.delayed(w, name=f"xstochsr-tiles-{uuid.uuid4().hex}")
            tasks = []
            for j, (mids, b0, b1) in enumerate(layout.jobs):
                for win in wins:
                    ey0, ey1, ex0, ex1 = win.extent
                    tasks.append(run(ctx, j, mids, offsets[tuple(mids)], b0, t,
                                     t == seg_start[t], win.core, win.extent,
                                     filled[b0:b1, :, ey0:ey1, ex0:ex1],
                                     invalid[b0:b1, :, ey0:ey1, ex0:ex1]))
            dask.compute(*tasks)
            mark(t)
            bar.update(len(tasks))
