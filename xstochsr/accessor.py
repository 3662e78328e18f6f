"""The ``.sr`` accessor: a doorway, not a room.

Each method is one call into a plain function, so ``da.sr.f(...)`` and
``xstochsr.f(da, ...)`` always agree. ``__init__`` only stores the object (xarray turns
errors raised there into opaque ones); validation happens in the functions.
"""

from __future__ import annotations

import xarray as xr


@xr.register_dataarray_accessor("sr")
class SRAccessor:
    """Stochastic super-resolution methods on a DataArray (``da.sr``)."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    # --- downscaling ------------------------------------------------------------------
    def downscale(self, **kwargs):
        """Ensemble of fine fields; see :func:`xstochsr.downscale`."""
        from .api import downscale

        return downscale(self._obj, **kwargs)

    def coarsen(self, factor: int, boundary: str = "trim"):
        """Block-average by ``factor``; see :func:`xstochsr.coarsening.coarsen`."""
        from .coarsening import coarsen

        return coarsen(self._obj, factor, boundary=boundary)

    def to_dataset(self, **kwargs):
        """CF Dataset for netCDF; see :func:`xstochsr.cf_output.to_cf_dataset`."""
        from .cf_output import to_cf_dataset

        return to_cf_dataset(self._obj, **kwargs)

    # --- regridding -------------------------------------------------------------------
    def regrid(self, target, **kwargs):
        """Regrid onto ``target``'s grid; see :func:`xstochsr.regrid.regrid`."""
        from .regrid import regrid

        return regrid(self._obj, target, **kwargs)

    # --- verification (the DataArray is the ensemble) ---------------------------------
    def verify(self, obs, **kwargs):
        """All scores as one Dataset; see :func:`xstochsr.metrics.verify`."""
        from .metrics import verify

        return verify(self._obj, obs, **kwargs)

    def rank_histogram(self, obs, **kwargs):
        """Rank histogram of ``obs`` in the ensemble (:func:`xstochsr.metrics.rank_histogram`)."""
        from .metrics import rank_histogram

        return rank_histogram(self._obj, obs, **kwargs)

    def crps(self, obs, **kwargs):
        """Ensemble CRPS; see :func:`xstochsr.metrics.crps`."""
        from .metrics import crps

        return crps(self._obj, obs, **kwargs)

    def pooled_crps(self, obs, **kwargs):
        """Pooled CRPS; see :func:`xstochsr.metrics.pooled_crps`."""
        from .metrics import pooled_crps

        return pooled_crps(self._obj, obs, **kwargs)

    def rmse(self, obs, **kwargs):
        """Ensemble-mean RMSE; see :func:`xstochsr.metrics.rmse`."""
        from .metrics import rmse

        return rmse(self._obj, obs, **kwargs)

    def mae(self, obs, **kwargs):
        """Ensemble-mean MAE; see :func:`xstochsr.metrics.mae`."""
        from .metrics import mae

        return mae(self._obj, obs, **kwargs)

    def bias(self, obs, **kwargs):
        """Ensemble-mean bias; see :func:`xstochsr.metrics.bias`."""
        from .metrics import bias

        return bias(self._obj, obs, **kwargs)

    def spread_skill_ratio(self, obs, **kwargs):
        """Spread-skill ratio; see :func:`xstochsr.metrics.spread_skill_ratio`."""
        from .metrics import spread_skill_ratio

        return spread_skill_ratio(self._obj, obs, **kwargs)

    def power_spectrum(self, **kwargs):
        """Radially averaged power spectrum; see :func:`xstochsr.metrics.power_spectrum`."""
        from .metrics import power_spectrum

        return power_spectrum(self._obj, **kwargs)

    def log_spectral_distance(self, obs, **kwargs):
        """Log spectral distance; see :func:`xstochsr.metrics.log_spectral_distance`."""
        from .metrics import log_spectral_distance

        return log_spectral_distance(self._obj, obs, **kwargs)

    def fss(self, obs, **kwargs):
        """Fractions skill score; see :func:`xstochsr.metrics.fss`."""
        from .metrics import fss

        return fss(self._obj, obs, **kwargs)

    def quantile_ratio(self, obs, **kwargs):
        """Quantile ratios to the observed; see :func:`xstochsr.metrics.quantile_ratio`."""
        from .metrics import quantile_ratio

        return quantile_ratio(self._obj, obs, **kwargs)

    def wet_fraction(self, **kwargs):
        """Wet fraction; see :func:`xstochsr.metrics.wet_fraction`."""
        from .metrics import wet_fraction

        return wet_fraction(self._obj, **kwargs)

    # --- plots ------------------------------------------------------------------------
    def plot_rank_histogram(self, obs, **kwargs):
        """Plot the rank histogram; see :func:`xstochsr.plot.plot_rank_histogram`."""
        from .metrics import rank_histogram
        from .plot import plot_rank_histogram

        return plot_rank_histogram(rank_histogram(self._obj, obs), **kwargs)

    def plot_spectra(self, obs, **kwargs):
        """Plot member and truth spectra; see :func:`xstochsr.plot.plot_spectra`."""
        from .plot import plot_spectra

        return plot_spectra(self._obj, obs, **kwargs)


@xr.register_dataset_accessor("sr")
class SRDatasetAccessor:
    """Stochastic super-resolution on a Dataset (``ds.sr``): several variables at once."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def downscale(self, **kwargs):
        """Dataset of ensembles; see :func:`xstochsr.downscale` and :mod:`xstochsr.joint`."""
        from .api import downscale

        return downscale(self._obj, **kwargs)
