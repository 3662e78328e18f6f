"""Score a trained generator beside the baselines on the fixed split; gate it; ship it or not.

The recipe is chosen by the card's standard_name. Sets come from the fixed split
(``scripts/splits/rain.json``, see ``scripts/splits.py``), chosen by ``--subset``:

* ``validation`` (default): model choice and the gates while developing, as often as
  needed;
* ``test``: read **once** per shipped model. Each read is logged with the weights'
  sha256 in ``scripts/splits/test_reads.json`` (committed), and a second read of the
  same weights is refused unless ``--reread`` says why it is needed.

Precipitation (``lwe_precipitation_rate``, e.g. ``rain-x8``):

* ``real``: the split's real Meteosat MPE crops of the subset (256 x 256 at 3 km,
  coarsened by 8; regions the simulator was never fitted to, written by
  ``python scripts/make_splits.py --crops``);
* ``sim``: the subset's simulated sequences (validation 112-127, test 128-143 of
  ``scripts/make_rain_sequences.py``'s file), first ``--frames`` frames of the first
  ``--sequences``: the only sets with time, so the temporal gate is judged here.

Gates (issue 10), judged on the *raw* network (``model_raw``: ``conserve=False``) on every
set: block means within 1 %; CRPS below every interpolator's (bilinear) and at most 0.85 x
RainFARM's; wet-pixel rank KS <= 0.08 and outlier proportion <= 1.5 x the calibrated
``2 / (M + 1)``; member lag-1 correlation within 0.05 of the truth's; LSD at most
RainFARM's; block-edge ratio within 10 % of the truth's.

Wind (``eastward_wind``, ``qg-wind-x8``): set ``qg``. Validation: ``qg_wind_val.nc``,
an independent pyqg run (``make_qg_sequences.py --seed 20240608 --n-sequences 4
--n-frames 8 --out ~/.cache/xstochsr/training/qg_wind_val.nc``; first ``--frames`` frames
of the first ``--sequences``); test: the shipped sample ``qg_wind_sample``, another
independent run (seed 20240607). Neither seed is the training set's. RainFARM needs a
non-negative field, so it is not run; the gates are CRPS below every interpolator's and
outlier proportion <= 2 x calibrated.

Wind pair (a joint model of eastward and northward wind, ``qg-uv-x8``): sets from the
independent pyqg runs of ``scripts/make_qg_sequences.py --regime atmosphere``
(``qg_atmos_val.nc`` for validation, ``qg_atmos_test.nc`` for the test; first ``--frames``
frames of the first ``--sequences``), scored by ``scripts/ablate_physics.py``'s
``evaluate`` (``verify_wind``: CRPS, rank KS and outliers of u and v, divergence RMSE,
vorticity LSD, kinetic-energy slope error and LSD) beside bilinear and the shipped
one-component model ``qg-wind-x8`` run on u and on v; gates: CRPS of u and of v below
bilinear's and outlier proportions <= 2 x calibrated.

Terrain-aware rain (a card with static predictors, ``orographic-rain-x8``): set
``orographic``, the validation or test *mountain ranges* of
``scripts/make_orographic_sequences.py``'s file (first ``--frames`` frames of the first
``--sequences`` of the subset; the test ranges are terrain no training sequence saw),
scored by ``scripts/ablate_terrain.py``'s ``evaluate`` (CRPS, wet rank KS and outliers,
LSD, and the error of the windward/lee rain contrast) beside the *terrain-blind* model of
the same ablation and budget (``--blind``: same inputs but the terrain), bilinear and
RainFARM. Gates: CRPS and windward/lee contrast error below the terrain-blind model's
(issue 13: it ships only if the terrain helps on unseen ranges); CRPS below bilinear's
and at most 0.85 x RainFARM's; wet rank KS <= 0.08 and outliers <= 1.5 x calibrated.

Rows: ``model`` is the generator as ``downscale`` runs it by default (coarse means
conserved where the model has no constraint layer), ``model_raw`` the bare network. With
``--ship`` and a pass (or, with ``--ship-anyway``, a model that beats the shipped one on
the test set: the card then lists the gates it misses), the weights and card are copied
into ``xstochsr/data/`` and registered in ``data_registry.txt`` (and its packaged copy)
with their sha256, in a block of their own.

    python scripts/evaluate_pretrained.py runs/rain-x8/rain-x8                  # validation
    python scripts/evaluate_pretrained.py runs/rain-x8/rain-x8 --subset test --ship
    python scripts/evaluate_pretrained.py runs/qg-wind-x8/qg-wind-x8 --subset test --ship

Every card also records a small reproducibility case (``REPRODUCIBILITY``) that the tests
recompute from the shipped weights. To add or refresh only that entry of a shipped card:

    python scripts/evaluate_pretrained.py xstochsr/data/rain-x8 --reproducibility-only --ship
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

import xstochsr
from xstochsr import datasets
from xstochsr.demo import EXTRA, HEADLINE, score_table
from xstochsr.grid import coarsen_field, match_grid
from xstochsr.io import atomic_write_bytes
from xstochsr.models.interpolation import INTERPOLATION_METHODS

REPO = Path(__file__).resolve().parents[1]
SIM = Path.home() / ".cache" / "xstochsr" / "training" / "rain_sequences.nc"
TEST_READS = REPO / "scripts" / "splits" / "test_reads.json"
#: per standard_name: baselines run, the
#: fractions-skill-score threshold (units of the field) and the training script.
RECIPES = {
    "lwe_precipitation_rate": dict(baselines=(*INTERPOLATION_METHODS, "rainfarm"),
                                   fss_threshold=1.0, script="scripts/train_rain_x8.py"),
    "eastward_wind": dict(baselines=INTERPOLATION_METHODS,
                          fss_threshold=0.1, script="scripts/train_qg_wind_x8.py"),
    "wind_pair": dict(baselines=INTERPOLATION_METHODS, single="qg-wind-x8",
                      script="scripts/train_qg_uv_x8.py"),
    "terrain": dict(baselines=("bilinear", "rainfarm"), fss_threshold=1.0,
                    script="scripts/train_orographic_rain_x8.py"),
}
#: The terrain-shaped rain sequences (scripts/make_orographic_sequences.py)
TERRAIN = Path.home() / ".cache" / "xstochsr" / "training" / "orographic_sequences.nc"
#: What each terrain-set column of ablate_terrain.evaluate is called on a card
TERRAIN_KEYS = {"crps": "crps", "rank_ks_wet": "rank_ks_wet",
                "rank_outlier_proportion_wet": "outlier_proportion_wet",
                "log_spectral_distance": "lsd_db",
                "contrast_log_error": "windward_lee_log_error",
                "contrast_members": "windward_lee_members",
                "contrast_truth": "windward_lee_truth"}


def best_interpolator(rows: dict, key: str) -> tuple[str, float]:
    """The interpolator with the lowest ``key`` among ``rows`` (issue 10: CRPS below every
    interpolator's). Cards scored before every interpolator was a row hold bilinear only;
    the gate's name says which were compared."""
    have = {m: rows[m][key] for m in INTERPOLATION_METHODS if m in rows and key in rows[m]}
    best = min(have, key=have.get)
    return (best if len(have) > 1 else "bilinear only"), have[best]
#: The atmosphere-regime pyqg runs of a wind pair, per subset.
ATMOS = {"validation": "qg_atmos_val.nc", "test": "qg_atmos_test.nc"}
ATMOS_DIR = Path.home() / ".cache" / "xstochsr" / "training"
#: per standard_name: a case small enough to recompute in a test (seconds), scored by the
#: same code as the held-out sets; tests/models/test_registry.py recomputes it from the
#: shipped weights and compares it with the card.
REPRODUCIBILITY = {
    "lwe_precipitation_rate": dict(sample="meteosat_rain_rate", variable="rain_rate",
                                   isel={"time": [0, 1], "y": [96, 160], "x": [96, 160]},
                                   members=4, seed=7),
    "eastward_wind": dict(sample="qg_wind_sample", variable="eastward_wind",
                          isel={"time": [0, 1], "y": [0, 64], "x": [0, 64]},
                          members=4, seed=7),
    "wind_pair": dict(sample="blizzard_1996_500hpa", variable=["ua", "va"],
                      isel={"time": [8, 10]}, members=4, seed=7),
    "terrain": dict(sample="orographic_rain_tian_shan", variable="rain_rate",
                    isel={"time": [0, 2], "y": [64, 192], "x": [64, 192]}, members=4,
                    seed=7, static="surface_altitude", predictors=["ua", "va"]),
}


def _pool(rows: list[dict]) -> dict:
    """Mean of each column over the cases that define it."""
    cols = [k for k in (*HEADLINE, *EXTRA) if any(k in r for r in rows)]
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in cols}


def evaluate(model, cases: list[xr.DataArray], factor: int, members: int, seed: int,
             recipe: dict, keep: list | None = None) -> dict:
    """Mean headline scores over ``cases`` (fine truths) for the model and baselines.

    ``keep``: a list that gains one ``(members, pixels)`` array of the bare network's
    ensemble and one ``(pixels,)`` array of the truth per case, for :func:`qq_figure`.
    """
    out: dict[str, list] = {}
    for i, truth in enumerate(cases):
        coarse = coarsen_field(truth, factor)
        runs = [("model", model, {}), ("model_raw", model, {"conserve": False}),
                *[(b, b, {}) for b in recipe["baselines"]]]
        for name, m, kw in runs:
            ens = xstochsr.downscale(coarse, factor=factor, members=members, model=m,
                                     seed=seed + i, progress=False, **kw)
            truth_on = match_grid(truth, ens)
            out.setdefault(name, []).append(
                score_table(ens, truth_on, coarse, factor, seed=seed + i,
                            threshold=recipe["fss_threshold"]))
            if keep is not None and name == "model_raw":
                keep.append((ens.values.reshape(ens.sizes["realization"], -1),
                             truth_on.values.ravel(), truth.attrs.get("units", "")))
    return {name: _pool(rows) for name, rows in out.items()}


def qq_figure(kept: dict[str, list], path: Path, title: str) -> None:
    """One quantile-quantile panel per set (``xstochsr.plot.plot_qq``) of the bare
    network's members against the truth, all cases of the set pooled; written
    atomically to ``path``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xstochsr.plot import plot_qq

    fig, axes = plt.subplots(1, len(kept), figsize=(4.6 * len(kept), 4.4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], kept.items(), strict=True):
        ens = np.concatenate([r[0] for r in rows], axis=1)
        obs = np.concatenate([r[1] for r in rows])
        units = {"units": rows[0][2]}
        plot_qq(xr.DataArray(ens, dims=("realization", "pixel"), attrs=units),
                xr.DataArray(obs, dims="pixel", attrs=units), ax=ax)
        ax.set_title(f"set {name!r}\n{ax.get_title()}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def _flat_pair(s: dict) -> dict:
    """``ablate_physics.evaluate``'s record as one flat row of a card's table."""
    lists = {"rank_ks": "rank_ks", "outliers": "outlier_proportion",
             "block_edge": "block_edge_ratio", "lag1": "lag1_correlation",
             "lag1_truth": "lag1_correlation_truth", "frame_change_ratio": "frame_change_ratio",
             "q99_ratio": "q99_ratio", "q999_ratio": "q999_ratio"}
    row = {k: v for k, v in s.items() if k not in (*lists, "frames", "sequences", "members")}
    for key, name in lists.items():
        for comp, value in zip(("u", "v"), s.get(key, ()), strict=False):
            row[f"{name}_{comp}"] = value
    return row


def pair_scores(model, subset: str, frames: int, sequences: int, members: int, seed: int,
                atmos_dir: Path = ATMOS_DIR) -> dict:
    """Rows ``model``, ``bilinear`` and the one-component model on a wind-pair set."""
    import ablate_physics as ap

    truth = ap.cases(atmos_dir / ATMOS[subset], frames, sequences)
    rows = {"model": ap.evaluate(model, truth, members, seed),
            **{b: ap.evaluate(b, truth, 1, seed) for b in RECIPES["wind_pair"]["baselines"]}}
    single = RECIPES["wind_pair"]["single"]
    rows[f"{single} (u, v one at a time)"] = ap.evaluate(xstochsr.load_model(single), truth,
                                                        members, seed)
    rows = {k: _flat_pair(v) for k, v in rows.items()}
    for r in rows.values():
        r["outlier_proportion_calibrated"] = 2 / (members + 1)
    return rows


QG_VAL = ATMOS_DIR / "qg_wind_val.nc"


def qg_cases(subset: str = "test", frames: int = 8, n_seq: int = 4,
             path: Path = QG_VAL) -> list[xr.DataArray]:
    """The one-component wind sets: the validation run's sequences, or the test sample."""
    if subset == "test":
        return [datasets.open_sample("qg_wind_sample")["eastward_wind"].load()]
    if not path.exists():
        raise SystemExit(f"{path} is missing: write it with /tmp/venv-qg/bin/python "
                         "scripts/make_qg_sequences.py --seed 20240608 --n-sequences 4 "
                         f"--n-frames 8 --out {path}")
    da = xr.open_dataset(path)["eastward_wind"]
    if "sequence" not in da.dims:
        return [da.isel(time=slice(0, frames)).load()]
    return [da.isel(sequence=k, time=slice(0, frames), drop=True).load()
            for k in range(min(n_seq, da.sizes["sequence"]))]


def real_cases(subset: str) -> list[xr.DataArray]:
    """The split's real crops of ``subset`` (checked against the manifest's sha256)."""
    from splits import crop_fields

    return crop_fields("rain", subset)


def sim_cases(path: Path, subset: str, frames: int, n_seq: int) -> list[xr.DataArray]:
    """The first ``n_seq`` simulated sequences of ``subset``, first ``frames`` frames."""
    from splits import load_split, sequences

    ds = xr.open_dataset(path)
    seqs = sequences(load_split("rain"), subset)
    first = seqs.start
    da = ds["rain_rate"].isel(sequence=slice(first, min(first + n_seq, seqs.stop)),
                              time=slice(0, frames)).load()
    da.attrs.setdefault("units", "mm h-1")
    da.attrs.setdefault("standard_name", "lwe_precipitation_rate")
    return [da.isel(sequence=k, drop=True) for k in range(da.sizes["sequence"])]


def precision_check(model, cases: list[xr.DataArray], factor: int, members: int,
                    seed: int) -> dict:
    """CRPS of the bare network in float32 and in bfloat16 on ``cases`` (same noise).

    ``downscale(precision="auto")`` uses bfloat16 only where the card records
    ``bfloat16_ok``: the relative CRPS change within
    :data:`xstochsr.precision.BF16_CRPS_TOLERANCE` (1 %). Where the CPU has no native
    bfloat16 the check runs emulated: the numbers are bfloat16's, the speed is not.
    """
    from xstochsr.metrics import crps
    from xstochsr.precision import BF16_CRPS_TOLERANCE, native_bf16

    vals = {}
    for prec in ("float32", "bfloat16"):
        per = []
        for i, truth in enumerate(cases):
            coarse = coarsen_field(truth, factor)
            ens = xstochsr.downscale(coarse, factor=factor, members=members, model=model,
                                     seed=seed + i, progress=False, conserve=False,
                                     precision=prec)
            per.append(float(crps(ens, match_grid(truth, ens)).mean()))
        vals[prec] = float(np.mean(per))
    rel = abs(vals["bfloat16"] - vals["float32"]) / max(vals["float32"], 1e-12)
    native, why = native_bf16("cpu")
    return {"crps_float32": vals["float32"], "crps_bfloat16": vals["bfloat16"],
            "relative_change": rel, "tolerance": BF16_CRPS_TOLERANCE,
            "bfloat16_ok": bool(rel <= BF16_CRPS_TOLERANCE), "cases": len(cases),
            "members": members, "native_here": native, "hardware": why}


def pair_statistics(ens: xr.Dataset) -> dict:
    """What a joint wind model's reproducibility case records of its ensemble."""
    from xstochsr.metrics.blocks import block_edge_ratio

    out = {}
    for v in ens.data_vars:
        out[f"{v}_mean"] = float(ens[v].mean())
        out[f"{v}_spread"] = float(ens[v].std("realization").mean())
        out[f"{v}_block_edge"] = float(block_edge_ratio(ens[v], factor=8))
    return out


def pair_reproducibility(model, case: dict) -> dict:
    """A joint wind model on real coarse winds (the blizzard: no fine truth to score), the
    statistics of :func:`pair_statistics`, with ``downscale``'s defaults and
    ``regrid_input=True`` (onto the model's native spacing)."""
    ds = datasets.open_sample(case["sample"])[case["variable"]]
    coarse = ds.isel({d: slice(*ab) for d, ab in case["isel"].items()})
    ens = xstochsr.downscale(coarse, factor=model.card.factor, members=case["members"],
                             model=model, seed=case["seed"], progress=False,
                             precision="float32", regrid_input=True)
    return {**case, "regrid_input": True, "model": pair_statistics(ens)}


def reproducibility_case(model, recipe: dict, case: dict) -> dict:
    """Score ``model`` on the small recorded ``case`` (see ``REPRODUCIBILITY``).

    Returns the case (sample, variable, ``isel`` as [start, stop) slices, members, seed,
    fss_threshold) with the model's headline scores under ``model``, as ``downscale``
    runs it by default.
    """
    truth = datasets.open_sample(case["sample"])[case["variable"]]
    truth = truth.isel({d: slice(*ab) for d, ab in case["isel"].items() if d in truth.dims})
    coarse = coarsen_field(truth.load(), model.card.factor)
    ens = xstochsr.downscale(coarse, factor=model.card.factor, members=case["members"],
                             model=model, seed=case["seed"], progress=False,
                             precision="float32")  # the same numbers on every machine
    row = score_table(ens, match_grid(truth, ens), coarse, model.card.factor,
                      seed=case["seed"], threshold=recipe["fss_threshold"])
    return {**case, "fss_threshold": recipe["fss_threshold"], "model": row}


def terrain_scores(model, subset: str, frames: int, sequences: int, members: int,
                   seed: int, blind: list[Path] = (), data: Path = TERRAIN) -> dict:
    """Rows ``model_raw``, the terrain-blind model and the baselines on set ``orographic``.

    Scored by ``ablate_terrain.evaluate`` (the code the ablation chose the arm with) on
    the first ``sequences`` of the file's subset ``subset``; interpolators with one
    member (they are deterministic), the rest with ``members``.
    """
    import ablate_terrain as at

    if not data.exists():
        raise SystemExit(f"{data} is missing: write it with python "
                         "scripts/make_orographic_sequences.py")
    ds = at.with_slopes(xr.open_dataset(data))

    def score(m, n):
        card = getattr(m, "card", None)
        static = [e["name"] for e in card.static] if card is not None and card.static else None
        preds = [q["name"] for q in card.predictors or []] if card is not None else []
        row = at.evaluate(m, ds, static, frames, sequences, n, seed, predictors=preds or None,
                          which=subset)
        return {TERRAIN_KEYS[k]: v for k, v in row.items() if k in TERRAIN_KEYS}

    rows = {"model_raw": score(model, members)}
    for path in blind:
        rows[f"terrain-blind ({Path(path).resolve().parent.name})"] = score(
            xstochsr.load_model(path), members)
    for b in RECIPES["terrain"]["baselines"]:
        rows[b] = score(b, 1 if b in INTERPOLATION_METHODS else members)
    return rows


def terrain_case(model, case: dict) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """``(ens, truth, coarse)`` of a terrain model on its sample: the coarse rain and
    wind as a Dataset, the altitude as ``static=`` (slopes derived by ``downscale``)."""
    ds = datasets.open_sample(case["sample"])
    ds = ds.isel({d: slice(*ab) for d, ab in case["isel"].items() if d in ds.dims})
    f = model.card.factor
    names = [case["variable"], *case.get("predictors", [])]
    coarse = xr.Dataset({n: coarsen_field(ds[n].load(), f) for n in names})
    ens = xstochsr.downscale(coarse, factor=f, members=case["members"], model=model,
                             seed=case["seed"], progress=False, precision="float32",
                             static=ds[case["static"]])[case["variable"]]
    truth = ds[case["variable"]].load()
    return ens, match_grid(truth, ens), coarse[case["variable"]]


def terrain_reproducibility(model, case: dict) -> dict:
    """A terrain model's small recorded case (``REPRODUCIBILITY["terrain"]``), scored by
    :func:`xstochsr.demo.score_table` as the one-variable models' cases are."""
    ens, truth, coarse = terrain_case(model, case)
    row = score_table(ens, truth, coarse, model.card.factor, seed=case["seed"],
                      threshold=RECIPES["terrain"]["fss_threshold"])
    return {**case, "fss_threshold": RECIPES["terrain"]["fss_threshold"], "model": row}


def _table(title: str, scores: dict) -> str:
    from xstochsr.demo import _format_table
    from xstochsr.models.card_markdown import PAIR_COLUMNS

    if any("windward_lee_log_error" in row for row in scores.values()):  # terrain rows
        return "\n".join([title, *(f"  {method}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in row.items()) for method, row in scores.items())])
    if not any(PAIR_COLUMNS[0][0] in row for row in scores.values()):
        return f"{title}\n{_format_table(scores)}"
    lines = [title]  # a wind pair: the physics columns the card shows
    for method, row in scores.items():
        lines.append(f"  {method}: " + ", ".join(f"{label} {row[key]:.4g}"
                                                 for key, label in PAIR_COLUMNS if key in row))
    return "\n".join(lines)


#: Gates of issue 10 on the raw network: (name, test(raw, rows) -> (value, limit, passed)).
def _crps_gate(raw: dict, rows: dict, key: str, label: str = "CRPS"):
    name, best = best_interpolator(rows, key)
    return (f"{label} vs best interpolator ({name})", raw[key], best, raw[key] < best)


def _rain_gates(raw: dict, rows: dict) -> list[tuple[str, float, float, bool]]:
    rf = rows.get("rainfarm", {})
    out = [("block-mean error", raw["mass_error"], 0.01, raw["mass_error"] <= 0.01),
           _crps_gate(raw, rows, "crps")]
    if rf:
        out += [("CRPS vs 0.85 x RainFARM", raw["crps"], 0.85 * rf["crps"],
                 raw["crps"] <= 0.85 * rf["crps"]),
                ("LSD vs RainFARM", raw["lsd_db"], rf["lsd_db"], raw["lsd_db"] <= rf["lsd_db"])]
    if "rank_ks_wet" in raw:
        out.append(("wet rank KS", raw["rank_ks_wet"], 0.08, raw["rank_ks_wet"] <= 0.08))
        lim = 1.5 * raw["outlier_proportion_calibrated"]
        out.append(("wet outlier proportion", raw["outlier_proportion_wet"], lim,
                    raw["outlier_proportion_wet"] <= lim))
    if "lag1" in raw:
        d = abs(raw["lag1"] - raw["lag1_truth"])
        out.append(("|lag-1 - truth's|", d, 0.05, d <= 0.05))
    if "block_edge" in raw:
        r = abs(raw["block_edge"] / raw["block_edge_truth"] - 1)
        out.append(("|block-edge / truth's - 1|", r, 0.10, r <= 0.10))
    return out


def _wind_gates(raw: dict, rows: dict) -> list[tuple[str, float, float, bool]]:
    cal = raw["outlier_proportion_calibrated"]
    return [_crps_gate(raw, rows, "crps"),
            ("outlier proportion", raw["outlier_proportion"], 2 * cal,
             raw["outlier_proportion"] <= 2 * cal)]


def _terrain_gates(raw: dict, rows: dict) -> list[tuple[str, float, float, bool]]:
    """Issue 13's: better than the terrain-blind model on unseen ranges; issue 10's floor."""
    out = []
    blind = [k for k in rows if k.startswith("terrain-blind")]
    for k in blind:
        out.append(("CRPS below the terrain-blind model's", raw["crps"], rows[k]["crps"],
                    raw["crps"] < rows[k]["crps"]))
        b = rows[k]["windward_lee_log_error"]
        out.append(("windward/lee log-contrast error below the terrain-blind model's",
                    raw["windward_lee_log_error"], b, raw["windward_lee_log_error"] < b))
    out.append(("CRPS below bilinear's", raw["crps"], rows["bilinear"]["crps"],
                raw["crps"] < rows["bilinear"]["crps"]))
    lim = 0.85 * rows["rainfarm"]["crps"]
    out.append(("CRPS <= 0.85 x RainFARM's", raw["crps"], lim, raw["crps"] <= lim))
    out.append(("wet rank KS <= 0.08", raw["rank_ks_wet"], 0.08, raw["rank_ks_wet"] <= 0.08))
    cal = 1.5 * raw["outlier_proportion_calibrated"]
    out.append(("wet outliers <= 1.5 x calibrated", raw["outlier_proportion_wet"], cal,
                raw["outlier_proportion_wet"] <= cal))
    return out


def _pair_gates(raw: dict, rows: dict) -> list[tuple[str, float, float, bool]]:
    lim = 2 * raw["outlier_proportion_calibrated"]
    out = []
    for v, c in (("eastward_wind", "u"), ("northward_wind", "v")):
        out += [_crps_gate(raw, rows, f"{v}_crps", f"CRPS {c}"),
                (f"outlier proportion {c}", raw[f"outlier_proportion_{c}"], lim,
                 raw[f"outlier_proportion_{c}"] <= lim)]
    return out


def gate(scores: dict, kind: str) -> tuple[bool, list[dict]]:
    """Judge every gate on every set; returns (all passed, one record per gate and set)."""
    rules = {"lwe_precipitation_rate": _rain_gates, "wind_pair": _pair_gates,
             "terrain": _terrain_gates}.get(kind, _wind_gates)
    records = []
    for name, rows in scores.items():
        raw = rows["model_raw"] if "model_raw" in rows else rows["model"]
        for what, value, limit, ok in rules(raw, rows):
            records.append({"set": name, "gate": what, "value": round(value, 5),
                            "limit": round(limit, 5), "passed": bool(ok)})
    return all(r["passed"] for r in records), records


def log_test_read(model_path: Path, reason: str | None) -> None:
    """Record a read of the test set for these weights; refuse a second one without a reason."""
    from xstochsr.models.gan import model_paths

    digest = datasets.file_hash(model_paths(model_path)[0])
    reads = json.loads(TEST_READS.read_text()) if TEST_READS.exists() else []
    earlier = [r for r in reads if r["weights_sha256"] == digest]
    if earlier and not reason:
        raise SystemExit(
            f"The test set was already read for these weights ({earlier[0]['date']}); it is "
            "read once per shipped model. Choose and gate on --subset validation, or pass "
            "--reread 'why' to read it again (logged).")
    import datetime

    reads.append({"weights_sha256": digest, "model": str(model_path),
                  "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                  **({"reread": reason} if reason else {})})
    atomic_write_bytes(TEST_READS, (json.dumps(reads, indent=2) + "\n").encode())


def ship(path: Path, model_name: str, script: str) -> None:
    """Copy weights and card into the package and register them with their sha256."""
    data = REPO / "xstochsr" / "data"
    for suffix in (".safetensors", ".json"):
        src = path.with_suffix(suffix) if path.suffix else path.with_name(path.name + suffix)
        if src.resolve() != (data / f"{model_name}{suffix}").resolve():
            shutil.copyfile(src, data / f"{model_name}{suffix}")
    begin, end = f"# >>> model {model_name}", f"# <<< model {model_name}"
    lines = [begin + " (managed by scripts/evaluate_pretrained.py --ship)",
             f"# {model_name}: pretrained generator trained with {script} "
             "(card: docs/models.md).", "#   Licence: MIT (weights)."]
    for suffix, what in ((".safetensors", "weights (safetensors)"),
                         (".json", "model card (JSON; held-out scores under 'scores')")):
        f = data / f"{model_name}{suffix}"
        lines += [f"#   {model_name} {what}",
                  f"xstochsr/data/{f.name} sha256:{datasets.file_hash(f)}"]
    from registry_blocks import write_block

    write_block(begin, end, "\n".join([*lines, end]) + "\n", REPO)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--subset", choices=["validation", "test"], default="validation")
    p.add_argument("--sim", type=Path, default=SIM,
                   help="simulated sequences (scripts/make_rain_sequences.py's file)")
    p.add_argument("--members", type=int, default=20)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--blind", type=Path, action="append", default=[],
                   help="terrain models: a terrain-blind model of the same ablation and "
                        "budget, scored beside it (gates against each; repeatable)")
    p.add_argument("--terrain-data", type=Path, default=TERRAIN,
                   help="scripts/make_orographic_sequences.py's file")
    p.add_argument("--ship", action="store_true", help="ship when every gate passes")
    p.add_argument("--ship-anyway", action="store_true",
                   help="with --ship: ship even if gates fail (when the model beats the shipped "
                        "one on the test set; the card lists the missed gates)")
    p.add_argument("--reread", default=None, metavar="WHY",
                   help="read the test set again for the same weights (logged with WHY)")
    p.add_argument("--reproducibility-only", action="store_true",
                   help="recompute only the card's small reproducibility case and rewrite "
                        "that entry (and, with --ship, the registered hashes); no other score "
                        "changes")
    p.add_argument("--precision-check", action="store_true",
                   help="measure the bare network's CRPS in float32 and bfloat16 on the "
                        "subset's simulated sequences (or the wind sample) and record it in "
                        "the card (downscale's precision='auto' reads it); with --ship, "
                        "re-register the hashes; no other score changes")
    args = p.parse_args(argv)

    model = xstochsr.load_model(args.model)
    f = model.card.factor
    kind = ("terrain" if model.card.static else
            "wind_pair" if model.card.channels else model.card.standard_name)
    recipe = RECIPES[kind]
    card_path = args.model.with_name(args.model.name + ".json") if not args.model.suffix \
        else args.model.with_suffix(".json")
    repro = (pair_reproducibility(model, REPRODUCIBILITY[kind]) if kind == "wind_pair"
             else terrain_reproducibility(model, REPRODUCIBILITY[kind]) if kind == "terrain"
             else reproducibility_case(model, recipe, REPRODUCIBILITY[kind]))
    print("reproducibility case:", json.dumps(repro["model"]))
    if args.reproducibility_only:
        card = json.loads(card_path.read_text())
        card.setdefault("scores", {})["reproducibility"] = repro
        atomic_write_bytes(card_path, json.dumps(card, indent=2, sort_keys=True).encode())
        if args.ship:
            ship(args.model, model.card.name, recipe["script"])
            print(f"re-registered {model.card.name} in xstochsr/data and data_registry.txt")
        return 0
    if args.precision_check:
        if kind in ("wind_pair", "terrain"):
            p.error("--precision-check scores one-variable models without terrain only")
        cases = (qg_cases(args.subset, args.frames, args.sequences) if kind == "eastward_wind"
                 else sim_cases(args.sim, args.subset, args.frames, args.sequences))
        check = precision_check(model, cases, f, args.members, args.seed)
        print("precision check:", json.dumps(check))
        card = json.loads(card_path.read_text())
        card.setdefault("scores", {})["precision"] = {**check, "subset": args.subset}
        atomic_write_bytes(card_path, json.dumps(card, indent=2, sort_keys=True).encode())
        if args.ship:
            ship(args.model, model.card.name, recipe["script"])
            print(f"re-registered {model.card.name} in xstochsr/data and data_registry.txt")
        return 0
    if args.ship and args.subset != "test":
        p.error("--ship needs --subset test: a shipped card reports the test set")
    if args.subset == "test":
        log_test_read(args.model, args.reread)
    if kind == "wind_pair":
        sets = None
        scores = {"qg_atmos": pair_scores(model, args.subset, args.frames, args.sequences,
                                          args.members, args.seed)}
    elif kind == "terrain":
        sets = None
        scores = {"orographic": terrain_scores(model, args.subset, args.frames,
                                               args.sequences, args.members, args.seed,
                                               args.blind, args.terrain_data)}
        for row in scores["orographic"].values():
            row["outlier_proportion_calibrated"] = 2 / (args.members + 1)
    elif kind == "eastward_wind":
        sets = {"qg": qg_cases(args.subset, args.frames, args.sequences)}
    else:
        sets = {"real": real_cases(args.subset)}
        if args.sim.exists():
            sets["sim"] = sim_cases(args.sim, args.subset, args.frames, args.sequences)
        else:
            print(f"no simulated sequences at {args.sim}: the temporal gate is not judged "
                  "(write them with python scripts/make_rain_sequences.py)")
    kept: dict[str, list] = {}
    if sets is not None:
        scores = {name: evaluate(model, cases, f, args.members, args.seed, recipe,
                                 keep=kept.setdefault(name, []))
                  for name, cases in sets.items()}
    for name, s in scores.items():
        print(_table(f"{args.subset} set {name!r} ({args.members} members):", s))
    ok, records = gate(scores, kind)
    print("GATES:", "ALL PASS" if ok else "SOME FAIL")
    for r in records:
        print(f"  [{'pass' if r['passed'] else 'FAIL'}] {r['set']}: {r['gate']} "
              f"{r['value']:.4f} (limit {r['limit']:.4f})")
    if args.subset == "validation":
        return 0 if ok else 1
    card = json.loads(card_path.read_text())
    card["scores"] = {"members": args.members, "subset": "test", "held_out": scores,
                      "gate_passed": ok, "gates": records,
                      "gate_failures": [f"{r['set']}: {r['gate']} {r['value']:.4f} vs limit "
                                        f"{r['limit']:.4f}" for r in records if not r["passed"]],
                      "validation": card.get("scores", {}).get("validation"),
                      "reproducibility": repro,
                      "script": "scripts/evaluate_pretrained.py"}
    if kept and kind == "lwe_precipitation_rate":
        rel = f"img/cards/{model.card.name}_qq.png"  # relative to docs/models.md
        qq_figure(kept, REPO / "docs" / rel, f"{model.card.name}, bare network, "
                  f"{args.subset} set, {args.members} members")
        card["scores"]["qq_figure"] = rel
    atomic_write_bytes(card_path, json.dumps(card, indent=2, sort_keys=True).encode())
    if args.ship and (ok or args.ship_anyway):
        ship(args.model, model.card.name, recipe["script"])
        print(f"shipped {model.card.name} into xstochsr/data and data_registry.txt")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
