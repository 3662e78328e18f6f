"""Numeric precision of network inference: float32, or bfloat16 where it is native.

``downscale(..., precision=)`` takes ``"auto"`` (default), ``"float32"`` or
``"bfloat16"``. bfloat16 runs the generator's convolutions under
:func:`torch.autocast` (the constraint layer's softmax and every output stay float32).
``"auto"`` chooses it only where both hold:

* the device computes bfloat16 natively (CUDA capability >= 8.0, or a CPU with the
  ``avx512_bf16`` or ``amx_bf16`` flags; read from the hardware, never guessed), so it
  is faster and not an emulation; and
* the model's card records that bfloat16 kept its CRPS within 1 % of float32's
  (``card.scores["precision"]["bfloat16_ok"]``, measured by
  ``scripts/evaluate_pretrained.py --precision-check``).

Everywhere else ``"auto"`` is float32. ``"bfloat16"`` forces it (emulated, and slow,
on CPUs without native support); baselines ignore the setting (they are not networks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .errors import InvalidInputError
from .models.base import Wrapped

__all__ = ["PRECISIONS", "native_bf16", "resolve", "Autocast", "attach"]

#: Values of ``precision=``.
PRECISIONS = ("auto", "float32", "bfloat16")

#: Largest relative CRPS change bfloat16 may make for ``"auto"`` to use it (issue 11).
BF16_CRPS_TOLERANCE = 0.01


def native_bf16(device: str = "cpu") -> tuple[bool, str]:
    """Whether bfloat16 arithmetic is native on ``device``, and the evidence.

    Examples
    --------
    >>> native, why = native_bf16("cpu")
    >>> isinstance(native, bool) and isinstance(why, str)
    True
    """
    import torch

    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            return False, "no CUDA device"
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        return major >= 8, f"CUDA capability {major}.{minor} (bf16 native from 8.0)"
    try:
        with open("/proc/cpuinfo") as fh:
            flags: set[str] = set()
            for line in fh:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        return False, "no /proc/cpuinfo to read CPU flags from"
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    return bool(found), ("CPU flags " + ", ".join(found) if found
                         else "CPU has neither avx512_bf16 nor amx_bf16")


def checked_bf16(model: Any) -> bool:
    """Whether ``model``'s card records bfloat16 within tolerance of float32."""
    scores = getattr(getattr(model, "card", None), "scores", None) or {}
    return bool((scores.get("precision") or {}).get("bfloat16_ok"))


def resolve(precision: str, device: str, model: Any) -> str:
    """``"float32"`` or ``"bfloat16"``: what ``precision=`` means for ``model`` on ``device``.

    Raises
    ------
    InvalidInputError
        ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise InvalidInputError(
            f"precision must be one of {PRECISIONS}, not {precision!r}: 'auto' uses "
            "bfloat16 only where the hardware has it and the model was checked with it; "
            "'float32' always works.")
    if getattr(model, "generator", None) is None:  # baselines: numpy, float32 or float64
        return "float32"
    if precision == "auto":
        return "bfloat16" if native_bf16(device)[0] and checked_bf16(model) else "float32"
    return precision


class Autocast(Wrapped):
    """A network model whose :meth:`run` computes under bfloat16 autocast.

    Everything else is the wrapped model's (picklable: dask's tasks hold it).
    """

    def run(self, x, *, factor, members: Sequence[int], seed, t0=0, batch_offset=0,
            state=None, device="cpu", **kw):
        """Run the wrapped model's :meth:`~xstochsr.models.base.Downscaler.run` under autocast.

        Output stays float32 ``(M, B, T, fH, fW)``; ``state`` is carried as the network
        leaves it.
        """
        import torch

        kind = "cuda" if str(device).startswith("cuda") else "cpu"
        with torch.autocast(device_type=kind, dtype=torch.bfloat16):
            return self.model.run(x, factor=factor, members=members, seed=seed, t0=t0,
                                  batch_offset=batch_offset, state=state, device=device, **kw)


def attach(plan: Any, precision: str) -> tuple[Any, str]:
    """Put ``downscale``'s model under autocast where ``precision`` resolves to bfloat16.

    Returns the plan (changed or not) and the precision used.
    """
    used = resolve(precision, plan.device, plan.model)
    if used == "bfloat16":
        plan = dataclasses.replace(plan, model=Autocast(plan.model))
    return plan, used
