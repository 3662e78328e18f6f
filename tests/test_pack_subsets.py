"""scripts/pack_rain_subset.py and pack_orographic_subset.py: what the GPU copies keep."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from repo_files import load_script  # noqa: E402

po = load_script("scripts/pack_orographic_subset.py", "pack_orographic_subset")


def _ds():
    subset = ["train", "train", "validation", "train", "train", "test", "train"]
    ranges = ["alps", "alps", "sierra", "andes", "alps", "drakensberg", "andes"]
    rain = np.random.default_rng(0).gamma(0.5, 2.0, (7, 5, 16, 16)).astype("float32")
    return xr.Dataset({"rain_rate": (("sequence", "time", "y", "x"), rain),
                       "subset": ("sequence", subset), "range_name": ("sequence", ranges)},
                      coords={"sequence": np.arange(7)}, attrs={"history": "made here"})


def test_pick_keeps_the_first_training_sequences_of_each_range_and_frames():
    got = po.pick(_ds(), per_range=2, frames=3)
    assert got["sequence"].values.tolist() == [0, 1, 3, 6]  # alps 0, 1; andes 3, 6
    assert set(got["subset"].values) == {"train"} and got.sizes["time"] == 3


def test_packed_copy_is_within_half_a_step_of_the_source(tmp_path):
    ds = po.pick(_ds(), per_range=1, frames=2).load()
    out = tmp_path / "packed.nc"
    ds.to_netcdf(tmp_path / "src.nc")
    assert po.main([str(tmp_path / "src.nc"), str(out), "--per-range", "1",
                    "--frames", "2"]) == 0
    back = xr.open_dataset(out)
    assert back["rain_rate"].encoding["dtype"] == np.dtype("int16")
    assert float(abs(back["rain_rate"] - ds["rain_rate"]).max()) <= 0.005 + 1e-6
    assert not list(tmp_path.glob("*.tmp"))
