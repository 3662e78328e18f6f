"""A trained generator with its card: the model object users load, run and save.

Weights are stored as safetensors (never pickle) beside a JSON model card::

    model.save("runs/rain-x8")        # writes rain-x8.safetensors and rain-x8.json
    model = xstochsr.load_model("runs/rain-x8.safetensors")

Both files are written to temporary names, synced, and only then renamed into place
one right after the other, so a failed save never leaves a half file where a good one
was. The two files vouch for each other: the
card holds the sha256 of the weights file, and the weights' metadata holds the sha256 of
the card (written without that field) and the model's name, so a save killed between
the two renames (new weights beside an old card) is refused at load instead of running.

Loading checks everything before anything big is built: the card's schema, the sizes in
its architecture (bounded, so an untrusted card cannot exhaust memory), the tensor names
and shapes in the safetensors header against a network built on the ``meta`` device, and
finally that every weight is finite.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelCardError, UnsupportedFactorError, WeightsIntegrityError
from ..io import atomic_write_files
from . import transforms
from .base import INIT_NOISE, NOISE, Downscaler, ModelCard
from .generator import (
    MAX_FINE_NOISE,
    MAX_STATIC,
    SUPPORTED_FACTORS,
    Generator,
    GeneratorConfig,
)
from .noise import cell_noise, cell_noise_torch

__all__ = ["GANModel", "model_paths", "check_architecture", "read_header"]

#: Bounds on the sizes a card may ask for (the paper's network is width 256, 3 blocks).
MAX_WIDTH = 1024
MAX_BLOCKS = 32
MAX_CHANNELS = 16
#: Largest safetensors header accepted (a generator's header is a few kB).
MAX_HEADER_BYTES = 1 << 24
FORMAT = "xstochsr-generator"


def check_architecture(arch: dict[str, Any]) -> GeneratorConfig:
    """Check a card's ``architecture`` (types and bounded sizes) and return its config.

    Raises
    ------
    ModelCardError
        Unknown keys, wrong types, or sizes outside the bounds (:data:`MAX_WIDTH`,
        :data:`MAX_BLOCKS`, :data:`MAX_CHANNELS`), before any memory is allocated.
    """
    def bad(key: str, expected: str) -> ModelCardError:
        return ModelCardError(
            f"Model card architecture field {key!r} must be {expected}, got "
            f"{arch.get(key)!r}. The card is malformed or not from xstochsr: save the "
            "model again with model.save(), or fix that field."
        )

    def whole(key: str, lo: int, hi: int, required: bool = False) -> None:
        if key not in arch and not required:
            return
        v = arch.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise bad(key, f"an integer from {lo} to {hi}")

    if not isinstance(arch, dict) or not arch:
        raise ModelCardError("The model card has no 'architecture'; save the model again.")
    whole("factor", min(SUPPORTED_FACTORS), max(SUPPORTED_FACTORS), required=True)
    if arch["factor"] not in SUPPORTED_FACTORS:
        raise bad("factor", f"one of {SUPPORTED_FACTORS}")
    whole("in_channels", 1, MAX_CHANNELS)
    whole("out_channels", 1, MAX_CHANNELS)
    whole("width", 2, MAX_WIDTH)
    whole("noise_channels", 0, MAX_WIDTH - 1)
    whole("encoder_blocks", 0, MAX_BLOCKS)
    whole("init_blocks", 0, MAX_BLOCKS)
    whole("fine_noise", 0, MAX_FINE_NOISE)
    whole("static_channels", 0, MAX_STATIC)
    widths = arch.get("upsample_widths")
    if widths is not None and (
            not isinstance(widths, list) or len(widths) > 8
            or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_WIDTH
                       for w in widths)):
        raise bad("upsample_widths", f"null or a list of integers from 1 to {MAX_WIDTH}")
    if arch.get("output_activation", "sigmoid") not in ("sigmoid", "none"):
        raise bad("output_activation", "'sigmoid' or 'none'")
    try:
        return GeneratorConfig.from_dict(arch)
    except UnsupportedFactorError as err:
        raise ModelCardError(str(err)) from err
    except TypeError as err:
        raise ModelCardError(f"Model card architecture is malformed: {err}.") from err


def read_header(blob: bytes, where: object) -> tuple[dict[str, tuple[str, tuple[int, ...]]],
                                                     dict[str, str]]:
    """Read a safetensors header without loading any tensor.

    Returns
    -------
    tensors : dict
        Name -> (dtype, shape).
    metadata : dict
        The ``__metadata__`` strings.

    Raises
    ------
    WeightsIntegrityError
        A truncated or malformed file.
    """
    def broken(why: str) -> WeightsIntegrityError:
        return WeightsIntegrityError(
            f"{where} is not a readable safetensors file ({why}); it is corrupted or "
            "truncated. Save or fetch the model again."
        )

    if len(blob) < 8:
        raise broken("shorter than its header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(MAX_HEADER_BYTES, len(blob) - 8):
        raise broken(f"header of {n} bytes")
    try:
        header = json.loads(blob[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise broken(f"header is not JSON: {err}") from err
    if not isinstance(header, dict):
        raise broken("header is not an object")
    meta = header.pop("__metadata__", None) or {}
    tensors = {}
    for k, v in header.items():
        try:
            tensors[k] = (str(v["dtype"]), tuple(int(i) for i in v["shape"]))
        except (TypeError, KeyError, ValueError) as err:
            raise broken(f"entry {k!r} is malformed") from err
    return tensors, (meta if isinstance(meta, dict) else {})


def _card_digest(card: ModelCard, *, with_scores: bool = False) -> str:
    """sha256 of the card's JSON with ``weights_sha256`` and ``scores`` blanked.

    What the weights hold: the card as saved, less what evaluation adds afterwards
    (``scripts/evaluate_pretrained.py`` writes held-out scores into a saved card; the
    registry's sha256 of the JSON covers them once shipped). ``with_scores=True`` gives
    the older digest, which kept the scores (weights saved before 2026-11-30).
    """
    import dataclasses

    kw = {} if with_scores else {"scores": {}}
    text = dataclasses.replace(card, weights_sha256="", **kw).to_json()
    return hashlib.sha256(text.encode()).hexdigest()


def _check_finite(state: dict, where: object, fix: str) -> None:
    import torch

    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsIntegrityError(
            f"{where} holds NaN or infinite weights in {len(bad)} tensor(s) (first: "
            f"{bad[0]!r}), e.g. from a diverged training run. {fix}"
        )


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights, card)`` paths for a model path given with or without a suffix."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


class GANModel(Downscaler):
    """The recurrent generator wrapped with its model card.

    Parameters
    ----------
    generator : Generator
        The network (its config must equal ``card.architecture``).
    card : ModelCard
        Units, standard name, transform, training record, scores.

    Attributes
    ----------
    history : xarray.Dataset or None
        Loss and validation history when the model comes from :func:`xstochsr.train`.

    Examples
    --------
    >>> from xstochsr.models.generator import Generator, GeneratorConfig
    >>> cfg = GeneratorConfig.small(factor=4)
    >>> card = ModelCard(name="demo", factor=4, units="mm h-1",
    ...                  transform={"kind": "log_rain", "threshold": 0.1,
    ...                             "fill": 0.025, "max": 100.0},
    ...                  architecture=cfg.to_dict())
    >>> m = GANModel(Generator(cfg), card)
    >>> y, _ = m.run(np.ones((1, 2, 4, 4), np.float32), factor=4, members=[0, 1], seed=0)
    >>> y.shape
    (2, 1, 2, 16, 16)
    """

    stateful = True
    #: Run the network in the channels_last layout (oneDNN's and cuDNN's fast path for
    #: convolutions; ``benchmarks/inference_layout.py``); False: contiguous. The values
    #: differ at float rounding only. The weights are converted in place; saving writes
    #: them contiguous.
    channels_last = True

    def __init__(self, generator: Generator, card: ModelCard):
        cfg = generator.config
        if card.architecture and GeneratorConfig.from_dict(card.architecture) != cfg:
            raise ModelCardError("The card's architecture does not match the generator's config.")
        n_out = len(card.channels or []) or 1
        n_in = n_out + len(card.predictors or [])
        if n_out != cfg.out_channels or n_in != cfg.in_channels:
            raise ModelCardError(
                f"The card lists {n_out} variable(s) and {n_in - n_out} predictor(s) but the "
                f"generator takes {cfg.in_channels} and gives {cfg.out_channels} channel(s); "
                "save the model again.")
        n_static = len(card.static or [])
        if n_static != cfg.static_channels:
            raise ModelCardError(
                f"The card lists {n_static} static predictor(s) but the generator takes "
                f"{cfg.static_channels} (static_channels); save the model again."
            )
        card.architecture = cfg.to_dict()
        card.factor = cfg.factor
        card.kind = "generator"
        self.generator = generator
        self.card = card
        self.stochastic = cfg.noise_channels > 0
        self.history = None

    # --- inference ----------------------------------------------------------------------
    def _noise(self, seed, members, nb, batch_offset, t, shape, stream, device, origin=(0, 0)):
        """Noise ``(M*B, C, H, W)`` keyed by global coarse cell (:func:`.noise.cell_noise`).

        On an accelerator the same stream is drawn there (:func:`.noise.cell_noise_torch`,
        one pass for every member and sequence) instead of on the host and copied; on the
        CPU numpy's integer arithmetic is faster.
        """
        import torch

        cfg = self.generator.config
        nz = cfg.noise_channels_total if stream == NOISE else cfg.noise_channels
        if nz == 0:
            return None
        (y0, x0), (ny, nx) = origin, shape
        if torch.device(device).type != "cpu":
            return cell_noise_torch(seed, members, t, stream, y0, y0 + ny, x0, x0 + nx, nz,
                                    sequences=range(batch_offset, batch_offset + nb),
                                    device=device)
        arr = np.empty((len(members), nb, nz, ny, nx), dtype=np.float32)
        for i, m in enumerate(members):
            for b in range(nb):
                arr[i, b] = cell_noise(seed, m, t, stream, y0, y0 + ny, x0, x0 + nx, nz,
                                       sequence=batch_offset + b)
        return torch.from_numpy(arr.reshape(len(members) * nb, nz, ny, nx)).to(device)

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
        origin: tuple[int, int] = (0, 0),
        static: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        """Downscale ``x`` (B, T, H, W) -> (M, B, T, fH, fW); see :meth:`Downscaler.run`.

        A model of several variables (``card.channels``) takes ``x`` ``(B, T, C, H, W)``
        in the card's channel order and units and gives ``(M, B, T, C_out, fH, fW)``:
        ``C`` is the card's outputs then its inputs-only ``predictors``, ``C_out`` the
        outputs alone; :func:`xstochsr.downscale` on a Dataset arranges that
        (:mod:`xstochsr.joint`).

        Frames are processed one at a time with the GRU state carried, so splitting a
        series into time chunks (passing ``state`` on) gives bit-identical results.
        ``state`` is a tensor ``(M*B, width, H, W)`` on ``device``. ``origin`` is the
        global (row, column) of ``x[..., 0, 0]`` when ``x`` is a tile of a larger grid
        (:mod:`xstochsr.tiling`): the noise is keyed by global coarse cell.

        ``static`` ``(n, fH, fW)`` (shared) or ``(B, n, fH, fW)`` float: the static
        predictors listed in ``card.static``, in that order and in the card's units, on
        the fine grid; required by models that have them (normalised here with the
        card's mean and std). :func:`xstochsr.downscale` prepares it from
        ``static=`` (:mod:`xstochsr.static`).
        """
        import torch

        self.check_factor(factor)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        g = self.generator.to(device, memory_format=fmt).eval()
        members = [int(m) for m in members]
        x5 = self._channels_in(np.asarray(x, dtype=np.float32))
        nm, (nb, nt, nc, ny, nx) = len(members), x5.shape
        nco = g.config.out_channels
        xn = transforms.forward(x5, self.card.transform)
        xt = torch.from_numpy(np.ascontiguousarray(xn, dtype=np.float32)).to(device)
        xt = xt.unsqueeze(0).expand(nm, -1, -1, -1, -1, -1).reshape(nm * nb, nt, nc, ny, nx)
        constrained = bool(g.config.constraint)  # output already in physical units
        xp = None
        if constrained:
            xp = torch.from_numpy(np.ascontiguousarray(x5, dtype=np.float32)).to(device)
            xp = xp.unsqueeze(0).expand(nm, -1, -1, -1, -1, -1).reshape(nm * nb, nt, nc, ny,
                                                                          nx)
        f = self.card.factor
        st = self._static_tensor(static, nm, nb, ny * f, nx * f, device)
        out = np.empty((nm, nb, nt, nco, ny * f, nx * f), dtype=np.float32)
        h = state
        with torch.inference_mode():
            for i in range(nt):
                t = t0 + i
                noise = self._noise(seed, members, nb, batch_offset, t, (ny, nx), NOISE, device,
                                    origin)
                init = None
                if h is None:
                    init = self._noise(seed, members, nb, batch_offset, t, (ny, nx),
                                       INIT_NOISE, device, origin)
                y, h = g(xt[:, i : i + 1], None if noise is None else noise.unsqueeze(1), h, init,
                         **({"coarse": xp[:, i : i + 1], "transform": self.card.transform}
                            if constrained else {}), static=st)
                y = y[:, 0].float()  # (nm*nb, C, fH, fW)
                if not constrained:
                    y = transforms.inverse(y, transforms.leading(self.card.transform, nco))
                out[:, :, i] = y.reshape(nm, nb, nco, ny * f, nx * f).cpu().numpy()
        return (out if x.ndim == 5 else out[:, :, :, 0]), h

    def _channels_in(self, x: np.ndarray) -> np.ndarray:
        """``x`` as ``(B, T, C, H, W)``, checked against the network's input channels."""
        from ..errors import InvalidInputError

        nc = self.generator.config.in_channels
        if x.ndim == 4 and nc == 1:
            return x[:, :, None]
        if x.ndim == 5 and x.shape[2] == nc:
            return x
        if nc == 1:
            raise InvalidInputError(
                f"Model {self.name!r} downscales one variable: x must be (B, T, H, W), got "
                f"shape {x.shape}.")
        names = [c["name"] for c in self.card.inputs] or self.card.variables
        raise InvalidInputError(
            f"Model {self.name!r} takes {nc} variables at once ({names}): x must be "
            f"(B, T, {nc}, H, W) in that order, got shape {x.shape}. From xarray, pass the "
            "Dataset: xstochsr.downscale(ds, model=...).")

    def _static_tensor(self, static, nm, nb, fy, fx, device):
        """Normalise ``static`` with the card's statistics: ``(nm*nb, n, fy, fx)`` or None."""
        import torch

        from ..errors import InvalidInputError

        entries = self.card.static or []
        if not entries:
            if static is not None:
                raise InvalidInputError(
                    f"Model {self.name!r} takes no static predictors; drop static=.")
            return None
        names = [e["name"] for e in entries]
        if static is None:
            raise InvalidInputError(
                f"Model {self.name!r} needs static predictors {names} on the fine grid; "
                "pass them with static= (e.g. downscale(da, model=..., static=topo)).")
        a = np.asarray(static, dtype=np.float32)
        if a.ndim == 3:
            a = np.broadcast_to(a[None], (nb, *a.shape))
        if a.shape != (nb, len(entries), fy, fx):
            raise InvalidInputError(
                f"static has shape {np.shape(static)}; model {self.name!r} needs "
                f"({len(entries)}, {fy}, {fx}) or ({nb}, {len(entries)}, {fy}, {fx}) "
                f"(its predictors {names} on the fine grid).")
        mean = np.array([e["mean"] for e in entries], np.float32)[None, :, None, None]
        std = np.array([e["std"] for e in entries], np.float32)[None, :, None, None]
        a = (a - mean) / std
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)
        return t.unsqueeze(0).expand(nm, -1, -1, -1, -1).reshape(nm * nb, *t.shape[1:])

    # --- persistence --------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (card), atomically.

        Returns
        -------
        (weights_path, card_path)
        """
        from safetensors.torch import save

        from .._version import __version__

        weights, card_path = model_paths(path)
        state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        _check_finite(state, f"Model {self.card.name!r}", "It was not saved: retrain it "
                      "(or save an earlier checkpoint).")
        self.card.package_version = __version__
        self.card.weights_sha256 = ""
        blob = save(state, metadata={"format": FORMAT, "name": self.card.name,
                                     "card_sha256": _card_digest(self.card)})
        self.card.weights_sha256 = hashlib.sha256(blob).hexdigest()
        atomic_write_files({weights: blob, card_path: self.card.to_json().encode()})
        return weights, card_path

    @classmethod
    def load(cls, path: str | os.PathLike, *, expected_sha256: str | None = None) -> GANModel:
        """Load from ``<path>.safetensors`` + ``<path>.json`` (never unpickles).

        Parameters
        ----------
        path : path-like
            Either file, or the common stem.
        expected_sha256 : str, optional
            Hex digest the weights file must have (from ``data_registry.txt``).

        Raises
        ------
        WeightsIntegrityError
            Missing, corrupted or tampered weights (bad hash, unreadable safetensors,
            tensors that do not fit the card's architecture).
        ModelCardError
            Missing or invalid card.
        """
        import torch
        from safetensors.torch import load

        weights, card_path = model_paths(path)
        if not weights.is_file():
            raise WeightsIntegrityError(f"No weights file at {weights}.")
        if not card_path.is_file():
            raise ModelCardError(
                f"No model card at {card_path}; a model is saved as a .safetensors file "
                "and a .json card side by side: keep them together."
            )
        blob = weights.read_bytes()
        got = hashlib.sha256(blob).hexdigest()
        if expected_sha256 is not None and got != expected_sha256.removeprefix("sha256:"):
            raise WeightsIntegrityError(
                f"{weights} has sha256 {got}, but the registry lists {expected_sha256}: "
                "the file is corrupted or was modified. Delete it so it is fetched again "
                "(xstochsr.datasets.fetch re-downloads it)."
            )
        try:
            raw = json.loads(card_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelCardError(f"Model card {card_path} is not valid JSON: {err}.") from err
        card = ModelCard.from_dict(raw)  # schema and bounds
        cfg = check_architecture(card.architecture)
        tensors, meta = read_header(blob, weights)
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: tuple(v.shape) for k, v in Generator(cfg).state_dict().items()}
        found = {k: shape for k, (_, shape) in tensors.items()}
        if found != expected:
            diff = sorted(set(found) ^ set(expected)) or sorted(
                k for k in found if found[k] != expected[k])
            raise WeightsIntegrityError(
                f"The tensors in {weights} do not fit the architecture in {card_path} "
                f"(first differences: {diff[:3]}). Keep each model's .safetensors and .json "
                "together, or save the model again."
            )
        _check_pair(card, got, meta, weights, card_path)
        try:
            state = load(blob)
        except Exception as err:  # safetensors raises several kinds
            raise WeightsIntegrityError(
                f"{weights} is not a readable safetensors file ({err}); it is corrupted. "
                "Save or fetch the model again."
            ) from err
        _check_finite(state, weights, "Retrain the model or fetch it again.")
        gen = Generator(cfg)
        try:
            gen.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise WeightsIntegrityError(
                f"The tensors in {weights} do not fit the architecture in {card_path}: {err}"
            ) from err
        return cls(gen, card)


def _check_pair(card: ModelCard, weights_sha: str, meta: dict, weights: Path,
                card_path: Path) -> None:
    """Refuse weights and a card that were not saved together."""
    fix = ("They were not saved together (an interrupted save, or files copied from two "
           "models). Save the model again, or put the matching .json beside the weights.")
    name = meta.get("name")
    if meta.get("format") == FORMAT and name is not None and name != card.name:
        raise WeightsIntegrityError(
            f"{weights} holds the weights of model {name!r} but {card_path} describes "
            f"{card.name!r}. {fix}"
        )
    if card.weights_sha256 and card.weights_sha256 != weights_sha:
        raise WeightsIntegrityError(
            f"{card_path} vouches for weights with sha256 {card.weights_sha256[:12]}..., but "
            f"{weights} has {weights_sha[:12]}...: the weights are corrupted, or "
            f"{fix[0].lower()}{fix[1:]}"
        )
    want = meta.get("card_sha256")
    if want and want not in (_card_digest(card), _card_digest(card, with_scores=True)):
        raise WeightsIntegrityError(
            f"{weights} was saved with a different card than {card_path}. {fix}"
        )
