"""Kinetic-energy spectrum of a wind pair, its log-log slope, and its LSD to the truth."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ...errors import InvalidInputError
from .._inputs import _check_da, _find_member_dim, _finish, _resolve_dim, _spatial
from ..spectra import _radial_bins, _spacing, power_spectrum
from ._grid import check_pair

__all__ = ["kinetic_energy_spectrum", "spectral_slope", "kinetic_energy_lsd"]


def _mode_counts(ny, nx, dy, dx) -> np.ndarray:
    """Count the Fourier modes (full plane) in each radial bin of :func:`power_spectrum`."""
    bins, weight, _, nbins = _radial_bins(ny, nx, dy, dx)
    sel = (bins >= 1) & (bins <= nbins)
    return np.bincount(bins[sel] - 1, weights=weight[sel], minlength=nbins)


def kinetic_energy_spectrum(
    u: xr.DataArray,
    v: xr.DataArray,
    *,
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
    window: str | None = None,
) -> xr.DataArray:
    """Isotropic kinetic-energy spectrum ``E(k)`` of a wind pair.

    ``E(k) = 1/2 (P_u(k) + P_v(k)) N(k) / dk``: the radially averaged power spectra
    of :func:`xstochsr.metrics.power_spectrum` (masks, windows and bins as there) times
    the number of modes ``N(k)`` in each annulus, per unit wavenumber, so that
    ``sum_k E(k) dk`` is the mean kinetic energy per unit mass of the fluctuations
    ``1/2 (var u + var v)`` (up to the corner modes beyond the largest complete
    annulus). A flow with ``E(k) ~ k**-3`` (synoptic scales) or ``k**(-5/3)`` (meso
    scales) has that slope here (see :func:`spectral_slope`). Wavenumbers are in
    cycles per unit of the x coordinate (per degree on latitude/longitude grids,
    where the spectrum is a regional, flat-Earth approximation).

    Parameters
    ----------
    u, v : xarray.DataArray
        The two components on one grid (checked as in :func:`divergence`); converted
        to m s-1.
    dim : str or list of str, optional
        Non-spatial dimensions to average over (None: all; ``[]``: none).
    y_dim, x_dim : str, optional
        Spatial dimensions; found with cf-xarray if not given.
    window : {None, "hann"}, default None
        Taper, see :func:`xstochsr.metrics.power_spectrum`.

    Returns
    -------
    xarray.DataArray
        Named ``kinetic_energy_spectrum`` with dim ``wavenumber`` (and coord
        ``wavelength``); units ``m2 s-2`` times the x coordinate's units.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> km = {"units": "km"}
    >>> u = xr.DataArray(rng.normal(size=(32, 32)), dims=("y", "x"), attrs={"units": "m s-1"},
    ...                  coords={"y": ("y", np.arange(32.0), km), "x": ("x", np.arange(32.0), km)})
    >>> e = kinetic_energy_spectrum(u, 0 * u)
    >>> total = float(e.sum()) * float(e.wavenumber[0])   # sum E(k) dk
    >>> 0.7 < total / (0.5 * float(u.var())) < 1.0        # all modes inside the last annulus
    True
    """
    u, v = check_pair(u, v)
    y, x = _spatial(u, y_dim, x_dim)
    sp = dict(dim=dim, y_dim=y, x_dim=x, window=window)
    pu = power_spectrum(u, **sp)
    pv = power_spectrum(v, **sp)
    dy, _ = _spacing(u, y)
    dx, xunits = _spacing(u, x)
    counts = _mode_counts(u.sizes[y], u.sizes[x], dy, dx)
    dk = float(pu["wavenumber"][0])
    e = 0.5 * (pu + pv) * xr.DataArray(counts, dims="wavenumber") / dk
    e = e.transpose(*pu.dims)
    units = "m2 s-2" + (f" {xunits}" if xunits else "")
    return _finish(e, "kinetic_energy_spectrum",
                   {"long_name": "isotropic kinetic energy spectrum", "units": units})


def _slope_kernel(e, k):
    with np.errstate(divide="ignore", invalid="ignore"):
        ly, lx = np.log(e), np.log(k)
    ok = np.isfinite(ly) & np.isfinite(lx)
    flat_y = ly.reshape(-1, ly.shape[-1])
    flat_ok = np.broadcast_to(ok, ly.shape).reshape(-1, ly.shape[-1])
    out = np.full(flat_y.shape[0], np.nan)
    for i in range(flat_y.shape[0]):
        m = flat_ok[i]
        if m.sum() >= 3:
            out[i] = np.polyfit(lx[m], flat_y[i][m], 1)[0]
    return out.reshape(ly.shape[:-1])


def spectral_slope(spectrum: xr.DataArray, band: tuple[float, float] | None = None) -> xr.DataArray:
    """Least-squares slope of ``log E`` against ``log k`` over a wavenumber band.

    Parameters
    ----------
    spectrum : xarray.DataArray
        A spectrum with dim ``wavenumber`` (e.g. from :func:`kinetic_energy_spectrum`).
    band : (float, float), optional
        ``(k0, k1)``, inclusive, in the units of the ``wavenumber`` coordinate; None:
        all wavenumbers. Non-positive or NaN values are left out; fewer than 3 points
        left give NaN.

    Returns
    -------
    xarray.DataArray
        Named ``spectral_slope`` (units ``1``), over the spectrum's other dims.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> k = np.arange(1.0, 33.0)
    >>> e = xr.DataArray(k**-3.0, dims="wavenumber", coords={"wavenumber": k})
    >>> round(float(spectral_slope(e, band=(2, 20))), 6)
    -3.0
    """
    spectrum = _check_da(spectrum, "spectrum")
    if "wavenumber" not in spectrum.dims:
        raise InvalidInputError(
            f"The spectrum has no 'wavenumber' dimension (dims {tuple(spectrum.dims)}); "
            "pass the output of kinetic_energy_spectrum or power_spectrum."
        )
    s = spectrum
    if band is not None:
        k0, k1 = (float(b) for b in band)
        if not k0 < k1:
            raise InvalidInputError(f"band must be (k0, k1) with k0 < k1, got {band}.")
        s = s.where((s.wavenumber >= k0) & (s.wavenumber <= k1), drop=True)
        if s.sizes["wavenumber"] < 3:
            k = spectrum.wavenumber.values
            raise InvalidInputError(
                f"The band {band} holds {s.sizes['wavenumber']} wavenumbers, fewer than 3 "
                f"to fit a slope (the spectrum spans {k.min():.4g} to {k.max():.4g} "
                f"{spectrum.wavenumber.attrs.get('units', '')}). Widen it."
            )
    k = np.asarray(s.wavenumber.values, dtype=float)
    out = xr.apply_ufunc(_slope_kernel, s, kwargs={"k": k},
                         input_core_dims=[["wavenumber"]], dask="parallelized",
                         output_dtypes=[np.float64])
    attrs = {"long_name": "log-log slope of the spectrum", "units": "1"}
    if band is not None:
        attrs["band"] = [float(b) for b in band]
    return _finish(out, "spectral_slope", attrs)


def kinetic_energy_lsd(
    ens_u: xr.DataArray,
    ens_v: xr.DataArray,
    obs_u: xr.DataArray,
    obs_v: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Log spectral distance (dB) between the members' KE spectra and the truth's.

    ``sqrt(mean_k (10 log10 E_member(k) - 10 log10 E_obs(k))**2)`` over the radial
    wavenumbers of :func:`kinetic_energy_spectrum` (one spectrum per field), then
    averaged over members and ``dim``. 0 for a member with the truth's spectrum,
    ``20 log10(a)`` dB for winds ``a`` times the truth's.

    Parameters
    ----------
    ens_u, ens_v : xarray.DataArray
        Ensemble components, with ``member_dim``.
    obs_u, obs_v : xarray.DataArray
        The truth's components on the same grid, without ``member_dim``.
    member_dim : str, default "realization"
        Member dimension.
    dim : str or list of str, optional
        Non-spatial dimensions of the truth to average over (None: all).
    y_dim, x_dim : str, optional
        Spatial dimensions; found with cf-xarray if not given.

    Returns
    -------
    xarray.DataArray
        Named ``kinetic_energy_lsd``, units ``dB``.
    """
    member_dim = _find_member_dim(_check_da(ens_u, "ens_u"), member_dim)
    y, x = _spatial(obs_u, y_dim, x_dim)
    keep = [d for d in obs_u.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep, what="obs (spatial dims excluded)")
    sp = dict(dim=[], y_dim=y, x_dim=x)
    ee = kinetic_energy_spectrum(ens_u, ens_v, **sp)
    eo = kinetic_energy_spectrum(obs_u, obs_v, **sp)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 10 * np.log10(ee) - 10 * np.log10(eo)
    d2 = (d**2).where(np.isfinite(d))
    lsd = np.sqrt(d2.mean("wavenumber", skipna=True)).mean(member_dim, skipna=True)
    lsd = lsd.mean(dims, skipna=True) if dims else lsd
    return _finish(lsd, "kinetic_energy_lsd",
                   {"long_name": "log spectral distance of kinetic energy spectra",
                    "units": "dB"})
