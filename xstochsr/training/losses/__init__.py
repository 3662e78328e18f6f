"""Generator objectives as composable, weighted terms.

``objective`` in :class:`~xstochsr.training.config.TrainConfig` (and ``xstochsr.train``)
is a term name or a dict of term weights::

    train(ds, objective="wgan-gp")                         # the paper
    train(ds, objective={"wgan-gp": 1.0, "crps": 1.0})     # + fair ensemble CRPS
    train(ds, objective="crps")                            # CRPS alone: no critic at all
    train(ds, objective="mse")                             # the deterministic baseline
    train(ds, var=["ua", "va"],                            # winds: + soft physics
          objective={"crps": 1.0, "kinematics": 1.0, "divergence": 0.1})

Each term is a small class with ``loss(critic, GeneratedBatch) -> scalar``; the
adversarial one also owns the critic's loss. :class:`Objective` sums the weighted terms
and tells the training loop what it needs (a critic, ``k`` members per input, noise,
physical units). The loop keeps only optimisers, steps, checkpoints and progress.

``term_balance="adaptive"`` (``TrainConfig.term_balance``) rescales the adversarial term
at every generator step so that its gradient at the generator's last layer is ``w_adv``
times that of the other terms, whatever the critic's scale (:func:`adaptive_weight`)::

    train(ds, objective={"wgan-gp": 1.0, "crps": 1.0}, term_balance="adaptive")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .adversarial import WGANGP
from .crps import CRPSGradLoss, CRPSLoss, fair_crps, pooled
from .kinematics import DivergenceLoss, KinematicsLoss
from .mse import MSEObjective
from .sample import GeneratedBatch, apply_mask

__all__ = ["TERMS", "BALANCES", "normalize", "check_balance", "adaptive_weight", "Objective",
           "make_objective", "build_objective", "GeneratedBatch", "apply_mask", "WGANGP",
           "MSEObjective", "CRPSLoss", "CRPSGradLoss", "fair_crps", "pooled", "KinematicsLoss",
           "DivergenceLoss", "WIND_TERMS"]

#: Term names accepted in ``objective``.
TERMS = ("wgan-gp", "crps", "crps-grad", "mse", "kinematics", "divergence")
#: Terms that need a wind pair (eastward, northward) in channels 0 and 1.
WIND_TERMS = ("kinematics", "divergence")

#: Terms that score an ensemble of ``k`` members per coarse sequence.
ENSEMBLE_TERMS = ("crps", "crps-grad")

#: Ways of balancing the adversarial term against the others (``term_balance``).
BALANCES = ("fixed", "adaptive")

#: Terms whose loss is a critic's score (unbounded, drifts with the critic's scale).
ADVERSARIAL_TERMS = ("wgan-gp",)

#: Floor of the adversarial gradient norm and bound of the adaptive ratio (as in VQGAN).
ADAPTIVE_EPS, ADAPTIVE_MAX = 1e-4, 1e4


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


def check_balance(term_balance: str, objective: str | Mapping[str, float]) -> str:
    """Check a ``term_balance`` setting against the objective; return it.

    Raises
    ------
    ValueError
        Unknown balance, or ``"adaptive"`` for an objective without both an adversarial
        term and at least one other term (there is nothing to balance).
    """
    if term_balance not in BALANCES:
        raise ValueError(f"term_balance must be one of {BALANCES}, not {term_balance!r}.")
    if term_balance == "adaptive":
        terms = normalize(objective)
        adv = [k for k in terms if k in ADVERSARIAL_TERMS]
        if not adv or len(terms) == len(adv):
            has = "only adversarial terms" if adv else "no adversarial term"
            raise ValueError(
                f"term_balance='adaptive' balances an adversarial term against the others, "
                f"but objective {objective!r} has {has}. "
                "Use an objective with both, e.g. objective={'wgan-gp': 1.0, 'crps': 1.0}, "
                "or term_balance='fixed'."
            )
    return term_balance


def _grad_norm(loss: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``||d loss / d param||`` (float32, detached; 0 where ``loss`` does not reach it)."""
    (g,) = torch.autograd.grad(loss, param, retain_graph=True, allow_unused=True)
    if g is None:
        return param.new_zeros((), dtype=torch.float32)
    return g.detach().float().norm(2)


def adaptive_weight(adv: torch.Tensor, other: torch.Tensor, last_layer: torch.Tensor,
                    weight: float = 1.0) -> torch.Tensor:
    """Weight of an adversarial term that keeps its gradient share fixed (VQGAN's rule).

    ``weight * clamp(||g_other|| / (||g_adv|| + eps), 0, 1e4)`` with ``g`` the gradients
    of ``other`` (the weighted sum of the non-adversarial terms) and of ``adv`` (the
    unweighted adversarial term) with respect to ``last_layer`` (Esser et al. 2021,
    "Taming Transformers", eq. 7). At ``last_layer`` the weighted adversarial gradient
    then has ``weight`` times the norm of the others', whatever the critic's scale.

    Parameters
    ----------
    adv, other : Tensor (scalar)
        Losses still attached to the graph (the graph is kept for the final backward).
    last_layer : Tensor
        The generator's last layer's weight, e.g. ``(1, C, 3, 3)`` for the head conv.
    weight : float
        ``w_adv``, the adversarial term's weight in the objective.

    Returns
    -------
    Tensor (scalar, detached)

    Examples
    --------
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> round(float(adaptive_weight(10 * w.sum(), (3 * w).sum(), w)), 4)  # |3,3| / |10,10|
    0.3
    """
    g_other = _grad_norm(other, last_layer)
    g_adv = _grad_norm(adv, last_layer)
    ratio = (g_other / (g_adv + ADAPTIVE_EPS)).clamp(0.0, ADAPTIVE_MAX)
    return (float(weight) * ratio).detach()


class Objective:
    """A weighted sum of generator-loss terms.

    Parameters
    ----------
    terms : dict
        ``{name: (term, weight)}``.
    members : int
        k, generated members per coarse sequence in a generator step (1 unless a
        term scores an ensemble).
    balance : {"fixed", "adaptive"}
        ``"fixed"``: the weights as given. ``"adaptive"``: each adversarial term's weight
        becomes ``w_adv * ||g_other|| / (||g_adv|| + eps)`` at every step
        (:func:`adaptive_weight`; needs ``last_layer=`` in :meth:`generator_loss`).
    """

    def __init__(self, terms: dict[str, tuple[Any, float]], members: int = 1,
                 balance: str = "fixed"):
        self.terms = terms
        self.members = int(members)
        self.adversarial = any(t.adversarial for t, _ in terms.values())
        self.name = "+".join(terms)
        self.balance = balance
        if balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}, not {balance!r}.")
        n_adv = sum(bool(t.adversarial) for t, _ in terms.values())
        if balance == "adaptive" and not 0 < n_adv < len(terms):
            raise ValueError(f"balance='adaptive' needs an adversarial term and another "
                             f"term; objective {self.name!r} has not both.")

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

    def generator_loss(self, critic, s: GeneratedBatch, *, last_layer: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the terms on ``s``; logs hold each unweighted term.

        Parameters
        ----------
        critic : Critic or None
        s : GeneratedBatch
        last_layer : Tensor, optional
            The generator's last layer's weight (the head conv's, ``(C_out, C_in, 3, 3)``);
            required with ``balance="adaptive"``, which then also logs ``adv_weight``,
            the effective weight of the adversarial term.
        """
        if self.balance == "adaptive":
            return self._adaptive_loss(critic, s, last_layer)
        total, logs = None, {}
        for name, (t, w) in self.terms.items():
            v = t.loss(critic, s)
            logs[f"loss_{name}"] = float(v.detach())
            total = w * v if total is None else total + w * v
        return total, logs

    def _adaptive_loss(self, critic, s: GeneratedBatch, last_layer):
        if last_layer is None:
            raise ValueError("balance='adaptive' needs last_layer= (the generator's last "
                             "layer's weight, e.g. generator.head.conv.weight).")
        logs: dict[str, float] = {}
        adv, other = {}, None
        for name, (t, w) in self.terms.items():
            v = t.loss(critic, s)
            logs[f"loss_{name}"] = float(v.detach())
            if t.adversarial:
                adv[name] = (v, w)
            else:
                other = w * v if other is None else other + w * v
        total = other
        for name, (v, w) in adv.items():
            lam = adaptive_weight(v, other, last_layer, w)
            logs["adv_weight" if len(adv) == 1 else f"adv_weight_{name}"] = float(lam)
            total = total + lam.to(v.dtype) * v
        return total, logs


def build_objective(objective: str | Mapping[str, float], *, gp_weight: float = 10.0,
                    ensemble_members: int = 2, crps_scales=(1, 4, 16),
                    crps_space: str = "physical", term_balance: str = "fixed") -> Objective:
    """Build the :class:`Objective` described by a config's settings."""
    terms = normalize(objective)
    built: dict[str, tuple[Any, float]] = {}
    for name, w in terms.items():
        if name == "wgan-gp":
            built[name] = (WGANGP(gp_weight), w)
        elif name == "mse":
            built[name] = (MSEObjective(), w)
        elif name == "crps-grad":
            built[name] = (CRPSGradLoss(physical=crps_space == "physical"), w)
        elif name == "kinematics":
            built[name] = (KinematicsLoss(), w)
        elif name == "divergence":
            built[name] = (DivergenceLoss(), w)
        else:
            built[name] = (CRPSLoss(crps_scales, physical=crps_space == "physical"), w)
    k = int(ensemble_members) if any(t in terms for t in ENSEMBLE_TERMS) else 1
    return Objective(built, members=k, balance=check_balance(term_balance, objective))


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
        if objective == "crps-grad":
            return CRPSGradLoss(physical=kw.get("crps_space", "physical") == "physical")
        if objective in WIND_TERMS:
            return KinematicsLoss() if objective == "kinematics" else DivergenceLoss()
        return CRPSLoss(kw.get("crps_scales", (1, 4, 16)),
                        physical=kw.get("crps_space", "physical") == "physical")
    return build_objective(objective, gp_weight=gp_weight, **kw)
