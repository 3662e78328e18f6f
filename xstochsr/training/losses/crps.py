"""Fair ensemble CRPS over ``k`` generated members, at the fine scale and pooled scales.

A proper scoring rule in the generator's loss rewards the right spread as well as the
right mean (Pacchiardi et al. 2024; Annau et al. 2024): an under-dispersed ensemble
pays for it. The *fair* (unbiased in ``k``) estimator of Ferro (2014) is used, so that
a few members per input (``k >= 2``) train for the CRPS of the infinite ensemble::

    CRPS_fair = mean_i |x_i - y| - 1 / (2 k (k - 1)) * sum_{i,j} |x_i - x_j|

It is computed per pixel on the fine field and on the fields average-pooled over
``s x s`` fine pixels for each scale ``s`` (so that spread is right at every scale),
averaged over valid pixels and then over scales. By default in physical units (what
users score: mm h-1 for rain); the rain transform's inverse is differentiable.

Shapes: k members, B sequences, L frames, fH x fW fine pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from .sample import GeneratedBatch, apply_mask

__all__ = ["fair_crps", "pooled", "differences", "CRPSLoss", "CRPSGradLoss"]


def fair_crps(members: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """Pointwise fair CRPS of an ensemble.

    Parameters
    ----------
    members : Tensor ``(k, ...)``, k >= 2
    obs : Tensor ``(...)``, broadcastable against one member

    Returns
    -------
    Tensor ``(...)``, the fair CRPS at each point (may be slightly negative for a
    single case, its expectation is the CRPS of the underlying distribution).

    Examples
    --------
    >>> fair_crps(torch.tensor([0.0, 2.0]), torch.tensor(1.0))  # 1 - (2 * 2) / (2 * 2 * 1)
    tensor(0.)
    """
    k = members.shape[0]
    if k < 2:
        raise ValueError(f"The fair CRPS needs at least 2 members, got {k}.")
    skill = (members - obs.unsqueeze(0)).abs().mean(dim=0)
    spread = members.new_zeros(skill.shape)
    for i in range(k - 1):  # sum over i < j; the ordered-pair sum is twice this
        spread = spread + (members[i + 1:] - members[i].unsqueeze(0)).abs().sum(dim=0)
    return skill - spread / (k * (k - 1))


def pooled(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Average over ``scale x scale`` pixels of the last two dims (``scale=1``: ``x``)."""
    if scale == 1:
        return x
    lead = x.shape[:-2]
    y = F.avg_pool2d(x.reshape(-1, 1, *x.shape[-2:]), scale)
    return y.reshape(*lead, *y.shape[-2:])


def _scored(s: GeneratedBatch, physical: bool, term: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the members and truth a CRPS term scores.

    Both float32, in physical units or the network's space; members are masked where the
    truth is missing.
    """
    if physical:
        if s.fake_phys is None or s.real_phys is None:
            raise ValueError(f"{term}(physical=True) needs fake_phys and real_phys.")
        fake, real = s.fake_phys.float(), s.real_phys.float()
    else:
        fake, real = s.fake.float(), s.real.float()
    return apply_mask(fake, real, s.mask), real


class CRPSLoss:
    """Fair ensemble CRPS term of the generator loss (no critic needed).

    Parameters
    ----------
    scales : sequence of int
        Pooling sizes in fine pixels (1 = the fine field). Scales larger than the
        training patch are skipped.
    physical : bool
        Score in physical units (True) or in the network's transformed space.
    """

    name = "crps"
    adversarial = False

    def __init__(self, scales: Sequence[int] = (1, 4, 16), physical: bool = True):
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or min(self.scales) < 1:
            raise ValueError(f"crps_scales must be positive integers, got {scales!r}.")
        self.physical = bool(physical)

    def loss(self, critic, s: GeneratedBatch) -> torch.Tensor:
        """Mean fair CRPS of the ``k`` members of ``s``, over valid pixels and scales."""
        fake, real = _scored(s, self.physical, "CRPSLoss")
        size = min(real.shape[-2:])
        terms = []
        for sc in self.scales:
            if sc > size:
                continue
            c = fair_crps(pooled(fake, sc), pooled(real, sc))
            if s.mask is None:
                terms.append(c.mean())
            else:
                w = (pooled(s.mask.float(), sc) > 0.999).float()
                terms.append((c * w).sum() / w.sum().clamp(min=1.0))
        if not terms:
            raise ValueError(f"No CRPS scale {self.scales} fits a {size}-pixel patch.")
        return torch.stack(terms).mean()


def differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbour differences along the last two dims (y, then x).

    Returns ``x[..., 1:, :] - x[..., :-1, :]`` ``(..., H-1, W)`` and
    ``x[..., :, 1:] - x[..., :, :-1]`` ``(..., H, W-1)``.
    """
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


class CRPSGradLoss:
    """Fair ensemble CRPS of the fine field's neighbour differences (term ``"crps-grad"``).

    The pixel CRPS of :class:`CRPSLoss` scores each pixel's marginal distribution; it
    says little about how neighbouring pixels relate, so a generator whose output layer
    works block by block (the constraint layer) can leave jumps at the ``factor``-block
    edges that the truth does not have. This term scores the members' differences between
    neighbouring fine pixels (along y and x) against the truth's, with the same fair CRPS:
    still a proper score (of the differences' distribution at each place), and a jump
    that the truth lacks, at a block edge or anywhere, costs what it misses by. Pixels
    outside the valid mask, and differences touching one, are left out.

    Parameters
    ----------
    physical : bool
        Score in physical units (True) or in the network's transformed space.
    """

    name = "crps-grad"
    adversarial = False

    def __init__(self, physical: bool = True):
        self.physical = bool(physical)

    def loss(self, critic, s: GeneratedBatch) -> torch.Tensor:
        """Mean fair CRPS of the y and x differences of the ``k`` members of ``s``."""
        fake, real = _scored(s, self.physical, "CRPSGradLoss")
        if min(real.shape[-2:]) < 2:
            raise ValueError("crps-grad needs patches of at least 2 x 2 fine pixels.")
        terms = []
        for i, (df, dr) in enumerate(zip(differences(fake), differences(real), strict=True)):
            c = fair_crps(df, dr)
            if s.mask is None:
                terms.append(c.mean())
            else:  # a difference counts where both of its pixels are valid
                m = s.mask.float()
                w = m[..., 1:, :] * m[..., :-1, :] if i == 0 else m[..., :, 1:] * m[..., :, :-1]
                terms.append((c * w).sum() / w.sum().clamp(min=1.0))
        return torch.stack(terms).mean()
