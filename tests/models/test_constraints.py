"""Constraint layers: block means exact, rain non-negative, dry stays dry, old cards load."""

import json

import numpy as np
import pytest
import torch

import xstochsr
from xstochsr.errors import ModelCardError
from xstochsr.models import transforms
from xstochsr.models.base import ModelCard
from xstochsr.models.constraints import additive, block_mean, multiplicative
from xstochsr.models.gan import GANModel
from xstochsr.models.generator import Generator, GeneratorConfig

pytestmark = pytest.mark.usefixtures("one_thread")

RAIN = {"kind": "log_rain", "threshold": 0.1, "fill": 0.025, "max": 100.0}


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_multiplicative_block_means_exact_nonnegative_dry(factor, rng):
    z = torch.from_numpy(rng.normal(scale=5.0, size=(3, 1, 4 * factor, 6 * factor)))
    coarse = torch.from_numpy(rng.gamma(0.5, 4.0, size=(3, 1, 4, 6)))
    coarse[0, 0, 1, 2] = 0.0
    coarse[2, 0, :, 0] = 0.0
    y = multiplicative(z.float(), coarse.float(), factor)
    torch.testing.assert_close(block_mean(y.double(), factor), coarse, rtol=2e-6, atol=1e-6)
    assert (y >= 0).all()
    dry = (coarse == 0).repeat_interleave(factor, -2).repeat_interleave(factor, -1)
    assert dry.any() and (y[dry] == 0).all()          # exactly dry, not 1e-9


def test_additive_block_means_exact_signed(rng):
    u = torch.from_numpy(rng.normal(scale=3.0, size=(2, 1, 16, 8))).float()
    coarse = torch.from_numpy(rng.normal(scale=10.0, size=(2, 1, 4, 2))).float()
    y = additive(u, coarse, 4)
    torch.testing.assert_close(block_mean(y.double(), 4), coarse.double(), rtol=1e-6,
                               atol=1e-5)
    # the structure inside each block is u's
    d = (y - u).reshape(2, 1, 4, 4, 2, 4)
    torch.testing.assert_close(d, d[:, :, :, :1, :, :1].expand_as(d))


def _gen(constraint, seed=0, act="none"):
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(factor=4, width=16, noise_channels=4, encoder_blocks=1,
                                     init_blocks=1, constraint=constraint,
                                     output_activation=act))


def test_generator_output_conserves_in_physical_units_with_finite_gradients(rng):
    g = _gen("multiplicative")
    phys = torch.from_numpy(rng.gamma(0.4, 3.0, size=(2, 3, 1, 5, 5))).float()
    phys[:, :, :, 0] = 0.0
    x = transforms.forward(phys, RAIN)
    y, _ = g(x, torch.randn(2, 3, 4, 5, 5), None, torch.randn(2, 4, 5, 5), coarse=phys)
    assert y.shape == (2, 3, 1, 20, 20) and (y >= 0).all()
    means = block_mean(y.reshape(6, 1, 20, 20).double(), 4).reshape(phys.shape)
    torch.testing.assert_close(means, phys.double(), rtol=2e-6, atol=1e-6)
    assert (y[..., :4, :] == 0).all()
    (y * torch.randn_like(y)).sum().backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(float(gr.abs().sum()) > 0 for gr in grads)
    with pytest.raises(ValueError, match="coarse="):
        g(x, torch.randn(2, 3, 4, 5, 5), None, torch.randn(2, 4, 5, 5))


def test_additive_generator_with_standardized_transform(rng):
    spec = {"kind": "standardize", "mean": 5.0, "std": 2.0}
    g = _gen("additive")
    phys = torch.from_numpy(rng.normal(5.0, 2.0, size=(1, 2, 1, 3, 3))).float()
    y, _ = g(transforms.forward(phys, spec), torch.randn(1, 2, 4, 3, 3), None,
             torch.randn(1, 4, 3, 3), coarse=phys, transform=spec)
    means = block_mean(y.reshape(2, 1, 12, 12).double(), 4).reshape(phys.shape)
    torch.testing.assert_close(means, phys.double(), rtol=1e-6, atol=1e-5)
    assert (y < 0).any() or (y > 0).any()


def test_constrained_model_downscale_needs_no_rescaling(rng):
    card = ModelCard(name="c-test", units="mm h-1", standard_name="lwe_precipitation_rate",
                     variable="precip", transform=dict(RAIN))
    m = GANModel(_gen("multiplicative"), card)
    x = rng.gamma(0.5, 2.0, size=(1, 3, 4, 4)).astype(np.float32)
    x[0, :, 0, 0] = 0.0
    y, _ = m.run(x, factor=4, members=[0, 1], seed=0)
    got = y.reshape(2, 1, 3, 4, 4, 4, 4).mean(axis=(4, 6))
    np.testing.assert_allclose(got, np.broadcast_to(x, got.shape), rtol=3e-6, atol=1e-6)
    assert (y >= 0).all() and (y[..., :4, :4] == 0).all()
    from xstochsr.api import _conserve_mode

    assert _conserve_mode(m, None) is None            # no post-hoc rescaling by default
    assert _conserve_mode(m, True) == "multiplicative"


def test_constraint_recorded_in_card_and_round_trips(tmp_path):
    card = ModelCard(name="c-test", units="mm h-1", variable="precip", transform=dict(RAIN))
    m = GANModel(_gen("multiplicative"), card)
    m.save(tmp_path / "c")
    assert json.loads((tmp_path / "c.json").read_text())["architecture"]["constraint"] \
        == "multiplicative"
    back = xstochsr.load_model(tmp_path / "c.safetensors")
    assert back.generator.config.constraint == "multiplicative"
    x = np.full((1, 2, 3, 3), 2.0, np.float32)
    np.testing.assert_array_equal(back.run(x, factor=4, members=[0], seed=1)[0],
                                  m.run(x, factor=4, members=[0], seed=1)[0])
    with pytest.raises(ModelCardError, match="constraint"):
        GeneratorConfig(factor=4, constraint="softmax")


def test_old_card_without_the_key_loads_unchanged():
    from fields import LEGACY_ARCH

    from xstochsr.api import _conserve_mode

    cfg = GeneratorConfig.from_dict(dict(LEGACY_ARCH))
    assert cfg.constraint is None and cfg.to_dict() == LEGACY_ARCH  # written back identically
    card = ModelCard(name="old-wind", units="m s-1", standard_name="eastward_wind",
                     variable="u", architecture=dict(LEGACY_ARCH),
                     transform={"kind": "standard", "mean": 0.0, "std": 1.0})
    m = GANModel(Generator(cfg), card)
    assert m.generator.config.constraint is None
    assert _conserve_mode(m, None) == "additive"            # post-hoc as before


def test_shipped_rain_model_conserves_in_the_network():
    from xstochsr.api import _conserve_mode

    m = xstochsr.load_model("rain-x8")
    assert m.generator.config.constraint == "multiplicative"
    assert _conserve_mode(m, None) is None                  # no post-hoc rescaling
