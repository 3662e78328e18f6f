"""Ensemble-mean RMSE, MAE and bias, and the spread-skill ratio.

This module also holds the small input helpers every score in :mod:`xstochsr.metrics`
shares (checking and aligning ``ens`` and ``obs``, resolving ``dim``, finding the
spatial dimensions), so that all scores treat their inputs the same way:

* ``ens`` has a member dimension (``member_dim``, default ``"realization"``, CF's name);
  ``obs`` has the same dimensions without it (fewer is allowed: it is broadcast).
* Coordinates must match exactly (``xr.align(join="exact")``).
* A case (one point of ``obs``) where the observation or any member is NaN is skipped.
* ``dim=None`` reduces over every dimension except ``member_dim``; ``dim=[]`` keeps all
  (per-point scores); a name or a list reduces over those only.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError

__all__ = ["rmse", "mae", "bias", "spread_skill_ratio"]


# --- shared helpers (private, used by the other metric modules) -------------------------


def _check_da(da, name: str) -> xr.DataArray:
    if isinstance(da, xr.Dataset):
        raise InvalidInputError(
            f"{name} is an xarray.Dataset; the scores take one variable. "
            f"Select it first, e.g. {name}['precip']."
        )
    if not isinstance(da, xr.DataArray):
        raise InvalidInputError(
            f"{name} must be an xarray.DataArray, got {type(da).__name__}. "
            "Wrap numpy arrays with xr.DataArray(values, dims=...)."
        )
    if not (np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.bool_)):
        raise InvalidInputError(f"{name} must hold numbers, got dtype {da.dtype}.")
    return da


def _find_member_dim(ens: xr.DataArray, member_dim: Hashable) -> Hashable:
    if member_dim in ens.dims:
        return member_dim
    # CF: the ensemble dimension is a coordinate with standard_name "realization"
    cands = [
        d
        for d in ens.dims
        if d in ens.coords and ens.coords[d].attrs.get("standard_name") == "realization"
    ]
    if len(cands) == 1:
        return cands[0]
    raise InvalidInputError(
        f"The ensemble has no member dimension {member_dim!r} (its dimensions are "
        f"{tuple(ens.dims)}). Pass member_dim='<name>' or, for a single field, add one "
        f"with ens.expand_dims({member_dim!r})."
    )


def _prepare(ens, obs, member_dim: Hashable) -> tuple[xr.DataArray, xr.DataArray, Hashable]:
    """Check, align and broadcast ``ens`` and ``obs``; return them and the member dim."""
    ens = _check_da(ens, "ens")
    obs = _check_da(obs, "obs")
    member_dim = _find_member_dim(ens, member_dim)
    if member_dim in obs.dims:
        if obs.sizes[member_dim] != 1:
            raise InvalidInputError(
                f"obs has the member dimension {member_dim!r} with "
                f"{obs.sizes[member_dim]} entries; the observation must be one field. "
                f"Select it, e.g. obs.isel({member_dim}=0)."
            )
        obs = obs.squeeze(member_dim, drop=True)
    if member_dim in obs.coords:
        obs = obs.drop_vars(member_dim)
    extra = [d for d in obs.dims if d not in ens.dims]
    if extra:
        raise InvalidInputError(
            f"obs has dimensions {extra} that the ensemble lacks (ens dims: "
            f"{tuple(ens.dims)}). Rename or select them so both share their dimensions."
        )
    from ..grid import match_grid

    obs = match_grid(obs, ens)  # a rebuilt fine grid equals the truth's only to rounding
    try:
        ens, obs = xr.align(ens, obs, join="exact")
    except ValueError as err:
        raise InvalidInputError(
            "The coordinates of ens and obs differ, so cases cannot be paired: "
            f"{err}. Put obs on the ensemble's grid first, e.g. "
            "obs = obs.reindex_like(ens, method='nearest') or obs.interp_like(ens)."
        ) from err
    if ens.sizes[member_dim] < 1:
        raise InvalidInputError("The ensemble has no members.")
    # broadcast obs over any dims it lacks (not over members)
    target = ens.isel({member_dim: 0}, drop=True)
    obs = obs.broadcast_like(target).transpose(*target.dims)
    return ens, obs, member_dim


def _resolve_dim(dim, available: Iterable[Hashable], *, what: str = "obs") -> list[Hashable]:
    available = list(available)
    if dim is None:
        return available
    if isinstance(dim, str) or not isinstance(dim, Iterable):
        dim = [dim]
    dim = list(dim)
    missing = [d for d in dim if d not in available]
    if missing:
        raise InvalidInputError(
            f"Cannot reduce over {missing}: not a dimension of {what} (which has "
            f"{tuple(available)}; the member dimension is always reduced)."
        )
    return dim


def _mean(da: xr.DataArray, dims: list[Hashable]) -> xr.DataArray:
    return da.mean(dims, skipna=True) if dims else da


def _valid(ens: xr.DataArray, obs: xr.DataArray, member_dim: Hashable) -> xr.DataArray:
    return obs.notnull() & ens.notnull().all(member_dim)


def _spatial(da: xr.DataArray, y_dim=None, x_dim=None) -> tuple[Hashable, Hashable]:
    """``(y_dim, x_dim)``: the overrides if both given, else :func:`xstochsr.grid.spatial_dims`."""
    if y_dim is None or x_dim is None:
        from ..grid import spatial_dims

        found_y, found_x = spatial_dims(da)
        y_dim = found_y if y_dim is None else y_dim
        x_dim = found_x if x_dim is None else x_dim
    for d in (y_dim, x_dim):
        if d not in da.dims:
            raise InvalidInputError(
                f"{d!r} is not a dimension of the field (dimensions {tuple(da.dims)})."
            )
    if y_dim == x_dim:
        raise InvalidInputError(f"y_dim and x_dim are the same dimension {y_dim!r}.")
    return y_dim, x_dim


def _score_attrs(obs: xr.DataArray, long_name: str, *, units: bool = True) -> dict:
    attrs = {"long_name": long_name}
    if units and "units" in obs.attrs:
        attrs["units"] = obs.attrs["units"]
    elif not units:
        attrs["units"] = "1"
    return attrs


def _finish(da: xr.DataArray, name: str, attrs: dict) -> xr.DataArray:
    da = da.rename(name)
    da.attrs = attrs
    return da


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
    dims = _resolve_dim(dim, obs.dims)
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
    dims = _resolve_dim(dim, obs.dims)
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
    dims = _resolve_dim(dim, obs.dims)
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
