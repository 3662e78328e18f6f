"""Shared fixtures: small CF fields of every grid kind and small models built here.

No test depends on pretrained weights or the network: models are built in test code.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from fields import tiny_model
from hypothesis import HealthCheck, settings

import xstochsr  # noqa: F401  (registers .sr)

# Property tests: the same examples on every CI run (a red CI must be reproducible and not
# depend on the draw); `HYPOTHESIS_PROFILE=slow` explores new, random examples, many more.
settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "slow", max_examples=300, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _float32_everywhere(request, monkeypatch):
    """Every test sees hardware without native bfloat16, so ``precision="auto"`` is float32
    and no result depends on whether the CPU has bf16 units (CI machines differ). Tests of
    the detection itself, or of the CUDA path, opt out with ``@pytest.mark.hardware_bf16``;
    ``precision="bfloat16"`` is tested explicitly (tests/test_precision.py)."""
    if request.node.get_closest_marker("hardware_bf16") is None:
        from xstochsr import precision

        monkeypatch.setattr(precision, "native_bf16",
                            lambda device="cpu": (False, "tests run in float32 (conftest)"))


@pytest.fixture
def one_thread():
    """Run a test on one torch thread (small convolutions are faster and deterministic)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng():
    """A seeded numpy Generator."""
    return np.random.default_rng(12345)


@pytest.fixture
def model():
    return tiny_model()
