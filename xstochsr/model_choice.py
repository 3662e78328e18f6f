"""Which pretrained model fits a field, for ``downscale(model=None)``: never a guess.

Reading a field's metadata is the recipe layer's job (next to :mod:`xstochsr.validation`),
so model choice lives here, not in :mod:`xstochsr.models.registry`, which only knows names,
cards and weights.

The rules:

* a model fits only if its factor is the one asked for and the field's units convert to
  the model's units;
* with a ``standard_name``, the names must describe the same quantity (two precipitation
  names agree); an exact match wins over a compatible one;
* with no ``standard_name``, units alone are not enough (``m s-1`` converts to ``mm h-1``,
  but a wind is not rain): the field's *name* must also point at the model's quantity
  (``precip``, ``pr``, ``tp``, ``rain``... for rain; ``u``, ``ua``, ``u10``... for an
  eastward wind), and exactly one model may fit;
* anything else raises :class:`~xstochsr.errors.UnknownModelError` listing the candidates
  and saying to pass ``model=``;
* a Dataset (:func:`choose_joint_model`) gets a model of several variables when exactly
  one pretrained joint model finds all its channels in it (by name or standard_name,
  units convertible, same factor); otherwise each variable is chosen for alone;
* a model that needs static fields (terrain: ``card.static``) is never chosen: it is
  named with ``model=``, beside ``static=``.

The choice is logged (``logging.getLogger("xstochsr")``, level INFO) and written to the
output's ``history``.
"""

from __future__ import annotations

import logging

from .errors import UnitsError, UnknownModelError

__all__ = ["choose_model", "choose_joint_model", "name_fits"]

log = logging.getLogger("xstochsr")

#: Field names people give each quantity (lower case), beyond the card's own names.
NAME_HINTS = {
    "precipitation": {"pr", "precip", "precipitation", "prcp", "rain", "rainfall", "rr", "tp",
                      "prate", "rain_rate", "precipitation_rate", "precipitation_flux",
                      "rainrate", "tprate", "mtpr"},
    "eastward_wind": {"u", "ua", "uas", "u10", "u100", "uwnd", "u_wind", "eastward_wind"},
    "northward_wind": {"v", "va", "vas", "v10", "v100", "vwnd", "v_wind", "northward_wind"},
}


def _quantity(standard_name: str | None) -> str | None:
    from .units import is_precipitation

    if not standard_name:
        return None
    return "precipitation" if is_precipitation(standard_name) else standard_name


def name_fits(field_name: object, card) -> bool:
    """Whether a field's variable name points at the quantity a model card describes."""
    if field_name is None:
        return False
    n = str(field_name).strip().lower()
    own = {str(card.variable).lower(), str(card.standard_name or "").lower()}
    return n in own or n in NAME_HINTS.get(_quantity(card.standard_name) or "", set())


def _same_quantity(a: str, b: str) -> bool:
    return a == b or _quantity(a) == _quantity(b) == "precipitation"


def choose_model(units: str | None, standard_name: str | None, field_name: object,
                 factor: int) -> tuple[str, str]:
    """Name of the one pretrained model that fits a field, and why it was chosen.

    Parameters
    ----------
    units, standard_name : str or None
        The field's ``units`` and ``standard_name`` attributes.
    field_name : hashable
        The field's variable name (``da.name``), used only without a standard_name.
    factor : int

    Returns
    -------
    (name, reason) : (str, str)

    Raises
    ------
    UnknownModelError
        No model fits, or several do and nothing tells them apart; the message lists the
        candidates and says to pass ``model=``.
    """
    from .models.registry import _known, _pretrained_names, pretrained_card
    from .units import affine

    by_units = []
    for name in _pretrained_names():
        c = pretrained_card(name)
        if c.channels:  # a joint model takes a Dataset (choose_joint_model)
            continue
        if c.factor != factor or units is None or c.units is None:
            continue
        try:
            affine(units, c.units)
        except UnitsError:
            continue
        by_units.append((name, c))

    if standard_name:
        fits = [(n, c) for n, c in by_units
                if c.standard_name and _same_quantity(standard_name, c.standard_name)]
        exact = [(n, c) for n, c in fits if c.standard_name == standard_name]
        fits = exact or fits
        how = f"standard_name {standard_name!r} and units {units!r}"
    else:
        fits = [(n, c) for n, c in by_units if name_fits(field_name, c)]
        how = f"variable name {field_name!r} and units {units!r} (no standard_name)"

    if len(fits) == 1:
        name = fits[0][0]
        reason = f"chosen from the field's {how}: {name}"
        log.info("xstochsr.downscale: model %r %s", name, reason)
        return name, reason

    candidates = [n for n, _ in (fits or by_units)]
    if fits:
        problem = f"Several pretrained models fit a field with {how}: {candidates}."
    elif by_units and not standard_name:
        problem = (f"The field has no standard_name and its name {field_name!r} does not say "
                   f"which quantity it is; its units {units!r} fit {candidates}, which measure "
                   "different quantities.")
    else:
        problem = (f"No pretrained model fits a field with standard_name={standard_name!r}, "
                   f"units={units!r} at factor {factor}.")
    raise UnknownModelError(
        f"{problem} Models:\n{_known()}\nChoose one with model='...' (a baseline such as "
        "'bilinear' works on any field), set the field's standard_name (e.g. "
        "da.attrs['standard_name'] = 'lwe_precipitation_rate'), or train a model with "
        "xstochsr.train()."
    )


def choose_joint_model(ds, variables, factor: int) -> tuple[str, str] | None:
    """Return the one pretrained joint model whose variables a Dataset holds, or None.

    Parameters
    ----------
    ds : xarray.Dataset
    variables : sequence of str or None
        The variables asked for (``downscale(..., variables=)``); a joint model must
        take exactly these. None: any variables of ``ds``.
    factor : int

    Returns
    -------
    (name, reason) or None
        None when no joint model fits, or several do (then each variable is downscaled
        by the model :func:`choose_model` finds for it).
    """
    from .errors import InvalidInputError
    from .joint import match_channels, match_predictors
    from .models.registry import _pretrained_names, pretrained_card
    from .units import affine

    fits = []
    for name in _pretrained_names():
        c = pretrained_card(name)
        if not c.channels or c.factor != factor or c.static:
            continue  # a model that needs terrain (static=) is named, never guessed
        try:
            found = match_channels(ds, c.channels, variables)
            preds = match_predictors(ds, c.predictors, found) if c.predictors else []
            for var, ch in zip(found + preds, c.inputs, strict=True):
                affine(ds[var].attrs.get("units") or "", ch.get("units") or "")
        except (InvalidInputError, UnitsError):
            continue
        fits.append((name, found))
    if len(fits) != 1:
        return None
    name, found = fits[0]
    reason = f"chosen for the variables {found} (found by name or standard_name): {name}"
    log.info("xstochsr.downscale: model %r %s", name, reason)
    return name, reason
