"""Training configuration: every numerical choice of the paper is a field here.

Two presets::

    from xstochsr.training.config import from_preset
    cfg = from_preset("paper")               # Leinonen et al. (2021) sizes
    cfg = from_preset("cpu", steps=500)       # a CPU-sized run (2,000 steps by default)

``xstochsr.train(ds, preset=..., **overrides)`` builds its config the same way, and the
config is stored in the trained model's card (``card.training["config"]``).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from ..errors import InvalidInputError

__all__ = ["TrainConfig", "from_preset", "PRESETS"]


@dataclasses.dataclass
class TrainConfig:
    """All settings of a training run.

    Sizes
    -----
    factor : int
        Downscaling factor (power of two, 2 to 16).
    patch_size : int
        Side of a training patch in *coarse* cells (fine patch = ``patch_size * factor``).
    seq_len : int
        Frames per training sequence (T).
    batch_size : int
        Sequences per optimiser step, summed over all processes of a distributed run
        (must be divisible by the number of processes).

    Networks
    --------
    gen_width, gen_noise_channels, gen_encoder_blocks, gen_init_blocks : int
        :class:`~xstochsr.models.generator.GeneratorConfig` fields.
    gen_upsample_widths : list of int or None
        Channels after each upsampling (None: derived from ``gen_width``).
    gen_fine_noise : int
        Noise maps added after each upsampling stage (``GeneratorConfig.fine_noise``;
        0, the paper's network: noise at the coarse scale only).
    gen_fine_noise_memory : float
        Lag-1 correlation of that fine noise between frames, in [0, 1)
        (``GeneratorConfig.fine_noise_memory``; 0: fresh every frame). Needs
        ``gen_fine_noise > 0``.
    gen_wind_head : {"streamfunction", "helmholtz"} or None
        For a wind pair (``var=["ua", "va"]``) with ``constraint="additive"``: the
        generator gives a streamfunction (and velocity potential) whose centred
        differences are the winds (``GeneratorConfig.wind_head``,
        :mod:`xstochsr.models.wind_head`). None: the winds directly.
    critic_width, critic_coarse_blocks, critic_stream_blocks, critic_dense : int
        :class:`~xstochsr.models.critic.CriticConfig` fields.
    critic_fine_widths : list of int or None
        Channels of the critic's strided fine path (None: derived).

    Objective and optimisation
    --------------------------
    objective : str or dict
        A term or a dict of weighted terms (:mod:`xstochsr.training.losses`):
        ``"wgan-gp"`` (the paper's Wasserstein GAN with gradient penalty), ``"crps"``
        (fair ensemble CRPS over ``ensemble_members`` members per input; alone it trains
        with no critic at all), ``"crps-grad"`` (the same score of the differences between
        neighbouring fine pixels, against block-edge jumps), e.g.
        ``{"wgan-gp": 1.0, "crps": 1.0}`` or ``{"crps": 1.0, "crps-grad": 1.0}``; or ``"mse"``,
        the deterministic baseline (the same generator without noise), alone.
    ensemble_members : int
        k >= 2 members generated per coarse sequence for the CRPS term (2).
    crps_scales : list of int
        Average-pooling sizes (fine pixels) at which the CRPS is scored ([1, 4, 16]).
    crps_space : {"physical", "network"}
        Units of the CRPS term: physical (mm h-1 for rain; default) or network space.
    constraint : {"multiplicative", "additive"} or None
        Hard conservation output layer of the generator (Harder et al. 2023): block
        means equal the coarse input exactly in physical units; multiplicative for
        precipitation (non-negative, dry stays dry), additive for signed fields.
    constraint_dry : float or None
        With ``constraint="multiplicative"``: cells below this value (physical units of
        the data, e.g. 0.1 for mm h-1) come out exactly dry, their block's other cells
        rescaled to keep its mean (``GeneratorConfig.constraint_dry``).
    constraint_prior : {"bilinear", "smooth"} or None
        With ``constraint="multiplicative"``: start the layer's logits from the log of
        the bilinear interpolation of the coarse field, so the untrained network gives a
        smooth field with exact block means; ``"smooth"`` also meets the block means with
        a smooth positive field instead of the softmax's per-block normalisation (no
        steps on block edges where the logits are smooth). With
        ``constraint="additive"``: spread the correction of the block means smoothly
        instead of as a constant per block (no steps on block edges). See
        ``GeneratorConfig.constraint_prior``.
    init : str or None
        Pretrained model (registry name or path) the generator started from.
    gp_weight : float
        Gradient-penalty weight (10).
    critic_steps : int
        Critic updates per generator update (5).
    steps : int
        Generator updates (25,000 in the paper).
    lr_generator, lr_critic : float
        Adam learning rates (1e-4).
    betas : tuple of float
        Adam betas ((0.5, 0.9)).
    weight_decay : float
        Keras ``l2`` coefficient (1e-4): ``weight_decay * sum(w^2)`` added to the loss,
        i.e. a coupled decay of ``2 * weight_decay * w`` in the gradient, on the kernels
        the reference code regularises (the generator's residual-block convolutions;
        not stems, GRU gates, output head, biases, or spectral-normalised critic weights).
    sgd_steps : int
        The last ``sgd_steps`` generator updates use plain SGD with ``sgd_lr``
        (paper: the last 50,000 of 400,000 sequences, i.e. 3,125 steps at batch 16).
    sgd_lr : float
        Learning rate of that final SGD phase (1e-5).

    Data
    ----
    transform : str
        ``"auto"`` (``log_rain`` for precipitation, else ``standardize``) or a kind of
        :mod:`xstochsr.models.transforms`.
    units : str or None
        Units the model works in; None: ``"mm h-1"`` for precipitation, else the data's.
    importance_floor : float
        Patches are drawn with probability proportional to
        ``importance_floor + wet fraction`` (rain) so rainy patches dominate; a large
        value gives uniform sampling. Ignored for non-rain fields (uniform).
    wet_threshold : float or None
        Rain rate (model units) counted as wet; None: the transform's threshold.
    zero_batch_fraction : float
        Fraction of the sequences of every batch that are all zero (0.2, rain only;
        each sequence independently).
    min_valid_fraction : float
        Patches with a smaller fraction of finite fine values are never drawn.
    augment : bool
        Random flips and 90-degree rotations of whole sequences.
    target_smoothing : float
        Gaussian sigma (fine pixels) applied to the transformed fine target (paper
        0.65; 0 disables).
    val_fraction : float
        Fraction of time blocks held out for validation.
    split_block : int
        Length (frames) of the time blocks of the train/validation split.

    Monitoring and checkpoints
    --------------------------
    val_every : int
        Validate every this many steps (and at the end); 0 disables.
    val_sequences, val_members : int
        Held-out sequences scored, and members generated for each.
    checkpoint_every : int
        Write a checkpoint every this many steps (and at the end); 0: only at the end.
    keep_checkpoints : int
        Older checkpoints beyond this many are deleted.
    progress : bool
        Show a tqdm progress bar.

    Hardware
    --------
    amp : bool
        Mixed precision (bfloat16 autocast) for the forward passes. Worth it only where
        bf16 is native (``benchmarks/train_speed.py`` detects and measures it).
    channels_last : bool, default True
        Keep the networks' convolution weights and activations in channels-last memory
        layout. It changes only the order of sums (results to rounding) and doubled the
        CRPS objectives' steps/s on a 2-core CPU (``benchmarks/train_speed.py`` measures
        it on yours; docs/training.md). False for the layout of the runs before
        2026-12-01.
    num_threads : int or None
        ``torch.set_num_threads`` for the run (None leaves it).

    Balance of the objective's terms
    --------------------------------
    term_balance : {"fixed", "adaptive"}
        ``"fixed"`` (default): the objective's weights as given. ``"adaptive"``: at every
        generator step the adversarial term's weight becomes
        ``w_adv * ||g_other|| / (||g_adv|| + 1e-4)`` (clamped to [0, 1e4]), the norms of
        the gradients of the other terms (CRPS) and of the adversarial term at the
        generator's last layer (Esser et al. 2021), so the CRPS keeps its share of the
        gradient however the critic's scale drifts. Needs an objective with an
        adversarial and another term, e.g. ``{"wgan-gp": 1.0, "crps": 1.0}``.
    """

    preset: str = "custom"
    # sizes
    factor: int = 8
    patch_size: int = 8
    seq_len: int = 8
    batch_size: int = 16
    # generator
    gen_width: int = 256
    gen_noise_channels: int = 8
    gen_encoder_blocks: int = 3
    gen_init_blocks: int = 3
    gen_upsample_widths: list[int] | None = None
    gen_fine_noise: int = 0
    gen_fine_noise_memory: float = 0.0
    gen_wind_head: str | None = None
    # critic
    critic_width: int = 256
    critic_fine_widths: list[int] | None = None
    critic_coarse_blocks: int = 4
    critic_stream_blocks: int = 2
    critic_dense: int = 256
    # objective / optimisation
    objective: str | dict = "wgan-gp"
    ensemble_members: int = 2
    crps_scales: list[int] = dataclasses.field(default_factory=lambda: [1, 4, 16])
    crps_space: str = "physical"
    constraint: str | None = None
    constraint_prior: str | None = None
    constraint_dry: float | None = None
    init: str | None = None
    gp_weight: float = 10.0
    critic_steps: int = 5
    steps: int = 25000
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 1e-4
    sgd_steps: int = 0
    sgd_lr: float = 1e-5
    # data
    transform: str = "auto"
    units: str | None = None
    importance_floor: float = 0.02
    wet_threshold: float | None = None
    zero_batch_fraction: float = 0.2
    min_valid_fraction: float = 0.5
    augment: bool = True
    target_smoothing: float = 0.0
    val_fraction: float = 0.1
    split_block: int = 64
    # monitoring
    val_every: int = 500
    val_sequences: int = 32
    val_members: int = 8
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    progress: bool = True
    # hardware
    amp: bool = False
    channels_last: bool = True
    num_threads: int | None = None
    # balance of the objective's terms
    term_balance: str = "fixed"

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # JSON gives lists
        from .losses import normalize

        try:
            normalize(self.objective)
        except ValueError as err:
            raise InvalidInputError(str(err)) from err
        if isinstance(self.objective, dict):
            self.objective = {str(k): float(v) for k, v in self.objective.items()}
        self.crps_scales = [int(s) for s in self.crps_scales]
        if int(self.ensemble_members) < 2:
            raise InvalidInputError(
                f"ensemble_members must be >= 2 (the fair CRPS compares members), got "
                f"{self.ensemble_members}."
            )
        if not self.crps_scales or min(self.crps_scales) < 1:
            raise InvalidInputError(f"crps_scales must be positive integers, got "
                                    f"{self.crps_scales}.")
        if self.crps_space not in ("physical", "network"):
            raise InvalidInputError("crps_space must be 'physical' or 'network'.")
        if self.constraint not in (None, "multiplicative", "additive"):
            raise InvalidInputError(
                f"constraint must be 'multiplicative' (precipitation), 'additive' (signed "
                f"fields) or None, not {self.constraint!r}."
            )
        for name in ("patch_size", "seq_len", "batch_size", "critic_steps", "split_block"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.steps < 0:
            raise InvalidInputError(f"steps must be >= 0, got {self.steps}.")
        if self.patch_size < 2:
            raise InvalidInputError("patch_size must be at least 2 coarse cells.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InvalidInputError(f"val_fraction must be in [0, 1), got {self.val_fraction}.")
        if not 0.0 <= self.zero_batch_fraction < 1.0:
            raise InvalidInputError("zero_batch_fraction must be in [0, 1).")
        if self.sgd_steps < 0:
            raise InvalidInputError("sgd_steps must be >= 0.")
        _check_fine_noise(self.gen_fine_noise)
        from ..models.wind_head import WIND_HEADS

        if self.gen_wind_head is not None and (self.gen_wind_head not in WIND_HEADS
                                               or self.constraint != "additive"):
            raise InvalidInputError(
                f"gen_wind_head must be one of {WIND_HEADS} with constraint='additive' (a "
                f"conserved wind pair), or None; got {self.gen_wind_head!r} with "
                f"constraint={self.constraint!r}.")
        r = self.gen_fine_noise_memory
        if (isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1
                or (r and not self.gen_fine_noise)):
            raise InvalidInputError(
                f"gen_fine_noise_memory must be a number in [0, 1) (the fine noise's lag-1 "
                f"correlation between frames) and above 0 only with gen_fine_noise > 0; got "
                f"{r!r} with gen_fine_noise={self.gen_fine_noise!r}."
            )
        if self.constraint_dry is not None and (
                self.constraint != "multiplicative" or not float(self.constraint_dry) >= 0):
            raise InvalidInputError(
                f"constraint_dry must be a number >= 0 together with "
                f"constraint='multiplicative', or None; got {self.constraint_dry!r} with "
                f"constraint={self.constraint!r}.")
        from ..models.constraints import PRIORS_OF

        if self.constraint_prior is not None and (
                self.constraint_prior not in PRIORS_OF.get(self.constraint, ())):
            raise InvalidInputError(
                f"constraint_prior must be None or, with a constraint layer, one of its "
                f"priors: 'bilinear' or 'smooth' with constraint='multiplicative', "
                f"'bilinear' with constraint='additive'; got {self.constraint_prior!r} "
                f"with constraint={self.constraint!r}.")
        from .losses import check_balance

        try:
            check_balance(self.term_balance, self.objective)
        except ValueError as err:
            raise InvalidInputError(str(err)) from err

    # --- conversions ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(d["betas"])
        d["crps_scales"] = list(d["crps_scales"])
        if isinstance(d["objective"], dict):
            d["objective"] = dict(d["objective"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output, rejecting unknown keys."""
        _check_keys(d)
        return cls(**d)

    def replace(self, **overrides: Any) -> TrainConfig:
        """Return a copy with some fields changed (unknown names raise)."""
        _check_keys(overrides)
        return dataclasses.replace(self, **overrides)

    @property
    def objective_terms(self) -> dict[str, float]:
        """The objective as ``{term: weight}`` (``"wgan-gp"`` -> ``{"wgan-gp": 1.0}``)."""
        from .losses import normalize

        return normalize(self.objective)

    @property
    def objective_name(self) -> str:
        """Short label of the objective: ``"wgan-gp"``, ``"crps"``, ``"crps+wgan-gp"``."""
        return "+".join(self.objective_terms)

    def build_objective(self):
        """Build the :class:`~xstochsr.training.losses.Objective` these settings describe."""
        from .losses import build_objective

        return build_objective(self.objective, gp_weight=self.gp_weight,
                               ensemble_members=self.ensemble_members,
                               crps_scales=self.crps_scales, crps_space=self.crps_space,
                               term_balance=self.term_balance)

    def generator_config(self, *, output_activation: str = "sigmoid"):
        """Return the :class:`~xstochsr.models.generator.GeneratorConfig` described here.

        With ``objective="mse"`` the generator gets no noise (coarse or fine); with a
        multiplicative constraint the head gives logits (no output activation).
        """
        from ..models.generator import GeneratorConfig

        if self.constraint == "multiplicative":
            output_activation = "none"
        return GeneratorConfig(
            factor=self.factor,
            width=self.gen_width,
            noise_channels=0 if "mse" in self.objective_terms else self.gen_noise_channels,
            encoder_blocks=self.gen_encoder_blocks,
            init_blocks=self.gen_init_blocks,
            upsample_widths=None if self.gen_upsample_widths is None
            else list(self.gen_upsample_widths),
            output_activation=output_activation,
            constraint=self.constraint,
            constraint_prior=self.constraint_prior,
            constraint_dry=self.constraint_dry,
            fine_noise=0 if "mse" in self.objective_terms else self.gen_fine_noise,
            fine_noise_memory=0.0 if "mse" in self.objective_terms
            else float(self.gen_fine_noise_memory),
        )

    def critic_config(self):
        """Return the :class:`~xstochsr.models.critic.CriticConfig` described here."""
        from ..models.critic import CriticConfig

        return CriticConfig(
            factor=self.factor,
            width=self.critic_width,
            fine_widths=None if self.critic_fine_widths is None
            else list(self.critic_fine_widths),
            coarse_blocks=self.critic_coarse_blocks,
            stream_blocks=self.critic_stream_blocks,
            dense=self.critic_dense,
        )


_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _check_fine_noise(n: Any) -> None:
    from ..models.generator import MAX_FINE_NOISE

    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_FINE_NOISE:
        raise InvalidInputError(
            f"gen_fine_noise must be an integer from 0 to {MAX_FINE_NOISE} (noise maps per "
            f"upsampling stage; 0 = coarse noise only), got {n!r}."
        )


def _check_keys(d: dict[str, Any]) -> None:
    unknown = [k for k in d if k not in _FIELDS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, sorted(_FIELDS), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidInputError(
            f"Unknown training setting(s) {', '.join(hints)}. Valid settings are the fields "
            f"of xstochsr.TrainConfig: {', '.join(sorted(_FIELDS))}."
        )


#: The presets: the paper's sizes and a CPU-sized run.
PRESETS: dict[str, dict[str, Any]] = {
    # Leinonen et al. (2021): 8x8 coarse -> 128x128 fine at factor 16, T=8, batch 16,
    # 5 critic steps, GP 10, Adam 1e-4 (0.5, 0.9), 25,000 steps, last 3,125 with SGD 1e-5.
    "paper": dict(
        factor=16, patch_size=8, seq_len=8, batch_size=16,
        gen_width=256, gen_noise_channels=8, gen_encoder_blocks=3, gen_init_blocks=3,
        critic_width=256, critic_coarse_blocks=4, critic_stream_blocks=2, critic_dense=256,
        critic_steps=5, steps=25000, sgd_steps=3125, target_smoothing=0.65,
        val_every=1000, val_sequences=64, val_members=16, checkpoint_every=1000,
    ),
    # Small enough for about an hour on 2 CPU cores (see docs/training.md for speeds).
    "cpu": dict(
        factor=8, patch_size=8, seq_len=6, batch_size=8,
        gen_width=48, gen_noise_channels=8, gen_encoder_blocks=2, gen_init_blocks=1,
        critic_width=32, critic_coarse_blocks=1, critic_stream_blocks=1, critic_dense=32,
        critic_steps=2, steps=2000, sgd_steps=0,
        target_smoothing=0.65, val_every=250, val_sequences=16, val_members=8,
        checkpoint_every=250, split_block=48,
    ),
}


def from_preset(name: str = "cpu", **overrides: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from a preset and overrides.

    Parameters
    ----------
    name : {"cpu", "paper"}
        Preset name.
    **overrides
        Any field of :class:`TrainConfig`; unknown names raise with a suggestion.
        A ``None`` value leaves the preset's value (so ``steps=None`` keeps it), except
        for fields whose default is None.

    Returns
    -------
    TrainConfig

    Raises
    ------
    InvalidInputError
        Unknown preset or setting, or an invalid value.

    Examples
    --------
    >>> from_preset("paper").gp_weight
    10.0
    >>> from_preset("cpu", steps=10).steps
    10
    """
    if name not in PRESETS:
        raise InvalidInputError(
            f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}."
        )
    _check_keys(overrides)
    nullable = {f.name for f in dataclasses.fields(TrainConfig) if f.default is None}
    kw = dict(PRESETS[name])
    kw.update({k: v for k, v in overrides.items() if v is not None or k in nullable})
    kw["preset"] = name
    return TrainConfig(**kw)
