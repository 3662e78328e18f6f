"""A real case for the joint wind model (issue 12): the January 1996 blizzard at 500 hPa.

The shipped sample ``blizzard_1996_500hpa`` (real six-hourly analyses, 1.25 x 2.5 deg;
``scripts/make_blizzard_sample.py``) is regridded conservatively onto the model's native
coarse spacing (``xstochsr.regrid.native_grid``; for ``qg-uv-x8`` 250 km, i.e. 2.25 deg
on a latitude/longitude grid), downscaled jointly by 8 with ``--members`` members, and
checked where there is no fine truth to compare with:

* block means: each member's 8 x 8 block means of u and v against the coarse input
  (the additive layer makes them equal to rounding);
* block edges: the block-edge ratio of u and v (about 1 for a field without block
  structure; the additive layer's block-constant corrections would raise it);
* kinematics: each member's vorticity and divergence (spherical metric terms,
  :func:`xstochsr.metrics.vorticity` / ``divergence``) averaged over every 8 x 8 block,
  against the vorticity and divergence of the coarse input itself (correlation and RMSE
  relative to the input's RMS), beside bilinear interpolation of u and v, which adds no
  small scales; and how much vorticity the members add below the coarse scale.

Writes ``--figure`` (the input and three members' vorticity and speed at ``--when``)
and prints a Markdown table for ``docs/physics.md``.

    python scripts/real_case_blizzard.py --model qg-uv-x8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

VARS = ["ua", "va"]
FRAMES = slice("1996-01-06T00", "1996-01-08T18")  # the storm over the eastern US


def coarse_input(model, frames=FRAMES) -> xr.Dataset:
    """The sample's winds over ``frames`` on the model's native coarse grid."""
    from xstochsr import datasets
    from xstochsr.regrid import native_grid, regrid

    ds = datasets.open_sample("blizzard_1996_500hpa")[VARS].sel(time=frames)
    g = model.card.native_grid_spacing
    if not g:
        return ds
    target = native_grid(ds, g["value"], g["units"])
    return xr.Dataset({v: regrid(ds[v], target, method="conservative") for v in VARS},
                      attrs=ds.attrs)


def _blocks(da: xr.DataArray, f: int) -> xr.DataArray:
    y, x = da.dims[-2:]
    return da.coarsen({y: f, x: f}, boundary="trim").mean()


def _interior(da: xr.DataArray) -> xr.DataArray:
    """Drop the outermost row and column (one-sided differences there)."""
    y, x = da.dims[-2:]
    return da.isel({y: slice(1, -1), x: slice(1, -1)})


def kinematics_check(ens: xr.Dataset, coarse: xr.Dataset, f: int) -> dict:
    """Block means and block-averaged vorticity/divergence of ``ens`` against ``coarse``."""
    from xstochsr.metrics import divergence, vorticity
    from xstochsr.metrics.blocks import block_edge_ratio

    out = {}
    for v in VARS:
        bm = _blocks(ens[v], f).values
        out[f"{v}_block_mean_max_error"] = float(np.nanmax(abs(bm - coarse[v].values)))
        out[f"{v}_block_edge"] = float(block_edge_ratio(ens[v], factor=f))
    for name, fn in (("vorticity", vorticity), ("divergence", divergence)):
        fine = fn(ens["ua"], ens["va"])
        ref = fn(coarse["ua"], coarse["va"])
        blocks = _interior(_blocks(fine, f))
        ref_i = _interior(ref).values
        scale = float(np.sqrt(np.nanmean(ref_i**2)))
        b = blocks.values
        err = b - ref_i[None]
        out[f"{name}_input_rms"] = scale
        out[f"{name}_block_rmse_rel"] = float(np.sqrt(np.nanmean(err**2)) / scale)
        out[f"{name}_block_corr"] = float(np.corrcoef(
            np.broadcast_to(ref_i, b.shape)[np.isfinite(b)], b[np.isfinite(b)])[0, 1])
        fine_rms = float(np.sqrt(np.nanmean(_interior(fine).values ** 2)))
        out[f"{name}_fine_rms"] = fine_rms
    return out


def figure(ens: xr.Dataset, coarse: xr.Dataset, when: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xstochsr.metrics import vorticity

    e = ens.sel(time=when)
    c = coarse.sel(time=when)
    vort_c = vorticity(c["ua"], c["va"]) * 1e5
    vort_e = vorticity(e["ua"], e["va"]) * 1e5
    speed_c = np.hypot(c["ua"], c["va"])
    speed_e = np.hypot(e["ua"], e["va"])
    vmax = float(np.nanpercentile(abs(vort_e.values), 99))
    smax = float(np.nanpercentile(speed_e.values, 99.5))
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.4), constrained_layout=True)
    panels = [("coarse input", vort_c, speed_c)] + [
        (f"member {m}", vort_e.isel(realization=m), speed_e.isel(realization=m))
        for m in range(3)]
    for k, (title, vo, sp) in enumerate(panels):
        im = vo.plot(ax=axes[0, k], cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                     add_colorbar=False)
        axes[0, k].set_title(f"{title}: vorticity")
        im2 = sp.plot(ax=axes[1, k], cmap="viridis", vmin=0, vmax=smax, add_colorbar=False)
        axes[1, k].set_title(f"{title}: speed")
    fig.colorbar(im, ax=axes[0], label="relative vorticity (1e-5 s-1)", shrink=0.9)
    fig.colorbar(im2, ax=axes[1], label="wind speed (m s-1)", shrink=0.9)
    fig.suptitle(f"500 hPa, {when} UTC: the 1996 blizzard downscaled by "
                 f"{ens.attrs.get('xstochsr_model', '')}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    import xstochsr

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="qg-uv-x8", help="a registered name or a weights path")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seed", type=int, default=1996)
    p.add_argument("--when", default="1996-01-07T12")
    p.add_argument("--figure", type=Path, default=Path("docs/img/blizzard_qg-uv-x8.png"))
    p.add_argument("--json", type=Path, default=None, help="write the numbers here too")
    args = p.parse_args(argv)

    model = xstochsr.load_model(args.model)
    f = model.card.factor
    coarse = coarse_input(model)
    print(f"coarse input: {dict(coarse.sizes)}; model {model.card.name}, factor {f}")
    rows = {}
    for name, m, members in (("model", model, args.members), ("bilinear", "bilinear", 1)):
        ens = xstochsr.downscale(coarse, factor=f, members=members, model=m, seed=args.seed,
                                 variables=VARS, progress=False)
        rows[name] = kinematics_check(ens, coarse, f)
        if name == "model":
            figure(ens, coarse, args.when, args.figure)
            print(f"wrote {args.figure}")
    keys = [("ua_block_mean_max_error", "max abs block-mean error u (m/s)"),
            ("va_block_mean_max_error", "max abs block-mean error v (m/s)"),
            ("vorticity_block_corr", "block-mean vorticity: correlation with input's"),
            ("vorticity_block_rmse_rel", "block-mean vorticity: RMSE / input RMS"),
            ("divergence_block_corr", "block-mean divergence: correlation with input's"),
            ("divergence_block_rmse_rel", "block-mean divergence: RMSE / input RMS"),
            ("ua_block_edge", "block-edge ratio u (about 1 without block structure)"),
            ("va_block_edge", "block-edge ratio v"),
            ("vorticity_fine_rms", "RMS vorticity on the fine grid (s-1)"),
            ("vorticity_input_rms", "RMS vorticity of the coarse input (s-1)")]
    print(f"| | {model.card.name} ({args.members} members) | bilinear |")
    print("|---|---:|---:|")
    for k, label in keys:
        print(f"| {label} | {rows['model'][k]:.3g} | {rows['bilinear'][k]:.3g} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
