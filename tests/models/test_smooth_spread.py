"""The additive layer's smooth spread: block means exact, no steps on block edges."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch.nn import functional as F

from xstochsr.metrics import block_edge_ratio
from xstochsr.models import transforms
from xstochsr.models.constraints import (
    _mean_of_linear,
    additive,
    apply_constraint,
    block_mean,
    smooth_spread,
)
from xstochsr.models.generator import Generator, GeneratorConfig


def _edge_ratio(y: np.ndarray, f: int) -> float:
    """The library's block-edge score of fields ``(..., fH, fW)``, all pooled."""
    dims = [f"d{i}" for i in range(y.ndim - 2)] + ["y", "x"]
    return float(block_edge_ratio(xr.DataArray(y, dims=dims), factor=f, y_dim="y",
                                  x_dim="x"))


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_the_tridiagonal_operator_is_the_block_mean_of_linear_interpolation(factor, n):
    r = torch.randn((3, n), dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    fine = F.interpolate(r[:, None], scale_factor=factor, mode="linear", align_corners=False)
    torch.testing.assert_close(_mean_of_linear(r), F.avg_pool1d(fine, factor)[:, 0],
                               rtol=0, atol=1e-14)


def _smooth_coarse(shape, factor, seed=0):
    """Block means of a smooth random field (a few waves across the domain)."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    yy, xx = torch.meshgrid((torch.arange(factor * h) + 0.5) / factor,
                            (torch.arange(factor * w) + 0.5) / factor, indexing="ij")
    fine = torch.zeros((2, 2, factor * h, factor * w))
    for _ in range(4):
        k, ph, a = torch.rand(2, generator=g) * 0.8, torch.rand(1, generator=g) * 6.3, \
            torch.randn((2, 2, 1, 1), generator=g)
        fine = fine + 10 * a * torch.cos(k[0] * yy + k[1] * xx + ph)
    return block_mean(fine, factor)


@pytest.mark.parametrize("factor", [2, 8])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 5), (16, 3)])
def test_spread_block_means_exact_and_no_block_steps(factor, shape):
    x = 10 * torch.randn((2, 2, *shape), generator=torch.Generator().manual_seed(0))
    y = smooth_spread(x, factor)
    assert y.shape == (2, 2, factor * shape[0], factor * shape[1])
    torch.testing.assert_close(block_mean(y.double(), factor), x.double(), rtol=1e-6,
                               atol=1e-5)
    if min(shape) > 2:
        # a smooth coarse field: steps across block edges like those inside blocks
        # (linear pieces between coarse centres); a constant per block puts every
        # step on an edge (ratio inf)
        xs = _smooth_coarse(shape, factor)
        near = F.interpolate(xs, scale_factor=factor, mode="nearest")
        assert np.isinf(_edge_ratio(near.numpy(), factor))
        assert 0.7 < _edge_ratio(smooth_spread(xs, factor).numpy(), factor) < 1.3


def test_spread_of_a_constant_is_that_constant_and_of_a_ramp_is_a_ramp():
    torch.testing.assert_close(smooth_spread(torch.full((1, 1, 4, 6), 3.5), 4),
                               torch.full((1, 1, 16, 24), 3.5))
    # a linear ramp's block means are its values at block centres: the spread is the ramp
    # away from the domain's ends, where the interpolation is clamped and the solve's
    # end rows differ (their effect decays 0.17x per coarse cell)
    f, n = 4, 16
    xs = (torch.arange(f * n, dtype=torch.float32) + 0.5) / f
    ramp = xs.expand(f * 3, -1)[None, None]
    y = smooth_spread(block_mean(ramp, f), f)
    inner = slice(4 * f, -4 * f)
    torch.testing.assert_close(y[..., inner], ramp[..., inner], rtol=0, atol=1e-3)


def test_additive_with_prior_keeps_means_and_has_no_edge_steps_of_its_own(rng):
    f = 8
    u = torch.from_numpy(rng.normal(size=(2, 2, 6 * f, 5 * f))).float()
    u = F.avg_pool2d(u, 5, stride=1, padding=2)  # smooth raw output: edges are its own
    coarse = torch.from_numpy(rng.normal(scale=5.0, size=(2, 2, 6, 5))).float()
    plain = additive(u, coarse, f)
    smooth = additive(u, coarse, f, prior="bilinear")
    for y in (plain, smooth):
        torch.testing.assert_close(block_mean(y.double(), f), coarse.double(), rtol=1e-6,
                                   atol=1e-5)
    assert _edge_ratio(smooth.numpy(), f) < 0.5 * _edge_ratio(plain.numpy(), f)
    with pytest.raises(ValueError, match="prior"):
        additive(u, coarse, f, prior="spline")


def test_gradients_flow_through_the_spread():
    f = 4
    u = torch.randn((1, 1, 3 * f, 3 * f), requires_grad=True)
    coarse = torch.randn((1, 1, 3, 3), requires_grad=True)
    y = apply_constraint("additive", u, coarse, f, prior="bilinear")
    (y ** 2).sum().backward()
    assert torch.isfinite(u.grad).all() and torch.isfinite(coarse.grad).all()
    assert float(coarse.grad.abs().sum()) > 0


def test_generator_with_smooth_additive_layer_conserves_and_round_trips():
    cfg = GeneratorConfig.small(factor=4, in_channels=2, out_channels=2,
                                constraint="additive", output_activation="none",
                                constraint_prior="bilinear")
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    g = Generator(cfg).eval()
    spec = {"kind": "standardize", "mean": 1.0, "std": 4.0}
    phys = 6 * torch.randn((1, 3, 2, 5, 6), generator=torch.Generator().manual_seed(2))
    x = transforms.forward(phys, spec)
    noise = torch.randn((1, 3, cfg.noise_channels_total, 5, 6))
    with torch.no_grad():
        y, _ = g(x, noise, None, torch.randn((1, cfg.noise_channels, 5, 6)), coarse=phys,
                 transform=spec)
    assert y.shape == (1, 3, 2, 20, 24) and np.isfinite(y.numpy()).all()
    torch.testing.assert_close(block_mean(y[0].double(), 4), phys[0].double(), rtol=0,
                               atol=5e-5)
