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

:func:`connect` makes a ``distributed.Client`` for a running scheduler's address (what
``xstochsr downscale --scheduler ADDRESS`` uses) with a short connect timeout, and turns
a dead or wrong address into an error that names the fix. It never starts a scheduler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "CONFIG_KEY",
    "CONNECT_TIMEOUT",
    "configured_threads",
    "connect",
    "task_threads",
    "torch_threads",
]

#: dask.config key holding the torch threads per task (an int >= 1, or None).
CONFIG_KEY = "xstochsr.torch-threads"
#: Seconds :func:`connect` waits for a scheduler to answer (distributed's own default is 30).
CONNECT_TIMEOUT = 10.0


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


def _check_timeout(timeout: float) -> float:
    import math

    from .errors import InvalidInputError

    try:
        t = float(timeout)
    except (TypeError, ValueError):
        t = math.nan
    if not (math.isfinite(t) and t > 0):
        raise InvalidInputError(
            f"The scheduler connect timeout is {timeout!r}; pass a number of seconds > 0, "
            f"e.g. timeout={CONNECT_TIMEOUT:g}."
        )
    return t


def _unreachable(address: str, timeout: float, reason: str):
    from .errors import SchedulerConnectionError

    return SchedulerConnectionError(
        f"No dask scheduler answered at {address!r} within {timeout:g} s ({reason}). Start "
        f"the scheduler there (e.g. `dask scheduler`) or check the address and port; on a "
        f"slow network allow a longer timeout (timeout=, --scheduler-timeout); to compute "
        f"on this machine instead, pass no address (drop --scheduler)."
    )


def _malformed(address: str, reason: str):
    from .errors import InvalidInputError

    return InvalidInputError(
        f"{address!r} is not a dask scheduler address ({reason}). Pass one like "
        f"'tcp://scheduler.example.org:8786', or pass no address (drop --scheduler) to "
        f"compute on this machine."
    )


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """Connect a ``distributed.Client`` to a running scheduler, failing fast and clearly.

    The client becomes dask's default scheduler until it is closed (use it as a context
    manager). Closing it leaves the scheduler and its workers running: xstochsr never
    starts or stops servers.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``"tcp://scheduler.example.org:8786"``.
    timeout : float, default :data:`CONNECT_TIMEOUT` (10 s)
        Seconds to wait for the scheduler to answer.

    Returns
    -------
    distributed.Client

    Raises
    ------
    SchedulerConnectionError
        Nothing answered at ``address`` within ``timeout`` (no scheduler runs there, a
        wrong host or port, a firewall). Also an ``OSError``, as distributed's own.
    InvalidInputError
        ``address`` is not an address (no port, unknown scheme), or ``timeout`` is not a
        number of seconds > 0.

    Examples
    --------
    >>> with connect("tcp://scheduler.example.org:8786") as client:  # doctest: +SKIP
    ...     ens = xstochsr.downscale(da.chunk(time=24), model="rain-x8").compute()
    """
    import gc

    from distributed import Client

    t = _check_timeout(timeout)
    try:
        return Client(str(address), timeout=t, set_as_default=True)
    except (OSError, TimeoutError) as err:
        error = _unreachable(str(address), t, str(err))
    except ValueError as err:
        error = _malformed(str(address), str(err))
    # The half-made Client is referenced only by the caught exception's frames, now gone:
    # close it while its event loop still runs, not at interpreter exit (a 2 x timeout
    # wait and an "Exception ignored" traceback there).
    gc.collect()
    raise error
