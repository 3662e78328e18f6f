"""The paper's adversarial term: Wasserstein loss with gradient penalty (WGAN-GP).

Missing values: wherever the fine target is NaN (``mask == 0``), the generated field is
replaced by the (filled) target before the critic sees it, so the critic cannot tell real
from fake there and no gradient reaches the generator from those pixels.

Shapes: B sequences, L frames, H x W coarse cells, f = factor.
"""

from __future__ import annotations

import torch

from .sample import GeneratedBatch, apply_mask

__all__ = ["WGANGP"]


class WGANGP:
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017), as in the paper.

    Critic loss ``E[D(c, fake)] - E[D(c, real)] + w * E[(||grad D(c, x_hat)|| - 1)^2]``
    with ``x_hat = e * real + (1 - e) * fake``, ``e ~ U(0, 1)`` per sequence, and the same
    coarse input ``c`` conditioning real, fake and interpolate. The gradient norm is
    taken over the whole fine sequence of each sample, of the critic's score summed
    over frames. Generator loss ``-E[D(c, fake)]``.

    Parameters
    ----------
    gp_weight : float
        Gradient-penalty weight (10 in the paper).
    """

    name = "wgan-gp"
    adversarial = True

    def __init__(self, gp_weight: float = 10.0):
        self.gp_weight = float(gp_weight)

    def critic_loss(
        self,
        critic: torch.nn.Module,
        coarse: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Critic loss for one batch.

        Parameters
        ----------
        critic : Critic
            ``critic(coarse, fine) -> (B, L)`` scores.
        coarse : Tensor ``(B, L, 1, H, W)``
        real : Tensor ``(B, L, 1, fH, fW)``
            Target, missing values filled.
        fake : Tensor ``(B, L, 1, fH, fW)``
            Generator output (detached).
        mask : Tensor ``(B, L, 1, fH, fW)`` or None
        generator : torch.Generator, optional
            Draws the interpolation weights ``e`` (on CPU; moved to the device).

        Returns
        -------
        loss : Tensor (scalar)
        logs : dict
            ``wasserstein`` (critic's estimate ``E[D(real)] - E[D(fake)]``) and
            ``gradient_penalty`` (unweighted).
        """
        fake = apply_mask(fake.detach(), real, mask)
        b = real.shape[0]
        e = torch.rand((b, 1, 1, 1, 1), generator=generator).to(real.device, real.dtype)
        interp = (e * real + (1 - e) * fake).requires_grad_(True)
        # one pass over real, fake and interpolates: one spectral-norm power iteration
        scores = critic(coarse.repeat(3, 1, 1, 1, 1), torch.cat([real, fake, interp], dim=0))
        s_real, s_fake, s_int = scores.float().split(b, dim=0)
        (grad,) = torch.autograd.grad(s_int.sum(), interp, create_graph=True)
        gnorm = grad.float().flatten(1).norm(2, dim=1)
        gp = ((gnorm - 1.0) ** 2).mean()
        wdist = s_real.mean() - s_fake.mean()
        loss = -wdist + self.gp_weight * gp
        return loss, {"wasserstein": float(wdist.detach()), "gradient_penalty": float(gp.detach())}

    def generator_loss(
        self,
        critic: torch.nn.Module,
        coarse: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return ``-E[D(coarse, fake)]`` (scalar), masked pixels taken from ``real``."""
        fake = apply_mask(fake, real, mask)
        return -critic(coarse, fake).float().mean()

    def loss(self, critic: torch.nn.Module, s: GeneratedBatch) -> torch.Tensor:
        """Return the generator loss over all ``k * B`` members of ``s`` (scalar)."""
        coarse, real, fake, mask = s.flat()
        return self.generator_loss(critic, coarse, real, fake, mask)
