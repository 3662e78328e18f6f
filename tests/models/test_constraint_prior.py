"""The multiplicative constraint layer's bilinear prior: exact means, smooth start, no edges."""

import numpy as np
import pytest
import torch

from xstochsr.errors import InvalidInputError, ModelCardError
from xstochsr.models.constraints import block_mean, log_prior, multiplicative
from xstochsr.models.generator import Generator, GeneratorConfig
from xstochsr.training.config import from_preset


def _edge_ratio(y: np.ndarray, f: int) -> float:
    """Mean |step| across block edges over mean |step| inside blocks (both axes)."""
    dx = np.abs(np.diff(y, axis=-1))
    edge = (np.arange(dx.shape[-1]) % f) == f - 1
    dy = np.abs(np.diff(y, axis=-2))
    edge_y = (np.arange(dy.shape[-2]) % f) == f - 1
    across = np.concatenate([dx[..., edge].ravel(), dy[..., edge_y, :].ravel()])
    inside = np.concatenate([dx[..., ~edge].ravel(), dy[..., ~edge_y, :].ravel()])
    with np.errstate(divide="ignore"):  # flat blocks: no step inside, ratio inf
        return float(np.float64(across.mean()) / inside.mean())


@pytest.fixture
def coarse():
    g = torch.Generator().manual_seed(0)
    x = torch.rand((2, 1, 6, 7), generator=g) * 10
    x[0, 0, 2, 3] = 0.0  # a dry block
    return x


def test_prior_keeps_block_means_exact_dry_blocks_dry_and_non_negative(coarse):
    f = 8
    z = torch.randn((2, 1, 6 * f, 7 * f), generator=torch.Generator().manual_seed(1))
    y = multiplicative(z, coarse, f, prior="bilinear")
    torch.testing.assert_close(block_mean(y, f), coarse, rtol=1e-5, atol=1e-5)
    assert (y >= 0).all() and torch.isfinite(y).all()
    assert (y[0, 0, 16:24, 24:32] == 0).all()


def test_untrained_start_is_smooth_and_plain_softmax_is_blocky(coarse):
    """With z = 0, the prior gives a smooth field; the plain layer gives flat squares."""
    f = 8
    z = torch.zeros((2, 1, 6 * f, 7 * f))
    smooth = multiplicative(z, coarse, f, prior="bilinear").numpy()
    flat = multiplicative(z, coarse, f).numpy()
    assert np.isinf(_edge_ratio(flat, f))  # constant inside every block
    assert _edge_ratio(smooth, f) < 4.0
    # the refinement brings the prior's own block means towards the coarse field
    raw = [torch.exp(log_prior(coarse, f, iterations=n)) for n in (0, 8)]
    wet = coarse > 0
    err = [float((block_mean(b, f) - coarse).abs()[wet].mean()) for b in raw]
    assert err[1] < 0.5 * err[0]
    assert _edge_ratio(multiplicative(torch.log(raw[0]), coarse, f).numpy(), f) > \
        _edge_ratio(smooth, f)


def test_prior_is_unit_free_and_finite_on_dry_fields():
    x = torch.zeros((1, 1, 3, 3))
    assert torch.isfinite(log_prior(x, 4)).all()
    x = torch.rand((1, 1, 4, 4)) + 0.1
    d = log_prior(1e-4 * x, 4) - log_prior(x, 4)  # a change of units is a constant shift
    torch.testing.assert_close(d, torch.full_like(d, float(np.log(1e-4))), rtol=0, atol=1e-4)


def test_generator_with_prior_and_card_round_trip():
    cfg = GeneratorConfig.small(factor=4, constraint="multiplicative",
                                output_activation="none", constraint_prior="bilinear")
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert "constraint_prior" not in GeneratorConfig.small(factor=4).to_dict()  # old cards
    g = Generator(cfg).eval()
    x = torch.rand((1, 2, 1, 5, 5))
    noise = torch.randn((1, 2, cfg.noise_channels_total, 5, 5))
    init = torch.randn((1, cfg.noise_channels, 5, 5))
    with torch.no_grad():
        y, _ = g(x, noise, None, init, coarse=x * 3)
    torch.testing.assert_close(block_mean(y[0, :, :], 4), x[0] * 3, rtol=1e-5, atol=1e-5)


def test_prior_needs_a_constraint_layer():
    with pytest.raises(ModelCardError, match="constraint_prior"):
        GeneratorConfig.small(factor=4, constraint_prior="bilinear")
    assert GeneratorConfig.small(factor=4, constraint="additive", output_activation="none",
                                 constraint_prior="bilinear").constraint_prior == "bilinear"
    with pytest.raises(ModelCardError, match="constraint_prior"):
        GeneratorConfig.small(factor=4, constraint="multiplicative", constraint_prior="spline")
    with pytest.raises(InvalidInputError, match="constraint_prior"):
        from_preset("cpu", constraint_prior="bilinear")
    cfg = from_preset("cpu", constraint="multiplicative", constraint_prior="bilinear")
    assert cfg.generator_config().constraint_prior == "bilinear"


def test_dry_threshold_makes_dry_pixels_inside_wet_blocks_and_keeps_means():
    from xstochsr.models.constraints import dry_out

    f = 4
    coarse = torch.tensor([[[[2.0, 0.005], [0.0, 5.0]]]])  # 0.005 * 16 < 0.1: no cell can reach it
    z = torch.randn((1, 1, 2 * f, 2 * f), generator=torch.Generator().manual_seed(3)) * 3
    z.requires_grad_(True)
    plain = multiplicative(z, coarse, f)
    y = multiplicative(z, coarse, f, dry=0.1)
    torch.testing.assert_close(block_mean(y, f), coarse, rtol=1e-5, atol=1e-6)
    assert int((plain > 0).sum()) == 3 * f * f  # softmax: every cell of a wet block is wet
    wet_blocks = y.reshape(2, f, 2, f).permute(0, 2, 1, 3)[[0, 1], [0, 1]]
    assert ((wet_blocks == 0).sum() > 0) and ((wet_blocks[wet_blocks > 0]) >= 0.1).all()
    drizzle = y[0, 0, :f, f:]  # every cell below 0.1: left as it was, never emptied
    torch.testing.assert_close(drizzle, plain[0, 0, :f, f:])
    y.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    # one row per block, as the layer calls it
    rows = dry_out(torch.tensor([[0.05, 0.5, 1.45], [0.01, 0.02, 0.03]]), 0.1)
    torch.testing.assert_close(rows, torch.tensor([[0.0, 0.5 * 2 / 1.95, 1.45 * 2 / 1.95],
                                                   [0.01, 0.02, 0.03]]))


def test_dry_threshold_in_config_card_and_training_settings():
    cfg = GeneratorConfig.small(factor=4, constraint="multiplicative",
                                output_activation="none", constraint_dry=0.1)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert "constraint_dry" not in GeneratorConfig.small(factor=4).to_dict()
    with pytest.raises(ModelCardError, match="constraint_dry"):
        GeneratorConfig.small(factor=4, constraint="additive", constraint_dry=0.1)
    with pytest.raises(ModelCardError, match="constraint_dry"):
        GeneratorConfig.small(factor=4, constraint="multiplicative", constraint_dry=-1.0)
    with pytest.raises(InvalidInputError, match="constraint_dry"):
        from_preset("cpu", constraint_dry=0.1)
    t = from_preset("cpu", constraint="multiplicative", constraint_dry=0.1)
    assert t.generator_config().constraint_dry == 0.1
