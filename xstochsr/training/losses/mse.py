"""Mean squared error in network space: the deterministic baseline's loss."""

from __future__ import annotations

import torch

from .sample import GeneratedBatch

__all__ = ["MSEObjective"]


class MSEObjective:
    """Mean squared error over valid pixels: the deterministic baseline ("Det. RCNN")."""

    name = "mse"
    adversarial = False

    def generator_loss(
        self,
        critic: torch.nn.Module | None,
        coarse: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mean((fake - real)^2)`` over pixels with ``mask == 1`` (scalar)."""
        d2 = (fake.float() - real.float()) ** 2
        if mask is None:
            return d2.mean()
        return (d2 * mask).sum() / mask.sum().clamp(min=1.0)

    def loss(self, critic: torch.nn.Module | None, s: GeneratedBatch) -> torch.Tensor:
        """MSE of every member of ``s`` against the target (scalar)."""
        _, real, fake, mask = s.flat()
        return self.generator_loss(None, None, real, fake, mask)
