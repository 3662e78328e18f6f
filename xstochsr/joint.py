"""Several variables downscaled together: a Dataset in, a Dataset of ensembles out.

A model trained on several variables at once (``xstochsr.train(ds, var=["ua", "va"])``:
its card lists them in ``channels``) sees them as the channels of one input, so the
members of ``ua`` and ``va`` belong together (one wind field per member, not two
unrelated ones). :func:`downscale_dataset` is what ``xstochsr.downscale(ds)`` and
``ds.sr.downscale(...)`` run:

1. pick the variables: the model's channels, matched by name, else by CF
   ``standard_name`` (``eastward_wind`` finds ``ua``, ``u`` or ``U``);
2. bring each to its channel's units (pint) and check they share one grid;
3. stack them along an internal channel dimension placed last among the batched
   dimensions, so the rows :func:`xstochsr.downscale` hands a model are the variables
   of one sequence side by side; :class:`Interleaved` turns such rows into the
   network's ``(B, T, C, H, W)`` and back, keeping the noise keyed by *sequence* (not
   by row), so a member is the same whichever batch, tile or dask task it falls in;
4. run the usual pipeline (validation, tiling, dask, progress) once for all of them;
5. split the ensemble back into variables, each in its own units with its own attrs.

A model with inputs-only predictors (``card.predictors``, e.g. geopotential beside
the winds) finds them in ``ds`` the same way and stacks them after its outputs; they
are seen coarse and never returned.

With a one-variable model (or none given) each listed variable is downscaled on its
own, with the same seed, and the results are merged into one Dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .errors import InvalidInputError
from .models.base import Downscaler, Wrapped

__all__ = ["downscale_dataset", "match_channels", "match_predictors", "Interleaved",
           "CHANNEL_DIM"]

#: The internal dimension the variables are stacked along (never in any output).
CHANNEL_DIM = "__xstochsr_channel__"


class Interleaved(Wrapped):
    """A several-variable model run on rows that hold one variable each.

    :func:`xstochsr.downscale` batches ``(B*C, T, H, W)`` rows, the C variables of each
    sequence side by side (row ``b*C + c`` is variable ``c`` of sequence ``b``).
    :meth:`run` regroups them as ``(B, T, C, H, W)`` for the network and returns
    ``(M, B*C, T, fH, fW)`` in the same row order. ``batch_offset`` counts rows; the
    network's noise is keyed by ``batch_offset // C``, the sequence.

    With inputs-only predictors the network gives fewer channels (``outputs``) than it
    takes; the predictors' rows of the result hold their coarse input repeated over
    each block (block means exact, so any later conservation leaves them alone) and
    are dropped by :func:`downscale_dataset`.
    """

    def __init__(self, model: Downscaler, channels: int, outputs: int | None = None):
        super().__init__(model)
        self.channels = int(channels)
        self.outputs = self.channels if outputs is None else int(outputs)

    def run(self, x, *, factor, members: Sequence[int], seed, t0=0, batch_offset=0,
            state=None, device="cpu", **kw):
        """See :meth:`xstochsr.models.base.Downscaler.run`; rows as described above."""
        c = self.channels
        rows, nt, ny, nx = x.shape
        if rows % c or batch_offset % c:
            raise InvalidInputError(  # an internal contract: jobs keep sequences whole
                f"{rows} rows from row {batch_offset} split the {c} variables of a sequence.")
        x5 = np.asarray(x).reshape(rows // c, c, nt, ny, nx).transpose(0, 2, 1, 3, 4)
        y, state = self.model.run(np.ascontiguousarray(x5), factor=factor, members=members,
                                  seed=seed, t0=t0, batch_offset=batch_offset // c,
                                  state=state, device=device, **kw)
        m, b, t, cc, fy, fx = y.shape
        if cc < c:  # predictors: their coarse input, repeated over each block
            f = fy // ny
            rest = np.repeat(np.repeat(x5[:, :, cc:], f, axis=-2), f, axis=-1)
            rest = np.broadcast_to(rest[None], (m, *rest.shape)).astype(y.dtype)
            y = np.concatenate([y, rest], axis=3)
        return np.ascontiguousarray(y.transpose(0, 1, 3, 2, 4, 5)).reshape(m, b * c, t, fy,
                                                                           fx), state


def match_channels(ds: xr.Dataset, channels: list[dict],
                   variables: Sequence[str] | None = None) -> list[str]:
    """Names in ``ds`` of a model's channels, in the model's order.

    A channel is found by its name, else by its ``standard_name`` (exactly one variable
    of ``ds`` must carry it). ``variables`` (when given) must name the same set.

    Raises
    ------
    InvalidInputError
        A channel is missing or ambiguous, or ``variables`` names others.
    """
    pool = list(variables) if variables is not None else list(ds.data_vars)
    for v in pool:
        if v not in ds.data_vars:
            raise InvalidInputError(f"No variable {v!r} in the Dataset; it holds "
                                    f"{list(ds.data_vars)}.")
    found = []
    for ch in channels:
        if ch["name"] in pool:
            found.append(ch["name"])
            continue
        sn = ch.get("standard_name")
        hits = [v for v in pool if sn and ds[v].attrs.get("standard_name") == sn]
        if len(hits) != 1:
            want = f"{ch['name']!r}" + (f" (standard_name {sn!r})" if sn else "")
            why = "none" if not hits else f"several: {hits}"
            raise InvalidInputError(
                f"The model needs {want} among {pool}; found {why}. Name it with "
                f"variables=[...] in the order {[c['name'] for c in channels]}, or set its "
                "standard_name attribute.")
        found.append(hits[0])
    if len(set(found)) != len(found):
        raise InvalidInputError(f"One variable matched two of the model's channels: {found}.")
    if variables is not None and set(variables) != set(found):
        extra = sorted(set(variables) - set(found))
        raise InvalidInputError(
            f"The model downscales {found} together; variables= also names {extra}, which "
            "it does not take. Downscale those separately.")
    return found


def match_predictors(ds: xr.Dataset, predictors: list[dict], taken: list[str]) -> list[str]:
    """Names in ``ds`` of a model's inputs-only predictors (by name, else standard_name).

    ``taken`` are the outputs' variables, which no predictor may be.

    Raises
    ------
    InvalidInputError
        A predictor is missing or ambiguous.
    """
    pool = [v for v in ds.data_vars if v not in taken]
    try:
        return match_channels(ds[pool], predictors, None)
    except InvalidInputError as err:
        raise InvalidInputError(
            f"The model also takes {[p['name'] for p in predictors]} as inputs (its card's "
            f"predictors, seen coarse, not downscaled): add them to the Dataset. {err}"
        ) from None


def _stack(ds: xr.Dataset, names: list[str], channels: list[dict]) -> xr.DataArray:
    """Stack the variables, each in its channel's units, along :data:`CHANNEL_DIM`."""
    from . import units as U

    parts = []
    for name, ch in zip(names, channels, strict=True):
        da = ds[name]
        if ch.get("units") is not None:
            da = U.to_units(da, ch["units"])
        parts.append(da)
    first = parts[0]
    for name, da in zip(names[1:], parts[1:], strict=True):
        if da.dims != first.dims or da.shape != first.shape:
            raise InvalidInputError(
                f"{name!r} has dims {dict(da.sizes)} and {names[0]!r} {dict(first.sizes)}: "
                "variables downscaled together must share one grid. Regrid them onto one "
                "grid first (da.sr.regrid(target)).")
        for d in da.dims:
            if d in da.coords and d in first.coords and not np.array_equal(
                    np.asarray(da[d].values), np.asarray(first[d].values)):
                raise InvalidInputError(
                    f"{name!r} and {names[0]!r} have different {d!r} coordinates: "
                    "variables downscaled together must share one grid (a staggered grid "
                    "needs regridding to the cell centres first).")
    bare = []
    for p in parts:  # the variables' own attrs go; their coordinates' (units, axis) stay
        p = p.copy(deep=False)
        p.attrs = {}
        bare.append(p)
    stacked = xr.concat(bare, dim=CHANNEL_DIM, coords="minimal", compat="override",
                        join="override")
    stacked.attrs = {k: v for k, v in first.attrs.items()
                     if k not in ("standard_name", "long_name", "units")}
    units = {ch.get("units") for ch in channels}
    if len(units) == 1 and None not in units:
        stacked.attrs["units"] = units.pop()
    # the channel dim last among the batched ones: a sequence's variables are adjacent rows
    spatial = [d for d in first.dims if d in _spatial_dims(first)]
    batched = [d for d in first.dims if d not in spatial]
    return stacked.transpose(*batched, CHANNEL_DIM, *spatial).rename("joint")


def _spatial_dims(da: xr.DataArray) -> list[str]:
    from .grid import find_axes

    ax = find_axes(da)
    return [d for d in (ax.t, ax.y, ax.x) if d is not None]


def downscale_dataset(ds: xr.Dataset, factor: int | None = None, members: Any = 10, *,
                      variables: Sequence[str] | None = None, model: Any = None,
                      seed: int | None = None, **kwargs: Any) -> xr.Dataset:
    """Downscale several variables of a Dataset; see :func:`xstochsr.downscale`.

    Parameters
    ----------
    ds : xarray.Dataset
    factor, members, seed, **kwargs
        As for :func:`xstochsr.downscale` (one seed for every variable).
    variables : sequence of str, optional
        The variables to downscale. With a several-variable model: its channels (found
        by name or standard_name when not given). With a one-variable model or none:
        required when ``ds`` holds more than one variable; each is downscaled alone.
    model : str, path or Downscaler, optional
        None: the one pretrained model of several variables that ``ds`` (or
        ``variables``) holds, if there is one
        (:func:`~xstochsr.model_choice.choose_joint_model`); else each variable gets the
        model chosen for it alone.

    Returns
    -------
    xarray.Dataset
        One ensemble DataArray per variable (dims ``("realization", *dims)``), each with
        its own attrs and units; the Dataset's attrs are kept and ``xstochsr_seed``,
        ``xstochsr_model`` added.
    """
    from . import validation as _check
    from .api import _downscale_array
    from .models.registry import load_model

    if not isinstance(ds, xr.Dataset):
        raise InvalidInputError(f"downscale_dataset takes a Dataset, got {type(ds).__name__}.")
    seed = _check.check_seed(seed)
    if model is None and factor is not None:
        from .model_choice import choose_joint_model

        chosen = choose_joint_model(ds, variables, factor)
        model = chosen[0] if chosen else None
    obj = None if model is None else load_model(model)
    channels = (obj.card.channels or None) if obj is not None else None
    if channels:
        names = match_channels(ds, channels, variables)
        preds = obj.card.predictors or []
        pnames = match_predictors(ds, preds, names) if preds else []
        _check_outputs(ds, names, channels, obj.card.transform)
        stacked = _stack(ds, names + pnames, channels + preds)
        ens = _downscale_array(stacked, factor, members, model=obj, seed=seed,
                               channel_dim=CHANNEL_DIM, **kwargs)
        out = {}
        for i, (name, ch) in enumerate(zip(names, channels, strict=True)):
            out[name] = _unstack_one(ens.isel({CHANNEL_DIM: i}, drop=True), ds[name], ch)
        res = xr.Dataset(out, attrs=dict(ds.attrs))
    else:
        if variables is None:
            cands = [v for v in ds.data_vars if ds[v].ndim >= 2]
            if len(cands) != 1:
                raise InvalidInputError(
                    f"The Dataset holds {len(cands)} fields {cands}; name those to downscale "
                    "with variables=[...], or give a model trained on several variables.")
            variables = cands
        res = xr.Dataset({v: _downscale_array(ds[v], factor, members, model=obj, seed=seed,
                                              **kwargs) for v in variables},
                         attrs=dict(ds.attrs))
    first = res[next(iter(res.data_vars))]
    for key in ("xstochsr_seed", "xstochsr_model", "xstochsr_factor"):
        if key in first.attrs:
            res.attrs[key] = first.attrs[key]
    return res


def _check_outputs(ds: xr.Dataset, names: list[str], channels: list[dict],
                   spec: dict) -> None:
    """Refuse negative values in outputs that cannot be negative (a rain channel).

    The stacked array carries no single standard_name or rain transform, so
    :func:`xstochsr.downscale` cannot tell; each output is checked here against its own
    standard_name and transform (dask inputs are not read here).
    """
    from . import validation as _check
    from .models import transforms
    from .units import is_precipitation

    for i, (name, ch) in enumerate(zip(names, channels, strict=True)):
        da = ds[name]
        kind = transforms.channel_spec(spec, i).get("kind")
        nonneg = _check.is_nonnegative(da, kind) or is_precipitation(ch.get("standard_name"))
        if nonneg and da.chunks is None:
            _check.check_values(da.values, nonnegative=True, what="The field", name=name)


def _unstack_one(ens: xr.DataArray, src: xr.DataArray, channel: dict) -> xr.DataArray:
    """One variable of a joint ensemble, back in ``src``'s units, name and attrs."""
    from . import units as U

    keep = {k: v for k, v in ens.attrs.items() if k.startswith("xstochsr_") or k == "history"}
    out = ens.rename(src.name).assign_attrs({**src.attrs, **keep})
    if channel.get("units") is not None:
        out.attrs["units"] = channel["units"]
        if src.attrs.get("units") is not None:
            out = U.to_units(out, src.attrs["units"])
    return out
