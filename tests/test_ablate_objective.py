"""scripts/ablate_objective.py's helpers (issue 10): settings, records, post-hoc checks."""

from __future__ import annotations

import numpy as np
from repo_files import load_script

ao = load_script("scripts/ablate_objective.py", "ablate_objective_helpers")


def test_settings_and_records():
    assert ao.parse_settings(["batch_size=4", "constraint=multiplicative",
                              'objective={"crps": 1, "crps-grad": 4}']) == {
        "batch_size": 4, "constraint": "multiplicative",
        "objective": {"crps": 1, "crps-grad": 4}}
    state = {"variant": "crps-c", "steps": 10, "device": "cuda:0", "checkpoint": "x"}
    assert ao.record(state) == {"variant": "crps-c", "steps": 10, "device": "cuda:0"}


def test_drizzle_concentration_keeps_block_means_and_wet_blocks():
    rng = np.random.default_rng(0)
    a = rng.gamma(0.5, 2.0, size=(2, 16, 16)).astype(np.float32)
    a[:, :8, :8] = rng.uniform(0.0, 0.05, size=(2, 8, 8))  # a light-rain block
    b = ao._concentrate_drizzle(a, 0.1, 8)
    means = lambda x: x.reshape(2, 2, 8, 2, 8).mean(axis=(2, 4))  # noqa: E731
    np.testing.assert_allclose(means(b), means(a), rtol=1e-5)
    np.testing.assert_array_equal(b[:, 8:, :], a[:, 8:, :])  # blocks with rain >= 0.1 kept
    light = b[:, :8, :8].reshape(2, -1)
    k = np.floor(a[:, :8, :8].reshape(2, -1).sum(-1) / 0.1)
    assert ((light > 0).sum(-1) == np.maximum(k, 1)).all()  # rain in its k largest cells


def test_layer_check_scores_every_prior_on_a_rain_file(tmp_path):
    import xarray as xr

    rng = np.random.default_rng(1)
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    wave = np.clip(np.sin(yy / 5.0) * np.cos(xx / 7.0), 0, None)
    rain = np.stack([[wave * rng.uniform(1, 5) for _ in range(2)] for _ in range(2)])
    da = xr.DataArray(rain.astype("float32"), dims=("sequence", "time", "y", "x"),
                      coords={"y": np.arange(32) * 3e3, "x": np.arange(32) * 3e3},
                      attrs={"units": "mm h-1"}, name="rain_rate")
    da.y.attrs.update(axis="Y", units="m", standard_name="projection_y_coordinate")
    da.x.attrs.update(axis="X", units="m", standard_name="projection_x_coordinate")
    path = tmp_path / "rain.nc"
    da.to_dataset().to_netcdf(path)
    out = ao.layer_check(path, frames=2, sequences=2, held_out=0)
    assert set(out) == {"truth", "none", "none-dry", "bilinear", "bilinear-dry", "smooth",
                        "smooth-dry", "frames", "sequences", "smooth-taper0",
                        "smooth-taper1", "smooth-taper2", "smooth-taper3"}
    assert out["smooth-taper2"] == out["smooth"]
    assert np.isinf(out["none"])  # the plain softmax at zero logits: flat blocks
    assert np.isfinite(out["smooth"]) and out["smooth"] < out["bilinear"]
