"""Fractions skill score of the ensemble (Roberts & Lean 2008), at thresholds and scales."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _finish, _prepare, _resolve_dim, _spatial

__all__ = ["fss"]


def _fss_kernel(x, y, *, thresholds, scales):
    """Per field sums ``(sum (Pf-Po)^2, sum Pf^2, sum Po^2)``; x (..., M, Y, X), y (..., Y, X).

    Returns (..., n_thresholds, n_scales, 3).
    """
    from scipy.ndimage import uniform_filter

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    valid = np.isfinite(y) & np.all(np.isfinite(x), axis=-3)
    lead = y.shape[:-2]
    out = np.zeros((*lead, len(thresholds), len(scales), 3))
    for it, thr in enumerate(thresholds):
        with np.errstate(invalid="ignore"):
            # ensemble probability of exceedance; float so the filter does not truncate
            pf = np.where(valid, np.mean(x >= thr, axis=-3), 0.0)
            po = np.where(valid, (y >= thr).astype(np.float64), 0.0)
        for js, n in enumerate(scales):
            if n > 1:
                size = (1,) * len(lead) + (n, n)
                ff = uniform_filter(pf, size=size, mode="constant", cval=0.0)
                fo = uniform_filter(po, size=size, mode="constant", cval=0.0)
            else:
                ff, fo = pf, po
            ff, fo = ff * valid, fo * valid
            out[..., it, js, 0] = np.sum((ff - fo) ** 2, axis=(-2, -1))
            out[..., it, js, 1] = np.sum(ff**2, axis=(-2, -1))
            out[..., it, js, 2] = np.sum(fo**2, axis=(-2, -1))
    return out


def fss(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    thresholds: float | Sequence[float],
    scales: int | Sequence[int] = (1, 3, 9),
    member_dim: Hashable = "realization",
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Ensemble fractions skill score at given thresholds and neighbourhood sizes.

    For threshold ``q`` and neighbourhood ``n x n``, the forecast fraction ``Pf`` is the
    neighbourhood mean of the ensemble probability of ``ens >= q`` (the fraction of
    members, averaged over the window), the observed fraction ``Po`` that of
    ``obs >= q``; the windows are zero-padded at the edges (as ``pysteps``). Then

    ``FSS = 1 - sum (Pf - Po)**2 / (sum Pf**2 + sum Po**2)``

    with the sums over the spatial dimensions and ``dim`` taken *before* the ratio
    (Roberts & Lean 2008). 1 is perfect, 0 no skill; NaN where neither field reaches
    the threshold. Cells where the observation or a member is NaN count as not
    exceeding and are left out of the sums.

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`xstochsr.metrics.crps`.
    thresholds : float or sequence of float
        Exceedance thresholds (``>=``), in the units of ``obs``.
    scales : int or sequence of int, default (1, 3, 9)
        Neighbourhood widths in grid cells.
    dim : str or list of str, optional
        Non-spatial dimensions to accumulate over (None: all). The spatial dimensions
        are always summed.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.

    Returns
    -------
    xarray.DataArray
        Named ``fss``, dimensionless, with dimensions ``threshold`` and ``scale``
        (plus any not reduced); a scalar ``thresholds`` or ``scales`` gives a scalar
        coordinate instead of a dimension.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> obs = xr.DataArray(np.eye(8), dims=("y", "x"))
    >>> ens = obs.roll(x=1).expand_dims(realization=1)
    >>> fss(ens, obs, thresholds=0.5, scales=[1, 3], y_dim="y", x_dim="x").values.round(3)
    array([0.   , 0.835])
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    y, x = _spatial(obs, y_dim, x_dim)
    keep = [d for d in obs.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep, what="obs (spatial dims excluded)")
    return _fss(ens, obs, member_dim, dims, y, x, thresholds, scales)


def _fss(ens, obs, member_dim, dims, y, x, thresholds, scales=(1, 3, 9)):
    """:func:`fss` on prepared inputs; ``dims`` are the non-spatial dims to sum over."""
    thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
    sc = np.atleast_1d(np.asarray(scales))
    if thr.ndim != 1 or thr.size == 0 or sc.ndim != 1 or sc.size == 0:
        raise InvalidInputError("thresholds and scales must be numbers or 1-D sequences.")
    if not np.all(np.isfinite(thr)):
        raise InvalidInputError(f"thresholds must be finite, got {thr.tolist()}.")
    if not np.issubdtype(sc.dtype, np.integer) or np.any(sc < 1):
        raise InvalidInputError(f"scales must be positive integers, got {sc.tolist()}.")
    if ens.chunks is not None or obs.chunks is not None:
        ens = ens.chunk({member_dim: -1, y: -1, x: -1})
        obs = obs.chunk({y: -1, x: -1})
    sums = xr.apply_ufunc(
        _fss_kernel,
        ens,
        obs,
        input_core_dims=[[member_dim, y, x], [y, x]],
        output_core_dims=[["threshold", "scale", "term"]],
        kwargs={"thresholds": thr.tolist(), "scales": [int(s) for s in sc]},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"threshold": thr.size, "scale": sc.size, "term": 3}},
    )
    if dims:
        sums = sums.sum(dims)
    num = sums.isel(term=0)
    den = sums.isel(term=1) + sums.isel(term=2)
    out = 1 - num / den.where(den > 0)
    thr_attrs = {"long_name": "exceedance threshold (>=)"}
    if "units" in obs.attrs:
        thr_attrs["units"] = obs.attrs["units"]
    out = out.assign_coords(
        threshold=("threshold", thr, thr_attrs),
        scale=("scale", sc.astype(int), {"long_name": "neighbourhood width", "units": "grid_cell"}),
    ).transpose("threshold", "scale", ...)
    # scalar arguments give scalar coordinates, as with .sel(threshold=...)
    if np.ndim(thresholds) == 0:
        out = out.squeeze("threshold")
    if np.ndim(scales) == 0:
        out = out.squeeze("scale")
    return _finish(out, "fss", {"long_name": "fractions skill score", "units": "1"})
