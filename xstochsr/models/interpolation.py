"""Deterministic interpolation baselines: nearest, bilinear, bicubic, Lanczos, conservative.

All methods work on cell-centred grids (``align_corners=False`` semantics): fine cell
``k`` of coarse cell ``i`` has its centre at coarse-index position

    q = i + (k + 0.5) / f - 0.5,

which is exactly where :func:`xstochsr.grid.refine_1d` puts the fine centres. Each 2-D
method is separable: a 1-D kernel is applied along Y, then along X, with a small number
of taps per output cell (so the cost is linear in the number of fine cells). Indices
that fall outside the domain are mapped back inside by half-sample symmetric reflection
(``d c b a | a b c d | d c b a``) or, with ``edge="nearest"``, by repeating the edge
cell; no NaN is ever produced.

Kernels
-------
``nearest``
    The coarse cell containing the fine centre. On a regular cell-centred grid every fine
    centre lies inside its parent cell, so this *is* block repetition.
``conservative``
    Block-constant repetition: every fine cell takes its coarse cell's value, so the mean
    over each coarse cell equals the coarse value exactly. Same numbers as ``nearest`` on
    a regular grid; the name states the property users ask for.
``bilinear``
    Linear kernel (tent). Reproduces linear fields exactly away from the edges. Equal to
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
``bicubic``
    Keys (1981) cubic convolution with ``a = -0.5`` (as Matlab and Pillow; PyTorch and
    OpenCV use ``a = -0.75``, available through ``cubic_a``). Reproduces quadratics.
``lanczos``
    Lanczos kernel ``sinc(x) sinc(x / 3)`` (``a = 3``, six taps), weights renormalised to
    sum to one so that constant fields stay constant.

The interpolation methods are unit-agnostic (``card.units is None``): they are linear
combinations of the input, so the caller passes the user's own units through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UnsupportedFactorError
from .base import Downscaler, ModelCard

__all__ = ["InterpolationDownscaler", "INTERPOLATION_METHODS", "upsample", "weights_1d"]

#: Names of the interpolation methods.
INTERPOLATION_METHODS = ("nearest", "bilinear", "bicubic", "lanczos", "conservative")

#: Whether each method preserves coarse-cell means exactly.
_PRESERVES_MEANS = {
    "nearest": True,
    "conservative": True,
    "bilinear": False,
    "bicubic": False,
    "lanczos": False,
}

_DESCRIPTIONS = {
    "nearest": "Nearest-neighbour interpolation (block repetition on a regular grid).",
    "conservative": "Block-constant upsampling; preserves coarse-cell means exactly.",
    "bilinear": "Bilinear interpolation on cell centres (align_corners=False).",
    "bicubic": "Bicubic (Keys cubic convolution) interpolation on cell centres.",
    "lanczos": "Lanczos (a=3) interpolation on cell centres.",
}

LANCZOS_A = 3


def _fine_positions(n: int, factor: int) -> np.ndarray:
    """Coarse-index positions of the ``n * factor`` fine centres, shape (n * factor,)."""
    k = (np.arange(factor) + 0.5) / factor - 0.5
    return (np.arange(n)[:, None] + k[None, :]).reshape(-1)


def _fold(idx: np.ndarray, n: int, edge: str) -> np.ndarray:
    """Map any integer indices into ``[0, n)``."""
    if edge == "nearest":
        return np.clip(idx, 0, n - 1)
    m = np.mod(idx, 2 * n)  # half-sample symmetric reflection, period 2n
    return np.where(m >= n, 2 * n - 1 - m, m)


def _keys(x: np.ndarray, a: float) -> np.ndarray:
    ax = np.abs(x)
    near = ((a + 2) * ax - (a + 3)) * ax**2 + 1
    far = ((a * ax - 5 * a) * ax + 8 * a) * ax - 4 * a
    return np.where(ax <= 1, near, np.where(ax < 2, far, 0.0))


def _lanczos(x: np.ndarray, a: int = LANCZOS_A) -> np.ndarray:
    return np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)


def weights_1d(
    n: int, factor: int, method: str, *, edge: str = "reflect", cubic_a: float = -0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Taps and weights of a 1-D cell-centred upsampling.

    Parameters
    ----------
    n : int
        Number of coarse cells.
    factor : int
        Upsampling factor f.
    method : str
        One of :data:`INTERPOLATION_METHODS`.
    edge : {"reflect", "nearest"}
        How indices outside ``[0, n)`` are brought back inside.
    cubic_a : float
        Keys parameter of ``"bicubic"``.

    Returns
    -------
    idx : ndarray of int, shape (n * f, taps)
        Coarse indices, all in ``[0, n)``.
    w : ndarray of float64, shape (n * f, taps)
        Weights; each row sums to one.
    """
    q = _fine_positions(n, factor)
    if method in ("nearest", "conservative"):
        idx = np.floor(q + 0.5).astype(np.int64)[:, None]
        w = np.ones_like(idx, dtype=np.float64)
    else:
        base = np.floor(q).astype(np.int64)
        if method == "bilinear":
            offsets = np.arange(0, 2)
        elif method == "bicubic":
            offsets = np.arange(-1, 3)
        elif method == "lanczos":
            offsets = np.arange(-LANCZOS_A + 1, LANCZOS_A + 1)
        else:
            raise InvalidInputError(
                f"Unknown interpolation method {method!r}; "
                f"use one of {list(INTERPOLATION_METHODS)}."
            )
        idx = base[:, None] + offsets[None, :]
        dist = q[:, None] - idx
        if method == "bilinear":
            w = np.clip(1.0 - np.abs(dist), 0.0, None)
        elif method == "bicubic":
            w = _keys(dist, cubic_a)
        else:
            w = _lanczos(dist)
        w = w / w.sum(axis=1, keepdims=True)
    return _fold(idx, n, edge), w


def _apply_1d(x: np.ndarray, idx: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for j in range(idx.shape[1]):
        term = np.take(x, idx[:, j], axis=axis) * w[:, j].reshape(shape)
        out = term if out is None else out + term
    return out


def upsample(
    x: np.ndarray, factor: int, method: str, *, edge: str = "reflect", cubic_a: float = -0.5
) -> np.ndarray:
    """Upsample the last two axes of ``x`` by ``factor``.

    Parameters
    ----------
    x : ndarray, shape (..., H, W)
    factor : int
    method : str
        One of :data:`INTERPOLATION_METHODS`.
    edge : {"reflect", "nearest"}
        Edge extension (see the module docstring).
    cubic_a : float
        Keys parameter of ``"bicubic"`` (-0.5; PyTorch uses -0.75).

    Returns
    -------
    ndarray, shape (..., H * factor, W * factor), float64 (float32 in, float32 out)

    Examples
    --------
    >>> import numpy as np
    >>> upsample(np.array([[0.0, 1.0]]), 2, "bilinear")
    array([[0.  , 0.25, 0.75, 1.  ],
           [0.  , 0.25, 0.75, 1.  ]])
    """
    if edge not in ("reflect", "nearest"):
        raise InvalidInputError(f"edge must be 'reflect' or 'nearest', not {edge!r}.")
    x = np.asarray(x)
    h, w_ = x.shape[-2:]
    work = x.astype(np.float64, copy=False)
    if method in ("nearest", "conservative"):
        out = np.repeat(np.repeat(work, factor, axis=-2), factor, axis=-1)
    else:
        iy, wy = weights_1d(h, factor, method, edge=edge, cubic_a=cubic_a)
        ix, wx = weights_1d(w_, factor, method, edge=edge, cubic_a=cubic_a)
        out = _apply_1d(_apply_1d(work, iy, wy, x.ndim - 2), ix, wx, x.ndim - 1)
    return out.astype(x.dtype) if x.dtype == np.float32 else out


class InterpolationDownscaler(Downscaler):
    """A deterministic interpolation baseline behind the :class:`Downscaler` interface.

    Every member is identical (``stochastic = False``); ``seed`` is accepted and ignored.

    Parameters
    ----------
    method : str
        ``"nearest"``, ``"bilinear"``, ``"bicubic"``, ``"lanczos"`` or ``"conservative"``.
    edge : {"reflect", "nearest"}
        Edge extension: half-sample symmetric reflection (default) or edge repetition.
    cubic_a : float
        Keys parameter of ``"bicubic"`` (default -0.5).

    Attributes
    ----------
    method : str
    preserves_means : bool
        True when the mean of the f x f fine cells of each coarse cell equals the coarse
        value exactly (``"conservative"`` and ``"nearest"``).

    Examples
    --------
    >>> import numpy as np
    >>> m = InterpolationDownscaler("bilinear")
    >>> x = np.zeros((1, 2, 4, 4), np.float32)  # (B, T, H, W)
    >>> y, state = m.run(x, factor=4, members=[0, 1, 2], seed=0)
    >>> y.shape  # (M, B, T, H*f, W*f)
    (3, 1, 2, 16, 16)
    """

    stochastic = False
    stateful = False
    min_size = 2

    def __init__(self, method: str = "bilinear", *, edge: str = "reflect",
                 cubic_a: float = -0.5) -> None:
        if method not in INTERPOLATION_METHODS:
            raise InvalidInputError(
                f"Unknown interpolation method {method!r}; "
                f"use one of {list(INTERPOLATION_METHODS)}."
            )
        if edge not in ("reflect", "nearest"):
            raise InvalidInputError(f"edge must be 'reflect' or 'nearest', not {edge!r}.")
        self.method = method
        self.edge = edge
        self.cubic_a = float(cubic_a)
        self.preserves_means = _PRESERVES_MEANS[method]
        self.card = ModelCard(
            name=method,
            kind="interpolation",
            factor=None,
            variable="field",
            standard_name=None,
            units=None,
            description=_DESCRIPTIONS[method]
            + " Deterministic: every member is the same. Unit-agnostic.",
            license="MIT",
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
        """Interpolate a chunk of sequences; see :meth:`Downscaler.run`.

        Parameters
        ----------
        x : ndarray, shape (B, T, H, W), float32
        factor : int
        members : sequence of int
            M member indices; all members are the same field.
        seed, t0, batch_offset, state, device
            Accepted for the interface, unused.

        Returns
        -------
        y : ndarray, shape (M, B, T, H*f, W*f), float32
        state : None
        """
        x, members = _check_run_args(self, x, factor, members)
        fine = upsample(x.astype(np.float32, copy=False), int(factor), self.method,
                        edge=self.edge, cubic_a=self.cubic_a)
        y = np.broadcast_to(fine, (len(members), *fine.shape)).copy()
        return y, None


def _is_int_factor(factor: Any) -> bool:
    try:
        f = float(factor)
    except (TypeError, ValueError):
        return False
    return f.is_integer() and f >= 2


def _check_int_factor(model: Downscaler, factor: Any) -> None:
    if not _is_int_factor(factor):
        raise UnsupportedFactorError(
            f"Model {model.name!r} downscales by any integer factor >= 2, not {factor!r}. "
            "Pass an integer such as factor=2, 4 or 8."
        )


def _check_run_args(model: Downscaler, x: Any, factor: Any,
                    members: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """Validate the common :meth:`Downscaler.run` arguments (shared with RainFARM)."""
    model.check_factor(factor)
    x = np.asarray(x)
    if x.ndim != 4:
        raise InvalidInputError(
            f"{model.name}: expected x of shape (B, T, H, W), got shape {x.shape}."
        )
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InvalidInputError(
            f"{model.name}: x contains NaN or infinite values; fill them before downscaling."
        )
    members = [int(m) for m in members]
    if any(m < 0 for m in members):
        raise InvalidInputError(f"{model.name}: member indices must be >= 0, got {members}.")
    return x, members
