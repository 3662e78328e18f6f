"""Helpers shared by ``benchmarks/quality.py`` and ``benchmarks/speed.py``.

Plain-text tables, atomic CSV output and a one-line description of the machine, so
that every printed table says where and when it was made.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path


def machine_line() -> str:
    """Date, CPU, cores, memory, load and library versions, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = total_memory_gb()
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load ?"
    import torch

    import xstochsr

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}; {cpu}, {os.cpu_count()} cores, {mem:.0f} GB RAM, {load}; "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"xstochsr {xstochsr.__version__}")


def total_memory_gb() -> float:
    """Physical memory in GB (1e9 bytes); NaN when unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return math.nan


def _cell(v, fmt: str) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else format(v, fmt)
    return str(v)


def format_table(rows: Sequence[dict], columns: Sequence[str], *,
                 formats: dict[str, str] | None = None, default_fmt: str = ".4f") -> str:
    """Fixed-width text table: one line per row, ``columns`` in order.

    Missing values print as ``-``; floats use ``formats[column]`` or ``default_fmt``.
    """
    formats = formats or {}
    cells = [[_cell(r[c], formats.get(c, default_fmt)) if r.get(c) is not None else "-"
              for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    first = lambda i, s: s.ljust(widths[i]) if i == 0 else s.rjust(widths[i])  # noqa: E731
    head = "  ".join(first(i, c) for i, c in enumerate(columns))
    lines = [head, "-" * len(head)]
    lines += ["  ".join(first(i, s) for i, s in enumerate(line)) for line in cells]
    return "\n".join(lines)


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV atomically (a failed run never leaves a half file)."""
    from xstochsr.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if r.get(c) is None else r[c]) for c in columns})
    return Path(path)
