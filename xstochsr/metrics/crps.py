"""Continuous ranked probability score of an ensemble, plain and pooled."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _finish, _mean, _prepare, _resolve_dim, _score_attrs, _spatial

__all__ = ["crps", "pooled_crps"]


def _crps_kernel(x: np.ndarray, y: np.ndarray, fair: bool) -> np.ndarray:
    """CRPS per case; ``x`` (..., M) members on the last axis, ``y`` (...)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = x.shape[-1]
    invalid = ~np.isfinite(y) | ~np.all(np.isfinite(x), axis=-1)
    skill = np.mean(np.abs(x - y[..., None]), axis=-1)
    # sum_i sum_j |x_i - x_j| = 2 sum_k (2k - M + 1) x_(k) over sorted members
    weights = 2.0 * np.arange(m) - m + 1
    pair_sum = 2.0 * np.sum(np.sort(x, axis=-1) * weights, axis=-1)
    denom = 2.0 * m * (m - 1) if fair else 2.0 * m * m
    with np.errstate(invalid="ignore"):
        out = skill - pair_sum / denom
    # rounding can leave -1e-17 where the score is 0; the score is >= 0 for both estimators
    out = np.maximum(out, 0.0)
    out[invalid] = np.nan
    return out


def _crps_points(ens: xr.DataArray, obs: xr.DataArray, member_dim, fair: bool) -> xr.DataArray:
    m = ens.sizes[member_dim]
    if fair and m < 2:
        raise InvalidInputError(
            f"The fair CRPS needs at least 2 members; the ensemble has {m}. Use fair=False."
        )
    if ens.chunks is not None:
        ens = ens.chunk({member_dim: -1})
    return xr.apply_ufunc(
        _crps_kernel,
        ens,
        obs,
        input_core_dims=[[member_dim], []],
        kwargs={"fair": fair},
        dask="parallelized",
        output_dtypes=[np.float64],
    )


def crps(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    fair: bool = False,
) -> xr.DataArray:
    r"""Continuous ranked probability score of the ensemble's empirical distribution.

    For members :math:`x_1..x_M` and observation :math:`y`

    .. math:: \mathrm{CRPS} = \frac1M\sum_i |x_i - y| - \frac{1}{2M^2}\sum_{i,j}|x_i - x_j|

    (the CRPS of the empirical CDF, as ``properscoring.crps_ensemble``). The *fair*
    estimator (Ferro 2014) divides the second sum by :math:`2M(M-1)` instead: it
    estimates the CRPS the ensemble would have with infinitely many members, so
    ensembles of different sizes compare fairly. Both are >= 0; with one member the
    standard CRPS is the absolute error. Lower is better.

    Parameters
    ----------
    ens : xarray.DataArray
        Ensemble, with dimension ``member_dim``.
    obs : xarray.DataArray
        Truth, with the dimensions of ``ens`` except ``member_dim``.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    dim : str or list of str, optional
        Dimensions to average the per-point CRPS over: None (default) for all, ``[]``
        for the CRPS per point. Cases with a NaN observation or member are skipped.
    fair : bool, default False
        Use the fair (unbiased, ensemble-size-independent) estimator.

    Returns
    -------
    xarray.DataArray
        Named ``crps`` (or ``crps_fair``), in the units of ``obs``. Lazy for dask input.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[0.0], [1.0]], dims=("realization", "x"))
    >>> obs = xr.DataArray([0.5], dims="x")
    >>> float(crps(ens, obs)), float(crps(ens, obs, fair=True))
    (0.25, 0.0)
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _crps(ens, obs, member_dim, _resolve_dim(dim, obs.dims), fair)


def _crps(ens, obs, member_dim, dims, fair=False):
    """:func:`crps` on prepared inputs."""
    out = _mean(_crps_points(ens, obs, member_dim, fair), dims)
    name = "crps_fair" if fair else "crps"
    what = "fair ensemble CRPS" if fair else "ensemble CRPS"
    return _finish(out, name, _score_attrs(obs, what))


def _pool(da: xr.DataArray, y_dim, x_dim, k: int, method: str, stride: int) -> xr.DataArray:
    if stride == k:
        coarse = da.coarsen({y_dim: k, x_dim: k}, boundary="trim")
        return coarse.reduce(np.mean if method == "avg" else np.max)  # NaN propagates
    roll = da.rolling({y_dim: k, x_dim: k}, min_periods=k * k)
    pooled = roll.mean() if method == "avg" else roll.max()
    return pooled.isel({y_dim: slice(k - 1, None, stride), x_dim: slice(k - 1, None, stride)})


def pooled_crps(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    k: int = 4,
    method: str = "avg",
    stride: int | None = None,
    fair: bool = False,
    member_dim: Hashable = "realization",
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """CRPS after pooling members and truth over ``k x k`` fine cells.

    Each member and the observation are pooled the same way (average or maximum over
    ``k x k`` windows), then scored with :func:`crps`. As reported by Harris et al.
    (2022), this tests the ensemble at coarser scales: average pooling checks area
    totals, max pooling checks whether local extremes are placed about right.

    Parameters
    ----------
    ens, obs, member_dim, fair
        As in :func:`crps`.
    k : int, default 4
        Pooling window size in fine cells along each spatial axis.
    method : {"avg", "max"}, default "avg"
        Pooling function.
    stride : int, optional
        Step between windows; default ``k`` (non-overlapping windows, any remainder at
        the high-index edges is dropped). ``stride=1`` slides the window cell by cell.
    dim : str or list of str, optional
        Dimensions to average over (None: all). Spatial dimensions kept in the result
        are those of the pooled grid (coordinates: window centres / first cells).
    y_dim, x_dim : str, optional
        Spatial dimension names; found with :func:`xstochsr.grid.spatial_dims` if not given.

    Returns
    -------
    xarray.DataArray
        Named ``pooled_crps``, in the units of ``obs``; attrs ``pool_size``,
        ``pool_method``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.random((5, 8, 8)), dims=("realization", "y", "x"))
    >>> obs = xr.DataArray(rng.random((8, 8)), dims=("y", "x"))
    >>> float(pooled_crps(ens, obs, k=4, y_dim="y", x_dim="x")) < float(crps(ens, obs))
    True
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    y, x = _spatial(obs, y_dim, x_dim)
    dims = _resolve_dim(dim, obs.dims)
    return _pooled_crps(ens, obs, member_dim, dims, y, x, k, method, stride, fair)


def _pooled_crps(ens, obs, member_dim, dims, y, x, k=4, method="avg", stride=None, fair=False):
    """:func:`pooled_crps` on prepared inputs, spatial dims ``y``, ``x`` known."""
    if method not in ("avg", "max"):
        raise InvalidInputError(f"method must be 'avg' or 'max', got {method!r}.")
    k = int(k)
    stride = k if stride is None else int(stride)
    if k < 1 or stride < 1:
        raise InvalidInputError(f"k and stride must be >= 1, got k={k}, stride={stride}.")
    if k > min(obs.sizes[y], obs.sizes[x]):
        raise InvalidInputError(
            f"The pooling window k={k} is larger than the domain "
            f"({obs.sizes[y]} x {obs.sizes[x]} cells). Use a smaller k."
        )
    pe = _pool(ens, y, x, k, method, stride)
    po = _pool(obs, y, x, k, method, stride)
    out = _mean(_crps_points(pe, po, member_dim, fair), dims)
    attrs = _score_attrs(obs, f"CRPS after {method}-pooling over {k}x{k} cells")
    attrs.update(pool_size=k, pool_method=method)
    return _finish(out, "pooled_crps", attrs)
