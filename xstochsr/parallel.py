"""Torch threads inside dask tasks: the same count on a cluster as in process.

A convolution's sums are split over torch's intra-op threads, so the thread count changes
float rounding (~2e-7 relative with the shipped ``rain-x8``). A run on
``dask.distributed`` is bit-identical to an in-process run only when both use the same
count. The rule, applied by :func:`torch_threads` around every chunk a task runs:

- ``dask.config`` key ``"xstochsr.torch-threads"`` (read when ``downscale`` builds its
  plan, so it travels with the tasks to the workers) wins everywhere: in process, on the
  threaded scheduler and on every worker;
- else, inside a ``distributed`` worker, one torch thread per worker thread (a worker with
  ``nthreads`` threads runs ``nthreads`` tasks at once, so it uses ``nthreads`` cores,
  which is how dask sizes workers);
- else torch is left as the user set it (``torch.set_num_threads``).

Example: an in-process run equal to a cluster of one-thread workers, bit for bit::

    with dask.config.set({"xstochsr.torch-threads": 1}):
        ens = xstochsr.downscale(da, model="rain-x8", seed=0)

The count is set for the calling thread only (torch's OpenMP pool is per thread) and
restored when the chunk is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["CONFIG_KEY", "configured_threads", "task_threads", "torch_threads"]

#: dask.config key holding the torch threads per task (an int >= 1, or None).
CONFIG_KEY = "xstochsr.torch-threads"


def configured_threads() -> int | None:
    """Return the torch threads per task set in ``dask.config`` (``"xstochsr.torch-threads"``).

    Returns
    -------
    int or None
        None when the key is not set.

    Raises
    ------
    InvalidInputError
        The value is not a whole number >= 1.
    """
    import dask

    value = dask.config.get(CONFIG_KEY, None)
    if value is None:
        return None
    from .errors import InvalidInputError

    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or (isinstance(value, float) and value != n):
        raise InvalidInputError(
            f"dask.config {CONFIG_KEY!r} is {value!r}; it must be a whole number >= 1, e.g. "
            f"dask.config.set({{{CONFIG_KEY!r}: 1}}), or unset."
        )
    return n


def _on_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    try:
        get_worker()
    except ValueError:  # not inside a worker's task
        return False
    return True


def task_threads(configured: int | None) -> int | None:
    """Torch threads a chunk should run with (None: leave torch as it is).

    Parameters
    ----------
    configured : int or None
        The plan's count (:func:`configured_threads` when the plan was built).
    """
    if configured is not None:
        return int(configured)
    return 1 if _on_worker() else None


@contextlib.contextmanager
def torch_threads(configured: int | None) -> Iterator[int]:
    """Run the body with :func:`task_threads` torch threads, restored after.

    Yields
    ------
    int
        The thread count in force inside the body.
    """
    import torch

    before = torch.get_num_threads()
    n = task_threads(configured)
    if n is None or n == before:
        yield before
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
