import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from fields import curvilinear_field, latlon_field, odd_field, projected_field, tiny_model

import xstochsr
from xstochsr import grid
from xstochsr.errors import (
    DomainTooSmallError,
    InvalidInputError,
    IrregularCoordinateError,
    MissingAxisError,
    MissingUnitsError,
    UnitsError,
    UnknownModelError,
    UnsupportedFactorError,
    XStochSRError,
)


def run(da, model, **kw):
    kw.setdefault("factor", 4)
    kw.setdefault("members", 3)
    kw.setdefault("seed", 7)
    return xstochsr.downscale(da, model=model, **kw)


@pytest.mark.parametrize("via", ["function", "accessor"])
def test_accessor_equals_function(rng, model, via):
    da = projected_field(rng)
    ref = run(da, model)
    out = run(da, model) if via == "function" else da.sr.downscale(model=model, factor=4,
                                                                    members=3, seed=7)
    xr.testing.assert_identical(out.drop_attrs(), ref.drop_attrs())


def test_projected_output_grid_and_metadata(rng, model):
    da = projected_field(rng)
    ens = run(da, model)
    assert ens.dims == ("realization", "time", "y", "x")
    assert ens.shape == (3, 5, 24, 28)
    assert ens.name == "precip"
    np.testing.assert_array_equal(ens.realization, [0, 1, 2])
    assert ens.realization.attrs["standard_name"] == "realization"
    # fine centres nest in the coarse cells: block means of fine centres = coarse centres
    np.testing.assert_allclose(ens.x.values.reshape(7, 4).mean(1), da.x.values)
    np.testing.assert_allclose(np.diff(ens.x), 2000.0)
    assert ens.x.attrs["standard_name"] == "projection_x_coordinate"
    xr.testing.assert_identical(ens.time, da.time)
    assert "crs" in ens.coords and ens.attrs["grid_mapping"] == "crs"
    assert ens.crs.attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    for key in ("units", "standard_name", "long_name"):
        assert ens.attrs[key] == da.attrs[key]
    hist = ens.attrs["history"].splitlines()
    assert hist[0] == "made by a test" and "tiny-test" in hist[1] and "seed 7" in hist[1]
    assert np.all(np.isfinite(ens)) and float(ens.min()) >= 0.0


def test_latlon_descending_and_no_time(rng, model):
    da = latlon_field(rng).isel(time=0, drop=True)
    ens = run(da, model)
    assert ens.dims == ("realization", "lat", "lon") and ens.shape == (3, 20, 24)
    assert np.all(np.diff(ens.lat) < 0)  # direction kept
    np.testing.assert_allclose(ens.lat.values.reshape(5, 4).mean(1), da.lat.values)
    assert ens.lat.attrs["units"] == "degrees_north"
    b = grid.add_bounds(ens)
    cb = grid.bounds_1d(da.lon.values)
    fb = b.lon_bounds.values.reshape(6, 4, 2)
    np.testing.assert_allclose(fb[:, 0, 0], cb[:, 0])
    np.testing.assert_allclose(fb[:, -1, 1], cb[:, 1])


def test_odd_names_extra_dims_batched(rng, model):
    da = odd_field(rng)
    ens = run(da, model, factor=4)
    assert ens.dims == ("realization", "member_src", "step", "northing", "easting")
    assert ens.shape == (3, 2, 3, 16, 20)
    np.testing.assert_array_equal(ens.member_src, [10, 20])
    assert ens.attrs["units"] == "mm/h"
    # each sequence of the extra dim is downscaled as its own sequence
    alone = run(da.isel(member_src=[1]), model, factor=4)
    assert not np.allclose(alone.isel(member_src=0), ens.isel(member_src=0))


def test_curvilinear_latlon_refined(rng, model):
    da = curvilinear_field(rng)
    ens = run(da, model)
    assert ens.lat.dims == ("rlat", "rlon") and ens.lat.shape == (16, 20)
    np.testing.assert_allclose(ens.lat.values.reshape(4, 4, 5, 4).mean((1, 3)), da.lat,
                               atol=1e-9)
    assert ens.lon.min() >= -180 and ens.lon.max() < 180


def test_members_differ_seed_reproduces(rng, model):
    da = projected_field(rng)
    a, b = run(da, model, seed=1), run(da, model, seed=1)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.isel(realization=0), a.isel(realization=1))
    assert not np.allclose(run(da, model, seed=2), a)


def test_seed_drawn_and_recorded(rng, model):
    da = projected_field(rng)
    ens = xstochsr.downscale(da, model=model, factor=4, members=2)
    again = run(da, model, members=2, seed=ens.attrs["xstochsr_seed"])
    np.testing.assert_array_equal(ens.values, again.values)


def test_member_regenerated_alone(rng, model):
    da = projected_field(rng)
    full = run(da, model, members=4)
    alone = run(da, model, members=[2])
    np.testing.assert_array_equal(alone.realization, [2])
    # same noise; equal to float rounding (the convolution library's summation order
    # depends on the batch size), and far from any other member
    np.testing.assert_allclose(alone.isel(realization=0), full.isel(realization=2),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(alone.isel(realization=0), full.isel(realization=1), rtol=1e-3)


def test_long_sequence_chunked_equals_unchunked(rng, model):
    da = projected_field(rng, nt=50, ny=4, nx=5)
    one = run(da, model, time_chunk=50, members=2)
    chunked = run(da, model, time_chunk=7, members=2)
    np.testing.assert_array_equal(one.values, chunked.values)


def test_batch_size_does_not_change_results(rng, model):
    da = odd_field(rng)
    ref = run(da, model, factor=4)
    np.testing.assert_allclose(run(da, model, factor=4, batch_size=1).values, ref.values,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("calendar", [None, "noleap", "360_day"])
def test_time_gap_resets_state(calendar):
    from xstochsr.api import _segments
    from xstochsr.validation import check_time

    stamps = ["2021-01-01 00:00", "2021-01-01 00:05", "2021-01-01 00:10",
              "2021-01-01 02:00", "2021-01-01 02:05"]
    t = pd.to_datetime(stamps) if calendar is None else xr.date_range(
        "2021-01-01", periods=1, freq="5min", calendar=calendar, use_cftime=True)[0] + (
        pd.to_datetime(stamps) - pd.Timestamp("2021-01-01")).to_pytimedelta()
    da = xr.DataArray(np.zeros(5), dims="time", coords={"time": t})
    assert _segments(5, check_time(da, "time")) == [(0, 3), (3, 5)]


def test_units_converted_and_returned(rng, model):
    rate = projected_field(rng)
    flux = (rate / 3600.0).assign_attrs(units="kg m-2 s-1")
    ens_rate = run(rate, model)
    ens_flux = run(flux, model)
    assert ens_flux.attrs["units"] == "kg m-2 s-1"
    np.testing.assert_allclose(ens_flux.values * 3600.0, ens_rate.values, rtol=2e-5, atol=1e-6)


def test_nan_mask_stays_local(rng, model):
    da = projected_field(rng, nt=3, ny=8, nx=8)
    da[:, 2:4, 3:5] = np.nan  # e.g. outside radar range
    da[1] = np.nan  # a fully missing frame
    ens = run(da, model)
    coarse_bad = np.isnan(da.values)
    fine_bad = np.repeat(np.repeat(coarse_bad, 4, axis=-2), 4, axis=-1)
    assert np.array_equal(np.isnan(ens.values), np.broadcast_to(fine_bad, ens.shape))
    valid = ens.values[:, ~np.broadcast_to(fine_bad, ens.shape[1:])]
    assert np.all(np.isfinite(valid)) and valid.max() <= 100.0 and valid.min() >= 0.0


def test_dask_input_stays_lazy(rng, model):
    da = projected_field(rng, nt=6)
    calls = []

    def load(block):
        calls.append(block.size)
        return block

    lazy_data = dsa.from_array(da.values, chunks=(2, -1, -1)).map_blocks(
        load, meta=np.array((), dtype=np.float32))
    lazy = da.copy(data=lazy_data)
    ens = run(lazy, model)
    assert calls == [] and isinstance(ens.data, dsa.Array)
    assert ens.chunks[1] == (2, 2, 2)  # computed in the input's time chunks
    with dask.config.set(scheduler="synchronous"):
        values = ens.values
    assert calls
    np.testing.assert_array_equal(values, run(da, model).values)


def test_cuda_if_available(rng, model):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU machine and none was available here; run on a GPU machine: "
                    "python -m pytest tests/test_api.py tests/training/test_cuda.py -k cuda")
    da = projected_field(rng)
    np.testing.assert_allclose(run(da, model, device="cuda"), run(da, model), atol=1e-4)


# --- errors: each says what was found and names a fix -------------------------------------


def test_errors_share_one_tree():
    for cls in (MissingAxisError, IrregularCoordinateError, DomainTooSmallError, UnitsError,
                MissingUnitsError, UnsupportedFactorError, UnknownModelError, InvalidInputError):
        assert issubclass(cls, XStochSRError)


def test_error_no_axes(model):
    da = xr.DataArray(np.ones((4, 4)), dims=("a", "b"), attrs={"units": "mm h-1"})
    with pytest.raises(MissingAxisError, match="axis='X'"):
        run(da, model)


def test_error_factor(rng, model):
    with pytest.raises(UnsupportedFactorError, match="factor of 4, not 8"):
        run(projected_field(rng), model, factor=8)
    with pytest.raises(InvalidInputError, match="integer >= 2"):
        run(projected_field(rng), model, factor=1.5)


def test_error_domain_too_small(rng, model):
    with pytest.raises(DomainTooSmallError, match="Downscale a larger area"):
        run(projected_field(rng).isel(x=[0]), model)


def test_error_non_monotonic(rng, model):
    da = projected_field(rng)
    with pytest.raises(IrregularCoordinateError, match="sortby"):
        run(da.isel(y=[0, 2, 1, 3, 4, 5]), model)


def test_error_irregular(rng, model):
    da = projected_field(rng)
    da = da.assign_coords(y=da.y.values * np.linspace(1, 1.5, 6))
    with pytest.raises(IrregularCoordinateError, match="regrid"):
        run(da, model)


def test_error_unknown_model_lists_known(rng):
    with pytest.raises(UnknownModelError, match="'bilinear'"):
        run(projected_field(rng), "no-such-model")


def test_error_units_missing(rng, model):
    da = projected_field(rng)
    del da.attrs["units"]
    with pytest.raises(MissingUnitsError, match=r"\[length\] / \[time\]"):
        run(da, model)


def test_error_units_wrong(rng, model):
    da = projected_field(rng).assign_attrs(units="K")
    with pytest.raises(UnitsError, match="Cannot convert 'K'"):
        run(da, model)


def test_error_infinite(rng, model):
    da = projected_field(rng)
    da[0, 0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="infinite"):
        run(da, model)


def test_error_members(rng, model):
    with pytest.raises(InvalidInputError, match="members"):
        run(projected_field(rng), model, members=0)
    with pytest.raises(InvalidInputError, match="distinct"):
        run(projected_field(rng), model, members=[1, 1])


def test_dataset_input_gives_a_dataset(rng, model):
    """A Dataset gives a Dataset of ensembles, each variable as its DataArray would be."""
    da = projected_field(rng)
    ds = da.to_dataset()
    out = run(ds, model)
    assert isinstance(out, xr.Dataset) and list(out.data_vars) == [da.name]
    xr.testing.assert_identical(out[da.name].drop_attrs(), run(da, model).drop_attrs())
    two = ds.assign(other=da * 2)
    with pytest.raises(InvalidInputError, match="variables="):
        run(two, model)
    with pytest.raises(InvalidInputError, match="Dataset"):
        run(da, model, variables=[da.name])


def test_deterministic_model_members_identical(rng):
    det = tiny_model(noise_channels=0)
    assert not det.stochastic
    ens = run(projected_field(rng), det)
    np.testing.assert_array_equal(ens.isel(realization=0), ens.isel(realization=2))


def test_target_grid_regrids_lazily_every_member(rng, model):
    from xstochsr.regrid import native_grid

    da = projected_field(rng, nt=2, ny=6, nx=6)
    target = native_grid(da, 3000.0, "m")  # 3 km target vs 2 km fine grid
    ens = run(da, model, target_grid=target, members=2)
    assert ens.sizes["realization"] == 2
    np.testing.assert_allclose(np.diff(ens.x), 3000.0)
    assert "regrid" in ens.attrs["history"].lower()


def test_spacing_warning_and_regrid_input(rng):
    from xstochsr.regrid import GridSpacingWarning

    m = tiny_model()
    m.card.native_grid_spacing = {"value": 16.0, "units": "km"}
    da = projected_field(rng, nt=2, ny=8, nx=8)  # 8 km spacing
    with pytest.warns(GridSpacingWarning, match="regrid_input=True"):
        run(da, m)
    ens = run(da, m, regrid_input=True)
    assert ens.sizes["x"] == 4 * 4  # 8 x 8 km cells -> 4 x 4 at 16 km, then x4


@pytest.mark.parametrize("transform", [None, {"kind": "standardize", "mean": 1.0, "std": 2.0}])
def test_conserve_means_ties_blocks_to_coarse(rng, transform):
    m = tiny_model(transform=transform)
    da = projected_field(rng, nt=3)
    ens = run(da, m)  # default: on for generators
    blocks = ens.values.reshape(3, 3, 6, 4, 7, 4).mean(axis=(3, 5))
    np.testing.assert_allclose(blocks, np.broadcast_to(da.values, blocks.shape),
                               rtol=2e-5, atol=2e-5)
    assert "coarse means conserved" in ens.attrs["history"]
    raw = run(da, m, conserve=False)
    raw_blocks = raw.values.reshape(3, 3, 6, 4, 7, 4).mean(axis=(3, 5))
    assert not np.allclose(raw_blocks, np.broadcast_to(da.values, blocks.shape), rtol=1e-2)
    if transform is None:  # multiplicative keeps dry cells dry and nothing negative
        assert float(ens.min()) >= 0
        dry = np.repeat(np.repeat(da.values == 0, 4, -2), 4, -1)
        assert np.all(ens.values[:, dry] == 0)


def test_factor_defaults_to_the_models(rng):
    from fields import tiny_model as make

    da = projected_field(rng, nt=2, ny=4, nx=4)
    m4 = make(factor=4)
    ens = xstochsr.downscale(da, members=1, model=m4, seed=0, progress=False)
    assert ens.sizes["y"] == 16 and ens.attrs["xstochsr_factor"] == 4
    ens = xstochsr.downscale(da, members=1, model="bilinear", progress=False)  # any factor
    assert ens.attrs["xstochsr_factor"] == 8


def test_conserve_fills_dry_network_blocks_with_a_ramp_not_a_square():
    from xstochsr.api import conserve_means

    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1], x[0, 0, 1, 2] = 1.0, 4.0
    y = np.zeros((2, 1, 1, 12, 12), np.float32)  # the network left everything dry
    y[1, 0, 0, 4:8, 8:12] = 2.0                   # member 1 has rain in the wet block
    out = conserve_means(y, x, 4, "multiplicative")
    blocks = out.reshape(2, 1, 1, 3, 4, 3, 4).mean(axis=(4, 6))
    np.testing.assert_allclose(blocks, np.broadcast_to(x, blocks.shape), rtol=1e-6)
    centre = out[0, 0, 0, 4:8, 4:8]
    assert centre.min() > 0 and centre.std() > 0         # not a flat square
    assert centre[:, -1].mean() > centre[:, 0].mean()    # rises towards the wetter block
    np.testing.assert_allclose(out[1, 0, 0, 4:8, 8:12], 4.0)  # network rain is only scaled
    assert np.all(out[:, 0, 0, :4] == 0) and np.all(out[:, 0, 0, 8:] == 0)  # dry stays dry
