"""The recurrent critic (discriminator) of Leinonen, Nerini & Berne (2021).

The critic sees a coarse sequence and a fine sequence *jointly* and gives one
real-valued score per frame (a Wasserstein critic, no sigmoid). Spectral
normalisation is applied to every convolution and dense layer.

Layout (paper, Sect. III-B):

* fine path: ``log2(factor)`` strided residual blocks (32, 64, 128, 256 channels at
  factor 16) bring the fine frame down to the coarse size;
* coarse path: a 3x3 convolution and residual blocks at the coarse size;
* joint stream: both paths concatenated -> residual blocks -> ConvGRU over time;
* fine-only stream: more residual blocks on the fine path -> its own ConvGRU;
* per frame, each stream is averaged over space, the two vectors are joined ->
  dense -> LeakyReLU(0.2) -> dense 1.

Shapes: B sequences, T steps, C channels, H x W coarse cells, f = ``factor``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from ..errors import ModelCardError, UnsupportedFactorError
from .blocks import ConvGRUCell, ReflectConv, ResBlock
from .generator import SUPPORTED_FACTORS

__all__ = ["CriticConfig", "Critic"]


@dataclasses.dataclass
class CriticConfig:
    """Constructor arguments of :class:`Critic`.

    The defaults are the paper's layout (18.6 M parameters at factor 16 here; the paper
    reports 15.1 M without giving every channel count);
    :meth:`small` gives a CPU-sized one.

    Attributes
    ----------
    factor : int
        Downscaling factor, a power of two from 2 to 16.
    fine_channels, coarse_channels : int
        Channels of the fine and coarse sequences.
    width : int
        Channels of the coarse path, of both streams and of the GRU states (256).
    fine_widths : list of int or None
        Channels after each strided block of the fine path, one per doubling; None
        derives ``..., width/4, width/2, width`` (paper: 32, 64, 128, 256 at factor 16).
    coarse_blocks : int
        Residual blocks of the coarse path (4).
    stream_blocks : int
        Residual blocks of each stream before its GRU (2).
    dense : int
        Width of the hidden dense layer (256).
    spectral_norm : bool
        Spectral normalisation throughout (True in the paper).
    """

    factor: int = 16
    fine_channels: int = 1
    coarse_channels: int = 1
    width: int = 256
    fine_widths: list[int] | None = None
    coarse_blocks: int = 4
    stream_blocks: int = 2
    dense: int = 256
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        if self.factor not in SUPPORTED_FACTORS:
            raise UnsupportedFactorError(
                f"The critic supports factors {SUPPORTED_FACTORS}, not {self.factor}."
            )
        n = self.n_doublings
        if self.fine_widths is None:
            self.fine_widths = [max(self.width // 2 ** (n - 1 - i), 8) for i in range(n)]
        self.fine_widths = [int(w) for w in self.fine_widths]
        if len(self.fine_widths) != n:
            raise ModelCardError(
                f"fine_widths needs {n} entries for factor {self.factor}, got "
                f"{len(self.fine_widths)}."
            )

    @property
    def n_doublings(self) -> int:
        """Number of strided (x1/2) blocks of the fine path, log2(factor)."""
        return int(round(math.log2(self.factor)))

    @classmethod
    def small(cls, factor: int = 8, **kw: Any) -> CriticConfig:
        """Build a CPU-sized critic (0.9 M parameters at factor 8; the cpu preset's: 0.2 M)."""
        base = dict(width=64, coarse_blocks=2, stream_blocks=1, dense=64)
        base.update(kw)
        return cls(factor=factor, **base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the constructor arguments."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticConfig:
        """Rebuild from :meth:`to_dict` output, rejecting unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ModelCardError(f"Unknown critic settings {sorted(unknown)}.")
        return cls(**d)


def _dense(cin: int, cout: int, sn: bool) -> nn.Module:
    lin = nn.Linear(cin, cout)
    return nn.utils.parametrizations.spectral_norm(lin) if sn else lin


class Critic(nn.Module):
    """Recurrent conditional Wasserstein critic with one score per frame.

    Parameters
    ----------
    config : CriticConfig
        Sizes; ``CriticConfig()`` is the paper's critic.

    Shapes
    ------
    coarse : ``(B, T, coarse_channels, H, W)``
    fine : ``(B, T, fine_channels, f * H, f * W)``
    output : ``(B, T)`` scores (higher = judged more real).
    """

    def __init__(self, config: CriticConfig | None = None):
        super().__init__()
        self.config = cfg = config or CriticConfig()
        sn, w = cfg.spectral_norm, cfg.width
        fine: list[nn.Module] = []
        cin = cfg.fine_channels
        for cout in cfg.fine_widths:
            fine.append(ResBlock(cin, cout, "leaky", stride=2, sn=sn))
            cin = cout
        self.fine_path = nn.Sequential(*fine)
        self.coarse_stem = ReflectConv(cfg.coarse_channels, w, 3, sn=sn)
        self.coarse_path = nn.Sequential(
            *[ResBlock(w, w, "leaky", sn=sn) for _ in range(cfg.coarse_blocks)]
        )
        joint = [ResBlock(cin + w, w, "leaky", sn=sn)]
        joint += [ResBlock(w, w, "leaky", sn=sn) for _ in range(cfg.stream_blocks - 1)]
        self.joint_blocks = nn.Sequential(*joint)
        solo = [ResBlock(cin, w, "leaky", sn=sn)]
        solo += [ResBlock(w, w, "leaky", sn=sn) for _ in range(cfg.stream_blocks - 1)]
        self.fine_blocks = nn.Sequential(*solo)
        self.joint_gru = ConvGRUCell(w, w, sn=sn)
        self.fine_gru = ConvGRUCell(w, w, sn=sn)
        self.head = nn.Sequential(_dense(2 * w, cfg.dense, sn), nn.LeakyReLU(0.2),
                                  _dense(cfg.dense, 1, sn))

    def _recur(self, cell: ConvGRUCell, feat: torch.Tensor) -> torch.Tensor:
        """Run ``cell`` over ``feat`` ``(B, T, C, H, W)`` from zero; return pooled ``(B, T, C)``."""
        b, t, c, hh, ww = feat.shape
        h = feat.new_zeros(b, c, hh, ww)
        pooled = []
        for i in range(t):
            h = cell(feat[:, i], h)
            pooled.append(h.mean(dim=(-2, -1)))
        return torch.stack(pooled, dim=1)

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Score each frame of ``fine`` given ``coarse``.

        Parameters
        ----------
        coarse : Tensor ``(B, T, Cc, H, W)``
            Coarse (conditioning) sequence, transformed.
        fine : Tensor ``(B, T, Cf, f*H, f*W)``
            Real or generated fine sequence, transformed.

        Returns
        -------
        Tensor ``(B, T)``
            One score per frame.
        """
        b, t, cc, hh, ww = coarse.shape
        fh, fw = fine.shape[-2:]
        f = self.config.factor
        if (fh, fw) != (hh * f, ww * f) or fine.shape[:2] != coarse.shape[:2]:
            raise ValueError(
                f"Fine shape {tuple(fine.shape)} does not match coarse {tuple(coarse.shape)} "
                f"at factor {f}."
            )
        xf = self.fine_path(fine.reshape(b * t, -1, fh, fw))
        xc = self.coarse_path(self.coarse_stem(coarse.reshape(b * t, cc, hh, ww)))
        joint = self.joint_blocks(torch.cat([xf, xc], dim=1))
        solo = self.fine_blocks(xf)
        pj = self._recur(self.joint_gru, joint.reshape(b, t, -1, hh, ww))
        ps = self._recur(self.fine_gru, solo.reshape(b, t, -1, hh, ww))
        return self.head(torch.cat([pj, ps], dim=-1)).squeeze(-1)
