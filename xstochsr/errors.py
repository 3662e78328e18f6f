"""The exception tree of xstochsr.

Every error the library raises on purpose derives from :class:`XStochSRError`, so a
caller can catch them all with one ``except``. Each subclass also derives from the
built-in exception a Python user would expect (``ValueError``, ``KeyError``, ...), so
code written against the built-ins keeps working. Messages say what was found and
how to fix it.
"""

from __future__ import annotations

__all__ = [
    "XStochSRError",
    "CoordinateError",
    "MissingAxisError",
    "IrregularCoordinateError",
    "UnitsError",
    "MissingUnitsError",
    "DomainTooSmallError",
    "UnsupportedFactorError",
    "InvalidInputError",
    "ModelError",
    "UnknownModelError",
    "WeightsIntegrityError",
    "ModelCardError",
    "TrainingError",
    "CheckpointError",
    "DataFetchError",
    "RegridError",
    "MissingDependencyError",
    "missing_dependency",
    "OutputError",
    "StoreMismatchError",
    "TilingError",
    "StaticFieldError",
    "SchedulerConnectionError",
]


class XStochSRError(Exception):
    """Base class of every error raised by xstochsr."""


# --- input fields -----------------------------------------------------------------------


class CoordinateError(XStochSRError, ValueError):
    """A field's coordinates cannot be used as they are."""


class MissingAxisError(CoordinateError, KeyError):
    """No X, Y (or T) axis could be identified with cf-xarray."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IrregularCoordinateError(CoordinateError):
    """A coordinate is non-monotonic, has repeated values or uneven spacing."""


class UnitsError(XStochSRError, ValueError):
    """Units are inconvertible to what the model expects."""


class MissingUnitsError(UnitsError):
    """The field has no ``units`` attribute."""


class DomainTooSmallError(XStochSRError, ValueError):
    """The domain is smaller than the network (or a training patch) needs."""


class UnsupportedFactorError(XStochSRError, ValueError):
    """The requested downscaling factor is not one the model supports."""


class InvalidInputError(XStochSRError, ValueError):
    """Any other unusable input (wrong type, bad argument value, all-NaN field...)."""


# --- models and weights -----------------------------------------------------------------


class ModelError(XStochSRError):
    """A model could not be built, loaded or saved."""


class UnknownModelError(ModelError, KeyError):
    """A model name that is neither registered nor a path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WeightsIntegrityError(ModelError, ValueError):
    """A weights file is corrupted, tampered with, or fails its sha256 check."""


class ModelCardError(ModelError, ValueError):
    """A model card (the JSON beside the weights) is missing fields or inconsistent."""


# --- training ---------------------------------------------------------------------------


class TrainingError(XStochSRError, RuntimeError):
    """Training cannot start or continue."""


class CheckpointError(TrainingError):
    """A checkpoint is missing, incomplete or does not match the configuration."""


# --- data, regridding, optional dependencies --------------------------------------------


class DataFetchError(XStochSRError, OSError):
    """A sample or weights file could not be fetched or verified."""


class RegridError(XStochSRError, ValueError):
    """Regridding to a target grid failed."""


class MissingDependencyError(XStochSRError, ModuleNotFoundError):
    """An optional dependency is not installed."""


def missing_dependency(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """Build the error raised when an optional dependency is missing.

    Parameters
    ----------
    package : str
        Import name of the missing package.
    extra : str
        The xstochsr extra that installs it.
    purpose : str
        What the user tried to do.

    Returns
    -------
    MissingDependencyError
        Raise it ``from`` the original ImportError.

    Examples
    --------
    >>> try:
    ...     import not_a_real_package  # doctest: +SKIP
    ... except ImportError as err:
    ...     raise missing_dependency("not_a_real_package", "plot", "plotting") from err
    """
    return MissingDependencyError(
        f"{purpose} needs the optional package {package!r}, which is not installed. "
        f"Install it with: pip install 'xstochsr[{extra}]'"
    )


# --- writing results --------------------------------------------------------------------


class OutputError(XStochSRError, OSError):
    """A result could not be written (no space left on device, no permission...)."""


# --- tiled inference --------------------------------------------------------------------


class TilingError(InvalidInputError):
    """Tiles cannot be laid out (tile or halo larger than the domain, budget too small)."""
# --- static predictors ------------------------------------------------------------------


class StaticFieldError(InvalidInputError):
    """A static predictor (orography...) is missing, off the domain, or holds NaN."""


# --- streaming to zarr ------------------------------------------------------------------


class StoreMismatchError(OutputError):
    """A zarr store exists with another layout or other settings than the run resuming it."""


# --- dask.distributed -------------------------------------------------------------------


class SchedulerConnectionError(XStochSRError, ConnectionError):
    """No dask scheduler answered at the address given (``--scheduler``, ``connect``)."""
