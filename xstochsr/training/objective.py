"""Training objectives (kept for imports): the terms now live in :mod:`.losses`.

``WGANGP`` (the paper's), ``MSEObjective`` (deterministic baseline), the fair ensemble
CRPS (``CRPSLoss``) and their weighted sum (``Objective``); see :mod:`.losses`.
"""

from __future__ import annotations

from .losses import (  # noqa: F401
    WGANGP,
    CRPSLoss,
    MSEObjective,
    Objective,
    apply_mask,
    build_objective,
    fair_crps,
    make_objective,
)

__all__ = ["apply_mask", "WGANGP", "MSEObjective", "CRPSLoss", "Objective", "make_objective",
           "build_objective", "fair_crps"]
