"""The recurrent critic (discriminator) of Leinonen, Nerini & Berne (2021).

The critic sees a coarse sequence and a fine sequence *jointly* and gives one
real-valued score per frame (a Wasserstein critic, no sigmoid). Spectral
normalisation is applied to every convolution and dense layer.

Layout (paper, Sect. III-B):

* fine path: ``log2(factor)`` strided residual blocks (32, 64, 128, 256 channels at
  factor 16) bring the fine frame down to the coarse size;
* coarse path: residual blocks at the coarse size that widen like the fine path
  (32, 64, 128, 256 channels in the paper), with no stem convolution;
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

from ..errors import CheckpointError, ModelCardError, UnsupportedFactorError
from .blocks import ConvGRUCell, ResBlock
from .generator import SUPPORTED_FACTORS

__all__ = ["CriticConfig", "Critic"]


@dataclasses.dataclass
class CriticConfig:
    """Constructor arguments of :class:`Critic`.

    The defaults are the paper's layout: 15,083,201 trainable parameters at factor 16,
    the reference implementation's count (its 15.1 M); :meth:`small` gives a CPU-sized one.

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
    coarse_widths : list of int or None
        Channels after each residual block of the coarse path, one per block; None
        derives ``..., width/4, width/2, width`` (paper: 32, 64, 128, 256).
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
    coarse_widths: list[int] | None = None
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
            self.fine_widths = _widening(self.width, n)
        self.fine_widths = [int(w) for w in self.fine_widths]
        if len(self.fine_widths) != n:
            raise ModelCardError(
                f"fine_widths needs {n} entries for factor {self.factor}, got "
                f"{len(self.fine_widths)}."
            )
        m = int(self.coarse_blocks)
        if self.coarse_widths is None:
            self.coarse_widths = _widening(self.width, m)
        self.coarse_widths = [int(w) for w in self.coarse_widths]
        if len(self.coarse_widths) != m:
            raise ModelCardError(
                f"coarse_widths needs one entry per coarse block ({m}), got "
                f"{len(self.coarse_widths)}."
            )

    @property
    def n_doublings(self) -> int:
        """Number of strided (x1/2) blocks of the fine path, log2(factor)."""
        return int(round(math.log2(self.factor)))

    @classmethod
    def small(cls, factor: int = 8, **kw: Any) -> CriticConfig:
        """Build a CPU-sized critic (0.8 M parameters at factor 8; the cpu preset's: 0.2 M)."""
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


def _widening(width: int, n: int) -> list[int]:
    """``n`` widths doubling up to ``width`` (at least 8): 256, 4 -> 32, 64, 128, 256."""
    return [max(width // 2 ** (n - 1 - i), 8) for i in range(n)]


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
        # The reference widens the coarse path block by block from the input channels
        # (1 -> 32 -> 64 -> 128 -> 256), the fine path's widths without its strides.
        coarse: list[nn.Module] = []
        ccin = cfg.coarse_channels
        for cout in cfg.coarse_widths:
            coarse.append(ResBlock(ccin, cout, "leaky", sn=sn))
            ccin = cout
        self.coarse_path = nn.Sequential(*coarse)
        joint = [ResBlock(cin + ccin, w, "leaky", sn=sn)]
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
        xc = self.coarse_path(coarse.reshape(b * t, cc, hh, ww))
        joint = self.joint_blocks(torch.cat([xf, xc], dim=1))
        solo = self.fine_blocks(xf)
        pj = self._recur(self.joint_gru, joint.reshape(b, t, -1, hh, ww))
        ps = self._recur(self.fine_gru, solo.reshape(b, t, -1, hh, ww))
        return self.head(torch.cat([pj, ps], dim=-1)).squeeze(-1)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load weights, refusing a state of another layout with a :class:`CheckpointError`.

        A state saved before the coarse path followed the paper (it then had a
        ``coarse_stem`` convolution and ``width``-wide blocks) or for other sizes has other
        tensor names or shapes; torch would raise a bare ``RuntimeError`` listing them.
        """
        if strict:
            own = self.state_dict()
            missing = sorted(set(own) - set(state_dict))
            unexpected = sorted(set(state_dict) - set(own))
            wrong = sorted(k for k in set(own) & set(state_dict)
                           if tuple(own[k].shape) != tuple(state_dict[k].shape))
            if missing or unexpected or wrong:
                old = any(k.startswith("coarse_stem.") for k in state_dict)
                why = ("it was written by an older xstochsr whose critic had a 3x3 coarse "
                       "stem and width-wide coarse blocks" if old else
                       "its sizes differ from this critic's configuration")
                raise CheckpointError(
                    f"The critic state does not fit this critic ({why}): "
                    f"{len(missing)} tensor(s) missing (e.g. {missing[:2]}), "
                    f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), "
                    f"{len(wrong)} of another shape (e.g. {wrong[:2]}). Start a new training "
                    "run (the generator alone can be kept: load it with "
                    "xstochsr.load_model), or resume with the xstochsr version that wrote "
                    "the checkpoint."
                )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
