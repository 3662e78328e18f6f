"""The multiplicative layer's smooth variant: exact means, dry stays dry, no block steps."""

import numpy as np
import pytest
import torch
import xarray as xr

from xstochsr.errors import InvalidInputError, ModelCardError
from xstochsr.metrics import block_edge_ratio
from xstochsr.models.constraints import block_mean, multiplicative, smooth_rescale
from xstochsr.models.generator import Generator, GeneratorConfig
from xstochsr.training.config import from_preset


def _edge_ratio(y: torch.Tensor, f: int) -> float:
    a = y.detach().numpy()
    dims = [f"d{i}" for i in range(a.ndim - 2)] + ["y", "x"]
    return float(block_edge_ratio(xr.DataArray(a, dims=dims), factor=f, y_dim="y", x_dim="x"))


def _rain_like(shape, f, seed=0):
    """A smooth positive fine field with dry patches, and its block means."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    yy, xx = torch.meshgrid(torch.arange(h * f) / (h * f), torch.arange(w * f) / (w * f),
                            indexing="ij")
    field = torch.zeros_like(yy)
    for _ in range(4):
        k = torch.randint(1, 4, (2,), generator=g).float()
        ph = torch.rand(2, generator=g) * 6.3
        field = field + torch.sin(2 * np.pi * k[0] * yy + ph[0]) * torch.cos(
            2 * np.pi * k[1] * xx + ph[1])
    fine = (field - 0.3).clamp_min(0.0)[None, None] * 5
    return fine, block_mean(fine, f)


@pytest.fixture
def coarse():
    _, x = _rain_like((6, 7), 8)
    assert (x == 0).any() and (x > 0).any()
    return x


def test_block_means_exact_dry_blocks_dry_non_negative_finite(coarse):
    f = 8
    z = torch.randn((1, 1, 48, 56), generator=torch.Generator().manual_seed(1)) * 3
    y = multiplicative(z, coarse, f, prior="smooth")
    torch.testing.assert_close(block_mean(y, f), coarse, rtol=1e-5, atol=1e-5)
    assert (y >= 0).all() and torch.isfinite(y).all()
    dry = torch.nn.functional.interpolate(coarse, scale_factor=f, mode="nearest") == 0
    assert (y[dry] == 0).all()


def test_extreme_logits_stay_finite_and_exact(coarse):
    f = 8
    z = torch.randn((1, 1, 48, 56), generator=torch.Generator().manual_seed(2)) * 200
    y = multiplicative(z, coarse * 1e6, f, prior="smooth")
    assert torch.isfinite(y).all()
    torch.testing.assert_close(block_mean(y, f), coarse * 1e6, rtol=1e-4, atol=1e-2)


def test_smooth_logits_give_fewer_block_steps_than_the_softmax(coarse):
    """The same smooth logits: the softmax's per-block normalisation draws steps."""
    f = 8
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(56.0), indexing="ij")
    z = (torch.sin(yy / 7.0) + torch.cos(xx / 5.0))[None, None]
    soft = multiplicative(z, coarse, f, prior="bilinear")
    smooth = multiplicative(z, coarse, f, prior="smooth")
    assert _edge_ratio(smooth, f) < _edge_ratio(soft, f)
    # and the rescaling does what the steps inside promise: its last per-block factor
    # is close to one where the coarse field is wet
    w = torch.exp(z)
    y = smooth_rescale(w, coarse, f, iterations=0)
    y8 = smooth_rescale(w, coarse, f)
    torch.testing.assert_close(block_mean(y8, f), coarse, rtol=1e-5, atol=1e-5)
    assert _edge_ratio(y8, f) < _edge_ratio(y, f)


@pytest.mark.parametrize("seed", [0, 3])
def test_untrained_start_has_fewer_block_steps_than_the_softmax_prior(seed):
    """z = 0 on the block means of a smooth field: the smooth layer is closer to its truth.

    Measured when written: truth 0.87 and 1.00; softmax with the bilinear prior 4.6 and
    5.5 (1.5 and 2.2 with the field everywhere wet); smooth 1.2 and 2.0 (1.25 and 1.38).
    """
    f = 8
    fine, x = _rain_like((8, 8), f, seed=seed)
    z = torch.zeros_like(fine)
    for shift, gain in ((0.0, 0.5), (1.0, 0.9)):  # with dry blocks; everywhere wet
        soft = multiplicative(z, x + shift, f, prior="bilinear")
        smooth = multiplicative(z, x + shift, f, prior="smooth")
        torch.testing.assert_close(block_mean(smooth, f), x + shift, rtol=1e-5, atol=1e-5)
        assert _edge_ratio(smooth, f) < gain * _edge_ratio(soft, f)
    assert _edge_ratio(smooth, f) < 1.6
    nearest = torch.nn.functional.interpolate(x + 1, scale_factor=f, mode="nearest")
    assert float((smooth - fine - 1).abs().mean()) < float((nearest - fine - 1).abs().mean())


def test_gradients_reach_the_logits(coarse):
    z = torch.zeros((1, 1, 48, 56), requires_grad=True)
    y = multiplicative(z, coarse, 8, prior="smooth", dry=0.05)
    (y ** 2).sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_dry_threshold_keeps_means(coarse):
    f = 8
    z = torch.randn((1, 1, 48, 56), generator=torch.Generator().manual_seed(4))
    y = multiplicative(z, coarse, f, prior="smooth", dry=0.1)
    torch.testing.assert_close(block_mean(y, f), coarse, rtol=1e-5, atol=1e-5)
    small = (y > 0) & (y < 0.1)
    # cells below the threshold survive only in blocks whose every cell is below it
    assert float(y[small].sum()) <= float(y[y > 0].sum())


def test_settings_accept_smooth_only_with_the_multiplicative_layer():
    cfg = GeneratorConfig.small(factor=4, constraint="multiplicative", constraint_prior="smooth")
    g = Generator(cfg).eval()
    x = torch.rand((1, 2, 1, 5, 5))
    x[0, 0, 0, 1, 2] = 0.0
    noise = torch.randn((1, 2, cfg.noise_channels_total, 5, 5))
    init = torch.randn((1, cfg.noise_channels, 5, 5))
    with torch.no_grad():
        y, _ = g(x, noise, None, init, coarse=x * 3)
    torch.testing.assert_close(block_mean(y[0], 4), x[0] * 3, rtol=1e-5, atol=1e-5)
    assert (y[0, 0, 0, 4:8, 8:12] == 0).all() and (y >= 0).all()
    assert GeneratorConfig.from_dict(cfg.to_dict()).constraint_prior == "smooth"
    with pytest.raises(ModelCardError, match="constraint_prior"):
        GeneratorConfig.small(factor=4, constraint="additive", constraint_prior="smooth")
    with pytest.raises(InvalidInputError, match="smooth"):
        from_preset("cpu", constraint="additive", constraint_prior="smooth")
    assert from_preset("cpu", constraint="multiplicative",
                       constraint_prior="smooth").generator_config().constraint_prior == "smooth"


def test_the_field_tapers_to_zero_towards_a_dry_neighbour():
    """One wet block between dry ones: a bump inside it, no step down on its edges."""
    f = 8
    x = torch.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 2.0
    w = torch.ones((1, 1, 24, 24))
    y = smooth_rescale(w, x, f)
    torch.testing.assert_close(block_mean(y, f), x, rtol=1e-5, atol=1e-5)
    block = y[0, 0, 8:16, 8:16]
    assert float(block[0].max()) < 0.05 * float(block.max())  # edge rows near zero
    assert float(block[:, 0].max()) < 0.05 * float(block.max())
    assert float(block[4, 4]) == pytest.approx(float(block.max()), rel=0.1)  # peak inside
    flat = smooth_rescale(w, x, f, taper=0.0)  # no taper: a step down on the edge
    assert float(flat[0, 0, 8, 12]) > 0.3 * float(flat.max())


def test_a_light_block_the_taper_empties_takes_the_weights():
    """A light wet block between heavy ones and a dry one keeps its exact mean."""
    f = 4
    x = torch.tensor([[[[50.0, 50.0, 50.0], [50.0, 0.01, 0.0], [50.0, 50.0, 50.0]]]])
    w = torch.rand((1, 1, 12, 12), generator=torch.Generator().manual_seed(0)) + 0.5
    y = smooth_rescale(w, x, f, taper=10.0)
    torch.testing.assert_close(block_mean(y, f), x, rtol=1e-5, atol=1e-6)
    assert torch.isfinite(y).all() and (y >= 0).all()
