import numpy as np
import pytest
import xarray as xr
from fields import curvilinear_field, latlon_field, odd_field, projected_field

from xstochsr import grid
from xstochsr.errors import DomainTooSmallError, IrregularCoordinateError, MissingAxisError


def test_find_axes_projected(rng):
    ax = grid.find_axes(projected_field(rng))
    assert (ax.x, ax.y, ax.t) == ("x", "y", "time")


def test_find_axes_latlon_by_units(rng):
    ax = grid.find_axes(latlon_field(rng))
    assert (ax.x, ax.y, ax.t) == ("lon", "lat", "time")


def test_find_axes_odd_names(rng):
    ax = grid.find_axes(odd_field(rng))
    assert (ax.x, ax.y, ax.t) == ("easting", "northing", "step")


def test_find_axes_curvilinear(rng):
    ax = grid.find_axes(curvilinear_field(rng))
    assert (ax.x, ax.y, ax.t, ax.lon, ax.lat) == ("rlon", "rlat", None, "lon", "lat")


def test_find_axes_guess_plain_names():
    da = xr.DataArray(np.zeros((3, 4)), dims=("y", "x"), coords={"y": np.arange(3.0),
                                                                 "x": np.arange(4.0)})
    assert grid.find_axes(da).spatial == ("y", "x")


def test_missing_axis_names_fix():
    da = xr.DataArray(np.zeros((3, 4)), dims=("a", "b"))
    with pytest.raises(MissingAxisError, match="axis='X'"):
        grid.find_axes(da)


def test_check_regular_errors(rng):
    da = projected_field(rng)
    bad = da.assign_coords(x=da.x.values[[0, 2, 1, 3, 4, 5, 6]])
    with pytest.raises(IrregularCoordinateError, match="sortby"):
        grid.check_regular(bad, grid.find_axes(bad))
    uneven = da.assign_coords(x=da.x.values + np.r_[0, 0, 0, 3000, 3000, 3000, 3000])
    with pytest.raises(IrregularCoordinateError, match="unevenly"):
        grid.check_regular(uneven, grid.find_axes(uneven))
    with pytest.raises(DomainTooSmallError, match="at least 2"):
        grid.check_regular(da.isel(x=[0]), grid.find_axes(da))


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
def test_refine_1d_nests_in_coarse_bounds(factor):
    c = np.array([10.0, 8.0, 6.0, 4.0])  # descending
    cb = grid.bounds_1d(c)
    centres, fb = grid.refine_1d(cb, factor)
    assert centres.shape == (4 * factor,)
    fb = fb.reshape(4, factor, 2)
    # fine cells tile each coarse cell exactly, in order, in the coarse direction
    np.testing.assert_allclose(fb[:, 0, 0], cb[:, 0])
    np.testing.assert_allclose(fb[:, -1, 1], cb[:, 1])
    np.testing.assert_allclose(fb[:, 1:, 0], fb[:, :-1, 1])
    # every fine centre lies inside its coarse cell and the coarse centre is their mean
    np.testing.assert_allclose(centres.reshape(4, factor).mean(axis=1), c)
    assert np.all(np.diff(centres) < 0)


def test_refine_2d_linear_exact_and_dateline(rng):
    j, i = np.meshgrid(np.arange(4.0), np.arange(5.0), indexing="ij")
    lat = 60 + 0.8 * j - 0.1 * i
    fine = grid.refine_2d(lat, 4)
    jf, if_ = np.meshgrid((np.arange(16) + 0.5) / 4 - 0.5, (np.arange(20) + 0.5) / 4 - 0.5,
                          indexing="ij")
    np.testing.assert_allclose(fine, 60 + 0.8 * jf - 0.1 * if_, atol=1e-12)
    lon = curvilinear_field(rng).lon.values
    flon = grid.refine_2d(lon, 4, periodic=360.0)
    step = np.diff(np.unwrap(flon, period=360, axis=1), axis=1)
    np.testing.assert_allclose(step, 0.25, atol=1e-9)  # smooth across the date line
    assert flon.min() >= -180 and flon.max() < 180


def test_coarsen_field_block_mean_and_nan(rng):
    da = projected_field(rng, ny=8, nx=8)
    da[0, 0, 0] = np.nan
    c = grid.coarsen_field(da, 4)
    assert c.shape == (5, 2, 2)
    np.testing.assert_allclose(c[1, 1, 0], da[1, 4:8, 0:4].mean(), rtol=1e-6)
    assert np.isnan(c[0, 0, 0]) and np.isfinite(c[0, 0, 1])
    np.testing.assert_allclose(c.x, da.x.values.reshape(2, 4).mean(1))


def test_add_bounds(rng):
    ds = grid.add_bounds(projected_field(rng))
    assert ds.x.attrs["bounds"] == "x_bounds"
    np.testing.assert_allclose(ds.x_bounds.mean("bounds"), ds.x)
