import numpy as np
import pytest
import torch

from xstochsr.errors import ModelCardError
from xstochsr.models import transforms as T


@pytest.mark.parametrize("kind", ["log_rain", "log_threshold", "standardize", "minmax",
                                  "identity"])
def test_round_trip_numpy_and_torch(kind, rng):
    data = rng.gamma(1.0, 5.0, 1000) + (2.0 if kind == "log_threshold" else 0.2)
    spec = T.fit(data, kind)
    y = T.forward(data, spec)
    np.testing.assert_allclose(T.inverse(y, spec), np.clip(data, None, 100.0)
                               if kind == "log_rain" else data, rtol=1e-6)
    yt = T.forward(torch.from_numpy(data), spec)
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-6)


def test_log_rain_as_paper():
    spec = T.fit(None, "log_rain")
    y = T.forward(np.array([0.0, 0.09, 0.1, 100.0, 500.0]), spec)
    np.testing.assert_allclose(y, [0, 0, np.log10(4) / np.log10(4000), 1, 1])
    assert T.inverse(np.array([0.0]), spec)[0] == 0.0  # dry maps back to exactly zero


def test_unknown_kind():
    with pytest.raises(ModelCardError, match="known kinds"):
        T.forward(np.zeros(2), {"kind": "sqrt"})
