"""Input plumbing shared by every score in :mod:`xstochsr.metrics` (private).

Checking and aligning ``ens`` and ``obs``, resolving ``dim``, finding the spatial and
time dimensions, and naming the results, so that all scores treat their inputs the
same way:

* ``ens`` has a member dimension (``member_dim``, default ``"realization"``, CF's name);
  ``obs`` has the same dimensions without it (fewer is allowed: it is broadcast).
* Coordinates must match exactly (``xr.align(join="exact")``); none are needed.
* A case (one point of ``obs``) where the observation or any member is NaN is skipped.
* ``dim=None`` reduces over every dimension except ``member_dim``; ``dim=[]`` keeps all
  (per-point scores); a name or a list reduces over those only.

Public scores call :func:`_prepare` once and then their kernel on the aligned arrays;
:func:`xstochsr.metrics.verify` prepares once and calls the kernels directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError, MissingAxisError


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


def _require_data(ens: xr.DataArray, obs: xr.DataArray, member_dim: Hashable) -> None:
    """Raise if in-memory ``obs``/``ens`` leave no case to score (dask input: not checked)."""
    if obs.chunks is not None or ens.chunks is not None:
        return
    if obs.size and not np.isfinite(obs.values).any():
        raise InvalidInputError(
            f"obs holds no finite value ({obs.size} values, all NaN or infinite): there is "
            "nothing to verify against. Check that the right variable and period were "
            "selected, and that missing values were decoded as intended."
        )
    if ens.size and not np.isfinite(ens.values).any():
        raise InvalidInputError(
            f"The ensemble holds no finite value ({ens.size} values, all NaN or infinite): "
            "there is nothing to verify. Check the output of downscale for this input."
        )
    if not bool(_valid(ens, obs, member_dim).any()):
        raise InvalidInputError(
            "No case has both a finite observation and finite values in every member: "
            "the NaN of obs and of the ensemble never leave a common valid point. Check "
            "that both cover the same area and period."
        )


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


def _axes(da: xr.DataArray):
    """:func:`xstochsr.grid.find_axes`, or on failure the same on index coordinates.

    Nothing in verification needs coordinate values, so dimensions without coordinate
    variables get integer ones before cf-xarray guesses their roles from their names
    (``y``/``x``, ``rlat``/``rlon``, ``time``...).
    """
    from ..grid import find_axes

    try:
        return find_axes(da)
    except MissingAxisError:
        bare = [d for d in da.dims if d not in da.coords]
        if not bare:
            raise
        indexed = da.assign_coords({d: np.arange(da.sizes[d]) for d in bare})
        return find_axes(indexed)


def _spatial(da: xr.DataArray, y_dim=None, x_dim=None) -> tuple[Hashable, Hashable]:
    """``(y_dim, x_dim)``: the overrides if both given, else found from ``da``."""
    if y_dim is None or x_dim is None:
        try:
            found_y, found_x = _axes(da).spatial
        except MissingAxisError as err:
            raise MissingAxisError(
                f"{err} Or name the spatial dimensions: y_dim='...', x_dim='...'."
            ) from err
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


def _time(da: xr.DataArray, time_dim=None, *, required: bool = True) -> Hashable | None:
    """Return the time dimension: ``time_dim`` if given, else the T axis found with cf-xarray."""
    if time_dim is not None:
        if time_dim not in da.dims:
            raise InvalidInputError(
                f"time_dim={time_dim!r} is not a dimension of the field (dimensions "
                f"{tuple(da.dims)})."
            )
        return time_dim
    try:
        t = _axes(da).t
    except MissingAxisError:
        t = None
    bare = [d for d in da.dims if d not in da.coords]
    if t is None and bare:  # a time dim without coordinate values, e.g. named "time"
        try:
            t = _axes(da.assign_coords({d: np.arange(da.sizes[d]) for d in bare})).t
        except MissingAxisError:
            t = None
    if t is None and required:
        raise MissingAxisError(
            f"No time dimension found among {tuple(da.dims)}. Pass time_dim='<name>' "
            "(e.g. time_dim='frame'), or give the time coordinate a datetime dtype or "
            "the attribute axis='T'."
        )
    return t


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
