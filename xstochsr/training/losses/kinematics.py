"""Soft physics terms for wind models: vorticity and divergence of the generated flow.

A model trained on a wind pair (``xstochsr.train(ds, var=["ua", "va"])``, channel 0
eastward, channel 1 northward, as the card's ``channels`` say) can match every pixel's
distribution and still make a flow whose rotation and convergence are wrong. These two
terms look at the derivatives, on the fine grid, in physical units:

``"kinematics"`` (:class:`KinematicsLoss`)
    Each member's vorticity and divergence, averaged over every ``factor x factor``
    block, against the truth's: what the coarse field resolves of the flow's rotation
    and convergence must be the truth's, whatever the member does inside a block. The
    squared error is divided by the truth's mean squared vorticity plus divergence on
    the fine grid (detached), so the term has no units and a weight near 1 is a fair
    start.
``"divergence"`` (:class:`DivergenceLoss`)
    Each member's mean squared divergence, divided by the truth's mean squared
    vorticity: a penalty for flows that are (quasi-)non-divergent, such as
    quasi-geostrophic or large-scale upper-air winds. Do not use it where convergence
    matters (the boundary layer, fronts, convection).

Derivatives are centred differences in grid cells (one-sided at the patch edges,
``torch.gradient``); both terms are ratios, so the grid spacing cancels (a uniform,
square grid is assumed: a projected grid, or a small latitude-longitude patch).
Shapes: k members, B sequences, L frames, C channels, fH x fW fine cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .crps import pooled
from .sample import GeneratedBatch

__all__ = ["KinematicsLoss", "DivergenceLoss", "vorticity_divergence"]

_EPS = 1e-12


def vorticity_divergence(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative vorticity and horizontal divergence, per grid cell, centred differences.

    Parameters
    ----------
    u, v : Tensor ``(..., H, W)``
        Eastward and northward components; rows go along y, columns along x.

    Returns
    -------
    zeta, delta : Tensor ``(..., H, W)``
        ``dv/dx - du/dy`` and ``du/dx + dv/dy`` in units of the wind per grid cell.
    """
    dudy, dudx = torch.gradient(u, dim=(-2, -1))
    dvdy, dvdx = torch.gradient(v, dim=(-2, -1))
    return dvdx - dudy, dudx + dvdy


def _winds(s: GeneratedBatch, channels: Sequence[int], term: str):
    if s.fake_phys is None or s.real_phys is None:
        raise ValueError(f"{term} scores winds in physical units: it needs fake_phys and "
                         "real_phys (a generator step builds them when a term asks).")
    cu, cv = channels
    n = s.real_phys.shape[-3]
    if n <= max(cu, cv):
        raise ValueError(
            f"{term} needs a wind pair (eastward, northward) in channels {cu} and {cv}; the "
            f"model has {n} channel(s). Train on both components: "
            "xstochsr.train(ds, var=['ua', 'va'], ...).")
    fake, real = s.fake_phys.float(), s.real_phys.float()
    return fake[..., cu, :, :], fake[..., cv, :, :], real[..., cu, :, :], real[..., cv, :, :]


def _valid(s: GeneratedBatch, scale: int) -> torch.Tensor | None:
    """Weight 1 for blocks of ``scale`` cells whose every wind value is valid."""
    if s.mask is None:
        return None
    m = s.mask.float().amin(dim=-3)  # both components present
    return (pooled(m, scale) > 0.999).float() if scale > 1 else m


class KinematicsLoss:
    """Block-averaged vorticity and divergence of each member against the truth's.

    Parameters
    ----------
    channels : (int, int)
        Channels of the eastward and northward components.
    """

    name = "kinematics"
    adversarial = False
    physical = True

    def __init__(self, channels: Sequence[int] = (0, 1)):
        self.channels = tuple(int(c) for c in channels)

    def loss(self, critic, s: GeneratedBatch) -> torch.Tensor:
        """Mean squared block-mean vorticity and divergence error, relative to the truth's."""
        fu, fv, ru, rv = _winds(s, self.channels, "kinematics")
        f = int(ru.shape[-1] // s.coarse.shape[-1])
        zf, df = vorticity_divergence(fu, fv)
        zr, dr = vorticity_divergence(ru, rv)
        err = (pooled(zf, f) - pooled(zr, f)) ** 2 + (pooled(df, f) - pooled(dr, f)) ** 2
        scale = (zr.square().mean() + dr.square().mean()).detach() + _EPS
        w = _valid(s, f)
        if w is None:
            return err.mean() / scale
        return (err * w).sum() / (w.sum() * err.shape[0]).clamp(min=1.0) / scale


class DivergenceLoss:
    """Mean squared divergence of the members, relative to the truth's vorticity.

    Parameters
    ----------
    channels : (int, int)
        Channels of the eastward and northward components.
    """

    name = "divergence"
    adversarial = False
    physical = True

    def __init__(self, channels: Sequence[int] = (0, 1)):
        self.channels = tuple(int(c) for c in channels)

    def loss(self, critic, s: GeneratedBatch) -> torch.Tensor:
        """``mean(div(member)^2) / mean(vort(truth)^2)`` over valid cells."""
        fu, fv, ru, rv = _winds(s, self.channels, "divergence")
        _, df = vorticity_divergence(fu, fv)
        zr, _ = vorticity_divergence(ru, rv)
        scale = zr.square().mean().detach() + _EPS
        w = _valid(s, 1)
        if w is None:
            return df.square().mean() / scale
        return (df.square() * w).sum() / (w.sum() * df.shape[0]).clamp(min=1.0) / scale
