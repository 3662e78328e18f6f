"""Hard conservation layers: fine block means equal the coarse input by construction.

Constraint layers after Harder et al. (2023, "Hard-constrained deep learning for climate
downscaling", JMLR 24:365): the last layer of the generator maps the network's raw fine
output so that every ``factor x factor`` block mean, in *physical units*, equals the
coarse value it came from, for any weights. The raw network is then unbiased at the
coarse scale and learns only how to distribute each coarse value inside its block.

``"multiplicative"`` (softmax constraint layer, for precipitation)
    ``y = x * f^2 * softmax_block(z)``: non-negative wherever ``x >= 0``, exactly zero
    in blocks whose coarse value is zero (dry stays dry), block mean ``x``.
``"additive"`` (for signed fields: temperature, winds)
    ``y = u - mean_block(u) + x`` with ``u`` the network output in physical units.

Shapes: N frames, C channels, H x W coarse cells, f = factor; the raw output ``z`` and
the result are ``(N, C, f*H, f*W)``, the coarse input ``x`` is ``(N, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["CONSTRAINTS", "block_mean", "multiplicative", "additive", "apply_constraint"]

#: Constraint kinds a generator may carry (``GeneratorConfig.constraint``).
CONSTRAINTS = ("multiplicative", "additive")


def _blocks(z: torch.Tensor, f: int) -> torch.Tensor:
    n, c, fh, fw = z.shape
    return z.reshape(n, c, fh // f, f, fw // f, f)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    n, c, h, f, w, _ = b.shape
    return b.reshape(n, c, h * f, w * f)


def block_mean(y: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over each ``factor x factor`` block: ``(N, C, fH, fW) -> (N, C, H, W)``."""
    return F.avg_pool2d(y, factor)


def multiplicative(z: torch.Tensor, coarse: torch.Tensor, factor: int) -> torch.Tensor:
    """Softmax constraint layer: ``coarse * f^2 * softmax`` of ``z`` within each block.

    Parameters
    ----------
    z : Tensor ``(N, C, f*H, f*W)``
        Raw network output (logits; any real values).
    coarse : Tensor ``(N, C, H, W)``
        Coarse values in physical units (non-negative for a non-negative result).
    factor : int

    Returns
    -------
    Tensor ``(N, C, f*H, f*W)``, float32, block means equal ``coarse``.
    """
    f = int(factor)
    b = _blocks(z.float(), f)
    n, c, h, _, w, _ = b.shape
    flat = b.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, f * f)
    weights = torch.softmax(flat, dim=-1) * (f * f)
    y = weights * coarse.float().reshape(n, c, h, w, 1)
    return _unblocks(y.reshape(n, c, h, w, f, f).permute(0, 1, 2, 4, 3, 5))


def additive(u: torch.Tensor, coarse: torch.Tensor, factor: int) -> torch.Tensor:
    """Additive constraint layer: ``u - block_mean(u) + coarse`` (physical units).

    Parameters
    ----------
    u : Tensor ``(N, C, f*H, f*W)``
        Network output already in physical units.
    coarse : Tensor ``(N, C, H, W)``
    factor : int

    Returns
    -------
    Tensor ``(N, C, f*H, f*W)``, float32, block means equal ``coarse``.
    """
    f = int(factor)
    u = u.float()
    shift = coarse.float() - block_mean(u, f)
    return u + F.interpolate(shift, scale_factor=f, mode="nearest")


def apply_constraint(kind: str, z: torch.Tensor, coarse: torch.Tensor, factor: int,
                     to_physical=None) -> torch.Tensor:
    """Apply constraint ``kind`` to raw output ``z``; see :data:`CONSTRAINTS`.

    ``to_physical`` maps ``z`` to physical units before the additive layer (the
    inverse of the model's transform); the multiplicative layer uses ``z`` as logits.
    """
    if kind == "multiplicative":
        return multiplicative(z, coarse, factor)
    if kind == "additive":
        return additive(z if to_physical is None else to_physical(z), coarse, factor)
    raise ValueError(f"Unknown constraint {kind!r}; use one of {CONSTRAINTS} or None.")
