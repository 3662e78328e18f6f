"""Wind from potentials: a generator output that is non-divergent by construction.

With ``GeneratorConfig.wind_head`` set, the generator's last convolution gives a
streamfunction ``psi`` (``"streamfunction"``) or ``psi`` and a velocity potential ``chi``
(``"helmholtz"``) on the fine grid instead of ``u`` and ``v``, and

    u = -d(psi)/dy + d(chi)/dx,      v = d(psi)/dx + d(chi)/dy

with centred differences in grid cells (``torch.gradient``). The discrete divergence
(the same centred differences) of the ``psi`` part is zero to rounding, everywhere,
because differences along y and along x commute; ``chi`` carries whatever divergence
the flow has. Both components are scaled by one number, the geometric mean of the two
channels' standard deviations in the card's transform (different scales for ``u`` and
``v`` would bring divergence back), and shifted by their means. The additive
constraint layer (required) then adds each block's constant correction so that block
means equal the coarse input exactly; that correction is uniform inside a block, so
divergence can only appear on block edges, where the coarse field itself changes.
Which way rows run (north up or down) does not matter: only ``psi``'s sign convention
flips.
"""

from __future__ import annotations

import math

import torch

__all__ = ["WIND_HEADS", "head_channels", "winds", "physical_winds"]

#: Accepted ``GeneratorConfig.wind_head`` values.
WIND_HEADS = ("streamfunction", "helmholtz")


def head_channels(kind: str) -> int:
    """Channels the last convolution gives: 1 (``psi``) or 2 (``psi``, ``chi``)."""
    return 1 if kind == "streamfunction" else 2


def winds(z: torch.Tensor, kind: str) -> torch.Tensor:
    """``(N, 1 or 2, H, W)`` potentials -> ``(N, 2, H, W)`` winds per grid cell.

    Parameters
    ----------
    z : Tensor ``(N, head_channels(kind), H, W)``
        ``psi`` (and ``chi``).
    kind : {"streamfunction", "helmholtz"}

    Returns
    -------
    Tensor ``(N, 2, H, W)``: ``u`` then ``v``.
    """
    dpdy, dpdx = torch.gradient(z[:, 0], dim=(-2, -1))
    u, v = -dpdy, dpdx
    if kind == "helmholtz":
        dcdy, dcdx = torch.gradient(z[:, 1], dim=(-2, -1))
        u, v = u + dcdx, v + dcdy
    return torch.stack([u, v], dim=1)


def physical_winds(z: torch.Tensor, kind: str, transform: dict) -> torch.Tensor:
    """Winds in physical units from potentials, with the card's ``channels`` transform.

    ``u = s u' + mean_u`` and ``v = s v' + mean_v`` with one scale
    ``s = sqrt(std_u * std_v)`` (:mod:`xstochsr.models.transforms`, two ``standardize``
    parts), so that the non-divergence of the ``psi`` part survives the scaling.
    """
    parts = transform.get("channels") if isinstance(transform, dict) else None
    if (not isinstance(parts, list) or len(parts) != 2
            or any(p.get("kind") != "standardize" for p in parts)):
        raise ValueError(
            f"A wind head needs the transform of a wind pair: two 'standardize' channels; got "
            f"{transform!r}.")
    s = math.sqrt(parts[0]["std"] * parts[1]["std"])
    w = winds(z.float(), kind) * s
    mean = torch.tensor([parts[0]["mean"], parts[1]["mean"]], dtype=w.dtype, device=w.device)
    return w + mean.view(1, 2, 1, 1)
