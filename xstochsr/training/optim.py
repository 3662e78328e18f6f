"""Optimiser parameter groups: weight decay where the paper's Keras code puts ``l2``.

The reference implementation (Leinonen et al. 2021, Keras) adds ``l2(1e-4)`` kernel
regularisers to the plain convolutions of its residual blocks (both 3x3 convolutions and
the 1x1 shortcut) and to nothing else: not to the input stems, the GRU gates, the output
convolution, biases, or any spectral-normalised convolution or dense layer (the whole
critic, except its 1x1 shortcuts, which are spectral-normalised here). Keras' ``l2(c)``
adds ``c * sum(w^2)`` to the loss, so the gradient gains ``2 c w``: that is torch's coupled
``weight_decay = 2 c`` (Adam and SGD add ``weight_decay * w`` to the gradient).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from ..models.blocks import ResBlock

__all__ = ["decayed_parameters", "l2_param_groups"]


def _plain_conv_weight(m: nn.Module):
    conv = getattr(m, "conv", m)  # ReflectConv wraps an nn.Conv2d
    if isinstance(conv, nn.Conv2d) and not parametrize.is_parametrized(conv):
        return conv.weight
    return None


def decayed_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Kernels the Keras ``l2`` regulariser would cover: plain residual-block convolutions."""
    out, seen = [], set()
    for m in module.modules():
        if not isinstance(m, ResBlock):
            continue
        for part in (m.conv1, m.conv2, m.shortcut):
            w = _plain_conv_weight(part)
            if w is not None and id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    return out


def l2_param_groups(module: nn.Module, lr: float, l2: float) -> list[dict]:
    """Split ``module``'s parameters into a decayed and an undecayed group.

    The :func:`decayed_parameters` get ``weight_decay = 2 * l2``, the rest none. ``l2`` is
    the Keras coefficient (``TrainConfig.weight_decay``).
    """
    decay = decayed_parameters(module)
    ids = {id(p) for p in decay}
    other = [p for p in module.parameters() if id(p) not in ids]
    return [{"params": decay, "weight_decay": 2.0 * float(l2), "lr": lr},
            {"params": other, "weight_decay": 0.0, "lr": lr}]
