import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import DomainTooSmallError, InvalidInputError
from xstochsr.training.data import (
    PatchSampler,
    fit_transform,
    load_training_data,
    split_blocks,
    synthetic_rain,
)


def temperature(frames=20, ny=16, nx=16, seed=0):
    rng = np.random.default_rng(seed)
    time = np.datetime64("2020-01-01") + np.arange(frames) * np.timedelta64(1, "h")
    v = 280 + rng.standard_normal((frames, ny, nx)).cumsum(0).astype(np.float32)
    return xr.DataArray(v, dims=("t", "row", "col"), name="tas",
                        coords={"t": time,
                                "row": ("row", np.arange(ny) * 1e3, {"axis": "Y", "units": "m"}),
                                "col": ("col", np.arange(nx) * 1e3, {"axis": "X", "units": "m"})},
                        attrs={"units": "K", "standard_name": "air_temperature"})


def sampler(data, runs=None, **kw):
    spec = fit_transform(data, data.runs, "log_rain" if data.info["rain"] else "standardize")
    args = dict(patch_size=4, seq_len=3, rng=np.random.default_rng(0))
    args.update(kw)
    return PatchSampler(data, runs or data.runs, spec, **args)


def test_load_any_dim_names_and_pp_coarse():
    d = load_training_data(temperature(ny=17), factor=4)
    assert d.fine.shape == (1, 20, 16, 16) and d.coarse.shape == (1, 20, 4, 4)
    np.testing.assert_allclose(d.coarse[0, 0, 0, 0], d.fine[0, 0, :4, :4].mean(), rtol=1e-6)
    assert d.info["native_grid_spacing"] == {"value": 4000.0, "units": "m"}
    assert not d.info["rain"] and d.info["units"] == "K"


def test_no_grid_spacing_without_coordinate_units():
    """A spacing without units cannot be checked against a user's grid: none is kept."""
    t = temperature(ny=16)
    for c in ("row", "col"):
        t[c].attrs.pop("units")
    assert load_training_data(t, factor=4).info["native_grid_spacing"] is None


def test_sequences_and_gaps_make_runs():
    ds = synthetic_rain(10, 16, 16, sequences=2)
    d = load_training_data(ds, "precip", factor=4)
    assert d.runs == [(0, 0, 10), (1, 0, 10)] and d.info["rain"]
    da = temperature(frames=12)
    da = da.isel(t=[0, 1, 2, 3, 4, 8, 9, 10, 11])  # a gap after frame 4
    assert load_training_data(da, factor=4).runs == [(0, 0, 5), (0, 5, 9)]


def test_split_is_by_blocks_of_time():
    runs = [(0, 0, 100), (1, 0, 50)]
    tr, va = split_blocks(runs, block=10, val_fraction=0.2, seq_len=4,
                          rng=np.random.default_rng(1))
    assert len(va) == 3 and all(b - a == 10 for _, a, b in va)
    for s, a, b in va:  # validation frames never overlap training frames
        assert not any(s == s2 and a < b2 and a2 < b for s2, a2, b2 in tr)
    covered = sum(b - a for _, a, b in tr + va)
    assert covered == 150


def test_patches_never_cross_runs():
    da = temperature(frames=12).isel(t=[0, 1, 2, 3, 4, 8, 9, 10, 11])
    d = load_training_data(da, factor=4)
    s = sampler(d)
    starts = s.candidates[:, 1]
    assert set(starts.tolist()) == {0, 1, 2, 5, 6}


def test_batch_shapes_and_transform():
    d = load_training_data(synthetic_rain(12, 32, 32), factor=4)
    b = sampler(d).sample(5)
    assert b.coarse.shape == (5, 3, 1, 4, 4) and b.fine.shape == (5, 3, 1, 16, 16)
    assert b.mask is None
    assert 0 <= b.fine.min() and b.fine.max() <= 1 and b.coarse.dtype == np.float32


def test_augmentation_keeps_coarse_and_fine_consistent():
    d = load_training_data(temperature(), factor=4)
    s = sampler(d, augment=True)
    origins = s.draw(8)
    for op in range(8):
        b = s.assemble(origins, np.full(8, op))
        blocks = b.fine.reshape(8, 3, 1, 4, 4, 4, 4).mean(axis=(4, 6))
        np.testing.assert_allclose(blocks, b.coarse, atol=1e-4)


def test_importance_sampling_prefers_rain():
    ds = synthetic_rain(16, 64, 64, wet_fraction=0.1, seed=2)
    d = load_training_data(ds, factor=4)
    spec = fit_transform(d, d.runs, "log_rain")
    kw = dict(patch_size=4, seq_len=3, wet_threshold=0.1, augment=False)
    wet = [
        (PatchSampler(d, d.runs, spec, rng=np.random.default_rng(0), importance_floor=f, **kw)
         .sample(64).fine > 0.3).mean()
        for f in (None, 0.01)
    ]
    assert wet[1] > 1.5 * wet[0]


def test_zero_batches():
    d = load_training_data(synthetic_rain(12, 32, 32), factor=4)
    s = sampler(d, zero_batch_fraction=0.99)
    b = s.sample(3)
    assert not b.fine.any() and not b.coarse.any()


def test_nan_masked_not_propagated():
    ds = synthetic_rain(12, 32, 32, nan_fraction=1.0, seed=1)
    d = load_training_data(ds, factor=4)
    assert np.isnan(d.fine).any()
    blocks = np.isnan(d.fine).reshape(1, 12, 8, 4, 8, 4).all(axis=(3, 5))
    np.testing.assert_array_equal(np.isnan(d.coarse), blocks)  # NaN only where all is
    b = sampler(d, min_valid_fraction=0.1).sample(16)
    assert np.isfinite(b.fine).all() and np.isfinite(b.coarse).all()
    assert b.mask is not None and 0 < b.mask.mean() < 1


def test_too_small_and_too_short():
    d = load_training_data(synthetic_rain(12, 12, 12), factor=4)
    with pytest.raises(DomainTooSmallError, match="smaller than one training patch"):
        sampler(d)
    d = load_training_data(synthetic_rain(2, 32, 32), factor=4)
    with pytest.raises(DomainTooSmallError, match="shorter than one training sequence"):
        sampler(d)
    with pytest.raises(DomainTooSmallError):
        load_training_data(synthetic_rain(4, 2, 2), factor=4)


def test_mos_pairs():
    ds = synthetic_rain(10, 32, 32)
    from xstochsr.grid import coarsen_field

    c = coarsen_field(ds.precip, 4) * 1.5
    d = load_training_data(ds, factor=4, coarse=c)
    np.testing.assert_allclose(d.coarse, 1.5 * d.fine.reshape(1, 10, 8, 4, 8, 4).mean(axis=(3, 5)),
                               rtol=1e-5, atol=1e-6)
    assert "MOS" in d.info["coarse_input"]
    with pytest.raises(InvalidInputError, match="time-aligned"):
        load_training_data(ds, factor=4, coarse=c.isel(time=slice(1, None)))


def test_variable_selection():
    ds = synthetic_rain(4, 16, 16)
    ds["other"] = ds.precip * 2
    with pytest.raises(InvalidInputError, match="var="):
        load_training_data(ds, factor=4)
    assert load_training_data(ds, "other", factor=4).info["variable"] == "other"
    with pytest.raises(InvalidInputError, match="No variable"):
        load_training_data(ds, "nope", factor=4)


def test_units_conversion_to_mm_per_hour():
    pytest.importorskip("xstochsr.units")
    ds = synthetic_rain(4, 16, 16)
    flux = ds.precip / 3600.0
    flux.attrs = {"units": "kg m-2 s-1", "standard_name": "precipitation_flux"}
    d = load_training_data(flux, factor=4)
    np.testing.assert_allclose(np.nan_to_num(d.fine[0]), np.nan_to_num(ds.precip.values),
                               rtol=1e-5, atol=1e-6)
    assert d.info["units"] == "mm h-1"


@pytest.mark.parametrize("name, attrs, rain", [
    ("pw", {"standard_name": "atmosphere_mass_content_of_water_vapor"}, False),
    ("precipitable_water", {}, False),               # "precip" in the name, not rain
    ("precip", {"standard_name": "air_temperature"}, False),  # standard_name decides
    ("x", {"standard_name": "lwe_precipitation_rate"}, True),
    ("x", {"standard_name": "precipitation_flux"}, True),
    ("pr", {}, True),
])
def test_is_precipitation(name, attrs, rain):
    from xstochsr.training.data import is_precipitation

    assert is_precipitation(xr.DataArray([0.0], name=name, attrs=attrs)) is rain


def test_precipitable_water_keeps_its_units_and_standardizes():
    """Regression: 'precipitable_water' was taken for rain and sent to mm h-1."""
    da = temperature().rename("precipitable_water")
    da.attrs = {"units": "kg m-2", "standard_name": "atmosphere_mass_content_of_water_vapor"}
    d = load_training_data(da, factor=4)
    assert not d.info["rain"] and d.info["units"] == "kg m-2"


def test_precipitation_amount_keeps_its_units():
    da = (temperature() - 270).clip(min=0).rename("tp")
    da.attrs = {"units": "mm", "standard_name": "precipitation_amount"}
    d = load_training_data(da, factor=4)
    assert d.info["rain"] and d.info["units"] == "mm"
