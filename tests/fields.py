"""Small CF fields of every grid kind and small untrained models, built in test code.

Plain functions (not fixtures) so tests can call them with their own sizes. They live in
their own module because ``from conftest import ...`` resolves to whichever conftest.py
pytest imported last (tests/metrics has one too), which broke collection on a clean run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

RAIN_TRANSFORM = {"kind": "log_rain", "threshold": 0.1, "fill": 0.025, "max": 100.0}

#: Smallest training settings that still validate and checkpoint every few steps, shared by
#: the CPU, notebook and CUDA training tests so they exercise one configuration.
TINY_TRAIN = dict(factor=4, gen_width=16, gen_noise_channels=4, gen_encoder_blocks=1,
                  gen_init_blocks=1, critic_width=16, critic_dense=16, critic_coarse_blocks=1,
                  critic_stream_blocks=1, patch_size=4, seq_len=3, batch_size=4,
                  critic_steps=2, split_block=8, val_every=3, val_sequences=4, val_members=3,
                  checkpoint_every=3, progress=False)


def rain_values(rng, shape):
    """Gamma-distributed rain with ~40% dry cells, in mm h-1."""
    v = rng.gamma(0.6, 2.0, shape)
    v[rng.random(shape) < 0.4] = 0.0
    return v.astype(np.float32)


def projected_field(rng, nt=5, ny=6, nx=7, dx=8000.0, units="mm h-1"):
    """(time, y, x) on a projected grid with a grid_mapping."""
    return xr.DataArray(
        rain_values(rng, (nt, ny, nx)),
        dims=("time", "y", "x"),
        name="precip",
        coords={
            "time": pd.date_range("2021-06-01", periods=nt, freq="5min"),
            "y": ("y", 1.0e5 + np.arange(ny) * dx,
                  {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
            "x": ("x", -2.0e5 + np.arange(nx) * dx,
                  {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
            "crs": xr.DataArray(0, attrs={"grid_mapping_name": "lambert_azimuthal_equal_area",
                                          "longitude_of_projection_origin": 10.0,
                                          "latitude_of_projection_origin": 52.0}),
        },
        attrs={"units": units, "standard_name": "lwe_precipitation_rate",
               "grid_mapping": "crs", "long_name": "rain rate", "history": "made by a test"},
    )


def latlon_field(rng, nt=4, ny=5, nx=6, units="mm h-1", descending_lat=True):
    """(time, lat, lon) with latitude descending, as many products store it."""
    lat = 50.0 + np.arange(ny) * 0.5
    if descending_lat:
        lat = lat[::-1]
    return xr.DataArray(
        rain_values(rng, (nt, ny, nx)),
        dims=("time", "lat", "lon"),
        name="pr",
        coords={
            "time": pd.date_range("2021-06-01", periods=nt, freq="1h"),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", 5.0 + np.arange(nx) * 0.5,
                    {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"units": units, "standard_name": "lwe_precipitation_rate"},
    )


def odd_field(rng):
    """Oddly named dims, extra leading dim, axis attributes only."""
    return xr.DataArray(
        rain_values(rng, (2, 3, 4, 5)),
        dims=("member_src", "step", "northing", "easting"),
        name="rr",
        coords={
            "member_src": [10, 20],
            "step": ("step", np.arange(3) * 300.0, {"axis": "T", "units": "s"}),
            "northing": ("northing", np.arange(4) * 2.0, {"axis": "Y", "units": "km"}),
            "easting": ("easting", np.arange(5) * 2.0, {"axis": "X", "units": "km"}),
        },
        attrs={"units": "mm/h"},
    )


def curvilinear_field(rng, ny=4, nx=5):
    """(rlat, rlon) dims with 2-D latitude/longitude crossing the date line."""
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    lon = 178.0 + 1.0 * i + 0.2 * j
    lon = np.where(lon > 180, lon - 360, lon)
    lat = 60.0 + 0.8 * j - 0.1 * i
    return xr.DataArray(
        rain_values(rng, (ny, nx)),
        dims=("rlat", "rlon"),
        name="pr",
        coords={
            "lat": (("rlat", "rlon"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (("rlat", "rlon"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"units": "mm h-1"},
    )


def tiny_model(factor=4, noise_channels=4, width=16, seed=0, units="mm h-1",
               transform=None, name="tiny-test"):
    """An untrained small generator, for interface tests only (never shipped)."""
    import torch

    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(seed)
    cfg = GeneratorConfig(factor=factor, width=width, noise_channels=noise_channels,
                          encoder_blocks=1, init_blocks=1)
    card = ModelCard(name=name, units=units, standard_name="lwe_precipitation_rate",
                     variable="precip", transform=transform or RAIN_TRANSFORM)
    return GANModel(Generator(cfg), card)


#: qg-wind-x8's architecture as shipped from 2026-11-26 to 2026-12-01, before the
#: constraint layer existed: every shipped card has the key now, so old cards are tested here.
LEGACY_ARCH = {"encoder_blocks": 2, "factor": 8, "in_channels": 1, "init_blocks": 1,
               "noise_channels": 8, "out_channels": 1, "output_activation": "none",
               "upsample_widths": [48, 24, 12], "width": 48}
