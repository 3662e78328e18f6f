"""scripts/plot_terrain_members.py: the case it reads and the figure, on a tiny synthetic case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from fields import RAIN_TRANSFORM, rain_values
from repo_files import load_script

pt = load_script("scripts/plot_terrain_members.py", "plot_terrain_members")

pytestmark = pytest.mark.usefixtures("one_thread")

F = 4


def sequences(n=32, frames=3, subsets=("train", "validation", "test", "validation")):
    """Orographic sequences as the script reads them: rain, terrain, steering wind."""
    rng = np.random.default_rng(0)
    xy = (np.arange(n) + 0.5 - n / 2) * 3000.0
    yy, xx = np.meshgrid(xy, xy, indexing="ij")
    h = np.stack([800.0 + 500.0 * np.sin((xx + 9e3 * k) / 2e4) * np.cos(yy / 1.5e4)
                  for k in range(len(subsets))])
    rain = rain_values(rng, (len(subsets), frames, n, n))
    rain[list(subsets).index("test")] += 5.0  # the wettest: never to be chosen
    dims = ("sequence", "time", "y", "x")
    return xr.Dataset(
        {"rain_rate": (dims, rain, {"units": "mm h-1",
                                    "standard_name": "lwe_precipitation_rate"}),
         "surface_altitude": (dims[:1] + dims[2:], h, {"units": "m",
                                                        "standard_name": "surface_altitude"}),
         "eastward_wind": (dims[:2], np.full((len(subsets), frames), 8.0), {"units": "m s-1"}),
         "northward_wind": (dims[:2], np.full((len(subsets), frames), -3.0),
                            {"units": "m s-1"}),
         "subset": ("sequence", np.array(subsets)),
         "range_name": ("sequence", np.array([f"range{k}" for k in range(len(subsets))]))},
        coords={"sequence": np.arange(len(subsets)),
                "time": pd.date_range("2000-01-01", periods=frames, freq="10min"),
                "y": ("y", xy, {"standard_name": "projection_y_coordinate", "units": "m",
                                "axis": "Y"}),
                "x": ("x", xy, {"standard_name": "projection_x_coordinate", "units": "m",
                                "axis": "X"})})


@pytest.fixture(scope="module")
def terrain_model():
    """An untrained small generator with one static input (surface altitude)."""
    import torch

    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=F, width=16, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, static_channels=1)
    static = [{"name": "surface_altitude", "standard_name": "surface_altitude", "units": "m",
               "mean": 800.0, "std": 400.0, "grid_spacing": {"value": 3000.0, "units": "m"}}]
    card = ModelCard(name="tiny-terrain", factor=F, units="mm h-1", variable="rain_rate",
                     standard_name="lwe_precipitation_rate", transform=RAIN_TRANSFORM,
                     static=static)
    return GANModel(Generator(cfg), card)


def test_the_case_is_a_validation_sequence_never_a_test_one():
    ds = sequences()
    case = pt.validation_case(ds, frames=2)
    assert str(case["subset"].values) == "validation"
    assert case.sizes["time"] == 2 and "sequence" not in case.dims
    assert int(pt.validation_case(ds, 2, sequence=1)["sequence"]) == 3
    with pytest.raises(ValueError, match="2 validation sequences"):
        pt.validation_case(ds, 2, sequence=2)
    with pytest.raises(ValueError, match="no validation"):
        pt.validation_case(ds.isel(sequence=[0, 2]), 2)


def test_figure_of_a_tiny_untrained_model(terrain_model, tmp_path):
    case = pt.validation_case(sequences(), frames=3)
    ens, coarse = pt.downscale_case(terrain_model, case, F, members=3, seed=0)
    assert ens.shape == (3, 3, 32, 32) and coarse.shape == (3, 8, 8)
    path = tmp_path / "img" / "members.png"
    said = pt.figure(case, ens, coarse, 2, path, "tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["members.png"]  # no temporary left
    assert list(said) == ["truth", "coarse", "member 0", "member 1", "member 2"]
    assert all(np.isfinite(v) and v > 0 for v in said.values())
    truth = case["rain_rate"].isel(time=2).values
    assert said["truth"] == pt.contrast(truth, case, 2)


def test_a_model_that_also_sees_the_wind_gets_it(terrain_model):
    import torch

    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=F, width=16, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, static_channels=1, in_channels=3, out_channels=1)
    wind = {"kind": "standardize", "mean": 0.0, "std": 8.0}
    entry = {"name": "rain_rate", "standard_name": "lwe_precipitation_rate",
             "long_name": None, "units": "mm h-1"}
    card = ModelCard(name="tiny-wind", factor=F, variable="rain_rate",
                     standard_name="lwe_precipitation_rate",
                     transform={"kind": "channels", "channels": [RAIN_TRANSFORM, wind, wind]},
                     static=terrain_model.card.static, channels=[entry],
                     predictors=[dict(entry, name="ua", standard_name="eastward_wind",
                                      units="m s-1"),
                                 dict(entry, name="va", standard_name="northward_wind",
                                      units="m s-1")])
    model = GANModel(Generator(cfg), card)
    case = pt.validation_case(sequences(), frames=2)
    ens, coarse = pt.downscale_case(model, case, F, members=2, seed=0)
    assert ens.dims == ("realization", "time", "y", "x") and ens.shape == (2, 2, 32, 32)
    turned = case.assign(eastward_wind=-case["eastward_wind"])
    other, _ = pt.downscale_case(model, turned, F, members=2, seed=0)
    assert float(abs(other - ens).max()) > 0  # the wind reaches the network
