"""Transforms between a field's physical units and the network's normalised space.

A transform is described by a JSON-able dict stored in the model card, so a saved
model always applies exactly the transform it was trained with:

``{"kind": "log_rain", "threshold": 0.1, "fill": 0.025, "max": 100.0}``
    The paper's rain transform: ``log10`` of the rate (mm h-1), values below
    ``threshold`` set to ``log10(fill)``, clipped at ``max``, scaled to [0, 1].
    The inverse maps everything under ``log10(threshold)`` back to exactly 0.
``{"kind": "log_threshold", "threshold": 1.19, "scale": 158.5}``
    The paper's cloud-optical-thickness transform: ``ln(x)``, values below
    ``threshold`` set to 0, divided by ``ln(scale)``.
``{"kind": "standardize", "mean": m, "std": s}``
    ``(x - m) / s``, for fields with no natural bounds (temperature, winds).
``{"kind": "minmax", "min": a, "max": b}``
    ``(x - a) / (b - a)`` clipped to [0, 1], for a sigmoid output.
``{"kind": "identity"}``
``{"kind": "channels", "channels": [spec_0, spec_1, ...]}``
    One spec per channel of a several-variable model (e.g. eastward and northward
    wind, each standardised with its own mean and std): channel ``i`` of the axis
    ``-3`` of ``(..., C, H, W)`` goes through ``spec_i``.

All functions work on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ModelCardError

__all__ = ["forward", "inverse", "fit", "KINDS", "CHANNELS", "n_channels", "channel_spec",
           "leading"]

KINDS = ("log_rain", "log_threshold", "standardize", "minmax", "identity")
#: The kind that stacks one spec per channel (not a choice for ``fit``).
CHANNELS = "channels"


def _lib(x: Any):
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np
    import torch

    return torch


def _check(spec: dict) -> str:
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == CHANNELS:
        parts = spec.get("channels")
        if not isinstance(parts, list) or not parts:
            raise ModelCardError(
                f"Transform {spec!r} must list one spec per channel under 'channels'.")
        for p in parts:
            if not isinstance(p, dict) or p.get("kind") == CHANNELS:
                raise ModelCardError(f"Per-channel transform {p!r} is not a plain spec.")
            _check(p)
        return kind
    if kind not in KINDS:
        raise ModelCardError(f"Unknown transform {spec!r}; known kinds: {KINDS}.")
    return kind


def n_channels(spec: dict) -> int:
    """Channels a spec describes: the length of a ``channels`` spec, else 1."""
    return len(spec["channels"]) if _check(spec) == CHANNELS else 1


def channel_spec(spec: dict, i: int) -> dict:
    """Return the spec of channel ``i`` (the spec itself for a one-channel spec)."""
    return spec["channels"][i] if _check(spec) == CHANNELS else spec


def leading(spec: dict, n: int) -> dict:
    """Return the spec of the first ``n`` channels of ``spec``.

    A model with inputs-only predictors (``card.predictors``) transforms its input with
    a ``channels`` spec of outputs then predictors, and its output (the first
    ``n = out_channels`` of them) with this one. One-channel specs, and ``n`` equal to
    the spec's channels, come back unchanged; ``n = 1`` gives the first part itself.
    """
    if _check(spec) != CHANNELS or n == len(spec["channels"]):
        return spec
    if not 1 <= n <= len(spec["channels"]):
        raise ModelCardError(f"A {len(spec['channels'])}-channel transform has no first {n} "
                             "channels.")
    parts = spec["channels"][:n]
    return parts[0] if n == 1 else {"kind": CHANNELS, "channels": parts}


def _per_channel(x, spec: dict, fn):
    """Apply ``fn(x_i, spec_i)`` to each channel ``i`` of axis -3 and stack the results."""
    parts = spec["channels"]
    if x.ndim < 3 or x.shape[-3] != len(parts):
        raise ModelCardError(
            f"A {len(parts)}-channel transform needs arrays shaped (..., {len(parts)}, H, W); "
            f"got shape {tuple(x.shape)}.")
    lib = _lib(x)
    out = [fn(x[..., i, :, :], p) for i, p in enumerate(parts)]
    return lib.stack(out, axis=-3) if lib is np else lib.stack(out, dim=-3)


def forward(x, spec: dict):
    """Physical units -> network space. ``x``: array or tensor of any shape.

    A ``channels`` spec needs ``x`` shaped ``(..., C, H, W)``.
    """
    kind = _check(spec)
    if kind == CHANNELS:
        return _per_channel(x, spec, forward)
    lib = _lib(x)
    if kind == "identity":
        return x
    if kind == "log_rain":
        thr, fill, top = spec["threshold"], spec["fill"], spec["max"]
        lo, hi = math.log10(fill), math.log10(top)
        # Below the threshold the output is exactly 0 by construction (not log10(fill)
        # minus lo, which float32 SIMD paths round to +-3e-8): dry stays dry on every CPU.
        y = lib.clip(x, thr, top) if lib is np else x.clamp(thr, top)
        wet = (lib.log10(y) - lo) / (hi - lo)
        return lib.where(x < thr, 0.0 * wet, wet)
    if kind == "log_threshold":
        thr, scale = spec["threshold"], spec["scale"]
        safe = lib.clip(x, thr, None) if lib is np else x.clamp(min=thr)
        y = lib.where(x < thr, 0.0 * x, lib.log(safe))
        return y / math.log(scale)
    if kind == "standardize":
        return (x - spec["mean"]) / spec["std"]
    a, b = spec["min"], spec["max"]
    y = (x - a) / (b - a)
    return lib.clip(y, 0.0, 1.0) if lib is np else y.clamp(0.0, 1.0)


def inverse(y, spec: dict):
    """Network space -> physical units (the inverse of :func:`forward` where it is one)."""
    kind = _check(spec)
    if kind == CHANNELS:
        return _per_channel(y, spec, inverse)
    lib = _lib(y)
    if kind == "identity":
        return y
    if kind == "log_rain":
        thr, fill, top = spec["threshold"], spec["fill"], spec["max"]
        lo, hi = math.log10(fill), math.log10(top)
        logx = y * (hi - lo) + lo
        x = 10.0**logx
        return lib.where(logx < math.log10(thr), 0.0 * x, x)
    if kind == "log_threshold":
        thr, scale = spec["threshold"], spec["scale"]
        logx = y * math.log(scale)
        x = lib.exp(logx)
        return lib.where(logx < math.log(thr), 0.0 * x, x)
    if kind == "standardize":
        return y * spec["std"] + spec["mean"]
    return y * (spec["max"] - spec["min"]) + spec["min"]


def fit(data: np.ndarray, kind: str, **params: Any) -> dict:
    """Build a transform spec, fitting its statistics to ``data`` where it has any.

    Parameters
    ----------
    data : ndarray
        Training data in physical units (NaN ignored).
    kind : str
        One of :data:`KINDS`.
    **params
        Fixed parameters (e.g. ``threshold=0.1`` for ``log_rain``); defaults are the
        paper's.

    Returns
    -------
    dict
        The spec for :func:`forward` / :func:`inverse` and the model card.
    """
    if kind == "log_rain":
        return {"kind": kind, "threshold": 0.1, "fill": 0.025, "max": 100.0, **params}
    if kind == "log_threshold":
        return {"kind": kind, "threshold": 1.19, "scale": 158.5, **params}
    if kind == "identity":
        return {"kind": kind}
    d = np.asarray(data, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ModelCardError("Cannot fit a transform to data that holds no finite value.")
    if kind == "standardize":
        std = float(d.std()) or 1.0
        return {"kind": kind, "mean": float(d.mean()), "std": std, **params}
    if kind == "minmax":
        lo, hi = float(d.min()), float(d.max())
        return {"kind": kind, "min": lo, "max": hi if hi > lo else lo + 1.0, **params}
    raise ModelCardError(f"Unknown transform kind {kind!r}; known kinds: {KINDS}.")
