"""Temporal scores: is each member's sequence as persistent, and as changeable, as the truth.

A recurrent generator should produce sequences whose frames evolve like the real ones:
neither frozen (too persistent) nor flickering (independent frames). Two views:

* :func:`lag_autocorrelation`: the correlation of each frame with the frame ``k`` steps
  later, for each member and for the truth;
* :func:`frame_change`: the spread and quantiles of the frame-to-frame changes
  ``x[t + k] - x[t]``, members against truth.

Frames are assumed consecutive and evenly spaced along the time dimension (as
:func:`xstochsr.downscale` returns them).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _prepare, _resolve_dim, _time, _valid
from .distribution import _check_q, _single_chunk

__all__ = ["lag_autocorrelation", "frame_change"]


def _check_lags(lags, nt: int) -> list[int]:
    arr = np.atleast_1d(np.asarray(lags))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"lags must be positive integers, got {lags!r}.")
    if np.any(arr < 1):
        raise InvalidInputError(f"lags must be >= 1, got {arr.tolist()}.")
    if np.any(arr >= nt):
        raise InvalidInputError(
            f"Lag {int(arr.max())} needs at least {int(arr.max()) + 1} frames; the time "
            f"dimension has {nt}. Use smaller lags or a longer sequence."
        )
    return [int(k) for k in arr]


def _frames(da: xr.DataArray, t: Hashable, start: int, stop: int | None) -> xr.DataArray:
    """Frames ``start:stop`` along ``t`` with the time coordinates dropped (to pair them)."""
    out = da.isel({t: slice(start, stop)})
    return out.drop_vars([c for c in out.coords if t in out.coords[c].dims])


def _pairs(da: xr.DataArray, valid: xr.DataArray, t: Hashable, k: int):
    """``(x[t], x[t + k])`` on the pairs where both frames are valid."""
    n = da.sizes[t]
    both = _frames(valid, t, 0, n - k) & _frames(valid, t, k, None)
    return _frames(da, t, 0, n - k).where(both), _frames(da, t, k, None).where(both)


#: Variance below this fraction of the mean square counts as none (rounding of a constant).
_TINY_VARIANCE = 1e-24


def _corr(a: xr.DataArray, b: xr.DataArray, dims: list[Hashable]) -> xr.DataArray:
    """Pearson correlation of paired values over ``dims`` (NaN pairs skipped).

    NaN where either side is constant: removing the mean of a constant leaves only
    rounding, whose "correlation" would be meaningless.
    """
    am = a - a.mean(dims, skipna=True)
    bm = b - b.mean(dims, skipna=True)
    cov = (am * bm).mean(dims, skipna=True)
    va = (am**2).mean(dims, skipna=True)
    vb = (bm**2).mean(dims, skipna=True)
    varying = (va > _TINY_VARIANCE * (a**2).mean(dims, skipna=True)) & (
        vb > _TINY_VARIANCE * (b**2).mean(dims, skipna=True)
    )
    return cov / np.sqrt((va * vb).where(varying & (va * vb > 0)))


def _pool_dims(dim, obs: xr.DataArray, t: Hashable) -> list[Hashable]:
    """Dimensions to pool over: the time dim always, plus ``dim`` (None: all)."""
    dims = _resolve_dim(dim, obs.dims)
    return [t, *[d for d in dims if d != t]]


def lag_autocorrelation(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    lags: int | Sequence[int] = (1, 2, 3),
    member_dim: Hashable = "realization",
    dim=None,
    time_dim: Hashable | None = None,
) -> xr.Dataset:
    """Lag-``k`` autocorrelation of each member's frames, against the truth's.

    For a sequence ``x`` (one member, or the truth) and lag ``k``, the Pearson
    correlation of the pairs ``(x[t], x[t + k])`` pooled over all ``t`` and over
    ``dim`` (by default every point of the field): 1 for a frozen sequence, about 0
    for independent frames, ``phi**k`` for an AR(1) process with coefficient ``phi``.
    Members too persistent score above the truth, flickering ones below. Only pairs
    where the truth and every member are valid at both times are used, the same for
    members and truth.

    Parameters
    ----------
    ens : xarray.DataArray
        Ensemble with dimensions ``member_dim`` and time (plus any others).
    obs : xarray.DataArray
        Truth, with the dimensions of ``ens`` except ``member_dim``.
    lags : int or sequence of int, default (1, 2, 3)
        Lags in time steps; each needs more frames than itself.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    dim : str or list of str, optional
        Dimensions besides time to pool the pairs over: None (default) for all,
        ``[]`` for a correlation per point (over time only). Time is always pooled.
    time_dim : str, optional
        Time dimension; found with cf-xarray (datetime or cftime coordinate,
        ``axis="T"``, or a dimension named like time) if not given.

    Returns
    -------
    xarray.Dataset
        With dimension ``lag``: ``members`` (per member, dimension ``member_dim``),
        ``ensemble`` (their mean), ``observation`` (the truth's) and ``difference``
        (``ensemble - observation``; positive: too persistent). Dimensionless; NaN
        where a sequence is constant. Lazy for dask input.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> frozen = np.repeat(rng.random((1, 1, 8, 8)), 6, axis=1)  # (member, time, y, x)
    >>> ens = xr.DataArray(np.concatenate([frozen, rng.random((1, 6, 8, 8))]),
    ...                    dims=("realization", "time", "y", "x"))
    >>> obs = ens.isel(realization=0)
    >>> ac = lag_autocorrelation(ens, obs, lags=1)
    >>> round(float(ac.observation), 6), abs(float(ac.members[1])) < 0.2
    (1.0, True)
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    t = _time(obs, time_dim)
    return _lag_autocorrelation(ens, obs, member_dim, t, _pool_dims(dim, obs, t), lags)


def _lag_autocorrelation(ens, obs, member_dim, t, dims, lags=(1, 2, 3)) -> xr.Dataset:
    """:func:`lag_autocorrelation` on prepared inputs; ``dims`` include ``t``."""
    ks = _check_lags(lags, obs.sizes[t])
    valid = _valid(ens, obs, member_dim)
    per_member, truth = [], []
    for k in ks:
        per_member.append(_corr(*_pairs(ens, valid, t, k), dims))
        truth.append(_corr(*_pairs(obs, valid, t, k), dims))
    lag = xr.DataArray(ks, dims="lag", name="lag", attrs={"long_name": "lag", "units": "1"})
    members = xr.concat(per_member, dim=lag)
    observed = xr.concat(truth, dim=lag)
    ensemble = members.mean(member_dim)
    ds = xr.Dataset(
        {
            "members": members,
            "ensemble": ensemble,
            "observation": observed,
            "difference": ensemble - observed,
        }
    )
    for name, what in (
        ("members", "lag autocorrelation of each member"),
        ("ensemble", "member-mean lag autocorrelation"),
        ("observation", "lag autocorrelation of the observation"),
        ("difference", "member-mean minus observed lag autocorrelation"),
    ):
        ds[name].attrs = {"long_name": what, "units": "1"}
    ds.attrs = {"time_dim": str(t)}
    if np.ndim(lags) == 0:
        ds = ds.squeeze("lag")
    return ds


def frame_change(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    lag: int = 1,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    member_dim: Hashable = "realization",
    dim=None,
    time_dim: Hashable | None = None,
) -> xr.Dataset:
    """Distribution of frame-to-frame changes ``x[t + lag] - x[t]``, members against truth.

    The standard deviation of the changes (all members pooled, and the truth's) and
    quantiles of their absolute value, with the ratios ensemble / truth: below 1 the
    members change too little from frame to frame (too persistent, or too smooth), above
    1 too much (flickering). Only pairs where the truth and every member are valid at
    both times are used.

    Parameters
    ----------
    ens, obs, member_dim, time_dim
        As in :func:`lag_autocorrelation`.
    lag : int, default 1
        Time steps between the frames compared.
    quantiles : sequence of float, default (0.5, 0.9, 0.99)
        Probabilities for the quantiles of ``|x[t + lag] - x[t]|``.
    dim : str or list of str, optional
        Dimensions besides time to pool over (None: all). With dask input these and
        time are rechunked to one chunk each for the quantiles.

    Returns
    -------
    xarray.Dataset
        ``std_ensemble``, ``std_observation`` (units of ``obs``), ``std_ratio``;
        ``quantile_ensemble``, ``quantile_observation`` (units of ``obs``) and
        ``quantile_ratio`` with dimension ``quantile``. Ratios are NaN where the
        truth's value is 0. Lazy for dask input.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> obs = xr.DataArray(rng.normal(size=(50, 8, 8)), dims=("time", "y", "x"))
    >>> ens = (0.5 * obs).expand_dims(realization=2)  # changes half as large
    >>> fc = frame_change(ens, obs, quantiles=[0.9])
    >>> round(float(fc.std_ratio), 3), fc.quantile_ratio.values.round(3).tolist()
    (0.5, [0.5])
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    t = _time(obs, time_dim)
    return _frame_change(ens, obs, member_dim, t, _pool_dims(dim, obs, t), lag, quantiles)


def _frame_change(ens, obs, member_dim, t, dims, lag=1, quantiles=(0.5, 0.9, 0.99)):
    """:func:`frame_change` on prepared inputs; ``dims`` include ``t``."""
    (k,) = _check_lags([lag] if np.ndim(lag) == 0 else lag, obs.sizes[t])
    q = _check_q(quantiles)
    valid = _valid(ens, obs, member_dim)
    a, b = _pairs(ens, valid, t, k)
    de = b - a
    a, b = _pairs(obs, valid, t, k)
    do = b - a
    std_e = de.std([*dims, member_dim], skipna=True)
    std_o = do.std(dims, skipna=True)
    qe = abs(_single_chunk(de, [*dims, member_dim])).quantile(q, dim=[*dims, member_dim])
    qo = abs(_single_chunk(do, dims)).quantile(q, dim=dims)
    units = {"units": obs.attrs["units"]} if "units" in obs.attrs else {}
    ds = xr.Dataset(
        {
            "std_ensemble": std_e.assign_attrs(
                long_name=f"std of lag-{k} frame changes, members pooled", **units
            ),
            "std_observation": std_o.assign_attrs(
                long_name=f"std of lag-{k} frame changes of the observation", **units
            ),
            "std_ratio": (std_e / std_o.where(std_o > 0)).assign_attrs(
                long_name="ensemble / observed std of frame changes", units="1"
            ),
            "quantile_ensemble": qe.assign_attrs(
                long_name=f"quantile of |lag-{k} frame change|, members pooled", **units
            ),
            "quantile_observation": qo.assign_attrs(
                long_name=f"quantile of |lag-{k} frame change| of the observation", **units
            ),
            "quantile_ratio": (qe / qo.where(qo > 0)).assign_attrs(
                long_name="ensemble / observed quantile of |frame change|", units="1"
            ),
        }
    )
    ds.attrs = {"lag": k, "time_dim": str(t)}
    return ds
