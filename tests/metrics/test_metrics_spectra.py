import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import log_spectral_distance, power_spectrum


def n_modes_in_bin(n, k0):
    """Modes of the full n x n FFT grid whose radial index rounds to k0 (independent count)."""
    k = np.fft.fftfreq(n) * n
    kr = np.hypot(k[:, None], k[None, :])
    return int((np.rint(kr) == k0).sum())


@pytest.mark.parametrize("k0, amp, along", [(4, 1.0, "x"), (7, 3.0, "y"), (1, 0.5, "x")])
def test_sinusoid_known_spectrum(make_field, k0, amp, along):
    n = 32
    i = np.arange(n)
    wave = amp * np.cos(2 * np.pi * k0 * i / n + 0.3)
    f = wave[None, :] * np.ones((n, 1)) if along == "x" else wave[:, None] * np.ones((1, n))
    field = make_field(f[None] + 5.0, dx=1.0)  # the mean must not leak into the spectrum
    ps = power_spectrum(field)
    expected = np.zeros(n // 2)
    expected[k0 - 1] = amp**2 / 2 / n_modes_in_bin(n, k0)
    np.testing.assert_allclose(ps.values, expected, atol=1e-12)
    assert ps.dims == ("wavenumber",)


def test_white_noise_is_flat(make_field, rng):
    n, t, sigma = 32, 40, 2.0
    field = make_field(sigma * rng.normal(size=(t, n, n)))
    ps = power_spectrum(field)
    np.testing.assert_allclose(ps.values, sigma**2 / n**2, rtol=0.2)
    assert ps.values.mean() == pytest.approx(sigma**2 / n**2, rel=0.05)


def test_physical_wavenumbers(make_field, rng):
    field = make_field(rng.normal(size=(2, 16, 16)), dx=2.0)  # 2 km cells
    ps = power_spectrum(field, dim=[])
    assert ps.dims == ("time", "wavenumber")
    np.testing.assert_allclose(ps.wavenumber.values, np.arange(1, 9) / 32.0)
    np.testing.assert_allclose(ps.wavelength.values, 32.0 / np.arange(1, 9))
    assert ps.wavenumber.attrs["units"] == "1/km"
    assert ps.attrs["units"] == "(mm/h)**2"


def test_ensemble_spectrum_dims_and_explicit_dims(pair):
    ens, _ = pair
    assert power_spectrum(ens, dim="time").dims == ("realization", "wavenumber")
    plain = ens.rename(y="row", x="col").drop_vars(["row", "col"])
    ps = power_spectrum(plain, y_dim="row", x_dim="col")
    assert ps.wavenumber.attrs["units"] == "1/grid_cell"
    np.testing.assert_allclose(ps.values, power_spectrum(ens).values)


def test_hann_window_keeps_peak(make_field):
    n = 32
    i = np.arange(n)
    f = np.cos(2 * np.pi * 5.5 * i / n)[None, :] * np.ones((n, 1))  # non-periodic
    ps = power_spectrum(make_field(f[None]), window="hann")
    assert int(ps.argmax("wavenumber")) in (4, 5)
    with pytest.raises(InvalidInputError):
        power_spectrum(make_field(f[None]), window="kaiser")


def test_lsd_analytic_cases(make_field, rng):
    obs = make_field(rng.random((2, 16, 16)))
    twice = (2 * obs).expand_dims(realization=[0])
    assert float(log_spectral_distance(twice, obs)) == pytest.approx(20 * np.log10(2))
    shifted = obs.roll(x=5, y=3).expand_dims(realization=[0])  # same spectrum
    assert float(log_spectral_distance(shifted, obs)) == pytest.approx(0.0, abs=1e-9)
    both = xr.concat([twice, shifted.assign_coords(realization=[1])], "realization")
    assert float(log_spectral_distance(both, obs)) == pytest.approx(10 * np.log10(2))
    radial = log_spectral_distance(twice, obs, radial=True)
    assert float(radial) == pytest.approx(20 * np.log10(2))
    lsd = log_spectral_distance(both, obs, dim=[])
    assert lsd.dims == ("time",) and lsd.attrs["units"] == "dB"


def test_lsd_by_hand(make_field, rng):
    obs = make_field(rng.random((1, 8, 8)))
    mem = make_field(rng.random((1, 8, 8)))
    po = np.abs(np.fft.fft2(obs.values[0])) ** 2
    pm = np.abs(np.fft.fft2(mem.values[0])) ** 2
    half = (slice(None), slice(0, 5))  # the rfft2 half-plane of an 8 x 8 grid
    ref = np.sqrt(np.mean((10 * np.log10(pm[half]) - 10 * np.log10(po[half])) ** 2))
    assert float(log_spectral_distance(mem.expand_dims(realization=[0]), obs)) == pytest.approx(ref)


def test_lsd_texture_smooth_member_scores_worse(make_field, rng):
    from scipy.ndimage import gaussian_filter

    obs = make_field(rng.normal(size=(2, 32, 32)))
    textured = make_field(rng.normal(size=(2, 32, 32))).expand_dims(realization=[0])
    smooth = obs.copy(data=gaussian_filter(obs.values, (0, 2, 2))).expand_dims(realization=[0])
    assert float(log_spectral_distance(smooth, obs)) > 2 * float(
        log_spectral_distance(textured, obs)
    )


def test_dask_lazy(pair, counting_scheduler):
    ens, obs = pair
    ps = power_spectrum(ens.chunk(time=1, y=8), dim=[])
    lsd = log_spectral_distance(ens.chunk(time=1, x=8), obs.chunk(time=1), dim=[])
    assert ps.chunks is not None and lsd.chunks is not None
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(ps.compute(), power_spectrum(ens, dim=[]))
    xr.testing.assert_allclose(lsd.compute(), log_spectral_distance(ens, obs, dim=[]))


def test_too_small(make_field):
    with pytest.raises(InvalidInputError, match="4 x 4"):
        power_spectrum(make_field(np.zeros((1, 3, 8))))


# --- masked fields (NaN outside a radar circle, issue 15) ---------------------------------


def brute_force_rectangle(valid, min_side=4):
    ny, nx = valid.shape
    best = 0
    for r0 in range(ny):
        for r1 in range(r0 + min_side, ny + 1):
            for c0 in range(nx):
                for c1 in range(c0 + min_side, nx + 1):
                    if valid[r0:r1, c0:c1].all():
                        best = max(best, (r1 - r0) * (c1 - c0))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_largest_rectangle_against_brute_force(seed):
    from xstochsr.metrics.spectra import _largest_rectangle

    rng = np.random.default_rng(seed)
    valid = rng.random((10, 12)) < 0.85
    box = _largest_rectangle(valid)
    want = brute_force_rectangle(valid)
    if want == 0:
        assert box is None
    else:
        r0, r1, c0, c1 = box
        assert valid[r0:r1, c0:c1].all() and min(r1 - r0, c1 - c0) >= 4
        assert (r1 - r0) * (c1 - c0) == want


def circle(n):
    yy, xx = np.mgrid[:n, :n]
    return (yy - n / 2 + 0.5) ** 2 + (xx - n / 2 + 0.5) ** 2 < (n / 2) ** 2


def test_lsd_of_a_masked_field_is_that_of_its_valid_rectangle(make_field, rng):
    ens = make_field(rng.gamma(1.0, size=(3, 2, 20, 24)))
    obs = make_field(rng.gamma(1.0, size=(2, 20, 24)))
    keep = np.zeros((20, 24), bool)
    keep[3:15, 5:21] = True  # the valid cells are exactly this rectangle
    masked = log_spectral_distance(ens.where(keep), obs.where(keep), dim=[])
    cropped = log_spectral_distance(
        ens.isel(y=slice(3, 15), x=slice(5, 21)), obs.isel(y=slice(3, 15), x=slice(5, 21)), dim=[]
    )
    xr.testing.assert_allclose(masked, cropped)
    radial = log_spectral_distance(ens.where(keep), obs.where(keep), radial=True)
    assert np.isfinite(float(radial))


def test_radar_circle_gives_finite_scores_close_to_unmasked(make_field, rng):
    from scipy.ndimage import gaussian_filter

    n = 64
    obs = make_field(gaussian_filter(rng.normal(size=(2, n, n)), (0, 2, 2)))
    ens = make_field(gaussian_filter(rng.normal(size=(4, 2, n, n)), (0, 0, 2, 2)))
    inside = circle(n)
    lsd = log_spectral_distance(ens.where(inside), obs.where(inside), radial=True)
    assert np.isfinite(float(lsd))
    full = log_spectral_distance(ens, obs, radial=True)
    assert float(lsd) == pytest.approx(float(full), abs=1.5)
    # spectra: same grid of wavenumbers, same level (density rescaled to the full grid)
    # where the field has its power (the far tail is the edges' leakage, which differs)
    ps_full = power_spectrum(obs)
    ps_mask = power_spectrum(obs.where(inside))
    assert ps_mask.sizes == ps_full.sizes
    ok = np.isfinite(ps_mask.values)
    assert ok[2:].all()  # only the lowest bins, longer than the rectangle, are missing
    ok &= ps_full.values > 1e-2 * ps_full.values.max()
    db = 10 * np.log10(ps_mask.values[ok] / ps_full.values[ok])
    assert ok.sum() >= 5 and abs(np.median(db)) < 1.5


def test_member_nan_is_masked_for_all(make_field, rng):
    ens = make_field(rng.random((2, 1, 16, 16)))
    obs = make_field(rng.random((1, 16, 16)))
    ens_nan = ens.copy()
    ens_nan[0, 0, :4, :] = np.nan  # one member's gap masks those rows for everyone
    got = log_spectral_distance(ens_nan, obs, dim=[])
    want = log_spectral_distance(ens.isel(y=slice(4, None)), obs.isel(y=slice(4, None)), dim=[])
    xr.testing.assert_allclose(got, want)


def test_no_valid_rectangle_is_nan_and_skipped(make_field, rng):
    vals = rng.random((2, 16, 16))
    vals[0, ::2, :] = np.nan  # frame 0: every other row missing: no 4 x 4 rectangle
    obs = make_field(vals)
    ens = make_field(rng.random((2, 2, 16, 16)))
    per_frame = log_spectral_distance(ens, obs, dim=[])
    assert np.isnan(per_frame.values[0]) and np.isfinite(per_frame.values[1])
    assert float(log_spectral_distance(ens, obs)) == pytest.approx(float(per_frame[1]))
    assert np.isnan(power_spectrum(obs, dim=[]).isel(time=0)).all()


def test_masked_lazy_matches(make_field, rng, counting_scheduler):
    inside = circle(16)
    ens = make_field(rng.random((2, 3, 16, 16))).where(inside)
    obs = make_field(rng.random((3, 16, 16))).where(inside)
    lsd = log_spectral_distance(ens.chunk(time=1, realization=1), obs.chunk(time=1))
    ps = power_spectrum(obs.chunk(time=1))
    assert counting_scheduler.calls == 0
    xr.testing.assert_allclose(lsd.compute(), log_spectral_distance(ens, obs))
    xr.testing.assert_allclose(ps.compute(), power_spectrum(obs))


def test_masked_white_noise_keeps_the_full_grid_level(make_field, rng):
    n = 48
    obs = make_field(rng.normal(0.0, 2.0, size=(20, n, n))).where(circle(n))
    ps = power_spectrum(obs)
    level = 4.0 / (n * n)  # sigma**2 / (Ny Nx), as for the whole field
    ok = np.isfinite(ps.values)
    np.testing.assert_allclose(ps.values[ok], level, rtol=0.25)
    assert abs(np.mean(ps.values[ok]) / level - 1) < 0.05
