"""Radially averaged power spectrum and log spectral distance, masked fields included.

A field with NaN (e.g. outside a radar's range) has no Fourier transform as it is. Each
2-D field with NaN is scored on the largest axis-parallel rectangle of valid cells
(found once per distinct mask); the ensemble and the truth share the rectangle, so they
are compared on the same cells. Fields where no rectangle of at least 4 x 4 valid cells
exists give NaN, which plots and ``verify`` report rather than draw.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _check_da, _finish, _mean, _prepare, _resolve_dim, _spatial

__all__ = ["power_spectrum", "log_spectral_distance"]


def _spacing(da: xr.DataArray, dim: Hashable) -> tuple[float, str | None]:
    """Grid spacing along ``dim`` from its coordinate (1 and no units if there is none)."""
    if dim in da.coords and da.sizes[dim] > 1:
        c = da.coords[dim]
        if np.issubdtype(c.dtype, np.number):
            d = np.diff(np.asarray(c.values, dtype=float))
            step = float(np.median(np.abs(d)))
            if step > 0 and np.all(np.isfinite(d)):
                return step, c.attrs.get("units")
    return 1.0, None


def _radial_bins(ny: int, nx: int, dy: float, dx: float):
    """Bin index of every rfft2 mode, the bin width and the number of bins."""
    ky = np.fft.fftfreq(ny, d=dy)
    kx = np.fft.rfftfreq(nx, d=dx)
    kr = np.hypot(ky[:, None], kx[None, :])
    dk = max(1.0 / (ny * dy), 1.0 / (nx * dx))
    kmax = min(1.0 / (2 * dy), 1.0 / (2 * dx))
    nbins = int(np.floor(kmax / dk + 1e-9))
    b = np.rint(kr / dk).astype(np.int64)
    # rfft2 stores modes with kx > 0 once for the pair (k, -k): weight them twice
    weight = np.full(kr.shape, 2.0)
    weight[:, 0] = 1.0
    if nx % 2 == 0:
        weight[:, -1] = 1.0
    return b, weight, dk, nbins


#: Fewest valid cells along each side of the rectangle a spectrum is taken on.
MIN_SIDE = 4


def _window(ny: int, nx: int, window: str | None) -> np.ndarray | None:
    if window is None:
        return None
    if window != "hann":
        raise InvalidInputError(f"window must be None or 'hann', got {window!r}.")
    from scipy.signal.windows import hann

    w = np.outer(hann(ny, sym=False), hann(nx, sym=False))
    return w / np.sqrt(np.mean(w**2))


def _power2d(f: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """``|FFT|**2 / (ny * nx)**2`` over the last two axes, rfft2 half-plane."""
    f = np.asarray(f, dtype=np.float64)
    if w is not None:
        f = (f - f.mean(axis=(-2, -1), keepdims=True)) * w
    ny, nx = f.shape[-2:]
    return np.abs(np.fft.rfft2(f)) ** 2 / float(ny * nx) ** 2


def _largest_rectangle(valid: np.ndarray, min_side: int = MIN_SIDE):
    """Largest all-True axis-parallel rectangle ``(r0, r1, c0, c1)`` of a 2-D mask.

    Row by row, the heights of the True columns ending in that row form a histogram
    whose largest rectangle is found with a stack (O(ny nx)). Rectangles with a side
    shorter than ``min_side`` are not considered. None if there is none.
    """
    ny, nx = valid.shape
    heights = np.zeros(nx, dtype=np.int64)
    best, box = 0, None
    for i in range(ny):
        heights = np.where(valid[i], heights + 1, 0)
        row = heights.tolist() + [0]
        stack: list[tuple[int, int]] = []  # (first column, height)
        for j, h in enumerate(row):
            start = j
            while stack and stack[-1][1] >= h:
                s, hh = stack.pop()
                width = j - s
                if hh >= min_side and width >= min_side and hh * width > best:
                    best, box = hh * width, (i - hh + 1, i + 1, s, j)
                start = s
            stack.append((start, h))
    return box


class _Rectangles:
    """Largest valid rectangle per distinct mask (masks repeat over time and members)."""

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple | None] = {}

    def __call__(self, valid: np.ndarray):
        key = np.packbits(valid).tobytes() + bytes(str(valid.shape), "ascii")
        if key not in self._cache:
            self._cache[key] = _largest_rectangle(valid)
        return self._cache[key]


def _radial_average(p: np.ndarray, bins, weight, nbins) -> np.ndarray:
    """Weighted mean power of the modes in each radial bin; ``p`` (..., ky, kx)."""
    p = p * weight
    lead = p.shape[:-2]
    flat = p.reshape(-1, bins.size)
    sel = (bins.ravel() >= 1) & (bins.ravel() <= nbins)
    idx = bins.ravel()[sel] - 1
    counts = np.bincount(idx, weights=weight.ravel()[sel], minlength=nbins)
    out = np.empty((flat.shape[0], nbins))
    for i, row in enumerate(flat):
        out[i] = np.bincount(idx, weights=row[sel], minlength=nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / counts
    return out.reshape(*lead, nbins)


def _rect_bins(nr: int, nc: int, dy: float, dx: float, dk: float):
    """Bins (on the full grid's ``dk``) and weights of an ``nr x nc`` rectangle's modes."""
    ky = np.fft.fftfreq(nr, d=dy)
    kx = np.fft.rfftfreq(nc, d=dx)
    b = np.rint(np.hypot(ky[:, None], kx[None, :]) / dk).astype(np.int64)
    weight = np.full(b.shape, 2.0)
    weight[:, 0] = 1.0
    if nc % 2 == 0:
        weight[:, -1] = 1.0
    return b, weight


def _radial_kernel(f, *, bins, weight, nbins, window, spacing):
    """Radial spectrum of each field of ``f`` (..., Y, X); masked fields on a rectangle.

    A field's rectangle of ``nr x nc`` cells has per-mode power ``1 / (nr nc)`` times a
    spectral density; it is rescaled by ``nr nc / (Ny Nx)`` to the full grid's and its
    modes binned on the full grid's wavenumbers, so spectra of masked and whole fields
    can be averaged and compared. Bins below the rectangle's lowest wavenumber are NaN.
    """
    f = np.asarray(f, dtype=np.float64)
    ny, nx = f.shape[-2:]
    finite = np.isfinite(f)
    if finite.all():
        return _radial_average(_power2d(f, _window(ny, nx, window)), bins, weight, nbins)
    lead = f.shape[:-2]
    flat = f.reshape(-1, ny, nx)
    out = np.full((flat.shape[0], nbins), np.nan)
    rect = _Rectangles()
    dy, dx, dk = spacing
    for i, field in enumerate(flat):
        ok = np.isfinite(field)
        if ok.all():
            out[i] = _radial_average(_power2d(field, _window(ny, nx, window)), bins, weight, nbins)
            continue
        box = rect(ok)
        if box is None:
            continue
        r0, r1, c0, c1 = box
        nr, nc = r1 - r0, c1 - c0
        p = _power2d(field[r0:r1, c0:c1], _window(nr, nc, window)) * (nr * nc) / (ny * nx)
        b, w = _rect_bins(nr, nc, dy, dx, dk)
        out[i] = _radial_average(p, b, w, nbins)
    return out.reshape(*lead, nbins)


def _whole_space(da: xr.DataArray, y, x) -> xr.DataArray:
    return da.chunk({y: -1, x: -1}) if da.chunks is not None else da


def power_spectrum(
    da: xr.DataArray,
    *,
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
    window: str | None = None,
) -> xr.DataArray:
    """Radially averaged power spectrum of each 2-D field.

    The power of mode ``k`` is ``|F(k)|**2 / (Ny Nx)**2`` with ``F`` the 2-D discrete
    Fourier transform, so that the power of all modes sums to the mean square of the
    field (Parseval). Modes are binned by their radial wavenumber
    ``|k| = sqrt(kx**2 + ky**2)`` into bins of width ``dk`` (the fundamental
    wavenumber of the longer side) and the power is *averaged* within each bin; the
    mean (``k = 0``) is left out. A sinusoid of amplitude ``A`` puts ``A**2 / 2`` into
    its bin, divided by the number of modes in that bin; white noise of variance
    ``s**2`` gives a flat spectrum at ``s**2 / (Ny Nx)``.

    Parameters
    ----------
    da : xarray.DataArray
        Field(s) with two spatial dimensions (any others, e.g. time or members, are
        kept or averaged, see ``dim``).
    dim : str or list of str, optional
        Non-spatial dimensions to average the spectrum over: None (default) for all,
        ``[]`` for none. A field with NaN (a mask) is taken on its largest rectangle
        of valid cells, rescaled to the full grid's spectral density (low bins the
        rectangle cannot resolve are NaN); a field with no 4 x 4 valid rectangle gets
        a NaN spectrum. NaN is skipped in the average.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.
    window : {None, "hann"}, default None
        Taper each (mean-removed) field with a 2-D Hann window, rescaled to keep the
        variance, to reduce leakage from non-periodic edges.

    Returns
    -------
    xarray.DataArray
        Named ``power_spectrum`` with dimension ``wavenumber`` (cycles per unit of the
        x coordinate, or per grid cell if it has none) and a ``wavelength`` coordinate.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.arange(32)
    >>> f = xr.DataArray(np.cos(2 * np.pi * 4 * x / 32)[None, :] * np.ones((32, 1)),
    ...                  dims=("y", "x"))
    >>> ps = power_spectrum(f, y_dim="y", x_dim="x")
    >>> i = int(ps.argmax("wavenumber"))
    >>> i, float(ps.wavenumber[i])
    (3, 0.125)
    """
    da = _check_da(da, "da")
    y, x = _spatial(da, y_dim, x_dim)
    ny, nx = da.sizes[y], da.sizes[x]
    if min(ny, nx) < 4:
        raise InvalidInputError(
            f"A power spectrum needs at least 4 x 4 cells; the field has {ny} x {nx}."
        )
    _window(ny, nx, window)  # checks the name before any work
    dy, yunits = _spacing(da, y)
    dx, xunits = _spacing(da, x)
    bins, weight, dk, nbins = _radial_bins(ny, nx, dy, dx)
    units = xunits or yunits
    out = xr.apply_ufunc(
        _radial_kernel,
        _whole_space(da, y, x),
        input_core_dims=[[y, x]],
        output_core_dims=[["wavenumber"]],
        kwargs={
            "bins": bins,
            "weight": weight,
            "nbins": nbins,
            "window": window,
            "spacing": (dy, dx, dk),
        },
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": nbins}},
    )
    k = dk * np.arange(1, nbins + 1)
    kunits = f"1/{units}" if units else "1/grid_cell"
    out = out.assign_coords(
        wavenumber=("wavenumber", k, {"long_name": "radial wavenumber", "units": kunits}),
        wavelength=(
            "wavenumber",
            1.0 / k,
            {"long_name": "wavelength", "units": units or "grid_cell"},
        ),
    )
    keep_out = [d for d in da.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep_out, what="the field (spatial dims excluded)")
    out = _mean(out, dims)
    attrs = {"long_name": "radially averaged power spectrum"}
    if "units" in da.attrs:
        attrs["units"] = f"({da.attrs['units']})**2"
    return _finish(out, "power_spectrum", attrs)


def _lsd_fields(f: np.ndarray, g: np.ndarray, radial: bool, dy: float, dx: float):
    """LSD of members ``f`` (..., M, Y, X) against ``g`` (..., Y, X), all cells valid."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if radial:
            bins, weight, _, nbins = _radial_bins(*g.shape[-2:], dy, dx)
            pf = _radial_average(_power2d(f, None), bins, weight, nbins)
            pg = _radial_average(_power2d(g, None), bins, weight, nbins)
            axes = (-1,)
        else:
            pf, pg = _power2d(f, None), _power2d(g, None)
            axes = (-2, -1)
        d = 10 * np.log10(pf) - 10 * np.log10(np.expand_dims(pg, -1 - len(axes)))
        d2 = np.where(np.isfinite(d), d**2, np.nan)
        n = np.sum(np.isfinite(d2), axis=axes)
        return np.where(n > 0, np.sqrt(np.nansum(d2, axis=axes) / np.maximum(n, 1)), np.nan)


def _lsd_kernel(f, g, *, radial, spacing):
    """LSD per member; ``f`` (..., M, Y, X), ``g`` (..., Y, X); returns (..., M).

    A field pair with NaN is compared on the largest rectangle where the truth and
    every member are valid; NaN if there is none of at least 4 x 4 cells.
    """
    f = np.asarray(f, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    dy, dx = spacing
    ok = np.isfinite(g) & np.all(np.isfinite(f), axis=-3)
    if ok.all():
        return _lsd_fields(f, g, radial, dy, dx)
    m, ny, nx = f.shape[-3:]
    lead = g.shape[:-2]
    ff = f.reshape(-1, m, ny, nx)
    gg = g.reshape(-1, ny, nx)
    oo = ok.reshape(-1, ny, nx)
    out = np.full((gg.shape[0], m), np.nan)
    rect = _Rectangles()
    for i in range(gg.shape[0]):
        box = (0, ny, 0, nx) if oo[i].all() else rect(oo[i])
        if box is None:
            continue
        r0, r1, c0, c1 = box
        out[i] = _lsd_fields(ff[i, :, r0:r1, c0:c1], gg[i, r0:r1, c0:c1], radial, dy, dx)
    return out.reshape(*lead, m)


def log_spectral_distance(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
    radial: bool = False,
) -> xr.DataArray:
    """Log spectral distance (dB) between each member and the observation.

    For each member and each 2-D field, as Leinonen et al. (2021):
    ``LSD = sqrt(mean_k (10 log10 P_member(k) - 10 log10 P_obs(k))**2)`` over the
    Fourier modes ``k`` of the non-redundant half-plane (``numpy.fft.rfft2``),
    including the mean. Modes with zero power in either field are left out (a field
    that is zero everywhere gives NaN). A field with NaN (a mask) is compared on the
    largest rectangle where the truth and every member are valid (NaN if none has
    4 x 4 cells). It is then averaged over the members and
    ``dim``. It scores texture: 0 for a member with exactly the truth's spectrum
    (e.g. the truth shifted periodically), ``10 log10(a**2)`` dB for ``a * truth``.

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`xstochsr.metrics.crps`.
    dim : str or list of str, optional
        Non-spatial dimensions to average over (None: all). Members are always averaged.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.
    radial : bool, default False
        Compare radially averaged spectra (:func:`power_spectrum`) instead of single
        modes: much less noisy, less sensitive to where features are.

    Returns
    -------
    xarray.DataArray
        Named ``log_spectral_distance``, units ``dB``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> obs = xr.DataArray(np.random.default_rng(0).random((16, 16)), dims=("y", "x"))
    >>> ens = (2 * obs).expand_dims(realization=2)
    >>> round(float(log_spectral_distance(ens, obs, y_dim="y", x_dim="x")), 3)
    6.021
    """
    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    y, x = _spatial(obs, y_dim, x_dim)
    keep = [d for d in obs.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep, what="obs (spatial dims excluded)")
    return _log_spectral_distance(ens, obs, member_dim, dims, y, x, radial)


def _log_spectral_distance(ens, obs, member_dim, dims, y, x, radial=False):
    """:func:`log_spectral_distance` on prepared inputs; ``dims`` non-spatial."""
    ny, nx = obs.sizes[y], obs.sizes[x]
    if min(ny, nx) < MIN_SIDE:
        raise InvalidInputError(
            f"The log spectral distance needs at least 4 x 4 cells; the field has {ny} x {nx}."
        )
    if ens.chunks is not None or obs.chunks is not None:
        ens = ens.chunk({member_dim: -1, y: -1, x: -1})
        obs = obs.chunk({y: -1, x: -1})
    out = xr.apply_ufunc(
        _lsd_kernel,
        ens,
        obs,
        input_core_dims=[[member_dim, y, x], [y, x]],
        output_core_dims=[[member_dim]],
        kwargs={"radial": radial, "spacing": (_spacing(obs, y)[0], _spacing(obs, x)[0])},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    out = _mean(out.mean(member_dim, skipna=True), dims)
    attrs = {"long_name": "log spectral distance", "units": "dB"}
    return _finish(out, "log_spectral_distance", attrs)
