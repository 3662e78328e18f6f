"""Building blocks shared by the generator and the critic.

All convolutions pad by reflection, so every block works on any H x W >= 2 and no
size has to be a multiple of anything. Shapes are per frame, ``(N, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["activation", "ReflectConv", "ResBlock", "ConvGRUCell", "Upsample2x"]


def activation(name: str) -> nn.Module:
    """``"relu"``, ``"leaky"`` (slope 0.2) or ``"none"``."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky":
        return nn.LeakyReLU(0.2)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"Unknown activation {name!r}; use 'relu', 'leaky' or 'none'.")


class ReflectConv(nn.Module):
    """Reflection padding then a ``k x k`` convolution (stride 1 or 2)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, sn: bool = False):
        super().__init__()
        self.pad = k // 2
        conv = nn.Conv2d(cin, cout, k, stride=stride, padding=0)
        self.conv = nn.utils.parametrizations.spectral_norm(conv) if sn else conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad, then convolve: (N, C_in, H, W) -> (N, C_out, H, W)."""
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.conv(x)


class ResBlock(nn.Module):
    """Pre-activation residual block: (act -> pad -> conv) twice, plus a shortcut.

    The shortcut is a 1x1 convolution when channels change (and strided when
    ``stride=2``), else identity.

    Parameters
    ----------
    cin, cout : int
        Channels in and out.
    act : str
        ``"relu"`` or ``"leaky"``.
    stride : int
        1, or 2 to halve H and W (critic's fine path).
    sn : bool
        Spectral normalisation on every convolution (critic).

    Shapes
    ------
    ``(N, cin, H, W) -> (N, cout, H // stride, W // stride)`` (ceil for stride 2).
    """

    def __init__(self, cin: int, cout: int, act: str = "relu", stride: int = 1, sn: bool = False):
        super().__init__()
        self.act1 = activation(act)
        self.conv1 = ReflectConv(cin, cout, 3, stride=stride, sn=sn)
        self.act2 = activation(act)
        self.conv2 = ReflectConv(cout, cout, 3, sn=sn)
        if cin != cout or stride != 1:
            sc = nn.Conv2d(cin, cout, 1, stride=stride)
            self.shortcut = nn.utils.parametrizations.spectral_norm(sc) if sn else sc
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation residual block: (N, C_in, H, W) -> (N, C_out, H, W)."""
        y = self.conv1(self.act1(x))
        y = self.conv2(self.act2(y))
        return y + self.shortcut(x)


class ConvGRUCell(nn.Module):
    """Convolutional GRU cell (causal), as in Leinonen et al. (2021).

    ``z = sigmoid(conv([x, h]))``, ``r = sigmoid(conv([x, h]))``,
    ``o = conv([x, r * h])``, ``h' = z * h + (1 - z) * tanh(o)``.

    Parameters
    ----------
    cin : int
        Channels of the input ``x``.
    ch : int
        Channels of the state ``h``.
    sn : bool
        Spectral normalisation (critic).

    Shapes
    ------
    x ``(N, cin, H, W)``, h ``(N, ch, H, W)`` -> h' ``(N, ch, H, W)``.
    """

    def __init__(self, cin: int, ch: int, sn: bool = False):
        super().__init__()
        self.gates = ReflectConv(cin + ch, 2 * ch, 3, sn=sn)
        self.cand = ReflectConv(cin + ch, ch, 3, sn=sn)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step: input (N, C_in, H, W), state (N, C, H, W) -> new state."""
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        o = self.cand(torch.cat([x, r * h], dim=1))
        return z * h + (1 - z) * torch.tanh(o)


class Upsample2x(nn.Module):
    """Bilinear x2 upsampling (cell-centred: ``align_corners=False``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, 2H, 2W)."""
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
