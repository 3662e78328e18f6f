"""xstochsr: stochastic super-resolution of time-evolving atmospheric fields for xarray.

Importing the package registers the ``.sr`` accessor on DataArrays::

    import xstochsr
    ens = da.sr.downscale(factor=8, members=10)

The public functions are loaded on first use, so ``import xstochsr`` does not pay for
torch until a network is needed.
"""

from __future__ import annotations

import importlib

from . import accessor as _accessor  # noqa: F401  (registers the .sr accessor)
from ._version import __version__
from .errors import XStochSRError

# public name -> (module, attribute); attribute None means the module itself.
# Imported on first use. ``regrid``, ``datasets`` and ``metrics`` are subpackages/modules
# (an attribute of that name would be shadowed by the submodule once it is imported).
_LAZY = {
    "downscale": ("xstochsr.api", "downscale"),
    "load_model": ("xstochsr.models.registry", "load_model"),
    "list_models": ("xstochsr.models.registry", "list_models"),
    "GANModel": ("xstochsr.models.gan", "GANModel"),
    "train": ("xstochsr.training.loop", "train"),
    "TrainConfig": ("xstochsr.training.config", "TrainConfig"),
    "verify": ("xstochsr.metrics", "verify"),
    "metrics": ("xstochsr.metrics", None),
    "regrid": ("xstochsr.regrid", None),
    "datasets": ("xstochsr.datasets", None),
}

__all__ = ["XStochSRError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        modname, attr = _LAZY[name]
        module = importlib.import_module(modname)
        obj = module if attr is None else getattr(module, attr)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'xstochsr' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
