"""scripts/make_orographic_sample.py and the shipped terrain-shaped rain sample (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from repo_files import load_script

from xstochsr import datasets

mo = load_script("scripts/make_orographic_sample.py", "make_orographic_sample")


def _file(path, n=16, nt=4):
    """A file shaped like make_orographic_sequences.py's: 2 sequences, train then validation."""
    rng = np.random.default_rng(0)
    x = (np.arange(n) + 0.5 - n / 2) * 3000.0
    bounds = np.stack([x - 1500, x + 1500], 1)
    xr.Dataset(
        {"rain_rate": (("sequence", "time", "y", "x"), rng.gamma(1, 1, (2, nt, n, n)).astype(
            "f4"), {"units": "mm h-1", "standard_name": "lwe_precipitation_rate"}),
         "surface_altitude": (("sequence", "y", "x"), rng.uniform(0, 2000, (2, n, n)), {
             "units": "m", "standard_name": "surface_altitude"}),
         "eastward_wind": (("sequence", "time"), np.full((2, nt), 7.0)),
         "northward_wind": (("sequence", "time"), np.arange(2 * nt, dtype=float).reshape(2, nt)),
         "subset": ("sequence", ["train", "validation"]),
         "range_name": ("sequence", ["alps", "tian_shan"]),
         "origin_latitude": ("sequence", [46.0, 42.0]),
         "origin_longitude": ("sequence", [10.0, 80.0]),
         "x_bounds": (("x", "nv"), bounds), "y_bounds": (("y", "nv"), bounds)},
        coords={"x": ("x", x, {"units": "m", "axis": "X", "bounds": "x_bounds",
                               "standard_name": "projection_x_coordinate"}),
                "y": ("y", x, {"units": "m", "axis": "Y", "bounds": "y_bounds",
                               "standard_name": "projection_y_coordinate"}),
                "sequence": [0, 1],
                "time": np.datetime64("2000-01-01") + np.arange(nt) * np.timedelta64(10, "m")},
        attrs={"terrain_file_sha256": "ab" * 32}).to_netcdf(path)
    return path


def test_builds_a_validation_sequence_with_its_wind_as_fields(tmp_path):
    ds = mo.build(_file(tmp_path / "f.nc"), sequence=1, frames=3)
    assert ds.rain_rate.shape == (3, 16, 16) and ds.surface_altitude.dims == ("y", "x")
    np.testing.assert_array_equal(ds.va.isel(time=2).values, 6.0)  # frame 2 of sequence 1
    assert ds.ua.attrs["units"] == "m s-1" and ds.va.attrs["standard_name"] == "northward_wind"
    assert ds.crs.attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    assert abs(float(ds.lat.mean()) - 42.0) < 0.5 and abs(float(ds.lon.mean()) - 80.0) < 0.5
    assert "tian_shan" in ds.attrs["provenance"] and "sequence" not in ds.coords


def test_refuses_anything_but_a_validation_sequence(tmp_path):
    with pytest.raises(SystemExit, match="validation"):
        mo.build(_file(tmp_path / "f.nc"), sequence=0, frames=3)


def test_shipped_sample_is_a_validation_range_with_terrain_and_wind():
    ds = datasets.open_sample("orographic_rain_tian_shan")
    assert ds.rain_rate.sizes == {"time": 6, "y": 256, "x": 256}
    assert float(ds.rain_rate.min()) >= 0 and float(ds.surface_altitude.max()) > 3000
    assert "validation" in ds.attrs["provenance"] and "CC0" in ds.attrs["license"]
