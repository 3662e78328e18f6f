"""A model card as Markdown: what docs/models.md shows for every pretrained model.

Rendered from the JSON card itself, so the documentation can only say what the card
says (a test checks docs/models.md against the registered cards).
"""

from __future__ import annotations

from typing import Any

from .base import ModelCard

__all__ = ["card_markdown"]

#: score columns of the held-out tables, with their headers
COLUMNS = (("crps", "CRPS"), ("rank_ks", "rank KS"), ("outlier_proportion", "outliers"),
           ("rmse", "ens.-mean RMSE"),
           ("lsd_db", "LSD (dB)"), ("fss", "FSS"), ("q99_ratio", "q99 ratio"),
           ("mass_error", "mass error"))
#: further columns, shown when a card's rows have them (cards scored since issue 10)
EXTRA_COLUMNS = (("rank_ks_wet", "wet rank KS"), ("outlier_proportion_wet", "wet outliers"),
                 ("lag1", "lag-1"), ("lag1_truth", "truth lag-1"),
                 ("block_edge", "block-edge"), ("block_edge_truth", "truth block-edge"),
                 ("windward_lee_log_error", "windward/lee log-contrast error"),
                 ("windward_lee_members", "windward/lee contrast, members"),
                 ("windward_lee_truth", "truth's"))
#: the extremes, a table of their own where a card's rows have them (ratios of the
#: members' statistic to the truth's: 1 is best)
EXTREME_COLUMNS = (("q90_ratio", "q90 ratio"), ("q99_ratio", "q99 ratio"),
                   ("q999_ratio", "q99.9 ratio"), ("exceed1_ratio", ">= 1 mm/h freq. ratio"),
                   ("exceed5_ratio", ">= 5 mm/h freq. ratio"),
                   ("exceed10_ratio", ">= 10 mm/h freq. ratio"))
#: columns of a wind pair's held-out tables (a joint model of eastward and northward wind)
PAIR_COLUMNS = (("eastward_wind_crps", "CRPS u"), ("northward_wind_crps", "CRPS v"),
                ("rank_ks_u", "rank KS u"), ("rank_ks_v", "rank KS v"),
                ("outlier_proportion_u", "outliers u"), ("outlier_proportion_v", "outliers v"),
                ("divergence_rmse", "div. RMSE (1e-6 s-1)"),
                ("vorticity_lsd", "vort. LSD (dB)"),
                ("kinetic_energy_slope_error", "KE slope error"),
                ("kinetic_energy_lsd", "KE LSD (dB)"),
                ("block_edge_ratio_u", "block-edge / truth's u"),
                ("block_edge_ratio_v", "block-edge / truth's v"),
                ("ageostrophic_ratio_ens", "ageostrophic ratio"),
                ("divergence_ratio_ens", "div. / vort. RMS"),
                ("divergence_ratio_obs", "truth's"),
                ("lag1_correlation_u", "lag-1 u"), ("lag1_correlation_truth_u", "truth's"),
                ("lag1_correlation_v", "lag-1 v"), ("lag1_correlation_truth_v", "truth's"),
                ("frame_change_ratio_u", "frame-change std / truth's u"),
                ("q999_ratio_u", "q99.9 / truth's u"), ("q999_ratio_v", "q99.9 / truth's v"))
ROW_NAMES = {"model": "**{name}** (`downscale` default, coarse means conserved)",
             "model_raw": "{name}, bare network (`conserve=False`)"}


def _extremes_table(set_name: str, table: dict, name: str) -> list[str]:
    """Markdown lines: the extremes of each method on one held-out set."""
    cols = [c for c in EXTREME_COLUMNS if any(c[0] in row for row in table.values())]
    lines = [f"*Extremes, set `{set_name}`* (members' quantile or exceedance frequency over "
             "the truth's; 1 is best, below 1 too weak or too rare)", "",
             "| method | " + " | ".join(c[1] for c in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for method, row in table.items():
        label = ROW_NAMES.get(method, "{name}").format(
            name=name if method in ROW_NAMES else method)
        lines.append(f"| {label} | " + " | ".join(
            _fmt(row[c[0]]) if c[0] in row else "-" for c in cols) + " |")
    return [*lines, ""]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != 0 and abs(v) < 0.1:
            return f"{v:.3g}"
        return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3f}"
    return str(v)


def card_markdown(card: ModelCard, level: int = 2) -> str:
    """Render ``card`` as Markdown: description, usage, data, training, held-out scores.

    Parameters
    ----------
    card : ModelCard
    level : int
        Heading level of the model's title.

    Returns
    -------
    str
    """
    h = "#" * level
    t = card.training
    chans = getattr(card, "channels", None) or []
    static = getattr(card, "static", None) or []
    preds = getattr(card, "predictors", None) or []
    src = "ds" if chans else "da"
    call = (f'ens = {src}.sr.downscale(model="{card.name}", factor={card.factor}, members=10'
            + (", static=topo)" if static else ")"))
    if chans:  # a Dataset holding the outputs and the inputs-only predictors
        call += "  # ds: a Dataset holding " + ", ".join(
            c.get("standard_name") or c["name"] for c in (*chans, *preds))
    if static:
        call += ("; " if chans else "  # ") + "topo: " + ", ".join(
            e.get("standard_name") or e["name"] for e in static[:1])
    lines = [f"{h} `{card.name}`", "", card.description, "",
             "```python", call, "```", "", "| | |", "|---|---|"]
    if chans:
        lines += [f"| field {k + 1} of {len(chans)} | `{c['name']}`, standard_name "
                  f"`{c.get('standard_name')}`, in `{c.get('units')}` |"
                  for k, c in enumerate(chans)]
    else:
        lines.append(f"| field | `{card.variable}`, standard_name `{card.standard_name}`, "
                     f"in `{card.units}` |")
    lines += [f"| coarse predictor `{q['name']}` (seen, not downscaled) | standard_name "
              f"`{q.get('standard_name')}`, in `{q.get('units')}` |" for q in preds]
    lines.append(f"| factor | {card.factor} |")
    if card.native_grid_spacing:
        g = card.native_grid_spacing
        lines.append(f"| coarse grid spacing trained on | {_fmt(g['value'])} {g['units']} |")
    lines.append(f"| transform | `{card.transform}` |")
    for e in getattr(card, "static", None) or []:  # static predictors (xstochsr.static)
        g = e.get("grid_spacing") or {}
        lines.append(
            f"| static predictor `{e['name']}` (`static=`) | {e.get('standard_name') or ''} "
            f"in `{e.get('units')}`, mean {_fmt(e['mean'])}, std {_fmt(e['std'])}"
            + (f", on a {_fmt(g['value'])} {g.get('units', '')} grid" if g else "") + " |")
    rng = card.training_range
    if rng:
        q = rng.get("quantiles", {})
        qs = ", ".join(f"{_fmt(float(v))}" for v in q.values())
        where = ", ".join(f"{float(k) * 100:g}" for k in q)
        extra = []
        if rng.get("time_step"):
            extra.append(f"time step {_fmt(rng['time_step']['value'])} "
                         f"{rng['time_step']['units']}")
        lines.append(f"| inputs trained on (`downscale` warns outside) | std "
                     f"{_fmt(float(rng.get('std', float('nan'))))} {rng.get('units', '')}"
                     + (f"; percentiles {where}: {qs}" if q else "")
                     + "".join(f"; {e}" for e in extra) + " |")
    if t:
        patch = t.get("patch", {})
        lines += [
            f"| training data | {t.get('data_description') or t.get('data', '')} "
            f"(`{t.get('data', '')}`, sequences {t.get('sequences', 'all')}) |",
            f"| held out | {t.get('held_out', '')} |",
            f"| patches | coarse {patch.get('coarse')}, fine {patch.get('fine')}, "
            f"{patch.get('seq_len')} frames |",
            f"| objective, steps | {t.get('objective')}"
            + (f" (term balance {t['config']['term_balance']})"
               if t.get("config", {}).get("term_balance", "fixed") != "fixed" else "")
            + f", {t.get('steps')} steps "
            f"({t.get('sequences_seen', '?')} sequences seen), "
            f"preset `{t.get('config', {}).get('preset')}` |",
            (f"| hardware, time | {t.get('trained_device_name', t.get('trained_device'))}, "
             f"{t['trained_wall_seconds'] / 60:.1f} min ({t['trained_by']}, "
             f"{t.get('trained_steps', '?')} steps); card built on "
             f"{t.get('hardware', {}).get('device', '?')} by resuming its checkpoint |"
             if t.get("trained_by") and "trained_wall_seconds" in t else
             f"| hardware, time | {t.get('hardware', {}).get('device', '?')}, "
             f"torch {t.get('hardware', {}).get('torch', '?')}, "
             f"{t.get('torch_threads', '?')} thread(s); "
             f"{t.get('wall_time_seconds', t.get('wall_time_s', 0)) / 60:.1f} min"
             + (" in all, resumed once" if t.get("resumed_from") else "") + " |"),
            f"| script | `{t.get('script', '')}` |",
        ]
    lines += [f"| licence | {card.license} |", f"| citation | {card.citation} |", ""]
    held = card.scores.get("held_out", {})
    if held:
        members = card.scores.get("members")
        k = card.scores.get("gate_ks_baseline", "rainfarm")
        verdict = "passed" if card.scores.get("gate_passed") else "FAILED"
        ideal = f" (a calibrated ensemble has {2 / (members + 1):.3f} outliers)" \
            if isinstance(members, int) else ""
        gates = card.scores.get("gates")
        if gates:
            subset = card.scores.get("subset", "held-out")
            failed = [g for g in gates if not g["passed"]]
            lines += [f"Scores on the {subset} set ({members} members{ideal}; lower is better "
                      "except FSS, and q99 ratio is best at 1). Gates (issue 10, on the bare "
                      f"network): {len(gates) - len(failed)} of {len(gates)} passed.", "",
                      "| set | gate | value | limit | |", "|---|---|---:|---:|---|"]
            lines += [f"| {g['set']} | {g['gate']} | {_fmt(g['value'])} | {_fmt(g['limit'])} | "
                      f"{'pass' if g['passed'] else '**missed**'} |" for g in gates]
            lines.append("")
        else:
            lines += [f"Held-out scores ({members} members{ideal}; lower is better except "
                      "FSS, and q99 ratio is best at 1). The shipping gate, CRPS below "
                      f"bilinear's and rank KS below {k}'s on every held-out set, {verdict}.",
                      ""]
        for set_name, table in held.items():
            pair = any(PAIR_COLUMNS[0][0] in row for row in table.values())
            cols = tuple(c for c in PAIR_COLUMNS if any(c[0] in row for row in table.values())
                         ) if pair else COLUMNS + tuple(
                c for c in EXTRA_COLUMNS if any(c[0] in row for row in table.values()))
            lines += [f"*Held-out set `{set_name}`*", "",
                      "| method | " + " | ".join(c[1] for c in cols) + " |",
                      "|---" * (len(cols) + 1) + "|"]
            for method, row in table.items():
                label = ROW_NAMES.get(method, "{name}").format(
                    name=card.name if method in ROW_NAMES else method)
                lines.append(f"| {label} | "
                             + " | ".join(_fmt(row[c[0]]) if c[0] in row else "-"
                                          for c in cols)
                             + " |")
            lines.append("")
            if not pair and any("q999_ratio" in row for row in table.values()):
                lines += _extremes_table(set_name, table, card.name)
        if card.scores.get("qq_figure"):
            lines += [f"![quantile-quantile plot of the bare network's members against the "
                      f"truth]({card.scores['qq_figure']})", ""]
    prec = card.scores.get("precision")
    if prec:
        lines += [f"bfloat16 (`downscale(precision=...)`): CRPS {_fmt(prec['crps_bfloat16'])} "
                  f"against {_fmt(prec['crps_float32'])} in float32 on {prec.get('cases')} "
                  f"{prec.get('subset', '')} case(s), a change of "
                  f"{100 * prec['relative_change']:.3f} % "
                  f"({'within' if prec.get('bfloat16_ok') else 'beyond'} the "
                  f"{100 * prec.get('tolerance', 0.01):.0f} % tolerance"
                  + ("; measured emulated" if not prec.get("native_here") else "")
                  + "): `precision=\"auto\"` uses bfloat16 where the hardware has it natively"
                  + ("" if prec.get("bfloat16_ok") else " — not for this model") + ".", ""]
    val = card.scores.get("validation")
    if val:
        lines += ["Last validation during training (time blocks held out of the training "
                  "sequences, bare network, in transformed units): "
                  + ", ".join(f"{k} {_fmt(v)}" for k, v in val.items()
                              if isinstance(v, float)) + ".", ""]
    return "\n".join(lines)
