"""scripts/make_blizzard_sample.py and the shipped blizzard sample (issue 12's real case)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from repo_files import load_script

from xstochsr import datasets

mb = load_script("scripts/make_blizzard_sample.py", "make_blizzard_sample")


def _storm_files(folder, missing_v_frame=5):
    """Files shaped like NCL's U500storm.cdf / V500storm.cdf, corners masked."""
    nt, ny, nx = 8, 6, 10
    rng = np.random.default_rng(0)
    corner = np.zeros((ny, nx), bool)
    corner[0, :2] = corner[0, -2:] = corner[1, 0] = corner[1, -1] = True
    for name, var in (("U500storm.cdf", "u"), ("V500storm.cdf", "v")):
        a = rng.normal(10, 5, (nt, ny, nx)).astype("float32")
        a[:, corner] = np.nan
        if var == "v" and missing_v_frame is not None:
            a[missing_v_frame] = np.nan
        xr.Dataset({var: (("timestep", "lat", "lon"), a),
                    "reftime": ((), np.bytes_(b"1996 01 05 00:00"))},
                   coords={"timestep": np.arange(nt, dtype="int32") * 6,
                           "lat": np.linspace(20, 26.25, ny).astype("float32"),
                           "lon": np.linspace(-140, -117.5, nx).astype("float32")}
                   ).to_netcdf(folder / name)
    return folder


def test_keeps_the_nan_free_block_before_a_missing_analysis(tmp_path):
    ds, info = mb.read_storm(_storm_files(tmp_path))
    assert ds.sizes["time"] == 5 and info["missing_frames"] == [5]
    assert ds["lon"].values.tolist() == [-135.0, -132.5, -130.0, -127.5, -125.0, -122.5]
    assert not ds["ua"].isnull().any() and not ds["va"].isnull().any()
    assert ds["time"].values[1] == np.datetime64("1996-01-05T06:00")
    src = xr.open_dataset(tmp_path / "U500storm.cdf")["u"].values
    np.testing.assert_array_equal(ds["ua"].values, src[:5, :, 2:8])  # values unchanged
    assert ds["ua"].attrs["standard_name"] == "eastward_wind"
    assert ds["va"].attrs["units"] == "m s-1"


def test_every_frame_when_none_is_missing(tmp_path):
    ds, info = mb.read_storm(_storm_files(tmp_path, missing_v_frame=None))
    assert ds.sizes["time"] == 8 and info["missing_frames"] == []


def test_shipped_sample_is_cf_and_nan_free():
    ds = datasets.open_sample("blizzard_1996_500hpa")
    assert dict(ds[["ua", "va"]].sizes) == {"time": 36, "lat": 33, "lon": 22}
    assert {ds[v].attrs["standard_name"] for v in ("ua", "va")} == {"eastward_wind",
                                                                    "northward_wind"}
    assert ds["lat"].attrs["units"] == "degrees_north"
    assert not (ds["ua"].isnull().any() or ds["va"].isnull().any())
    assert 5 < float(ds["ua"].std()) < 30  # m s-1 at 500 hPa, not cm s-1
    assert "libncarg-data" in ds.attrs["provenance"]


@pytest.mark.parametrize("name", ["blizzard_1996_500hpa"])
def test_registered_with_provenance(name):
    text = datasets.registry_path().read_text()
    block = text[text.index("# >>> blizzard"):text.index("# <<< blizzard")]
    assert f"xstochsr/data/{name}.nc sha256:" in block and "Licence" in block
