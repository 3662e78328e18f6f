"""What the generator loss terms see: one batch with ``k`` generated members per input.

Shapes: k members, B sequences, L frames, H x W coarse cells, f = factor.
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["GeneratedBatch", "apply_mask"]


def apply_mask(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``fake`` where ``mask`` is 1, ``real`` (filled) where it is 0.

    Parameters
    ----------
    fake, real : Tensor ``(B, L, 1, fH, fW)`` (``fake`` may have a leading member axis)
    mask : Tensor ``(B, L, 1, fH, fW)`` or None (all valid)
    """
    if mask is None:
        return fake
    return fake * mask + real * (1 - mask)


@dataclasses.dataclass
class GeneratedBatch:
    """A training batch and the generator's members for it.

    Attributes
    ----------
    coarse : Tensor ``(B, L, 1, H, W)``
        Coarse input, network space.
    real : Tensor ``(B, L, 1, fH, fW)``
        Fine target, network space (missing values filled; possibly smoothed).
    fake : Tensor ``(k, B, L, 1, fH, fW)``
        ``k`` generated members per coarse sequence (independent noise), network space.
    mask : Tensor ``(B, L, 1, fH, fW)`` or None
        1 where the target is valid.
    real_phys, fake_phys : Tensor or None
        The same target and members in physical units (unsmoothed target), when a term
        scores there.
    """

    coarse: torch.Tensor
    real: torch.Tensor
    fake: torch.Tensor
    mask: torch.Tensor | None = None
    real_phys: torch.Tensor | None = None
    fake_phys: torch.Tensor | None = None

    @property
    def members(self) -> int:
        """k, the number of members per coarse sequence."""
        return int(self.fake.shape[0])

    def flat(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(coarse, real, fake, mask)`` with the members folded into the batch: ``k*B``."""
        k = self.members

        def rep(t):
            return None if t is None else t.repeat(k, *([1] * (t.dim() - 1)))

        return rep(self.coarse), rep(self.real), self.fake.flatten(0, 1), rep(self.mask)
