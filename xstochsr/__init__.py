"""xstochsr: stochastic super-resolution of time-evolving atmospheric fields for xarray.

Importing the package registers the ``.sr`` accessor on DataArrays::

    import xstochsr
    ens = da.sr.downscale(factor=8, members=10)

The public functions are loaded on first use, so ``import xstochsr`` does not pay for
torch until a network is needed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from . import accessor as _accessor  # noqa: F401  (registers the .sr accessor)
from .errors import XStochSRError

try:
    __version__ = version("xstochsr")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# public name -> module that defines it (imported lazily)
_LAZY = {
    "downscale": "xstochsr.api",
    "load_model": "xstochsr.models.registry",
    "list_models": "xstochsr.models.registry",
    "GANModel": "xstochsr.models.registry",
    "train": "xstochsr.training.loop",
    "TrainConfig": "xstochsr.training.config",
    "verify": "xstochsr.metrics.verify",
    "regrid": "xstochsr.regrid",
    "datasets": "xstochsr.datasets",
}

__all__ = ["XStochSRError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        obj = module if module.__name__.endswith(name) else getattr(module, name)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'xstochsr' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
