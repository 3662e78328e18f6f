"""All verification scores of an ensemble against the truth, as one Dataset.

``verify`` checks and aligns its inputs once, then calls each score's kernel on the
aligned arrays (the public score functions each do the same preparation themselves).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError, UnitsError
from ._inputs import _prepare, _require_data, _resolve_dim, _spatial, _time, _valid
from .blocks import _block_edge_ratio
from .continuous import _bias, _mae, _rmse, _spread_skill_ratio
from .crps import _crps, _pooled_crps
from .distribution import _exceedance_frequency, _quantile_ratio
from .fss import _fss
from .rank import _rank_histogram, _rank_statistics, rank_summary
from .spectra import _log_spectral_distance, power_spectrum
from .temporal import _frame_change, _lag_autocorrelation

__all__ = ["verify"]

#: Quantiles of the observation used as thresholds when none are given.
DEFAULT_THRESHOLD_QUANTILES = (0.9, 0.99)

#: Wet threshold of precipitation when none is given: 0.1 mm/h, in the field's units.
DEFAULT_WET_THRESHOLD = (0.1, "mm h-1")


def _default_wet_threshold(obs: xr.DataArray) -> float | None:
    """0.1 mm/h in the units of ``obs`` if it is CF precipitation with rate units, else None."""
    from ..units import affine, is_precipitation

    if not is_precipitation(obs.attrs.get("standard_name")) or "units" not in obs.attrs:
        return None
    value, units = DEFAULT_WET_THRESHOLD
    try:
        a, b = affine(units, str(obs.attrs["units"]))
    except UnitsError:
        return None  # e.g. an amount in kg m-2: no rate threshold applies
    return a * value + b


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
    wet_threshold: float | None = None,
    factor: int | None = None,
    lags: Sequence[int] = (1, 2, 3),
    change_quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    time_dim: Hashable | None = None,
) -> xr.Dataset:
    """Verify an ensemble against the truth with every score of :mod:`xstochsr.metrics`.

    Calibration (rank histogram and its KS / KL / outlier summaries, on all cases and
    on wet cases, spread-skill ratio), accuracy (CRPS, fair CRPS, pooled CRPS,
    ensemble-mean RMSE, MAE, bias), texture (power spectra, log spectral distance,
    block-edge ratio), spatial skill (FSS), distribution and extremes (quantile ratios,
    exceedance frequencies) and time (lag autocorrelation, frame-to-frame changes), as
    Leinonen et al. (2021) and Harris et al. (2022) judge their generators. Inputs are
    checked and aligned once. No coordinate values are needed: dimensions are found
    from CF attributes or, without coordinates, from their names (``y``, ``x``,
    ``time``...), or given with ``y_dim``, ``x_dim``, ``time_dim``.

    Two Datasets holding a wind pair (CF standard_names, e.g. eastward/northward wind)
    are verified by :func:`xstochsr.metrics.verify_wind`: each component's scores plus
    divergence, vorticity, kinetic-energy spectra and geostrophic balance (the other
    arguments apply to each component's scores).

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
        LSD, FSS, pooled CRPS, block-edge ratio) always consume the spatial dimensions;
        temporal scores always consume time.
    thresholds : float or sequence of float, optional
        Thresholds for FSS and the exceedance frequencies (``wet_fraction_*``), in the
        units of ``obs``. Default: the observation's 90th and 99th percentiles (this
        computes ``obs`` if it is dask-backed; pass thresholds to keep everything lazy).
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
    wet_threshold : float, optional
        Threshold (``>=``, units of ``obs``) of the wet-case rank statistics (see
        :func:`xstochsr.metrics.rank_statistics`). Default: 0.1 mm/h converted to the
        units of ``obs`` when its ``standard_name`` names precipitation and its units
        are a rate or flux; otherwise no wet-case statistics.
    factor : int, optional
        Downscaling factor for the block-edge ratio; default ``ens.attrs
        ["xstochsr_factor"]`` (set by :func:`xstochsr.downscale`), else not scored.
    lags : sequence of int, default (1, 2, 3)
        Lags of the temporal autocorrelation (those shorter than the series are kept).
    change_quantiles : sequence of float, default (0.5, 0.9, 0.99)
        Quantiles of ``|x[t + 1] - x[t]|`` compared by ``frame_change_quantile_*``.
    time_dim : str, optional
        Time dimension; found with cf-xarray (or by name) if not given. Temporal scores
        are reported when there is one with at least two frames.

    Returns
    -------
    xarray.Dataset
        Always: ``rank_histogram`` (dim ``rank``), ``rank_ks``, ``rank_kl``,
        ``rank_outlier_proportion``, ``rank_outlier_proportion_calibrated``
        (``2 / (M + 1)``), ``crps``, ``crps_fair`` and ``spread_skill_ratio`` (2+
        members), ``pooled_crps_avg`` and ``pooled_crps_max`` (dim ``pool_size``),
        ``rmse``, ``mae``, ``bias``, ``log_spectral_distance``,
        ``power_spectrum_ens`` and ``power_spectrum_obs`` (dim ``wavenumber``),
        ``fss`` (dims ``threshold``, ``scale``), ``quantile_ratio`` (dim
        ``quantile``), ``wet_fraction_ens``, ``wet_fraction_obs`` and
        ``exceedance_ratio`` (dim ``threshold``).
        With a wet threshold: ``rank_histogram_wet``, ``rank_ks_wet``,
        ``rank_kl_wet``, ``rank_outlier_proportion_wet``, ``rank_n_cases_wet``.
        With a factor: ``block_edge_ratio_ens``, ``block_edge_ratio_obs``.
        With a time axis: ``lag_correlation_ens``, ``lag_correlation_obs``,
        ``lag_correlation_diff`` (dim ``lag``), ``frame_change_std_ensemble``,
        ``frame_change_std_observation``, ``frame_change_std_ratio`` and
        ``frame_change_quantile_ensemble`` / ``_observation`` / ``_ratio`` (dim
        ``change_quantile``). Lazy if the inputs are dask-backed.

    Raises
    ------
    InvalidInputError
        If ``obs`` or the ensemble holds no finite value, or they share no valid case
        (checked for in-memory input; for dask input when thresholds are derived).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.gamma(2.0, size=(8, 3, 16, 16)),
    ...                    dims=("realization", "time", "y", "x"))
    >>> obs = xr.DataArray(rng.gamma(2.0, size=(3, 16, 16)), dims=("time", "y", "x"))
    >>> ds = verify(ens, obs, thresholds=[1.0, 4.0], factor=4)
    >>> sorted(ds.data_vars)[:4]
    ['bias', 'block_edge_ratio_ens', 'block_edge_ratio_obs', 'crps']
    >>> 0.9 < float(ds.spread_skill_ratio) < 1.1
    True
    >>> ds.lag_correlation_ens.dims
    ('lag',)
    """
    if isinstance(ens, xr.Dataset) and isinstance(obs, xr.Dataset):  # a wind pair
        from .physics import verify_wind

        return verify_wind(
            ens, obs, member_dim=member_dim, dim=dim, y_dim=y_dim, x_dim=x_dim,
            thresholds=thresholds, scales=scales, pool_sizes=pool_sizes, quantiles=quantiles,
            seed=seed, wet_threshold=wet_threshold, factor=factor, lags=lags,
            change_quantiles=change_quantiles, time_dim=time_dim,
        )
    from ..validation import check_verify_inputs  # the one entry check of every input

    check_verify_inputs(ens, obs, member_dim)
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    _require_data(ens, obs, member_dim)
    y, x = _spatial(obs, y_dim, x_dim)
    dims = _resolve_dim(dim, obs.dims)
    ns = [d for d in dims if d not in (y, x)]  # non-spatial dims to reduce
    t = _time(obs, time_dim, required=False)
    if t in (y, x):
        t = None
    m = ens.sizes[member_dim]

    if thresholds is None:
        with warnings.catch_warnings():  # all-NaN obs: said below, as an error
            warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
            q = obs.quantile(list(DEFAULT_THRESHOLD_QUANTILES), skipna=True).values
        thr = np.unique(np.asarray(q))
        thr_source = f"observed quantiles {list(DEFAULT_THRESHOLD_QUANTILES)}"
        if not np.all(np.isfinite(thr)):
            raise InvalidInputError(
                "obs holds no finite value (all NaN), so there is nothing to verify "
                "against and no default threshold. Check that the right variable and "
                "period were selected."
            )
    else:
        thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
        thr_source = "given"
    if not np.all(np.isfinite(thr)):
        raise InvalidInputError(f"Thresholds must be finite, got {thr.tolist()}.")
    wet = _default_wet_threshold(obs) if wet_threshold is None else float(wet_threshold)
    if wet is not None and not np.isfinite(wet):
        raise InvalidInputError(f"wet_threshold must be a finite number, got {wet_threshold}.")
    if factor is None:
        factor = ens.attrs.get("xstochsr_factor")
        factor_given = False
    else:
        factor_given = True
    valid = _valid(ens, obs, member_dim)
    ev, ov = ens.where(valid), obs.where(valid)  # the same cases for both in field scores
    args = (ens, obs, member_dim)

    out = {}
    # calibration: all cases, then the wet ones
    rh = _rank_histogram(*args, dims, seed)
    out["rank_histogram"] = rh
    summary = rank_summary(rh)
    for name in ("ks", "kl", "outlier_proportion"):
        out[f"rank_{name}"] = summary[name]
    out["rank_outlier_proportion_calibrated"] = xr.DataArray(
        2.0 / (m + 1),
        attrs={"long_name": "outlier proportion of a calibrated ensemble, 2/(M+1)", "units": "1"},
    )
    if wet is not None:
        ws = _rank_statistics(*args, dims, seed, wet)
        out["rank_histogram_wet"] = ws["rank_histogram"]
        for name in ("ks", "kl", "outlier_proportion", "n_cases"):
            out[f"rank_{name}_wet"] = ws[name]
    # accuracy
    out["crps"] = _crps(*args, dims)
    if m > 1:
        out["crps_fair"] = _crps(*args, dims, fair=True)
        out["spread_skill_ratio"] = _spread_skill_ratio(*args, dims)
    sizes = [int(k) for k in pool_sizes if int(k) <= min(obs.sizes[y], obs.sizes[x])]
    if sizes:
        for method in ("avg", "max"):
            pooled = [
                _pooled_crps(*args, [*ns, y, x], y, x, k=k, method=method) for k in sizes
            ]
            da = xr.concat(pooled, dim=xr.DataArray(sizes, dims="pool_size", name="pool_size"))
            da.attrs = dict(pooled[0].attrs, long_name=f"CRPS after {method}-pooling")
            da.attrs.pop("pool_size", None)
            out[f"pooled_crps_{method}"] = da
    out["rmse"] = _rmse(*args, dims)
    out["mae"] = _mae(*args, dims)
    out["bias"] = _bias(*args, dims)
    # texture (masked fields on their largest valid rectangle)
    sp = dict(y_dim=y, x_dim=x)
    out["log_spectral_distance"] = _log_spectral_distance(*args, ns, y, x)
    out["power_spectrum_ens"] = power_spectrum(ev, dim=[*ns, member_dim], **sp)
    out["power_spectrum_obs"] = power_spectrum(ov, dim=ns, **sp)
    if factor is not None:
        fits = all(obs.sizes[d] > int(factor) for d in (y, x))
        if fits or factor_given:
            block = [_block_edge_ratio(ev, y, x, [*ns, member_dim], factor),
                     _block_edge_ratio(ov, y, x, ns, factor)]
            out["block_edge_ratio_ens"], out["block_edge_ratio_obs"] = block
    # spatial skill, distribution and extremes
    out["fss"] = _fss(*args, ns, y, x, thr, scales)
    out["quantile_ratio"] = _quantile_ratio(*args, dims, quantiles)
    ex = _exceedance_frequency(*args, dims, thr)
    out["wet_fraction_ens"] = ex["ensemble"].rename("wet_fraction")
    out["wet_fraction_obs"] = ex["observation"].rename("wet_fraction")
    out["exceedance_ratio"] = ex["ratio"]
    # time
    if t is not None and obs.sizes[t] >= 2:
        tdims = [t, *[d for d in dims if d != t]]
        ks = [int(k) for k in np.atleast_1d(lags) if 1 <= int(k) < obs.sizes[t]]
        if ks:
            ac = _lag_autocorrelation(*args, t, tdims, ks)
            out["lag_correlation_ens"] = ac["ensemble"]
            out["lag_correlation_obs"] = ac["observation"]
            out["lag_correlation_diff"] = ac["difference"]
        fc = _frame_change(*args, t, tdims, 1, change_quantiles)
        fc = fc.rename(quantile="change_quantile")
        for name in fc.data_vars:
            out[f"frame_change_{name}"] = fc[name]
    ds = xr.Dataset(out)
    ds.attrs = {
        "title": "xstochsr ensemble verification",
        "n_members": int(m),
        "thresholds": thr_source,
        "references": "Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9):7211-7223",
    }
    if wet is not None:
        ds.attrs["wet_threshold"] = wet
    if "block_edge_ratio_ens" in ds:
        ds.attrs["factor"] = int(factor)
    if "frame_change_std_ratio" in ds:
        ds.attrs["time_dim"] = str(t)
    return ds
