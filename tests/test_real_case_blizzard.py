"""scripts/real_case_blizzard.py: the checks made where there is no fine truth."""

from __future__ import annotations

import numpy as np
import xarray as xr
from repo_files import load_script

rc = load_script("scripts/real_case_blizzard.py", "real_case_blizzard")


def _coarse():
    lat = np.arange(30.0, 50.0, 2.5)
    lon = np.arange(-100.0, -70.0, 2.5)
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    u = 20 * np.cos(la) * (1 + 0.3 * np.sin(3 * lo))
    v = 10 * np.sin(2 * lo) * np.cos(la)
    coords = {"time": np.array(["1996-01-07T00", "1996-01-07T06"], "datetime64[ns]"),
              "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
              "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})}
    mk = lambda a, sn: xr.DataArray(np.stack([a, a * 1.1]).astype("float32"),  # noqa: E731
                                    dims=("time", "lat", "lon"), coords=coords,
                                    attrs={"units": "m s-1", "standard_name": sn})
    return xr.Dataset({"ua": mk(u, "eastward_wind"), "va": mk(v, "northward_wind")})


def test_bilinear_keeps_the_input_kinematics_but_not_its_block_means():
    import xstochsr

    coarse = _coarse()
    ens = xstochsr.downscale(coarse, factor=4, members=1, model="bilinear",
                             variables=rc.VARS, progress=False)
    got = rc.kinematics_check(ens, coarse, 4)
    assert got["vorticity_block_corr"] > 0.95 and got["vorticity_block_rmse_rel"] < 0.3
    assert 0 < got["ua_block_mean_max_error"] < 5
    assert 0.5 < got["ua_block_edge"] < 2


def test_block_constant_members_keep_block_means_and_show_block_edges():
    coarse = _coarse()
    rng = np.random.default_rng(0)
    fine = {}
    for v in rc.VARS:
        a = np.kron(coarse[v].values, np.ones((1, 4, 4)))
        noise = rng.normal(0, 0.1, (2, *a.shape))
        noise -= np.kron(noise.reshape(2, 2, 8, 4, 12, 4).mean(axis=(3, 5)), np.ones((4, 4)))
        fine[v] = (("realization", "time", "lat", "lon"), (a[None] + noise).astype("float32"),
                   {"units": "m s-1"})
    lat = np.linspace(30 - 1.25 + 0.3125, 47.5 + 1.25 - 0.3125, 32)
    lon = np.linspace(-100 - 1.25 + 0.3125, -72.5 + 1.25 - 0.3125, 48)
    ens = xr.Dataset(fine, coords={
        "time": coarse["time"],
        "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})})
    got = rc.kinematics_check(ens, coarse, 4)
    assert got["ua_block_mean_max_error"] < 1e-4 and got["va_block_mean_max_error"] < 1e-4
    assert got["ua_block_edge"] > 1.1  # blocky steps plus noise
