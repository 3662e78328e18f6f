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
