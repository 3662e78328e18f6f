"""Static fine-resolution predictors (orography, land fraction...) for training and downscaling.

A generator trained with ``xstochsr.train(ds, static=topo)`` takes, beside the coarse
field, ``n`` static fields on the *fine* grid (:class:`~xstochsr.models.generator.Generator`,
``static_channels``). Its card lists them (``ModelCard.static``: name, standard_name,
units, the normalisation mean/std fitted in training, the fine grid spacing), and
``downscale(da, model=..., static=topo)`` must hand back the same fields, on the exact
fine grid of the output, in the card's units. This module does both ends::

    static=  (DataArray | Dataset | variable name(s) in ds)
      --fields--> one DataArray per predictor (found by standard_name, then name)
      --on_grid--> on the target grid: as is when the coordinates match (refused when
                   both carry grid mappings of different projections), else
                   xstochsr.regrid (bilinear) onto it, across projections
      --units--> the card's units with pint (feet -> metres)
      --validation.check_static_values--> finite everywhere, covering the domain
      --normalise--> (value - mean) / std, the card's statistics

Shapes: S sequences, n predictors, Y x X fine cells.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import validation as _check
from .errors import StaticFieldError
from .models.base import Downscaler, Wrapped

__all__ = ["fields", "training_fields", "prepare", "attach", "check_range", "StaticInputs",
           "check_projection", "same_projection", "grid_mapping_attrs", "terrain_slopes",
           "SLOPES", "RANGE_SIGMA", "RANGE_RATIO"]

#: Static fields :func:`prepare` derives from the surface altitude when a model's card
#: lists them and ``static=`` does not hold them: name -> the axis of the slope.
SLOPES = {"terrain_slope_x": "x", "terrain_slope_y": "y"}

#: Warn when a field's mean lies more than this many training std from the training mean.
RANGE_SIGMA = 3.0
#: ... or its std is more than this factor off the training std.
RANGE_RATIO = 4.0


def fields(static: Any, ds: xr.Dataset | xr.DataArray | None = None) -> list[xr.DataArray]:
    """Collect the static predictors named or given by ``static=``, one DataArray each.

    Parameters
    ----------
    static : DataArray, Dataset, str, or a sequence of those
        Fields, or names of variables of ``ds`` (``static="surface_altitude"``). A
        Dataset gives each of its data variables with two or more dims (bounds and
        grid-mapping variables are left out).
    ds : Dataset, optional
        Where names are looked up.

    Returns
    -------
    list of xarray.DataArray
    """
    if static is None:
        return []
    items = [static] if isinstance(static, (str, xr.DataArray, xr.Dataset)) else list(static)
    out: list[xr.DataArray] = []
    for item in items:
        if isinstance(item, str):
            if not isinstance(ds, xr.Dataset) or item not in ds.data_vars:
                have = sorted(map(str, ds.data_vars)) if isinstance(ds, xr.Dataset) else []
                raise StaticFieldError(
                    f"static={item!r} names no variable of the data (it has {have}); pass "
                    "the field itself (static=topo) or the name of a variable in ds."
                )
            out.append(_with_grid_mapping(ds[item], ds))
        elif isinstance(item, xr.DataArray):
            out.append(item)
        elif isinstance(item, xr.Dataset):
            skip = {str(v.attrs.get("bounds")) for v in item.variables.values()}
            out += [_with_grid_mapping(item[k], item) for k, v in item.data_vars.items()
                    if v.ndim >= 2 and str(k) not in skip and "bnds" not in str(k)
                    and "bounds" not in str(k)]
        else:
            raise StaticFieldError(
                f"static= takes DataArrays, a Dataset or variable names, not "
                f"{type(item).__name__}."
            )
    if not out:
        raise StaticFieldError("static= holds no field with two or more dimensions.")
    names = [_name(f) for f in out]
    if len(set(names)) != len(names):
        raise StaticFieldError(f"static= holds two fields with one name ({names}); rename one.")
    return out


def _name(da: xr.DataArray) -> str:
    return str(da.name) if da.name is not None else "static"


def terrain_slopes(altitude: xr.DataArray) -> xr.Dataset:
    """Slopes of a surface altitude along its projected x and y axes, in m/m.

    Centred differences in the interior, one-sided at the edges
    (:meth:`xarray.DataArray.differentiate`), with the coordinates in metres (any length
    unit converts) and the altitude in metres. This is how the slope predictors of
    terrain-aware models are made in training, and what ``downscale`` computes from
    ``static=topo`` when a model needs ``terrain_slope_x``/``terrain_slope_y``
    (:data:`SLOPES`) and they are not given.

    Parameters
    ----------
    altitude : xarray.DataArray
        ``([...,] Y, X)`` on a projected grid: x/y coordinates with length units (CF
        axes found by cf-xarray), the field in a length unit (``m``, ``ft``...).

    Returns
    -------
    xarray.Dataset
        ``terrain_slope_x``, ``terrain_slope_y`` on ``altitude``'s grid, units ``"1"``.

    Raises
    ------
    StaticFieldError
        Coordinates in degrees (regrid to a projected grid first) or without a length
        unit.
    """
    from . import units as U
    from .grid import find_axes

    axes = find_axes(altitude)
    h = U.to_units(altitude, "m") if altitude.attrs.get("units") else altitude
    out = {}
    for name, which in SLOPES.items():
        dim = axes.x if which == "x" else axes.y
        c = altitude[dim]
        cu = str(c.attrs.get("units") or "m")
        try:
            scale = U.affine(cu, "m")[0]
        except Exception:  # degrees, or no length unit
            raise StaticFieldError(
                f"Slopes need a projected grid: the {which} coordinate {dim!r} is in {cu!r}. "
                "Regrid the altitude onto a projected grid in metres first "
                "(xstochsr.regrid), or give terrain_slope_x/terrain_slope_y yourself."
            ) from None
        d = h.assign_coords({dim: c * scale}).differentiate(dim).assign_coords({dim: c})
        out[name] = d.assign_attrs(units="1", long_name=f"slope of surface_altitude along {which}")
    return xr.Dataset(out)


def _with_slopes(entries: list[dict], found: list[xr.DataArray]) -> list[xr.DataArray]:
    """Add the :data:`SLOPES` a card lists and ``found`` lacks, from its altitude.

    The altitude is the field with standard_name ``surface_altitude``, else that name.
    """
    have = {_name(f) for f in found}
    need = [e["name"] for e in entries if e["name"] in SLOPES and e["name"] not in have]
    if not need:
        return found
    alt = [f for f in found if f.attrs.get("standard_name") == "surface_altitude"] or [
        f for f in found if _name(f) == "surface_altitude"]
    if len(alt) != 1:
        raise StaticFieldError(
            f"The model needs {need}: give them in static=, or give the surface altitude "
            "(standard_name 'surface_altitude') and they are derived from it "
            "(xstochsr.static.terrain_slopes).")
    slopes = terrain_slopes(alt[0])
    gm = {k: v for k, v in alt[0].attrs.items() if k == "grid_mapping"}
    return [*found, *(slopes[n].assign_attrs(gm) for n in need)]


# --- grid mappings --------------------------------------------------------------------------

#: CF grid-mapping attributes that name or describe, and do not define, a projection.
_NOT_DEFINING = {"long_name", "standard_name", "comment", "units", "name", "crs_wkt",
                 "spatial_ref", "GeoTransform", "horizontal_datum_name", "projected_crs_name",
                 "geographic_crs_name", "reference_ellipsoid_name", "prime_meridian_name"}
#: CF parameters whose absence means 0.
_ZERO_BY_DEFAULT = {"false_easting", "false_northing", "longitude_of_prime_meridian"}


def _is_grid_mapping(attrs: dict) -> bool:
    return "grid_mapping_name" in attrs or "crs_wkt" in attrs or "spatial_ref" in attrs


def grid_mapping_attrs(da: xr.DataArray) -> dict | None:
    """CF attributes of ``da``'s grid-mapping variable, or None when it carries none.

    The variable is named by the ``grid_mapping`` attribute (or encoding, after
    ``decode_coords="all"``), or is a scalar coordinate with ``grid_mapping_name`` or
    ``crs_wkt`` (:func:`xstochsr.cf_output.grid_mapping_name`). An attribute naming a
    variable that is not among ``da``'s coordinates (a DataArray taken out of a Dataset
    where the variable is a data variable) tells nothing: None.
    """
    from .cf_output import grid_mapping_name

    name = grid_mapping_name(da)
    if name is None or name not in da.coords:
        return None
    attrs = dict(da.coords[name].attrs)
    return attrs if _is_grid_mapping(attrs) else None


def _with_grid_mapping(da: xr.DataArray, ds: Any) -> xr.DataArray:
    """``da`` with its grid-mapping variable from the Dataset ``ds`` as a coordinate.

    The one ``da``'s ``grid_mapping`` names, else the Dataset's only grid-mapping
    variable; ``da`` unchanged when it has one already or none is found.
    """
    from .cf_output import grid_mapping_name

    if not isinstance(ds, xr.Dataset) or grid_mapping_attrs(da) is not None:
        return da
    name = grid_mapping_name(da)
    if name is None:
        found = [str(k) for k, v in ds.variables.items()
                 if v.ndim == 0 and _is_grid_mapping(v.attrs)]
        name = found[0] if len(found) == 1 else None
    if name is None or name not in ds.variables or not _is_grid_mapping(ds[name].attrs):
        return da
    return da.assign_coords({name: ds[name].variable})


def _same_cf(a: dict, b: dict) -> bool:
    """Compare two grid mappings by their CF attributes (without pyproj).

    Same ``grid_mapping_name`` and the same value of every defining parameter that both
    give (false easting/northing count as 0 when absent). Two mappings given only as
    WKT compare as text; a WKT-only one and a CF one cannot be told apart: same.
    """
    na, nb = a.get("grid_mapping_name"), b.get("grid_mapping_name")
    if na is None or nb is None:
        wa, wb = a.get("crs_wkt"), b.get("crs_wkt")
        if na is None and nb is None and wa and wb:
            return " ".join(str(wa).split()) == " ".join(str(wb).split())
        return True
    if na != nb:
        return False
    for key in (set(a) | set(b)) - _NOT_DEFINING - {"grid_mapping_name"}:
        if key not in a or key not in b:
            if key in _ZERO_BY_DEFAULT and not np.allclose(a.get(key, 0.0), b.get(key, 0.0)):
                return False
            continue
        va, vb = np.atleast_1d(a[key]), np.atleast_1d(b[key])
        try:
            if va.shape != vb.shape or not np.allclose(va.astype(float), vb.astype(float),
                                                       rtol=1e-9, atol=1e-9):
                return False
        except (TypeError, ValueError):  # text parameters
            if str(a[key]) != str(b[key]):
                return False
    return True


def same_projection(a: dict, b: dict) -> bool:
    """Tell whether two CF grid mappings (attribute dicts) define one projection.

    With pyproj, both are read with :meth:`pyproj.CRS.from_cf` and compared as
    equivalent CRS (names and the order of the axes do not matter, the projection, its
    parameters and the datum do); without it, or when pyproj cannot read one of them,
    their CF attributes are compared (:func:`_same_cf`).
    """
    try:
        import pyproj
    except ImportError:
        return _same_cf(a, b)
    try:
        ca, cb = pyproj.CRS.from_cf(dict(a)), pyproj.CRS.from_cf(dict(b))
    except Exception:  # pyproj raises several types on attributes it cannot read
        return _same_cf(a, b)
    return bool(ca.equals(cb, ignore_axis_order=True))


def _describe_mapping(attrs: dict) -> str:
    name = attrs.get("grid_mapping_name")
    if name:
        return str(name)
    return "a crs_wkt" if "crs_wkt" in attrs else "a spatial_ref"


def check_projection(field: xr.DataArray, ref: xr.DataArray, name: str) -> None:
    """Refuse a static field on another projection than ``ref`` with the same x/y values.

    Both grid mappings are read with :func:`grid_mapping_attrs` and compared with
    :func:`same_projection`. Same x/y numbers on two projections put every value in the
    wrong place if used as is, and cannot tell a mislabelled field from a real other
    projection, so this is an error, not a guess. When only one of the two carries a
    grid mapping (or neither), nothing is compared: the static field's coordinates are
    taken to be in the field's system.

    Raises
    ------
    StaticFieldError
        Both carry grid mappings that define different projections.
    """
    mine, theirs = grid_mapping_attrs(field), grid_mapping_attrs(ref)
    if mine is None or theirs is None or same_projection(mine, theirs):
        return
    a, b = _describe_mapping(mine), _describe_mapping(theirs)
    what = f"{a}, not {b}" if a != b else f"{a} with other parameters than the field's"
    raise StaticFieldError(
        f"Static field {name!r} is on another projection than the field ({what}) but has "
        "the same x/y coordinate values: used as is, every value would land in the wrong "
        "place. Reproject it onto the field's grid first (xstochsr.regrid.regrid(static, "
        "target) with a target on the field's projection, or xesmf / pyproj), or, if its "
        "grid_mapping is mislabelled, give it the field's."
    )


def _spatial(ref: xr.DataArray) -> xr.Dataset:
    """Build a Dataset holding only ``ref``'s coordinates on its X/Y dims (a regrid target)."""
    from .grid import find_axes

    axes = find_axes(ref)
    keep = {k: c for k, c in ref.coords.items()
            if c.dims and set(c.dims) <= {axes.x, axes.y}}
    gm = ref.attrs.get("grid_mapping") or ref.encoding.get("grid_mapping")
    if gm is not None and gm in ref.coords:
        keep[gm] = ref.coords[gm]
    return xr.Dataset(coords=keep)


def on_grid(field: xr.DataArray, ref: xr.DataArray, *, extra: Sequence[str] = (),
            name: str | None = None) -> tuple[np.ndarray, bool]:
    """``field``'s values on ``ref``'s Y/X grid: ``(..., Y, X)`` and whether it was regridded.

    Used as is when its X/Y coordinates equal ``ref``'s (to rounding, as
    :func:`xstochsr.grid.match_grid`), else regridded with :func:`xstochsr.regrid.regrid`
    (bilinear: a static field is a state, not a flux), which converts between the two
    grid mappings when both carry one. Same x/y values with two different grid mappings
    are refused (:func:`check_projection`); with a grid mapping on one side only, the
    values are taken to be in ``ref``'s system. Dims of ``field`` named in ``extra`` are
    kept in front, in ``field``'s order (per-sequence fields); any other dim of size 1
    is dropped.

    Raises
    ------
    StaticFieldError
        Extra dims, another projection with the same x/y values, or a grid that cannot
        be regridded onto ``ref``'s.
    """
    from .grid import find_axes

    name = name or _name(field)
    _check.check_dataarray(field, f"static field {name!r}")
    fa, ra = find_axes(field), find_axes(ref)
    other = [d for d in field.dims if d not in (fa.x, fa.y, *extra)]
    for d in other:
        if field.sizes[d] != 1:
            raise StaticFieldError(
                f"Static field {name!r} has dimension {d!r} of size {field.sizes[d]}; a static "
                "predictor has only Y and X, and dims of the field it goes with (e.g. "
                f"sequence). Select one with .isel({d}=0)."
            )
    field = field.squeeze(other, drop=True) if other else field
    lead = [d for d in field.dims if d in extra]
    same = (field.sizes[fa.y] == ref.sizes[ra.y] and field.sizes[fa.x] == ref.sizes[ra.x]
            and _same_axis(field, fa.x, ref, ra.x) and _same_axis(field, fa.y, ref, ra.y))
    if same:
        check_projection(field, ref, name)
        vals = field.transpose(*lead, fa.y, fa.x).values
        return np.asarray(vals, dtype=np.float64), False
    from .regrid import regrid

    try:
        out = regrid(field, _spatial(ref), method="bilinear")
    except StaticFieldError:
        raise
    except Exception as err:  # regrid names what it could not do
        raise StaticFieldError(
            f"Static field {name!r} is on another grid than the field and could not be "
            f"regridded onto it ({err}). Give it on the same projection and coordinates "
            "(or on latitude/longitude), covering the domain."
        ) from err
    oa = find_axes(out)
    return np.asarray(out.transpose(*lead, oa.y, oa.x).values, dtype=np.float64), True


def _same_axis(a: xr.DataArray, da: str, b: xr.DataArray, db: str) -> bool:
    """Equal 1-D coordinates (or both absent and the same length), to 1e-6 of a cell."""
    ca, cb = a.coords.get(da), b.coords.get(db)
    if ca is None or cb is None:
        return ca is None and cb is None and a.sizes[da] == b.sizes[db]
    va, vb = np.asarray(ca.values, float), np.asarray(cb.values, float)
    if va.shape != vb.shape:
        return False
    step = np.abs(np.diff(vb)).min() if vb.size > 1 else 1.0
    return bool(np.max(np.abs(va - vb)) <= 1e-6 * step)


def _to_units(values: np.ndarray, field: xr.DataArray, units: str | None, name: str):
    """Convert with pint to ``units`` (the card's); a unitless field is refused then."""
    from . import units as _units
    from .errors import MissingUnitsError

    if not units:
        return values
    src = field.attrs.get("units")
    if src is None or str(src).strip() == "":
        raise MissingUnitsError(
            f"Static field {name!r} has no 'units' attribute; the model was trained on it "
            f"in {units!r}. Set it, e.g. topo.attrs['units'] = {units!r}."
        )
    return np.asarray(_units.convert(values, str(src), units), dtype=np.float64)


def _spacing(ref: xr.DataArray) -> dict | None:
    try:
        from .regrid import grid_spacing

        dx, dy, u = grid_spacing(ref)
    except Exception:  # no coordinates: nothing to record
        return None
    return {"value": float(np.sqrt(abs(dx * dy))), "units": u}


# --- training ------------------------------------------------------------------------------


def training_fields(static: Any, obj: xr.Dataset | xr.DataArray, fine: xr.DataArray, *,
                    seq: str | None, stats: list[dict] | None = None
                    ) -> tuple[np.ndarray, list[dict]]:
    """Prepare static predictors for training, on the grid of the fine field, normalised.

    Parameters
    ----------
    static : see :func:`fields`
    obj : Dataset or DataArray
        What ``train`` got (names are looked up there).
    fine : xarray.DataArray
        The fine training field (cropped to whole coarse cells), dims ``([seq,] T, Y, X)``.
    seq : str or None
        Its sequence dim; a static field with that dim is per sequence.
    stats : list of dict, optional
        Card entries whose mean/std to use (a resumed run, a validation set, a
        pretrained model); None fits them on these fields.

    Returns
    -------
    values : ndarray ``(S or 1, n, Y, X)`` float32, normalised
    entries : list of dict
        The card's ``static`` entries (see :class:`xstochsr.models.base.ModelCard`).
    """
    found = fields(static, obj if isinstance(obj, xr.Dataset) else None)
    nseq = fine.sizes[seq] if seq else 1
    if stats is not None and [e["name"] for e in stats] != [_name(f) for f in found]:
        raise StaticFieldError(
            f"static= gives {[_name(f) for f in found]}, but the model was trained with "
            f"{[e['name'] for e in stats]}: give the same predictors in the same order."
        )
    ref = fine.isel({d: 0 for d in fine.dims if d not in fine.dims[-2:]})
    ref = _with_grid_mapping(ref, obj)
    arrays, entries = [], []
    for i, f in enumerate(found):
        name = _name(f)
        vals, moved = on_grid(f, ref, extra=[seq] if seq else [], name=name)
        if stats is not None:
            vals = _to_units(vals, f, stats[i].get("units"), name)
        _check.check_static_values(vals, name, source_finite=moved and bool(
            np.isfinite(f.values).all()))
        if vals.ndim == 3 and vals.shape[0] != nseq:
            raise StaticFieldError(f"Static field {name!r} has {vals.shape[0]} sequences; the "
                                   f"data has {nseq}.")
        vals = np.broadcast_to(vals if vals.ndim == 3 else vals[None],
                               (nseq if vals.ndim == 3 else 1, *vals.shape[-2:]))
        if stats is None:
            mean, std = float(vals.mean()), float(vals.std())
            if not std > 0:
                raise StaticFieldError(
                    f"Static field {name!r} is constant ({mean:g}) over the training data: "
                    "it tells the network nothing. Drop it from static=."
                )
            entry = {"name": name, "standard_name": f.attrs.get("standard_name"),
                     "units": f.attrs.get("units"), "mean": mean, "std": std,
                     "grid_spacing": _spacing(ref)}
        else:
            entry = dict(stats[i])
        entries.append(entry)
        arrays.append((vals - entry["mean"]) / entry["std"])
    s = max(a.shape[0] for a in arrays)
    out = np.stack([np.broadcast_to(a, (s, *a.shape[1:])) for a in arrays], axis=1)
    return np.ascontiguousarray(out, dtype=np.float32), entries


# --- downscaling -----------------------------------------------------------------------------


def _match(entries: list[dict], found: list[xr.DataArray], model_name: str
           ) -> list[xr.DataArray]:
    """Each card entry's field: same standard_name, else same name, else the only one."""
    out = []
    for e in entries:
        hit = [f for f in found if e.get("standard_name")
               and f.attrs.get("standard_name") == e["standard_name"]]
        hit = hit or [f for f in found if _name(f) == e["name"]]
        if not hit and len(entries) == len(found) == 1:
            hit = found
        if len(hit) != 1:
            have = [(_name(f), f.attrs.get("standard_name")) for f in found]
            raise StaticFieldError(
                f"Model {model_name!r} needs static field {e['name']!r} (standard_name "
                f"{e.get('standard_name')!r}, units {e.get('units')!r}); static= holds "
                f"{have}. Give it that standard_name or name."
            )
        out.append(hit[0])
    return out


def prepare(static: Any, model: Downscaler, da: xr.DataArray, axes, factor: int,
            other: Sequence[str] = ()) -> np.ndarray | None:
    """Prepare the static predictors ``model`` needs on ``da``'s fine grid, in its card's units.

    Parameters
    ----------
    static : DataArray, Dataset or None
        What the user passed as ``static=``.
    model : Downscaler
    da : xarray.DataArray
        The coarse field (as ``downscale`` runs it), with axes ``axes``.
    factor : int
    other : sequence of str
        The dims of ``da`` that ``downscale`` batches over as sequences (not T, Y, X). A
        static field may carry some of them (terrain per ``sequence``, say). A joint
        model's internal channel dim (:data:`xstochsr.joint.CHANNEL_DIM`) is not one: the
        model is bound to its fields inside :class:`~xstochsr.joint.Interleaved`, which
        calls it per sequence with all the variables as channels.

    Returns
    -------
    ndarray float32 in the card's units: ``(n, f*H, f*W)`` shared by every sequence, or
    ``(S, n, f*H, f*W)`` with ``S`` the sequences (``other`` flattened in order) when a
    field varies along them; None for a model without static predictors.

    Raises
    ------
    StaticFieldError
        Missing, not covering the domain, NaN (:mod:`xstochsr.validation`), or on
        another projection with the same x/y values (:func:`check_projection`).
    UnitsError, MissingUnitsError
        Units that do not convert to the card's.

    Warns
    -----
    OutOfRangeWarning
        A field whose statistics lie far from training's (:func:`check_range`).
    """
    from .cf_output import grid_mapping_name
    from .grid import fine_coords
    from .joint import CHANNEL_DIM

    entries = list(getattr(model.card, "static", None) or [])
    _check.check_static_needed([e["name"] for e in entries], static, model.name)
    if not entries:
        return None
    other = [d for d in other if d != CHANNEL_DIM]  # a sequence's variables share its terrain
    chosen = _match(entries, _with_slopes(entries, fields(static)), model.name)
    coords = fine_coords(da, axes, factor)
    ny, nx = da.sizes[axes.y] * factor, da.sizes[axes.x] * factor
    ref = xr.DataArray(np.zeros((ny, nx), np.float32), dims=(axes.y, axes.x),
                       coords={k: v for k, v in coords.items()}, attrs=dict(da.attrs))
    gm = grid_mapping_name(da)
    if gm is not None and gm in da.coords:
        ref = ref.assign_coords({gm: da.coords[gm]})
        ref.attrs["grid_mapping"] = gm
    out = []
    for e, f in zip(entries, chosen, strict=True):
        name = _name(f)
        lead = [d for d in f.dims if d in other]
        for d in lead:
            if f.sizes[d] != da.sizes[d]:
                raise StaticFieldError(
                    f"Static field {name!r} has {f.sizes[d]} entries along {d!r}; the field "
                    f"has {da.sizes[d]}. Give one per entry, or one shared (Y, X) field.")
        vals, moved = on_grid(f, ref, extra=lead, name=name)
        vals = _to_units(vals, f, e.get("units"), name)
        _check.check_static_values(vals, name, source_finite=moved and bool(
            np.isfinite(f.values).all()))
        out.append(xr.DataArray(vals, dims=(*lead, "__y__", "__x__")))
    if not any(a.ndim > 2 for a in out):
        arr = np.stack([a.values for a in out]).astype(np.float32)
    else:  # per sequence: broadcast over every batched dim, in downscale's order
        sizes = {d: da.sizes[d] for d in other}
        full = [a.expand_dims({d: n for d, n in sizes.items() if d not in a.dims})
                .transpose(*other, "__y__", "__x__").values.reshape(-1, ny, nx) for a in out]
        arr = np.stack(full, axis=1).astype(np.float32)
    per_field = np.moveaxis(arr.reshape(-1, *arr.shape[-3:]), 1, 0)  # (n, S or 1, fY, fX)
    check_range(per_field.reshape(len(entries), -1), entries, model.name)
    return arr


def check_range(values: np.ndarray, entries: list[dict], model_name: str) -> list[str]:
    """Warn when a static field's statistics lie far from those seen in training.

    ``values`` ``(n, ...)``, one row per field, in the card's units. Warns
    (:class:`OutOfRangeWarning`) when a field's mean is more than :data:`RANGE_SIGMA`
    training standard deviations from the training mean, or its std more than
    :data:`RANGE_RATIO` times off: terrain of another region than training's, where the
    network extrapolates.
    """
    from .training_range import OutOfRangeWarning

    said = []
    for v, e in zip(values, entries, strict=True):
        mean, std = float(v.mean()), float(v.std())
        far = abs(mean - e["mean"]) > RANGE_SIGMA * e["std"]
        odd = std > 0 and not (1 / RANGE_RATIO <= std / e["std"] <= RANGE_RATIO)
        if far or odd:
            u = e.get("units") or ""
            said.append(
                f"Static field {e['name']!r} has mean {mean:.4g} {u} and std {std:.4g} {u}, "
                f"but model {model_name!r} was trained on mean {e['mean']:.4g} and std "
                f"{e['std']:.4g}: this looks like another region, and the output is an "
                "extrapolation. Check the units, or train on terrain like this."
            )
    for text in said:
        warnings.warn(text, OutOfRangeWarning, stacklevel=3)
    return said


class StaticInputs(Wrapped):
    """A model bound to the static predictors of one ``downscale`` call.

    Everything is the model's; :meth:`run` passes ``static`` on, the same for every
    sequence and chunk. (Picklable: dask's tasks hold it.)
    """

    def __init__(self, model: Downscaler, static: np.ndarray):
        super().__init__(model)
        self.static = static  # (n, fY, fX) or (S, n, fY, fX)

    def run(self, x, *, factor, members: Sequence[int], seed, t0=0, batch_offset=0,
            state=None, device="cpu", origin=(0, 0)):
        """Run the wrapped model's :meth:`~xstochsr.models.base.Downscaler.run`, with ``static``.

        ``origin`` (row, column of ``x[..., 0, 0]`` on the whole coarse domain, for a tile
        of it, :mod:`xstochsr.tiling`) cuts the static fields to the tile's fine window.
        """
        st = self.static
        if st.ndim == 4:  # one per sequence: this call's sequences
            st = st[batch_offset : batch_offset + len(x)]
        f, (y0, x0), (ny, nx) = int(factor), origin, x.shape[-2:]
        st = st[..., y0 * f : (y0 + ny) * f, x0 * f : (x0 + nx) * f]
        return self.model.run(x, factor=factor, members=members, seed=seed, t0=t0,
                              batch_offset=batch_offset, state=state, device=device,
                              static=st, origin=origin)


def attach(plan: Any, layout: Any, static: Any) -> Any:
    """``downscale``'s plan with its model bound to the prepared static predictors.

    ``layout`` is ``downscale``'s (its ``da``, ``axes`` and batched ``other`` dims).
    Returns ``plan`` unchanged for a model without static predictors (after refusing a
    ``static=`` it cannot use).
    """
    arr = prepare(static, plan.model, layout.da, layout.axes, plan.factor, layout.other)
    if arr is None:
        return plan
    return dataclasses.replace(plan, model=StaticInputs(plan.model, arr))
