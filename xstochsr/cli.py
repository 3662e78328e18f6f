"""Command line: ``xstochsr demo | downscale | train | verify | regrid | models``.

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
    p.add_argument("--members", type=int, default=10,
                   help="ensemble members (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--model", default=None, help="model name or path (default: pretrained)")
    p.add_argument("--sample", default="meteosat_rain_rate",
                   help="bundled sample name (default: %(default)s; see xstochsr.list_samples())")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, members=args.members, seed=args.seed, model=args.model,
             sample=args.sample, echo=print)
    return 0


def _add_downscale(sub) -> None:
    p = sub.add_parser("downscale", help="downscale a netCDF file into an ensemble",
                       description="Read a coarse field from a netCDF file, downscale it and "
                       "write the ensemble (CF bounds, grid_mapping, the input's global "
                       "attributes plus history, zlib-compressed) to another netCDF file.")
    p.add_argument("input", help="netCDF file holding the coarse field")
    p.add_argument("output", help="netCDF file to write the ensemble to; a path ending in "
                   ".zarr is a zarr store written one time chunk at a time (one tile of "
                   "one frame at a time when the domain runs in tiles), resumable (rerun "
                   "the same command after an interruption)")
    p.add_argument("--var", default=None, help="variable (default: the only data variable)")
    p.add_argument("--factor", type=int, default=None,
                   help="refinement factor (default: the model's, else 8)")
    p.add_argument("--members", type=int, default=10,
                   help="ensemble members (default: %(default)s)")
    p.add_argument("--model", default=None, help="model name or path (default: chosen from "
                   "the variable's standard_name and units; see 'xstochsr models')")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: drawn, and stored in the output)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--time-chunk", type=int, default=None,
                   help="frames per chunk; the recurrent state is carried across chunks "
                        "(default: 16)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="sequences x members per model call, bounds memory (default: ~1 GiB)")
    p.add_argument("--memory-limit", default=None, metavar="BYTES",
                   help="memory one model call may use, e.g. 4GB or 512MiB; a larger domain "
                        "runs in overlapping tiles with the same result (default: a quarter "
                        "of this machine's memory)")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="network arithmetic: auto = bfloat16 only where the hardware has it "
                        "and the model was checked with it (default)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="force tile cores of N coarse cells per side")
    p.add_argument("--target-grid", default=None, metavar="GRID.nc",
                   help="netCDF file whose X/Y grid the ensemble is regridded onto")
    p.add_argument("--regrid-method", default=None,
                   choices=["conservative", "bilinear", "nearest"],
                   help="method for --target-grid (default: conservative for fluxes, "
                        "else bilinear)")
    p.add_argument("--regrid-input", action="store_true",
                   help="first regrid the input conservatively onto the model's native spacing")
    p.add_argument("--no-conserve", action="store_true",
                   help="do not force each fine block to average to its coarse cell")
    p.add_argument("--static", default=None, metavar="STATIC.nc",
                   help="netCDF file of the static fine fields (surface altitude...) a model "
                        "trained with them needs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing .zarr output instead of resuming it")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="compute on the running dask scheduler at ADDRESS, e.g. "
                        "tcp://host:8786 (the input and a .zarr output must be on storage "
                        "its workers reach; default: this machine)")
    p.add_argument("--scheduler-timeout", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for --scheduler to answer (default: 10)")
    p.set_defaults(func=_run_downscale)


def _open(path: str, what: str = "input"):
    """Open a netCDF file with CF coordinates decoded, or raise an error naming the path."""
    from pathlib import Path

    import xarray as xr

    from .errors import InvalidInputError

    if not Path(path).is_file():
        raise InvalidInputError(f"The {what} file {path!r} does not exist. Check the path.")
    try:
        return xr.open_dataset(path, decode_coords="all")
    except (OSError, ValueError) as err:
        raise InvalidInputError(
            f"Cannot open the {what} file {path!r} as netCDF ({err}). Pass a netCDF file."
        ) from err


def _pick(ds, var: str | None, path: str, flag: str = "--var"):
    from .errors import InvalidInputError

    names = [n for n in ds.data_vars if "grid_mapping_name" not in ds[n].attrs]
    var = var or (names[0] if len(names) == 1 else None)
    if var is None or var not in ds:
        raise InvalidInputError(f"Choose the variable with {flag}; {path} holds {names}.")
    return ds[var]


def _progress(args) -> bool | None:
    """Off with --no-progress; else None: tqdm shows a bar only on a terminal."""
    return False if args.no_progress else None


def _downscale_kwargs(args, target, static) -> dict:
    """Collect the ``downscale`` settings of the command line (one list for every format)."""
    return dict(factor=args.factor, members=args.members, model=args.model, seed=args.seed,
                device=args.device, time_chunk=args.time_chunk, batch_size=args.batch_size,
                target_grid=target, regrid_method=args.regrid_method,
                regrid_input=args.regrid_input, conserve=False if args.no_conserve else None,
                memory_limit=args.memory_limit, tile=args.tile, static=static,
                precision=args.precision)


def _scheduler(args):
    """Return a context with ``--scheduler``'s client as dask's default, else a no-op.

    Connects before anything is read or written, so a dead address leaves no output.
    """
    import contextlib

    from .parallel import CONNECT_TIMEOUT, connect

    if args.scheduler is None:
        return contextlib.nullcontext()
    timeout = CONNECT_TIMEOUT if args.scheduler_timeout is None else args.scheduler_timeout
    return connect(args.scheduler, timeout=timeout)


def _joint_model(model: str | None):
    """Return the model of ``--model`` if it takes several variables (a Dataset), else None."""
    if model is None:
        return None
    from .models.registry import load_model

    m = load_model(model)
    return m if getattr(m.card, "channels", None) else None


def _chunk_time(da, time_chunk: int | None):
    """Chunk ``da`` (or a Dataset) along time so ``downscale`` returns lazy output."""
    import xarray as xr

    from .api import DEFAULT_TIME_CHUNK
    from .grid import find_axes

    first = da[next(iter(da.data_vars))] if isinstance(da, xr.Dataset) else da
    t = find_axes(first).t
    if t is None:
        return da.chunk()
    return da.chunk({t: time_chunk or DEFAULT_TIME_CHUNK})


def _run_downscale(args) -> int:
    with _scheduler(args):
        return _downscale_file(args)


def _downscale_file(args) -> int:
    import xarray as xr

    from .api import downscale
    from .cf_output import netcdf_encoding, to_cf_dataset
    from .io import write_netcdf

    target = None
    if args.target_grid:
        with _open(args.target_grid, "target grid") as tds:
            target = tds.load()
    static = None
    if args.static:
        with _open(args.static, "static field") as sds:
            static = sds.load()
    joint = _joint_model(args.model)
    if args.output.rstrip("/").endswith(".zarr"):
        if joint is not None:
            from .errors import InvalidInputError

            raise InvalidInputError(
                f"Model {joint.name!r} takes several variables (a Dataset); write its "
                "ensemble to a netCDF file (.nc), or call xstochsr.downscale_to_zarr on "
                "each output from Python.")
        return _downscale_to_zarr(args, target, static)
    with _open(args.input) as ds:
        # a model of several variables (or with coarse predictors) takes the Dataset
        da = ds.load() if joint is not None else _pick(ds, args.var, args.input).load()
        global_attrs = dict(ds.attrs)
    if args.scheduler is not None:  # lazy: the tasks run on the scheduler's workers
        da = _chunk_time(da, args.time_chunk)
    kw = _downscale_kwargs(args, target, static)
    if joint is not None:
        kw["model"] = joint
    ens = downscale(da, progress=_progress(args), **kw)
    if args.scheduler is not None:
        ens = ens.compute()
    if isinstance(ens, xr.Dataset):  # one CF variable per downscaled variable
        out = xr.merge([to_cf_dataset(ens[v], attrs=global_attrs) for v in ens.data_vars],
                       combine_attrs="override")
        write_netcdf(out, args.output, encoding=netcdf_encoding(out))
        print(f"wrote {args.output}: {dict(ens.sizes)} ({', '.join(map(str, ens.data_vars))})")
        return 0
    out = to_cf_dataset(ens, attrs=global_attrs)
    write_netcdf(out, args.output, encoding=netcdf_encoding(out))
    print(f"wrote {args.output}: {dict(ens.sizes)} ({ens.attrs['history'].splitlines()[-1]})")
    return 0


def _downscale_to_zarr(args, target, static) -> int:
    """``xstochsr downscale in.nc out.zarr``: region by region, resumable."""
    from .streaming import downscale_to_zarr, store_record

    with _open(args.input) as ds:
        da = _pick(ds, args.var, args.input)  # read chunk by chunk while writing
        downscale_to_zarr(da, args.output, overwrite=args.overwrite,
                          progress=_progress(args), attrs=dict(ds.attrs),
                          **_downscale_kwargs(args, target, static))
    done = store_record(args.output)
    print(f"wrote {args.output}: {done['status']}, {len(done['done'])} region(s)")
    return 0


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="score an ensemble file against the truth",
                       description="Score an ensemble (with a 'realization' dimension) "
                       "against observations on the same grid and print every score of "
                       "xstochsr.verify; optionally write them to netCDF.")
    p.add_argument("ensemble", help="netCDF file with the ensemble")
    p.add_argument("truth", help="netCDF file with the observations (same grid)")
    p.add_argument("--var", default=None, help="ensemble variable (default: the only one)")
    p.add_argument("--truth-var", default=None,
                   help="observation variable (default: --var, else the only one)")
    p.add_argument("--member-dim", default="realization",
                   help="member dimension of the ensemble (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="SCORES.nc",
                   help="also write the scores to this netCDF file")
    p.set_defaults(func=_run_verify)


def _run_verify(args) -> int:
    from .grid import match_grid
    from .io import write_netcdf
    from .metrics import verify

    with _open(args.ensemble, "ensemble") as eds:
        ens = _pick(eds, args.var, args.ensemble).load()
    with _open(args.truth, "truth") as tds:
        name = args.truth_var or (args.var if args.var in tds else None)
        obs = _pick(tds, name, args.truth, "--truth-var").load()
    obs = match_grid(obs, ens)
    scores = verify(ens, obs, member_dim=args.member_dim)
    for name, v in scores.data_vars.items():
        if v.ndim == 0:
            print(f"{name:<28} {float(v):.4g} {v.attrs.get('units', '')}".rstrip())
    if args.out:
        write_netcdf(scores, args.out)
        print(f"wrote {args.out}")
    return 0


def _add_regrid(sub) -> None:
    p = sub.add_parser("regrid", help="regrid a netCDF file onto another file's grid",
                       description="Regrid every variable of a netCDF file onto the X/Y grid "
                       "of another (conservative for fluxes and precipitation, else "
                       "bilinear) and write a CF file with bounds.")
    p.add_argument("input", help="netCDF file to regrid")
    p.add_argument("target", help="netCDF file whose X/Y grid to regrid onto")
    p.add_argument("output", help="netCDF file to write")
    p.add_argument("--var", default=None, help="regrid only this variable (default: all)")
    p.add_argument("--method", default=None, choices=["conservative", "bilinear", "nearest"],
                   help="regridding method (default: per variable)")
    p.add_argument("--backend", default=None, choices=["xesmf", "xarray-regrid", "pyresample"],
                   help="regridding library (default: the best available)")
    p.set_defaults(func=_run_regrid)


def _run_regrid(args) -> int:
    from .cf_output import drop_stale_bounds, global_attrs, netcdf_encoding
    from .io import write_netcdf
    from .regrid import regrid_dataset

    with _open(args.target, "target grid") as tds:
        target = tds.load()
    with _open(args.input) as ds:
        src = _pick(ds, args.var, args.input) if args.var else ds
        attrs = dict(ds.attrs)
        out = regrid_dataset(src.load(), target, method=args.method, backend=args.backend)
    first = next(iter(out.data_vars.values()))
    out.attrs = global_attrs(first, {**attrs, **out.attrs})
    out = drop_stale_bounds(out)
    write_netcdf(out, args.output, encoding=netcdf_encoding(out))
    print(f"wrote {args.output}: {dict(out.sizes)}")
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
    _add_verify(sub)
    _add_regrid(sub)
    _add_models(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from .errors import XStochSRError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XStochSRError as err:
        print(f"xstochsr: error: {as_cli_message(err)}", file=sys.stderr)
        return 2


#: Python keyword arguments named in error messages -> the command-line flags.
_FLAGS = ("model", "factor", "members", "seed", "device", "time_chunk", "batch_size",
          "target_grid", "regrid_input", "regrid_method", "conserve", "var", "memory_limit",
          "tile", "overwrite")


def as_cli_message(err: Exception) -> str:
    """Turn Python spellings in an error message into flags.

    ``pass model=...`` becomes ``pass --model ...``, ``regrid_input=True`` becomes
    ``--regrid-input``.
    """
    import re

    msg = str(err)
    for kw in _FLAGS:
        flag = "--" + kw.replace("_", "-")
        msg = re.sub(rf"\b{kw}=True\b", flag, msg)
        msg = re.sub(rf"\b{kw}=False\b", f"--no-{kw.replace('_', '-')}", msg)
        msg = re.sub(rf"(?<![\w.-]){kw}=", f"{flag} ", msg)
    return re.sub(r"downscale\(\.\.\., (--[\w-]+)\)", r"xstochsr downscale ... \1", msg)


if __name__ == "__main__":
    raise SystemExit(main())
