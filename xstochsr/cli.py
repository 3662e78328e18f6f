"""Command line: ``xstochsr demo | downscale | train | models``.

``python -m xstochsr ...`` is the same; ``torchrun --nproc_per_node=2 -m xstochsr train ...``
trains data-parallel.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="downscale a bundled real sample with the pretrained model",
                       description="Downscale the bundled Meteosat rain-rate sample (coarsened "
                       "by 8) with the pretrained model, write a netCDF ensemble and a PNG, "
                       "and print the scores beside bilinear interpolation and RainFARM.")
    p.add_argument("--out", default="xstochsr-demo", help="output folder (default: %(default)s)")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model name or path (default: pretrained)")
    p.add_argument("--sample", default="meteosat_rain_rate", help="sample name")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, members=args.members, seed=args.seed, model=args.model,
             sample=args.sample, echo=print)
    return 0


def _add_downscale(sub) -> None:
    p = sub.add_parser("downscale", help="downscale a netCDF file into an ensemble",
                       description="Read a coarse field from a netCDF file, downscale it and "
                       "write the ensemble (with CF bounds) to another netCDF file.")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--var", default=None, help="variable (default: the only data variable)")
    p.add_argument("--factor", type=int, default=None,
                   help="refinement factor (default: the model's, else 8)")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--model", default=None, help="model name or path (default: chosen from "
                   "the variable's standard_name and units)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--time-chunk", type=int, default=None)
    p.set_defaults(func=_run_downscale)


def _run_downscale(args) -> int:
    import xarray as xr

    from .api import downscale
    from .errors import InvalidInputError
    from .grid import add_bounds
    from .io import write_netcdf

    with xr.open_dataset(args.input, decode_coords="all") as ds:
        names = list(ds.data_vars)
        var = args.var or (names[0] if len(names) == 1 else None)
        if var is None or var not in ds:
            raise InvalidInputError(
                f"Choose the variable with --var; {args.input} holds {names}."
            )
        da = ds[var].load()
    ens = downscale(da, factor=args.factor, members=args.members, model=args.model,
                    seed=args.seed, device=args.device, time_chunk=args.time_chunk,
                    progress=True)
    out = add_bounds(ens)
    write_netcdf(out, args.output)
    print(f"wrote {args.output}: {dict(ens.sizes)} ({ens.attrs['history'].splitlines()[-1]})")
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the models and what each expects")
    p.set_defaults(func=_run_models)


def _run_models(args) -> int:
    from .models.registry import describe_models

    for r in describe_models():
        print(f"{r['name']:<16} {r['kind']:<14} {r['standard_name'] or 'any field':<28} "
              f"{r['units'] or 'any units':<12} factor {r['factor'] or 'any'}")
    return 0


def _add_train(sub) -> None:
    from .training.cli import add_parser

    add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``xstochsr`` argument parser."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="xstochsr",
        description="Stochastic super-resolution of time-evolving atmospheric fields.",
    )
    parser.add_argument("--version", action="version", version=f"xstochsr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    _add_downscale(sub)
    _add_train(sub)
    _add_models(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from .errors import XStochSRError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XStochSRError as err:
        print(f"xstochsr: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
