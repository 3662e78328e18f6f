"""Generator objectives as composable, weighted terms.

``objective`` in :class:`~xstochsr.training.config.TrainConfig` (and ``xstochsr.train``)
is a term name or a dict of term weights::

    train(ds, objective="wgan-gp")                         # the paper
    train(ds, objective={"wgan-gp": 1.0, "crps": 1.0})     # + fair ensemble CRPS
    train(ds, objective="crps")                            # CRPS alone: no critic at all
    train(ds, objective="mse")                             # the deterministic baseline

Each term is a small class with ``loss(critic, GeneratedBatch) -> scalar``; the
adversarial one also owns the critic's loss. :class:`Objective` sums the weighted terms
and tells the training loop what it needs (a critic, ``k`` members per input, noise,
physical units). The loop keeps only optimisers, steps, checkpoints and progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .adversarial import WGANGP
from .crps import CRPSLoss, fair_crps, pooled
from .mse import MSEObjective
from .sample import GeneratedBatch, apply_mask

__all__ = ["TERMS", "normalize", "Objective", "make_objective", "build_objective",
           "GeneratedBatch", "apply_mask", "WGANGP", "MSEObjective", "CRPSLoss", "fair_crps",
           "pooled"]

#: Term names accepted in ``objective``.
TERMS = ("wgan-gp", "crps", "mse")


def normalize(objective: str | Mapping[str, float]) -> dict[str, float]:
    """``"wgan-gp"`` or ``{"wgan-gp": 1, "crps": 1}`` -> ``{name: weight}`` (sorted).

    Raises
    ------
    ValueError
        Unknown term, non-positive weight, empty objective, or MSE combined with others.
    """
    if isinstance(objective, str):
        terms = {objective: 1.0}
    elif isinstance(objective, Mapping):
        terms = {str(k): float(v) for k, v in objective.items()}
    else:
        raise ValueError(f"objective must be a term name or a dict of weights, not "
                         f"{type(objective).__name__}.")
    unknown = [k for k in terms if k not in TERMS]
    if unknown or not terms:
        raise ValueError(f"Unknown objective term(s) {unknown or objective!r}; use one or "
                         f"more of {TERMS}, e.g. objective={{'wgan-gp': 1.0, 'crps': 1.0}}.")
    bad = [k for k, v in terms.items() if not v > 0]
    if bad:
        raise ValueError(f"Objective weights must be > 0; got {terms!r}.")
    if "mse" in terms and len(terms) > 1:
        raise ValueError("'mse' trains the deterministic baseline (no noise) and cannot be "
                         "combined with other terms; use objective='mse' alone.")
    return dict(sorted(terms.items()))


class Objective:
    """A weighted sum of generator-loss terms.

    Parameters
    ----------
    terms : dict
        ``{name: (term, weight)}``.
    members : int
        k, generated members per coarse sequence in a generator step (1 unless a
        term scores an ensemble).
    """

    def __init__(self, terms: dict[str, tuple[Any, float]], members: int = 1):
        self.terms = terms
        self.members = int(members)
        self.adversarial = any(t.adversarial for t, _ in terms.values())
        self.name = "+".join(terms)

    @property
    def stochastic(self) -> bool:
        """Whether the generator gets noise (False only for the MSE baseline)."""
        return "mse" not in self.terms

    @property
    def needs_physical(self) -> bool:
        """Whether a term scores in physical units."""
        return any(getattr(t, "physical", False) for t, _ in self.terms.values())

    def critic_loss(self, critic, coarse, real, fake, mask=None, *, generator=None):
        """Return the adversarial term's critic loss (see :meth:`WGANGP.critic_loss`)."""
        for t, _ in self.terms.values():
            if t.adversarial:
                return t.critic_loss(critic, coarse, real, fake, mask, generator=generator)
        raise ValueError(f"Objective {self.name!r} has no critic.")

    def generator_loss(self, critic, s: GeneratedBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the terms on ``s``; logs hold each unweighted term."""
        total, logs = None, {}
        for name, (t, w) in self.terms.items():
            v = t.loss(critic, s)
            logs[f"loss_{name}"] = float(v.detach())
            total = w * v if total is None else total + w * v
        return total, logs


def build_objective(objective: str | Mapping[str, float], *, gp_weight: float = 10.0,
                    ensemble_members: int = 2, crps_scales=(1, 4, 16),
                    crps_space: str = "physical") -> Objective:
    """Build the :class:`Objective` described by a config's settings."""
    terms = normalize(objective)
    built: dict[str, tuple[Any, float]] = {}
    for name, w in terms.items():
        if name == "wgan-gp":
            built[name] = (WGANGP(gp_weight), w)
        elif name == "mse":
            built[name] = (MSEObjective(), w)
        else:
            built[name] = (CRPSLoss(crps_scales, physical=crps_space == "physical"), w)
    k = int(ensemble_members) if "crps" in terms else 1
    return Objective(built, members=k)


def make_objective(objective: str | Mapping[str, float], gp_weight: float = 10.0, **kw):
    """Build an objective from a term name or a dict of weighted terms.

    A single term name gives that term (``"wgan-gp"`` -> :class:`WGANGP`, ``"mse"`` ->
    :class:`MSEObjective`, ``"crps"`` -> :class:`CRPSLoss`); a dict gives an
    :class:`Objective` (``kw``: :func:`build_objective`'s settings).
    """
    if isinstance(objective, str):
        normalize(objective)
        if objective == "wgan-gp":
            return WGANGP(gp_weight)
        if objective == "mse":
            return MSEObjective()
        return CRPSLoss(kw.get("crps_scales", (1, 4, 16)),
                        physical=kw.get("crps_space", "physical") == "physical")
    return build_objective(objective, gp_weight=gp_weight, **kw)
