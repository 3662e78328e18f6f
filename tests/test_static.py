"""downscale(..., static=topo): matching, regridding, units and the refusals (issue 13)."""

import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from fields import RAIN_TRANSFORM, latlon_field, projected_field, tiny_model

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


# --- grid mappings: another projection with the same x/y numbers ----------------------------

LCC = {"grid_mapping_name": "lambert_conformal_conic", "standard_parallel": [49.0, 56.0],
       "longitude_of_central_meridian": 10.0, "latitude_of_projection_origin": 52.0}
LATLON = {"grid_mapping_name": "latitude_longitude"}


def with_mapping(da, attrs, name="crs"):
    """``da`` carrying the CF grid mapping ``attrs`` (a scalar coordinate ``name``)."""
    return da.assign_coords({name: xr.DataArray(0, attrs=dict(attrs))}).assign_attrs(
        grid_mapping=name)


def without_mapping(da):
    out = da.drop_vars([c for c in ("crs",) if c in da.coords])
    out.attrs.pop("grid_mapping", None)
    return out


def latlon_coarse(rng):
    """A (time, lat, lon) field with a latitude_longitude grid mapping."""
    return with_mapping(latlon_field(rng, nt=3, ny=5, nx=6), LATLON)


def terrain_numbers(coarse, mapping=None):
    """Surface altitude (m) on projected x/y whose *numbers* are those of ``coarse``'s
    fine grid (degrees for a lat/lon field), on the projection ``mapping``."""
    from xstochsr.grid import find_axes

    ax = find_axes(coarse)
    x, y = fine_axis(coarse[ax.x]), fine_axis(coarse[ax.y])
    jj, ii = np.meshgrid(np.arange(y.size), np.arange(x.size), indexing="ij")
    z = 800.0 + 500.0 * np.sin(ii / 3.0) * np.cos(jj / 2.0)
    topo = xr.DataArray(
        z, dims=("y", "x"), name="orog",
        coords={"y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
                "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"})},
        attrs={"units": "m", "standard_name": "surface_altitude"})
    return topo if mapping is None else with_mapping(topo, mapping)


@pytest.mark.parametrize("kind", ["latlon", "laea"])
def test_static_on_another_projection_with_the_same_numbers_is_refused(static_model, rng,
                                                                        kind):
    """Lambert conformal terrain with the x/y numbers of a lat/lon (or Lambert azimuthal)
    field: refused, naming the fix, not used as if it were on the field's grid."""
    field = latlon_coarse(rng) if kind == "latlon" else projected_field(rng, nt=3, ny=5, nx=6)
    lambert = terrain_numbers(field, LCC)
    want = "lambert_conformal_conic, not " + ("latitude_longitude" if kind == "latlon"
                                              else "lambert_azimuthal_equal_area")
    with pytest.raises(StaticFieldError, match=want) as err:
        run(static_model, field, lambert)
    assert "Reproject it onto the field's grid" in str(err.value)
    with pytest.raises(StaticFieldError, match="another projection"):
        run(static_model, field, lambert.to_dataset())  # crs a coordinate of the Dataset
    as_data_var = lambert.to_dataset().reset_coords("crs")  # as netCDF files decode it
    assert "crs" in as_data_var.data_vars
    with pytest.raises(StaticFieldError, match="another projection"):
        run(static_model, field, as_data_var)


def test_same_projection_name_other_parameters_is_refused(static_model, rng):
    field = projected_field(rng, nt=3, ny=5, nx=6)
    moved = dict(field.crs.attrs, longitude_of_projection_origin=20.0)
    with pytest.raises(StaticFieldError, match="other parameters"):
        run(static_model, field, terrain_numbers(field, moved))


def test_identical_mappings_pass(static_model, rng):
    """The field's own mapping (as CF attributes, or as an equivalent WKT) is no
    projection change: the terrain is used as is, as without any mapping."""
    import pyproj

    field = latlon_coarse(rng)
    plain = run(static_model, field, terrain_numbers(field))
    same = run(static_model, field, terrain_numbers(field, LATLON))
    np.testing.assert_array_equal(same.values, plain.values)
    laea = projected_field(rng, nt=3, ny=5, nx=6)
    wkt = {"crs_wkt": pyproj.CRS.from_cf(dict(laea.crs.attrs)).to_wkt()}
    np.testing.assert_array_equal(
        run(static_model, laea, terrain_numbers(laea, wkt)).values,
        run(static_model, laea, terrain_numbers(laea)).values)


def test_a_mapping_on_one_side_only_passes(static_model, rng):
    """Nothing to compare: the static field's x/y are taken in the field's system."""
    field = latlon_coarse(rng)
    ref = run(static_model, field, terrain_numbers(field))
    np.testing.assert_array_equal(
        run(static_model, without_mapping(field), terrain_numbers(field, LCC)).values,
        ref.values)
    np.testing.assert_array_equal(run(static_model, field, terrain_numbers(field)).values,
                                  ref.values)


def test_training_refuses_terrain_on_another_projection(rng):
    """train(ds, static=...) checks the same, with the field's mapping a data variable."""
    from xstochsr.static import training_fields

    fine = projected_field(rng, nt=3, ny=8, nx=8)
    ds = fine.to_dataset().reset_coords("crs")  # crs a data variable: ds.precip lacks it
    lambert = terrain_numbers(fine.isel(x=slice(0, 2), y=slice(0, 2)), LCC)
    lambert = lambert.assign_coords(x=fine.x.values, y=fine.y.values)
    with pytest.raises(StaticFieldError, match="another projection"):
        training_fields(lambert, ds, ds.precip, seq=None)
    vals, entries = training_fields(without_mapping(lambert), ds, ds.precip, seq=None)
    assert vals.shape == (1, 1, 8, 8) and entries[0]["name"] == "orog"


def test_projection_comparison_without_pyproj(monkeypatch):
    """The CF attributes decide when pyproj is not installed."""
    import sys

    from xstochsr.static import same_projection

    laea = {"grid_mapping_name": "lambert_azimuthal_equal_area",
            "longitude_of_projection_origin": 10.0, "latitude_of_projection_origin": 52.0}
    monkeypatch.setitem(sys.modules, "pyproj", None)  # import pyproj raises ImportError
    assert same_projection(laea, dict(laea, long_name="grid", false_easting=0.0))
    assert not same_projection(laea, LCC)
    assert not same_projection(laea, dict(laea, latitude_of_projection_origin=40.0))
    assert not same_projection(laea, dict(laea, false_northing=1000.0))
    assert same_projection(LCC, dict(LCC, standard_parallel=[49.0, 56.0]))


# --- the Dataset path: a joint (u, v) model with static fields ------------------------------


@pytest.fixture(scope="module")
def joint_static(tmp_path_factory):
    """A tiny (ua, va) model trained 2 steps with surface altitude, and that terrain."""
    from fields import TINY_TRAIN
    from test_joint import winds

    ds = winds()
    yy, xx = np.meshgrid(ds.y.values, ds.x.values, indexing="ij")
    topo = xr.DataArray(800.0 + 500.0 * np.sin(xx / 9e4) * np.cos(yy / 7e4), dims=("y", "x"),
                        name="orog", coords={"y": ds.y, "x": ds.x},
                        attrs={"units": "m", "standard_name": "surface_altitude"})
    model = xstochsr.train(ds, var=["ua", "va"], steps=2, seed=0, static=topo,
                           checkpoint_dir=tmp_path_factory.mktemp("joint-static"),
                           objective={"crps": 1.0}, constraint="additive", **TINY_TRAIN)
    return model, topo


def test_joint_dataset_downscale_with_static(joint_static):
    """downscale(ds, static=topo) passes the terrain on through the Dataset path (the
    variables of a sequence share it); without static= the model is refused."""
    from test_joint import coarse_of, winds

    model, topo = joint_static
    assert model.card.static[0]["name"] == "orog" and model.card.variables == ["ua", "va"]
    coarse = coarse_of(winds(seed=5, sequences=None, frames=3))
    ens = xstochsr.downscale(coarse, model=model, members=2, seed=1, static=topo,
                             progress=False)
    assert isinstance(ens, xr.Dataset) and list(ens.data_vars) == ["ua", "va"]
    assert ens.ua.shape == (2, 3, 32, 32) and np.isfinite(ens.va).all()
    flat = (topo * 0 + 800.0).assign_attrs(topo.attrs)
    other = xstochsr.downscale(coarse, model=model, members=2, seed=1, static=flat,
                               progress=False)
    assert float(abs(other.ua - ens.ua).max()) > 1e-4  # the terrain reaches the network
    with pytest.raises(StaticFieldError, match="static="):
        xstochsr.downscale(coarse, model=model, members=2, seed=1, progress=False)


@pytest.mark.parametrize("batch_size", [None, 2])
def test_joint_dataset_terrain_per_sequence(joint_static, batch_size):
    """A (sequence, y, x) terrain with a joint model: each sequence gets its own, whatever
    the batch (the internal variable dim is not counted as sequences)."""
    from test_joint import coarse_of, winds

    model, topo = joint_static
    coarse = coarse_of(winds(seed=6, sequences=2, frames=3))
    both = xr.concat([topo, topo[::-1].assign_coords(y=topo.y)], dim="sequence")
    kw = dict(model=model, members=2, seed=1, progress=False, batch_size=batch_size)
    ens = xstochsr.downscale(coarse, static=both, **kw)
    for s in (0, 1):
        alone = xstochsr.downscale(coarse, static=both.isel(sequence=s), **kw)
        for v in ("ua", "va"):
            np.testing.assert_allclose(ens[v].isel(sequence=s).values,
                                       alone[v].isel(sequence=s).values, rtol=1e-5,
                                       atol=1e-5 * float(abs(alone[v]).max()))


# --- terrain slopes, derived from the altitude when a model needs them -----------------------


def test_terrain_slopes_of_a_plane_in_any_length_unit(coarse):
    from xstochsr.static import terrain_slopes

    topo = terrain(coarse)
    plane = topo.copy(data=3.0 + 0.02 * topo.x.values[None, :] - 0.01 * topo.y.values[:, None])
    s = terrain_slopes(plane)
    np.testing.assert_allclose(s.terrain_slope_x.values, 0.02, rtol=1e-9)
    np.testing.assert_allclose(s.terrain_slope_y.values, -0.01, rtol=1e-9)
    assert s.terrain_slope_x.attrs["units"] == "1"
    km = plane.assign_coords(x=plane.x / 1000, y=plane.y / 1000)
    km.x.attrs, km.y.attrs = dict(plane.x.attrs, units="km"), dict(plane.y.attrs, units="km")
    np.testing.assert_allclose(terrain_slopes(km).terrain_slope_x.values, 0.02, rtol=1e-9)
    feet = (plane / 0.3048).assign_attrs(units="ft")  # the altitude in feet: still m/m
    np.testing.assert_allclose(terrain_slopes(feet).terrain_slope_y.values, -0.01, rtol=1e-6)
    # same as xarray's differentiate on a metre grid (what training used)
    np.testing.assert_allclose(terrain_slopes(topo).terrain_slope_x.values,
                               topo.differentiate("x").values, rtol=1e-12)


def test_terrain_slopes_refuse_degrees(rng):
    from xstochsr.static import terrain_slopes

    c = latlon_field(rng, nt=1, ny=4, nx=5).isel(time=0)
    with pytest.raises(StaticFieldError, match="projected grid"):
        terrain_slopes(c.assign_attrs(units="m"))


@pytest.fixture(scope="module")
def slope_model():
    torch.manual_seed(1)
    cfg = GeneratorConfig(factor=F, width=16, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, static_channels=3)
    slope = {"standard_name": None, "units": "1", "mean": 0.0, "std": 0.05,
             "grid_spacing": ENTRY["grid_spacing"]}
    card = ModelCard(name="tiny-slopes", units="mm h-1", variable="precip",
                     standard_name="lwe_precipitation_rate", transform=RAIN_TRANSFORM,
                     static=[dict(ENTRY), dict(slope, name="terrain_slope_x"),
                             dict(slope, name="terrain_slope_y")])
    return GANModel(Generator(cfg), card)


def test_slopes_derived_from_the_altitude_when_not_given(slope_model, coarse):
    from xstochsr.static import terrain_slopes

    topo = terrain(coarse)
    given = run(slope_model, coarse, xr.merge([topo, terrain_slopes(topo)]))
    derived = run(slope_model, coarse, topo)
    np.testing.assert_array_equal(derived.values, given.values)
    wrong = terrain_slopes(topo) * 2
    assert float(abs(run(slope_model, coarse, xr.merge([topo, wrong])) - given).max()) > 0
    with pytest.raises(StaticFieldError, match="surface altitude"):
        run(slope_model, coarse, topo.rename("orog").assign_attrs(standard_name="height")
            .rename("hgt"))
