"""Rewrite one managed block of ``data_registry.txt`` and copy the registry into the package.

The scripts that ship files (``make_qg_sequences.py --sample``, ``make_blizzard_sample.py``,
``evaluate_pretrained.py --ship``) each own a block between a ``# >>> ...`` and a
``# <<< ...`` line; every other line is kept. Not part of the package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_block(begin: str, end: str, block: str, root: Path = ROOT) -> None:
    """Replace the block from the line starting with ``begin`` to ``end`` by ``block``.

    ``block`` (its own markers included, ending with a newline) is appended after a blank
    line when the registry has no such block yet. Both registry files are written
    atomically; the packaged copy is byte for byte the root one.
    """
    from xstochsr.io import atomic_write_bytes

    reg = root / "data_registry.txt"
    text = reg.read_text(encoding="utf-8")
    if begin in text and end in text:
        i = text.index(begin)
        j = text.index(end, i) + len(end)
        text = text[:i] + block + text[j + (text[j:j + 1] == "\n"):]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic_write_bytes(reg, text.encode("utf-8"))
    atomic_write_bytes(root / "xstochsr" / "data" / "registry.txt", reg.read_bytes())


def register_file(path: Path, begin: str, end: str, comments: list[str],
                  root: Path = ROOT) -> str:
    """Write the block of one shipped file: ``begin``, ``comments``, its entry, ``end``.

    The entry is ``<path relative to root> sha256:<hex>``; returns the hex digest.
    """
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    key = path.resolve().relative_to(root).as_posix()
    write_block(begin, end, "\n".join([begin, *comments, f"{key} sha256:{sha}", end]) + "\n",
                root)
    return sha


def save_sample(ds, out: Path, encoding: dict, register: Callable[[], str] | None) -> None:
    """Write a sample netCDF atomically, say so, then ``register()`` it unless None."""
    from xstochsr.io import write_netcdf

    write_netcdf(ds, out, encoding=encoding)
    print(f"wrote {out}: {dict(ds.sizes)}, {out.stat().st_size / 1e3:.0f} kB")
    if register is not None:
        sha = register()
        print(f"registered (sha256 {sha[:12]}...) in data_registry.txt and the package copy")
