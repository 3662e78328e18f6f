"""scripts/evaluate_pretrained.py: the wind-pair recipe (a joint model of u and v)."""

from __future__ import annotations

import sys

import numpy as np
from repo_files import ROOT, load_script
from test_joint import winds

sys.path.insert(0, str(ROOT / "scripts"))
ep = load_script("scripts/evaluate_pretrained.py", "evaluate_pretrained")


def test_pair_rows_flatten_and_gate_per_component(tmp_path):
    ds = winds(seed=4, sequences=1, frames=2, n=64, v_units="m s-1").rename(
        ua="eastward_wind", va="northward_wind")
    ds.to_netcdf(tmp_path / ep.ATMOS["validation"])
    rows = ep.pair_scores("bilinear", "validation", frames=2, sequences=1, members=7, seed=0,
                          atmos_dir=tmp_path)
    assert set(rows) == {"model", "qg-wind-x8 (u, v one at a time)", *ep.INTERPOLATION_METHODS}
    m = rows["model"]
    assert {"eastward_wind_crps", "outlier_proportion_v", "rank_ks_u",
            "divergence_rmse"} <= set(m)
    assert m["outlier_proportion_calibrated"] == 0.25
    gates = ep._pair_gates(m, rows)
    assert [g[0].split(" (")[0] for g in gates] == [
        "CRPS u vs best interpolator", "outlier proportion u",
        "CRPS v vs best interpolator", "outlier proportion v"]
    # bilinear against every interpolator, itself included: CRPS not below the best,
    # and one member misses every truth
    assert not any(g[3] for g in gates)
    for comp in ("u", "v"):
        var = {"u": "eastward_wind", "v": "northward_wind"}[comp]
        best = min(rows[b][f"{var}_crps"] for b in ep.INTERPOLATION_METHODS)
        g = next(g for g in gates if g[0].startswith(f"CRPS {comp}"))
        assert g[2] == best
    ok, records = ep.gate({"qg_atmos": rows}, "wind_pair")
    assert not ok and len(records) == 4 and np.isfinite([r["value"] for r in records]).all()


def test_crps_gate_names_the_interpolators_compared():
    rows = {"bilinear": {"crps": 1.0}, "bicubic": {"crps": 0.9}, "nearest": {"crps": 1.3}}
    assert ep.best_interpolator(rows, "crps") == ("bicubic", 0.9)
    assert ep.best_interpolator({"bilinear": {"crps": 1.0}}, "crps") == ("bilinear only", 1.0)
    name, value, limit, ok = ep._crps_gate({"crps": 0.95}, rows, "crps")
    assert name == "CRPS vs best interpolator (bicubic)" and limit == 0.9 and not ok


def test_pair_table_prints_the_physics_columns():
    row = {"eastward_wind_crps": 0.34, "northward_wind_crps": 0.32, "divergence_rmse": 5.1}
    text = ep._table("test set 'qg_atmos':", {"model": row})
    assert "model: CRPS u 0.34, CRPS v 0.32, div. RMSE (1e-6 s-1) 5.1" in text


def test_the_test_set_is_read_once_per_weights_unless_a_reason_is_logged(tmp_path,
                                                                          monkeypatch):
    import json

    import pytest

    log = tmp_path / "test_reads.json"
    monkeypatch.setattr(ep, "TEST_READS", log)
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"weights one")
    ep.log_test_read(tmp_path / "m", None)
    with pytest.raises(SystemExit, match="already read"):
        ep.log_test_read(tmp_path / "m", None)
    ep.log_test_read(tmp_path / "m", "a bug in the scorer, fixed in abc123")
    reads = json.loads(log.read_text())
    assert len(reads) == 2 and reads[1]["reread"].startswith("a bug")
    assert reads[0]["weights_sha256"] == reads[1]["weights_sha256"]
    weights.write_bytes(b"weights two")  # other weights: a first read of their own
    ep.log_test_read(tmp_path / "m", None)
    assert len(json.loads(log.read_text())) == 3


def test_evaluate_keeps_the_bare_networks_members_for_a_qq_figure(tmp_path):
    import xstochsr
    from xstochsr.training.data import synthetic_rain

    truth = synthetic_rain(frames=2, ny=32, nx=32, seed=0)["precip"]
    truth.attrs.update(units="mm h-1", standard_name="lwe_precipitation_rate")
    model = xstochsr.load_model("rain-x8")
    kept = []
    recipe = dict(ep.RECIPES["lwe_precipitation_rate"], baselines=("bilinear",))
    rows = ep.evaluate(model, [truth], 8, 3, 1, recipe, keep=kept)
    assert {"model", "model_raw", "bilinear"} <= set(rows)
    (ens, obs, units), = kept                       # one case, the bare network only
    assert ens.shape == (3, obs.size) and units == "mm h-1"
    assert "q999_ratio" in rows["model_raw"]
    path = tmp_path / "img" / "qq.png"
    ep.qq_figure({"sim": kept, "real": kept}, path, "title")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_terrain_gates_compare_with_the_terrain_blind_model():
    def row(crps, err, ks=0.05, out=0.2):
        return {"crps": crps, "windward_lee_log_error": err, "rank_ks_wet": ks,
                "outlier_proportion_wet": out, "outlier_proportion_calibrated": 2 / 11}

    rows = {"model_raw": row(0.40, 0.30, out=0.3), "terrain-blind (blind+wind)": row(0.42, 0.25),
            "bilinear": row(0.60, 0.5), "rainfarm": row(0.55, 0.4)}
    gates = ep._terrain_gates(rows["model_raw"], rows)
    verdict = {g[0]: g[3] for g in gates}
    assert verdict["CRPS below the terrain-blind model's"]
    assert not verdict["windward/lee log-contrast error below the terrain-blind model's"]
    assert verdict["CRPS below bilinear's"] and verdict["CRPS <= 0.85 x RainFARM's"]
    assert verdict["wet rank KS <= 0.08"]
    assert not verdict["wet outliers <= 1.5 x calibrated"]  # 0.3 > 1.5 x 2 / 11
    ok, records = ep.gate({"orographic": rows}, "terrain")
    assert not ok and len(records) == len(gates)
