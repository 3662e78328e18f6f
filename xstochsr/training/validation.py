"""Validation scores of a generator's ensemble during training, from xstochsr.metrics.

Scores are computed in physical units with the functions users call
(:func:`xstochsr.metrics.crps`, :func:`xstochsr.metrics.rank_histogram`), on all pixels
and, for precipitation, on wet pixels (truth or any member at or above a threshold), where
dry ties cannot flatter the rank statistics.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..metrics import crps, rank_histogram

__all__ = ["scores"]


def scores(ens: np.ndarray, truth: np.ndarray, *,
           wet_threshold: float | None = None) -> dict[str, float]:
    """RMSE of the ensemble mean, spread, CRPS, rank-histogram KS and outlier proportion.

    Parameters
    ----------
    ens : numpy.ndarray
        (M, N, T, Y, X) ensemble, M members, physical units.
    truth : numpy.ndarray
        (N, T, Y, X) observations, NaN where missing.
    wet_threshold : float, optional
        Also score wet pixels only (``val_wet_crps``, ``val_wet_rank_ks``,
        ``val_wet_outlier_proportion``): truth or any member ``>= wet_threshold``.

    Returns
    -------
    dict
        ``val_rmse``, ``val_spread``, ``val_crps``, ``val_rank_ks``,
        ``val_outlier_proportion`` (and the ``val_wet_*`` scores).
    """
    valid = np.isfinite(truth)
    mean = ens.mean(axis=0)
    ens_da, obs_da = _as_dataarrays(ens, truth)
    rh = rank_histogram(ens_da, obs_da, member_dim="realization")
    out = {
        "val_rmse": float(np.sqrt(np.mean((mean - truth)[valid] ** 2))),
        "val_spread": float(np.sqrt(np.mean(ens.var(axis=0)[valid]))),
        "val_crps": float(np.nanmean(np.asarray(crps(ens_da, obs_da,
                                                         member_dim="realization")))),
        "val_rank_ks": float(np.asarray(rh.attrs["ks"]).mean()),
        "val_outlier_proportion": float(rh.attrs["outlier_proportion"]),
    }
    if wet_threshold is not None:
        out.update(wet_scores(ens_da, obs_da, wet_threshold))
    return out


def wet_scores(ens: xr.DataArray, obs: xr.DataArray, threshold: float) -> dict[str, float]:
    """CRPS, rank KS and outlier proportion where truth or any member >= ``threshold``."""
    wet = (obs >= threshold) | (ens >= threshold).any("realization")
    if not bool(wet.any()):
        return {"val_wet_crps": float("nan"), "val_wet_rank_ks": float("nan"),
                "val_wet_outlier_proportion": float("nan")}
    rh = rank_histogram(ens, obs, member_dim="realization", threshold=threshold,
                        threshold_on="any")
    c = np.asarray(crps(ens, obs.where(wet), member_dim="realization"))
    return {"val_wet_crps": float(np.nanmean(c)),
            "val_wet_rank_ks": float(np.asarray(rh.attrs["ks"]).mean()),
            "val_wet_outlier_proportion": float(rh.attrs["outlier_proportion"])}


def _as_dataarrays(ens: np.ndarray, truth: np.ndarray) -> tuple[xr.DataArray, xr.DataArray]:
    n_y, n_x = truth.shape[-2:]
    coords = {"y": ("y", np.arange(n_y, dtype=float), {"axis": "Y", "units": "1"}),
              "x": ("x", np.arange(n_x, dtype=float), {"axis": "X", "units": "1"})}
    obs = xr.DataArray(truth, dims=("sample", "frame", "y", "x"), coords=coords)
    e = xr.DataArray(ens, dims=("realization", "sample", "frame", "y", "x"), coords=coords)
    return e, obs
