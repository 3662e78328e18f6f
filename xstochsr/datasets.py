"""Sample data and weights: one pooch over ``data_registry.txt``.

Every file xstochsr can fetch is listed, with its sha256, in the registry (the root file
``data_registry.txt`` of the repository, shipped byte for byte as
``xstochsr/data/registry.txt``). Registry keys are the files' paths in the repository,
e.g. ``xstochsr/data/meteosat_rain_rate.nc``; functions here also accept the bare file
name (``"meteosat_rain_rate.nc"``) or, for samples, the stem (``"meteosat_rain_rate"``).

* Files under ``xstochsr/data/`` ship inside the package: they are served from there after
  a sha256 check and are never downloaded, so the samples and the default weights work
  offline on a fresh machine.
* Every other file is downloaded by pooch into the cache and checked against its sha256;
  a file that fails the check is refused (:class:`~xstochsr.errors.DataFetchError`) and
  never left in the cache.

Environment variables
---------------------
XSTOCHSR_DATA_DIR
    Cache folder (default: the OS cache folder, e.g. ``~/.cache/xstochsr``).
XSTOCHSR_DATA_URL
    Base URL of a mirror holding the files at their registry paths (default: the
    repository's raw files at the release tag).

Both are read at every call, so they can be changed in a running session.

Examples
--------
>>> from xstochsr import datasets
>>> datasets.list_samples()  # doctest: +SKIP
['meteosat_rain_rate', 'meteosat_rain_rate_atlantic_itcz', ...]
>>> ds = datasets.open_sample("meteosat_rain_rate")  # doctest: +SKIP
>>> coarse = ds.rain_rate.coarsen(x=8, y=8).mean()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import DataFetchError, InvalidInputError

__all__ = [
    "fetch",
    "list_samples",
    "open_sample",
    "registry_path",
    "file_hash",
    "registry",
    "registry_file",
    "DATA_DIR_ENV",
    "DATA_URL_ENV",
]

DATA_DIR_ENV = "XSTOCHSR_DATA_DIR"
DATA_URL_ENV = "XSTOCHSR_DATA_URL"

#: Where the files live by default: the repository's raw files at the release tag.
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/xstochsr/xstochsr/{version}/"

_PACKAGE_DIR = Path(__file__).resolve().parent
_PACKAGED_PREFIX = "xstochsr/data/"
_SAMPLE_SUFFIX = ".nc"


# --- registry ---------------------------------------------------------------------------


def registry_path() -> Path:
    """Return the path of the registry file this installation reads.

    Returns
    -------
    pathlib.Path
        ``xstochsr/data/registry.txt`` inside the installed package: a byte-identical copy
        of the repository's root ``data_registry.txt`` (a test checks they agree).
    """
    return _PACKAGE_DIR / "data" / "registry.txt"


def registry() -> dict[str, str]:
    """Return the registry as ``{path: "sha256:<hex>"}``.

    Returns
    -------
    dict of str to str
        One entry per fetchable file, keyed by its path in the repository.
    """
    return dict(_pooch().registry)


def file_hash(path: str | os.PathLike, alg: str = "sha256") -> str:
    """Return the hex digest of a file, as written in the registry after ``sha256:``.

    Parameters
    ----------
    path : str or path-like
        The file to hash.
    alg : str, default "sha256"
        Any algorithm :mod:`hashlib` knows.

    Returns
    -------
    str
        Lower-case hex digest.

    Examples
    --------
    >>> file_hash(registry_path())  # doctest: +SKIP
    '3f1c...'
    """
    try:
        h = hashlib.new(alg)
    except ValueError as err:
        raise InvalidInputError(f"Unknown hash algorithm {alg!r}; use e.g. 'sha256'.") from err
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        v = version("xstochsr")
    except PackageNotFoundError:
        return "main"
    return "main" if "+" in v or "dev" in v else f"v{v}"


def _pooch():
    """Build the pooch from the registry and the current environment variables."""
    import pooch

    base_url = os.environ.get(DATA_URL_ENV) or DEFAULT_BASE_URL.format(version=_version())
    if not base_url.endswith("/"):
        base_url += "/"
    p = pooch.create(
        path=pooch.os_cache("xstochsr"),
        base_url=base_url,
        env=DATA_DIR_ENV,
        registry=None,
        retry_if_failed=0,
    )
    p.load_registry(registry_path())
    return p


def registry_file(path: str | os.PathLike) -> str | None:
    """Return the sha256 the registry lists for ``path`` if it is a registry file, else None.

    A file is a registry file when it is the packaged copy or the cached download of an
    entry (same folder and name); a user's own file that only shares a name is not.
    """
    p = Path(path).expanduser().resolve()
    pup = _pooch()
    for key, digest in pup.registry.items():
        if Path(key).name != p.name:
            continue
        homes = [(_PACKAGE_DIR / "data" / key[len(_PACKAGED_PREFIX):]).resolve()
                 if key.startswith(_PACKAGED_PREFIX) else None,
                 (Path(pup.path) / key).resolve()]
        if p in homes:
            return digest
    return None


def _resolve(name: str, keys) -> str:
    """Map a registry key, a file name or a sample stem to the registry key."""
    name = str(name)
    if name in keys:
        return name
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    matches = [k for k in keys if k.rsplit("/", 1)[-1] in (base, base + _SAMPLE_SUFFIX)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DataFetchError(
            f"{name!r} matches several registry entries {sorted(matches)}; "
            "pass the full path as listed in the registry."
        )
    names = sorted(k.rsplit("/", 1)[-1] for k in keys)
    raise DataFetchError(
        f"{name!r} is not in the xstochsr data registry ({registry_path()}). Known files: {names}."
    )


# --- fetching -----------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    alg, _, digest = expected.partition(":")
    if not digest:  # pooch allows a bare hex digest (sha256)
        alg, digest = "sha256", alg
    return file_hash(path, alg) == digest.lower()


def _check_packaged(path: Path, expected: str) -> bool:
    st = path.stat()
    return _verified(str(path), st.st_size, st.st_mtime_ns, expected)


def fetch(name: str, *, progressbar: bool = False) -> Path:
    """Return the local path of a registered file, downloading it if needed.

    Parameters
    ----------
    name : str
        Registry path (``"xstochsr/data/meteosat_rain_rate.nc"``), file name
        (``"meteosat_rain_rate.nc"``) or sample stem (``"meteosat_rain_rate"``).
    progressbar : bool, default False
        Show pooch's download progress bar (needs tqdm).

    Returns
    -------
    pathlib.Path
        The verified file: inside the package for files shipped with it, otherwise in the
        cache (``XSTOCHSR_DATA_DIR``).

    Raises
    ------
    DataFetchError
        Unknown name, download failure, or a sha256 mismatch (the bad file is deleted).

    Examples
    --------
    >>> path = fetch("meteosat_rain_rate")  # doctest: +SKIP
    """
    p = _pooch()
    key = _resolve(name, p.registry)
    expected = p.registry[key]
    if key.startswith(_PACKAGED_PREFIX):
        packaged = _PACKAGE_DIR / "data" / key[len(_PACKAGED_PREFIX) :]
        if packaged.is_file():
            if not _check_packaged(packaged, expected):
                raise DataFetchError(
                    f"The packaged file {packaged} does not match its registry hash "
                    f"({expected}); the installation is damaged or the registry is stale. "
                    "Reinstall xstochsr (or, in a source checkout, rerun the script that "
                    "made the file and then scripts/make_samples.py --sync-registry)."
                )
            return packaged
        # not shipped in this installation: fall through to a download
    return _download(p, key, expected, progressbar)


#: A pooch temporary download untouched for this long belongs to a killed run.
STALE_DOWNLOAD_S = 3600


def remove_stale_downloads(folder: str | os.PathLike) -> list[Path]:
    """Remove pooch's temporary downloads (``tmp*``) in ``folder`` left by killed runs.

    A download in progress keeps writing its file, so only files not modified for
    :data:`STALE_DOWNLOAD_S` seconds are removed.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    import time

    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not (e.name.startswith("tmp") and e.is_file(follow_symlinks=False)):
            continue
        try:
            if now - e.stat().st_mtime > STALE_DOWNLOAD_S:
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def _download(p, key: str, expected: str, progressbar: bool) -> Path:
    target = Path(p.abspath) / key
    remove_stale_downloads(target.parent)
    try:
        local = Path(p.fetch(key, progressbar=progressbar))
    except ValueError as err:  # pooch: hash mismatch (the temporary download is removed)
        _remove(target)
        raise DataFetchError(
            f"Downloaded {key!r} from {p.get_url(key)} but its hash does not match the "
            f"registry ({expected}); the file was refused and not kept. The server or "
            f"mirror ({DATA_URL_ENV}={os.environ.get(DATA_URL_ENV, '')!r}) holds a "
            f"different or corrupted file. Details: {err}"
        ) from err
    except Exception as err:  # requests / OS errors
        _remove(target)
        raise DataFetchError(
            f"Could not download {key!r} from {p.get_url(key)}: {err}. Check the network, "
            f"point {DATA_URL_ENV} at a reachable mirror, or copy the file to "
            f"{target} (the cache, set by {DATA_DIR_ENV})."
        ) from err
    # belt and braces: never hand out (or keep) a file that fails its hash
    alg, _, digest = expected.partition(":")
    if digest and file_hash(local, alg) != digest.lower():
        _remove(local)
        raise DataFetchError(f"{key!r} in the cache failed its {alg} check and was deleted.")
    return local


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except (FileNotFoundError, IsADirectoryError):
        pass


# --- samples ------------------------------------------------------------------------------


def list_samples() -> list[str]:
    """Return the names of the sample datasets, for :func:`open_sample`.

    Returns
    -------
    list of str
        Stems of the registered netCDF files, sorted. ``"meteosat_rain_rate"`` is the main
        demo sample (real Meteosat rain rate, 256x256 pixels of about 3 km).

    Examples
    --------
    >>> "meteosat_rain_rate" in list_samples()
    True
    """
    keys = _pooch().registry
    return sorted(
        k.rsplit("/", 1)[-1][: -len(_SAMPLE_SUFFIX)] for k in keys if k.endswith(_SAMPLE_SUFFIX)
    )


def open_sample(name: str, **kwargs: Any):
    """Open a sample dataset (CF-complete: units, standard names, bounds, grid mapping).

    Parameters
    ----------
    name : str
        A name from :func:`list_samples` (a file name or registry path also works).
    **kwargs
        Passed to :func:`xarray.open_dataset`. Without ``chunks`` the data are loaded into
        memory and the file is closed. ``decode_coords`` defaults to ``"all"`` so that the
        bounds and the grid-mapping variable are coordinates.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    DataFetchError
        Unknown sample, failed download or failed hash check.

    Examples
    --------
    >>> ds = open_sample("meteosat_rain_rate")
    >>> ds.rain_rate.attrs["units"]
    'mm h-1'
    >>> ds.rain_rate.sizes["x"] // 8
    32
    """
    import xarray as xr

    keys = _pooch().registry
    key = _resolve(name, keys)
    if not key.endswith(_SAMPLE_SUFFIX):
        raise InvalidInputError(
            f"{key!r} is not a sample dataset; samples are {list_samples()}. "
            "Use xstochsr.datasets.fetch for other files."
        )
    path = fetch(key)
    kwargs.setdefault("decode_coords", "all")
    if "chunks" in kwargs:
        return xr.open_dataset(path, **kwargs)
    with xr.open_dataset(path, **kwargs) as ds:
        return ds.load()
