"""Validation scores of a generator's ensemble during training, from xstochsr.metrics."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..metrics import crps, rank_histogram


def scores(ens: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE of the ensemble mean, spread, CRPS, rank-histogram KS and outlier proportion.

    Parameters
    ----------
    ens : numpy.ndarray
        (M, N, T, Y, X) ensemble, M members.
    truth : numpy.ndarray
        (N, T, Y, X) observations, NaN where missing.

    Returns
    -------
    dict
        ``val_rmse``, ``val_spread``, ``val_crps``, ``val_rank_ks``,
        ``val_outlier_proportion``.
    """
    valid = np.isfinite(truth)
    mean = ens.mean(axis=0)
    ens_da, obs_da = _as_dataarrays(ens, truth)
    rh = rank_histogram(ens_da, obs_da, member_dim="realization")
    return {
        "val_rmse": float(np.sqrt(np.mean((mean - truth)[valid] ** 2))),
        "val_spread": float(np.sqrt(np.mean(ens.var(axis=0)[valid]))),
        "val_crps": float(np.nanmean(np.asarray(crps(ens_da, obs_da,
                                                         member_dim="realization")))),
        "val_rank_ks": float(np.asarray(rh.attrs["ks"]).mean()),
        "val_outlier_proportion": float(rh.attrs["outlier_proportion"]),
    }


def _as_dataarrays(ens: np.ndarray, truth: np.ndarray) -> tuple[xr.DataArray, xr.DataArray]:
    n_y, n_x = truth.shape[-2:]
    coords = {"y": ("y", np.arange(n_y, dtype=float), {"axis": "Y", "units": "1"}),
              "x": ("x", np.arange(n_x, dtype=float), {"axis": "X", "units": "1"})}
    obs = xr.DataArray(truth, dims=("sample", "frame", "y", "x"), coords=coords)
    e = xr.DataArray(ens, dims=("realization", "sample", "frame", "y", "x"), coords=coords)
    return e, obs
