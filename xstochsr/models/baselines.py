"""Baseline downscalers, usable wherever a model is (``da.sr.downscale(model="bilinear")``).

=================  ==========  ==========  ===============  ======================
name               kind        stochastic  preserves means  units
=================  ==========  ==========  ===============  ======================
``nearest``        interp.     no          yes              any (passed through)
``bilinear``       interp.     no          no               any
``bicubic``        interp.     no          no               any
``lanczos``        interp.     no          no               any
``conservative``   interp.     no          yes              any
``rainfarm``       rainfarm    yes         yes              mm h-1 (precipitation)
=================  ==========  ==========  ===============  ======================

The methods live in :mod:`xstochsr.models.interpolation` and
:mod:`xstochsr.models.rainfarm`; this module holds the name registry that
:mod:`xstochsr.models.registry` looks names up in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..errors import UnknownModelError
from .base import Downscaler
from .interpolation import INTERPOLATION_METHODS, InterpolationDownscaler
from .rainfarm import RainFARM

__all__ = ["BASELINES", "get_baseline", "InterpolationDownscaler", "RainFARM"]

#: Baseline name -> factory returning a fresh :class:`~xstochsr.models.base.Downscaler`.
BASELINES: dict[str, Callable[[], Downscaler]] = {
    **{m: functools.partial(InterpolationDownscaler, m) for m in INTERPOLATION_METHODS},
    "rainfarm": RainFARM,
}


def get_baseline(name: str) -> Downscaler:
    """Return a new baseline downscaler by name.

    Parameters
    ----------
    name : str
        One of ``BASELINES`` (case-insensitive): ``"nearest"``, ``"bilinear"``,
        ``"bicubic"``, ``"lanczos"``, ``"conservative"``, ``"rainfarm"``.

    Returns
    -------
    Downscaler
        A new instance with default settings.

    Raises
    ------
    UnknownModelError
        If ``name`` is not a baseline; the message lists the known names.

    Examples
    --------
    >>> get_baseline("lanczos").card.kind
    'interpolation'
    """
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        factory = BASELINES[key]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"Unknown baseline {name!r}. Known baselines: {', '.join(sorted(BASELINES))}."
        ) from None
    return factory()
