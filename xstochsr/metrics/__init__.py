"""Verification of stochastic downscaling ensembles (xarray in, xarray out).

Every score takes ``(ens, obs, *, member_dim="realization", dim=None, ...)``: ``ens`` has
a member dimension, ``obs`` the same dimensions without it. ``dim=None`` reduces over
all dimensions, ``dim=[]`` keeps them all. Dask-backed inputs give lazy results. See
``docs/verification.md`` for a guide.

Beyond the scores of Leinonen et al. (2021): wet-case rank statistics
(:func:`rank_statistics`), temporal scores (:func:`lag_autocorrelation`,
:func:`frame_change`), block artifacts (:func:`block_edge_ratio`) and extremes
(:func:`quantile_ratio`, :func:`exceedance_frequency`). Physics of winds
(:mod:`xstochsr.metrics.physics`): divergence, vorticity, geostrophic wind, kinetic-energy
spectra, and :func:`verify_wind` (what :func:`verify` runs on two Datasets).
"""

from .blocks import block_edge_ratio
from .continuous import bias, mae, rmse, spread_skill_ratio
from .crps import crps, pooled_crps
from .distribution import exceedance_frequency, quantile_ratio, quantiles, wet_fraction
from .fss import fss
from .physics import (
    GeostrophyWarning,
    ageostrophic_ratio,
    divergence,
    divergence_ratio,
    geostrophic_wind,
    kinetic_energy_lsd,
    kinetic_energy_spectrum,
    spectral_slope,
    thermal_wind_residual,
    verify_wind,
    vorticity,
)
from .rank import rank_histogram, rank_statistics, rank_summary, ranks
from .seams import seam_score
from .spectra import log_spectral_distance, power_spectrum
from .streaming import CRPSAccumulator, RankHistogramAccumulator
from .temporal import frame_change, lag_autocorrelation
from .verify import verify

__all__ = [
    "rank_histogram",
    "rank_summary",
    "rank_statistics",
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
    "exceedance_frequency",
    "lag_autocorrelation",
    "frame_change",
    "block_edge_ratio",
    "seam_score",
    "verify",
    "RankHistogramAccumulator",
    "CRPSAccumulator",
    "divergence",
    "vorticity",
    "geostrophic_wind",
    "ageostrophic_ratio",
    "thermal_wind_residual",
    "GeostrophyWarning",
    "kinetic_energy_spectrum",
    "spectral_slope",
    "kinetic_energy_lsd",
    "divergence_ratio",
    "verify_wind",
]
