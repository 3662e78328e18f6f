"""Baseline downscalers: interface, determinism, counter-based noise, mean preservation,
accuracy of the interpolators, RainFARM against pysteps."""

from __future__ import annotations

import numpy as np
import pytest

from xstochsr.errors import (
    InvalidInputError,
    UnknownModelError,
    UnsupportedFactorError,
    XStochSRError,
)
from xstochsr.grid import bounds_1d, refine_1d
from xstochsr.models.base import Downscaler, member_rng
from xstochsr.models.baselines import BASELINES, get_baseline
from xstochsr.models.interpolation import INTERPOLATION_METHODS, InterpolationDownscaler, upsample
from xstochsr.models.rainfarm import (
    DEFAULT_ALPHA,
    RainFARM,
    estimate_alpha,
    gaussian_field,
    rainfarm_frame,
)

ALL = sorted(BASELINES)
INTERP = list(INTERPOLATION_METHODS)
MEAN_PRESERVING = ["nearest", "conservative", "rainfarm"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def rain(rng, shape=(2, 3, 6, 5), dry_fraction=0.3):
    """Positive, skewed field with some exactly dry cells, float32 (B, T, H, W)."""
    x = rng.gamma(0.6, 3.0, size=shape)
    x[rng.random(shape) < dry_fraction] = 0.0
    return x.astype(np.float32)


def block_mean(y, f):
    """(..., H*f, W*f) -> (..., H, W) block means in float64."""
    *lead, hf, wf = y.shape
    return y.astype(np.float64).reshape(*lead, hf // f, f, wf // f, f).mean(axis=(-3, -1))


# --- registry -------------------------------------------------------------------------


def test_registry_names_and_instances():
    assert set(BASELINES) == {"nearest", "bilinear", "bicubic", "lanczos", "conservative",
                              "rainfarm"}
    for name in ALL:
        m = get_baseline(name)
        assert isinstance(m, Downscaler)
        assert m.name == name
        assert m.stateful is False
        assert m.card.factor is None
        assert isinstance(m.preserves_means, bool)
        assert m.preserves_means == (name in MEAN_PRESERVING)
        # a fresh instance each call
        assert get_baseline(name) is not m
    assert get_baseline(" Lanczos ").name == "lanczos"


def test_cards():
    for name in INTERP:
        m = get_baseline(name)
        assert m.card.kind == "interpolation"
        assert m.card.units is None and m.stochastic is False
    r = get_baseline("rainfarm")
    assert r.card.kind == "rainfarm" and r.stochastic is True
    assert r.card.units == "mm h-1"
    assert r.card.standard_name == "lwe_precipitation_rate"
    assert "Rebora" in r.card.citation
    # the cards serialise
    for name in ALL:
        assert get_baseline(name).card.to_json()


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownModelError) as err:
        get_baseline("bilinaer")
    msg = str(err.value)
    assert "bilinaer" in msg
    for name in ALL:
        assert name in msg
    assert isinstance(err.value, (KeyError, XStochSRError))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("factor", [1, 0, 2.5, "x"])
def test_bad_factor(name, factor):
    m = get_baseline(name)
    assert not m.supports_factor(factor)
    with pytest.raises(UnsupportedFactorError, match="integer factor >= 2"):
        m.run(np.ones((1, 1, 4, 4), np.float32), factor=factor, members=[0], seed=0)


@pytest.mark.parametrize("name", ALL)
def test_any_integer_factor(name):
    m = get_baseline(name)
    assert all(m.supports_factor(f) for f in (2, 3, 5, 8, 16))


@pytest.mark.parametrize("name", ALL)
def test_bad_input_shape(name):
    with pytest.raises(InvalidInputError, match=r"\(B, T, H, W\)"):
        get_baseline(name).run(np.ones((4, 4), np.float32), factor=2, members=[0], seed=0)


def test_rainfarm_rejects_negative_rain():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = -0.5
    with pytest.raises(InvalidInputError, match="non-negative"):
        RainFARM().run(x, factor=2, members=[0], seed=0)


# --- interface ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("factor", [2, 3])
def test_shapes_and_dtype(name, factor, rng):
    x = rain(rng)
    y, state = get_baseline(name).run(x, factor=factor, members=[0, 1, 2], seed=7)
    assert state is None
    assert y.shape == (3, 2, 3, 6 * factor, 5 * factor)
    assert y.dtype == np.float32
    assert np.isfinite(y).all()


@pytest.mark.parametrize("name", INTERP)
def test_interpolation_members_identical_and_seed_ignored(name, rng):
    x = rain(rng)
    m = get_baseline(name)
    y, _ = m.run(x, factor=2, members=[0, 1, 5], seed=1)
    assert np.array_equal(y[0], y[1]) and np.array_equal(y[0], y[2])
    y2, _ = m.run(x, factor=2, members=[3], seed=99)
    assert np.array_equal(y2[0], y[0])


@pytest.mark.parametrize("name", ALL)
def test_same_seed_bit_identical(name, rng):
    x = rain(rng)
    m = get_baseline(name)
    y1, _ = m.run(x, factor=3, members=[0, 1], seed=2024)
    y2, _ = get_baseline(name).run(x.copy(), factor=3, members=[0, 1], seed=2024)
    assert np.array_equal(y1, y2)


def test_rainfarm_members_and_seeds_differ(rng):
    x = rain(rng, dry_fraction=0.0)
    m = RainFARM()
    y, _ = m.run(x, factor=2, members=[0, 1], seed=0)
    assert not np.allclose(y[0], y[1])
    y_other, _ = m.run(x, factor=2, members=[0], seed=1)
    assert not np.allclose(y[0], y_other[0])
    # frames of one member differ too (noise per time step), even for equal inputs
    x_const = np.repeat(x[:, :1], 3, axis=1)
    yc, _ = m.run(x_const, factor=2, members=[0], seed=0)
    assert not np.allclose(yc[0, 0, 0], yc[0, 0, 1])


@pytest.mark.parametrize("name", ALL)
def test_member_alone_equals_member_in_batch(name, rng):
    x = rain(rng)
    m = get_baseline(name)
    y_all, _ = m.run(x, factor=2, members=[0, 1, 2, 3], seed=5)
    y_k, _ = m.run(x, factor=2, members=[2], seed=5)
    assert np.array_equal(y_k[0], y_all[2])
    # members in another order: same fields, reordered
    y_rev, _ = m.run(x, factor=2, members=[3, 0], seed=5)
    assert np.array_equal(y_rev[0], y_all[3]) and np.array_equal(y_rev[1], y_all[0])


@pytest.mark.parametrize("name", ALL)
def test_time_chunked_equals_unchunked(name, rng):
    x = rain(rng, shape=(2, 5, 6, 5))
    m = get_baseline(name)
    y_full, _ = m.run(x, factor=2, members=[0, 1], seed=3)
    parts, state = [], None
    for t0 in (0, 2, 3):
        t1 = {0: 2, 2: 3, 3: 5}[t0]
        y, state = m.run(x[:, t0:t1], factor=2, members=[0, 1], seed=3, t0=t0, state=state)
        parts.append(y)
    assert np.array_equal(np.concatenate(parts, axis=2), y_full)


@pytest.mark.parametrize("name", ALL)
def test_batch_split_equals_whole(name, rng):
    x = rain(rng, shape=(3, 2, 6, 5))
    m = get_baseline(name)
    y_full, _ = m.run(x, factor=2, members=[0, 1], seed=3)
    y_last, _ = m.run(x[2:], factor=2, members=[0, 1], seed=3, batch_offset=2)
    assert np.array_equal(y_last[:, 0], y_full[:, 2])


def test_rainfarm_sequences_get_independent_noise():
    x = np.ones((2, 1, 4, 4), np.float32)  # two identical sequences
    y, _ = RainFARM(alpha=2.0).run(x, factor=2, members=[0], seed=0)
    assert not np.allclose(y[0, 0], y[0, 1])


# --- mean preservation, dry cells -----------------------------------------------------


@pytest.mark.parametrize("name", MEAN_PRESERVING)
@pytest.mark.parametrize("factor", [2, 4, 5])
def test_coarse_means_preserved(name, factor, rng):
    x = rain(rng, shape=(1, 2, 7, 6))
    y, _ = get_baseline(name).run(x, factor=factor, members=[0, 1], seed=11)
    means = block_mean(y, factor)
    target = np.broadcast_to(x.astype(np.float64), means.shape)
    np.testing.assert_allclose(means, target, rtol=1e-5, atol=0)


@pytest.mark.parametrize("pad", [0.0, 0.25, 1.0])
def test_rainfarm_means_preserved_with_any_padding(pad, rng):
    x = rain(rng, shape=(1, 2, 9, 7))
    y, _ = RainFARM(pad=pad).run(x, factor=4, members=[0, 1], seed=0)
    np.testing.assert_allclose(block_mean(y, 4), np.broadcast_to(x, (2, 1, 2, 9, 7)),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize("name", ["bilinear", "bicubic", "lanczos"])
def test_smooth_interpolators_do_not_preserve_means(name, rng):
    x = rain(rng, shape=(1, 1, 6, 6))
    y, _ = get_baseline(name).run(x, factor=2, members=[0], seed=0)
    assert not np.allclose(block_mean(y[0], 2), x, rtol=1e-5)


@pytest.mark.filterwarnings("error")
def test_rainfarm_zero_rain_stays_zero(rng):
    x = rain(rng, shape=(1, 3, 6, 6), dry_fraction=0.5)
    x[0, 1] = 0.0  # a fully dry frame
    x[0, 2] = 0.0
    x[0, 2, 3, 3] = 2.0  # a single wet cell
    y, _ = RainFARM().run(x, factor=3, members=[0, 1], seed=0)
    assert np.isfinite(y).all() and (y >= 0).all()
    dry = np.repeat(np.repeat(x == 0, 3, axis=-2), 3, axis=-1)
    assert (y[:, dry] == 0).all()
    assert (y[:, ~dry] > 0).all()
    assert (y[:, 0, 1] == 0).all()
    np.testing.assert_allclose(y[:, 0, 2, 9:12, 9:12].mean(axis=(-2, -1)), 2.0, rtol=1e-5)


@pytest.mark.filterwarnings("error")
def test_rainfarm_constant_field_uses_default_alpha():
    x = np.full((1, 1, 4, 4), 3.0, np.float32)  # no spectral slope to fit
    y, _ = RainFARM().run(x, factor=2, members=[0], seed=0)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(block_mean(y[0], 2), x, rtol=1e-5)
    expected, used = rainfarm_frame(x[0, 0], 2, member_rng(0, 0, 0, 0), alpha=DEFAULT_ALPHA)
    assert used == DEFAULT_ALPHA
    np.testing.assert_array_equal(y[0, 0, 0], expected.astype(np.float32))


@pytest.mark.parametrize("name", INTERP)
def test_interpolators_keep_constants_and_never_nan(name):
    x = np.full((1, 1, 3, 4), 2.5, np.float32)
    y, _ = get_baseline(name).run(x, factor=4, members=[0], seed=0)
    np.testing.assert_allclose(y, 2.5, rtol=1e-6)


# --- interpolation accuracy -----------------------------------------------------------


def _fine_centres(n, f):
    """Fine centres in coarse index units, from xstochsr.grid (cell-centred nesting)."""
    centres, _ = refine_1d(bounds_1d(np.arange(n, dtype=float)), f)
    return centres


@pytest.mark.parametrize("name", ["bilinear", "bicubic"])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_linear_ramp_exact_in_interior(name, factor):
    h, w = 7, 9
    yy, xx = np.arange(h, dtype=float), np.arange(w, dtype=float)
    ramp = (0.7 * yy[:, None] - 1.3 * xx[None, :] + 4.0).astype(np.float32)
    y, _ = get_baseline(name).run(ramp[None, None], factor=factor, members=[0], seed=0)
    fy, fx = _fine_centres(h, factor), _fine_centres(w, factor)
    truth = 0.7 * fy[:, None] - 1.3 * fx[None, :] + 4.0
    margin = 1 if name == "bilinear" else 2  # kernel support, in coarse cells
    iy = (fy >= margin - 1) & (fy <= h - margin)
    ix = (fx >= margin - 1) & (fx <= w - margin)
    np.testing.assert_allclose(y[0, 0, 0][np.ix_(iy, ix)], truth[np.ix_(iy, ix)], atol=1e-5)
    # and the edges are not exact with reflection (so the test above is not vacuous)
    assert not np.allclose(y[0, 0, 0], truth, atol=1e-3)


def test_smooth_wave_lanczos_bicubic_close_to_truth():
    h = w = 24
    f = 4
    k = 2 * np.pi / 9.0  # wavelength 9 coarse cells

    def wave(py, px):
        return np.sin(k * py)[:, None] * np.cos(0.8 * k * px)[None, :]

    coarse = wave(np.arange(h, dtype=float), np.arange(w, dtype=float)).astype(np.float32)
    fy, fx = _fine_centres(h, f), _fine_centres(w, f)
    truth = wave(fy, fx)
    inner = (slice(4 * f, -4 * f), slice(4 * f, -4 * f))
    err = {}
    for name in ("bilinear", "bicubic", "lanczos"):
        y, _ = get_baseline(name).run(coarse[None, None], factor=f, members=[0], seed=0)
        err[name] = np.sqrt(np.mean((y[0, 0, 0][inner] - truth[inner]) ** 2))
    assert err["lanczos"] < 0.01
    assert err["bicubic"] < 0.02
    assert err["lanczos"] < err["bilinear"] / 3
    assert err["bicubic"] < err["bilinear"] / 2


def test_bilinear_and_bicubic_match_torch(rng):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    x = rng.random((2, 3, 7, 9)).astype(np.float32)
    t = torch.from_numpy(x)
    for f in (2, 3):
        ref = F.interpolate(t, scale_factor=f, mode="bilinear", align_corners=False).numpy()
        np.testing.assert_allclose(upsample(x, f, "bilinear"), ref, atol=1e-6)
        # PyTorch's bicubic is Keys with a=-0.75 and clamped (edge-repeating) indices
        ref = F.interpolate(t, size=(7 * f, 9 * f), mode="bicubic", align_corners=False).numpy()
        np.testing.assert_allclose(upsample(x, f, "bicubic", edge="nearest", cubic_a=-0.75),
                                   ref, atol=1e-5)
        ref = F.interpolate(t, size=(7 * f, 9 * f), mode="nearest").numpy()
        np.testing.assert_array_equal(upsample(x, f, "nearest"), ref)


def test_nearest_is_block_repetition(rng):
    x = rain(rng)
    yn, _ = get_baseline("nearest").run(x, factor=3, members=[0], seed=0)
    yc, _ = get_baseline("conservative").run(x, factor=3, members=[0], seed=0)
    assert np.array_equal(yn, yc)
    assert np.array_equal(yc[0], np.repeat(np.repeat(x, 3, axis=-2), 3, axis=-1))


def test_reflect_and_nearest_edges_differ_only_near_edges(rng):
    x = rng.random((1, 1, 10, 10)).astype(np.float32)
    a = InterpolationDownscaler("lanczos", edge="reflect").run(x, factor=2, members=[0], seed=0)[0]
    b = InterpolationDownscaler("lanczos", edge="nearest").run(x, factor=2, members=[0], seed=0)[0]
    inner = (Ellipsis, slice(6, -6), slice(6, -6))
    assert np.array_equal(a[inner], b[inner])
    assert not np.array_equal(a, b)


# --- RainFARM: spectral slope, boundary handling, pysteps -----------------------------


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_estimate_alpha_recovers_known_slope(alpha):
    rng = np.random.default_rng(0)
    fits = [estimate_alpha(gaussian_field((64, 64), alpha, rng)) for _ in range(6)]
    assert abs(np.mean(fits) - alpha) < 0.2


def test_run_uses_the_fitted_alpha(rng):
    """run() fits alpha on each frame (mirror-extended) and draws from member_rng."""
    x = rain(rng, shape=(2, 2, 8, 8), dry_fraction=0.2)
    y, _ = RainFARM().run(x, factor=2, members=[0, 3], seed=9, t0=10, batch_offset=4)
    for i, m in enumerate([0, 3]):
        for b in range(2):
            for t in range(2):
                frame = x[b, t].astype(np.float64)
                a = estimate_alpha(frame)
                exp, used = rainfarm_frame(frame, 2, member_rng(9, m, 4 + b, 10 + t), alpha=a)
                assert used == a
                np.testing.assert_array_equal(y[i, b, t], exp.astype(np.float32))


def test_fixed_alpha_is_used(rng):
    """Fine noise generated with a fixed alpha is smoother for a larger alpha."""
    x = np.ones((32, 32))
    slopes = {a: [] for a in (1.0, 3.0)}
    for a in slopes:
        for _ in range(4):
            y, used = rainfarm_frame(x, 4, rng, alpha=a, pad=0.0)
            assert used == a
            slopes[a].append(estimate_alpha(np.log(y), mirror=False))
    # cell-mean rescaling flattens the largest scales, so only compare the two
    assert np.mean(slopes[3.0]) > np.mean(slopes[1.0]) + 0.5


def test_padding_removes_wraparound_correlation():
    """Without padding the FFT noise wraps around: the first and last fine columns are
    neighbours. With the default padding that correlation (almost) disappears."""
    x = np.ones((1, 1, 8, 8), np.float32)
    corr = {}
    for pad in (0.0, 0.25):
        y, _ = RainFARM(alpha=3.0, pad=pad).run(x, factor=4, members=range(120), seed=1)
        lg = np.log(y[:, 0, 0])
        corr[pad] = np.corrcoef(lg[:, :, 0].ravel(), lg[:, :, -1].ravel())[0, 1]
        near = np.corrcoef(lg[:, :, 0].ravel(), lg[:, :, 1].ravel())[0, 1]
        assert near > 0.4
    assert corr[0.0] > 0.2
    assert abs(corr[0.25]) < 0.15


@pytest.fixture(scope="module")
def pysteps_rainfarm():
    pytest.importorskip("pysteps")
    from pysteps.downscaling import rainfarm

    return rainfarm


def _pysteps_downscale(prf, x, f, seed, **kw):
    """pysteps RainFARM with the global numpy RNG seeded, then restored."""
    state = np.random.get_state()  # noqa: NPY002  (pysteps draws from the global RNG)
    try:
        np.random.seed(seed)  # noqa: NPY002
        return prf.downscale(x, f, **kw)
    finally:
        np.random.set_state(state)  # noqa: NPY002


def test_cross_check_with_pysteps(pysteps_rainfarm):
    prf = pysteps_rainfarm
    rng = np.random.default_rng(3)
    g = gaussian_field((32, 32), 2.5, rng)
    x = np.exp(g / g.std())  # wet everywhere, power-law spectrum
    f = 4
    ours, theirs = [], []
    for i in range(8):
        yp, alpha_p = _pysteps_downscale(prf, x, f, seed=i, return_alpha=True)
        ym, alpha_m = rainfarm_frame(x, f, np.random.default_rng(i))
        # both keep every coarse cell's mean exactly
        np.testing.assert_allclose(block_mean(yp, f), x, rtol=1e-9)
        np.testing.assert_allclose(block_mean(ym, f), x, rtol=1e-9)
        xf = np.kron(x, np.ones((f, f)))
        theirs.append((alpha_p, estimate_alpha(yp, mirror=False), np.log(yp / xf).std()))
        ours.append((alpha_m, estimate_alpha(ym, mirror=False), np.log(ym / xf).std()))
    (a_p, s_p, sd_p), (a_m, s_m, sd_m) = np.mean(theirs, 0), np.mean(ours, 0)
    assert abs(a_m - a_p) < 0.3  # fitted slope of the coarse field
    assert abs(s_m - s_p) < 0.25  # slope of the downscaled fields
    assert abs(sd_m / sd_p - 1) < 0.15  # spread of the sub-grid multiplicative noise


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # inside pysteps
def test_alpha_matches_pysteps_on_periodic_fields(pysteps_rainfarm):
    """On a periodic field (no edge effect) both estimators agree."""
    prf = pysteps_rainfarm
    rng = np.random.default_rng(8)
    for alpha in (2.0, 3.0):
        d = []
        for _ in range(4):
            fld = gaussian_field((48, 48), alpha, rng)
            _, theirs = _pysteps_downscale(prf, fld, 2, seed=0, return_alpha=True)
            d.append(estimate_alpha(fld) - theirs)
        assert abs(np.mean(d)) < 0.2


# --- through the xarray API (da.sr.downscale) -----------------------------------------


@pytest.fixture
def coarse_da(rng):
    xr = pytest.importorskip("xarray")
    import pandas as pd

    ny, nx, nt = 5, 6, 4
    x = np.arange(nx) * 2000.0 + 1000.0
    y = np.arange(ny) * 2000.0 + 500.0
    data = rain(rng, shape=(1, nt, ny, nx))[0]
    return xr.DataArray(
        data,
        dims=("time", "south_north", "west_east"),
        coords={
            "time": pd.date_range("2021-06-01", periods=nt, freq="5min"),
            "south_north": ("south_north", y, {"axis": "Y", "units": "m",
                                               "standard_name": "projection_y_coordinate"}),
            "west_east": ("west_east", x, {"axis": "X", "units": "m",
                                           "standard_name": "projection_x_coordinate"}),
        },
        name="precip",
        attrs={"units": "mm h-1", "standard_name": "lwe_precipitation_rate", "source": "test"},
    )


def test_api_bilinear_dims_coords_units(coarse_da):
    import xstochsr  # registers the accessor

    ens = coarse_da.sr.downscale(model="bilinear", factor=4, members=3, seed=0)
    assert ens.dims == ("realization", "time", "south_north", "west_east")
    assert ens.shape == (3, 4, 20, 24)
    assert ens.name == "precip"
    assert ens.attrs["units"] == "mm h-1" and ens.attrs["source"] == "test"
    np.testing.assert_array_equal(ens["time"].values, coarse_da["time"].values)
    for dim in ("south_north", "west_east"):
        fine, _ = refine_1d(bounds_1d(coarse_da[dim].values), 4)
        np.testing.assert_allclose(ens[dim].values, fine)
    np.testing.assert_array_equal(ens["realization"].values, [0, 1, 2])
    # deterministic: all members equal, and equal to the array-level method
    ref, _ = get_baseline("bilinear").run(coarse_da.values[None], factor=4, members=[0], seed=0)
    for m in range(3):
        np.testing.assert_allclose(ens.isel(realization=m).values, ref[0, 0], rtol=1e-6)
    # accessor and function agree
    same = xstochsr.downscale(coarse_da, model="bilinear", factor=4, members=3, seed=0)
    np.testing.assert_array_equal(ens.values, same.values)


def test_api_interpolation_passes_any_units_through(coarse_da):
    import xstochsr  # noqa: F401

    temp = (coarse_da + 280.0).assign_attrs(units="K", standard_name="air_temperature")
    ens = temp.sr.downscale(model="lanczos", factor=2, members=1, seed=0)
    assert ens.attrs["units"] == "K"
    assert float(ens.min()) > 270.0


def test_api_rainfarm_seeds_members_chunks_and_means(coarse_da):
    import xstochsr  # noqa: F401

    kw = dict(model="rainfarm", factor=4, seed=12)
    ens = coarse_da.sr.downscale(members=3, **kw)
    assert ens.dims == ("realization", "time", "south_north", "west_east")
    assert ens.attrs["units"] == "mm h-1"
    again = coarse_da.sr.downscale(members=3, **kw)
    np.testing.assert_array_equal(ens.values, again.values)
    alone = coarse_da.sr.downscale(members=[2], **kw)
    np.testing.assert_array_equal(alone.values[0], ens.values[2])
    chunked = coarse_da.sr.downscale(members=3, time_chunk=1, **kw)
    np.testing.assert_array_equal(chunked.values, ens.values)
    means = ens.coarsen(south_north=4, west_east=4).mean()
    np.testing.assert_allclose(means.values.astype(np.float64),
                               np.broadcast_to(coarse_da.values, means.shape), rtol=1e-5)
    assert not np.allclose(ens.values[0], ens.values[1])


def test_api_rainfarm_converts_units(coarse_da):
    import xstochsr  # noqa: F401

    per_s = (coarse_da / 3.6e6).assign_attrs(units="m s-1",
                                             standard_name="lwe_precipitation_rate")
    ens = per_s.sr.downscale(model="rainfarm", factor=2, members=2, seed=1)
    assert ens.attrs["units"] == "m s-1"
    ref = coarse_da.sr.downscale(model="rainfarm", factor=2, members=2, seed=1)
    np.testing.assert_allclose(ens.values * 3.6e6, ref.values, rtol=1e-4, atol=1e-6)
