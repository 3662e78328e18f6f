"""scripts/ablate_physics.py (issue 12): the arms, the scoring of a baseline, the table."""

from __future__ import annotations

import json

import numpy as np
from repo_files import load_script
from test_joint import winds

ap = load_script("scripts/ablate_physics.py", "ablate_physics")


def test_arms_differ_only_in_physics():
    base = {k: v for k, v in ap.ARMS["joint"].items() if k != "objective"}
    for name, arm in ap.ARMS.items():
        assert arm["constraint"] == "additive", name
        assert {k: arm["objective"][k] for k in ap.CRPS} == ap.CRPS, name
        rest = {k: v for k, v in arm.items()
                if k not in ("objective", "gen_wind_head", "constraint_prior")}
        assert rest == base, name
        # the smooth arms differ from their block-constant twins by the prior alone
        if name.endswith("-smooth"):
            twin = ap.ARMS[name.removesuffix("-smooth")]
            assert {k: v for k, v in arm.items() if k != "constraint_prior"} == twin, name
            assert arm["constraint_prior"] == "bilinear"
    assert ap.ARMS["streamfunction"]["gen_wind_head"] == "streamfunction"
    assert "kinematics" in ap.ARMS["joint+physics"]["objective"]


def test_bilinear_scores_on_a_small_split(tmp_path):
    ds = winds(seed=1, sequences=2, frames=3, n=64, v_units="m s-1").rename(
        ua="eastward_wind", va="northward_wind")
    ds.to_netcdf(tmp_path / "val.nc")
    truth = ap.cases(tmp_path / "val.nc", frames=2, sequences=1)
    assert dict(truth.sizes) == {"sequence": 1, "time": 2, "y": 64, "x": 64}
    s = ap.evaluate("bilinear", truth, members=1, seed=0)
    assert s["eastward_wind_crps"] > 0 and s["northward_wind_crps"] > 0
    assert s["outliers"] == [1.0, 1.0]  # one deterministic member misses every truth
    assert np.isfinite(s["divergence_rmse"]) and np.isfinite(s["kinetic_energy_lsd"])


def test_table_lists_every_arm(tmp_path):
    (tmp_path / "joint").mkdir()
    scores = {"eastward_wind_crps": 1.5, "northward_wind_crps": 1.25, "rank_ks": [0.1, 0.2],
              "outliers": [0.3, 0.4], "divergence_rmse": 2.0, "vorticity_lsd": 3.0,
              "kinetic_energy_slope_error": 0.5, "kinetic_energy_lsd": 4.0}
    (tmp_path / "joint" / "result.json").write_text(
        json.dumps({"steps": 100, "cpu_seconds": 60.0, "scores": scores}))
    text = ap.table(tmp_path)
    assert "| joint | 100 | 60 | 1.500 | 1.250 | 2.000 |" in text
    assert "| joint | 0.100, 0.200 | 0.300, 0.400 | nan, nan |" in text
    assert "| streamfunction | not run" in text


def test_pooled_puts_v_after_u_in_u_units():
    ds = winds(seed=2, sequences=2, frames=3, n=16, v_units="km h-1").rename(
        ua="eastward_wind", va="northward_wind")
    got = ap.pooled(ds)[ap.COMPONENT]
    assert got.sizes["sequence"] == 4 and got.attrs["units"] == ds["eastward_wind"].attrs["units"]
    np.testing.assert_allclose(got.isel(sequence=slice(0, 2)), ds["eastward_wind"])
    np.testing.assert_allclose(got.isel(sequence=slice(2, 4)), ds["northward_wind"] / 3.6,
                               rtol=1e-5)


def test_one_at_a_time_downscales_each_component():
    ds = winds(seed=3, sequences=1, frames=2, n=32, v_units="m s-1").rename(
        ua="eastward_wind", va="northward_wind")
    from xstochsr.grid import coarsen_field

    coarse = ds.map(lambda a: coarsen_field(a, 8))
    ens = ap._one_at_a_time("bilinear", coarse, 2, seed=0)
    assert set(ens.data_vars) == set(ap.VARS)
    assert ens["eastward_wind"].attrs["units"] == ds["eastward_wind"].attrs["units"]
    assert ens["northward_wind"].sizes["realization"] == 2
