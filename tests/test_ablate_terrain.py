"""scripts/ablate_terrain.py (issue 13): slopes, subsets and the table, on a small field."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from repo_files import load_script

at = load_script("scripts/ablate_terrain.py", "ablate_terrain")


def _terrain_ds():
    x = np.arange(16) * 3000.0
    h = 100.0 * x[None, :] / 3000.0 + 0.0 * x[:, None]  # rises 100 m per cell eastward
    return xr.Dataset(
        {"surface_altitude": (("sequence", "y", "x"),
                              np.broadcast_to(h, (3, 16, 16)).copy(), {"units": "m"}),
         "subset": ("sequence", ["train", "validation", "test"])},
        coords={"x": x, "y": x, "sequence": [0, 1, 2]})


def test_slopes_are_the_terrain_gradient():
    ds = at.with_slopes(_terrain_ds())
    np.testing.assert_allclose(ds["terrain_slope_x"].values, 100.0 / 3000.0)
    np.testing.assert_allclose(ds["terrain_slope_y"].values, 0.0)
    assert ds["terrain_slope_x"].attrs["units"] == "1"
    assert at.ARMS["orography+slopes"] == ["surface_altitude", *at.SLOPES]
    assert at.ARMS["blind"] is None  # the arms differ only in their static inputs


def test_subsets_follow_the_file():
    ds = _terrain_ds()
    assert at.subset(ds, "validation")["sequence"].values.tolist() == [1]
    assert at.subset(ds, "train")["sequence"].values.tolist() == [0]


def test_table_lists_every_arm(tmp_path):
    (tmp_path / "orography").mkdir()
    scores = {"crps": 0.5, "rank_ks_wet": 0.05, "rank_outlier_proportion_wet": 0.2,
              "log_spectral_distance": 9.0, "contrast_log_error": 0.1,
              "contrast_members": 3.0, "contrast_truth": 3.3}
    (tmp_path / "orography" / "result.json").write_text(
        json.dumps({"steps": 100, "cpu_seconds": 60.0, "scores": scores}))
    text = at.table(tmp_path)
    assert "| orography | 100 | 60 | 0.500 |" in text
    assert "| blind | not run" in text and "| orography+slopes | not run" in text


def test_coarse_contrast_is_what_block_means_keep_of_a_windward_pattern():
    """Rain on every rising fine cell and none on falling ones: the truth's contrast is
    large, the block-constant coarse field (8 x 8 cells of a ridge-and-valley pattern
    with a 4-cell period) keeps none of it."""
    ds = _terrain_ds().isel(sequence=[1])
    x = ds["x"].values
    h = 500.0 + 300.0 * np.sin(2 * np.pi * x / (4 * 3000.0))  # ridges 4 cells apart
    ds["surface_altitude"][:] = np.broadcast_to(h[None, :], (1, 16, 16))
    rising = np.gradient(h) > 0
    rain = np.where(rising, 4.0, 0.5)[None, None, None, :] * np.ones((1, 2, 16, 1))
    ds["rain_rate"] = (("sequence", "time", "y", "x"), rain.astype("float32"))
    ds["eastward_wind"] = (("sequence", "time"), np.full((1, 2), 10.0))
    ds["northward_wind"] = (("sequence", "time"), np.zeros((1, 2)))
    out = at.coarse_contrast(ds, frames=2, sequences=1)
    assert out["contrast_truth"] == 8.0
    assert abs(out["contrast_coarse"] - 1.0) < 1e-6  # block means are flat over the ridges
    assert abs(out["contrast_log_error_coarse"] - np.log(8.0)) < 1e-6


def test_wind_arms_add_the_coarse_wind_as_predictors():
    assert at.predictors_of("orography+slopes+wind") == ["ua", "va"]
    assert at.predictors_of("orography+slopes") is None
    assert at.ARMS["orography+wind"] == at.ARMS["orography"]  # same static inputs
    ds = _terrain_ds()
    ds["rain_rate"] = (("sequence", "time", "y", "x"), np.ones((3, 2, 16, 16), "f4"))
    ds["eastward_wind"] = (("sequence", "time"), np.array([[1.0, 2.0]] * 3))
    ds["northward_wind"] = (("sequence", "time"), np.array([[-3.0, 4.0]] * 3))
    out = at.with_wind(ds)
    assert out["ua"].dims == out["rain_rate"].dims and out["ua"].dtype == np.float32
    np.testing.assert_array_equal(out["va"].isel(sequence=1, time=1).values, 4.0)
    np.testing.assert_array_equal(out["ua"].isel(time=0).values, 1.0)
    assert out["ua"].attrs["units"] == "m s-1"
    assert out["va"].attrs["standard_name"] == "northward_wind"
