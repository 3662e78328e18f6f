"""Write docs/api.md, the API reference, from the public names and their docstrings.

Every name in the ``__all__`` of the public modules, with its signature and numpydoc
docstring, plus the ``.sr`` accessor and the exception tree. tests/test_api_docs.py
fails when docs/api.md is stale.

    python scripts/render_api_docs.py
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"

SECTIONS = [
    ("Top level: `xstochsr`", "xstochsr",
     ["downscale", "load_model", "list_models", "train", "TrainConfig", "GANModel",
      "verify"]),
    ("Models: `xstochsr.models`", "xstochsr.models.base", ["ModelCard", "Downscaler"]),
    ("", "xstochsr.models.registry", None),
    ("", "xstochsr.models.baselines", ["get_baseline"]),
    ("Verification: `xstochsr.metrics`", "xstochsr.metrics", None),
    ("Plots: `xstochsr.plot`", "xstochsr.plot", None),
    ("Regridding: `xstochsr.regrid`", "xstochsr.regrid",
     ["regrid", "regrid_dataset", "native_grid", "grid_spacing", "check_spacing",
      "default_method", "GridSpacingWarning"]),
    ("Data: `xstochsr.datasets`", "xstochsr.datasets",
     ["fetch", "list_samples", "open_sample", "registry_path", "file_hash", "registry"]),
    ("Grids: `xstochsr.grid`", "xstochsr.grid", ["find_axes", "coarsen_field", "match_grid"]),
    ("Tiled inference: `xstochsr.tiling`", "xstochsr.tiling",
     ["tile_borders", "receptive_field", "working_set"]),
    ("Streaming to zarr: `xstochsr.streaming`", "xstochsr.streaming",
     ["downscale_to_zarr", "store_record"]),
    ("Dask: torch threads in tasks, scheduler address: `xstochsr.parallel`",
     "xstochsr.parallel", ["torch_threads", "configured_threads", "connect"]),
]


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _entry(qualname: str, obj, level: str = "###") -> list[str]:
    kind = "class" if inspect.isclass(obj) else "function"
    sig = _signature(obj)
    doc = inspect.getdoc(obj) or "(no docstring)"
    return [f"{level} `{qualname}`", "", "```python", f"{kind} {qualname}{sig}", "```", "",
            "```text", doc, "```", ""]


def _accessor() -> list[str]:
    from xstochsr.accessor import SRAccessor

    out = ["## The `.sr` accessor", "",
           "`import xstochsr` registers `DataArray.sr`. Each method calls the plain function "
           "named in its docstring.", "", "| method | what it does |", "|---|---|"]
    for name, fn in inspect.getmembers(SRAccessor, inspect.isfunction):
        if name.startswith("_"):
            continue
        first = (inspect.getdoc(fn) or "").splitlines()[0] if inspect.getdoc(fn) else ""
        sig = _signature(fn).replace("(self, ", "(").replace("(self)", "()")
        out.append(f"| `da.sr.{name}{sig}` | {first.replace('|', '/')} |")
    return [*out, ""]


def _errors() -> list[str]:
    from xstochsr import errors

    out = ["## Exceptions: `xstochsr.errors`", "",
           "Every error xstochsr raises derives from `XStochSRError`; each also derives from "
           "the built-in it refines (e.g. `ValueError`), so existing `except` clauses work.",
           "", "```text"]

    def walk(cls, depth):
        bases = [b.__name__ for b in cls.__bases__ if b.__module__ == "builtins"]
        extra = f"  ({', '.join(bases)})" if bases else ""
        out.append("    " * depth + cls.__name__ + extra)
        for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
            if sub.__module__ == errors.__name__:
                walk(sub, depth + 1)

    walk(errors.XStochSRError, 0)
    return [*out, "```", ""]


def rendered() -> str:
    """The whole of docs/api.md."""
    lines = ["# API reference", "",
             "Generated from the docstrings by `scripts/render_api_docs.py`; do not edit. "
             "Shapes of tensors and arrays are given in the docstrings.", ""]
    lines += _accessor()
    for title, modname, names in SECTIONS:
        mod = importlib.import_module(modname)
        if title:
            lines += [f"## {title}", ""]
        short = modname if modname != "xstochsr" else "xstochsr"
        for name in names if names is not None else mod.__all__:
            obj = getattr(mod, name)
            if not callable(obj):
                continue
            lines += _entry(f"{short}.{name}", obj)
    lines += _errors()
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    from xstochsr.io import atomic_write_bytes

    atomic_write_bytes(DOC, rendered().encode())
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
