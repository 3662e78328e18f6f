import numpy as np
import pytest
import xarray as xr

from xstochsr import units
from xstochsr.errors import MissingUnitsError, UnitsError


@pytest.mark.parametrize(
    "src, dst, value, expected",
    [
        ("kg m-2 s-1", "mm h-1", 1.0, 3600.0),  # water density 1000 kg m-3
        ("mm h-1", "kg m-2 s-1", 3600.0, 1.0),
        ("mm/h", "mm h-1", 2.5, 2.5),
        ("m s-1", "mm h-1", 1e-6, 3.6),
        ("degC", "K", 0.0, 273.15),
        ("K", "degC", 300.0, 26.85),
    ],
)
def test_convert(src, dst, value, expected):
    assert units.convert(np.float64(value), src, dst) == pytest.approx(expected)


def test_round_trip_flux_rate(rng):
    x = rng.gamma(1.0, 1e-4, 100)
    back = units.convert(units.convert(x, "kg m-2 s-1", "mm h-1"), "mm h-1", "kg m-2 s-1")
    np.testing.assert_allclose(back, x, rtol=1e-12)


def test_to_units_keeps_attrs_and_is_lazy():
    da = xr.DataArray(np.ones(4), dims="x", attrs={"units": "kg m-2 s-1", "long_name": "pr"})
    out = units.to_units(da.chunk(2), "mm h-1")
    assert out.chunks is not None
    assert out.attrs == {"units": "mm h-1", "long_name": "pr"}
    np.testing.assert_allclose(out.values, 3600.0)


def test_missing_units_names_dimensionality():
    with pytest.raises(MissingUnitsError, match=r"\[length\] / \[time\].*da.attrs\['units'\]"):
        units.to_units(xr.DataArray([1.0]), "mm h-1")


def test_inconvertible_units():
    with pytest.raises(UnitsError, match="Cannot convert 'K'"):
        units.to_units(xr.DataArray([1.0], attrs={"units": "K"}), "mm h-1")


def test_unparseable_units():
    with pytest.raises(UnitsError, match="Cannot parse"):
        units.parse("furlongs per fortnight zz")


@pytest.mark.parametrize("sn, expected", [
    ("lwe_precipitation_rate", True), ("precipitation_flux", True), ("rainfall_amount", True),
    ("snowfall_flux", True), ("eastward_wind", False),
    ("atmosphere_mass_content_of_water_vapor", False), (None, False), ("", False),
])
def test_is_precipitation(sn, expected):
    from xstochsr.units import is_precipitation

    assert is_precipitation(sn) is expected
