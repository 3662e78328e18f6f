"""Ensemble-mean RMSE, MAE and bias, and the spread-skill ratio.

Input handling (alignment, ``dim``, NaN cases) is shared by all scores and lives in
:mod:`xstochsr.metrics._inputs`.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import (  # noqa: F401  (re-exported for code that imported them from here)
    _check_da,
    _find_member_dim,
    _finish,
    _mean,
    _prepare,
    _resolve_dim,
    _score_attrs,
    _spatial,
    _valid,
)

__all__ = ["rmse", "mae", "bias", "spread_skill_ratio"]


# --- scores ------------------------------------------------------------------------------


def _error(ens, obs, member_dim):
    valid = _valid(ens, obs, member_dim)
    return (ens.mean(member_dim, skipna=False) - obs).where(valid)


def rmse(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    ensemble_mean: bool = True,
) -> xr.DataArray:
    """Root-mean-square error of the ensemble mean.

    ``sqrt(mean_dim((mean_m ens - obs)**2))``. With ``ensemble_mean=False`` the RMSE of
    each member is taken and averaged over members instead (how Leinonen et al. 2021
    report the RMSE of their GAN samples).

    Parameters
    ----------
    ens : xarray.DataArray
        Ensemble, with dimension ``member_dim``.
    obs : xarray.DataArray
        Truth, with the dimensions of ``ens`` except ``member_dim``.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    dim : str or list of str, optional
        Dimensions to average over; None (default) for all, ``[]`` for none.
    ensemble_mean : bool, default True
        Score the ensemble mean (True) or average the members' RMSE (False).

    Returns
    -------
    xarray.DataArray
        Named ``rmse``, in the units of ``obs``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ens = xr.DataArray([[1.0, 2.0], [3.0, 5.0]], dims=("realization", "x"))
    >>> obs = xr.DataArray([2.0, 2.0], dims="x")
    >>> float(rmse(ens, obs))  # ensemble mean (2, 3.5), errors (0, 1.5)
    1.0606601717798212
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _rmse(ens, obs, member_dim, _resolve_dim(dim, obs.dims), ensemble_mean)


def _rmse(ens, obs, member_dim, dims, ensemble_mean=True):
    """:func:`rmse` on prepared inputs."""
    if ensemble_mean:
        out = np.sqrt(_mean(_error(ens, obs, member_dim) ** 2, dims))
    else:
        valid = _valid(ens, obs, member_dim)
        out = np.sqrt(_mean(((ens - obs) ** 2).where(valid), dims)).mean(member_dim)
    what = "ensemble-mean" if ensemble_mean else "member-average"
    return _finish(out, "rmse", _score_attrs(obs, f"{what} root-mean-square error"))


def mae(
    ens: xr.DataArray, obs: xr.DataArray, *, member_dim: Hashable = "realization", dim=None
) -> xr.DataArray:
    """Mean absolute error of the ensemble mean, ``mean_dim |mean_m ens - obs|``.

    Parameters and dimension handling as :func:`rmse`.

    Returns
    -------
    xarray.DataArray
        Named ``mae``, in the units of ``obs``.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[1.0, 2.0], [3.0, 5.0]], dims=("realization", "x"))
    >>> obs = xr.DataArray([2.0, 2.0], dims="x")
    >>> float(mae(ens, obs))
    0.75
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _mae(ens, obs, member_dim, _resolve_dim(dim, obs.dims))


def _mae(ens, obs, member_dim, dims):
    """:func:`mae` on prepared inputs."""
    out = _mean(abs(_error(ens, obs, member_dim)), dims)
    return _finish(out, "mae", _score_attrs(obs, "ensemble-mean absolute error"))


def bias(
    ens: xr.DataArray, obs: xr.DataArray, *, member_dim: Hashable = "realization", dim=None
) -> xr.DataArray:
    """Mean error of the ensemble mean, ``mean_dim(mean_m ens - obs)`` (positive: too high).

    Parameters and dimension handling as :func:`rmse`.

    Returns
    -------
    xarray.DataArray
        Named ``bias``, in the units of ``obs``.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[1.0, 2.0], [3.0, 5.0]], dims=("realization", "x"))
    >>> obs = xr.DataArray([2.0, 2.0], dims="x")
    >>> float(bias(ens, obs))
    0.75
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    return _bias(ens, obs, member_dim, _resolve_dim(dim, obs.dims))


def _bias(ens, obs, member_dim, dims):
    """:func:`bias` on prepared inputs."""
    out = _mean(_error(ens, obs, member_dim), dims)
    return _finish(out, "bias", _score_attrs(obs, "ensemble-mean bias (ens - obs)"))


def spread_skill_ratio(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    finite_ensemble_correction: bool = True,
) -> xr.DataArray:
    """Ratio of ensemble spread to the RMSE of the ensemble mean.

    ``SSR = c * sqrt(mean_dim var_m(ens)) / RMSE``, with the member variance taken with
    ``ddof=1`` and ``c = sqrt((M + 1) / M)`` for ``M`` members (Fortin et al. 2014), so
    that a calibrated ensemble of any size scores 1 in expectation. Below 1: the ensemble
    is under-dispersive (too confident); above 1: over-dispersive.

    Parameters
    ----------
    ens, obs, member_dim, dim
        As in :func:`rmse`.
    finite_ensemble_correction : bool, default True
        Apply the factor ``c``; False gives the plain ratio.

    Returns
    -------
    xarray.DataArray
        Named ``spread_skill_ratio``, dimensionless.

    Raises
    ------
    InvalidInputError
        With fewer than two members (no spread).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.normal(size=(20, 5000)), dims=("realization", "x"))
    >>> obs = xr.DataArray(rng.normal(size=5000), dims="x")
    >>> round(float(spread_skill_ratio(ens, obs)), 1)
    1.0
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    dims = _resolve_dim(dim, obs.dims)
    return _spread_skill_ratio(ens, obs, member_dim, dims, finite_ensemble_correction)


def _spread_skill_ratio(ens, obs, member_dim, dims, finite_ensemble_correction=True):
    """:func:`spread_skill_ratio` on prepared inputs."""
    m = ens.sizes[member_dim]
    if m < 2:
        raise InvalidInputError(
            f"The spread-skill ratio needs at least 2 members; the ensemble has {m}."
        )
    valid = _valid(ens, obs, member_dim)
    spread = np.sqrt(_mean(ens.var(member_dim, ddof=1, skipna=False).where(valid), dims))
    skill = np.sqrt(_mean(_error(ens, obs, member_dim) ** 2, dims))
    out = spread / skill
    if finite_ensemble_correction:
        out = out * np.sqrt((m + 1) / m)
    return _finish(out, "spread_skill_ratio", _score_attrs(obs, "spread-skill ratio", units=False))
