"""GRU states saved between time chunks, so a resumed stream skips finished regions.

A lazy ``downscale`` chains its chunk tasks through the GRU state: computing time chunk
``k`` needs the state after chunk ``k - 1``, hence every chunk before it. When
:mod:`xstochsr.streaming` writes a zarr store region by region it activates a
:class:`Checkpoint` while ``downscale`` builds its graph (the plan records it, so it
travels to dask workers, which need the directory on a shared filesystem). Each chunk
task then saves its final state (safetensors, never pickle) under the checkpoint's
directory; a chunk whose time region is marked written (:meth:`Checkpoint.mark_done`,
called by the writer after the region is in the store and recorded there) returns the
saved state and a placeholder (never written) instead of running the model. Region by
region, each time chunk therefore runs once, in one run or over several.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "active", "current"]

_CURRENT: contextvars.ContextVar[Checkpoint | None] = contextvars.ContextVar(
    "xstochsr_checkpoint", default=None)


@dataclass(frozen=True)
class Checkpoint:
    """Where chunk states live and which time chunks are already written.

    Parameters
    ----------
    directory : str
        Folder for the states (one safetensors file per member block, sequence batch and
        chunk end).
    """

    directory: str

    def mark_done(self, t0: int) -> None:
        """Record that the region starting at frame ``t0`` is written and recorded."""
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        (Path(self.directory) / f"done_t{int(t0)}").touch()

    def is_done(self, t0: int) -> bool:
        """Whether :meth:`mark_done` was called for frame ``t0``."""
        return (Path(self.directory) / f"done_t{int(t0)}").is_file()

    def _path(self, members, b0: int, t1: int) -> Path:
        ids = "-".join(str(int(m)) for m in members)
        return Path(self.directory) / f"m{ids}_b{b0}_t{t1}.safetensors"

    def save(self, members, b0: int, t1: int, state: Any) -> None:
        """Store the state after frame ``t1 - 1`` (atomically: written, then renamed)."""
        from safetensors.torch import save_file

        path = self._path(members, b0, t1)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tensors = {} if state is None else {"state": state.detach().cpu().contiguous()}
        save_file(tensors, str(tmp), metadata={"stateless": str(state is None)})
        os.replace(tmp, path)

    def skip(self, members, b0: int, t0: int, t1: int, shape: tuple, device: str):
        """Return ``(placeholder, state)`` for a written chunk with a saved state, else None.

        Parameters
        ----------
        shape : tuple
            ``(M, B, T, fH, fW)`` of the chunk's output; the placeholder is NaN of that
            shape (a broadcast view: no memory), never written to the store.
        """
        if not self.is_done(t0):
            return None
        path = self._path(members, b0, t1)
        if not path.is_file():
            return None  # state lost: recompute (correct, only slower)
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as fh:
            stateless = (fh.metadata() or {}).get("stateless") == "True"
        state = None if stateless else load_file(str(path), device=device)["state"]
        return np.broadcast_to(np.float32(np.nan), shape), state


def current() -> Checkpoint | None:
    """Return the checkpoint active in this context (None outside :func:`active`)."""
    return _CURRENT.get()


@contextlib.contextmanager
def active(checkpoint: Checkpoint) -> Iterator[Checkpoint]:
    """Make ``downscale`` plans built in the body save and reuse chunk states."""
    token = _CURRENT.set(checkpoint)
    try:
        yield checkpoint
    finally:
        _CURRENT.reset(token)
