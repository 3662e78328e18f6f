"""``xstochsr.train``: fit the recurrent generator to a user's own high-resolution data.

::

    model = xstochsr.train(ds, var="precip", factor=8, preset="cpu", seed=0)
    model.history.loss_generator.plot()
    ens = coarse_da.sr.downscale(model=model, members=10)

What happens (see ``docs/training.md``): the field is brought into the model's units,
split into training and validation blocks of time, sampled as random space-time patches
(importance-weighted towards rain), and the generator (and, for an adversarial objective,
the recurrent critic) is optimised with the objective's weighted terms
(:mod:`xstochsr.training.losses`: the paper's WGAN-GP, a fair ensemble CRPS over ``k``
members per input, or MSE for the deterministic baseline). Losses go to a tqdm progress
bar and to ``model.history`` (an xarray Dataset); validation scores are computed
periodically on held-out blocks, in physical units, with :mod:`xstochsr.metrics`.

A non-finite loss stops training with :class:`~xstochsr.errors.TrainingError` before
the optimiser step, after writing the (finite) state as a checkpoint; weights that are
not finite are never checkpointed or turned into a model.

Checkpoints (safetensors + JSON, written atomically; never pickle) hold both networks,
both optimisers, the step, every RNG state and the config. ``train(..., resume=path)``
continues a run; on CPU a run resumed from step k gives bit-identical weights to one
that never stopped. Ctrl-C (KeyboardInterrupt) stops at the end of the current step,
writes a checkpoint and returns the model so far.

Launched with ``torchrun`` (environment ``WORLD_SIZE`` > 1), training is data parallel
over processes with ``torch.distributed`` (gloo on CPU, NCCL on GPU): each process
draws its share of the batch and gradients are averaged across processes after every
backward pass, which is what ``DistributedDataParallel`` does; the averaging is done
explicitly here because ``DistributedDataParallel`` does not support the
``torch.autograd.grad`` double backward of the gradient penalty.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from ..errors import CheckpointError, InvalidInputError, TrainingError
from ..models import transforms
from .callbacks import StepTimer, notify
from .checkpoint import (
    find_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    prune_checkpoints,
    read_checkpoint,
    write_checkpoint,
)
from .config import TrainConfig, from_preset
from .validation import scores

__all__ = ["train", "Trainer", "read_checkpoint", "find_checkpoint"]

#: Settings a resumed run may change; anything else must equal the checkpoint's.
RESUMABLE = {"steps", "val_every", "val_sequences", "val_members", "checkpoint_every",
             "keep_checkpoints", "progress", "num_threads", "amp", "channels_last"}

#: Stream ids for seeding (``SeedSequence(seed, spawn_key=(stream, rank))``).
_SPLIT, _SAMPLER, _NOISE, _VAL_PATCHES, _VAL_NOISE, _INIT = range(6)


def _rng(seed: int, stream: int, rank: int = 0) -> np.random.Generator:
    ss = np.random.SeedSequence(seed, spawn_key=(stream, rank))
    return np.random.Generator(np.random.PCG64(ss))


def _torch_seed(seed: int, stream: int, rank: int = 0) -> int:
    ss = np.random.SeedSequence(seed, spawn_key=(stream, rank))
    return int(ss.generate_state(1, dtype=np.uint64)[0] & ((1 << 63) - 1))


def train(
    ds: xr.Dataset | xr.DataArray,
    var: str | None = None,
    factor: int = 8,
    *,
    preset: str = "cpu",
    steps: int | None = None,
    seed: int | None = None,
    resume: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    validation: Any = None,
    coarse: xr.DataArray | None = None,
    callbacks: Any = None,
    init: Any = None,
    static: Any = None,
    predictors: Any = None,
    **overrides: Any,
):
    """Train a stochastic super-resolution generator on your own fine-resolution data.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Fine sequences with time, y and x axes (found from CF metadata, any names),
        optionally with one extra dimension of independent sequences (e.g.
        ``sequence``). Gaps in time split a series; no training sequence crosses a gap.
        NaN is allowed: it is masked out of the losses.
    var : str or list of str, optional
        Variable of a Dataset to train on (needed when it holds several); a list trains
        one model on several variables jointly (e.g. ``["ua", "va"]``, one channel each;
        ``model.card.channels``).
    factor : int, default 8
        Downscaling factor (2, 4, 8 or 16).
    preset : {"cpu", "paper"}, default "cpu"
        Starting configuration (:func:`xstochsr.training.config.from_preset`).
    steps : int, optional
        Number of generator updates (default: the preset's). With ``resume=``, the
        total to reach, so a finished run can be extended.
    seed : int, optional
        Seeds every random choice (patches, noise, initial weights, split). None picks
        one at random and records it in the model card.
    resume : path, optional
        A checkpoint folder (its latest checkpoint is used) or a ``ckpt-*.json`` /
        ``.safetensors`` file. The run continues with the checkpoint's config and seed.
    checkpoint_dir : path, optional
        Where checkpoints go; default ``./xstochsr-runs/<variable>-x<factor>-<time>``
        (or the resumed checkpoint's folder).
    device : str, default "cpu"
        Torch device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"``.
    validation : float, bool, Dataset or DataArray, optional
        None: hold out ``val_fraction`` of the time blocks; a float: that fraction;
        False or 0: no validation; an xarray object: validate on it instead (same
        variable, units and grid spacing), training on all of ``ds``.
    coarse : xarray.DataArray, optional
        Coarse partner of ``ds`` for MOS pairs (time-aligned, ``1/factor`` of its size);
        None block-averages ``ds`` by ``factor`` (perfect prognosis).
    callbacks : list of callable, optional
        Called after each validation (step 0, every ``val_every`` steps, the end) as
        ``cb(step, scores)``; see :mod:`xstochsr.training.callbacks` (``LivePlot``).
    init : str, path or GANModel, optional
        Fine-tune a pretrained generator (e.g. ``"rain-x8"`` or a saved model's path):
        its architecture, constraint and transform win over the preset; the data must
        fit its factor and variable (units that convert, precipitation or not). Only
        the settings that hold no weights may differ: ``constraint_prior="smooth"``
        fine-tunes a softmax-layer model under the smooth multiplicative layer. The card
        records the starting weights' sha256 (``training["init_weights_sha256"]``).
    static : DataArray, Dataset, str or list, optional
        Static fine-resolution predictors (surface altitude, land fraction...): fields
        on the grid of ``ds`` (else regridded onto it), shared ``(y, x)`` or per sequence
        ``(sequence, y, x)``, or names of variables of ``ds``
        (``static="surface_altitude"``). Patches are cut at the target's window; each
        is normalised by its mean and std, which the card records with its name,
        standard_name, units and grid spacing (``model.card.static``); ``downscale``
        then needs them (``static=``). The critic sees them too, as extra channels
        beside each fine frame.
    predictors : str or list of str, optional
        Variables of ``ds`` the generator sees at coarse resolution beside ``var`` but
        does not downscale (geopotential height, temperature... for a wind model): they
        are block-averaged like the outputs, normalised with their own statistics and
        joined to the input channels, and the card lists them
        (``model.card.predictors``); downscaling a Dataset then needs them too. The
        critic sees them with the coarse input; losses and the constraint layer see the
        outputs only. A precipitation ``var`` may have them too (the coarse wind that
        steers rain over terrain): the rain keeps its rain transform and checks, the
        predictors are standardised; a predictor may not itself be precipitation.
    **overrides
        Any field of :class:`~xstochsr.training.config.TrainConfig` (e.g.
        ``batch_size=4``, ``objective={"wgan-gp": 1.0, "crps": 1.0}``,
        ``constraint="multiplicative"``, ``patch_size=6``); unknown names raise.

    Returns
    -------
    GANModel
        The trained model, with ``model.history`` (xarray Dataset of losses along
        ``step`` and validation scores along ``val_step``) and ``model.checkpoint``
        (path of the last checkpoint). ``model.card.training`` records data, config,
        hardware and time.

    Raises
    ------
    InvalidInputError
        Unusable data or settings (unknown setting names are listed with suggestions).
    DomainTooSmallError
        The domain is smaller than a patch, or the series shorter than a sequence.
    CheckpointError
        ``resume=`` points at nothing usable, or at a run with different settings,
        objective or data (variable, units, transform).
    TrainingError
        A loss became NaN or infinite (the last good state is kept as a checkpoint).

    Examples
    --------
    >>> model = xstochsr.train(ds, var="precip", factor=8, steps=2000, seed=0)  # doctest: +SKIP
    >>> model.history[["loss_critic", "loss_generator"]].to_dataframe().plot()  # doctest: +SKIP
    >>> ens = coarse.sr.downscale(model=model, members=20, seed=1)  # doctest: +SKIP
    """
    trainer = Trainer(ds, var, factor, preset=preset, steps=steps, seed=seed, resume=resume,
                      checkpoint_dir=checkpoint_dir, device=device, validation=validation,
                      coarse=coarse, init=init, overrides=overrides, static=static,
                      predictors=predictors)
    trainer.callbacks = list(callbacks or [])
    return trainer.run()


def _resolve_device(device: str, local_rank: int):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidInputError(
            f"Unsupported device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'."
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(
                "device='cuda' was asked for but torch sees no CUDA GPU here; use "
                "device='cpu' (or 'auto')."
            )
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif dev.type != "cpu":
        raise InvalidInputError(f"Unsupported device {device!r}; use 'cpu', 'cuda' or 'auto'.")
    return dev


class _Stopper:
    """Turns the first Ctrl-C (SIGINT) into a request to stop after the current step.

    A second Ctrl-C raises KeyboardInterrupt at once. Only installed in the main thread.
    """

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nxstochsr: stopping after this step and writing a checkpoint "
              "(press Ctrl-C again to abort at once).", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):  # not allowed here: plain KeyboardInterrupt
                self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Trainer:
    """The state of one training run; :func:`train` builds one and calls :meth:`run`.

    Parameters are those of :func:`train` (``overrides`` as a dict).
    """

    def __init__(self, ds, var=None, factor=8, *, preset="cpu", steps=None, seed=None,
                 resume=None, checkpoint_dir=None, device="cpu", validation=None,
                 coarse=None, init=None, overrides=None, static=None, predictors=None):
        import torch

        from ..models.critic import Critic
        from ..models.generator import Generator
        from . import data as D
        from .pretrained import init_overrides, load_init

        overrides = dict(overrides or {})
        self.resume_meta, resume_tensors = None, None
        self.init_model = None
        if init is not None and resume is not None:
            raise InvalidInputError("Give either init= (start from a pretrained model) or "
                                    "resume= (continue a run), not both.")
        if init is not None:
            self.init_model = load_init(init)
            overrides.update(init_overrides(self.init_model, factor, overrides))
            factor = self.init_model.card.factor
        if resume is not None:
            resume_tensors, self.resume_meta = read_checkpoint(resume)
            cfg = self._resumed_config(self.resume_meta, factor, steps, overrides)
            seed = self.resume_meta["seed"]
        else:
            if isinstance(validation, bool) and not validation:
                overrides["val_fraction"] = 0.0
            elif isinstance(validation, (int, float)) and not isinstance(validation, bool):
                overrides["val_fraction"] = float(validation)
            if isinstance(validation, (xr.Dataset, xr.DataArray)):
                overrides["val_fraction"] = 0.0
            cfg = from_preset(preset, factor=int(factor), steps=steps, **overrides)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        self.cfg, self.seed = cfg, int(seed)
        #: the weights a fine-tune started from, kept through resumes (the card's)
        self.init_sha256 = (self.init_model.card.weights_sha256 if self.init_model is not None
                            else (self.resume_meta or {}).get("init_weights_sha256"))
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))

        # --- processes -------------------------------------------------------------------
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank, self._own_group = 0, False
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = _resolve_device(device, local_rank)
        if self.world > 1:
            import torch.distributed as dist

            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
                self._own_group = True
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if cfg.batch_size % self.world:
            raise InvalidInputError(
                f"batch_size={cfg.batch_size} is not divisible by the {self.world} processes."
            )
        self.local_batch = cfg.batch_size // self.world

        # --- data ----------------------------------------------------------------------
        t0 = time.perf_counter()
        units = cfg.units
        if self.init_model is not None:
            units = self.init_model.card.units
        stats = None  # static predictors' normalisation: fitted here unless inherited
        if self.resume_meta is not None:
            stats = self.resume_meta.get("static")
        elif self.init_model is not None:
            stats = self.init_model.card.static
        if isinstance(predictors, str):
            predictors = [predictors]
        predictors = list(predictors or [])
        self.data = D.load_training_data(ds, var, cfg.factor, coarse=coarse, units=units,
                                         static=static, static_stats=stats,
                                         predictors=predictors)
        info = self.data.info
        train_runs, val_runs = D.split_blocks(
            self.data.runs, block=cfg.split_block, val_fraction=cfg.val_fraction,
            seq_len=cfg.seq_len, rng=_rng(self.seed, _SPLIT))
        self.kind = D.choose_transform(cfg.transform, info["rain"])
        if self.resume_meta is not None:
            _check_resumed_data(self.resume_meta, info, self.kind)
            self.spec = self.resume_meta["transform"]
        elif self.init_model is not None:
            from .pretrained import check_init_data

            check_init_data(self.init_model, info, self.kind)
            self.spec = dict(self.init_model.card.transform)
        else:
            self.spec = D.fit_transform(self.data, train_runs, self.kind)
        # the outputs' transform (the spec holds the predictors' parts after theirs)
        self.out_spec = transforms.leading(self.spec, self.data.outputs)
        rain = self.kind in ("log_rain", "log_threshold") and info["rain"]
        wet = (cfg.wet_threshold if cfg.wet_threshold is not None
               else self.out_spec.get("threshold"))
        self.sampler = D.PatchSampler(
            self.data, train_runs, self.spec, patch_size=cfg.patch_size, seq_len=cfg.seq_len,
            rng=_rng(self.seed, _SAMPLER, self.rank),
            importance_floor=cfg.importance_floor if (rain and wet is not None) else None,
            wet_threshold=wet if wet is not None else 0.0,
            min_valid_fraction=cfg.min_valid_fraction, augment=cfg.augment,
            zero_batch_fraction=cfg.zero_batch_fraction if self.kind == "log_rain" else 0.0,
            target_smoothing=cfg.target_smoothing)
        self.val_batch = None
        if isinstance(validation, (xr.Dataset, xr.DataArray)):
            vdata = D.load_training_data(
                validation, var, cfg.factor, rain=info["rain"],
                units=None if info.get("channels") else info["units"],  # own units each
                static=static,  # names are looked up in the validation set
                static_stats=info.get("static"), predictors=predictors)
            val_runs, vsrc = vdata.runs, vdata
        else:
            vsrc = self.data
        if cfg.val_every and val_runs and any(b - a >= cfg.seq_len for _, a, b in val_runs):
            vs = D.PatchSampler(vsrc, val_runs, self.spec, patch_size=cfg.patch_size,
                                seq_len=cfg.seq_len, rng=_rng(self.seed, _VAL_PATCHES),
                                importance_floor=cfg.importance_floor if rain else None,
                                wet_threshold=wet if wet is not None else 0.0,
                                min_valid_fraction=cfg.min_valid_fraction, augment=False)
            self.val_batch = vs.assemble(vs.draw(cfg.val_sequences))
        elif cfg.val_every and cfg.val_fraction > 0 and self.rank == 0:
            warnings.warn("Too little data for a validation block of time; training without "
                          "validation scores (lower split_block= or give validation=).",
                          stacklevel=3)
        self.train_runs, self.val_runs = train_runs, val_runs
        self.data_seconds = time.perf_counter() - t0

        # --- networks ------------------------------------------------------------------
        act = "sigmoid" if self.kind in ("log_rain", "log_threshold", "minmax") else "none"
        self.gcfg = cfg.generator_config(output_activation=act)
        if self.init_model is not None:  # the pretrained network's config wins
            from .pretrained import init_generator_config

            self.gcfg = init_generator_config(self.init_model, cfg)
        n_static = len(info.get("static") or [])
        had = self.gcfg.static_channels
        if self.resume_meta is not None:
            had = int((self.resume_meta.get("generator_config") or {}).get("static_channels", 0))
            if had != n_static:
                raise CheckpointError(
                    f"The checkpoint's generator takes {had} static predictor(s), but "
                    f"static= gives {n_static}: resume with the same static= as the run.")
        elif self.init_model is not None and had and had != n_static:
            raise InvalidInputError(
                f"init= model {self.init_model.name!r} takes static predictors "
                f"{[e['name'] for e in self.init_model.card.static or []]}; give the same "
                "ones with static=.")
        # A terrain-blind init= model gains static predictors: its weights load, the new
        # static convolutions start from their initial draw.
        self.gcfg = dataclasses.replace(self.gcfg, static_channels=n_static)
        nch, nout = self.data.channels, self.data.outputs  # inputs (+ predictors), outputs
        if self.init_model is None and nch > 1:  # several variables: one channel each
            self.gcfg = dataclasses.replace(self.gcfg, in_channels=nch, out_channels=nout,
                                            wind_head=cfg.gen_wind_head)
        elif self.init_model is None and cfg.gen_wind_head:
            raise InvalidInputError(
                f"gen_wind_head={cfg.gen_wind_head!r} makes the winds of a pair; this run "
                f"trains one variable ({info['variable']!r}). Use var=['ua', 'va'].")
        if self.gcfg.out_channels != nout or self.gcfg.in_channels != nch:
            raise InvalidInputError(
                f"The generator takes {self.gcfg.in_channels} and gives "
                f"{self.gcfg.out_channels} channel(s) but the data has {nch} variable(s), "
                f"{nout} of them outputs; init= and resumed runs need the variables (and "
                "predictors=) they were trained on.")
        if self.gcfg.constraint == "multiplicative" and not info["rain"]:
            warnings.warn("constraint='multiplicative' on a field that is not precipitation: "
                          "outputs keep the sign of the coarse value; for signed fields use "
                          "constraint='additive'.", stacklevel=3)
        self.objective = cfg.build_objective()
        _check_wind_terms(self.objective, info, self.gcfg.wind_head)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_torch_seed(self.seed, _INIT))
            self.G = Generator(self.gcfg)
            ccfg = dataclasses.replace(cfg.critic_config(), fine_channels=nout,
                                       coarse_channels=nch)
            if n_static:  # the critic sees the static fields beside each fine frame
                ccfg = dataclasses.replace(ccfg, fine_channels=ccfg.fine_channels + n_static)
            self.D = Critic(ccfg) if self.objective.adversarial else None
        if self.init_model is not None:
            missing, unexpected = self.G.load_state_dict(
                self.init_model.generator.state_dict(), strict=not n_static)
            if unexpected or any(not k.startswith("static_") for k in missing):
                raise InvalidInputError(
                    f"init= model {self.init_model.name!r} does not fit this generator "
                    f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G.to(self.device, memory_format=fmt).train()
        if self.D is not None:
            self.D.to(self.device, memory_format=fmt).train()
        self.noise_gen = torch.Generator().manual_seed(_torch_seed(self.seed, _NOISE, self.rank))
        self.step = 0
        self.phase = "adam"
        self._make_optimizers(self._phase_for(0))
        self.term_keys = [f"loss_{n.replace('-', '_')}" for n in cfg.objective_terms] \
            if len(cfg.objective_terms) > 1 else []
        if self.objective.balance == "adaptive":  # the adversarial term's effective weight
            self.term_keys.append("adv_weight")
        self.history: dict[str, list] = {k: [] for k in (
            "step", "loss_critic", "loss_generator", "wasserstein", "gradient_penalty",
            *self.term_keys, "wall_time")}
        self.val_history: dict[str, list] = {"val_step": []}
        self.elapsed_before = 0.0
        if self.resume_meta is not None:
            self._load_state(resume_tensors, self.resume_meta)
        elif self.world > 1:
            self._broadcast_params()

        # --- where checkpoints go ------------------------------------------------------
        if checkpoint_dir is None:
            if self.resume_meta is not None:
                checkpoint_dir = Path(self.resume_meta["path"]).parent
            else:
                stamp = time.strftime("%Y%m%d-%H%M%S")
                checkpoint_dir = Path("xstochsr-runs") / f"{info['variable']}-x{cfg.factor}-{stamp}"
        self.checkpoint_dir = Path(checkpoint_dir)
        self.last_checkpoint: Path | None = None

    # --- configuration ------------------------------------------------------------------
    @staticmethod
    def _resumed_config(meta, factor, steps, overrides) -> TrainConfig:
        cfg = TrainConfig.from_dict(meta["config"])
        changed = {}
        for k, v in overrides.items():
            if v is None:
                continue
            if k == "term_balance" and v != cfg.term_balance:
                raise CheckpointError(
                    f"The checkpoint was trained with term_balance={cfg.term_balance!r}; "
                    f"resuming it with term_balance={v!r} is refused (it changes the "
                    "objective). Resume with the same balance, or start a new run from the "
                    "saved model with init=<model path> and the new term_balance."
                )
            if k == "objective":
                from .losses import normalize

                try:
                    same = normalize(v) == cfg.objective_terms
                except ValueError as err:
                    raise InvalidInputError(str(err)) from err
                if not same:
                    raise CheckpointError(
                        f"The checkpoint was trained with objective {cfg.objective!r}; "
                        f"resuming it with objective {v!r} is refused. Resume with the same "
                        "objective, or start a new run from the saved model with "
                        "init=<model path> and the new objective."
                    )
                continue
            if k not in RESUMABLE and getattr(cfg.replace(**{k: v}), k) != getattr(cfg, k):
                raise CheckpointError(
                    f"The checkpoint was trained with {k}={getattr(cfg, k)!r}; a resumed run "
                    f"cannot change it to {v!r}. Only {sorted(RESUMABLE)} may change."
                )
            changed[k] = v
        if int(factor) != cfg.factor and int(factor) != 8:  # 8 is train()'s default
            raise CheckpointError(
                f"The checkpoint is for factor {cfg.factor}, not {factor}; "
                f"pass factor={cfg.factor}."
            )
        if steps is not None:
            changed["steps"] = int(steps)
        return cfg.replace(**changed)

    def _phase_for(self, step: int) -> str:
        cfg = self.cfg
        return "sgd" if cfg.sgd_steps and step >= cfg.steps - cfg.sgd_steps else "adam"

    def _param_groups(self, module, lr):
        from .optim import l2_param_groups

        return l2_param_groups(module, lr, self.cfg.weight_decay)

    def _make_optimizers(self, phase: str) -> None:
        import torch

        cfg = self.cfg
        self.phase = phase
        mods = [("opt_g", self.G, cfg.lr_generator)]
        if self.D is not None:
            mods.append(("opt_d", self.D, cfg.lr_critic))
        for name, mod, lr in mods:
            if phase == "adam":
                opt = torch.optim.Adam(self._param_groups(mod, lr), lr=lr, betas=cfg.betas)
            else:
                opt = torch.optim.SGD(self._param_groups(mod, cfg.sgd_lr), lr=cfg.sgd_lr)
            setattr(self, name, opt)
        if self.D is None:
            self.opt_d = None

    # --- distributed helpers ------------------------------------------------------------
    def _broadcast_params(self) -> None:
        import torch.distributed as dist

        for mod in (self.G, self.D):
            if mod is None:
                continue
            for t in list(mod.parameters()) + list(mod.buffers()):
                dist.broadcast(t.data, src=0)

    def _allreduce_grads(self, module) -> None:
        if self.world == 1:
            return
        import torch
        import torch.distributed as dist

        params = [p for p in module.parameters() if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[i:i + n].view_as(p.grad))
            i += n

    def _mean_logs(self, logs: dict[str, float]) -> dict[str, float]:
        if self.world == 1:
            return logs
        import torch
        import torch.distributed as dist

        keys = sorted(logs)
        t = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist(), strict=True)}

    def _any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t.item())

    # --- one step -----------------------------------------------------------------------
    def _tensors(self, batch):
        import torch

        dev = self.device
        c = torch.from_numpy(batch.coarse).to(dev)
        y = torch.from_numpy(batch.fine).to(dev)
        m = None if batch.mask is None else torch.from_numpy(batch.mask).to(dev)
        return c, y, m

    def _phys_tensors(self, batch):
        import torch

        dev = self.device
        return (torch.from_numpy(np.ascontiguousarray(batch.coarse_phys)).to(dev),
                torch.from_numpy(np.ascontiguousarray(batch.fine_phys)).to(dev))

    def _noise(self, b: int, t: int, h: int, w: int):
        nz = self.gcfg.noise_channels
        if nz == 0:
            return None, None
        import torch

        noise = torch.randn((b, t, self.gcfg.noise_channels_total, h, w),
                            generator=self.noise_gen).to(self.device)
        init = torch.randn((b, nz, h, w), generator=self.noise_gen).to(self.device)
        return noise, init

    def _autocast(self):
        import torch

        if not self.cfg.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _static(self, batch, repeat: int = 1):
        """Return the batch's static predictors as a tensor ``(repeat*B, n, fP, fP)``, or None."""
        import torch

        if batch.static is None:
            return None
        st = torch.from_numpy(np.ascontiguousarray(batch.static)).to(self.device)
        return st.repeat(repeat, 1, 1, 1) if repeat > 1 else st

    def _generate(self, c, cp=None, st=None):
        """Run the generator on coarse ``c`` (network space) and ``cp`` (physical).

        Returns ``(net, phys)``: the fields in network space and, for a constrained
        generator (whose output is physical), in physical units; else ``phys`` is None.
        """
        from ..models import transforms

        b, t, _, h, w = c.shape
        noise, init = self._noise(b, t, h, w)
        kw = {}
        if self.gcfg.constraint:
            kw = {"coarse": cp, "transform": self.spec}
        with self._autocast():
            y, _ = self.G(c, noise, None, init, static=st, **kw)
        y = y.float()
        if self.gcfg.constraint:
            return transforms.forward(y, self.out_spec), y
        return y, None

    def _check_finite(self, loss, what: str) -> None:
        import torch

        if self._any(not bool(torch.isfinite(loss.detach()).all())):
            raise _NonFiniteLoss(what, float(loss.detach()))

    def _critic_step(self) -> dict[str, float]:
        import torch

        batch = self.sampler.sample(self.local_batch)
        c, y, m = self._tensors(batch)
        cp = self._phys_tensors(batch)[0] if self.gcfg.constraint else None
        st = self._static(batch)
        with torch.no_grad():
            fake, _ = self._generate(c, cp, st)
        with self._autocast():
            loss, logs = self.objective.critic_loss(_critic_with(self.D, st), c, y, fake, m,
                                                    generator=self.noise_gen)
        self._check_finite(loss, "critic")
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self._allreduce_grads(self.D)
        self.opt_d.step()
        return {"loss_critic": float(loss.detach()), **logs}

    def _generator_step(self) -> dict[str, float]:
        from ..models import transforms
        from .losses import GeneratedBatch

        batch = self.sampler.sample(self.local_batch)
        c, y, m = self._tensors(batch)
        phys = self.objective.needs_physical or bool(self.gcfg.constraint)
        cp, yp = self._phys_tensors(batch) if phys else (None, None)
        k = self.objective.members  # k members per coarse sequence, independent noise
        if self.D is not None:
            self.D.requires_grad_(False)
        try:
            ck = c.repeat(k, 1, 1, 1, 1)
            fake, fake_phys = self._generate(ck, None if cp is None else cp.repeat(k, 1, 1, 1, 1),
                                             self._static(batch, k))
            if self.objective.needs_physical and fake_phys is None:
                fake_phys = transforms.inverse(fake, self.out_spec)

            def unfold(t):
                return None if t is None else t.reshape(k, *c.shape[:1], *t.shape[1:])

            gb = GeneratedBatch(coarse=c, real=y, fake=unfold(fake), mask=m, real_phys=yp,
                                fake_phys=unfold(fake_phys))
            kw = {}
            if self.objective.balance == "adaptive":  # weighs terms at the head conv
                kw["last_layer"] = self.G.head.conv.weight
            with self._autocast():
                loss, logs = self.objective.generator_loss(
                    _critic_with(self.D, self._static(batch)), gb, **kw)
            self._check_finite(loss, "generator")
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            if self.D is not None:
                self.D.requires_grad_(True)
        self._allreduce_grads(self.G)
        self.opt_g.step()
        out = {"loss_generator": float(loss.detach())}
        if self.term_keys:
            out.update({n.replace('-', '_'): v for n, v in logs.items()})
        return out

    def train_step(self) -> dict[str, float]:
        """One generator update (after ``critic_steps`` critic updates); returns the logs."""
        if self._phase_for(self.step) != self.phase:
            self._make_optimizers(self._phase_for(self.step))
        logs: dict[str, float] = {}
        if self.D is not None:
            acc: dict[str, float] = {}
            for _ in range(self.cfg.critic_steps):
                for k, v in self._critic_step().items():
                    acc[k] = acc.get(k, 0.0) + v / self.cfg.critic_steps
            logs.update(acc)
        logs.update(self._generator_step())
        self.step += 1
        return self._mean_logs(logs)

    # --- validation -----------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Scores of the generator on the held-out patches, in physical units.

        The same :mod:`xstochsr.metrics` functions users call (see
        :func:`~xstochsr.training.validation.scores`): ``val_rmse`` (ensemble mean vs
        truth), ``val_spread``, ``val_crps``, ``val_rank_ks``, ``val_outlier_proportion``
        and, for precipitation, the same on wet pixels (``val_wet_*``: truth or any
        member at or above the transform's threshold).
        """
        import torch

        from ..models import transforms

        vb = self.val_batch
        if vb is None:
            return {}
        members = max(self.cfg.val_members, 2) if self.gcfg.noise_channels else 1
        gen = torch.Generator().manual_seed(_torch_seed(self.seed, _VAL_NOISE))
        nz = self.gcfg.noise_channels
        n, t, _, h, w = vb.coarse.shape
        was_training = self.G.training
        self.G.eval()
        out = np.empty((members, *vb.fine.shape), np.float32)  # (M, n, t, C, fh, fw)
        with torch.no_grad():
            for mi in range(members):
                for i in range(0, n, self.cfg.batch_size):
                    sl = slice(i, i + self.cfg.batch_size)
                    c = torch.from_numpy(vb.coarse[sl]).to(self.device)
                    b = c.shape[0]
                    noise = init = None
                    if nz:
                        noise = torch.randn((b, t, self.gcfg.noise_channels_total, h, w),
                                            generator=gen).to(self.device)
                        init = torch.randn((b, nz, h, w), generator=gen).to(self.device)
                    kw = {}
                    if self.gcfg.constraint:
                        kw = {"coarse": torch.from_numpy(np.ascontiguousarray(
                            vb.coarse_phys[sl])).to(self.device), "transform": self.spec}
                    if vb.static is not None:
                        kw["static"] = torch.from_numpy(np.ascontiguousarray(
                            vb.static[sl])).to(self.device)
                    with self._autocast():
                        y, _ = self.G(c, noise, None, init, **kw)
                    y = y.float()
                    if not self.gcfg.constraint:
                        y = transforms.inverse(y, self.out_spec)
                    out[mi, i:i + b] = y.cpu().numpy()
        self.G.train(was_training)
        truth = vb.fine_phys.copy()
        if vb.mask is not None:
            truth[vb.mask == 0] = np.nan
        # several variables: each channel scored as more sequences (n*C of them)
        out = np.moveaxis(out, 3, 2).reshape(members, -1, *out.shape[2:3], *out.shape[-2:])
        truth = np.moveaxis(truth, 2, 1).reshape(-1, *truth.shape[1:2], *truth.shape[-2:])
        wet = (self.out_spec.get("threshold") if self.kind in ("log_rain", "log_threshold")
               else None)
        return scores(out, truth, wet_threshold=wet)

    # --- checkpoints --------------------------------------------------------------------
    def _gather_rng(self) -> tuple[list, list]:
        np_state = self.sampler.rng.bit_generator.state
        tg_state = self.noise_gen.get_state()
        if self.world == 1:
            return [np_state], [tg_state]
        import torch.distributed as dist

        nps = [None] * self.world
        tgs = [None] * self.world
        dist.all_gather_object(nps, np_state)
        dist.all_gather_object(tgs, tg_state)
        return nps, tgs

    def save_checkpoint(self, *, partial: bool = False) -> Path | None:
        """Write a checkpoint of the current step (rank 0 writes; all ranks must call)."""
        import torch

        self._require_finite_weights()
        nps, tgs = self._gather_rng()
        path = None
        if self.rank == 0:
            tensors: dict[str, torch.Tensor] = {}
            for k, v in self.G.state_dict().items():
                tensors[f"generator/{k}"] = v
            meta_opt = {}
            ot, om = optimizer_to_flat(self.opt_g, "opt_g")
            tensors.update(ot)
            meta_opt["opt_g"] = om
            if self.D is not None:
                for k, v in self.D.state_dict().items():
                    tensors[f"critic/{k}"] = v
                ot, om = optimizer_to_flat(self.opt_d, "opt_d")
                tensors.update(ot)
                meta_opt["opt_d"] = om
            tensors["rng/torch_cpu"] = torch.get_rng_state()
            for r, s in enumerate(tgs):
                tensors[f"rng/noise/{r}"] = s
            for k, v in self.history.items():
                tensors[f"history/{k}"] = torch.tensor(v, dtype=torch.float64)
            for k, v in self.val_history.items():
                tensors[f"val_history/{k}"] = torch.tensor(v, dtype=torch.float64)
            meta = {
                "seed": self.seed,
                "config": self.cfg.to_dict(),
                "generator_config": self.gcfg.to_dict(),
                "init_weights_sha256": self.init_sha256,
                "critic_config": None if self.D is None else self.D.config.to_dict(),
                "transform": self.spec,
                "phase": self.phase,
                "optimizers": meta_opt,
                "numpy_rng": nps,
                "world_size": self.world,
                "partial_step": bool(partial),
                "elapsed_seconds": self.elapsed_before + (time.perf_counter() - self._t_start),
                "data": {k: self.data.info[k] for k in ("variable", "shape", "units", "period")},
            }
            if self.data.info.get("static"):
                meta["static"] = self.data.info["static"]
            path = write_checkpoint(self.checkpoint_dir, self.step, tensors, meta)
            prune_checkpoints(self.checkpoint_dir, self.cfg.keep_checkpoints)
            self.last_checkpoint = path
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
        return path

    def _require_finite_weights(self) -> None:
        import torch

        for name, mod in (("generator", self.G), ("critic", self.D)):
            if mod is None:
                continue
            bad = [k for k, v in mod.state_dict().items()
                   if v.is_floating_point() and not bool(torch.isfinite(v).all())]
            if bad:
                raise TrainingError(
                    f"The {name} has non-finite weights ({', '.join(bad[:3])}...); they are "
                    f"neither checkpointed nor made into a model. The last good checkpoint "
                    f"is {self.last_checkpoint}; train again with lower lr_generator/"
                    "lr_critic (or amp=False)."
                )

    def _load_state(self, tensors: dict, meta: dict) -> None:
        import torch

        if meta["world_size"] != self.world:
            raise CheckpointError(
                f"The checkpoint comes from {meta['world_size']} process(es); resume it with "
                f"the same number (now {self.world})."
            )
        gsd = {k[len("generator/"):]: v for k, v in tensors.items() if k.startswith("generator/")}
        self.G.load_state_dict(gsd, strict=True)
        if self.D is not None:
            csd = {k[len("critic/"):]: v for k, v in tensors.items() if k.startswith("critic/")}
            self.D.load_state_dict(csd, strict=True)
        self.step = int(meta["step"])
        self._make_optimizers(meta["phase"])
        optimizer_from_flat(self.opt_g, "opt_g", tensors, meta["optimizers"]["opt_g"])
        if self.D is not None:
            optimizer_from_flat(self.opt_d, "opt_d", tensors, meta["optimizers"]["opt_d"])
        torch.set_rng_state(tensors["rng/torch_cpu"])
        self.noise_gen.set_state(tensors[f"rng/noise/{self.rank}"])
        self.sampler.rng.bit_generator.state = meta["numpy_rng"][self.rank]
        n_hist = len(tensors["history/step"])
        for k in self.history:  # older checkpoints lack the per-term losses
            t = tensors.get(f"history/{k}")
            self.history[k] = t.tolist() if t is not None else [float("nan")] * n_hist
        self.val_history = {k[len("val_history/"):]: v.tolist() for k, v in tensors.items()
                            if k.startswith("val_history/")} or {"val_step": []}
        self.elapsed_before = float(meta.get("elapsed_seconds", 0.0))

    # --- the loop -------------------------------------------------------------------------
    def _record(self, logs: dict[str, float]) -> None:
        h = self.history
        h["step"].append(self.step)
        for k in ("loss_critic", "loss_generator", "wasserstein", "gradient_penalty",
                  *self.term_keys):
            h[k].append(logs.get(k, float("nan")))
        h["wall_time"].append(self.elapsed_before + time.perf_counter() - self._t_start)

    def _record_val(self) -> dict[str, float]:
        scores = self.validate()
        if scores:
            vh = self.val_history
            vh.setdefault("val_step", []).append(self.step)
            for k, v in scores.items():
                vh.setdefault(k, [float("nan")] * (len(vh["val_step"]) - 1)).append(v)
            notify(self, getattr(self, "callbacks", None), scores)
        return scores

    def run(self):
        """Train to ``cfg.steps`` and return the :class:`~xstochsr.models.gan.GANModel`."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self._t_start = time.perf_counter()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {self.data.info['variable']}",
                   disable=not (cfg.progress and self.rank == 0), unit="step",
                   dynamic_ncols=True)
        interrupted = partial = False
        stopper = _Stopper()
        timer = StepTimer()  # prints the run-time estimate after the first step
        diverged = None
        try:
            with stopper:
                if cfg.val_every and self.step == 0:  # untrained baseline: >= 2 points
                    self._record_val()
                while self.step < cfg.steps:
                    if self._any(stopper.requested):
                        interrupted = True
                        break
                    partial = True
                    logs = self.train_step()
                    partial = False
                    self._record(logs)
                    timer.after_step(self)
                    post = {k: f"{v:.3g}" for k, v in logs.items()
                            if k in ("loss_critic", "loss_generator", "gradient_penalty",
                                     "adv_weight")}
                    if cfg.val_every and self.step % cfg.val_every == 0 and self.step < cfg.steps:
                        scores = self._record_val()
                        post.update({k: f"{v:.3g}" for k, v in scores.items()
                                     if k in ("val_crps", "val_rmse")})
                    bar.set_postfix(post, refresh=False)
                    bar.update(1)
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 \
                            and self.step < cfg.steps:
                        self.save_checkpoint()
        except KeyboardInterrupt:
            interrupted = True
        except _NonFiniteLoss as err:
            diverged = err
        finally:
            bar.close()
        if diverged is not None:
            self._stop_diverged(diverged)
        if not interrupted:
            try:  # Ctrl-C here still saves the checkpoint and returns the model
                if cfg.val_every and (not self.val_history["val_step"]
                                      or self.val_history["val_step"][-1] != self.step):
                    self._record_val()
            except KeyboardInterrupt:
                interrupted = True
        self.save_checkpoint(partial=partial)
        if interrupted and self.rank == 0:
            print(f"xstochsr: training stopped at step {self.step}/{cfg.steps}; checkpoint "
                  f"{self.last_checkpoint}. Continue with resume={str(self.checkpoint_dir)!r}.",
                  flush=True)
        model = self._build_model(interrupted)
        if self._own_group:
            import torch.distributed as dist

            dist.destroy_process_group()
        return model

    def _stop_diverged(self, err: _NonFiniteLoss) -> None:
        """Keep the last good state as a checkpoint and raise a TrainingError."""
        kept = self.last_checkpoint
        try:  # the optimiser step was skipped, so the weights are still those of before
            kept = self.save_checkpoint(partial=True) or kept
        except TrainingError:
            pass
        raise TrainingError(
            f"The {err.what} loss became {err.value} at step {self.step + 1}: training "
            f"stopped. The last good state is in checkpoint {kept}. Train again with lower "
            "lr_generator/lr_critic (or a larger gp_weight, or amp=False); check the data "
            "for extreme values."
        ) from None

    # --- the result ---------------------------------------------------------------------
    def history_dataset(self) -> xr.Dataset:
        """Losses along ``step`` and validation scores along ``val_step``, as a Dataset."""
        h = self.history
        attrs = {
            "loss_critic": "critic loss (negative Wasserstein estimate + weighted gradient "
                           "penalty), mean over the critic updates of the step",
            "loss_generator": "generator loss (-critic score of generated sequences, or MSE)",
            "wasserstein": "critic's estimate of the Wasserstein distance real-fake",
            "gradient_penalty": "gradient penalty (unweighted)",
            "wall_time": "seconds since the start of training",
        }
        dv = {k: ("step", np.asarray(h[k], dtype=np.float64), {"long_name": attrs[k]})
              for k in attrs}
        dv["wall_time"][2]["units"] = "s"
        vh = self.val_history
        vattrs = {"val_rmse": "RMSE of the ensemble mean on validation patches",
                  "val_spread": "ensemble standard deviation on validation patches",
                  "val_crps": "CRPS on validation patches",
                  "val_rank_ks": "KS distance of the rank histogram from uniform",
                  "val_outlier_proportion": "fraction of truths outside the ensemble range"}
        for k in self.term_keys:
            name = ("effective weight of the adversarial term (term_balance='adaptive')"
                    if k == "adv_weight"
                    else f"unweighted {k[len('loss_'):]} term of the generator loss")
            dv[k] = ("step", np.asarray(h[k], dtype=np.float64), {"long_name": name})
        for k, v in vh.items():
            if k == "val_step":
                continue
            units = "1" if k.endswith(("rank_ks", "outlier_proportion")) \
                else str(self.data.info["units"])
            dv[k] = ("val_step", np.asarray(v, dtype=np.float64),
                     {"long_name": vattrs.get(k, k), "units": units})
        ds = xr.Dataset(dv, coords={"step": np.asarray(h["step"], dtype=np.int64),
                                    "val_step": np.asarray(vh.get("val_step", []),
                                                           dtype=np.int64)})
        ds.attrs = {"title": "xstochsr training history", "objective": self.cfg.objective_name,
                    "preset": self.cfg.preset, "seed": self.seed}
        return ds

    def _build_model(self, interrupted: bool):
        import torch

        from .. import __version__
        from ..models.base import ModelCard
        from ..models.gan import GANModel

        info, cfg = self.data.info, self.cfg
        self._require_finite_weights()
        hist = self.history_dataset()
        last_val = {k: float(hist[k].values[-1]) for k in hist.data_vars
                    if k.startswith("val_") and hist.sizes.get("val_step", 0)}
        wall = self.elapsed_before + time.perf_counter() - self._t_start
        training = {
            "data": {k: info[k] for k in ("variable", "long_name", "dims", "shape", "period",
                                          "frames", "sequences", "runs", "coarse_input",
                                          "nan_fraction")},
            "period": info["period"],
            "split": {"train_runs": len(self.train_runs), "val_runs": len(self.val_runs),
                      "split_block": cfg.split_block, "val_fraction": cfg.val_fraction},
            "patch": {"coarse": [cfg.patch_size, cfg.patch_size],
                      "fine": [cfg.patch_size * cfg.factor] * 2, "seq_len": cfg.seq_len},
            "steps": self.step,
            "steps_planned": cfg.steps,
            "sequences_seen": self.step * cfg.batch_size * (
                (cfg.critic_steps if self.D is not None else 0) + self.objective.members),
            "interrupted": bool(interrupted),
            "seed": self.seed,
            "objective": cfg.objective_name,
            "constraint": self.gcfg.constraint,
            "init": cfg.init,
            # which weights a fine-tune started from: the name alone is re-bound when a
            # model is re-shipped
            "init_weights_sha256": self.init_sha256,
            "config": cfg.to_dict(),
            "critic": None if self.D is None else self.D.config.to_dict(),
            "hardware": {"platform": platform.platform(), "machine": platform.machine(),
                         "processor": platform.processor(), "torch": torch.__version__,
                         "torch_threads": torch.get_num_threads(), "device": str(self.device),
                         "device_name": (torch.cuda.get_device_name(self.device)
                                         if self.device.type == "cuda" else "cpu"),
                         "processes": self.world},
            "wall_time_seconds": round(wall, 3),
            "checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            "xstochsr_version": __version__,
        }
        det = cfg.objective_terms == {"mse": 1.0}
        kind_txt = ("deterministic" if det else "stochastic GAN" if self.D is not None
                    else f"stochastic ({cfg.objective_name})")
        name = f"{info['variable']}-x{cfg.factor}" + ("-det" if det else "")
        card = ModelCard(
            name=name,
            variable=info["variable"],
            standard_name=info["standard_name"],
            units=info["units"],
            transform=dict(self.spec),
            architecture=self.gcfg.to_dict(),
            native_grid_spacing=info["native_grid_spacing"],
            training=training,
            scores={"validation": last_val} if last_val else {},
            description=(f"Recurrent {kind_txt}"
                         f" generator (Leinonen et al. 2021) trained with xstochsr.train on "
                         f"{info['variable']} ({info['frames']} frames), factor {cfg.factor}."),
            citation="Leinonen, Nerini & Berne (2021), IEEE TGRS 59(9):7211-7223.",
            static=info.get("static") or None,
            channels=info.get("channels") or None,
            predictors=info.get("predictors") or None,
        )
        # the default layout, as a saved and loaded model has: the same numbers either way
        gen = self.G.to("cpu", memory_format=torch.contiguous_format).eval()
        model = GANModel(gen, card)
        model.history = hist
        model.checkpoint = self.last_checkpoint
        return model


def _check_wind_terms(objective, info: dict, wind_head: str | None = None) -> None:
    """Wind terms and heads need (eastward, northward) in channels 0 and 1; check early."""
    from .losses import WIND_TERMS

    used = [n for n in objective.terms if n in WIND_TERMS]
    if wind_head:
        used.append(f"wind_head={wind_head!r}")
    if not used:
        return
    chans = info.get("channels") or []
    if len(chans) < 2:
        raise InvalidInputError(
            f"Objective term(s) {used} score the vorticity and divergence of a wind pair; "
            f"this run trains one variable ({info['variable']!r}). Train both components: "
            "xstochsr.train(ds, var=['ua', 'va'], ...).")
    sn = [str(c.get("standard_name") or "") for c in chans[:2]]
    if all(sn) and not (sn[0].split("_")[0] in ("eastward", "x", "grid")
                        and sn[1].split("_")[0] in ("northward", "y", "grid")):
        raise InvalidInputError(
            f"Objective term(s) {used} take the eastward component first and the northward "
            f"second; var= gives {[c['name'] for c in chans[:2]]} with standard_names {sn}. "
            "Reorder var=.")


class _NonFiniteLoss(Exception):
    """Internal: a loss was NaN or infinite (turned into a TrainingError by ``run``)."""

    def __init__(self, what: str, value: float):
        super().__init__(what, value)
        self.what, self.value = what, value


def _check_resumed_data(meta: dict, info: dict, kind: str) -> None:
    """Refuse to resume a checkpoint on data other than what it was trained on."""
    old = meta["data"]
    problems = []
    if old.get("variable") != info["variable"]:
        problems.append(f"variable {old.get('variable')!r} (now {info['variable']!r})")
    if old.get("units") != info["units"]:
        problems.append(f"units {old.get('units')!r} (now {info['units']!r})")
    saved = meta["transform"]
    joint = saved.get("kind") == "channels"  # one part per variable, each of ``kind``
    parts = saved.get("channels", []) if joint else [saved]
    # a rain model's predictors are standardised (data.fit_transform)
    n_out = len(info.get("channels") or []) or 1
    kinds = {p.get("kind") for p in parts[:n_out]}
    if kind in ("log_rain", "log_threshold"):
        kinds |= {p.get("kind") for p in parts[n_out:]} - {"standardize"}
    else:
        kinds |= {p.get("kind") for p in parts[n_out:]}
    if kinds != {kind} or joint != bool(info.get("channels")):
        problems.append(f"transform {saved.get('kind')!r} (this data would use "
                        f"{'channels of ' if info.get('channels') else ''}{kind!r})")
    if old.get("shape") != info["shape"]:
        problems.append(f"shape {old.get('shape')} (now {info['shape']})")
    if problems:
        raise CheckpointError(
            "The checkpoint was trained on other data: " + "; ".join(problems) + ". Resume "
            "with the same data (variable, units, transform and shape), or start a new run "
            "without resume= (init=<saved model> fine-tunes a trained model on new data)."
        )


class _StaticCritic:
    """The critic with the batch's static fields joined to every fine frame it scores.

    ``critic(coarse, fine)`` with ``fine`` ``(N, T, 1, fH, fW)``, ``N`` a multiple of the
    batch (the losses stack real, fake and interpolates, or ``k`` members, block by
    block): the static fields ``(B, n, fH, fW)`` are tiled to ``N`` and repeated over
    ``T`` as ``n`` extra channels. They are constants: the gradient penalty's gradient
    is still taken with respect to the fine field only.
    """

    def __init__(self, critic, static):
        self.critic, self.static = critic, static

    def __call__(self, coarse, fine):
        n, t = fine.shape[:2]
        st = self.static.to(fine.dtype)
        st = st.repeat(n // st.shape[0], 1, 1, 1).unsqueeze(1).expand(-1, t, -1, -1, -1)
        return self.critic(coarse, torch.cat([fine, st], dim=2))


def _critic_with(critic, static):
    """``critic`` itself, or :class:`_StaticCritic` when the batch has static fields."""
    if critic is None or static is None:
        return critic
    return _StaticCritic(critic, static)
