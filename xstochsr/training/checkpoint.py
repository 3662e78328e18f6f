"""Training checkpoints.

A checkpoint of step k is two files in the checkpoint folder:
  ckpt-0000100.safetensors  generator, critic, optimiser tensors, torch RNG states, history
  ckpt-0000100.json         step, config, seed, numpy RNG states, optimiser settings,
                            transform, and the sha256 of the .safetensors file
Both are written atomically (temporary file, then rename), tensors first, so a JSON file
exists only once its tensors are complete; the hash ties the pair. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io import atomic_write_bytes

#: ``format`` field of a checkpoint's JSON.
FORMAT = "xstochsr-checkpoint"
VERSION = 1


def checkpoint_paths(folder: str | os.PathLike, step: int) -> tuple[Path, Path]:
    """``(tensors, json)`` paths of the checkpoint of ``step`` in ``folder``."""
    stem = Path(folder) / f"ckpt-{int(step):07d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def _complete(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("ckpt-*.json")
                  if p.with_suffix(".safetensors").is_file())


def find_checkpoint(path: str | os.PathLike) -> Path:
    """Find the JSON file of a checkpoint given as a file (either one) or a folder (latest).

    Raises
    ------
    CheckpointError
        Nothing usable at ``path``.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        found = _complete(p)
        if not found:
            raise CheckpointError(
                f"No complete checkpoint (ckpt-*.json with its .safetensors) in {p}."
            )
        return found[-1]
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix(".json")
    elif not p.suffix:
        p = p.with_name(p.name + ".json")
    if not p.is_file() or not p.with_suffix(".safetensors").is_file():
        raise CheckpointError(
            f"No checkpoint at {path}: resume= takes a checkpoint folder or one of its "
            "ckpt-*.json / ckpt-*.safetensors files."
        )
    return p


def write_checkpoint(folder: str | os.PathLike, step: int, tensors: dict[str, torch.Tensor],
                     meta: dict[str, Any]) -> Path:
    """Write the checkpoint of ``step``; returns the JSON path."""
    from safetensors.torch import save

    tpath, jpath = checkpoint_paths(folder, step)
    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    blob = save(clean, metadata={"format": FORMAT, "step": str(int(step))})
    atomic_write_bytes(tpath, blob)
    meta = {**meta, "format": FORMAT, "version": VERSION, "step": int(step),
            "tensors_file": tpath.name, "tensors_sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_bytes(jpath, json.dumps(meta, indent=1, sort_keys=True).encode())
    return jpath


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint (see :func:`find_checkpoint` for ``path``); returns (tensors, meta).

    Raises
    ------
    CheckpointError
        Unreadable JSON, a different format, or tensors that fail the hash check.
    """
    from safetensors.torch import load

    jpath = find_checkpoint(path)
    try:
        meta = json.loads(jpath.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"Checkpoint {jpath} is not readable JSON: {err}") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{jpath} is not an xstochsr training checkpoint.")
    tpath = jpath.with_suffix(".safetensors")
    blob = tpath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("tensors_sha256"):
        raise CheckpointError(
            f"{tpath} does not match {jpath.name} (sha256 differs): the pair is corrupted or "
            "mixed up. Resume from an older checkpoint in the same folder."
        )
    try:
        tensors = load(blob)
    except Exception as err:  # safetensors raises several kinds
        raise CheckpointError(f"{tpath} is not a readable safetensors file: {err}") from err
    meta["path"] = str(jpath)
    return tensors, meta


def prune_checkpoints(folder: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest complete checkpoints in ``folder``."""
    if keep <= 0:
        return
    for j in _complete(Path(folder))[:-keep]:
        j.unlink(missing_ok=True)
        j.with_suffix(".safetensors").unlink(missing_ok=True)


def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimiser's state dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{prefix}/state/{idx}/{key}"] = val
            else:
                plain.setdefault(str(idx), {})[key] = val
    groups = []
    for g in sd["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    return tensors, {"type": type(opt).__name__, "param_groups": groups, "plain_state": plain}


def optimizer_from_flat(opt: torch.optim.Optimizer, prefix: str, tensors: dict, meta: dict) -> None:
    """Load what :func:`optimizer_to_flat` wrote into ``opt`` (of the same type)."""
    if meta.get("type") != type(opt).__name__:
        raise CheckpointError(
            f"The checkpoint holds a {meta.get('type')} optimiser state, not {type(opt).__name__}."
        )
    state: dict[int, dict] = {}
    head = prefix + "/state/"
    for name, val in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split("/", 1)
            state.setdefault(int(idx), {})[key] = val
    for idx, st in meta.get("plain_state", {}).items():
        state.setdefault(int(idx), {}).update(st)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})
