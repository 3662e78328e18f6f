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
    assert s["divergence_ratio_ens"] > 0 and s["divergence_ratio_obs"] > 0


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


def test_geopotential_inverts_a_periodic_flow_with_a_mean():
    """u = -dpsi/dy, v = dpsi/dx of a known periodic psi plus a uniform wind (U, V)."""
    import xarray as xr

    n, d, f0, big_u, big_v = 32, 25e3, 1e-4, 9.0, -2.0
    c = (np.arange(n) + 0.5) * d
    k = 2 * np.pi / (n * d)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    psi = 1e6 * (np.sin(2 * k * xx) * np.cos(3 * k * yy) + 0.5 * np.cos(k * yy))
    u = 1e6 * (3 * k * np.sin(2 * k * xx) * np.sin(3 * k * yy) + 0.5 * k * np.sin(k * yy))
    v = 1e6 * 2 * k * np.cos(2 * k * xx) * np.cos(3 * k * yy)
    ds = xr.Dataset({"eastward_wind": (("y", "x"), u + big_u),
                     "northward_wind": (("y", "x"), v + big_v)},
                    coords={"y": c, "x": c}, attrs={ap.F0_ATTR: f0})
    got = ap.geopotential(ds)["geopotential"]
    want = f0 * (psi - big_u * (yy - c.mean()) + big_v * (xx - c.mean()))
    # psi is defined up to a constant: compare anomalies
    np.testing.assert_allclose(got - got.mean(), want - want.mean(),
                               atol=1e-3 * np.abs(want).max())
    assert got.attrs["standard_name"] == "geopotential" and got.attrs["units"] == "m2 s-2"


def test_predictor_arm_is_joint_plus_geopotential():
    assert ap.ARMS["joint+geopotential"] == ap.ARMS["joint"]
    assert ap.ARMS["joint-smooth+geopotential"] == ap.ARMS["joint-smooth"]
    assert ap.PREDICTORS == {"joint+geopotential": ["geopotential"],
                             "joint-smooth+geopotential": ["geopotential"]}


def test_smooth_physics_arm_is_joint_physics_with_the_smooth_layer():
    arm = dict(ap.ARMS["joint-smooth+physics"])
    assert arm.pop("constraint_prior") == "bilinear"
    assert arm == ap.ARMS["joint+physics"]


def test_divergence_arms_differ_from_their_base_by_the_penalty_alone():
    for base, weights in (("joint-smooth", (1, 10, 30)), ("streamfunction-smooth", (1, 10))):
        for weight in weights:
            name = f"{base}+div{weight}"
            arm = {k: dict(v) if isinstance(v, dict) else v for k, v in ap.ARMS[name].items()}
            assert arm["objective"].pop("divergence") == weight
            assert arm == ap.ARMS[base], name


def test_every_joint_arm_can_be_shipped_with_a_description():
    t = load_script("scripts/train_qg_uv_x8.py", "train_qg_uv_x8")
    assert set(t.DESCRIBE) == set(ap.ARMS) - set(ap.SEPARATE)
    assert t.ARM in t.DESCRIBE
