"""Physics diagnostics of winds against analytic flows (issue 12)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import InvalidInputError, MissingUnitsError, UnitsError, XStochSRError
from xstochsr.metrics import (
    GeostrophyWarning,
    ageostrophic_ratio,
    divergence,
    divergence_ratio,
    geostrophic_wind,
    kinetic_energy_lsd,
    kinetic_energy_spectrum,
    spectral_slope,
    verify,
    verify_wind,
    vorticity,
)

R = 6.371e6
OMEGA = 7.2921e-5
G0 = 9.80665
U_ATTRS = {"units": "m s-1", "standard_name": "eastward_wind"}
V_ATTRS = {"units": "m s-1", "standard_name": "northward_wind"}


def projected(n=41, dx_km=10.0, units="km"):
    """Coords of a projected grid centred on 0, in ``units`` (values of dx_km km)."""
    c = (np.arange(n) - n // 2) * dx_km
    scale = {"km": 1.0, "m": 1e3}[units]
    return {"y": ("y", c * scale, {"units": units, "axis": "Y"}),
            "x": ("x", c * scale, {"units": units, "axis": "X"})}


def wind(fu, fv, coords, dims=("y", "x")):
    """u, v on ``coords`` from functions of the (y, x) coordinate values in metres."""
    yv = np.asarray(coords[dims[0]][1], float)
    xv = np.asarray(coords[dims[1]][1], float)
    if coords[dims[0]][2].get("units") == "km":
        yv, xv = yv * 1e3, xv * 1e3
    Y, X = np.meshgrid(yv, xv, indexing="ij")
    u = xr.DataArray(fu(Y, X), dims=dims, coords=coords, attrs=U_ATTRS, name="ua")
    v = xr.DataArray(fv(Y, X), dims=dims, coords=coords, attrs=V_ATTRS, name="va")
    return u, v


def latlon(dlat=1.0, dlon=1.0, lat0=-89.5, lat1=89.5, lon0=0.0, lon1=360.0):
    lat = np.arange(lat0, lat1 + 1e-9, dlat)
    lon = np.arange(lon0, lon1 - 1e-9, dlon)
    return {"lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})}


def sphere_wind(fu, fv, coords):
    """u, v from functions of (lat, lon) in radians."""
    lat = np.deg2rad(coords["lat"][1])
    lon = np.deg2rad(coords["lon"][1])
    LAT, LON = np.meshgrid(lat, lon, indexing="ij")
    u = xr.DataArray(fu(LAT, LON), dims=("lat", "lon"), coords=coords, attrs=U_ATTRS)
    v = xr.DataArray(fv(LAT, LON), dims=("lat", "lon"), coords=coords, attrs=V_ATTRS)
    return u, v


# --- projected grids -----------------------------------------------------------------------

def test_solid_body_rotation_projected():
    w = 1e-4  # angular velocity (s-1): vorticity 2w, divergence 0
    u, v = wind(lambda Y, X: -w * Y, lambda Y, X: w * X, projected())
    z, d = vorticity(u, v), divergence(u, v)
    np.testing.assert_allclose(z.values, 2 * w, rtol=1e-10)  # edges included (linear flow)
    assert np.abs(d.values).max() < 1e-16
    assert z.attrs["standard_name"] == "atmosphere_relative_vorticity"
    assert d.attrs["standard_name"] == "divergence_of_wind"
    assert z.attrs["units"] == d.attrs["units"] == "s-1"
    assert z.dims == u.dims and np.array_equal(z.x, u.x)


@pytest.mark.parametrize("flow", ["stretch", "shear"])
def test_pure_strain_has_no_divergence_or_vorticity(flow):
    a = 3e-5
    if flow == "stretch":
        u, v = wind(lambda Y, X: a * X, lambda Y, X: -a * Y, projected())
    else:
        u, v = wind(lambda Y, X: a * Y, lambda Y, X: a * X, projected())
    assert np.abs(vorticity(u, v).values).max() < 1e-16
    assert np.abs(divergence(u, v).values).max() < 1e-16


def test_source_has_known_divergence_and_no_vorticity():
    a = 2e-5
    u, v = wind(lambda Y, X: a * X, lambda Y, X: a * Y, projected())
    np.testing.assert_allclose(divergence(u, v).values, 2 * a, rtol=1e-10)
    assert np.abs(vorticity(u, v).values).max() < 1e-16


def test_units_of_coordinates_and_wind_are_converted():
    w = 1e-4
    u_km, v_km = wind(lambda Y, X: -w * Y, lambda Y, X: w * X, projected(units="km"))
    u_m, v_m = wind(lambda Y, X: -w * Y, lambda Y, X: w * X, projected(units="m"))
    np.testing.assert_allclose(vorticity(u_km, v_km).values, vorticity(u_m, v_m).values)
    # the same wind in km/h: converted to m/s before differencing
    kmh_u = (u_m * 3.6).assign_attrs(U_ATTRS, units="km h-1")
    kmh_v = (v_m * 3.6).assign_attrs(V_ATTRS, units="km h-1")
    np.testing.assert_allclose(vorticity(kmh_u, kmh_v).values, 2 * w, rtol=1e-10)


def test_centred_differences_are_second_order_on_a_wave():
    # u = sin(k y): vorticity -k cos(k y); centred error ~ (k dy)^2 / 6 in the interior
    L = 400e3
    k = 2 * np.pi / L
    errs = []
    for dx in (10.0, 5.0):
        n = int(800 / dx) + 1
        u, v = wind(lambda Y, X: np.sin(k * Y), lambda Y, X: 0 * X, projected(n, dx))
        z = vorticity(u, v)
        exact = -k * np.cos(k * z.y.values * 1e3)[:, None]
        err = np.abs(z.values - exact)[2:-2].max() / k
        assert err < (k * dx * 1e3) ** 2 / 6 * 1.01
        errs.append(err)
    assert 3.8 < errs[0] / errs[1] < 4.2  # halving dx quarters the error


def test_nan_is_local_and_neighbours_use_one_sided_differences():
    w = 1e-4
    u, v = wind(lambda Y, X: -w * Y, lambda Y, X: w * X, projected())
    hole = (np.abs(u.y) <= 20) & (np.abs(u.x) <= 10)  # a 5 x 3 hole of NaN
    z = vorticity(u.where(~hole), v.where(~hole))
    assert np.isnan(z.values[hole.values]).all()
    np.testing.assert_allclose(z.values[~hole.values], 2 * w, rtol=1e-10)
    # a single valid cell between NaN in both directions has no derivative: NaN
    one = u.where(False).copy()
    one[5, 5] = 1.0
    assert np.isnan(vorticity(one, v.where(False)).values).all()


def test_dataset_input_finds_the_pair_and_dask_stays_lazy():
    w = 1e-4
    u, v = wind(lambda Y, X: -w * Y, lambda Y, X: w * X, projected())
    ds = xr.Dataset({"foo": u.rename("foo"), "bar": v.rename("bar")})
    np.testing.assert_allclose(vorticity(ds).values, 2 * w, rtol=1e-10)
    su = u.expand_dims(time=3).chunk({"time": 1, "x": 10})
    sv = v.expand_dims(time=3).chunk({"time": 1, "x": 10})
    z = vorticity(su, sv)
    assert z.chunks is not None
    np.testing.assert_allclose(z.values, 2 * w, rtol=1e-10)


# --- latitude/longitude grids --------------------------------------------------------------

def test_solid_body_rotation_on_the_sphere():
    U = 20.0
    u, v = sphere_wind(lambda la, lo: U * np.cos(la), lambda la, lo: 0 * la, latlon())
    z, d = vorticity(u, v), divergence(u, v)
    lat = np.deg2rad(u.lat.values)[:, None]
    exact = 2 * U * np.sin(lat) / R
    inner = np.abs(u.lat.values) < 85
    # d(u cos)/dlat ~ sin(2 lat): centred relative error (2 dlat)^2 / 6 = 2.03e-4 on 1 degree
    np.testing.assert_allclose(z.values[inner], np.broadcast_to(exact, z.shape)[inner],
                               rtol=2.1e-4, atol=1e-12)
    assert np.abs(d.values).max() < 1e-18


def test_divergence_on_the_sphere_has_cos_lat_inside_the_derivative():
    # v = V cos(lat): d(v cos)/dlat = -2 V cos sin, so div = -2 V sin(lat) / R
    V = 5.0
    u, v = sphere_wind(lambda la, lo: 0 * la, lambda la, lo: V * np.cos(la), latlon())
    d = divergence(u, v).sel(lat=slice(-80, 80))
    exact = -2 * V * np.sin(np.deg2rad(d.lat.values))[:, None] / R
    np.testing.assert_allclose(d.values, np.broadcast_to(exact, d.shape), rtol=2.1e-4, atol=1e-12)
    # without the cos factor inside, the answer would be -V sin/R: off by a factor 2
    assert not np.allclose(d.values[d.lat.values > 10], (exact / 2)[d.lat.values > 10])


def test_longitude_wraps_when_the_grid_spans_360_degrees():
    V = 10.0
    u, v = sphere_wind(lambda la, lo: 0 * la, lambda la, lo: V * np.sin(lo + 1), latlon(dlon=2.0))
    z = vorticity(u, v).sel(lat=slice(-60, 60))
    lat = np.deg2rad(z.lat.values)[:, None]
    exact = V * np.cos(np.deg2rad(z.lon.values) + 1)[None, :] / (R * np.cos(lat))
    err = np.abs(z.values - exact) / (V / R)
    assert "periodic" in z.attrs["comment"]
    assert err[:, 0].max() < 1e-3 and err[:, -1].max() < 1e-3  # seam as good as inside
    # a regional grid (not 360 degrees) is not wrapped: one-sided at its edges
    ur, vr = sphere_wind(lambda la, lo: 0 * la, lambda la, lo: V * np.sin(lo + 1),
                         latlon(dlon=2.0, lon1=180.0))
    zr = vorticity(ur, vr).sel(lat=slice(-60, 60))
    errr = np.abs(zr.values - exact[:, :zr.sizes["lon"]]) / (V / R)
    assert "periodic" not in zr.attrs["comment"]
    assert errr[:, 0].max() > 10 * err[:, 0].max()


def test_descending_latitude_gives_the_same_field():
    U = 20.0
    u, v = sphere_wind(lambda la, lo: U * np.cos(la) * np.cos(lo),
                       lambda la, lo: U * np.sin(2 * lo) * np.cos(la), latlon(2.0, 2.0))
    z = vorticity(u, v)
    flip = vorticity(u.isel(lat=slice(None, None, -1)), v.isel(lat=slice(None, None, -1)))
    np.testing.assert_allclose(flip.sortby("lat").values, z.values, rtol=1e-12, atol=1e-20)


def gaussian_high(coords, amp=200.0, lat_c=45.0, lon_c=20.0, sigma=8.0):
    """z (m) of a Gaussian high and its analytic geostrophic wind (m s-1)."""
    lat = np.deg2rad(coords["lat"][1])[:, None]
    lon = np.deg2rad(coords["lon"][1])[None, :]
    s = np.deg2rad(sigma)
    a, b = lat - np.deg2rad(lat_c), lon - np.deg2rad(lon_c)
    g = amp * np.exp(-(a**2 + b**2) / (2 * s**2))
    z = 5500.0 + g
    dz_dlat, dz_dlon = -a / s**2 * g, -b / s**2 * g
    f = 2 * OMEGA * np.sin(lat)
    with np.errstate(divide="ignore", invalid="ignore"):  # f = 0 on the equator
        ug = -G0 / (f * R) * dz_dlat
        vg = G0 / (f * R * np.cos(lat)) * dz_dlon
    mk = lambda val, at: xr.DataArray(np.broadcast_to(val, g.shape).copy(),  # noqa: E731
                                      dims=("lat", "lon"), coords=coords, attrs=at)
    return (mk(z, {"units": "m", "standard_name": "geopotential_height"}),
            mk(ug, U_ATTRS), mk(vg, V_ATTRS))


def test_geostrophic_flow_around_a_gaussian_high():
    coords = latlon(0.5, 0.5, 15.0, 75.0, -20.0, 60.0)
    z, u, v = gaussian_high(coords)
    ug, vg = geostrophic_wind(z)
    assert ug.attrs["standard_name"] == "geostrophic_eastward_wind"
    ratio = ageostrophic_ratio(u, v, ug, vg)
    assert float(ratio) < 0.005  # discretisation only
    # clockwise (anticyclonic) in the northern hemisphere: eastward north of the centre
    assert float(ug.sel(lat=53.0, lon=20.0)) > 5.0
    assert float(ug.sel(lat=37.0, lon=20.0)) < -5.0
    # a wind turned by 90 degrees is all ageostrophic: ratio sqrt(2)
    turned = ageostrophic_ratio(v.assign_attrs(U_ATTRS), (-u).assign_attrs(V_ATTRS), ug, vg)
    assert abs(float(turned) - np.sqrt(2)) < 0.01
    # geopotential (m2 s-2) gives the same wind as geopotential height (m)
    phi = (z * G0).assign_attrs(units="m2 s-2", standard_name="geopotential")
    np.testing.assert_allclose(geostrophic_wind(phi)[0].values, ug.values, rtol=1e-12)
    # pointwise ratio with dim=[]
    assert ageostrophic_ratio(u, v, ug, vg, dim=[]).shape == u.shape


def test_geostrophy_near_the_equator_is_nan_with_a_warning():
    coords = latlon(1.0, 1.0, -20.0, 20.0, 0.0, 40.0)
    z, _, _ = gaussian_high(coords, lat_c=10.0)
    with pytest.warns(GeostrophyWarning, match="too close to the equator"):
        ug, vg = geostrophic_wind(z)
    near = np.abs(ug.lat.values) < 5.0
    assert np.isnan(ug.values[near]).all() and np.isnan(vg.values[near]).all()
    assert np.isfinite(ug.values[~near]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        geostrophic_wind(z.sel(lat=slice(6, 20)))  # no warning poleward of 5 degrees


def test_beta_plane_geostrophy_on_a_projected_grid():
    coords = projected(21, 50.0)
    yv = coords["y"][1] * 1e3
    f0, beta, slope = 1e-4, 1.6e-11, 1e-4  # z falls 0.1 m per km northward
    z = xr.DataArray(5500.0 - slope * yv[:, None] * np.ones(21), dims=("y", "x"),
                     coords=coords, attrs={"units": "m"})
    with pytest.raises(InvalidInputError, match="f0="):
        geostrophic_wind(z)
    ug, vg = geostrophic_wind(z, f0=f0, beta=beta)
    exact = G0 * slope / (f0 + beta * yv)[:, None]
    np.testing.assert_allclose(ug.values, np.broadcast_to(exact, ug.shape), rtol=1e-10)
    assert np.abs(vg.values).max() < 1e-12



def test_thermal_wind_residual_of_a_balanced_layer():
    from xstochsr.metrics import thermal_wind_residual

    coords = latlon(0.5, 0.5, 25.0, 65.0, -20.0, 40.0)
    z_low, u_low, v_low = gaussian_high(coords, amp=100.0, sigma=10.0)
    z_up, u_up, v_up = gaussian_high(coords, amp=250.0, sigma=7.0)  # warm core: high aloft
    h = (z_up - z_low).assign_attrs(units="m")
    res = thermal_wind_residual((u_low, v_low), (u_up, v_up), thickness=h)
    assert float(res) < 0.005
    # the same thickness from the layer-mean temperature (hypsometric equation)
    lnp = np.log(850.0 / 500.0)
    t = (h * G0 / (287.05 * lnp)).assign_attrs(units="K")
    res_t = thermal_wind_residual((u_low, v_low), (u_up, v_up), temperature=t,
                                  pressure=(850.0, 500.0))
    np.testing.assert_allclose(float(res_t), float(res), rtol=1e-9)
    # a shear that ignores the thickness (the upper wind replaced by the lower's, doubled)
    bad = thermal_wind_residual((u_low, v_low), (2 * u_low, 2 * v_low), thickness=h)
    assert float(bad) > 0.5
    with pytest.raises(InvalidInputError, match="either thickness"):
        thermal_wind_residual((u_low, v_low), (u_up, v_up))
    with pytest.raises(InvalidInputError, match="pressure"):
        thermal_wind_residual((u_low, v_low), (u_up, v_up), temperature=t)

# --- kinetic energy spectra ----------------------------------------------------------------

def power_law_wind(slope, n=256, frames=4, seed=0):
    """Random u, v whose isotropic KE spectrum is ``k**slope`` (per-mode power k**(slope-1))."""
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.fftfreq(n)[None, :]
    k = np.hypot(ky, kx)
    amp = np.where(k > 0, k, np.inf) ** ((slope - 1) / 2)
    fields = []
    for _ in range(2):
        noise = rng.normal(size=(frames, n, n)) + 1j * rng.normal(size=(frames, n, n))
        fields.append(np.real(np.fft.ifft2(noise * amp)))
    coords = {"time": np.arange(frames), **projected(n, 2.0)}
    mk = lambda f, at: xr.DataArray(f, dims=("time", "y", "x"), coords=coords, attrs=at)  # noqa
    return mk(fields[0], U_ATTRS), mk(fields[1], V_ATTRS)


@pytest.mark.parametrize("slope", [-3.0, -5.0 / 3.0])
def test_kinetic_energy_slope_of_power_law_fields(slope):
    u, v = power_law_wind(slope)
    e = kinetic_energy_spectrum(u, v)
    assert e.dims == ("wavenumber",) and e.attrs["units"] == "m2 s-2 km"
    fitted = float(spectral_slope(e, band=(0.01, 0.15)))  # cycles per km
    assert abs(fitted - slope) < 0.1, fitted
    # Parseval: sum E dk is the kinetic energy of the fluctuations (inside the last annulus)
    ke = float(0.5 * (u.var(["y", "x"]) + v.var(["y", "x"])).mean())
    total = float(e.sum()) * float(e.wavenumber[0])
    assert 0.9 < total / ke <= 1.0


def test_spectral_slope_band_errors():
    k = np.arange(1.0, 9.0)
    e = xr.DataArray(k**-2.0, dims="wavenumber", coords={"wavenumber": k})
    assert abs(float(spectral_slope(e)) + 2) < 1e-12
    with pytest.raises(InvalidInputError, match="Widen it"):
        spectral_slope(e, band=(1.5, 2.5))
    with pytest.raises(InvalidInputError, match="wavenumber"):
        spectral_slope(e.rename(wavenumber="k"))


def test_kinetic_energy_lsd_of_scaled_members():
    u, v = power_law_wind(-3.0, n=64, frames=2)
    ens_u = xr.concat([u, 2 * u], "realization").assign_attrs(U_ATTRS)
    ens_v = xr.concat([v, 2 * v], "realization").assign_attrs(V_ATTRS)
    lsd = float(kinetic_energy_lsd(ens_u, ens_v, u, v))
    assert abs(lsd - 0.5 * 20 * np.log10(2)) < 1e-9  # members: 0 dB and 6.02 dB


# --- verify ---------------------------------------------------------------------------------

def wind_case(members=3, noise=0.0, n=32):
    coords = latlon(1.0, 1.0, 30.0, 30.0 + n - 1, 0.0, float(n))
    z, u, v = gaussian_high(coords, lat_c=45.0, lon_c=16.0, sigma=5.0)
    rng = np.random.default_rng(1)
    ens = xr.Dataset({
        name: xr.concat([f + noise * rng.normal(size=f.shape) for _ in range(members)],
                        "realization").assign_attrs(f.attrs)
        for name, f in (("ua", u), ("va", v))})
    obs = xr.Dataset({"ua": u, "va": v, "zg": z})
    return ens, obs


def test_verify_on_wind_datasets_adds_physics():
    ens, obs = wind_case()
    perfect = verify(ens, obs, y_dim="lat", x_dim="lon")
    for name in ("divergence_rmse", "vorticity_rmse", "kinetic_energy_slope_error",
                 "kinetic_energy_lsd"):
        assert abs(float(perfect[name])) < 1e-12, name
    # analytic geostrophic wind, sigma = 5 cells, one-sided at the edges: discretisation only
    assert float(perfect.ageostrophic_ratio_obs) < 0.02
    assert "ua_crps" in perfect and "va_rank_histogram" in perfect
    assert perfect.ua_crps.attrs["units"] == "m s-1"
    assert perfect.vorticity_rmse.attrs["units"] == "s-1"
    assert perfect.vorticity_lsd.attrs["units"] == "dB"
    assert perfect.attrs["wind_components"] == "ua va"
    # the DataArray verify's settings reach the components' scores
    few = verify(ens, obs, y_dim="lat", x_dim="lon", thresholds=[1.0], scales=[1])
    assert few.sizes["ua_threshold"] == 1 and few.sizes["va_scale"] == 1
    noisy = verify_wind(*wind_case(noise=2.0), components=False)
    assert "ua_crps" not in noisy
    assert float(noisy.vorticity_rmse) > 1e-6
    assert float(noisy.divergence_lsd) > 1.0
    assert float(noisy.kinetic_energy_lsd) > 1.0
    assert float(noisy.ageostrophic_ratio_ens) > 5 * float(noisy.ageostrophic_ratio_obs)
    # white noise on a geostrophic flow is divergent: the members' balance is worse
    assert float(perfect.divergence_ratio_ens) == pytest.approx(
        float(perfect.divergence_ratio_obs), rel=1e-12)
    assert float(noisy.divergence_ratio_ens) > 5 * float(noisy.divergence_ratio_obs)
    assert noisy.divergence_ratio_ens.attrs["units"] == "1"


def test_divergence_ratio_of_rotation_plus_source():
    w, a = 1e-4, 2e-5  # vorticity 2w, divergence 2a everywhere: the ratio is a / w
    u, v = wind(lambda Y, X: -w * Y + a * X, lambda Y, X: w * X + a * Y, projected())
    r = divergence_ratio(divergence(u, v), vorticity(u, v), dim=["y", "x"])
    assert float(r) == pytest.approx(a / w, rel=1e-10)
    d = divergence(u, v).where(u.x < 0)  # NaN is skipped
    assert float(divergence_ratio(d, vorticity(u, v), dim=["y", "x"])) == pytest.approx(
        a / w, rel=1e-10)


# --- bad input ------------------------------------------------------------------------------

@pytest.fixture
def uv():
    return wind(lambda Y, X: Y * 1e-5, lambda Y, X: X * 1e-5, projected(11))


def test_u_without_v(uv):
    with pytest.raises(InvalidInputError, match="without v"):
        vorticity(uv[0])
    with pytest.raises(InvalidInputError, match="no variable with standard_name"):
        divergence(xr.Dataset({"ua": uv[0]}))


def test_swapped_mismatched_and_scalar_components(uv):
    u, v = uv
    with pytest.raises(InvalidInputError, match="swapped"):
        vorticity(v, u)
    with pytest.raises(InvalidInputError, match="different vectors"):
        vorticity(u, v.assign_attrs(standard_name="sea_water_y_velocity"))
    zg = u.assign_attrs(standard_name="geopotential_height", units="m")
    with pytest.raises(InvalidInputError, match="not a horizontal vector component"):
        divergence(zg, v)
    with pytest.raises(InvalidInputError, match="geopotential height or geopotential"):
        geostrophic_wind(u)


def test_different_grids_and_units(uv):
    u, v = uv
    with pytest.raises(InvalidInputError, match="different grids"):
        vorticity(u, v.assign_coords(x=v.x + 5.0))
    with pytest.raises(UnitsError, match="velocity"):
        vorticity(u, v.assign_attrs(units="K"))
    with pytest.raises(MissingUnitsError, match="units"):
        vorticity(u, v.assign_attrs(units=None).drop_attrs() if hasattr(v, "drop_attrs")
                  else v.copy(data=v.values).assign_attrs(units=None))
    bad = u.copy()
    bad["x"].attrs["units"] = "s"
    with pytest.raises(UnitsError, match="not a length"):
        vorticity(bad, v.assign_coords(x=bad.x))
    bare = u.drop_vars(["x", "y"])
    with pytest.raises(InvalidInputError, match="no coordinate values"):
        vorticity(bare, v.drop_vars(["x", "y"]))
    with pytest.raises(XStochSRError):
        verify_wind(u, v)


# --- docstring examples and plots -----------------------------------------------------------

@pytest.mark.parametrize("module", ["kinematics", "geostrophy", "energy"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"xstochsr.metrics.physics.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_wind_plots():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from xstochsr.plot import plot_kinetic_energy_spectra, plot_wind_panels

    u, v = power_law_wind(-3.0, n=32, frames=2)
    ens_u = xr.concat([u, 1.5 * u, 2 * u], "realization").assign_attrs(U_ATTRS)
    ens_v = xr.concat([v, 1.5 * v, 2 * v], "realization").assign_attrs(V_ATTRS)
    fig, axes = plot_wind_panels(ens_u, ens_v, u, v, members=2, isel={"time": 1})
    assert axes.shape == (2, 3)
    assert axes[0, 0].get_title() == "truth: vorticity"
    lo, hi = axes[1, 2].collections[0].get_clim()
    assert lo == -hi > -np.inf and hi > 0
    with pytest.raises(InvalidInputError, match="3 members"):
        plot_wind_panels(ens_u, ens_v, u, v, members=[5])
    ax = plot_kinetic_energy_spectra(ens_u, ens_v, u, v, band=(0.005, 0.1))
    assert "KE spectra: slope" in ax.get_title() and "LSD" in ax.get_title()
    assert len(ax.get_lines()) == 5  # 3 members, their mean, the truth
    plt.close("all")
