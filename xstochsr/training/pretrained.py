"""``train(ds, init=...)``: start from a pretrained generator and fine-tune it.

The pretrained network's configuration wins (architecture, constraint, transform); the
data must fit it (same factor, a variable of the same kind in units that convert).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInputError, UnsupportedFactorError

__all__ = ["load_init", "init_overrides", "init_generator_config", "check_init_data"]

#: TrainConfig fields taken from the pretrained generator's config.
_ARCH = {"gen_width": "width", "gen_noise_channels": "noise_channels",
         "gen_encoder_blocks": "encoder_blocks", "gen_init_blocks": "init_blocks",
         "gen_upsample_widths": "upsample_widths", "constraint": "constraint",
         "gen_fine_noise": "fine_noise", "constraint_prior": "constraint_prior",
         "constraint_dry": "constraint_dry", "gen_fine_noise_memory": "fine_noise_memory"}
#: Of those, settings that hold no weights and may differ from the pretrained model's:
#: the multiplicative layer's prior (``constraint_prior``) only changes how the block
#: means are spread, so ``train(ds, init="rain-x8", constraint_prior="smooth")``
#: fine-tunes the same network under the smooth layer.
FREE = ("constraint_prior",)


def load_init(init: Any):
    """Load ``init`` (registry name, path or model) as a GANModel, or raise."""
    from ..models.gan import GANModel
    from ..models.registry import load_model

    model = init if isinstance(init, GANModel) else load_model(
        os.fspath(init) if isinstance(init, os.PathLike) else init)
    if not isinstance(model, GANModel):
        raise InvalidInputError(
            f"init={init!r} is a {model.card.kind} baseline, not a trained generator; give a "
            "pretrained model's name (xstochsr.list_models()) or a saved model's path."
        )
    return model


def init_overrides(model, factor: int, overrides: dict) -> dict:
    """TrainConfig settings that make the run fit ``model``'s generator.

    Raises
    ------
    UnsupportedFactorError
        ``factor`` differs from the model's (the default 8 is taken as unset).
    InvalidInputError
        An override contradicts the pretrained architecture.
    """
    cfg = model.generator.config
    if int(factor) != cfg.factor and int(factor) != 8:  # 8 is train()'s default
        raise UnsupportedFactorError(
            f"init model {model.name!r} downscales by {cfg.factor}, not {factor}; pass "
            f"factor={cfg.factor} or choose a model for factor {factor}."
        )
    from ..models.constraints import PRIORS_OF

    out: dict[str, Any] = {"init": model.name}
    for key, attr in _ARCH.items():
        value = getattr(cfg, attr)
        if key in FREE and overrides.get(key) is not None:
            if overrides[key] not in PRIORS_OF.get(cfg.constraint, ()):
                raise InvalidInputError(
                    f"{key}={overrides[key]!r} does not fit the pretrained model "
                    f"{model.name!r}'s constraint {cfg.constraint!r} (priors it takes: "
                    f"{PRIORS_OF.get(cfg.constraint, ())}).")
            out[key] = overrides[key]
            continue
        if key in overrides and overrides[key] is not None and overrides[key] != value:
            raise InvalidInputError(
                f"{key}={overrides[key]!r} contradicts the pretrained model {model.name!r} "
                f"({attr}={value!r}); fine-tuning keeps the pretrained network: drop {key}=."
            )
        out[key] = value
    kind = model.card.transform.get("kind")
    out["transform"] = kind
    if "mse" in (overrides.get("objective") or "") and cfg.noise_channels:
        raise InvalidInputError(f"{model.name!r} is stochastic; objective='mse' needs a "
                                "deterministic (noise-free) generator.")
    return out


def init_generator_config(model, cfg):
    """Return the generator config of a fine-tune of ``model``.

    It is ``model``'s, but for the weight-free settings (:data:`FREE`), which come from
    the run's TrainConfig ``cfg``.
    """
    import dataclasses

    return dataclasses.replace(model.generator.config,
                               **{_ARCH[k]: getattr(cfg, k) for k in FREE})


def check_init_data(model, info: dict, kind: str) -> None:
    """Refuse data of another kind than the pretrained model's (precipitation or not)."""
    want = model.card.transform.get("kind")
    rain_model = want in ("log_rain", "log_threshold")
    if bool(info["rain"]) != rain_model:
        raise InvalidInputError(
            f"init model {model.name!r} is for {model.card.variable} "
            f"({model.card.standard_name or model.card.units}), but the data's "
            f"{info['variable']!r} is {'' if info['rain'] else 'not '}precipitation; choose a "
            "pretrained model for this variable (xstochsr.list_models()) or train from scratch."
        )
