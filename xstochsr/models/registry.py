"""Names -> model cards -> weights: ``list_models`` and ``load_model``.

Pretrained generators are the ``<name>.safetensors`` entries of ``data_registry.txt``
(each with a ``<name>.json`` card beside it), served by :mod:`xstochsr.datasets` and
checked against their sha256. Baselines (interpolation, RainFARM) need no weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UnknownModelError
from .base import Downscaler, ModelCard

__all__ = ["list_models", "describe_models", "load_model", "pretrained_card", "select_model"]


def _baselines() -> dict:
    from .baselines import BASELINES

    return BASELINES


def _registry_hashes() -> dict[str, str]:
    """File name -> sha256 of everything in ``data_registry.txt`` (keys are repo paths)."""
    from .. import datasets

    return {Path(key).name: digest for key, digest in datasets.registry().items()}


def _pretrained_names() -> list[str]:
    suffix = ".safetensors"
    return sorted(n[: -len(suffix)] for n in _registry_hashes() if n.endswith(suffix))


def pretrained_card(name: str) -> ModelCard:
    """Return the card of a pretrained model, without fetching its weights."""
    import json

    from .. import datasets

    return ModelCard.from_dict(json.loads(Path(datasets.fetch(f"{name}.json")).read_text()))


def list_models(kind: str | None = None) -> list[str]:
    """Names accepted by :func:`load_model` and ``downscale(model=...)``.

    Parameters
    ----------
    kind : {"pretrained", "baseline"}, optional
        Restrict to one kind.

    Returns
    -------
    list of str
        Pretrained generators first, then baselines.
    """
    names = []
    if kind in (None, "pretrained"):
        names += _pretrained_names()
    if kind in (None, "baseline"):
        names += list(_baselines())
    return names


def describe_models() -> list[dict]:
    """One dict per model: name, kind, variable, standard_name, units, factor."""
    rows = []
    for name in _pretrained_names():
        c = pretrained_card(name)
        rows.append(dict(name=name, kind=c.kind, variable=c.variable,
                         standard_name=c.standard_name, units=c.units, factor=c.factor))
    for name, make in _baselines().items():
        c = make().card
        rows.append(dict(name=name, kind=c.kind, variable=c.variable,
                         standard_name=c.standard_name, units=c.units, factor=c.factor))
    return rows


def _known() -> str:
    lines = []
    for r in describe_models():
        what = f"{r['standard_name'] or 'any field'} in {r['units'] or 'any units'}"
        lines.append(f"  {r['name']!r} ({r['kind']}): {what}, factor {r['factor'] or 'any'}")
    return "\n".join(lines)


def load_model(name_or_path: str | os.PathLike | Downscaler) -> Downscaler:
    """Load a model by registry name, baseline name or path.

    Parameters
    ----------
    name_or_path : str, path-like or Downscaler
        A pretrained name (see :func:`list_models`), a baseline name (``"bilinear"``,
        ``"rainfarm"``...), or the path of a saved model (``.safetensors`` or its stem).
        A model object is returned as it is.

    Returns
    -------
    Downscaler

    Raises
    ------
    UnknownModelError
        Neither a known name nor an existing path; the message lists the names.
    WeightsIntegrityError
        The weights fail their sha256 check or cannot be read.
    """
    from ..validation import check_model_ref
    from .gan import GANModel, model_paths

    if isinstance(name_or_path, Downscaler):
        return name_or_path
    check_model_ref(name_or_path)
    name = os.fspath(name_or_path)
    baselines = _baselines()
    if name in baselines:
        return baselines[name]()
    hashes = _registry_hashes()
    if f"{name}.safetensors" in hashes:
        from .. import datasets

        weights = datasets.fetch(f"{name}.safetensors")
        datasets.fetch(f"{name}.json")
        return GANModel.load(weights, expected_sha256=hashes[f"{name}.safetensors"])
    weights, _ = model_paths(name)
    if weights.is_file():
        from .. import datasets

        # a registry file (packaged or cached) is checked; a user's file of the same name is not
        return GANModel.load(weights, expected_sha256=datasets.registry_file(weights))
    raise UnknownModelError(
        f"No model named {name!r} and no saved model at {weights}. Known models:\n{_known()}\n"
        "Pass one of these names, a path to a .safetensors file saved with model.save(), "
        "or a model object."
    )


def select_model(units: str | None, standard_name: str | None, factor: int) -> str:
    """Name of the pretrained model that fits a field, for ``downscale(model=None)``.

    Kept for callers of the old name: the rules live in :func:`xstochsr.model_choice.choose_model`
    (model choice reads a field's metadata, which is the recipe layer's job). Units alone
    never pick a model: without a ``standard_name`` this raises, listing the candidates.

    Raises
    ------
    UnknownModelError
        No pretrained model fits, or several do; the message lists them and ``model=``.
    """
    from ..model_choice import choose_model

    return choose_model(units, standard_name, None, factor)[0]
