"""All verification scores of an ensemble against the truth, as one Dataset."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from .continuous import _prepare, _resolve_dim, _spatial, bias, mae, rmse, spread_skill_ratio
from .crps import crps, pooled_crps
from .distribution import quantile_ratio, wet_fraction
from .fss import fss
from .rank import rank_histogram, rank_summary
from .spectra import log_spectral_distance, power_spectrum

__all__ = ["verify"]

#: Quantiles of the observation used as thresholds when none are given.
DEFAULT_THRESHOLD_QUANTILES = (0.9, 0.99)


def verify(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    thresholds: float | Sequence[float] | None = None,
    scales: Sequence[int] = (1, 3, 9),
    pool_sizes: Sequence[int] = (4,),
    quantiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    seed=0,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.Dataset:
    """Verify an ensemble against the truth with every score of :mod:`xstochsr.metrics`.

    Calibration (rank histogram and its KS / KL / outlier summaries, spread-skill
    ratio), accuracy (CRPS, fair CRPS, pooled CRPS, ensemble-mean RMSE, MAE, bias),
    texture (power spectra, log spectral distance), spatial skill (FSS) and
    distribution (quantile ratios, wet fractions), as Leinonen et al. (2021) and
    Harris et al. (2022) judge their generators.

    Parameters
    ----------
    ens : xarray.DataArray
        Ensemble, e.g. from :func:`xstochsr.downscale`, with dimension ``member_dim``
        and two spatial dimensions.
    obs : xarray.DataArray
        Truth on the same fine grid, without ``member_dim``.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    dim : str or list of str, optional
        Dimensions to reduce over (None: all). Scores defined on whole fields (spectra,
        LSD, FSS, pooled CRPS) always consume the spatial dimensions.
    thresholds : float or sequence of float, optional
        Thresholds for FSS and the wet fractions, in the units of ``obs``. Default: the
        observation's 90th and 99th percentiles (this computes ``obs`` if it is
        dask-backed; pass thresholds to keep everything lazy).
    scales : sequence of int, default (1, 3, 9)
        FSS neighbourhood widths in grid cells.
    pool_sizes : sequence of int, default (4,)
        Window sizes of the pooled CRPS (sizes larger than the domain are skipped).
    quantiles : sequence of float, default (0.5, 0.9, 0.99, 0.999)
        Quantiles compared by ``quantile_ratio``.
    seed : int, numpy.random.Generator or None, default 0
        Seed of the rank histogram's random tie-breaking.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.

    Returns
    -------
    xarray.Dataset
        Variables ``rank_histogram`` (dim ``rank``), ``rank_ks``, ``rank_kl``,
        ``rank_outlier_proportion``, ``crps``, ``crps_fair``, ``pooled_crps_avg`` and
        ``pooled_crps_max`` (dim ``pool_size``), ``rmse``, ``mae``, ``bias``,
        ``spread_skill_ratio``, ``log_spectral_distance``, ``power_spectrum_ens`` and
        ``power_spectrum_obs`` (dim ``wavenumber``), ``fss`` (dims ``threshold``,
        ``scale``), ``quantile_ratio`` (dim ``quantile``), ``wet_fraction_ens`` and
        ``wet_fraction_obs`` (dim ``threshold``). Lazy if the inputs are dask-backed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.gamma(2.0, size=(8, 3, 16, 16)),
    ...                    dims=("realization", "time", "y", "x"))
    >>> obs = xr.DataArray(rng.gamma(2.0, size=(3, 16, 16)), dims=("time", "y", "x"))
    >>> ds = verify(ens, obs, thresholds=[1.0, 4.0], y_dim="y", x_dim="x")
    >>> sorted(ds.data_vars)[:4]
    ['bias', 'crps', 'crps_fair', 'fss']
    >>> 0.9 < float(ds.spread_skill_ratio) < 1.1
    True
    """
    from ..validation import check_verify_inputs  # the one entry check of every input

    check_verify_inputs(ens, obs, member_dim)
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    y, x = _spatial(obs, y_dim, x_dim)
    dims = _resolve_dim(dim, obs.dims)
    ns = [d for d in dims if d not in (y, x)]  # non-spatial dims to reduce
    sp = dict(y_dim=y, x_dim=x)
    kw = dict(member_dim=member_dim)

    if thresholds is None:
        thr = np.unique(
            np.asarray(obs.quantile(list(DEFAULT_THRESHOLD_QUANTILES), skipna=True).values)
        )
        thr_source = f"observed quantiles {list(DEFAULT_THRESHOLD_QUANTILES)}"
    else:
        thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
        thr_source = "given"
    if not np.all(np.isfinite(thr)):
        raise InvalidInputError(f"Thresholds must be finite, got {thr.tolist()}.")

    out = {}
    rh = rank_histogram(ens, obs, dim=dims, seed=seed, **kw)
    out["rank_histogram"] = rh
    summary = rank_summary(rh)
    for name in ("ks", "kl", "outlier_proportion"):
        out[f"rank_{name}"] = summary[name]
    out["crps"] = crps(ens, obs, dim=dims, **kw)
    if ens.sizes[member_dim] > 1:
        out["crps_fair"] = crps(ens, obs, dim=dims, fair=True, **kw)
        out["spread_skill_ratio"] = spread_skill_ratio(ens, obs, dim=dims, **kw)
    sizes = [int(k) for k in pool_sizes if int(k) <= min(obs.sizes[y], obs.sizes[x])]
    if sizes:
        for method in ("avg", "max"):
            pooled = [
                pooled_crps(ens, obs, k=k, method=method, dim=[*ns, y, x], **kw, **sp)
                for k in sizes
            ]
            da = xr.concat(pooled, dim=xr.DataArray(sizes, dims="pool_size", name="pool_size"))
            da.attrs = dict(pooled[0].attrs, long_name=f"CRPS after {method}-pooling")
            da.attrs.pop("pool_size", None)
            out[f"pooled_crps_{method}"] = da
    out["rmse"] = rmse(ens, obs, dim=dims, **kw)
    out["mae"] = mae(ens, obs, dim=dims, **kw)
    out["bias"] = bias(ens, obs, dim=dims, **kw)
    out["log_spectral_distance"] = log_spectral_distance(ens, obs, dim=ns, **kw, **sp)
    out["power_spectrum_ens"] = power_spectrum(ens, dim=[*ns, member_dim], **sp)
    out["power_spectrum_obs"] = power_spectrum(obs, dim=ns, **sp)
    out["fss"] = fss(ens, obs, thresholds=thr, scales=scales, dim=ns, **kw, **sp)
    out["quantile_ratio"] = quantile_ratio(ens, obs, quantiles=quantiles, dim=dims, **kw)
    # wet fractions on the same (valid) cases for both
    valid = obs.notnull() & ens.notnull().all(member_dim)
    out["wet_fraction_ens"] = wet_fraction(ens.where(valid), threshold=thr, dim=[*dims, member_dim])
    out["wet_fraction_obs"] = wet_fraction(obs.where(valid), threshold=thr, dim=dims)
    ds = xr.Dataset(out)
    ds.attrs = {
        "title": "xstochsr ensemble verification",
        "n_members": int(ens.sizes[member_dim]),
        "thresholds": thr_source,
        "references": "Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9):7211-7223",
    }
    return ds
