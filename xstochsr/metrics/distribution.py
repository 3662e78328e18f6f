"""Distribution and extremes: quantiles against the observed ones, and wet fraction."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from .continuous import _check_da, _finish, _prepare, _resolve_dim, _valid

__all__ = ["quantiles", "quantile_ratio", "wet_fraction"]


def _check_q(q) -> np.ndarray:
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if q.ndim != 1 or q.size == 0 or np.any((q < 0) | (q > 1)) or not np.all(np.isfinite(q)):
        raise InvalidInputError(f"quantiles must lie in [0, 1], got {q.tolist()}.")
    return q


def _single_chunk(da: xr.DataArray, dims) -> xr.DataArray:
    return da.chunk({d: -1 for d in dims}) if da.chunks is not None and dims else da


def quantiles(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    member_dim: Hashable = "realization",
    dim=None,
) -> xr.Dataset:
    """Quantiles of the pooled ensemble values and of the observation.

    The ensemble's quantiles are taken over ``dim`` *and* the members (all members'
    values pooled), the observation's over ``dim``. Cases where the observation or any
    member is NaN are left out of both.

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`xstochsr.metrics.crps`.
    quantiles : sequence of float, default (0.5, 0.9, 0.99, 0.999)
        Probabilities in [0, 1].
    dim : str or list of str, optional
        Dimensions to pool (None: all). With dask input these are rechunked to one
        chunk each (exact quantiles need all values together).

    Returns
    -------
    xarray.Dataset
        Variables ``ensemble``, ``observation`` (units of ``obs``) and ``ratio``
        (``ensemble / observation``), with dimension ``quantile``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> obs = xr.DataArray(np.arange(101.0), dims="x")
    >>> ens = (2 * obs).expand_dims(realization=3)
    >>> quantiles(ens, obs, quantiles=[0.5]).ratio.values
    array([2.])
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    q = _check_q(quantiles)
    dims = _resolve_dim(dim, obs.dims)
    valid = _valid(ens, obs, member_dim)
    e = _single_chunk(ens.where(valid), [*dims, member_dim])
    o = _single_chunk(obs.where(valid), dims)
    qe = e.quantile(q, dim=[*dims, member_dim], skipna=True)
    qo = o.quantile(q, dim=dims, skipna=True) if dims else o.expand_dims(quantile=q)
    units = {"units": obs.attrs["units"]} if "units" in obs.attrs else {}
    ds = xr.Dataset({"ensemble": qe, "observation": qo, "ratio": qe / qo})
    ds["ensemble"].attrs = {"long_name": "quantile of pooled members", **units}
    ds["observation"].attrs = {"long_name": "quantile of observation", **units}
    ds["ratio"].attrs = {"long_name": "ensemble / observed quantile", "units": "1"}
    return ds


def quantile_ratio(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    member_dim: Hashable = "realization",
    dim=None,
) -> xr.DataArray:
    """Ratio of the ensemble's quantiles to the observed ones (1: right extremes).

    See :func:`quantiles` for the definition and parameters. Above 1 the ensemble is
    too intense at that quantile, below 1 too weak; inf or NaN where the observed
    quantile is 0.

    Returns
    -------
    xarray.DataArray
        Named ``quantile_ratio``, dimensionless, with dimension ``quantile``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> obs = xr.DataArray(np.arange(1.0, 101.0), dims="x")
    >>> ens = (0.5 * obs).expand_dims(realization=2)
    >>> quantile_ratio(ens, obs, quantiles=[0.5, 0.9]).values
    array([0.5, 0.5])
    """
    from . import distribution as _self

    ds = _self.quantiles(ens, obs, quantiles=quantiles, member_dim=member_dim, dim=dim)
    return _finish(ds["ratio"], "quantile_ratio", dict(ds["ratio"].attrs))


def wet_fraction(
    da: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    dim=None,
) -> xr.DataArray:
    """Fraction of values at or above ``threshold`` (e.g. rain >= 0.1 mm/h).

    Works on any field: the ensemble (all members pooled when ``dim=None``) or the
    observation; compare the two to see whether the ensemble rains as often as the
    truth. NaN values are left out.

    Parameters
    ----------
    da : xarray.DataArray
        Field or ensemble.
    threshold : float or sequence of float
        Wet threshold(s) in the units of ``da``; a sequence gives a ``threshold``
        dimension.
    dim : str or list of str, optional
        Dimensions to reduce over (None: all, members included).

    Returns
    -------
    xarray.DataArray
        Named ``wet_fraction``, dimensionless, in [0, 1].

    Examples
    --------
    >>> import xarray as xr
    >>> float(wet_fraction(xr.DataArray([0.0, 0.05, 0.2, 3.0], dims="x"), threshold=0.1))
    0.5
    """
    da = _check_da(da, "da")
    dims = _resolve_dim(dim, da.dims, what="the field")
    thr = np.asarray(threshold, dtype=float)
    if thr.ndim > 1 or not np.all(np.isfinite(thr)):
        raise InvalidInputError(f"threshold must be a finite number or 1-D sequence, got {thr}.")
    t = xr.DataArray(thr, dims="threshold") if thr.ndim == 1 else float(thr)
    wet = (da >= t).where(da.notnull())
    out = wet.mean(dims, skipna=True) if dims else wet
    if thr.ndim == 1:
        out = out.assign_coords(threshold=("threshold", thr, {"units": da.attrs.get("units", "")}))
    return _finish(
        out, "wet_fraction", {"long_name": "fraction of values >= threshold", "units": "1"}
    )
