"""Writing results without ever leaving a half file where a good one was.

Everything is written to a temporary file in the destination folder and renamed into
place (atomic on POSIX), so a crash, a full disk or Ctrl-C leaves any existing file
untouched. Files get the usual permissions (``0o666`` less the umask), not the private
``0o600`` a temporary file starts with.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "write_netcdf"]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


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
    """
    with atomic_path(path) as tmp:
        obj.to_netcdf(tmp, **kwargs)
    return Path(path)
