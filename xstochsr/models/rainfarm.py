"""RainFARM: stochastic spectral downscaling of precipitation (Rebora et al. 2006).

Each coarse frame is downscaled on its own (spatial RainFARM, as in pysteps): there is
no temporal coherence between frames, and no recurrent state.

Algorithm (for one coarse frame ``X`` of shape (H, W) and a factor f):

1. **Spectral slope.** Fit ``alpha`` in ``|FFT(X)(k)|^2 ~ |k|^-alpha`` by least squares
   in log-log space over the middle two thirds of the log-wavenumber range (the same
   estimator as :mod:`pysteps.downscaling.rainfarm`), or use the ``alpha`` given.
2. **Gaussian field.** White Gaussian noise on the fine grid, filtered in Fourier space
   by ``|k|^(-alpha/2)`` (the mean removed), then standardised to zero mean and unit
   variance: a Gaussian random field ``g`` with power spectrum ``|k|^-alpha``.
3. **Nonlinear transform.** ``r = exp(g)``, a positive, log-normal field.
4. **Coarse-mean consistency.** Inside every coarse cell, ``y = r * X / mean_cell(r)``,
   so the mean of the f x f fine values equals the coarse value exactly (up to float
   rounding), and a dry coarse cell gives dry fine cells. A fully dry frame gives zeros
   without drawing any noise.

Boundary handling
-----------------
The FFT treats the domain as periodic, which causes two artefacts that pysteps users
report: the jump between opposite edges of a non-periodic coarse field leaks power
(a ``k^-2`` cross in the spectrum) that biases the fitted ``alpha``, and the generated
noise wraps around, so structures leaving one edge re-enter at the opposite one. Here:

* ``alpha`` is fitted on the **mirror-extended** coarse field (2H x 2W, the field and
  its reflections, which is periodic and continuous), so the edges add no jump;
* the Gaussian field is generated on a fine domain **padded** by ``pad`` times the
  domain size on every side (default 0.25, so 1.5x per axis) and then **cropped**;
  standardisation and the coarse-mean rescaling (step 4) are done after cropping, so
  coarse means are still preserved exactly.

Random numbers for member ``m``, global sequence ``b`` and global time ``t`` come from
:func:`xstochsr.models.base.member_rng` ``(seed, m, b, t)``: a member can be
regenerated alone and time chunking changes nothing.

References
----------
Rebora, N., Ferraris, L., von Hardenberg, J. and Provenzale, A. (2006). RainFARM:
Rainfall downscaling by a filtered autoregressive model. J. Hydrometeorol. 7, 724-738.

D'Onofrio, D., Palazzi, E., von Hardenberg, J., Provenzale, A. and Calmanti, S. (2014).
Stochastic rainfall downscaling of climate models. J. Hydrometeorol. 15, 830-843.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .base import NOISE, Downscaler, ModelCard, member_rng
from .interpolation import _check_int_factor, _check_run_args, _is_int_factor

__all__ = ["RainFARM", "estimate_alpha", "rainfarm_frame", "gaussian_field", "DEFAULT_ALPHA"]

#: Spectral slope used when it cannot be fitted (a constant non-zero frame, a 2 x 2 domain).
DEFAULT_ALPHA = 2.5


def _radial_k(shape: tuple[int, int], *, real: bool = False) -> np.ndarray:
    ky = np.fft.fftfreq(shape[0])
    kx = np.fft.rfftfreq(shape[1]) if real else np.fft.fftfreq(shape[1])
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def _fit_log_slope(k: np.ndarray, power: np.ndarray) -> float:
    """Minus the slope of log(power) on log(k), middle 2/3 of the log-k range.

    NaN if fewer than 3 distinct wavenumbers are usable.
    """
    with np.errstate(divide="ignore"):
        lp = np.log(power)
    valid = (k > 0) & np.isfinite(lp)
    if not valid.any():
        return math.nan
    lk, lp = np.log(k[valid]), lp[valid]
    lo, hi = lk.min(), lk.max()
    sel = (lk >= lo + (hi - lo) / 6) & (lk <= hi - (hi - lo) / 6)
    if np.unique(lk[sel]).size < 3:
        return math.nan
    slope = np.polyfit(lk[sel], lp[sel], 1)[0]
    return float(-slope)


def estimate_alpha(field: np.ndarray, *, mirror: bool = True) -> float:
    """Spectral slope ``alpha`` of a 2-D field, ``|FFT|^2 ~ |k|^-alpha``.

    Parameters
    ----------
    field : ndarray, shape (H, W)
    mirror : bool
        Fit on the mirror-extended field (2H x 2W) so that the domain edges cause no
        spectral leakage (default). ``False`` fits the raw field, as pysteps does.

    Returns
    -------
    float
        The fitted slope; NaN when it cannot be fitted (e.g. a constant field).
    """
    a = np.asarray(field, dtype=np.float64)
    if a.ndim != 2:
        raise InvalidInputError(f"estimate_alpha needs a 2-D field, got shape {a.shape}.")
    if mirror:
        a = np.concatenate([a, a[::-1]], axis=0)
        a = np.concatenate([a, a[:, ::-1]], axis=1)
    power = np.abs(np.fft.fft2(a)) ** 2
    return _fit_log_slope(_radial_k(a.shape), power)


def gaussian_field(shape: tuple[int, int], alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with power spectrum ``|k|^-alpha``.

    Parameters
    ----------
    shape : (int, int)
    alpha : float
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape ``shape``, float64
    """
    white = rng.standard_normal(shape)
    k = _radial_k(shape, real=True)
    with np.errstate(divide="ignore"):
        amp = np.where(k > 0, k ** (-alpha / 2.0), 0.0)
    return np.fft.irfft2(np.fft.rfft2(white) * amp, s=shape)


def rainfarm_frame(
    x: np.ndarray,
    factor: int,
    rng: np.random.Generator,
    *,
    alpha: float | None = None,
    pad: float = 0.25,
) -> tuple[np.ndarray, float]:
    """Downscale one coarse precipitation frame with RainFARM.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Non-negative, finite precipitation.
    factor : int
    rng : numpy.random.Generator
    alpha : float, optional
        Spectral slope; fitted on the mirror-extended frame if None
        (:data:`DEFAULT_ALPHA` when it cannot be fitted).
    pad : float
        Padding of the noise domain on each side, as a fraction of H and W.

    Returns
    -------
    y : ndarray, shape (H * factor, W * factor), float64
        Mean of each f x f block equals ``x`` there.
    alpha : float
        The slope used (NaN for a dry frame, where no noise is drawn).
    """
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape
    f = int(factor)
    if not np.any(x > 0):
        return np.zeros((h * f, w * f)), math.nan
    if alpha is None:
        alpha = estimate_alpha(x)
        if not math.isfinite(alpha):
            alpha = DEFAULT_ALPHA
    ph, pw = math.ceil(pad * h), math.ceil(pad * w)
    g = gaussian_field(((h + 2 * ph) * f, (w + 2 * pw) * f), float(alpha), rng)
    g = g[ph * f:(ph + h) * f, pw * f:(pw + w) * f]
    sd = g.std()
    g = (g - g.mean()) / sd if sd > 0 else np.zeros_like(g)
    r = np.exp(g)
    cell_mean = r.reshape(h, f, w, f).mean(axis=(1, 3))
    scale = np.repeat(np.repeat(x / cell_mean, f, axis=0), f, axis=1)
    return r * scale, float(alpha)


class RainFARM(Downscaler):
    """RainFARM stochastic downscaling of precipitation (see the module docstring).

    Parameters
    ----------
    alpha : float, optional
        Fixed spectral slope for every frame; None (default) fits it on each frame.
    pad : float
        Noise-domain padding on each side, as a fraction of the domain size (0.25).

    Attributes
    ----------
    preserves_means : bool
        True: the mean of the f x f fine cells of every coarse cell equals the coarse
        value (to float32 rounding).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).gamma(0.5, 2.0, (1, 2, 8, 8)).astype(np.float32)
    >>> y, _ = RainFARM().run(x, factor=4, members=[0, 1], seed=42)
    >>> y.shape  # (M, B, T, H*f, W*f)
    (2, 1, 2, 32, 32)
    >>> bool(np.allclose(y[0].reshape(1, 2, 8, 4, 8, 4).mean(axis=(3, 5)), x, rtol=1e-5))
    True
    """

    stochastic = True
    stateful = False
    min_size = 2
    preserves_means = True

    def __init__(self, *, alpha: float | None = None, pad: float = 0.25) -> None:
        if alpha is not None and not math.isfinite(float(alpha)):
            raise InvalidInputError(f"alpha must be a finite number or None, not {alpha!r}.")
        if not (math.isfinite(float(pad)) and pad >= 0):
            raise InvalidInputError(f"pad must be a non-negative fraction, not {pad!r}.")
        self.alpha = None if alpha is None else float(alpha)
        self.pad = float(pad)
        self.card = ModelCard(
            name="rainfarm",
            kind="rainfarm",
            factor=None,
            variable="rain_rate",
            standard_name="lwe_precipitation_rate",
            units="mm h-1",
            architecture={"alpha": self.alpha, "pad": self.pad},
            description=(
                "RainFARM (Rebora et al. 2006): log-normal noise with the coarse field's "
                "power-law spectrum, rescaled so that every coarse cell's mean is kept. "
                "Frames are independent. Alpha fitted on the mirror-extended frame; noise "
                "generated on a padded domain and cropped."
            ),
            license="MIT",
            citation=(
                "Rebora, N., Ferraris, L., von Hardenberg, J. and Provenzale, A. (2006). "
                "RainFARM: Rainfall downscaling by a filtered autoregressive model. "
                "J. Hydrometeorol. 7, 724-738."
            ),
        )

    def supports_factor(self, factor: int) -> bool:
        """Any integer factor >= 2."""
        return _is_int_factor(factor)

    def check_factor(self, factor: int) -> None:
        """Raise :class:`UnsupportedFactorError` unless ``factor`` is an integer >= 2."""
        _check_int_factor(self, factor)

    def run(
        self,
        x: np.ndarray,
        *,
        factor: int,
        members: Sequence[int],
        seed: int,
        t0: int = 0,
        batch_offset: int = 0,
        state: Any = None,
        device: str = "cpu",
    ) -> tuple[np.ndarray, None]:
        """Downscale a chunk of sequences; see :meth:`Downscaler.run`.

        Parameters
        ----------
        x : ndarray, shape (B, T, H, W), float32
            Non-negative precipitation in mm h-1 (any units work: the method is
            scale-invariant).
        factor : int
        members : sequence of int
            M member indices; member m's noise depends only on (seed, m, b, t).
        seed : int
        t0 : int
            Global time index of ``x[:, 0]``.
        batch_offset : int
            Global sequence index of ``x[0]``.
        state, device
            Accepted for the interface, unused.

        Returns
        -------
        y : ndarray, shape (M, B, T, H*f, W*f), float32
        state : None
        """
        x, members = _check_run_args(self, x, factor, members)
        if x.size and x.min() < 0:
            raise InvalidInputError(
                f"RainFARM needs non-negative precipitation; found values down to "
                f"{float(x.min()):g}. Clip them first (da.clip(min=0))."
            )
        f = int(factor)
        b_n, t_n, h, w = x.shape
        y = np.empty((len(members), b_n, t_n, h * f, w * f), dtype=np.float32)
        for b in range(b_n):
            for t in range(t_n):
                frame = x[b, t].astype(np.float64)
                alpha = self.alpha
                if alpha is None and np.any(frame > 0):
                    alpha = estimate_alpha(frame)
                    if not math.isfinite(alpha):
                        alpha = DEFAULT_ALPHA
                for i, m in enumerate(members):
                    rng = member_rng(seed, m, batch_offset + b, t0 + t, NOISE)
                    y[i, b, t], _ = rainfarm_frame(frame, f, rng, alpha=alpha, pad=self.pad)
        return y, None
