"""Units at the boundary: pint through cf-xarray's CF-aware unit registry.

A model declares the units it works in (``"mm h-1"``, ``"K"``...). Input is converted
to them on the way in and the output converted back to the user's units on the way
out. A precipitation *flux* (``kg m-2 s-1``) and a precipitation *rate* (``mm h-1``)
convert through the density of liquid water, 1000 kg m-3, as xclim's ``"hydro"``
context does.

Every conversion here is affine (``a * x + b``), so it is applied as plain arithmetic
and dask arrays stay lazy.
"""

from __future__ import annotations

import functools

import pint
import xarray as xr

from .errors import MissingUnitsError, UnitsError

# ureg is served by the module __getattr__ below (built on first use)
__all__ = ["ureg", "parse", "describe", "affine", "convert", "to_units",  # noqa: F822
           "same_units", "is_precipitation"]


@functools.cache
def _registry() -> pint.UnitRegistry:
    from cf_xarray.units import units as reg

    if "hydro" not in reg._contexts:
        ctx = pint.Context("hydro")
        rho = reg.Quantity(1000, "kg m-3")
        for src, dst in (
            ("[mass] / [length]**2 / [time]", "[length] / [time]"),
            ("[mass] / [length]**2", "[length]"),
        ):
            ctx.add_transformation(src, dst, lambda r, x: x / rho)
            ctx.add_transformation(dst, src, lambda r, x: x * rho)
        reg.add_context(ctx)
    return reg


def __getattr__(name: str):
    if name == "ureg":
        return _registry()
    raise AttributeError(name)


def parse(units: str, *, what: str = "the field") -> pint.Unit:
    """Parse a CF units string; raise :class:`UnitsError` naming the string if it fails."""
    reg = _registry()
    try:
        return reg.Unit(str(units))
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError,
            AttributeError, TypeError) as err:
        raise UnitsError(
            f"Cannot parse the units {units!r} of {what}. Use a CF/UDUNITS string such as "
            "'mm h-1', 'kg m-2 s-1', 'K' or 'm s-1'."
        ) from err


def describe(units: str) -> str:
    """Human description of what ``units`` measures, e.g. ``'[length] / [time]'``."""
    return str(parse(units).dimensionality)


@functools.lru_cache(maxsize=256)
def affine(src: str, dst: str) -> tuple[float, float]:
    """Coefficients ``(a, b)`` with ``value_in_dst = a * value_in_src + b``.

    Raises
    ------
    UnitsError
        If ``src`` cannot be converted to ``dst`` (even through water density).
    """
    reg = _registry()
    usrc, udst = parse(src), parse(dst)
    try:
        with reg.context("hydro"):
            zero = reg.Quantity(0.0, usrc).to(udst).magnitude
            one = reg.Quantity(1.0, usrc).to(udst).magnitude
    except pint.errors.DimensionalityError as err:
        raise UnitsError(
            f"Cannot convert {src!r} ({usrc.dimensionality}) to {dst!r} "
            f"({udst.dimensionality}): the model expects a field measured in "
            f"{udst.dimensionality}. Check the variable, or fix its units attribute."
        ) from err
    return float(one - zero), float(zero)


def same_units(a: str, b: str) -> bool:
    """Whether two unit strings mean exactly the same unit (``'mm/h'`` vs ``'mm h-1'``)."""
    try:
        return affine(a, b) == (1.0, 0.0)
    except UnitsError:
        return False


def convert(values, src: str, dst: str):
    """Convert numpy/dask/xarray ``values`` from ``src`` to ``dst`` units (lazily for dask)."""
    a, b = affine(src, dst)
    if a == 1.0 and b == 0.0:
        return values
    out = values * a
    return out + b if b != 0.0 else out


def to_units(da: xr.DataArray, units: str, *, expected: str | None = None) -> xr.DataArray:
    """Return ``da`` converted to ``units``, with its ``units`` attribute updated.

    Parameters
    ----------
    da : xarray.DataArray
        Must carry a ``units`` attribute.
    units : str
        Target units.
    expected : str, optional
        What the target represents, for error messages (e.g. ``"a precipitation rate"``).

    Raises
    ------
    MissingUnitsError
        ``da`` has no units attribute.
    UnitsError
        The units cannot be converted.
    """
    src = da.attrs.get("units")
    need = expected or f"a field in {describe(units)} (e.g. {units!r})"
    if src is None or str(src).strip() == "":
        raise MissingUnitsError(
            f"{da.name or 'The field'!r} has no 'units' attribute; the model expects {need}. "
            f"Set it, e.g. da.attrs['units'] = {units!r}."
        )
    try:
        a, b = affine(str(src), units)
    except UnitsError as err:
        raise UnitsError(f"{err} The model expects {need}.") from err
    out = da if (a, b) == (1.0, 0.0) else xr.apply_ufunc(
        lambda v: v * a + b, da, dask="allowed", keep_attrs=True
    )
    out.attrs["units"] = units
    return out


def is_precipitation(standard_name: str | None) -> bool:
    """Whether a CF ``standard_name`` names precipitation (rate, flux or amount).

    True for names with "precipitation", "rainfall" or "snowfall"
    (``lwe_precipitation_rate``, ``precipitation_flux``, ``rainfall_amount``...).
    """
    sn = str(standard_name or "").lower()
    return any(w in sn for w in ("precipitation", "rainfall", "snowfall"))
