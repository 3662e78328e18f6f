"""Dry is exactly dry: the rain transform maps every rate below the threshold to 0.0."""

import numpy as np
import pytest
import torch

from xstochsr.models import transforms as T

SPEC = T.fit(np.empty(0), "log_rain")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_rain_maps_to_exact_zero_numpy(dtype):
    # long arrays take the vectorised (SIMD) paths where float32 log10 rounds differently
    x = np.zeros(4099, dtype)
    x[::7] = 0.05           # below the 0.1 mm/h threshold: dry too
    y = T.forward(x, SPEC)
    assert y.dtype == dtype and np.all(y == 0.0) and not np.signbit(y).any()
    assert np.all(T.inverse(y, SPEC) == 0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_zero_rain_maps_to_exact_zero_torch(dtype):
    x = torch.zeros(3, 4099, dtype=dtype)
    y = T.forward(x, SPEC)
    assert y.dtype == dtype and bool((y == 0).all())


def test_wet_values_and_nan_unchanged():
    x = np.array([0.1, 1.0, 100.0, 500.0, np.nan], np.float32)
    y = T.forward(x, SPEC)
    lo, hi = np.log10(0.025), np.log10(100.0)
    np.testing.assert_allclose(y[:4], (np.log10([0.1, 1.0, 100.0, 100.0]) - lo) / (hi - lo),
                               rtol=1e-6)
    assert np.isnan(y[4])
    xt = torch.tensor([0.0, 0.5, 3.0], requires_grad=True)
    T.forward(xt, SPEC).sum().backward()
    assert torch.isfinite(xt.grad).all() and xt.grad[0] == 0 and xt.grad[1] > 0


def test_dry_does_not_depend_on_how_log10_rounds(monkeypatch):
    # emulate a CPU whose float32 log10 rounds one ulp away (AVX-512 gave -3e-8 at 0 mm/h)
    real = np.log10
    monkeypatch.setattr(np, "log10", lambda a, *k, **kw: np.nextafter(real(a, *k, **kw),
                                                                        np.float32(-1)))
    y = T.forward(np.zeros(64, np.float32), SPEC)
    assert np.all(y == 0.0)
