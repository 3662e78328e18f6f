"""downscale(..., static=topo): matching, regridding, units and the refusals (issue 13)."""

import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from fields import RAIN_TRANSFORM, projected_field, tiny_model

import xstochsr
from xstochsr.errors import MissingUnitsError, StaticFieldError
from xstochsr.models.base import ModelCard
from xstochsr.models.gan import GANModel
from xstochsr.models.generator import Generator, GeneratorConfig
from xstochsr.training_range import OutOfRangeWarning

pytestmark = pytest.mark.usefixtures("one_thread")

F = 4
ENTRY = {"name": "orog", "standard_name": "surface_altitude", "units": "m", "mean": 800.0,
         "std": 400.0, "grid_spacing": {"value": 2000.0, "units": "m"}}


@pytest.fixture(scope="module")
def static_model():
    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=F, width=16, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, static_channels=1)
    card = ModelCard(name="tiny-static", units="mm h-1", variable="precip",
                     standard_name="lwe_precipitation_rate", transform=RAIN_TRANSFORM,
                     static=[dict(ENTRY)])
    return GANModel(Generator(cfg), card)


@pytest.fixture
def coarse(rng):
    return projected_field(rng, nt=3, ny=5, nx=6, dx=8000.0)


def fine_axis(c, f=F):
    d = float(c[1] - c[0])
    return np.concatenate([v - d / 2 + d / f * (np.arange(f) + 0.5) for v in c.values])


def terrain(coarse, f=F, margin=0, spacing=None, seed=0):
    """Surface altitude (m) on the fine grid of ``coarse`` (or a grid with ``spacing``
    and ``margin`` extra cells on each side)."""
    x, y = fine_axis(coarse.x, f), fine_axis(coarse.y, f)
    if spacing is not None:
        x = np.arange(x[0] - margin * spacing, x[-1] + (margin + 0.5) * spacing, spacing)
        y = np.arange(y[0] - margin * spacing, y[-1] + (margin + 0.5) * spacing, spacing)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    z = 800.0 + 500.0 * np.sin(xx / 9000.0) * np.cos(yy / 7000.0)
    return xr.DataArray(z, dims=("y", "x"), name="orog",
                        coords={"y": ("y", y, coarse.y.attrs), "x": ("x", x, coarse.x.attrs)},
                        attrs={"units": "m", "standard_name": "surface_altitude"})


def run(model, coarse, static, **kw):
    return xstochsr.downscale(coarse, model=model, members=2, seed=0, static=static, **kw)


def test_downscale_with_static_runs_and_depends_on_it(static_model, coarse):
    topo = terrain(coarse)
    a = run(static_model, coarse, topo)
    assert a.shape == (2, 3, 5 * F, 6 * F) and np.isfinite(a).all()
    flat = topo * 0 + 800.0
    b = run(static_model, coarse, flat.assign_attrs(topo.attrs))
    assert float(abs(a - b).max()) > 1e-4
    again = run(static_model, coarse, topo.to_dataset())  # a Dataset, found by standard_name
    np.testing.assert_array_equal(a.values, again.values)


def test_accessor_passes_static_on(static_model, coarse):
    topo = terrain(coarse)
    np.testing.assert_array_equal(
        coarse.sr.downscale(model=static_model, members=2, seed=0, static=topo).values,
        run(static_model, coarse, topo).values)


def test_feet_are_converted_to_metres(static_model, coarse):
    topo = terrain(coarse)
    feet = (topo / 0.3048).assign_attrs(units="ft", standard_name="surface_altitude")
    np.testing.assert_allclose(run(static_model, coarse, feet).values,
                               run(static_model, coarse, topo).values, rtol=1e-5, atol=1e-5)
    with pytest.raises(MissingUnitsError, match="units"):
        run(static_model, coarse, topo.assign_attrs(units=None).drop_attrs()
            .rename("orog"))


def test_static_on_a_coarser_grid_is_regridded(static_model, coarse):
    """Given at 4 km with a margin, the field is put on the 2 km output grid with
    xstochsr.regrid (bilinear), the same as regridding it by hand first."""
    rough = terrain(coarse, margin=2, spacing=4000.0)
    got = run(static_model, coarse, rough)
    fine = terrain(coarse)
    by_hand = xstochsr.regrid.regrid(rough, fine.to_dataset(), method="bilinear")
    want = run(static_model, coarse, by_hand.assign_attrs(rough.attrs))
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6, atol=1e-6)
    assert float(abs(got - run(static_model, coarse, fine)).max()) > 0  # it was regridded


def test_refusals(static_model, coarse):
    topo = terrain(coarse)
    with pytest.raises(StaticFieldError, match="static="):
        run(static_model, coarse, None)
    with pytest.raises(StaticFieldError, match="takes no static"):
        run(tiny_model(factor=F), coarse, topo)
    part = topo.isel(x=slice(0, 12))  # half the domain
    with pytest.raises(StaticFieldError, match="does not cover"):
        run(static_model, coarse, part)
    wet = topo.where(topo.x > topo.x[3])  # NaN "over the sea"
    with pytest.raises(StaticFieldError, match="NaN"):
        run(static_model, coarse, wet)
    other = topo.rename("land_fraction").assign_attrs(standard_name="land_area_fraction",
                                                      units="1")
    with pytest.raises(StaticFieldError, match="surface_altitude"):
        run(static_model, coarse, xr.merge([other, other.rename("x2")]))


def test_warns_on_terrain_unlike_training(static_model, coarse):
    topo = terrain(coarse)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfRangeWarning)
        run(static_model, coarse, topo)  # like training: silent
    with pytest.warns(OutOfRangeWarning, match="another region"):
        run(static_model, coarse, topo + 4000.0)


def test_card_round_trip_keeps_static(static_model, coarse, tmp_path):
    static_model.save(tmp_path / "m")
    back = xstochsr.load_model(tmp_path / "m.safetensors")
    assert back.card.static == [ENTRY]
    topo = terrain(coarse)
    np.testing.assert_array_equal(run(back, coarse, topo).values,
                                  run(static_model, coarse, topo).values)


def test_card_markdown_names_the_static_predictors(static_model):
    text = static_model.card.to_markdown()
    assert "static predictor `orog`" in text and "surface_altitude" in text
    assert "static predictor" not in ModelCard(name="plain").to_markdown()


def test_dask_input_and_time_chunks_give_the_same_ensemble(static_model, coarse):
    topo = terrain(coarse)
    eager = run(static_model, coarse, topo)
    lazy = run(static_model, coarse.chunk({"time": 1}), topo)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(run(static_model, coarse, topo, time_chunk=1).values,
                                  eager.values)


def test_terrain_per_sequence(static_model, rng):
    """A (sequence, y, x) field goes with a (sequence, time, y, x) input: each sequence is
    downscaled with its own terrain (as with that terrain shared by all)."""
    one = projected_field(rng, nt=3, ny=5, nx=6, dx=8000.0)
    two = xr.concat([one, one], dim="sequence")
    topo = terrain(one)
    both = xr.concat([topo, topo[::-1].assign_coords(y=topo.y)], dim="sequence")
    ens = run(static_model, two, both, batch_size=1)
    for s in (0, 1):
        shared = run(static_model, two, both.isel(sequence=s))
        np.testing.assert_allclose(ens.isel(sequence=s).values,
                                   shared.isel(sequence=s).values, rtol=1e-5, atol=1e-5)
    assert float(abs(ens.isel(sequence=0) - run(static_model, two, both.isel(sequence=1))
                     .isel(sequence=0)).max()) > 1e-4
    with pytest.raises(StaticFieldError, match="sequence"):
        run(static_model, one, both)  # two terrains for one sequence


def test_tiled_run_cuts_the_static_field_per_tile(static_model, rng):
    """A tiled run gives each tile its own window of the terrain: equal to the untiled one."""
    big = projected_field(rng, nt=2, ny=40, nx=40, dx=8000.0)
    topo = terrain(big)
    whole = run(static_model, big, topo)
    tiled = run(static_model, big, topo, tile=12)
    np.testing.assert_allclose(tiled.values, whole.values, rtol=1e-4, atol=1e-5)
    shifted = run(static_model, big, topo.roll(x=7, roll_coords=False), tile=12)
    assert float(abs(shifted - whole).max()) > 1e-4  # the terrain matters inside tiles too
