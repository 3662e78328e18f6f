"""Rank histogram of the observation among the members, and its uniformity summaries."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _prepare, _resolve_dim

__all__ = ["rank_histogram", "rank_summary", "ranks", "rank_statistics"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (vectorised, wraps modulo 2**64)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _seed_key(seed) -> int:
    """Return a 64-bit key from an int seed, a numpy Generator or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0])
    raise InvalidInputError(
        f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}."
    )


def _uniform(linear_index: np.ndarray, key: int) -> np.ndarray:
    """Uniform [0, 1) numbers from a counter-based hash of ``(key, linear_index)``.

    The draw of a case depends only on the seed and the case's position, so results do
    not depend on how a dask array is chunked.
    """
    with np.errstate(over="ignore"):
        z = _mix(np.asarray(linear_index, dtype=np.uint64) * _GOLDEN + np.uint64(key))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def _rank_kernel(x, y, *index, strides, key, threshold, threshold_on):
    """Rank per case (-1 where skipped); ``x`` (..., M), ``y`` (...), ``index`` 1-D per dim."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    below = np.sum(x < y[..., None], axis=-1)
    ties = np.sum(x == y[..., None], axis=-1)
    lin = np.zeros((1,) * y.ndim, dtype=np.uint64)
    for idx, stride in zip(index, strides, strict=True):
        lin = lin + np.asarray(idx, dtype=np.uint64) * np.uint64(stride)
    u = _uniform(np.broadcast_to(lin, y.shape), key)
    rank = below + np.floor(u * (ties + 1)).astype(np.int64)
    valid = np.isfinite(y) & np.all(np.isfinite(x), axis=-1)
    if threshold is not None:
        if threshold_on == "obs":
            valid &= y >= threshold
        else:
            valid &= (y >= threshold) | np.any(x >= threshold, axis=-1)
    return np.where(valid, rank, -1).astype(np.int32)


def ranks(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    seed=0,
    threshold: float | None = None,
    threshold_on: str = "any",
) -> xr.DataArray:
    """Rank of the observation among the members at every case (-1 where skipped).

    The rank is the number of members below the observation plus, for ties, a uniform
    random integer from 0 to the number of tied members (ties broken at random). See
    :func:`rank_histogram` for the parameters.

    Returns
    -------
    xarray.DataArray
        Integer ranks in ``0..M`` (``-1`` for skipped cases), dimensions of ``obs``.
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _ranks(ens, obs, member_dim, seed, threshold, threshold_on)


def _ranks(ens, obs, member_dim, seed=0, threshold=None, threshold_on="any"):
    """:func:`ranks` on prepared inputs."""
    if threshold_on not in ("any", "obs"):
        raise InvalidInputError(f"threshold_on must be 'any' or 'obs', got {threshold_on!r}.")
    key = _seed_key(seed)
    sizes = [obs.sizes[d] for d in obs.dims]
    strides = [int(np.prod(sizes[i + 1 :], dtype=np.int64)) for i in range(len(sizes))]
    index = [xr.DataArray(np.arange(obs.sizes[d]), dims=d) for d in obs.dims]
    if ens.chunks is not None:
        ens = ens.chunk({member_dim: -1})
    return xr.apply_ufunc(
        _rank_kernel,
        ens,
        obs,
        *index,
        input_core_dims=[[member_dim], [], *([[]] * len(index))],
        kwargs={
            "strides": strides,
            "key": key,
            "threshold": threshold,
            "threshold_on": threshold_on,
        },
        dask="parallelized",
        output_dtypes=[np.int32],
    ).rename("rank")


def _count_block(block: np.ndarray, *, axes: tuple[int, ...], nbins: int) -> np.ndarray:
    """Histogram of ranks over ``axes``; those axes kept with size 1, bins appended."""
    keep = [a for a in range(block.ndim) if a not in axes]
    moved = np.moveaxis(block, keep + list(axes), range(block.ndim))
    kept_shape = moved.shape[: len(keep)]
    rows = int(np.prod(kept_shape, dtype=np.int64))
    flat = moved.reshape(rows, -1)
    offsets = (np.arange(rows, dtype=np.int64) * nbins)[:, None]
    sel = flat >= 0
    counts = np.bincount((flat + offsets)[sel], minlength=rows * nbins)
    counts = counts.reshape(*kept_shape, nbins)
    # put size-1 reduced axes back in place, bins last
    out_shape = [1] * block.ndim
    for i, a in enumerate(keep):
        out_shape[a] = kept_shape[i]
    return counts.reshape(*out_shape, nbins)


def _histogram(rank: xr.DataArray, dims: list[Hashable], nbins: int) -> xr.DataArray:
    axes = tuple(rank.get_axis_num(d) for d in dims)
    kept = [d for d in rank.dims if d not in dims]
    data = rank.data
    if rank.chunks is not None:
        import dask.array as dsa

        chunks = [tuple([1] * len(c)) if i in axes else c for i, c in enumerate(data.chunks)] + [
            (nbins,)
        ]
        partial = dsa.map_blocks(
            _count_block,
            data,
            axes=axes,
            nbins=nbins,
            chunks=tuple(chunks),
            new_axis=data.ndim,
            dtype=np.int64,
        )
        counts = partial.sum(axis=axes) if axes else partial
    else:
        counts = _count_block(np.asarray(data), axes=axes, nbins=nbins)
        counts = counts.reshape(*[rank.sizes[d] for d in kept], nbins)
    coords = {k: v for k, v in rank.coords.items() if set(v.dims) <= set(kept)}
    return xr.DataArray(counts, dims=(*kept, "rank"), coords=coords)


def rank_summary(rh: xr.DataArray) -> xr.Dataset:
    """Uniformity summaries of a rank histogram (lazy for a dask-backed histogram).

    With ``M + 1`` bins of relative frequencies ``h_i`` (``i = 0..M``), ranks are
    normalised to ``r_i = i / M`` in ``[0, 1]`` and binned into ``M + 1`` equal bins, as
    Leinonen et al. (2021) do:

    * ``ks``: Kolmogorov-Smirnov distance between the empirical CDF of the normalised
      ranks and the uniform CDF, evaluated at the bin edges:
      ``max_i |sum_{j<=i} h_j - (i + 1) / (M + 1)|``. 0 for a flat histogram.
    * ``kl``: Kullback-Leibler divergence of the histogram from the uniform
      distribution, ``sum_i h_i log(h_i (M + 1))`` (nats; empty bins add 0). 0 for a
      flat histogram; always finite.
    * ``outlier_proportion``: ``h_0 + h_M``, the fraction of cases where the truth lies
      outside all members; ``2 / (M + 1)`` for a calibrated ensemble.

    Parameters
    ----------
    rh : xarray.DataArray
        Counts with a ``rank`` dimension, as returned by :func:`rank_histogram`.

    Returns
    -------
    xarray.Dataset
        Variables ``ks``, ``kl``, ``outlier_proportion`` (dimensionless) with the
        dimensions of ``rh`` other than ``rank``; NaN where a histogram is empty.

    Examples
    --------
    >>> import xarray as xr
    >>> s = rank_summary(xr.DataArray([1, 1, 1, 1], dims="rank"))
    >>> float(s.ks), float(s.kl), float(s.outlier_proportion)
    (0.0, 0.0, 0.5)
    """
    if not isinstance(rh, xr.DataArray) or "rank" not in rh.dims:
        raise InvalidInputError(
            "rank_summary expects the rank histogram DataArray (with a 'rank' dimension) "
            "returned by rank_histogram."
        )
    nbins = rh.sizes["rank"]
    total = rh.sum("rank")
    freq = rh / total.where(total > 0)
    uniform_cdf = xr.DataArray(np.arange(1, nbins + 1) / nbins, dims="rank")
    ks = abs(freq.cumsum("rank") - uniform_cdf).max("rank").where(total > 0)
    kl = (freq * np.log(freq.where(freq > 0, 1.0 / nbins) * nbins)).sum("rank", skipna=False)
    op = freq.isel(rank=0, drop=True) + freq.isel(rank=-1, drop=True)
    nocoord = [c for c in ("normalized_rank",) if c in ks.coords]
    ds = xr.Dataset({"ks": ks, "kl": kl, "outlier_proportion": op}).drop_vars(
        nocoord, errors="ignore"
    )
    ds["ks"].attrs = {"long_name": "rank histogram KS distance from uniform", "units": "1"}
    ds["kl"].attrs = {"long_name": "KL divergence of rank histogram from uniform", "units": "1"}
    ds["outlier_proportion"].attrs = {"long_name": "rank outlier proportion", "units": "1"}
    return ds


def rank_histogram(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    seed=0,
    threshold: float | None = None,
    threshold_on: str = "any",
) -> xr.DataArray:
    """Histogram of the rank of the observation among the ensemble members.

    For ``M`` members the rank of the observation is the number of members below it
    (``0..M``, ``M + 1`` bins). Ties (e.g. zero rain in the observation and several
    members) are broken at random, as in Leinonen et al. (2021): with ``t`` tied members
    the rank is ``below + U{0..t}``. The random draws come from a counter-based hash of
    ``seed`` and each case's position, so they are reproducible and do not depend on
    dask chunking. A calibrated ensemble gives a flat histogram; a U shape means
    under-dispersion, a dome over-dispersion, a slope bias.

    Parameters
    ----------
    ens : xarray.DataArray
        Ensemble, with dimension ``member_dim``.
    obs : xarray.DataArray
        Truth, with the dimensions of ``ens`` except ``member_dim``.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    dim : str or list of str, optional
        Dimensions to count over: None (default) for all, giving one histogram.
    seed : int, numpy.random.Generator or None, default 0
        Seed of the random tie-breaking (None: a fresh, unreproducible one).
    threshold : float, optional
        Count only cases that reach ``threshold`` (``>=``), e.g. to leave out the
        dry-everywhere cases of a rain field.
    threshold_on : {"any", "obs"}, default "any"
        ``"any"``: a case counts if the observation *or any member* reaches the
        threshold. This condition is symmetric in truth and members, so a calibrated
        ensemble stays flat. ``"obs"``: only the observation is tested; this
        conditions on the truth and tilts even a perfect ensemble's histogram.

    Returns
    -------
    xarray.DataArray
        Integer counts named ``rank_histogram`` with dimension ``rank`` (coordinate
        ``0..M``, plus ``normalized_rank = rank / M``) and any dimensions not in
        ``dim``. Cases with a NaN observation or member are skipped, so the counts sum
        to the number of valid cases. For in-memory input, attrs hold the summaries of
        the histogram summed over all its other dimensions (see :func:`rank_summary`):
        ``ks``, ``kl``, ``outlier_proportion``, plus ``n_members`` and ``n_cases``. For
        dask input the result is lazy and these attrs are absent: use
        ``rank_summary(rh)``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ens = xr.DataArray([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], dims=("realization", "x"))
    >>> obs = xr.DataArray([5.0, -1.0, 2.5], dims="x")  # ranks 2, 0, 1
    >>> rh = rank_histogram(ens, obs)
    >>> rh.values.tolist(), rh.attrs["outlier_proportion"]
    ([1, 1, 1], 0.6666666666666666)
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    dims = _resolve_dim(dim, obs.dims)
    return _rank_histogram(ens, obs, member_dim, dims, seed, threshold, threshold_on)


def _rank_histogram(ens, obs, member_dim, dims, seed=0, threshold=None, threshold_on="any"):
    """:func:`rank_histogram` on prepared inputs."""
    if threshold is not None:
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise InvalidInputError(f"threshold must be a finite number, got {threshold}.")
    m = ens.sizes[member_dim]
    r = _ranks(ens, obs, member_dim, seed, threshold, threshold_on)
    rh = _histogram(r, dims, m + 1)
    rh = rh.assign_coords(
        rank=np.arange(m + 1), normalized_rank=("rank", np.arange(m + 1) / max(m, 1))
    ).rename("rank_histogram")
    attrs = {
        "long_name": "rank histogram of the observation among the members",
        "units": "1",
        "n_members": m,
    }
    if rh.chunks is None:
        pooled = rh.sum([d for d in rh.dims if d != "rank"]) if rh.ndim > 1 else rh
        summary = rank_summary(pooled)
        attrs.update(
            ks=float(summary["ks"]),
            kl=float(summary["kl"]),
            outlier_proportion=float(summary["outlier_proportion"]),
            n_cases=int(pooled.sum()),
        )
    rh.attrs = attrs
    return rh


def rank_statistics(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | None = None,
    member_dim: Hashable = "realization",
    dim=None,
    seed=0,
) -> xr.Dataset:
    """Rank histogram with its KS, KL and outlier proportion, on all or on wet cases.

    With ``threshold``, only cases where the observation *or any member* reaches it
    (``>=``) are counted: the wet pixels of a rain field. Dry cases, where truth and
    members are all 0, have tied ranks that are broken at random; they fill the
    histogram evenly and so make the all-pixel KS and outlier proportion look better
    than the ensemble is. The condition is symmetric in truth and members, so a
    calibrated ensemble stays flat on the wet cases too. Compare the result with the
    all-pixel one (``threshold=None``) and with ``calibrated_outlier_proportion``,
    ``2 / (M + 1)`` for ``M`` members.

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`rank_histogram`.
    threshold : float, optional
        Wet threshold in the units of ``obs`` (e.g. 0.1 for rain in mm/h); None
        counts all cases.
    dim : str or list of str, optional
        Dimensions to count over (None: all, one histogram).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the random tie-breaking.

    Returns
    -------
    xarray.Dataset
        ``rank_histogram`` (counts, dimension ``rank``), ``ks``, ``kl``,
        ``outlier_proportion`` (NaN where no case is counted), ``n_cases`` (cases
        counted) and ``calibrated_outlier_proportion`` (``2 / (M + 1)``); attrs
        ``threshold`` (if given) and ``n_members``. Lazy for dask input.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[0.0, 0.5, 0.0, 2.0], [0.0, 1.0, 3.0, 4.0]],
    ...                    dims=("realization", "x"))
    >>> obs = xr.DataArray([0.0, 0.2, 5.0, 3.0], dims="x")  # the dry case x=0 is left out
    >>> st = rank_statistics(ens, obs, threshold=0.1)
    >>> st.rank_histogram.values.tolist(), int(st.n_cases), float(st.outlier_proportion)
    ([1, 1, 1], 3, 0.6666666666666666)
    >>> float(st.calibrated_outlier_proportion)
    0.6666666666666666
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    dims = _resolve_dim(dim, obs.dims)
    return _rank_statistics(ens, obs, member_dim, dims, seed, threshold)


def _rank_statistics(ens, obs, member_dim, dims, seed=0, threshold=None) -> xr.Dataset:
    """:func:`rank_statistics` on prepared inputs."""
    rh = _rank_histogram(ens, obs, member_dim, dims, seed, threshold, "any")
    m = ens.sizes[member_dim]
    attrs = dict(rh.attrs)
    rh.attrs = {k: attrs[k] for k in ("long_name", "units", "n_members")}
    ds = rank_summary(rh)
    ds["rank_histogram"] = rh
    ds["n_cases"] = rh.sum("rank").assign_attrs(long_name="cases counted", units="1")
    ds["calibrated_outlier_proportion"] = xr.DataArray(
        2.0 / (m + 1),
        attrs={"long_name": "outlier proportion of a calibrated ensemble, 2/(M+1)", "units": "1"},
    )
    where = "all cases" if threshold is None else (
        f"cases where the observation or any member is >= {threshold}"
    )
    for name in ("ks", "kl", "outlier_proportion", "rank_histogram", "n_cases"):
        ds[name].attrs["cases"] = where
    ds.attrs = {"n_members": m}
    if threshold is not None:
        ds.attrs["threshold"] = float(threshold)
    return ds
