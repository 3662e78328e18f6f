"""Ablation of physics in joint wind models at equal training budgets (issue 12).

Generators trained alike on the *training* runs of the atmosphere-like quasi-geostrophic
winds of ``scripts/make_qg_sequences.py --regime atmosphere`` (eastward and northward
wind jointly, ``var=["eastward_wind", "northward_wind"]``), cpu preset plus ``--set``,
with issue 10's calibration design for signed fields (fair ensemble CRPS over pooled
scales plus 4 x the CRPS of neighbour differences, ``crps-grad``, the weight
``rain-x8`` was chosen with against the block edges an additive layer leaves; additive
constraint layer: block means of u and v exact), differing only in the physics:

    joint            CRPS terms only: no physics beyond the block means
    joint+physics    + the soft terms: block-mean vorticity and divergence against the
                     truth's (``"kinematics"``, weight 1) and a divergence penalty
                     (``"divergence"``, weight 0.1; QG flow is non-divergent)
    streamfunction   the streamfunction head (``gen_wind_head="streamfunction"``: the
                     psi part non-divergent by construction) + the kinematics term
    separate         one component at a time, like ``qg-wind-x8``: a one-channel model
                     trained on the u and the v fields pooled (``COMPONENT``), run on u
                     and on v with independent noise; the joint arms' settings otherwise
    joint-smooth     joint, the additive layer spreading its correction smoothly
                     (``constraint_prior="bilinear"``: no block-constant steps)
    streamfunction-smooth  streamfunction, with the smooth additive layer (the head's
                     non-divergent psi is no longer broken on every block edge)
    joint+geopotential  joint, the coarse geopotential an inputs-only predictor
                     (``predictors=["geopotential"]``; :func:`geopotential`)
    joint-smooth+physics      joint-smooth with joint+physics's soft terms
    joint-smooth+geopotential joint-smooth with joint+geopotential's predictor
    joint-smooth+div1, joint-smooth+div10, joint-smooth+div30  joint-smooth with the
                     divergence penalty alone at weights 1, 10 and 30 (joint+physics's 0.1
                     is about 1 % of the CRPS terms: too small to move the members'
                     divergence)
    streamfunction-smooth+div1, streamfunction-smooth+div10  streamfunction-smooth with
                     the divergence penalty (there it acts on the layer's correction only)

Scored on the *validation* runs (independent pyqg runs, first ``--frames`` frames of the
first ``--sequences``; the test runs are read once, for a shipped model only, by
``scripts/evaluate_pretrained.py``), the raw network with ``--members`` members, by
:func:`xstochsr.metrics.verify_wind`: CRPS, rank KS and outlier proportion of u and v,
divergence RMSE, vorticity LSD, KE-spectrum slope error (over wavelengths of 250 to 100
km, :data:`SLOPE_BAND_M`) and KE LSD, the members' balance
(RMS divergence over RMS vorticity, ``metrics.divergence_ratio``, against the truth's),
the ageostrophic ratio of the members against the geostrophic wind of the truth's
geopotential (mostly the members' departure from the truth's winds, since the members
have no geopotential of their own; for the truth itself it is what centred differences
leave of an exactly geostrophic QG flow),
and the block-edge ratio of u and v over the truth's (1 is right; the additive layer's
block-constant corrections would show as jumps on block edges); bilinear
interpolation of each component is scored beside them (``baseline bilinear``).

Choice of the shipped arm (fixed on 2026-12-01 before the third round's results): among
the arms whose mean CRPS of u and v is within 3 % of the best arm's and whose outlier
proportions are at most 1.5 x a calibrated ensemble's, the one with the lowest
divergence RMSE; ties (within 2 %) go to the lower divergence ratio. The rule covers
every arm of that round, including the divergence-weight arms added after its first
pair (joint-smooth, streamfunction-smooth) was scored.

Budgets and resumption as in ``scripts/ablate_objective.py`` (whose ``train`` this uses):
``--budget`` CPU seconds per arm, resumable; ``--no-eval`` then ``score``.

    /tmp/venv-qg/bin/python scripts/make_qg_sequences.py --regime atmosphere
    python scripts/ablate_physics.py run joint --budget 1200
    python scripts/ablate_physics.py baseline
    python scripts/ablate_physics.py table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ablate_objective as ao  # noqa: E402

CACHE = Path.home() / ".cache" / "xstochsr" / "training"
TRAIN, VAL = CACHE / "qg_atmos_train.nc", CACHE / "qg_atmos_val.nc"
VARS = ["eastward_wind", "northward_wind"]
#: Issue 10's design for signed fields, shared by every arm.
BASE = dict(constraint="additive", crps_scales=[1, 4, 16])
CRPS = {"crps": 1.0, "crps-grad": 4.0}
ARMS = {
    "joint": dict(BASE, objective=dict(CRPS)),
    "joint+physics": dict(BASE, objective=dict(CRPS, kinematics=1.0, divergence=0.1)),
    "streamfunction": dict(BASE, objective=dict(CRPS, kinematics=1.0),
                           gen_wind_head="streamfunction"),
    "separate": dict(BASE, objective=dict(CRPS)),
    "joint-smooth": dict(BASE, objective=dict(CRPS), constraint_prior="bilinear"),
    "streamfunction-smooth": dict(BASE, objective=dict(CRPS, kinematics=1.0),
                                  gen_wind_head="streamfunction", constraint_prior="bilinear"),
    "joint+geopotential": dict(BASE, objective=dict(CRPS)),
}
#: Round 3: arms that are another arm with one change, built from it so that is all they differ by.
ARMS.update({
    "joint-smooth+physics": dict(ARMS["joint-smooth"],
                                 objective=dict(ARMS["joint+physics"]["objective"])),
    "joint-smooth+geopotential": dict(ARMS["joint-smooth"]),
    **{f"{base}+div{w}": dict(ARMS[base], objective=dict(ARMS[base]["objective"],
                                                          divergence=float(w)))
       for base, weights in (("joint-smooth", (1, 10, 30)), ("streamfunction-smooth", (1, 10)))
       for w in weights},
})
#: Inputs-only predictors of an arm (``xstochsr.train(..., predictors=...)``).
PREDICTORS = {"joint+geopotential": ["geopotential"],
              "joint-smooth+geopotential": ["geopotential"]}
#: f0 of the QG runs (their ``nominal_f0_s-1``): geopotential = f0 * streamfunction.
F0_ATTR = "nominal_f0_s-1"
#: Wavelengths (m) of the KE-spectrum slope: the scales the models add (below the 250 km
#: coarse cell) that pyqg's small-scale filter leaves alone (above about 100 km; with every
#: wavenumber the truth's slope, -5.1 on validation, would be the filter's).
SLOPE_BAND_M = (250e3, 100e3)
#: The arms whose model takes one component at a time (trained on :func:`pooled`).
SEPARATE = ("separate",)
#: The pooled variable of a one-component arm.
COMPONENT = "wind_component"
COLUMNS = (("steps", "steps"), ("cpu_seconds", "CPU s"),
           ("eastward_wind_crps", "CRPS u (m/s)"), ("northward_wind_crps", "CRPS v (m/s)"),
           ("rank_ks", "rank KS (u, v)"), ("outliers", "outliers (u, v)"),
           ("divergence_rmse", "div RMSE (1e-6 s-1)"), ("vorticity_lsd", "vort LSD (dB)"),
           ("kinetic_energy_slope_error", "KE slope error"),
           ("kinetic_energy_lsd", "KE LSD (dB)"),
           ("divergence_ratio_ens", "div/vort ratio"), ("divergence_ratio_obs", "truth's"),
           ("ageostrophic_ratio_ens", "ageo. ratio"), ("ageostrophic_ratio_obs", "truth's"))


def cases(path: Path, frames: int, sequences: int):
    """The fine truth of the first ``sequences`` x ``frames`` of a split, loaded."""
    import xarray as xr

    ds = xr.open_dataset(path)[VARS]
    return ds.isel(sequence=slice(0, sequences), time=slice(0, frames)).load()


def geopotential(ds):
    """The geopotential ``f0 * psi`` of the QG winds of ``ds`` (m2 s-2), a new variable.

    The pyqg runs are doubly periodic and their winds geostrophic with ``f0``: the
    streamfunction is the inverse Laplacian of the vorticity (FFT, exact on the
    periodic grid) plus the domain-mean flow, ``psi = psi' - U y + V x``, so
    ``u = -dpsi/dy``, ``v = dpsi/dx``. The files hold no geopotential; this is the one
    the model's dynamics imply. ``ds`` holds :data:`VARS` on a uniform x/y grid in
    metres, with the runs' ``nominal_f0_s-1`` attribute.
    """
    import xarray as xr

    u, v = ds[VARS[0]], ds[VARS[1]]
    f0 = float(ds.attrs[F0_ATTR])
    x, y = ds["x"].values, ds["y"].values
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    kx = 2 * np.pi * np.fft.fftfreq(x.size, dx)
    ky = 2 * np.pi * np.fft.fftfreq(y.size, dy)
    kxx, kyy = np.meshgrid(kx, ky)
    k2 = kxx**2 + kyy**2
    k2[0, 0] = 1.0
    uh = np.fft.fft2(u.values.astype(np.float64))
    vh = np.fft.fft2(v.values.astype(np.float64))
    zeta = 1j * kxx * vh - 1j * kyy * uh
    psih = -zeta / k2
    psih[..., 0, 0] = 0.0
    psi = np.fft.ifft2(psih).real
    um = u.values.mean(axis=(-2, -1), keepdims=True)
    vm = v.values.mean(axis=(-2, -1), keepdims=True)
    psi = psi - um * (y - y.mean())[:, None] + vm * (x - x.mean())[None, :]
    phi = xr.DataArray((f0 * psi).astype(np.float32), dims=u.dims, coords=u.coords,
                       attrs={"units": "m2 s-2", "standard_name": "geopotential",
                              "long_name": "geopotential f0 * psi of the QG flow"})
    return ds.assign(geopotential=phi)


def pooled(ds):
    """u and v of ``ds`` as one variable, the v sequences after the u ones (``COMPONENT``).

    A one-component model sees both components as plain scalar fields; v is first put
    in u's units.
    """
    import xarray as xr

    from xstochsr.units import convert

    u, v = ds[VARS[0]], ds[VARS[1]]
    vv = v.copy(data=convert(v.values, v.attrs["units"], u.attrs["units"]))
    out = xr.concat([u.drop_attrs(deep=False), vv.drop_attrs(deep=False)], dim="sequence")
    out = out.assign_coords(sequence=np.arange(out.sizes["sequence"]))
    out.attrs = {"units": u.attrs["units"], "long_name": "horizontal wind component"}
    return out.to_dataset(name=COMPONENT)


def _one_at_a_time(model, coarse, members: int, seed: int):
    """Downscale each component alone with a one-component model (independent noise)."""
    import xarray as xr

    import xstochsr

    out = {}
    for k, v in enumerate(VARS):
        ens = xstochsr.downscale(coarse[v], factor=8, members=members, model=model,
                                 seed=seed + 7919 * k, progress=False)
        out[v] = ens.assign_attrs(coarse[v].attrs)
    return xr.Dataset(out)


def evaluate(model, truth, members: int, seed: int) -> dict:
    """``verify_wind`` of ``model`` (a joint model, or a baseline name) on ``truth``.

    A model with one channel (the ``separate`` arm) downscales u and v one at a time.
    """
    import torch
    import xarray as xr

    import xstochsr
    from xstochsr.grid import coarsen_field, match_grid
    from xstochsr.metrics import verify_wind

    torch.set_num_threads(1)
    coarse = xr.Dataset({v: coarsen_field(truth[v], 8) for v in VARS})
    if not isinstance(model, str) and model.card.predictors:  # the coarse geopotential
        coarse["geopotential"] = coarsen_field(geopotential(truth)["geopotential"], 8)
    if not isinstance(model, str) and not model.card.channels:
        ens = _one_at_a_time(model, coarse, members, seed)
    else:
        ens = xstochsr.downscale(coarse, factor=8, members=members, model=model, seed=seed,
                                 progress=False, variables=None if not isinstance(model, str)
                                 else VARS)
    obs = xr.Dataset({v: match_grid(truth[v], ens[v]) for v in VARS})
    f0 = float(truth.attrs[F0_ATTR]) if F0_ATTR in truth.attrs else None
    z = geopotential(truth)["geopotential"] if f0 else None
    if z is not None:
        z = match_grid(z, ens[VARS[0]])
    from xstochsr.units import convert

    # cycles per unit of x (the QG files' x is in metres)
    band = tuple(1.0 / float(convert(w, "m", truth["x"].attrs.get("units", "m")))
                 for w in SLOPE_BAND_M)
    v = verify_wind(ens, obs, lags=[1], z=z, f0=f0, beta=0.0, band=band)
    one = {k: float(np.ravel(v[k].values)[0]) for k in v.data_vars if v[k].ndim == 0}
    out = {k: one[k] for k in ("divergence_rmse", "vorticity_lsd", "kinetic_energy_lsd",
                               "kinetic_energy_slope_error", "eastward_wind_crps",
                               "northward_wind_crps", "ageostrophic_ratio_ens",
                               "ageostrophic_ratio_obs", "divergence_ratio_ens",
                               "divergence_ratio_obs") if k in one}
    out["divergence_rmse"] = out.get("divergence_rmse", float("nan")) * 1e6
    for key, name in (("rank_ks", "rank_ks"), ("outliers", "rank_outlier_proportion")):
        out[key] = [one.get(f"{c}_{name}", float("nan")) for c in VARS]
    from xstochsr.metrics.blocks import block_edge_ratio

    # the additive layer's block-constant corrections show as jumps on block edges
    out["block_edge"] = [float(block_edge_ratio(ens[c], factor=8)
                               / block_edge_ratio(obs[c], factor=8)) for c in VARS]
    # time and extremes: member lag-1 correlation against the truth's, the spread of
    # frame-to-frame changes over the truth's, and upper quantiles over the truth's
    out.update(_per_component(v, VARS))
    out.update(frames=int(truth.sizes["time"]), sequences=int(truth.sizes["sequence"]),
               members=members)
    return out


#: Per-component scores of :func:`evaluate` beyond the table's: key -> (verify's variable
#: after the component's prefix, selection along its one dim or None).
PER_COMPONENT = {
    "lag1": ("lag_correlation_ens", ("lag", 1)),
    "lag1_truth": ("lag_correlation_obs", ("lag", 1)),
    "frame_change_ratio": ("frame_change_std_ratio", None),
    "q99_ratio": ("quantile_ratio", ("quantile", 0.99)),
    "q999_ratio": ("quantile_ratio", ("quantile", 0.999)),
}


def _per_component(scores, names) -> dict:
    """``{key: [value for each component]}`` of :data:`PER_COMPONENT` from ``verify_wind``.

    A score ``verify_wind`` did not give (too few frames for a lag) is NaN.
    """
    out = {}
    for key, (var, sel) in PER_COMPONENT.items():
        vals = []
        for c in names:
            da = scores.get(f"{c}_{var}")
            if da is not None and sel is not None:
                dim = f"{c}_{sel[0]}"
                da = da.sel({dim: sel[1]}, method="nearest") if dim in da.dims else None
            vals.append(float(np.ravel(da.values)[0]) if da is not None and da.size
                        else float("nan"))
        out[key] = vals
    return out


def table(out: Path) -> str:
    """Markdown table of every ``out/<arm>/result.json`` (``ablate_objective.table``)."""
    lines = ao.table(out, names=ARMS, columns=[c for c in COLUMNS
                                               if c[0] not in ("rank_ks", "outliers")],
                     label="arm", optional=("bilinear",))
    rows = lines.splitlines()
    extra = ["| arm | rank KS u, v | outliers u, v | block-edge / truth's u, v | "
             "lag-1 u, v (truth's) | q99.9 / truth's u, v |",
             "|---|---:|---:|---:|---:|---:|"]
    nan2 = [float("nan")] * 2
    for name in (*ARMS, "bilinear"):
        f = out / name / "result.json"
        if f.is_file():
            s = json.loads(f.read_text())["scores"]
            be, lag, lt, q = (s.get(k, nan2) for k in ("block_edge", "lag1", "lag1_truth",
                                                       "q999_ratio"))
            extra.append(f"| {name} | {s['rank_ks'][0]:.3f}, {s['rank_ks'][1]:.3f} | "
                         f"{s['outliers'][0]:.3f}, {s['outliers'][1]:.3f} | "
                         f"{be[0]:.2f}, {be[1]:.2f} | {lag[0]:.2f}, {lag[1]:.2f} "
                         f"({lt[0]:.2f}, {lt[1]:.2f}) | {q[0]:.2f}, {q[1]:.2f} |")
    return "\n".join(rows) + "\n\n" + "\n".join(extra)


def main(argv=None) -> int:
    import xarray as xr

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["run", "score", "baseline", "table"])
    p.add_argument("arm", nargs="?", choices=list(ARMS))
    p.add_argument("--train", type=Path, default=TRAIN)
    p.add_argument("--val", type=Path, default=VAL)
    p.add_argument("--out", type=Path, default=Path("runs/physics"))
    p.add_argument("--budget", type=float, default=1200.0, help="CPU seconds per arm")
    p.add_argument("--checkpoint-cpu", type=float, default=300.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--wall", type=float, default=None)
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--sequences", type=int, default=6)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="TrainConfig override for every arm (JSON)")
    args = p.parse_args(argv)
    if args.command == "table":
        print(table(args.out))
        return 0
    truth = cases(args.val, args.frames, args.sequences)
    if args.command == "baseline":
        c0 = time.process_time()
        rec = {"variant": "bilinear", "scores": evaluate("bilinear", truth, 1, args.seed + 1),
               "eval_cpu_seconds": round(time.process_time() - c0, 1)}
        (args.out / "bilinear").mkdir(parents=True, exist_ok=True)
        ao._write_result(args.out / "bilinear", rec)
        return 0
    if args.arm is None:
        p.error("run and score need an arm: " + ", ".join(ARMS))
    settings = ao.parse_settings(args.overrides)
    if args.command == "score":
        rec = ao.record(json.loads((args.out / args.arm / "state.json").read_text()))
    else:
        train = xr.open_dataset(args.train)[VARS]
        one = args.arm in SEPARATE
        rec = ao.train(args.arm, args.train, args.budget, args.seed, args.out,
                       settings=settings, checkpoint_cpu=args.checkpoint_cpu,
                       device=args.device, max_steps=args.steps, max_wall=args.wall,
                       dataset=(pooled(train.load()) if one else geopotential(train.load())
                                if args.arm in PREDICTORS else train), arm=ARMS[args.arm],
                       var=COMPONENT if one else VARS, predictors=PREDICTORS.get(args.arm))
        if args.no_eval:
            return 0
    import xstochsr

    c0 = time.process_time()
    model = xstochsr.load_model(args.out / args.arm / "model.safetensors")
    rec["scores"] = evaluate(model, truth, args.members, args.seed + 1)
    rec["eval_cpu_seconds"] = round(time.process_time() - c0, 1)
    ao._write_result(args.out / args.arm, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
