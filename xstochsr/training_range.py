"""The range a model was trained on, recorded in its card, and a warning outside it.

A generator trained on quasi-geostrophic flow of about 0.05 m/s says nothing useful about
an ERA5 10 m wind of several m/s, and one trained on 5-minute rain rates says little
about daily means; yet units alone let both run. The card's ``training_range`` records
what the *coarse input* looked like in training: value quantiles and standard deviation
(model units), the coarse grid spacing and the time step. :func:`check` compares a
field with it and warns, with numbers, when the field is far outside.

``training_range`` (all keys optional)::

    {"quantiles": {"0.01": ..., "0.5": ..., "0.99": ...}, "std": ..., "units": "mm h-1",
     "grid_spacing": {"value": 24000.0, "units": "m"},
     "time_step": {"value": 5.0, "units": "min"}, "source": "what it was measured on"}
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from .errors import IrregularCoordinateError
from .validation import time_steps

__all__ = ["QUANTILES", "OutOfRangeWarning", "measure", "check"]

#: Quantiles recorded (of the coarse input, in model units).
QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)
#: Warn when the field's spread or time step differs from training by more than this factor
#: (an order of magnitude: the real Meteosat crops span a factor of 7 in spread, and a
#: light-rain case is not out of range for the rain model).
RATIO = 10.0
#: At most this many values are read from a field to compare it (a strided sample).
MAX_SAMPLE = 2_000_000


class OutOfRangeWarning(UserWarning):
    """A field lies far outside the range the model was trained on."""


def _time_step_minutes(da: xr.DataArray, t: str | None) -> float | None:
    """Median time step in minutes; None without a calendar time axis of >= 2 steps."""
    if t is None or t not in da.coords or da.sizes[t] < 2:
        return None
    values = da.coords[t].values
    if values.dtype.kind in "iuf":  # plain numbers: no unit of time to compare
        return None
    try:
        return float(np.median(time_steps(values))) / 60.0
    except IrregularCoordinateError:
        return None


def _sample(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size > MAX_SAMPLE:
        v = v[:: int(np.ceil(v.size / MAX_SAMPLE))]
    return v[np.isfinite(v)]


def measure(coarse: xr.DataArray, *, units: str | None = None,
            source: str = "") -> dict[str, Any]:
    """Training range of a coarse input field (what :func:`check` compares against).

    Parameters
    ----------
    coarse : xarray.DataArray
        The coarse training input (block means of the fine field), in model units.
    units : str, optional
        Its units (default: ``coarse.attrs["units"]``).
    source : str
        What it was measured on, for the card.

    Returns
    -------
    dict
        ``quantiles``, ``std``, ``units``, ``grid_spacing``, ``time_step``, ``source``.
    """
    from .grid import find_axes

    axes = find_axes(coarse)
    v = _sample(coarse.values)
    out: dict[str, Any] = {
        "quantiles": {str(q): float(x) for q, x in zip(QUANTILES, np.quantile(v, QUANTILES),
                                                     strict=True)},
        "std": float(np.std(v)),
        "units": units or coarse.attrs.get("units"),
        "source": source,
    }
    try:
        from .regrid import grid_spacing

        dx, dy, su = grid_spacing(coarse)
        out["grid_spacing"] = {"value": float(np.sqrt(abs(dx * dy))), "units": su}
    except Exception:  # no coordinates: no spacing to record
        pass
    step = _time_step_minutes(coarse, axes.t)
    if step is not None:
        out["time_step"] = {"value": step, "units": "min"}
    return out


def check(da: xr.DataArray, card, *, t: str | None, src_units: str | None) -> list[str]:
    """Warn (:class:`OutOfRangeWarning`) where ``da`` lies far outside ``card.training_range``.

    Compares the spread (standard deviation, and the 99th percentile) of the values in
    the model's units and the time step. Dask-backed fields are compared on their time
    step only (reading values would compute them).

    Parameters
    ----------
    da : xarray.DataArray
        The coarse input, in ``src_units``.
    card : ModelCard
    t : str or None
        Time dimension of ``da``.
    src_units : str or None
        Units of ``da`` (converted to ``card.units`` before comparing).

    Returns
    -------
    list of str
        The warnings issued.
    """
    rng = getattr(card, "training_range", None)
    if not rng:
        return []
    from .joint import CHANNEL_DIM

    if getattr(card, "predictors", None) and CHANNEL_DIM in da.dims:
        # the range was measured on the outputs: leave the predictors (winds beside a
        # rain rate, in other units) out of the comparison
        da = da.isel({CHANNEL_DIM: slice(0, len(card.channels))})
    said = []
    trained_on = f"model {card.name!r} was trained on"
    step = _time_step_minutes(da, t)
    ts = (rng.get("time_step") or {}).get("value")
    if step and ts and not (1 / RATIO <= step / ts <= RATIO):
        said.append(f"The field's time step is {_minutes(step)}, but {trained_on} steps of "
                    f"{_minutes(ts)}: its temporal statistics will not match.")
    is_lazy = type(da.data).__module__.startswith("dask")
    if not is_lazy and rng.get("std") is not None:
        v = _sample(da.values)
        if src_units and card.units:
            from .units import convert

            v = convert(v, src_units, card.units)
        if v.size:
            std, tstd = float(np.std(v)), float(rng["std"])
            q99 = float(np.quantile(v, 0.99))
            tq99 = float(rng.get("quantiles", {}).get("0.99", np.nan))
            u = card.units or rng.get("units") or ""
            if tstd > 0 and not (1 / RATIO <= std / tstd <= RATIO):
                said.append(
                    f"The field's standard deviation is {std:.3g} {u}, but {trained_on} "
                    f"inputs with {tstd:.3g} {u} (99th percentile {q99:.3g} here, "
                    f"{tq99:.3g} in training): the output is an extrapolation. Choose "
                    "another model (xstochsr.list_models()), a baseline, or train on "
                    "data like yours (xstochsr.train)."
                )
    for text in said:
        warnings.warn(text, OutOfRangeWarning, stacklevel=3)
    return said


def _minutes(m: float) -> str:
    if m >= 1440 and m % 1440 == 0:
        return f"{m / 1440:g} day(s)"
    if m >= 60:
        return f"{m / 60:g} h"
    return f"{m:g} min"
