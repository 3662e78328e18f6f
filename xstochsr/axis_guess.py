"""Last-resort recognition of X, Y and T from the usual names, saying what was assumed.

:func:`xstochsr.grid.find_axes` first reads CF attributes (``axis``, ``standard_name``,
units) through cf-xarray. Files from scripts and notebooks often carry none: ``lat`` and
``lon`` with no attributes, or dimensions with no coordinate variable at all. This
module fills what is still missing, using cf-xarray's own guessing
(``guess_coord_axis``) for coordinate variables and the same usual names
(:data:`DIM_NAMES`) for bare dimensions, and logs one note per assumption (once per
session) on the ``"xstochsr"`` logger, so a user sees what was taken for what.

A bare ``time`` dimension is taken as T, so its frames are one sequence (the recurrent
state runs through them), not independent fields.
"""

from __future__ import annotations

import logging

import xarray as xr

from .errors import MissingAxisError

__all__ = ["DIM_NAMES", "fill_axes", "note"]

log = logging.getLogger("xstochsr")

#: Names (lower case, whole name) that a dimension without a coordinate variable may have.
DIM_NAMES = {
    "X": ("x", "lon", "longitude", "rlon", "nlon", "ni", "west_east", "easting"),
    "Y": ("y", "lat", "latitude", "rlat", "nlat", "nj", "south_north", "northing"),
    "T": ("time", "t", "times", "valid_time", "step"),
}

_SAID: set[str] = set()


def note(text: str) -> None:
    """Log ``text`` at WARNING level on the ``"xstochsr"`` logger, once per session."""
    if text not in _SAID:
        _SAID.add(text)
        log.warning(text)


def _guessed_coords(da: xr.DataArray) -> dict[str, str]:
    """Role -> dimension from cf-xarray's ``guess_coord_axis`` on 1-D dimension coordinates."""
    import cf_xarray  # noqa: F401

    probe = xr.Dataset(coords={d: da.coords[d].variable.copy(deep=False) for d in da.dims
                               if d in da.coords and da.coords[d].ndim == 1})
    if not probe.coords:
        return {}
    guessed = probe.cf.guess_coord_axis(verbose=False)
    out: dict[str, str] = {}
    for role, key in (("X", "longitude"), ("Y", "latitude")):
        names = guessed.cf.axes.get(role, []) or guessed.cf.coordinates.get(key, [])
        if len(names) == 1:
            out[role] = names[0]
    names = guessed.cf.axes.get("T", []) or guessed.cf.coordinates.get("time", [])
    if len(names) == 1:
        out["T"] = names[0]
    return out


def fill_axes(da: xr.DataArray, x: str | None, y: str | None,
              t: str | None) -> tuple[str | None, str | None, str | None]:
    """Fill the X, Y and T dimension names that CF attributes did not give.

    Parameters
    ----------
    da : xarray.DataArray
        The field.
    x, y, t : str or None
        What :func:`xstochsr.grid.find_axes` found from attributes.

    Returns
    -------
    x, y, t : str or None
        Completed where a coordinate's or dimension's name is one of the usual ones;
        each assumption is logged (:func:`note`).

    Raises
    ------
    MissingAxisError
        X or Y is still unknown and some dimensions have no coordinate variable: the
        message shows how to add one (``assign_coords``), not how to edit attributes of
        a coordinate that does not exist.
    """
    found = {"X": x, "Y": y, "T": t}
    if all(found.values()):
        return x, y, t
    taken = {v for v in found.values() if v}
    guess = _guessed_coords(da)
    for role in ("X", "Y", "T"):
        if found[role] is None and guess.get(role) and guess[role] not in taken:
            dim = guess[role]
            found[role] = dim
            taken.add(dim)
            note(f"xstochsr: took coordinate {dim!r} (no CF attributes) as the {role} axis "
                 f"from its name; set da[{dim!r}].attrs['axis'] = {role!r} to say so.")
    for role in ("X", "Y", "T"):
        if found[role] is not None:
            continue
        bare = [d for d in da.dims if d not in da.coords and d not in taken
                and str(d).lower() in DIM_NAMES[role]]
        if len(bare) == 1:
            dim = bare[0]
            found[role] = dim
            taken.add(dim)
            if role == "T":
                note(f"xstochsr: took dimension {dim!r} (no coordinate variable) as time: its "
                     f"{da.sizes[dim]} frames are one sequence, in order, evenly spaced. Give it "
                     f"a time coordinate to mark gaps: da.assign_coords({dim}=times).")
            else:
                note(f"xstochsr: took dimension {dim!r} (no coordinate variable) as the {role} "
                     "axis from its name; the output has no coordinate along it either.")
    if found["X"] is None or found["Y"] is None:
        bare = [d for d in da.dims if d not in da.coords]
        if bare:
            missing = " and ".join(r for r in ("X", "Y") if found[r] is None)
            d = bare[-1]
            raise MissingAxisError(
                f"Could not identify the {missing} axis of {da.name or 'the field'!r}: "
                f"dimensions {bare} have no coordinate variable and no usual name. Add "
                f"coordinates with CF attributes, e.g. da = da.assign_coords({d}=({d!r}, "
                "x_values, dict(axis='X', units='m'))) (or units='degrees_east' for "
                "longitude), and likewise for Y."
            )
    return found["X"], found["Y"], found["T"]
