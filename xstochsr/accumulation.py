"""CF accumulations (``cell_methods: "time: sum"``) to rates and back.

ERA5's total precipitation ``tp`` is a depth in ``m`` summed over the hour before each
time stamp (``cell_methods: "time: sum"``); many archives store daily or 6-hourly sums in
``mm`` or ``kg m-2``. The generators work on rates (``mm h-1``), so an accumulation is
divided by its period on the way in and multiplied back on the way out. The period comes
from ``cell_methods`` (``"time: sum (interval: 1 hour)"``), else from the time
coordinate's bounds, else from its (median) step.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> tp = xr.DataArray(np.full((3, 2, 2), 0.002), dims=("time", "y", "x"), name="tp",
...     coords={"time": pd.date_range("2020-01-01", periods=3, freq="1h")},
...     attrs={"units": "m", "cell_methods": "time: sum"})
>>> rate, acc = to_rate(tp, "time")
>>> rate.attrs["units"], float(rate[0, 0, 0]), acc.hours
('m h-1', 0.002, 1.0)
>>> float(from_rate(rate, acc)[0, 0, 0]), from_rate(rate, acc).attrs["units"]
(0.002, 'm')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import InvalidInputError

__all__ = ["Accumulation", "is_accumulation", "period_hours", "to_rate", "from_rate"]

_SUM = re.compile(r"\b(time|[a-z_]*time[a-z_]*)\s*:\s*sum\b", re.IGNORECASE)
_INTERVAL = re.compile(r"interval:\s*([0-9.]+)\s*([a-z]+)", re.IGNORECASE)
_HOURS = {"s": 1 / 3600, "sec": 1 / 3600, "second": 1 / 3600, "seconds": 1 / 3600,
          "min": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60, "h": 1.0, "hr": 1.0,
          "hour": 1.0, "hours": 1.0, "d": 24.0, "day": 24.0, "days": 24.0}
#: standard_name of an amount -> of the matching rate.
RATE_NAMES = {
    "lwe_thickness_of_precipitation_amount": "lwe_precipitation_rate",
    "precipitation_amount": "precipitation_flux",
    "thickness_of_rainfall_amount": "rainfall_rate",
    "rainfall_amount": "rainfall_flux",
    "lwe_thickness_of_snowfall_amount": "lwe_snowfall_rate",
    "snowfall_amount": "snowfall_flux",
}


@dataclass(frozen=True)
class Accumulation:
    """An accumulation turned into a rate (what :func:`from_rate` undoes).

    Attributes
    ----------
    hours : float
        Accumulation period in hours.
    units, cell_methods : str
        The input's.
    standard_name : str or None
        The input's.
    """

    hours: float
    units: str
    cell_methods: str
    standard_name: str | None


def is_accumulation(da: xr.DataArray) -> bool:
    """Tell whether ``da`` is a sum over time of an amount.

    True when ``cell_methods`` says ``time: sum`` and the units are a depth or a mass per
    area (not already a rate).
    """
    if not _SUM.search(str(da.attrs.get("cell_methods", ""))):
        return False
    units = da.attrs.get("units")
    if not units:
        return False
    from .units import describe

    try:
        dim = describe(str(units))
    except Exception:  # unparsable units: to_units will say so
        return False
    return dim in ("[length]", "[mass] / [length] ** 2")


def period_hours(da: xr.DataArray, t: str | None) -> float:
    """Accumulation period of ``da`` in hours: ``cell_methods`` interval, time bounds, step.

    Raises
    ------
    InvalidInputError
        No interval in ``cell_methods`` and no time coordinate with at least two steps.
    """
    m = _INTERVAL.search(str(da.attrs.get("cell_methods", "")))
    if m and m.group(2).lower() in _HOURS:
        return float(m.group(1)) * _HOURS[m.group(2).lower()]
    if t is not None and t in da.coords:
        c = da.coords[t]
        bname = c.attrs.get("bounds") or c.encoding.get("bounds")
        if bname and bname in da.coords:
            b = da.coords[bname].values
            return _hours(np.median(np.diff(b, axis=-1)))
        if c.size >= 2:
            return _hours(np.median(np.diff(c.values)))
    raise InvalidInputError(
        f"{da.name or 'The field'!r} is an accumulation (cell_methods "
        f"{da.attrs.get('cell_methods')!r}) but its period is unknown: no time coordinate with "
        "two steps. Say it in cell_methods, e.g. da.attrs['cell_methods'] = "
        "'time: sum (interval: 1 hour)'."
    )


def _hours(step) -> float:
    step = np.asarray(step)
    if step.dtype.kind == "m":
        return float(step / np.timedelta64(1, "s")) / 3600.0
    if step.dtype.kind == "O" and hasattr(step.item(), "total_seconds"):
        return step.item().total_seconds() / 3600.0
    raise InvalidInputError(
        "Cannot tell the accumulation period from a numeric time coordinate. Decode times "
        "(xr.open_dataset(..., decode_times=True)) or set cell_methods to "
        "'time: sum (interval: 1 hour)'."
    )


def to_rate(da: xr.DataArray, t: str | None = None) -> tuple[xr.DataArray, Accumulation | None]:
    """Divide an accumulation by its period: ``m`` over 1 h -> ``m h-1``.

    Parameters
    ----------
    da : xarray.DataArray
        Any field; only accumulations (:func:`is_accumulation`) change.
    t : str, optional
        Time dimension (default: found with :func:`xstochsr.grid.find_axes`).

    Returns
    -------
    rate : xarray.DataArray
        ``da`` unchanged, or divided by the period with units ``<units> h-1``,
        ``cell_methods`` ``"time: mean"`` and a rate ``standard_name``
        (:data:`RATE_NAMES`; ``lwe_precipitation_rate`` for a precipitation depth).
    acc : Accumulation or None
    """
    if not is_accumulation(da):
        return da, None
    if t is None:
        from .grid import find_axes

        t = find_axes(da).t
    hours = period_hours(da, t)
    units = str(da.attrs["units"])
    sn = da.attrs.get("standard_name")
    out = da / hours
    out.attrs = dict(da.attrs)
    out.attrs["units"] = f"{units} h-1" if " " not in units.strip() else f"({units}) h-1"
    out.attrs["cell_methods"] = _SUM.sub(lambda m: f"{m.group(1)}: mean",
                                         str(da.attrs["cell_methods"]))
    if sn in RATE_NAMES:
        out.attrs["standard_name"] = RATE_NAMES[sn]
    elif not sn or sn == "unknown":
        from .units import describe

        depth = describe(units) == "[length]"
        out.attrs["standard_name"] = "lwe_precipitation_rate" if depth else "precipitation_flux"
    out.name = da.name
    return out, Accumulation(hours, units, str(da.attrs["cell_methods"]), sn)


def from_rate(rate: xr.DataArray, acc: Accumulation | None) -> xr.DataArray:
    """Multiply a rate back into the accumulation :func:`to_rate` made it from."""
    if acc is None:
        return rate
    out = rate * acc.hours
    out.attrs = dict(rate.attrs)
    out.attrs["units"] = acc.units
    out.attrs["cell_methods"] = acc.cell_methods
    if acc.standard_name is None:
        out.attrs.pop("standard_name", None)
    else:
        out.attrs["standard_name"] = acc.standard_name
    out.name = rate.name
    return out
