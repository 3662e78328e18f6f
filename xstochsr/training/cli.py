"""``xstochsr train``: train a model on a netCDF file from the command line.

::

    xstochsr train data.nc --var precip --factor 8 --out model_dir --steps 3000 --seed 0
    xstochsr train data.nc --var rain_rate --predictor ua --predictor va --out model_dir
    torchrun --nproc_per_node=2 -m xstochsr train data.nc --var precip --out model_dir

writes ``model_dir/<name>.safetensors`` + ``.json`` (load with ``xstochsr.load_model``),
``model_dir/history.nc`` (losses and validation scores) and checkpoints under
``model_dir/checkpoints`` (continue with ``--resume model_dir/checkpoints``).
Any :class:`~xstochsr.training.config.TrainConfig` field can be set with
``--set name=value`` (repeatable), e.g. ``--set batch_size=4 --set objective=mse``, or
``--set 'objective={"wgan-gp": 1, "crps": 1}' --set constraint=multiplicative`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

__all__ = ["add_parser", "main"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``train`` sub-command on an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "train", help="train a generator on your own high-resolution data",
        description="Train the recurrent stochastic generator on fine sequences in a netCDF "
                    "file (coarse input made by block averaging) and save the model.")
    p.add_argument("data", help="netCDF file of fine sequences (time, y, x)")
    p.add_argument("--var", default=None, help="variable (default: the only 3-D one)")
    p.add_argument("--factor", type=int, default=8, help="downscaling factor (default 8)")
    p.add_argument("--out", required=True, help="folder for the model, history and checkpoints")
    p.add_argument("--coarse", default=None,
                   help="netCDF file of the time-aligned coarse field (MOS pairs); default: "
                        "block-average the fine field")
    p.add_argument("--coarse-var", default=None, help="variable of --coarse")
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"],
                   help="network and schedule size (default: %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="generator updates")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: drawn)")
    p.add_argument("--resume", default=None, help="checkpoint folder or file to continue")
    p.add_argument("--init", default=None,
                   help="pretrained model (name or path) to fine-tune, e.g. rain-x8")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--name", default=None, help="model name (default: <var>-x<factor>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any TrainConfig field (value parsed as JSON, else a string)")
    p.add_argument("--static", action="append", default=[], metavar="NAME_OR_FILE",
                   help="static fine predictor: a variable of the data file (e.g. "
                        "surface_altitude) or a netCDF file of them (repeatable)")
    p.add_argument("--predictor", dest="predictors", action="append", default=[],
                   metavar="NAME",
                   help="inputs-only coarse predictor: a variable of the data file the "
                        "generator sees beside --var but does not downscale (e.g. the wind "
                        "steering the rain; repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)
    return p


def _parse_overrides(items: list[str]) -> dict:
    from ..errors import InvalidInputError

    out = {}
    for item in items:
        if "=" not in item:
            raise InvalidInputError(f"--set expects KEY=VALUE, got {item!r}.")
        key, val = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(val)
        except json.JSONDecodeError:
            out[key.strip()] = val
    return out


def main(args: argparse.Namespace) -> int:
    """Run ``xstochsr train`` with parsed ``args``; returns the exit status."""
    import xarray as xr

    from ..io import write_netcdf
    from .loop import train

    overrides = _parse_overrides(args.overrides)
    if args.no_progress:
        overrides["progress"] = False
    out = Path(args.out)
    coarse = None
    if args.coarse:
        with xr.open_dataset(args.coarse) as cds:
            names = list(cds.data_vars)
            cvar = args.coarse_var or args.var or (names[0] if len(names) == 1 else None)
            coarse = cds[cvar].load()
    with xr.open_dataset(args.data) as ds:
        ds = ds.load()
    static = []
    for item in args.static:  # a file of static fields, or a variable of the data
        if Path(item).is_file():
            with xr.open_dataset(item) as sds:
                static.append(sds.load())
        else:
            static.append(item)
    model = train(ds, args.var, args.factor, preset=args.preset, steps=args.steps,
                  seed=args.seed, resume=args.resume, checkpoint_dir=out / "checkpoints",
                  device=args.device, coarse=coarse, init=args.init, static=static or None,
                  predictors=args.predictors or None, **overrides)
    if int(os.environ.get("RANK", "0")) == 0:
        if args.name:
            model.card.name = args.name
        weights, card = model.save(out / model.card.name)
        write_netcdf(model.history, out / "history.nc")  # atomic: never a half file
        last = {k: float(v[-1]) for k, v in model.history.data_vars.items() if v.size}
        print(f"xstochsr: saved {weights} and {card.name} after {model.card.training['steps']} "
              f"steps; last values: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()
                                                  if k != "wall_time"))
    return 0
