"""The terrain-shaped rain sequences of issue 13 (scripts/make_orographic_sequences.py).

Checks the committed split manifest ``scripts/splits/orographic.json`` (every range in one
subset, test and validation terrain never inside a training domain, boxes that really bound
the domains), the pure-numpy pieces (regridding of relief, windward/lee contrast, Fourier
advection, smooth random walks) on analytic fields, and, where the physics package and the
ETOPO5 file are present, the wind convention of the physics and a quick build's CF file.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from repo_files import load_script

mos = load_script("scripts/make_orographic_sequences.py", "make_orographic_sequences")

SETS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def manifest():
    return mos.load_manifest()


def _have_physics() -> bool:
    try:
        import orographic_precipitation  # noqa: F401
    except ImportError:
        return False
    return True


# --- the committed manifest --------------------------------------------------------------


def test_manifest_every_range_in_exactly_one_subset(manifest):
    names = [r["name"] for r in manifest["ranges"]]
    assert len(names) == len(set(names)), "a range is listed twice"
    by_set = {s: {r["name"] for r in manifest["ranges"] if r["set"] == s} for s in SETS}
    assert {r["set"] for r in manifest["ranges"]} <= set(SETS)
    for a, b in itertools.combinations(SETS, 2):
        assert not by_set[a] & by_set[b], (a, b)
    for s in SETS:
        assert by_set[s], f"subset {s} has no range"
        assert manifest["counts"][s]["ranges"] == len(by_set[s])
        n_seq = manifest["simulated"]["subsets"][s]["n_sequences"]
        assert manifest["counts"][s]["sequences"] == n_seq
        assert n_seq >= len(by_set[s]), f"{s}: some range gets no sequence"
    seeds = [manifest["simulated"]["subsets"][s]["seed"] for s in SETS]
    assert len(set(seeds)) == 3
    # the script's table and the manifest say the same
    assert {r["name"]: (r["lat"], r["lon"], r["set"]) for r in manifest["ranges"]} == mos.RANGES


def test_manifest_test_and_validation_terrain_never_inside_a_training_domain(manifest):
    ranges = manifest["ranges"]
    for a, b in itertools.combinations(ranges, 2):
        if a["set"] == b["set"]:
            continue
        # neither domain, nor the margin of real terrain its physics sees, meets the other
        assert not mos.boxes_overlap(a["box_with_margin"], b["box"]), (a["name"], b["name"])
        assert not mos.boxes_overlap(a["box"], b["box_with_margin"]), (a["name"], b["name"])


def test_boxes_overlap_handles_the_antimeridian():
    a = {"lat": [0.0, 10.0], "lon": [175.0, 185.0]}
    assert mos.boxes_overlap(a, {"lat": [5.0, 6.0], "lon": [-180.0, -178.0]})
    assert not mos.boxes_overlap(a, {"lat": [5.0, 6.0], "lon": [-170.0, -160.0]})
    assert not mos.boxes_overlap(a, {"lat": [11.0, 12.0], "lon": [176.0, 177.0]})


def test_manifest_boxes_bound_the_projected_domains(manifest):
    pytest.importorskip("pyproj")
    g = manifest["grid"]
    for r in manifest["ranges"][::4]:  # a few, to stay quick
        lat, lon = mos.domain_lonlat(r["lat"], r["lon"], g["size"], g["dx_m"])
        assert mos.lonlat_box(lat, lon, r["lon"]) == r["box"]
        m = g["size"] + 2 * g["margin"]
        lat, lon = mos.domain_lonlat(r["lat"], r["lon"], m, g["dx_m"])
        assert mos.lonlat_box(lat, lon, r["lon"]) == r["box_with_margin"]


# --- regridding of relief ---------------------------------------------------------------


def _analytic(lat, lon):
    """Smooth relief (m): ridges of about 10 and 14 degrees wavelength."""
    return 1500.0 + 1200.0 * np.sin(np.radians(lat) * 36.0) * np.cos(np.radians(lon) * 26.0)


def _global_grid(step=0.25):
    lat = np.arange(-90.0, 90.0 + step / 2, step)
    lon = np.arange(0.0, 360.0, step)
    return lat, lon


@pytest.mark.parametrize("lat0, lon0", [(46.4, 10.0), (-36.5, 179.5), (42.7, 0.5)])
def test_regrid_relief_keeps_heights_of_an_analytic_relief(lat0, lon0):
    """Across the prime meridian and the antimeridian, on a projected 3 km grid."""
    pytest.importorskip("pyproj")
    lat, lon = _global_grid()
    relief = _analytic(lat[:, None], lon[None, :]).astype("float32")
    tlat, tlon = mos.domain_lonlat(lat0, lon0, 96, 3000.0)
    got = mos.regrid_relief(relief, lat, lon, tlat, tlon)
    want = _analytic(tlat, tlon)
    assert got.shape == tlat.shape
    assert np.abs(got - want).max() < 1.0  # metres, on 1200 m amplitude
    # a descending latitude axis gives the same heights
    back = mos.regrid_relief(relief[::-1], lat[::-1], lon, tlat, tlon)
    np.testing.assert_allclose(back, got, atol=1e-6)


def test_regrid_relief_constant_and_ramp_exactly():
    lat = np.linspace(30.0, 50.0, 81)
    lon = np.linspace(-10.0, 20.0, 121)
    edge_lat = np.array([[31.0, 49.9]])
    edge_lon = np.array([[19.9, 350.5]])  # 350.5 is -9.5
    const = np.full((81, 121), 812.0)
    np.testing.assert_allclose(mos.regrid_relief(const, lat, lon, edge_lat, edge_lon), 812.0,
                               atol=1e-9)
    # a spline reproduces a plane away from the source's edges (ETOPO5's are the poles)
    tlat = np.array([[35.1, 44.77], [31.5, 47.9]])
    tlon = np.array([[-3.3, 0.01], [17.9, 352.5]])
    ramp = np.add.outer(lat * 100.0, lon * 10.0)
    want = tlat * 100.0 + np.where(tlon > 180, tlon - 360, tlon) * 10.0
    np.testing.assert_allclose(mos.regrid_relief(ramp, lat, lon, tlat, tlon), want, atol=0.01)
    with pytest.raises(ValueError, match="outside"):
        mos.regrid_relief(const, lat, lon, np.array([51.0]), np.array([0.0]))


def test_projected_grid_runs_south_to_north_and_west_to_east():
    pytest.importorskip("pyproj")
    lat, lon = mos.domain_lonlat(46.4, 10.0, 32, 3000.0)
    assert (np.diff(lat[:, 16]) > 0).all()  # row 0 southernmost
    assert (np.diff(lon[16, :]) > 0).all()  # column 0 westernmost
    # cells are 3 km apart along the central row: 0.027 degrees of latitude for 3 km
    assert np.diff(lat[:, 16]).mean() == pytest.approx(3000.0 / 111_180.0, rel=0.01)


# --- windward / lee -----------------------------------------------------------------------


def _hill(n=64, dx=3000.0):
    x = (np.arange(n) - n / 2) * dx
    return 1500.0 * np.exp(-(x[None, :] ** 2 + x[:, None] ** 2) / 40e3**2)


def test_windward_lee_contrast_on_a_gaussian_hill_with_wind_from_the_west():
    h = _hill()
    w = mos.upslope_wind(h, 10.0, 0.0, 3000.0)
    assert w[32, 20] > 0 > w[32, 44]  # west flank rises into a west wind
    rain = 0.5 + 0.05 * np.maximum(w, 0.0) * 100  # an upslope-condensation toy
    c = mos.windward_lee_contrast(rain, h, u=10.0, v=0.0, dx=3000.0)
    assert c > 2.0
    # the same rain under an east wind: the wet flank is now the lee
    assert mos.windward_lee_contrast(rain, h, u=-10.0, v=0.0, dx=3000.0) < 0.5
    # flat terrain has neither windward nor lee cells
    assert np.isnan(mos.windward_lee_contrast(rain, h * 0, u=10.0, v=0.0, dx=3000.0))


def test_windward_lee_sums_per_frame_winds_and_subset_stats():
    h = _hill()
    w_from_west = mos.upslope_wind(h, 10.0, 0.0, 3000.0)
    rain = np.stack([np.where(w_from_west > 0, 3.0, 1.0)] * 2)
    # frame 0 from the west, frame 1 from the east: windward mean 3 then 1
    sw, nw, sl, nl = mos.windward_lee_sums(rain, h, np.array([10.0, -10.0]),
                                          np.array([0.0, 0.0]), 3000.0)
    assert nw == nl and sw / nw == pytest.approx(2.0) and sl / nl == pytest.approx(2.0)
    st = mos.SubsetStats()
    st.add(rain[:1], h, np.array([10.0]), np.array([0.0]), 3000.0)
    res = st.result()
    assert res["windward_lee_contrast"] == pytest.approx(3.0)
    assert res["rain_upslope_correlation"] > 0.5
    assert res["wet_fraction"] == 1.0 and res["mean_rain_mm_h"] > 1.0


def test_package_wind_dir_is_the_grid_wind():
    """The physics' wind_dir argument makes its flow along our (u east, v north) wind."""
    for u, v in [(10.0, 0.0), (0.0, 10.0), (-7.0, 7.0)]:
        d = np.radians(mos.package_wind_dir(u, v))
        speed = np.hypot(u, v)
        # the package: u0 = -sin(d) U along columns, v0 = cos(d) U along rows
        assert -np.sin(d) * speed == pytest.approx(u, abs=1e-9)
        assert np.cos(d) * speed == pytest.approx(v, abs=1e-9)


@pytest.mark.skipif(not _have_physics(), reason="orographic-precipitation not installed "
                    "(pip install orographic-precipitation; a script-time tool)")
@pytest.mark.parametrize("u, v", [(10.0, 0.0), (-10.0, 0.0), (0.0, 10.0), (0.0, -10.0)])
def test_physics_rains_on_the_windward_flank(u, v):
    h = _hill(128)
    p = mos.orographic_rain(h, 3000.0, 45.0, u, v, precip_base=0.5, conv_time=1000.0,
                            fall_time=1000.0, nm=0.005, hw=2500.0, cw=0.01)
    i, j = np.unravel_index(p.argmax(), p.shape)
    # the maximum lies upwind of the summit (64, 64)
    assert np.sign(j - 64) == -np.sign(u) if u else j == 64
    assert np.sign(i - 64) == -np.sign(v) if v else i == 64
    assert mos.windward_lee_contrast(p, h, u, v, 3000.0) > 3.0


# --- noise and weather --------------------------------------------------------------------


def test_fourier_shift_moves_a_periodic_field_by_whole_cells():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((16, 24))
    moved = np.real(np.fft.ifft2(mos.fourier_shift(np.fft.fft2(f), 3.0, -2.0)))
    np.testing.assert_allclose(moved, np.roll(f, (-2, 3), axis=(0, 1)), atol=1e-12)


def test_two_slope_filter_unit_variance_and_damped_large_scales():
    pars = [2.302585, 0.968988, -2.013873, -2.785406]
    plain = mos.two_slope_filter(pars, 256, 128)
    damped = mos.two_slope_filter(pars, 256, 128, 3.0, 200.0)
    for a in (plain, damped):
        assert np.mean(a**2) == pytest.approx(1.0)
        assert a[0, 0] == 0.0
    # the longest wave (384 km) loses most, the shortest (6 km) keeps its share
    assert damped[0, 1] / plain[0, 1] < 0.5
    assert damped[0, 64] / plain[0, 64] > 1.0


def test_smooth_walk_stays_in_bounds_and_is_seeded():
    a = mos.smooth_walk(np.random.default_rng(3), 500, 10.0, 0.5, lo=3.0, hi=25.0)
    b = mos.smooth_walk(np.random.default_rng(3), 500, 10.0, 0.5, lo=3.0, hi=25.0)
    np.testing.assert_array_equal(a, b)
    assert a[0] == 10.0 and a.min() >= 3.0 and a.max() <= 25.0
    # smooth: steps are small next to the range it wanders over
    assert np.abs(np.diff(a)).mean() < 0.1 * (a.max() - a.min())


def test_weather_draws_in_the_documented_ranges():
    w = mos.weather(np.random.default_rng(1), 24, 10.0)
    assert ((w["wind_speed"] >= 3) & (w["wind_speed"] <= 25)).all()
    assert ((w["conv_time"] >= 200) & (w["conv_time"] <= 2000)).all()
    # from-direction: eastward wind is positive when it blows from the west half
    west = (w["wind_from_direction"] > 180) & (w["wind_from_direction"] < 360)
    assert ((w["eastward_wind"] > 0) == west).all()
    assert 0.003 < w["cw"] < 0.03 and 2000 < w["hw"] < 2600


# --- a quick build ------------------------------------------------------------------------


def test_missing_terrain_file_explains_how_to_get_it(tmp_path):
    with pytest.raises(SystemExit, match="apt-get download ferret-datasets"):
        mos.find_etopo(tmp_path / "nope.cdf")


def test_quick_build_writes_a_cf_file(tmp_path, manifest):
    if not _have_physics():
        pytest.skip("orographic-precipitation not installed (pip install "
                    "orographic-precipitation; a script-time tool, not a dependency)")
    if not any(p.is_file() for p in mos.etopo_candidates()):
        pytest.skip("ETOPO5 not found: run scripts/make_orographic_sequences.py "
                    "--fetch-terrain (Debian ferret-datasets)")
    xr = pytest.importorskip("xarray")
    import cf_xarray  # noqa: F401

    out = tmp_path / "oro.nc"
    assert mos.main(["--quick", "--size", "48", "--n-frames", "3", "--out", str(out)]) == 0
    with xr.open_dataset(out) as ds:
        rr = ds["rain_rate"]
        assert rr.dims == ("sequence", "time", "y", "x") and rr.shape == (3, 3, 48, 48)
        assert rr.attrs["standard_name"] == "lwe_precipitation_rate"
        assert rr.attrs["units"] == "mm h-1"
        assert rr.cf.axes == {"X": ["x"], "Y": ["y"], "T": ["time"]}
        assert float(rr.min()) >= 0 and float(rr.max()) > 0
        alt = ds.cf["surface_altitude"]
        assert alt.dims == ("sequence", "y", "x") and alt.attrs["units"] == "m"
        assert float(alt.min()) >= 0 and float(alt.max()) > 500  # mountains
        np.testing.assert_allclose(np.diff(ds["x"].values), 3000.0)
        assert list(ds["subset"].values) == list(SETS)
        first = {s: next(r["name"] for r in manifest["ranges"] if r["set"] == s) for s in SETS}
        assert list(ds["range_name"].values) == [first[s] for s in SETS]
        for s in SETS:
            assert np.isfinite(ds.attrs[f"{s}_wet_fraction"])
            assert f"{s}_windward_lee_contrast" in ds.attrs
        assert ds.attrs["terrain_file_sha256"] == manifest["terrain"]["sha256"]
    assert not out.with_name(out.name + ".tmp").exists()
