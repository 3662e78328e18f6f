"""The installed xstochsr version, importable without the package ``__init__``.

Modules inside the package (model saving, history lines) import it from here, so that no
module points back at :mod:`xstochsr` itself.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("xstochsr")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
