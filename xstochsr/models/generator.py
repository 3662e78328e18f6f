"""The recurrent stochastic generator of Leinonen, Nerini & Berne (2021).

One coarse sequence plus noise -> one fine sequence; independent noise draws give the
members of an ensemble. The network is fully convolutional (reflection padding) and
recurrent (a convolutional GRU carries a state through time), so it runs on any
domain of at least 2 x 2 coarse cells and any number of steps, in time chunks whose
results equal one pass.

Shapes: B sequences, T steps, C channels, H x W coarse cells, f = ``factor``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelCardError, UnsupportedFactorError
from .blocks import ConvGRUCell, ReflectConv, ResBlock, Upsample2x, activation
from .constraints import CONSTRAINTS, PRIORS_OF, apply_constraint
from .wind_head import WIND_HEADS, head_channels, physical_winds

__all__ = ["GeneratorConfig", "Generator", "NoiseInjection", "SUPPORTED_FACTORS",
           "MAX_FINE_NOISE", "MAX_STATIC"]

SUPPORTED_FACTORS = (2, 4, 8, 16)
#: Most noise maps per upsampling stage a config may ask for (cards are untrusted input).
MAX_FINE_NOISE = 16
#: Most static predictors a config may ask for.
MAX_STATIC = 16
#: Initial weight of an injected fine noise map (see :class:`NoiseInjection`).
FINE_NOISE_INIT = 0.1


@dataclasses.dataclass
class GeneratorConfig:
    """Constructor arguments of :class:`Generator`, kept as JSON in a model card.

    The defaults are the paper's network at factor 8 (three doublings); ``small()``
    gives a CPU-sized one. Same class either way.

    Attributes
    ----------
    factor : int
        Downscaling factor, a power of two from 2 to 16.
    in_channels, out_channels : int
        Channels of the coarse input and of the fine output. The input holds each
        output's coarse field first, then any inputs-only predictors (e.g. geopotential
        for winds), so ``in_channels >= out_channels``; a constraint layer keeps the
        block means of the first ``out_channels`` input channels.
    width : int
        Channels of the coarse-resolution stream and of the GRU state (256 in the paper).
    noise_channels : int
        Noise channels joined to each frame and to the initial state (8 in the paper);
        0 gives a deterministic network (the "Det. RCNN" baseline).
    encoder_blocks : int
        Residual blocks per frame before the GRU (3).
    init_blocks : int
        Residual blocks making the initial GRU state (3).
    upsample_widths : list of int or None
        Channels after each x2 upsampling, one entry per doubling; None derives
        ``width, width/2, ...`` (paper: 256, 128, 64, 32 for factor 16).
    output_activation : str
        ``"sigmoid"`` for outputs scaled to [0, 1] (the paper's transforms) or ``"none"``.
    constraint : {"multiplicative", "additive"} or None
        Hard conservation output layer (:mod:`xstochsr.models.constraints`): the output
        is then in *physical units* and every ``factor x factor`` block mean equals the
        coarse input exactly. ``"multiplicative"`` (softmax weights times the coarse
        value: non-negative, dry blocks stay dry) for precipitation, ``"additive"`` for
        signed fields. None (the paper's network, and every card written before this
        setting existed): output in network space, no constraint.
    fine_noise : int
        Noise maps injected after the residual block of *each* upsampling stage
        (StyleGAN-style, :class:`NoiseInjection`), from 0 to :data:`MAX_FINE_NOISE`.
        0 (default, the paper's network and every card written before this setting
        existed): noise only at the coarse scale. Annau et al. (2024, arXiv:2406.02587)
        find noise at finer scales a lever for fine-scale ensemble spread. The maps
        still arrive on the *coarse* grid, as extra channels of the per-frame noise
        (see :attr:`noise_channels_total`), so each fine noise pixel belongs to one
        coarse cell. Needs ``noise_channels > 0``.
    fine_noise_memory : float
        Lag-1 correlation of the fine noise between frames, in [0, 1). 0 (default, and
        every card written before this setting existed): fresh fine noise every frame,
        which makes members' fine structure forget itself from frame to frame (member
        lag-1 correlation below the truth's; issue 10's ablation). With ``r > 0`` the
        network turns the per-frame fine noise it is given (the *innovations*) into a
        stationary AR(1) in time, ``n_t = r n_{t-1} + sqrt(1 - r**2) e_t`` with
        ``n_0 = e_0``, elementwise per fine pixel, and carries ``n_t`` in its state
        (:class:`Generator`), so chunked, tiled and one-pass runs still agree. Needs
        ``fine_noise > 0``.
    constraint_dry : float or None
        With the multiplicative constraint: cells below this value (the card's units,
        e.g. 0.1 mm h-1) come out exactly dry and their block's other cells are rescaled
        to keep its mean (:func:`xstochsr.models.constraints.dry_out`). A softmax is
        positive everywhere, so without it no pixel of a wet block is ever dry. None
        (default, and every card written before this setting existed): no threshold.
    constraint_prior : {"bilinear", "smooth"} or None
        With the multiplicative constraint: logits start from the log of the bilinear
        interpolation of the coarse field (:func:`xstochsr.models.constraints.log_prior`),
        so an untrained network already gives a smooth field with exact block means and
        training learns the structure on top (no block squares to unlearn); ``"smooth"``
        also replaces the softmax's per-block normalisation, which draws steps on block
        edges, by a smooth positive rescaling
        (:func:`xstochsr.models.constraints.smooth_rescale`). With the
        additive constraint: the correction of the raw block means is spread by a
        bilinear field with exact block means
        (:func:`xstochsr.models.constraints.smooth_spread`) instead of added as a
        constant per block, which draws a step on every block edge. None (default,
        and every card written before this setting existed): plain softmax, or the
        block-constant correction.
    static_channels : int
        Static fine-resolution predictors (orography, land fraction...) the network
        takes, from 0 to :data:`MAX_STATIC`. 0 (default, every card written before this
        setting existed): none, and the network is exactly the one above. With n > 0 the
        forward takes ``static`` ``(B, n, f*H, f*W)``, normalised; a coarse-grained copy
        (average-pooled by ``factor``) enters each frame's stem and, at every upsampling
        stage, the field pooled to that stage's resolution enters through a 3x3
        convolution (:class:`Generator`).
    wind_head : {"streamfunction", "helmholtz"} or None
        For a wind pair (2 channels in and out, ``constraint="additive"``): the last
        convolution gives a streamfunction (and a velocity potential) whose centred
        differences are ``u`` and ``v``, so the streamfunction part is non-divergent by
        construction (:mod:`xstochsr.models.wind_head`). None (default, and every card
        written before this setting existed): ``u`` and ``v`` directly.
    """

    factor: int = 8
    in_channels: int = 1
    out_channels: int = 1
    width: int = 256
    noise_channels: int = 8
    encoder_blocks: int = 3
    init_blocks: int = 3
    upsample_widths: list[int] | None = None
    output_activation: str = "sigmoid"
    constraint: str | None = None
    fine_noise: int = 0
    fine_noise_memory: float = 0.0
    constraint_prior: str | None = None
    constraint_dry: float | None = None
    static_channels: int = 0
    wind_head: str | None = None

    def __post_init__(self) -> None:
        sc = self.static_channels
        if (isinstance(sc, bool) or not isinstance(sc, numbers.Integral)
                or not 0 <= sc <= MAX_STATIC):
            raise ModelCardError(
                f"static_channels must be an integer from 0 to {MAX_STATIC} (static "
                f"predictors such as surface altitude), not {sc!r}."
            )
        self.static_channels = int(sc)
        fn = self.fine_noise
        if (isinstance(fn, bool) or not isinstance(fn, numbers.Integral)
                or not 0 <= fn <= MAX_FINE_NOISE):
            raise ModelCardError(
                f"fine_noise must be an integer from 0 to {MAX_FINE_NOISE} (noise maps per "
                f"upsampling stage), not {fn!r}."
            )
        self.fine_noise = int(fn)
        if fn and not self.noise_channels:
            raise ModelCardError(
                f"fine_noise={fn} needs a stochastic network (noise_channels > 0); set "
                "noise_channels or fine_noise=0 for a deterministic one."
            )
        r = self.fine_noise_memory
        if (isinstance(r, bool) or not isinstance(r, numbers.Real) or not math.isfinite(r)
                or not 0 <= r < 1 or (r and not fn)):
            raise ModelCardError(
                f"fine_noise_memory must be a number in [0, 1) (the fine noise's lag-1 "
                f"correlation between frames), above 0 only with fine_noise > 0; got {r!r} "
                f"with fine_noise={fn}."
            )
        self.fine_noise_memory = float(r)
        if self.constraint is not None and self.constraint not in CONSTRAINTS:
            raise ModelCardError(
                f"constraint must be one of {CONSTRAINTS} or None, not {self.constraint!r}."
            )
        if self.constraint_dry is not None:
            d = self.constraint_dry
            if (isinstance(d, bool) or not isinstance(d, numbers.Real) or not math.isfinite(d)
                    or d < 0 or self.constraint != "multiplicative"):
                raise ModelCardError(
                    f"constraint_dry must be a finite number >= 0 with "
                    f"constraint='multiplicative', or None; got {d!r} with "
                    f"constraint={self.constraint!r}.")
            self.constraint_dry = float(d)
        if self.constraint_prior is not None and (
                self.constraint_prior not in PRIORS_OF.get(self.constraint, ())):
            raise ModelCardError(
                f"constraint_prior must be None or, with a constraint layer, one of its "
                f"priors ({PRIORS_OF}); got {self.constraint_prior!r} with "
                f"constraint={self.constraint!r}."
            )
        if self.out_channels > self.in_channels:
            raise ModelCardError(
                f"out_channels ({self.out_channels}) must not exceed in_channels "
                f"({self.in_channels}): the input holds every output's coarse field, then "
                "any inputs-only predictors.")
        if self.wind_head is not None and (
                self.wind_head not in WIND_HEADS or self.out_channels != 2
                or self.in_channels < 2 or self.constraint != "additive"
                or self.output_activation != "none"):
            raise ModelCardError(
                f"wind_head must be one of {WIND_HEADS} on a wind pair (out_channels = 2, "
                f"in_channels >= 2) with constraint='additive' and output_activation='none', "
                f"or None; got {self.wind_head!r} with {self.in_channels} -> "
                f"{self.out_channels} channels, constraint={self.constraint!r}, "
                f"output_activation={self.output_activation!r}.")
        if self.factor not in SUPPORTED_FACTORS:
            raise UnsupportedFactorError(
                f"The generator supports factors {SUPPORTED_FACTORS} (powers of two), not "
                f"{self.factor}. Pick one of those; for other ratios, downscale by the next "
                "power of two and regrid (target_grid=...)."
            )
        if self.noise_channels < 0 or self.noise_channels >= self.width:
            raise ModelCardError(
                f"noise_channels must be in [0, width); got {self.noise_channels} with "
                f"width {self.width}."
            )
        n = self.n_doublings
        if self.upsample_widths is None:
            self.upsample_widths = [max(self.width // 2**i, 8) for i in range(n)]
        self.upsample_widths = [int(w) for w in self.upsample_widths]
        if len(self.upsample_widths) != n:
            raise ModelCardError(
                f"upsample_widths needs {n} entries for factor {self.factor}, got "
                f"{len(self.upsample_widths)}."
            )

    @property
    def n_doublings(self) -> int:
        """Number of x2 upsamplings, log2(factor)."""
        return int(round(math.log2(self.factor)))

    def fine_noise_channels(self, stage: int) -> int:
        """Coarse-grid noise channels of upsampling ``stage`` (1-based), ``fine_noise * 4**s``.

        Those channels are ``pixel_shuffle``d by ``2**stage`` into ``fine_noise`` maps at
        the stage's resolution.
        """
        return self.fine_noise * 4**stage

    @property
    def noise_channels_total(self) -> int:
        """Channels of the per-frame noise the generator takes, on the coarse grid.

        ``noise_channels + fine_noise * sum(4**s for s in 1..log2(factor))``: the first
        ``noise_channels`` join the frame stem, then one group per upsampling stage
        (:meth:`fine_noise_channels`). Equals ``noise_channels`` when ``fine_noise == 0``.
        The initial-state noise keeps ``noise_channels``.
        """
        return self.noise_channels + sum(
            self.fine_noise_channels(s) for s in range(1, self.n_doublings + 1))

    @property
    def state_channels(self) -> int:
        """Channels of the state the generator carries between calls, on the coarse grid.

        ``width`` (the GRU's), plus the fine noise's coarse-grid channels
        (``noise_channels_total - noise_channels``) when ``fine_noise_memory > 0``: the
        last frame's fine noise, which the next frame's AR(1) step starts from.
        """
        extra = self.noise_channels_total - self.noise_channels
        return self.width + (extra if self.fine_noise_memory else 0)

    @classmethod
    def small(cls, factor: int = 8, **kw: Any) -> GeneratorConfig:
        """Return a CPU-sized network (about 0.7 M parameters at factor 8)."""
        base = dict(width=64, noise_channels=8, encoder_blocks=2, init_blocks=2)
        base.update(kw)
        return cls(factor=factor, **base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the constructor arguments.

        ``constraint`` is left out when None, ``fine_noise``, ``fine_noise_memory`` and
        ``static_channels`` when 0, so cards of networks without them stay exactly as
        they were before those settings existed (and a card without the key loads with
        the default).
        """
        d = dataclasses.asdict(self)
        if d["static_channels"] == 0:
            del d["static_channels"]
        if d["constraint"] is None:
            del d["constraint"]
        if d["fine_noise"] == 0:
            del d["fine_noise"]
        if d["fine_noise_memory"] == 0:
            del d["fine_noise_memory"]
        if d["constraint_prior"] is None:
            del d["constraint_prior"]
        if d["constraint_dry"] is None:
            del d["constraint_dry"]
        if d["wind_head"] is None:
            del d["wind_head"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        """Rebuild from :meth:`to_dict` output, rejecting unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ModelCardError(
                f"Unknown generator settings {sorted(unknown)} in the model card; it may "
                "come from a newer xstochsr: upgrade."
            )
        return cls(**d)


class Generator(nn.Module):
    """Recurrent stochastic generator (Leinonen et al. 2021, Fig. 2).

    Per frame: a 3x3 convolution of the coarse input to ``width - noise_channels``
    channels joined with fresh noise, ``encoder_blocks`` residual blocks, a ConvGRU
    step, then a residual block and ``log2(factor)`` times [bilinear x2 ->
    residual block (LeakyReLU 0.2)], and a final 3x3 convolution. The GRU's initial
    state comes from the first frame joined with its own noise, through
    ``init_blocks`` residual blocks.

    With ``config.fine_noise = n > 0`` each upsampling stage ``s`` (1-based) also adds
    ``n`` fresh noise maps at its own resolution after its residual block, through a
    learned per-channel scale (:class:`NoiseInjection`). They arrive as coarse-grid
    channels of ``noise``: after the ``noise_channels`` of the stem come ``n * 4**s``
    channels per stage, ``pixel_shuffle``d by ``2**s`` into ``(n, 2**s H, 2**s W)``, so
    every fine noise pixel belongs to exactly one coarse cell (tiles that draw noise per
    coarse cell agree with one pass). ``fine_noise = 0`` is the network above, with the
    same parameters.

    With ``config.fine_noise_memory = r > 0`` the fine channels of ``noise`` are
    innovations of an AR(1) in time (see :class:`GeneratorConfig`); the state then holds
    the GRU's ``width`` channels followed by the last frame's fine noise (coarse-grid
    layout), ``config.state_channels`` in all. No parameters change.

    With ``config.static_channels = n > 0`` the network also takes ``static``, n fine
    fields (normalised, the same for every frame). Its average over each coarse cell
    passes through ``static_stem`` (3x3, to the stem's ``width - noise_channels``
    channels) and is added to the frame stem's output: the same as joining n channels
    to the coarse input of each frame (a convolution is linear in its input channels),
    but the old stem keeps its shape, so the other weights match a terrain-blind
    network's. After upsampling stage ``s`` (and its fine noise) the field pooled to
    that stage's resolution passes through a 3x3 convolution ``static_inject[s]`` to the
    stage's channels and is added. Those modules are built last, so ``n = 0`` is the
    network above with the same parameters and the same random initial weights.

    Parameters
    ----------
    config : GeneratorConfig
        Sizes; ``GeneratorConfig()`` is the paper's network.

    Shapes
    ------
    x : ``(B, T, in_channels, H, W)``
    noise : ``(B, T, config.noise_channels_total, H, W)``
    init_noise : ``(B, noise_channels, H, W)``
    h : ``(B, config.state_channels, H, W)`` (``width`` unless ``fine_noise_memory``)
    coarse : ``(B, T, in_channels, H, W)`` physical units (constrained networks only)
    static : ``(B, static_channels, f * H, f * W)`` (networks with static predictors only)
    output : ``(B, T, out_channels, f * H, f * W)``; physical units when
    ``config.constraint`` is set, else network space
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = cfg = config or GeneratorConfig()
        w, nz = cfg.width, cfg.noise_channels

        self.init_stem = ReflectConv(cfg.in_channels, w - nz, 3)
        self.init_blocks = nn.Sequential(*[ResBlock(w, w, "relu") for _ in range(cfg.init_blocks)])
        self.frame_stem = ReflectConv(cfg.in_channels, w - nz, 3)
        self.frame_blocks = nn.Sequential(
            *[ResBlock(w, w, "relu") for _ in range(cfg.encoder_blocks)]
        )
        self.gru = ConvGRUCell(w, w)
        dec: list[nn.Module] = [ResBlock(w, w, "leaky")]
        cin = w
        for cout in cfg.upsample_widths:
            dec += [Upsample2x(), ResBlock(cin, cout, "leaky")]
            cin = cout
        self.decoder = nn.Sequential(*dec)
        self.head = ReflectConv(
            cin, head_channels(cfg.wind_head) if cfg.wind_head else cfg.out_channels, 3)
        self.out_act = nn.Sigmoid() if cfg.output_activation == "sigmoid" else activation("none")
        # Built last, so the other weights draw the same random numbers as without them;
        # empty (no parameters, same state dict) when fine_noise == 0.
        self.noise_inject = nn.ModuleList(
            [NoiseInjection(c, cfg.fine_noise) for c in cfg.upsample_widths]
            if cfg.fine_noise else []
        )
        # Static predictors: built after everything else for the same reason.
        ns = cfg.static_channels
        self.static_stem = ReflectConv(ns, w - nz, 3) if ns else None
        self.static_inject = nn.ModuleList(
            [ReflectConv(ns, c, 3) for c in cfg.upsample_widths] if ns else []
        )

    @property
    def factor(self) -> int:
        """Downscaling factor."""
        return self.config.factor

    def _join(self, feat: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.config.noise_channels == 0:
            return feat
        if noise is None:
            raise ValueError("This generator needs noise (noise_channels > 0).")
        return torch.cat([feat, noise], dim=1)

    def initial_state(self, x0: torch.Tensor, init_noise: torch.Tensor | None) -> torch.Tensor:
        """GRU state from the first frame ``(B, C, H, W)`` -> ``(B, width, H, W)``."""
        return self.init_blocks(self._join(self.init_stem(x0), init_noise))

    def forward(
        self,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
        h: torch.Tensor | None = None,
        init_noise: torch.Tensor | None = None,
        *,
        coarse: torch.Tensor | None = None,
        transform: dict | None = None,
        static: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate a fine sequence.

        Parameters
        ----------
        x : Tensor ``(B, T, C, H, W)``
            Coarse input, transformed/normalised.
        noise : Tensor ``(B, T, config.noise_channels_total, H, W)``, optional
            Per-frame noise (None only when ``noise_channels == 0``): the stem's
            ``noise_channels``, then with ``fine_noise > 0`` each upsampling stage's
            channels (see the class docstring).
        h : Tensor ``(B, config.state_channels, H, W)``, optional
            State carried from the previous chunk (the GRU's, then with
            ``fine_noise_memory`` the last fine noise); None initialises the GRU from
            ``x[:, 0]`` and ``init_noise`` and starts the fine noise afresh.
        init_noise : Tensor ``(B, noise_channels, H, W)``, optional
            Noise for the initial state (used only when ``h`` is None).
        coarse : Tensor ``(B, T, C, H, W)``, optional
            The coarse input in *physical units*; required when ``config.constraint``
            is set (the block means the output must reproduce).
        transform : dict, optional
            The model's transform spec (:mod:`xstochsr.models.transforms`); required by
            the additive constraint to bring the output to physical units.
        static : Tensor ``(B, static_channels, f*H, f*W)``, optional
            Normalised static predictors on the fine grid, the same for all frames;
            required when ``config.static_channels > 0``, refused otherwise.

        Returns
        -------
        y : Tensor ``(B, T, out_channels, f*H, f*W)``
            Network space, or physical units with block means equal to ``coarse``
            when ``config.constraint`` is set.
        h : Tensor ``(B, config.state_channels, H, W)``, the state after the last frame.

        Notes
        -----
        The encoder and decoder run over all ``B * T`` frames at once; only the GRU
        loops over time. For bit-identical results independent of how a sequence is
        split into chunks, call with one frame at a time (as inference does).
        """
        b, t, c, hh, ww = x.shape
        memory = self.config.fine_noise_memory
        last = None
        if h is None:
            h = self.initial_state(x[:, 0], init_noise)
        elif h.shape[1] != self.config.state_channels:
            raise ValueError(
                f"The state has {h.shape[1]} channels; this generator carries "
                f"config.state_channels = {self.config.state_channels} (the GRU's width "
                f"{self.config.width}, then the last fine noise when fine_noise_memory > 0)."
            )
        elif memory:
            h, last = h[:, : self.config.width], h[:, self.config.width :]
        if memory and noise is not None:
            noise, last = self._remember(noise, last)
        frames = x.reshape(b * t, c, hh, ww)
        nz = None if noise is None else noise.reshape(b * t, -1, hh, ww)
        nz, fine = self._split_noise(nz)
        stages = self._static_stages(static, b, t, hh, ww)
        stem = self.frame_stem(frames)
        if stages:
            stem = stem + self.static_stem(stages[0])
        feat = self.frame_blocks(self._join(stem, nz))
        feat = feat.reshape(b, t, -1, hh, ww)
        states = []
        for i in range(t):
            h = self.gru(feat[:, i], h)
            states.append(h)
        hs = torch.stack(states, dim=1).reshape(b * t, -1, hh, ww)
        z = self.head(self._decode(hs, fine, stages[1:]))
        kind = self.config.constraint
        if kind is None:
            y = self.out_act(z)
        else:
            y = self._constrain(kind, z, coarse, transform, b * t)
        if last is not None:
            h = torch.cat([h, last.to(h.dtype)], dim=1)
        return y.reshape(b, t, self.config.out_channels, y.shape[-2], y.shape[-1]), h

    def _remember(self, noise: torch.Tensor, last: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine channels of ``noise`` ``(B, T, C, H, W)`` made an AR(1) in time.

        ``n_t = r n_{t-1} + sqrt(1 - r**2) e_t`` on the channels after the stem's
        ``noise_channels`` (``r = config.fine_noise_memory``), from ``last``
        ``(B, C - noise_channels, H, W)`` or, when None, ``n_0 = e_0``. Returns the new
        noise and its last frame's fine channels.
        """
        nc = self.config.noise_channels
        if noise.shape[2] != self.config.noise_channels_total:
            return noise, last  # _split_noise names the mismatch
        r = self.config.fine_noise_memory
        q = math.sqrt(1.0 - r * r)
        frames = []
        for i in range(noise.shape[1]):
            e = noise[:, i, nc:]
            last = e if last is None else r * last.to(e.dtype) + q * e
            frames.append(last)
        fine = torch.stack(frames, dim=1)
        return torch.cat([noise[:, :, :nc], fine], dim=2), last

    def _split_noise(
        self, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """Split ``(N, noise_channels_total, H, W)`` into the stem's and each stage's noise.

        Returns the stem's ``(N, noise_channels, H, W)`` and, per upsampling stage ``s``,
        ``(N, fine_noise, 2**s H, 2**s W)`` (empty list when ``fine_noise == 0``).
        """
        cfg = self.config
        if noise is None:
            return None, []
        if noise.shape[1] != cfg.noise_channels_total:
            raise ValueError(
                f"noise has {noise.shape[1]} channels per frame; this generator takes "
                f"config.noise_channels_total = {cfg.noise_channels_total} (noise_channels "
                f"{cfg.noise_channels} + fine_noise {cfg.fine_noise} per stage x 4**stage)."
            )
        if not cfg.fine_noise:
            return noise, []
        fine, i = [], cfg.noise_channels
        for s in range(1, cfg.n_doublings + 1):
            k = cfg.fine_noise_channels(s)
            fine.append(F.pixel_shuffle(noise[:, i : i + k], 2**s))
            i += k
        return noise[:, : cfg.noise_channels], fine

    def _static_stages(self, static: torch.Tensor | None, b: int, t: int, hh: int,
                       ww: int) -> list[torch.Tensor]:
        """Pool ``static`` ``(B, n, fH, fW)`` to every scale, one copy per frame.

        Returns ``[]`` without static predictors, else ``log2(f) + 1`` tensors
        ``(B*T, n, 2**s H, 2**s W)`` for ``s = 0..log2(f)`` (``s = 0``: the coarse grid).
        """
        cfg = self.config
        n = cfg.static_channels
        if not n:
            if static is not None:
                raise ValueError("This generator takes no static predictors "
                                 "(config.static_channels == 0); pass static=None.")
            return []
        f = cfg.factor
        want = (b, n, f * hh, f * ww)
        if static is None or tuple(static.shape) != want:
            got = None if static is None else tuple(static.shape)
            raise ValueError(f"This generator needs static predictors of shape {want} "
                             f"(B, static_channels, f*H, f*W); got {got}.")
        static = static.to(dtype=self.static_stem.conv.weight.dtype)
        out = []
        for s in range(cfg.n_doublings + 1):
            k = f // 2**s
            pooled = F.avg_pool2d(static, k) if k > 1 else static
            out.append(pooled.repeat_interleave(t, dim=0))
        return out

    def _decode(self, hs: torch.Tensor, fine: list[torch.Tensor],
                static: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Run the decoder, adding fine noise and static predictors.

        ``(N, width, H, W) -> (N, C_last, fH, fW)``; ``static`` holds one pooled field
        per upsampling stage (``(N, n, 2**s H, 2**s W)``), or nothing.
        """
        if not fine and not static:
            return self.decoder(hs)
        y = self.decoder[0](hs)
        for s in range(self.config.n_doublings):
            upsample, block = self.decoder[1 + 2 * s], self.decoder[2 + 2 * s]
            y = block(upsample(y))
            if fine:
                y = self.noise_inject[s](y, fine[s])
            if static:
                y = y + self.static_inject[s](static[s])
        return y

    def _constrain(self, kind, z, coarse, transform, n):
        if coarse is None:
            raise ValueError(
                f"This generator has a {kind} constraint layer: pass coarse= (the coarse "
                "input in physical units)."
            )
        from . import transforms

        # the block means the outputs keep: the first out_channels of the input (the rest
        # are inputs-only predictors), brought back by those channels' transforms
        nco = self.config.out_channels
        cz = coarse[:, :, :nco].reshape(n, nco, *coarse.shape[-2:])
        to_phys = None
        if kind == "additive":
            if transform is None:
                raise ValueError("The additive constraint needs transform= (the card's spec).")
            spec = transforms.leading(transform, nco)

            def to_phys(v):
                if self.config.wind_head:  # potentials -> non-divergent (+ chi) winds
                    return physical_winds(v, self.config.wind_head, spec)
                return transforms.inverse(self.out_act(v).float(), spec)

        return apply_constraint(kind, z, cz, self.config.factor, to_physical=to_phys,
                                prior=self.config.constraint_prior,
                                dry=self.config.constraint_dry)


class NoiseInjection(nn.Module):
    """Add learned multiples of fine noise maps to a feature map (StyleGAN-style).

    ``x + W n``: with one noise map ``W`` is a per-channel scale ``(1, C, 1, 1)``; with
    several it is a 1x1 convolution ``(C, maps, 1, 1)`` without bias.

    The weights start at :data:`FINE_NOISE_INIT` (0.1; several maps: drawn from
    ``N(0, 0.1**2 / maps)`` so channels see different mixtures), not at 0: a zero start
    has a gradient for the scale, but the network starts exactly as the noise-free one
    and the noise only acts once the scale has grown; 0.1 gives unit-variance noise a
    small but immediate effect next to features of order 1. A choice, not a measurement.

    Parameters
    ----------
    channels : int
        Channels C of the feature map.
    maps : int
        Noise maps per injection (``GeneratorConfig.fine_noise``).

    Shapes
    ------
    x ``(N, C, H, W)``, noise ``(N, maps, H, W)`` -> ``(N, C, H, W)``.
    """

    def __init__(self, channels: int, maps: int, init: float = FINE_NOISE_INIT):
        super().__init__()
        self.maps = int(maps)
        if self.maps == 1:
            w = torch.full((1, channels, 1, 1), float(init))
        else:
            w = torch.randn(channels, self.maps, 1, 1) * (float(init) / math.sqrt(self.maps))
        self.weight = nn.Parameter(w)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Return ``x + W noise``: ``(N, C, H, W)``."""
        if self.maps == 1:
            return x + self.weight * noise
        return x + F.conv2d(noise, self.weight)
