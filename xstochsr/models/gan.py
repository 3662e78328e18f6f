"""A trained generator with its card: the model object users load, run and save.

Weights are stored as safetensors (never pickle) beside a JSON model card::

    model.save("runs/rain-x8")        # writes rain-x8.safetensors and rain-x8.json
    model = xstochsr.load_model("runs/rain-x8.safetensors")

Both files are written to temporary names and renamed into place, so a failed save
never leaves a half file where a good one was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelCardError, WeightsIntegrityError
from ..io import atomic_write_bytes
from . import transforms
from .base import INIT_NOISE, NOISE, Downscaler, ModelCard, member_rng
from .generator import Generator, GeneratorConfig

__all__ = ["GANModel", "model_paths"]


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

    def __init__(self, generator: Generator, card: ModelCard):
        cfg = generator.config
        if card.architecture and GeneratorConfig.from_dict(card.architecture) != cfg:
            raise ModelCardError("The card's architecture does not match the generator's config.")
        card.architecture = cfg.to_dict()
        card.factor = cfg.factor
        card.kind = "generator"
        self.generator = generator
        self.card = card
        self.stochastic = cfg.noise_channels > 0
        self.history = None

    # --- inference ----------------------------------------------------------------------
    def _noise(self, seed, members, nb, batch_offset, t, shape, stream, device):
        import torch

        nz = self.generator.config.noise_channels
        if nz == 0:
            return None
        arr = np.empty((len(members), nb, nz, *shape), dtype=np.float32)
        for i, m in enumerate(members):
            for b in range(nb):
                rng = member_rng(seed, m, batch_offset + b, t, stream)
                arr[i, b] = rng.standard_normal((nz, *shape), dtype=np.float32)
        return torch.from_numpy(arr.reshape(len(members) * nb, nz, *shape)).to(device)

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
        """Downscale ``x`` (B, T, H, W) -> (M, B, T, fH, fW); see :meth:`Downscaler.run`.

        Frames are processed one at a time with the GRU state carried, so splitting a
        series into time chunks (passing ``state`` on) gives bit-identical results.
        ``state`` is a tensor ``(M*B, width, H, W)`` on ``device``.
        """
        import torch

        self.check_factor(factor)
        g = self.generator.to(device).eval()
        members = [int(m) for m in members]
        nm, (nb, nt, ny, nx) = len(members), x.shape
        xn = transforms.forward(np.asarray(x, dtype=np.float32), self.card.transform)
        xt = torch.from_numpy(np.ascontiguousarray(xn, dtype=np.float32)).to(device)
        xt = xt.unsqueeze(0).expand(nm, -1, -1, -1, -1).reshape(nm * nb, nt, 1, ny, nx)
        constrained = bool(g.config.constraint)  # output already in physical units
        xp = None
        if constrained:
            xp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
            xp = xp.unsqueeze(0).expand(nm, -1, -1, -1, -1).reshape(nm * nb, nt, 1, ny, nx)
        f = self.card.factor
        out = np.empty((nm, nb, nt, ny * f, nx * f), dtype=np.float32)
        h = state
        with torch.inference_mode():
            for i in range(nt):
                t = t0 + i
                noise = self._noise(seed, members, nb, batch_offset, t, (ny, nx), NOISE, device)
                init = None
                if h is None:
                    init = self._noise(seed, members, nb, batch_offset, t, (ny, nx),
                                       INIT_NOISE, device)
                y, h = g(xt[:, i : i + 1], None if noise is None else noise.unsqueeze(1), h, init,
                         **({"coarse": xp[:, i : i + 1], "transform": self.card.transform}
                            if constrained else {}))
                y = y[:, 0, 0].float()
                if not constrained:
                    y = transforms.inverse(y, self.card.transform)
                out[:, :, i] = y.reshape(nm, nb, ny * f, nx * f).cpu().numpy()
        return out, h

    # --- persistence --------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (card), atomically.

        Returns
        -------
        (weights_path, card_path)
        """
        from safetensors.torch import save

        from .. import __version__

        weights, card_path = model_paths(path)
        self.card.package_version = __version__
        state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        blob = save(state, metadata={"format": "xstochsr-generator", "name": self.card.name})
        atomic_write_bytes(weights, blob)
        atomic_write_bytes(card_path, self.card.to_json().encode())
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
        import hashlib

        from safetensors import SafetensorError
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
        if expected_sha256 is not None:
            got = hashlib.sha256(blob).hexdigest()
            if got != expected_sha256.removeprefix("sha256:"):
                raise WeightsIntegrityError(
                    f"{weights} has sha256 {got}, but the registry lists {expected_sha256}: "
                    "the file is corrupted or was modified. Delete it so it is fetched again "
                    "(xstochsr.datasets.fetch re-downloads it)."
                )
        try:
            card = ModelCard.from_dict(json.loads(card_path.read_text()))
        except json.JSONDecodeError as err:
            raise ModelCardError(f"Model card {card_path} is not valid JSON: {err}.") from err
        try:
            state = load(blob)
        except (SafetensorError, Exception) as err:  # safetensors raises several kinds
            raise WeightsIntegrityError(
                f"{weights} is not a readable safetensors file ({err}); it is corrupted. "
                "Save or fetch the model again."
            ) from err
        gen = Generator(GeneratorConfig.from_dict(card.architecture))
        try:
            gen.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise WeightsIntegrityError(
                f"The tensors in {weights} do not fit the architecture in {card_path}: {err}"
            ) from err
        return cls(gen, card)
