"""Writing results without ever leaving a half file where a good one was.

Everything is written to a temporary file in the destination folder and renamed into
place (atomic on POSIX), so a crash, a full disk or Ctrl-C leaves any existing file
untouched and removes the temporary file. A run killed outright (SIGKILL, power loss)
cannot remove its own: the temporary name carries the writer's process id
(``.<name>.<pid>.<random>.tmp``), and the next write to the same folder removes those
whose process is gone. Files get the usual permissions (``0o666`` less the umask), not
the private ``0o600`` a temporary file starts with.

A full disk is reported as :class:`~xstochsr.errors.OutputError` ("no space left on
device"), not as the HDF or OS traceback underneath.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_files", "write_netcdf",
           "remove_stale_temporaries"]

#: ``.<name>.<pid>.<random>.tmp``
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")
#: Below this many free bytes a failed write is taken as a full disk.
_LOW_SPACE = 1 << 20


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files left in ``folder`` by writers that were killed.

    Only files named by :func:`atomic_path` (``.<name>.<pid>.<random>.tmp``) whose process
    no longer exists are removed; a write in progress elsewhere is left alone.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TMP.match(e.name)
        if m and e.is_file(follow_symlinks=False) and not _alive(int(m["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


def _no_space(err: BaseException, folder: Path) -> bool:
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno == errno.ENOSPC
    try:
        return shutil.disk_usage(folder).free < _LOW_SPACE
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    ``path`` is left as it was. Temporary files of killed earlier runs in the same
    folder are removed first (:func:`remove_stale_temporaries`).

    Raises
    ------
    OutputError
        The disk is full ("no space left on device"); the original error is chained.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError)) and not isinstance(err, OutputError) \
                and _no_space(err, path.parent):
            raise OutputError(
                f"Could not write {path}: no space left on device. Free some space or "
                "write to another disk; nothing was left half-written."
            ) from err
        raise


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        _write_synced(tmp, data)


def atomic_write_files(files: dict[str | os.PathLike, bytes]) -> None:
    """Write several files that belong together: all written and synced, then all renamed.

    Every file is written to its temporary name and synced first; only then are they
    renamed into place, one right after the other, in the order given. A crash while
    writing leaves every old file as it was; only a crash between two renames (a few
    microseconds) can leave a new file beside an old one, which is why files that must
    match also carry each other's hash (see :mod:`xstochsr.models.gan`).
    """
    with contextlib.ExitStack() as stack:
        # atomic_path renames on exit; ExitStack exits in reverse, so enter in reverse
        tmps = {p: stack.enter_context(atomic_path(p)) for p in reversed(list(files))}
        for path, data in files.items():
            _write_synced(tmps[path], data)


def write_netcdf(obj, path: str | os.PathLike, **kwargs) -> Path:
    """Write an xarray object to netCDF atomically.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        What to write (lazy arrays are computed while writing; an error there leaves
        no file behind).
    path : path-like
        Destination.
    **kwargs
        Passed to ``to_netcdf`` (``encoding=``, ``engine=``...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        The disk filled up while writing.
    """
    with atomic_path(path) as tmp:
        obj.to_netcdf(tmp, **kwargs)
    return Path(path)
