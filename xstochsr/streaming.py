"""Stream an ensemble to a zarr store region by region, resumable after an interruption.

``ens.to_zarr(store)`` works on ``downscale``'s lazy output as on any dask-backed
DataArray; it is all or nothing. :func:`downscale_to_zarr` (and ``xstochsr downscale
in.nc out.zarr``) writes one time chunk of the output at a time, with a progress bar, and
records each finished region in the store's attributes:

- ``xstochsr_status``: ``"incomplete"`` until the last region is written, then
  ``"complete"`` (the consolidated metadata says the same, so a reader of a store left
  half-written is told so);
- ``xstochsr_done_regions``: ``[[t0, t1], ...]`` frames written;
- ``xstochsr_settings``: the run's settings and layout, as JSON.

Rerunning the same call computes only the missing regions: the GRU states after every
chunk are kept beside the store (``<store>.xstochsr-states``, safetensors, see
:mod:`xstochsr.resume`) so no finished chunk is run again, and they are removed once the
store is complete. A store made by other settings, of another layout, or not by xstochsr
is refused (:class:`~xstochsr.errors.StoreMismatchError`): pass ``overwrite=True``
(``--overwrite``) or another path.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import StoreMismatchError, missing_dependency
from .tile_stream import TILES_ATTR

__all__ = ["DONE_ATTR", "SETTINGS_ATTR", "STATUS_ATTR", "downscale_to_zarr", "store_record"]

STATUS_ATTR = "xstochsr_status"
DONE_ATTR = "xstochsr_done_regions"
SETTINGS_ATTR = "xstochsr_settings"
#: Keyword arguments of ``downscale`` that do not change the values written.
_NEUTRAL = {"progress", "device"}


def _zarr():
    try:
        import zarr
    except ImportError as err:
        raise missing_dependency("zarr", "zarr", "Writing zarr stores") from err
    return zarr


def store_record(store: str | Path) -> dict[str, Any] | None:
    """Read the xstochsr record of an existing store: status, done regions, settings, tiles.

    Returns
    -------
    dict or None
        ``status``, ``done``, ``settings`` and ``tiles`` (the layout of a store written
        tile by tile, :data:`xstochsr.tile_stream.TILES_ATTR`, else None); None when
        nothing exists at ``store``.

    Raises
    ------
    StoreMismatchError
        Something exists there that is not a zarr store written by xstochsr.
    """
    path = Path(store)
    if not path.exists():
        return None
    zarr = _zarr()
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as err:  # not a zarr group at all
        raise StoreMismatchError(
            f"{str(path)!r} exists and is not a zarr store ({err}). Choose another path, or "
            f"pass overwrite=True to replace it."
        ) from err
    if SETTINGS_ATTR not in attrs:
        raise StoreMismatchError(
            f"The zarr store {str(path)!r} was not written by xstochsr's streaming writer. "
            f"Choose another path, or pass overwrite=True to replace it."
        )
    tiles = attrs.get(TILES_ATTR)
    return {"status": attrs.get(STATUS_ATTR), "done": [tuple(r) for r in attrs[DONE_ATTR]],
            "settings": json.loads(attrs[SETTINGS_ATTR]),
            "tiles": None if tiles is None else json.loads(tiles)}


def _describe(value: Any) -> Any:
    """Describe one ``downscale`` argument as JSON (objects by name and size)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple, range)):
        return [_describe(v) for v in value]
    if isinstance(value, (xr.DataArray, xr.Dataset)):
        return {"type": type(value).__name__, "sizes": {str(k): int(v)
                                                         for k, v in value.sizes.items()}}
    name = getattr(value, "name", None)
    return {"type": type(value).__name__, "name": str(name)}


def _settings(da: xr.DataArray, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {k: _describe(v) for k, v in sorted(kwargs.items()) if k not in _NEUTRAL}
    out["input"] = {"name": None if da.name is None else str(da.name),
                    "sizes": {str(k): int(v) for k, v in da.sizes.items()},
                    "units": da.attrs.get("units")}
    return out


def _check_same(path: Path, old: dict, new: dict) -> None:
    keys = sorted(set(old) | set(new))
    diff = [f"{k}: store {old.get(k)!r}, now {new.get(k)!r}" for k in keys
            if old.get(k) != new.get(k)]
    if diff:
        raise StoreMismatchError(
            f"The zarr store {str(path)!r} holds a run with other settings or another "
            f"layout ({'; '.join(diff)}). Pass overwrite=True (--overwrite) to replace it, "
            f"or write to another path."
        )


def _regions(ds: xr.Dataset, name: str, t: str | None) -> list[tuple[int, int]]:
    """Time chunks of the lazy output: the same chunks its tasks compute."""
    if t is None or t not in ds[name].dims:
        return [(0, 1)]
    chunks = ds[name].chunksizes.get(t) or (ds.sizes[t],)
    edges = np.cumsum((0, *chunks)).tolist()
    return list(zip(edges[:-1], edges[1:], strict=True))


@contextlib.contextmanager
def _quiet():
    """Silence zarr 3's note that consolidated metadata is outside its v3 spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not")
        yield


def _mark(path: Path, **attrs: Any) -> None:
    zarr = _zarr()
    with _quiet():
        zarr.open_group(str(path), mode="r+").attrs.update(attrs)
        zarr.consolidate_metadata(str(path))


def downscale_to_zarr(da: xr.DataArray, store: str | Path, *, overwrite: bool = False,
                      progress: bool | None = None, attrs: dict[str, Any] | None = None,
                      **kwargs: Any) -> Path:
    """Downscale ``da`` into a zarr store, one time chunk at a time, resumable.

    Parameters
    ----------
    da : xarray.DataArray
        The coarse field (eager input is chunked along time by ``time_chunk``, default
        16 frames).
    store : str or Path
        Directory of the zarr store.
    overwrite : bool, default False
        Replace whatever exists at ``store``. Without it an unfinished store written with
        the same settings is resumed, a finished one is left as it is, and any other is
        refused.
    progress : bool, optional
        A progress bar over regions (default: in Jupyter or a terminal).
    attrs : dict, optional
        Global attributes to start from (the input file's), as in
        :func:`xstochsr.cf_output.to_cf_dataset`.
    **kwargs
        :func:`xstochsr.downscale` arguments. ``seed=None`` draws a seed for a new store
        and reuses the recorded one when resuming.

    Returns
    -------
    Path
        The store; its ``xstochsr_status`` attribute is ``"complete"``.

    Raises
    ------
    StoreMismatchError
        ``store`` exists with other settings or layout, or is not an xstochsr store.

    Examples
    --------
    >>> downscale_to_zarr(da, "ens.zarr", model="rain-x8", members=10)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from . import resume
    from . import validation as check
    from .api import DEFAULT_TIME_CHUNK, _in_notebook_or_tty, downscale, ensemble_template
    from .cf_output import to_cf_dataset
    from .grid import find_axes

    path = Path(store)
    states = path.with_name(path.name + ".xstochsr-states")
    if overwrite:
        for p in (path, states):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    record = store_record(path)
    seed = kwargs.pop("seed", None)
    if seed is None and record is not None:
        seed = record["settings"].get("seed")
    kwargs["seed"] = check.check_seed(seed)
    settings = _settings(da, kwargs)
    if record is not None:
        _check_same(path, record["settings"], settings)
        if record["status"] == "complete":
            return path
    done = set(record["done"]) if record else set()
    if record is None and states.is_dir():
        shutil.rmtree(states)  # left by a store deleted by hand: its marks are not ours
    checkpoint = resume.Checkpoint(str(states))

    t = find_axes(da).t
    if t is not None and da.chunks is None:
        da = da.chunk({t: kwargs.get("time_chunk") or DEFAULT_TIME_CHUNK})
    prep = _tiled(da, kwargs, record)
    if prep is not None:  # metadata only: the tiles' own tasks fill the store
        ens = ensemble_template(prep)
    else:
        with resume.active(checkpoint):
            ens = downscale(da, progress=False, **kwargs)
    if ens.chunks is None:
        ens = ens.chunk()
    ds = to_cf_dataset(ens, attrs=attrs)
    name = next(iter(ds.data_vars))
    tdim = t if t is not None and t in ds[name].dims else None
    show = _in_notebook_or_tty() if progress is None else progress
    if prep is not None:
        _write_tiled(prep, ds, name, tdim, path, states, record, settings, done, show)
        return path
    regions = _regions(ds, name, tdim)
    if record is None:
        ds[name].encoding["chunks"] = tuple(
            ds.sizes[d] if d in ens.dims[-2:] else 1 for d in ds[name].dims)
        ds.attrs.update({STATUS_ATTR: "incomplete", DONE_ATTR: [],
                         SETTINGS_ATTR: json.dumps(settings, sort_keys=True)})
        with _quiet():  # metadata of everything, values of what does not vary in time
            ds.to_zarr(str(path), mode="w", compute=False, consolidated=True)
            ds.drop_vars([v for v in ds.variables
                          if tdim is None or tdim in ds[v].dims or v == name]).to_zarr(
                str(path), mode="r+", consolidated=True)
    todo = [r for r in regions if r not in done]
    with tqdm(total=len(regions), initial=len(regions) - len(todo), desc="zarr regions",
              unit="region", disable=not show, leave=False) as bar:
        for t0, t1 in todo:
            with _quiet():
                if tdim is None:
                    ds[[name]].drop_vars(list(ds.coords)).to_zarr(str(path), mode="r+")
                else:
                    part = ds[[v for v in ds.data_vars if tdim in ds[v].dims]]
                    part = part.isel({tdim: slice(t0, t1)})
                    part = part.drop_vars([c for c in part.coords if tdim not in part[c].dims])
                    part.to_zarr(str(path), region={tdim: slice(t0, t1)})
            done.add((t0, t1))
            _mark(path, **{DONE_ATTR: sorted([list(r) for r in done])})
            checkpoint.mark_done(t0)  # after the record: a marked chunk is never rewritten
            bar.update()
    _complete(path, states)
    return path


def _complete(path: Path, states: Path) -> None:
    """Mark the store complete, then drop the states kept for resuming it."""
    _mark(path, **{STATUS_ATTR: "complete"})
    if states.is_dir():
        shutil.rmtree(states)


#: ``downscale`` arguments that :func:`xstochsr.api.prepare_array` takes.
_PREPARE = ("factor", "members", "model", "seed", "time_chunk", "batch_size", "device",
            "regrid_input", "conserve", "memory_limit", "tile", "static", "precision")


def _tiled(da: xr.DataArray, kwargs: dict[str, Any], record: dict | None):
    """Prepare the call; return it when it runs in tiles (written tile by tile), else None.

    A store being resumed keeps the layout it was started with, whatever memory this
    machine has: tiles of the recorded side, or region by region.
    """
    from . import tile_stream
    from .api import prepare_array

    kw = {k: v for k, v in kwargs.items() if k in _PREPARE}
    if record is not None:
        if record["tiles"] is None:
            return None
        kw["tile"] = record["tiles"]["tile"]
    prep = prepare_array(da, **kw)
    if prep.plan.tiles is None:
        return None
    tile_stream.check_supported(prep, kwargs.get("target_grid"))
    return prep


def _write_tiled(prep, ds: xr.Dataset, name: str, tdim: str | None, path: Path,
                 states: Path, record: dict | None, settings: dict, done: set,
                 show: bool) -> None:
    """Create (or resume) a store chunked by tile and fill it with :mod:`.tile_stream`."""
    from . import tile_stream
    from .api import REALIZATION
    from .tiling import describe

    tiles = prep.plan.tiles  # aligned cores; a resumed store's tile is prep's tile=
    layout, f = prep.layout, prep.plan.factor
    axes = layout.axes
    side = tiles.tile * f
    chunks = {d: (side if d in (axes.y, axes.x) else 1) for d in ds[name].dims}
    if record is None:  # the template is one dask chunk: nothing of it is computed
        ds[name].encoding["chunks"] = tuple(chunks[d] for d in ds[name].dims)
        ds.attrs.update({STATUS_ATTR: "incomplete", DONE_ATTR: [],
                         SETTINGS_ATTR: json.dumps(settings, sort_keys=True),
                         TILES_ATTR: describe(tiles)})
        with _quiet():  # metadata of everything, values of all but the ensemble
            ds.to_zarr(str(path), mode="w", compute=False, consolidated=True)
            ds.drop_vars([name]).to_zarr(str(path), mode="r+", consolidated=True)
    acc = prep.accumulated
    writer = tile_stream.TileWriter(
        plan=prep.plan, out=str(path / name), states=str(states), dims=tuple(ds[name].dims),
        realization=REALIZATION, other=tuple(layout.other),
        other_sizes=tuple(int(layout.da.sizes[d]) for d in layout.other), t=tdim,
        y=axes.y, x=axes.x, hours=None if acc is None else float(acc.hours))

    def mark(t: int) -> None:
        done.add((t, t + 1))
        _mark(path, **{DONE_ATTR: sorted([list(r) for r in done])})

    tile_stream.write(prep, writer, tiles, done=done, mark=mark, progress=show)
    _complete(path, states)
