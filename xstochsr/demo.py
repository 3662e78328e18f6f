"""The main job: downscale a bundled real sample and show how well it went.

``xstochsr demo`` takes the bundled Meteosat rain-rate sample (real, ~3 km), block-
averages it by 8 (the perfect-prognosis coarse input), downscales it with the
pretrained generator, and writes

* ``<out>/demo_ensemble.nc``: the ensemble, the truth and the coarse input, CF-complete;
* ``<out>/demo.png``: coarse input, truth, three members and the rank histogram;

then prints the scores of the generator beside bilinear interpolation and RainFARM on
the same case and seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["run_demo", "score_table", "HEADLINE", "EXTRA"]

#: The columns of :func:`score_table`, lower is better except where noted.
HEADLINE = ("crps", "crps_pool4_avg", "rank_ks", "rank_kl", "outlier_proportion", "rmse",
            "lsd_db", "fss", "q99_ratio", "mass_error")
#: Further columns of :func:`score_table`, present where they are defined: wet-case rank
#: statistics (precipitation only), member and truth lag-1 autocorrelation (two or more
#: frames), the block-edge ratio of the members and of the truth (1: no block squares),
#: and the extremes: quantile ratios at 0.9 and 0.999 beside the headline's 0.99, and,
#: for precipitation, exceedance-frequency ratios at :data:`EXCEEDANCE_MM_H` (members
#: pooled against the truth; 1 is best, below 1 too rare).
EXCEEDANCE_MM_H = (1.0, 5.0, 10.0)
EXTRA = ("rank_ks_wet", "outlier_proportion_wet", "outlier_proportion_calibrated",
         "lag1", "lag1_truth", "block_edge", "block_edge_truth", "q90_ratio", "q999_ratio",
         *(f"exceed{t:g}_ratio" for t in EXCEEDANCE_MM_H))


def score_table(ens: xr.DataArray, truth: xr.DataArray, coarse: xr.DataArray, factor: int,
                *, threshold: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Headline scores of one ensemble against the truth (one row of the quality table).

    Parameters
    ----------
    ens : DataArray (realization, ..., y, x)
    truth : DataArray (..., y, x), same grid
    coarse : DataArray (..., y/f, x/f), the input that was downscaled
    factor : int
    threshold : float
        Threshold for the fractions skill score (units of ``truth``), scale 9 fine cells.

    Returns
    -------
    dict
        crps, crps_pool4_avg (average-pooled 4x4), rank_ks, rank_kl, outlier_proportion,
        rmse (ensemble mean), lsd_db (log spectral distance, mean over members), fss,
        q99_ratio (99th percentile of members / of truth; 1 is best) and mass_error (mean
        absolute relative difference between the block means of the members and the
        coarse input; 0 for mean-preserving methods); then, where defined (see
        ``EXTRA``): rank_ks_wet and outlier_proportion_wet on wet cases (truth or a member
        >= 0.1 mm h-1, precipitation only), outlier_proportion_calibrated (``2 / (M + 1)``,
        always), lag1 and lag1_truth (lag-1 autocorrelation of the members, mean,
        and of the truth; with a time axis of two or more frames), block_edge and
        block_edge_truth (:func:`xstochsr.metrics.block_edge_ratio` at ``factor``),
        q90_ratio and q999_ratio (as q99_ratio, where the truth's quantile is not 0), and
        for precipitation exceed1_ratio, exceed5_ratio and exceed10_ratio (frequency of
        members >= 1, 5, 10 mm h-1 over the truth's, where the truth reaches it;
        :func:`xstochsr.metrics.exceedance_frequency`).
    """
    from . import metrics
    from .grid import coarsen_field, match_grid

    truth = match_grid(truth, ens)

    rh = metrics.rank_histogram(ens, truth, seed=seed)
    lsd = metrics.log_spectral_distance(ens, truth)
    fss = metrics.fss(ens, truth, thresholds=[threshold], scales=[9])
    q = metrics.quantile_ratio(ens, truth, quantiles=[0.9, 0.99, 0.999])
    block, ref = xr.align(match_grid(coarsen_field(ens, factor), coarse), coarse, join="exact")
    scale = float(np.nanmean(np.abs(ref.values))) or 1.0
    row = {
        "crps": float(metrics.crps(ens, truth).mean()),
        "crps_pool4_avg": float(metrics.pooled_crps(ens, truth, k=4, method="avg").mean()),
        "rank_ks": float(rh.attrs["ks"]),
        "rank_kl": float(rh.attrs["kl"]),
        "outlier_proportion": float(rh.attrs["outlier_proportion"]),
        "rmse": float(metrics.rmse(ens, truth).mean()),
        "lsd_db": float(lsd.mean()),
        "fss": float(fss.mean()),
        "q99_ratio": float(q.sel(quantile=0.99)),
        "mass_error": float(np.nanmean(np.abs((block - ref).values))) / scale,
    }
    row.update(_extra_scores(ens, truth, factor, seed))
    for level, key in ((0.9, "q90_ratio"), (0.999, "q999_ratio")):
        value = float(q.sel(quantile=level))
        if np.isfinite(value):
            row[key] = value
    return row


def _extra_scores(ens: xr.DataArray, truth: xr.DataArray, factor: int,
                  seed: int) -> dict[str, float]:
    """Compute the ``EXTRA`` columns of :func:`score_table` that this case defines."""
    from . import metrics
    from .metrics.verify import _default_wet_threshold

    out: dict[str, float] = {"outlier_proportion_calibrated": 2.0 / (ens.sizes["realization"] + 1)}
    wet = _default_wet_threshold(truth)
    if wet is not None:
        st = metrics.rank_statistics(ens, truth, threshold=wet, seed=seed)
        if int(st.n_cases) > 0:
            out["rank_ks_wet"] = float(st.ks)
            out["outlier_proportion_wet"] = float(st.outlier_proportion)
    if "time" in truth.dims and truth.sizes["time"] >= 2:
        lag = metrics.lag_autocorrelation(ens, truth, lags=[1])
        m, o = float(lag["ensemble"].mean()), float(lag["observation"].mean())
        if np.isfinite(m) and np.isfinite(o):
            out["lag1"], out["lag1_truth"] = m, o
    if wet is not None:  # precipitation: the frequency of heavy rain, members vs truth
        from .units import affine

        a, b = affine("mm h-1", str(truth.attrs["units"]))  # wet => rate units convert
        ex = metrics.exceedance_frequency(ens, truth,
                                          thresholds=[a * t + b for t in EXCEEDANCE_MM_H])
        for t, r in zip(EXCEEDANCE_MM_H, ex["ratio"].values, strict=True):
            if np.isfinite(r):
                out[f"exceed{t:g}_ratio"] = float(r)
    be = float(metrics.block_edge_ratio(ens, factor=factor))
    bt = float(metrics.block_edge_ratio(truth, factor=factor))
    if np.isfinite(be) and np.isfinite(bt):
        out["block_edge"], out["block_edge_truth"] = be, bt
    return out


def _format_table(rows: dict[str, dict[str, float]]) -> str:
    """Format the headline columns, then the ``EXTRA`` ones any row has ("-" if undefined)."""
    extra = [c for c in EXTRA if any(c in row for row in rows.values())]
    blocks = []
    for cols in (HEADLINE, extra):
        if not cols:
            continue
        widths = [max(len(c) + 2, 10) for c in cols]
        head = f"{'method':<12}" + "".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
        lines = [head, "-" * len(head)]
        for name, row in rows.items():
            lines.append(f"{name:<12}" + "".join(
                f"{row[c]:>{w}.4f}" if c in row else f"{'-':>{w}}"
                for c, w in zip(cols, widths, strict=True)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _default_model(coarse: xr.DataArray, factor: int) -> str:
    from .errors import UnknownModelError
    from .models.registry import select_model

    try:
        return select_model(coarse.attrs.get("units"), coarse.attrs.get("standard_name"), factor)
    except UnknownModelError:
        return "rainfarm"


def run_demo(out: str | Path = "xstochsr-demo", *, members: int = 10, seed: int = 0,
             model: str | None = None, sample: str = "meteosat_rain_rate", factor: int = 8,
             echo: Callable[[str], None] | None = None) -> dict:
    """Run the demo; returns paths, the model used and the score table.

    Parameters
    ----------
    out : path-like
        Output folder.
    members, seed : int
        Ensemble size and seed.
    model : str, optional
        Model name or path; default: the pretrained model fitting the sample.
    sample : str
        A name from :func:`xstochsr.datasets.list_samples`.
    factor : int
        Coarsening and downscaling factor.
    echo : callable, optional
        Where progress lines go (``print`` from the command line).

    Returns
    -------
    dict
        ``netcdf``, ``figure`` (paths), ``model`` (name) and ``scores`` (method -> row).
    """
    from . import datasets
    from .api import downscale
    from .cf_output import drop_stale_bounds, netcdf_encoding, to_cf_dataset
    from .grid import coarsen_field, find_axes, match_grid
    from .io import write_netcdf
    from .models.registry import load_model

    say = echo or (lambda s: None)
    out = Path(out)
    ds = datasets.open_sample(sample)
    var = next(iter(ds.data_vars))
    truth = ds[var]
    coarse = coarsen_field(truth, factor)
    name = model or _default_model(coarse, factor)
    used = load_model(name)
    kind = "pretrained generator" if used.card.kind == "generator" else "baseline"
    say(f"sample {sample!r}: {dict(truth.sizes)} fine, coarsened by {factor} to "
        f"{dict(coarse.sizes)}; model {used.name!r} ({kind})")
    if used.card.kind != "generator":
        say("note: no pretrained generator fits this sample in this build; showing the "
            f"{used.name!r} baseline instead")
    ens = downscale(coarse, factor=factor, members=members, model=used, seed=seed)
    truth = match_grid(truth, ens)  # the rebuilt fine grid equals the truth's to rounding

    rows = {used.name: score_table(ens, truth, coarse, factor, seed=seed)}
    for base in ("bilinear", "rainfarm"):
        if base != used.name:
            b = downscale(coarse, factor=factor, members=members, model=base, seed=seed)
            rows[base] = score_table(b, truth, coarse, factor, seed=seed)
    say(_format_table(rows))

    axes = find_axes(truth)

    def _no_aux(da):  # 2-D lat/lon of truth and coarse would clash with the ensemble's
        return da.drop_vars([c for c in da.coords if c not in da.dims
                             and set(da[c].dims) & {axes.x, axes.y}])

    result = to_cf_dataset(ens.rename("ensemble"), attrs={"history": ds.attrs.get("history", "")})
    t = _no_aux(truth)  # on the ensemble's grid (match_grid): keep the bounds-carrying coords
    result["truth"] = xr.Variable(t.dims, t.data, t.attrs)
    result["coarse"] = _no_aux(coarse).rename({axes.x: f"{axes.x}_coarse",
                                               axes.y: f"{axes.y}_coarse"})
    result.attrs.update(title="xstochsr demo: Meteosat rain rate downscaled by "
                        f"{factor}", source=ds.attrs.get("source", ""),
                        model=used.name, seed=seed)
    result = drop_stale_bounds(result)  # coarse x/y must not name the fine bounds
    nc = write_netcdf(result, out / "demo_ensemble.nc", encoding=netcdf_encoding(result))
    png = _figure(coarse, truth, ens, out / "demo.png", seed=seed)
    say(f"wrote {nc} and {png}")
    return {"netcdf": nc, "figure": png, "model": used.name, "scores": rows}


def _figure(coarse, truth, ens, path: Path, *, seed: int) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .io import atomic_path
    from .metrics import rank_histogram
    from .plot import plot_panel, plot_rank_histogram

    fig = plt.figure(figsize=(19, 3.9), layout="constrained")
    shown = min(3, ens.sizes["realization"])  # --members 1 or 2 still draws
    grid = fig.add_gridspec(1, shown + 3, width_ratios=[1] * (shown + 2) + [1.15])
    axes = [fig.add_subplot(grid[0, i]) for i in range(shown + 2)]
    plot_panel(coarse, truth, ens, members=shown, axes=axes)
    for ax in axes:
        ax.ticklabel_format(style="sci", scilimits=(-3, 4))
    rax = fig.add_subplot(grid[0, shown + 2])
    plot_rank_histogram(rank_histogram(ens, truth, seed=seed), ax=rax)
    rax.set_title(rax.get_title(), fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
