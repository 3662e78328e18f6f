"""Verification of stochastic downscaling ensembles (xarray in, xarray out).

Every score takes ``(ens, obs, *, member_dim="realization", dim=None, ...)``: ``ens`` has
a member dimension, ``obs`` the same dimensions without it. ``dim=None`` reduces over
all dimensions, ``dim=[]`` keeps them all. Dask-backed inputs give lazy results. See
``docs/verification.md`` for a guide.
"""

from .continuous import bias, mae, rmse, spread_skill_ratio
from .crps import crps, pooled_crps
from .distribution import quantile_ratio, quantiles, wet_fraction
from .fss import fss
from .rank import rank_histogram, rank_summary, ranks
from .spectra import log_spectral_distance, power_spectrum
from .streaming import CRPSAccumulator, RankHistogramAccumulator
from .verify import verify

__all__ = [
    "rank_histogram",
    "rank_summary",
    "ranks",
    "crps",
    "pooled_crps",
    "rmse",
    "mae",
    "bias",
    "spread_skill_ratio",
    "power_spectrum",
    "log_spectral_distance",
    "fss",
    "quantiles",
    "quantile_ratio",
    "wet_fraction",
    "verify",
    "RankHistogramAccumulator",
    "CRPSAccumulator",
]
