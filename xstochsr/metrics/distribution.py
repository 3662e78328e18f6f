"""Distribution and extremes: quantiles and exceedance frequencies against the observed."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _check_da, _finish, _prepare, _resolve_dim, _valid

__all__ = ["quantiles", "quantile_ratio", "wet_fraction", "exceedance_frequency"]


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
        (``ensemble / observation``, NaN where the observed quantile is 0), with
        dimension ``quantile``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> obs = xr.DataArray(np.arange(101.0), dims="x")
    >>> ens = (2 * obs).expand_dims(realization=3)
    >>> quantiles(ens, obs, quantiles=[0.5]).ratio.values
    array([2.])
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _quantiles(ens, obs, member_dim, _resolve_dim(dim, obs.dims), quantiles)


def _quantiles(ens, obs, member_dim, dims, quantiles=(0.5, 0.9, 0.99, 0.999)) -> xr.Dataset:
    """:func:`quantiles` on prepared inputs."""
    q = _check_q(quantiles)
    valid = _valid(ens, obs, member_dim)
    e = _single_chunk(ens.where(valid), [*dims, member_dim])
    o = _single_chunk(obs.where(valid), dims)
    qe = e.quantile(q, dim=[*dims, member_dim], skipna=True)
    qo = o.quantile(q, dim=dims, skipna=True) if dims else o.expand_dims(quantile=q)
    units = {"units": obs.attrs["units"]} if "units" in obs.attrs else {}
    # NaN, not a 0/0 warning, where the observed quantile is 0 (e.g. the dry median of rain)
    ds = xr.Dataset({"ensemble": qe, "observation": qo, "ratio": qe / qo.where(qo != 0)})
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
    too intense at that quantile, below 1 too weak; NaN where the observed quantile
    is 0 (e.g. the median of a mostly dry rain field).

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
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _quantile_ratio(ens, obs, member_dim, _resolve_dim(dim, obs.dims), quantiles)


def _quantile_ratio(ens, obs, member_dim, dims, quantiles=(0.5, 0.9, 0.99, 0.999)):
    """:func:`quantile_ratio` on prepared inputs."""
    ds = _quantiles(ens, obs, member_dim, dims, quantiles)
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


def _thresholds(thresholds) -> np.ndarray:
    thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if thr.ndim != 1 or thr.size == 0 or not np.all(np.isfinite(thr)):
        raise InvalidInputError(
            f"thresholds must be finite numbers or a 1-D sequence of them, got {thresholds!r}."
        )
    return thr


def exceedance_frequency(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    thresholds: float | Sequence[float],
    member_dim: Hashable = "realization",
    dim=None,
) -> xr.Dataset:
    """How often members and truth reach each threshold (``>=``), and their ratio.

    The frequency of ``value >= threshold`` over ``dim`` for each member, for all
    members pooled and for the observation, on the same cases (a case where the
    observation or any member is NaN is left out of all). For extremes, pick
    thresholds in the tail (e.g. 10, 20, 50 mm/h for rain rate): a ratio below 1 means
    the ensemble makes such values too rarely.

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`xstochsr.metrics.crps`.
    thresholds : float or sequence of float
        Thresholds in the units of ``obs``; a scalar gives a scalar ``threshold``
        coordinate, a sequence a ``threshold`` dimension.
    dim : str or list of str, optional
        Dimensions to count over (None: all but the members).

    Returns
    -------
    xarray.Dataset
        ``members`` (per member, dimension ``member_dim``), ``ensemble`` (members
        pooled), ``observation`` (dimensionless frequencies in [0, 1]) and ``ratio``
        (``ensemble / observation``; NaN where the truth never reaches the threshold),
        with dimension ``threshold``. Lazy for dask input.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[0.0, 5.0, 20.0, 30.0], [0.0, 1.0, 2.0, 30.0]],
    ...                    dims=("realization", "x"))
    >>> obs = xr.DataArray([0.0, 2.0, 25.0, 40.0], dims="x")
    >>> ex = exceedance_frequency(ens, obs, thresholds=[10.0])
    >>> ex.members.values.ravel().tolist(), float(ex.ensemble[0]), float(ex.ratio[0])
    ([0.5, 0.25], 0.375, 0.75)
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _exceedance_frequency(ens, obs, member_dim, _resolve_dim(dim, obs.dims), thresholds)


def _exceedance_frequency(ens, obs, member_dim, dims, thresholds) -> xr.Dataset:
    """:func:`exceedance_frequency` on prepared inputs."""
    thr = _thresholds(thresholds)
    t = xr.DataArray(thr, dims="threshold")
    valid = _valid(ens, obs, member_dim)
    e = (ens >= t).where(valid)
    o = (obs >= t).where(valid)
    members = e.mean(dims, skipna=True) if dims else e
    pooled = members.mean(member_dim)  # every member has the same valid cases
    observed = o.mean(dims, skipna=True) if dims else o
    ratio = pooled / observed.where(observed > 0)
    thr_attrs = {"long_name": "exceedance threshold (>=)"}
    if "units" in obs.attrs:
        thr_attrs["units"] = obs.attrs["units"]
    ds = xr.Dataset(
        {"members": members, "ensemble": pooled, "observation": observed, "ratio": ratio}
    ).assign_coords(threshold=("threshold", thr, thr_attrs))
    for name, what in (
        ("members", "frequency of values >= threshold, per member"),
        ("ensemble", "frequency of values >= threshold, members pooled"),
        ("observation", "frequency of observed values >= threshold"),
        ("ratio", "ensemble / observed exceedance frequency"),
    ):
        ds[name].attrs = {"long_name": what, "units": "1"}
    if np.ndim(thresholds) == 0:
        ds = ds.squeeze("threshold")
    return ds
