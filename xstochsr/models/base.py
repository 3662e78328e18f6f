"""What every downscaling method looks like to :func:`xstochsr.downscale`.

A :class:`Downscaler` receives plain float32 arrays in its own physical units, already
checked and NaN-filled by the caller, and returns an ensemble in the same units:

    x (B, T, H, W)  ->  y (M, B, T, H*f, W*f)

where B is a batch of independent sequences, T time steps, H x W the coarse grid, f
the factor and M the members asked for. Stateful methods (the recurrent generator)
also take and return an opaque ``state`` so that a long series can be processed in
time chunks with results identical to one pass.

Random numbers are *counter-based*: the noise for member ``m`` of sequence ``b`` at
time ``t`` depends only on ``(seed, m, b, t)`` (:func:`member_rng`), never on how the
work is split into batches or time chunks. That is what makes ``seed`` reproducible,
member k regenerable alone and chunked runs equal to unchunked ones.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ModelCardError, UnsupportedFactorError

__all__ = ["ModelCard", "Downscaler", "Wrapped", "member_rng", "NOISE", "INIT_NOISE"]

#: ``stream`` values for :func:`member_rng`.
NOISE, INIT_NOISE, AUX = 0, 1, 2


def member_rng(seed: int, member: int, batch: int, t: int,
               stream: int = NOISE) -> np.random.Generator:
    """Return a numpy Generator for one (member, sequence, time step, stream).

    Parameters
    ----------
    seed : int
        The user's seed (non-negative).
    member, batch, t : int
        Member index, global sequence index and global time index.
    stream : int
        Separates independent uses at the same (m, b, t): :data:`NOISE` for per-frame
        noise, :data:`INIT_NOISE` for the recurrent state's initial noise, :data:`AUX`
        for anything else.

    Returns
    -------
    numpy.random.Generator
        Seeded with ``SeedSequence(seed, spawn_key=(member, batch, t, stream))``.
    """
    ss = np.random.SeedSequence(int(seed),
                                spawn_key=(int(member), int(batch), int(t), int(stream)))
    return np.random.Generator(np.random.PCG64(ss))


@dataclasses.dataclass
class ModelCard:
    """Everything needed to use a model correctly, stored as JSON beside its weights.

    Attributes
    ----------
    name : str
        Registry name (e.g. ``"rain-x8"``) or a free label.
    kind : str
        ``"generator"`` (the recurrent GAN or its deterministic twin) or a baseline
        kind (``"interpolation"``, ``"rainfarm"``).
    factor : int or None
        The factor the model was built for; None if any factor works.
    variable : str
        Short name of the field (``"rain_rate"``).
    standard_name : str or None
        CF standard name of what the model represents.
    units : str or None
        Units the model works in (CF string, e.g. ``"mm h-1"``); None for unit-agnostic
        methods (interpolation).
    transform : dict
        Input/output transform and normalisation (see ``models.transforms``).
    architecture : dict
        Constructor arguments of the network (``GeneratorConfig`` as a dict).
    native_grid_spacing : dict or None
        ``{"value": 2000.0, "units": "m"}`` of the coarse input it was trained on.
    training : dict
        Training data, period, patch sizes, steps, hardware, time, config.
    scores : dict
        Held-out scores (and the baselines' on the same cases).
    description, license, citation : str
    package_version : str
        xstochsr version that wrote the card.
    training_range : dict or None
        What the coarse training input looked like: value ``quantiles``, ``std``,
        ``grid_spacing``, ``time_step`` (see :mod:`xstochsr.training_range`);
        ``downscale`` warns with numbers when a field lies far outside it.
    weights_sha256 : str
        sha256 of the weights file saved with this card ("" on cards written before it
        existed); :meth:`GANModel.load <xstochsr.models.gan.GANModel.load>` refuses
        weights that do not match, e.g. after an interrupted save.
    static : list of dict or None
        The static fine-resolution predictors the network takes, in its channel order
        (None, the default, for networks without them and every card written before
        this field existed). Each entry: ``name``, ``standard_name`` (or None),
        ``units`` (or None), ``mean`` and ``std`` (the normalisation fitted in
        training: the network sees ``(value - mean) / std``) and ``grid_spacing``
        (``{"value": ..., "units": ...}`` of the fine grid it was trained on, or None).
        See :mod:`xstochsr.static`.
    channels : list of dict or None
        The variables of a model trained on several at once (e.g. eastward and
        northward wind), in the network's channel order; None (the default, and every
        one-variable card) otherwise. Each entry: ``name``, ``standard_name``,
        ``long_name`` and ``units`` (each a string or None); the transform is then a
        ``channels`` spec with one part per entry (:mod:`xstochsr.models.transforms`).
    predictors : list of dict or None
        Coarse variables the network takes as inputs but does not downscale (e.g.
        geopotential for a wind model), after the ``channels`` in its input order;
        None (the default, and every card written before this field existed): none.
        Entries as in ``channels``; the transform's ``channels`` spec then has one part
        per output, then one per predictor, and ``channels`` may hold a single output.
        :func:`xstochsr.downscale` on a Dataset finds them by name or standard_name.
    """

    name: str
    kind: str = "generator"
    factor: int | None = None
    variable: str = "field"
    standard_name: str | None = None
    units: str | None = None
    transform: dict = dataclasses.field(default_factory=lambda: {"kind": "identity"})
    architecture: dict = dataclasses.field(default_factory=dict)
    native_grid_spacing: dict | None = None
    training: dict = dataclasses.field(default_factory=dict)
    scores: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    license: str = ""
    citation: str = ""
    package_version: str = ""
    training_range: dict | None = None
    weights_sha256: str = ""
    static: list | None = None
    channels: list | None = None
    predictors: list | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, JSON-serialisable.

        ``static``, ``channels`` and ``predictors`` are left out when None, so a card
        without them is byte for byte what it was before those fields existed (its
        digest, which the weights file holds, stays valid).
        """
        d = dataclasses.asdict(self)
        for key in ("static", "channels", "predictors"):
            if d[key] is None:
                del d[key]
        return d

    @property
    def variables(self) -> list[str]:
        """Names of the variables the model downscales (one unless ``channels``)."""
        return [c["name"] for c in self.channels] if self.channels else [self.variable]

    @property
    def inputs(self) -> list[dict]:
        """The network's input channels: ``channels`` then ``predictors`` ([] for one)."""
        return [*(self.channels or []), *(self.predictors or [])]

    def to_json(self) -> str:
        """JSON text, keys sorted for stable hashes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_json_default)

    def to_markdown(self, level: int = 2) -> str:
        """Render the card as Markdown (what docs/models.md shows)."""
        from .card_markdown import card_markdown

        return card_markdown(self, level)

    def _repr_markdown_(self) -> str:  # Jupyter shows the card as a document
        return self.to_markdown(level=3)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        """Build from a dict, rejecting unknown or missing required fields."""
        if not isinstance(d, dict):
            raise ModelCardError(f"A model card must be a JSON object, got {type(d).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ModelCardError(
                f"Model card has unknown fields {sorted(unknown)}; it may come from a newer "
                "xstochsr. Upgrade xstochsr or remove those fields."
            )
        if "name" not in d:
            raise ModelCardError("Model card has no 'name'.")
        _check_schema(d)
        return cls(**d)


#: field -> (accepted types, None allowed); checked before anything is built from a card.
_SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), False), "kind": ((str,), False), "factor": ((int,), True),
    "variable": ((str,), False), "standard_name": ((str,), True), "units": ((str,), True),
    "transform": ((dict,), False), "architecture": ((dict,), False),
    "native_grid_spacing": ((dict,), True), "training": ((dict,), False),
    "scores": ((dict,), False), "description": ((str,), False), "license": ((str,), False),
    "citation": ((str,), False), "package_version": ((str,), False),
    "weights_sha256": ((str,), False), "training_range": ((dict,), True),
    "static": ((list,), True), "channels": ((list,), True), "predictors": ((list,), True),
}
#: Largest factor a card may declare (the generator supports 2 to 16; baselines any).
MAX_CARD_FACTOR = 64


def _bad(field: str, expected: str, got: Any) -> ModelCardError:
    return ModelCardError(
        f"Model card field {field!r} must be {expected}, got {got!r}. The card is malformed "
        "or was edited by hand: save the model again with model.save(), or fix that field."
    )


def _check_schema(d: dict[str, Any]) -> None:
    """Types and ranges of every card field (not the architecture's sizes: see gan.py)."""
    for key, value in d.items():
        types, nullable = _SCHEMA[key]
        if value is None and nullable:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            names = " or ".join(t.__name__ for t in types) + (" or null" if nullable else "")
            raise _bad(key, f"a {names}", value)
    if not d["name"].strip():
        raise _bad("name", "a non-empty string", d["name"])
    factor = d.get("factor")
    if factor is not None and not 2 <= factor <= MAX_CARD_FACTOR:
        raise _bad("factor", f"an integer from 2 to {MAX_CARD_FACTOR}", factor)
    transform = d.get("transform", {"kind": "identity"})
    if not isinstance(transform.get("kind"), str):
        raise _bad("transform", "an object with a string 'kind'", transform)
    spacing = d.get("native_grid_spacing")
    if spacing is not None:
        value = spacing.get("value")
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
                or not isinstance(spacing.get("units"), (str, type(None)))):
            raise _bad("native_grid_spacing", "{'value': <positive number>, 'units': <str>}",
                       spacing)
    for entry in d.get("static") or []:
        _check_static_entry(entry)
    channels, predictors = d.get("channels"), d.get("predictors")
    if predictors is not None and channels is None:
        raise _bad("predictors", "given only with 'channels' (the outputs)", predictors)
    if channels is not None:
        _check_channels(channels, transform, predictors or [])


def _check_channels(channels: list, transform: dict, predictors: list) -> None:
    """Check a card's ``channels`` and ``predictors`` (see :class:`ModelCard`)."""
    entry_txt = ("{'name': <str>, 'standard_name': <str or null>, 'long_name': <str or "
                 "null>, 'units': <str or null>}")
    least = 1 if predictors else 2
    if len(channels) < least:
        raise _bad("channels", f"a list of {'one' if least == 1 else 'two'} or more "
                   f"{entry_txt}", channels)
    for field, entries in (("channels", channels), ("predictors", predictors)):
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or any(
                    not isinstance(entry.get(k), (str, type(None)))
                    for k in ("standard_name", "long_name", "units")):
                raise _bad(field, f"a list of {entry_txt}", entry)
    names = [e["name"] for e in (*channels, *predictors)]
    if len(set(names)) != len(names):
        raise _bad("channels", "distinct variable names (outputs and predictors)", names)
    parts = transform.get("channels")
    if transform.get("kind") != "channels" or not isinstance(parts, list) \
            or len(parts) != len(names):
        raise _bad("transform", f"a 'channels' spec with {len(names)} parts (one per "
                   "entry of 'channels', then of 'predictors')", transform)


def _check_static_entry(entry: Any) -> None:
    """One entry of a card's ``static`` list (see :class:`ModelCard`)."""
    expected = ("{'name': <str>, 'standard_name': <str or null>, 'units': <str or null>, "
                "'mean': <number>, 'std': <positive number>, 'grid_spacing': <object or null>}")
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise _bad("static", f"a list of {expected}", entry)
    for key in ("standard_name", "units"):
        if not isinstance(entry.get(key), (str, type(None))):
            raise _bad("static", f"a list of {expected}", entry)
    for key in ("mean", "std"):
        v = entry.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v):
            raise _bad("static", f"a list of {expected}", entry)
    if not entry["std"] > 0 or not isinstance(entry.get("grid_spacing"), (dict, type(None))):
        raise _bad("static", f"a list of {expected}", entry)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"Not JSON-serialisable: {type(o).__name__}")


class Downscaler(abc.ABC):
    """A downscaling method that :func:`xstochsr.downscale` can run.

    Subclasses set :attr:`card`, :attr:`stochastic`, :attr:`stateful` and implement
    :meth:`run`.
    """

    card: ModelCard
    #: Whether members differ (False for interpolation and the deterministic network).
    stochastic: bool = True
    #: Whether :meth:`run` carries a state across time chunks.
    stateful: bool = False
    #: Fewest coarse cells along X and Y the method needs.
    min_size: int = 2

    @property
    def name(self) -> str:
        """The model's name (from its card)."""
        return self.card.name

    def supports_factor(self, factor: int) -> bool:
        """Whether ``factor`` can be used. Default: the card's factor, or any >= 2."""
        if self.card.factor is None:
            return int(factor) >= 2
        return int(factor) == int(self.card.factor)

    def check_factor(self, factor: int) -> None:
        """Raise :class:`UnsupportedFactorError` if ``factor`` is not supported."""
        if self.supports_factor(factor):
            return
        if self.card.factor is None:
            raise UnsupportedFactorError(
                f"Model {self.name!r} needs an integer factor >= 2, got {factor!r}."
            )
        raise UnsupportedFactorError(
            f"Model {self.name!r} downscales by a factor of {self.card.factor}, not {factor}. "
            f"Use factor={self.card.factor} or choose another model (xstochsr.list_models())."
        )

    @abc.abstractmethod
    def run(
        self,
        x: np.ndarray,
        *,
        factor: int,
        members: Sequence[int],
        seed: int,
        t0: int = 0,
        batch_offset: int = 0,
        state: Any = None,
        device: str = "cpu",
    ) -> tuple[np.ndarray, Any]:
        """Downscale a chunk of sequences.

        Parameters
        ----------
        x : ndarray, shape (B, T, H, W), float32
            Coarse sequences in the model's units, finite.
        factor : int
            Downscaling factor f.
        members : sequence of int
            Member indices to produce (M of them); member m's noise depends on m only.
        seed : int
            Base seed.
        t0 : int
            Global time index of ``x[:, 0]`` (for counter-based noise).
        batch_offset : int
            Global sequence index of ``x[0]``.
        state : object, optional
            State returned by the previous call on the preceding time chunk of the same
            sequences and members; None starts fresh.
        device : str
            Torch device for network methods; ignored by numpy methods.

        Returns
        -------
        y : ndarray, shape (M, B, T, H*f, W*f), float32
        state : object
            Pass to the next call for the following time chunk (None if stateless).
        """

    def __repr__(self) -> str:
        c = self.card
        return (f"<{type(self).__name__} {c.name!r}: {c.variable} [{c.units}] "
                f"x{c.factor if c.factor else 'any'}>")


class Wrapped(Downscaler):
    """A model bound to something of one ``downscale`` call (static fields, precision).

    Everything but :meth:`run` is the wrapped model's; subclasses implement :meth:`run`
    around ``self.model.run``. Picklable (dask's tasks hold it).
    """

    def __init__(self, model: Downscaler):
        self.model = model
        self.generator = getattr(model, "generator", None)  # tiling reads its config
        self.card, self.stochastic = model.card, model.stochastic
        self.stateful, self.min_size = model.stateful, model.min_size

    def supports_factor(self, factor: int) -> bool:
        """Return the wrapped model's answer."""
        return self.model.supports_factor(factor)
