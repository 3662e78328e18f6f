"""The generator's loss terms: fair CRPS by hand, pooling scales, gradients, composition."""

import itertools

import numpy as np
import pytest
import torch

from xstochsr.errors import InvalidInputError
from xstochsr.training.config import from_preset
from xstochsr.training.losses import (
    CRPSGradLoss,
    CRPSLoss,
    GeneratedBatch,
    Objective,
    build_objective,
    fair_crps,
    normalize,
    pooled,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fair_crps_of_a_tiny_ensemble_by_hand():
    # members 0, 1, 4 and truth 2: mean |x - y| = (2 + 1 + 2) / 3 = 5/3; ordered pairs
    # |0-1| + |0-4| + |1-4| = 8, twice = 16, over 2 k (k - 1) = 12: 4/3. CRPS = 1/3.
    x = torch.tensor([0.0, 1.0, 4.0])
    assert float(fair_crps(x, torch.tensor(2.0))) == pytest.approx(1 / 3, abs=1e-6)
    # two members: |a - y| + |b - y| over 2, minus |a - b| / 2
    x2 = torch.tensor([[3.0, -1.0], [5.0, 2.0]])
    y2 = torch.tensor([4.0, 0.0])
    expect = torch.tensor([(1 + 1) / 2 - 2 / 2, (1 + 2) / 2 - 3 / 2])
    torch.testing.assert_close(fair_crps(x2, y2), expect)


def test_fair_crps_matches_a_brute_force_sum(rng):
    x = torch.from_numpy(rng.normal(size=(5, 7)))
    y = torch.from_numpy(rng.normal(size=7))
    k = 5
    pairs = sum((x[i] - x[j]).abs() for i, j in itertools.product(range(k), range(k)))
    expect = (x - y).abs().mean(0) - pairs / (2 * k * (k - 1))
    torch.testing.assert_close(fair_crps(x, y), expect)
    with pytest.raises(ValueError, match="at least 2"):
        fair_crps(x[:1], y)


def test_fair_crps_prefers_the_right_spread(rng):
    # truth ~ N(0, 1): members from N(0, 1) score better than members from N(0, 0.2)
    y = torch.from_numpy(rng.normal(size=20000))
    right = torch.from_numpy(rng.normal(size=(4, 20000)))
    narrow = 0.2 * torch.from_numpy(rng.normal(size=(4, 20000)))
    assert fair_crps(right, y).mean() < fair_crps(narrow, y).mean() - 0.05


def test_pooling_scales():
    x = torch.arange(16.0).reshape(1, 4, 4)
    torch.testing.assert_close(pooled(x, 2), torch.tensor([[[2.5, 4.5], [10.5, 12.5]]]))
    assert pooled(x, 1) is x
    # a pair of members that differ only inside 4x4 blocks has no spread at scale 4
    real = torch.zeros(1, 1, 1, 8, 8)
    a = torch.zeros(1, 1, 1, 8, 8)
    a[..., ::2, :] = 1.0
    b = 1.0 - a  # same block means as a (0.5 everywhere at scale >= 2)
    fake = torch.stack([a, b])
    s = GeneratedBatch(coarse=torch.zeros(1, 1, 1, 2, 2), real=real, fake=fake,
                       real_phys=real, fake_phys=fake)
    fine = CRPSLoss(scales=[1]).loss(None, s)
    coarse = CRPSLoss(scales=[4]).loss(None, s)
    # per pixel members {0, 1}, truth 0: skill 1/2, spread 2 * 1 / (2 * 2 * 1) = 1/2
    torch.testing.assert_close(fine, torch.tensor(0.0))
    # pooled over 4x4 both members are 0.5: skill 0.5, no spread left; the fine scale
    # alone cannot see that both members carry too much mass
    torch.testing.assert_close(coarse, torch.tensor(0.5))
    both = CRPSLoss(scales=[1, 4, 64]).loss(None, s)                # 64 > patch: skipped
    torch.testing.assert_close(both, (fine + coarse) / 2)


def test_crps_masks_missing_pixels():
    real = torch.zeros(1, 1, 1, 4, 4)
    fake = torch.zeros(2, 1, 1, 1, 4, 4)
    fake[:, ..., 0] = 100.0          # wrong only in the missing column
    mask = torch.ones_like(real)
    mask[..., 0] = 0
    s = GeneratedBatch(coarse=torch.zeros(1, 1, 1, 1, 1), real=real, fake=fake, mask=mask,
                       real_phys=real, fake_phys=fake)
    assert float(CRPSLoss([1, 2]).loss(None, s)) == 0.0


def _batch(fake, real, mask=None):
    return GeneratedBatch(coarse=torch.zeros(1, 1, 1, 1, 1), real=real, fake=fake, mask=mask,
                          real_phys=real, fake_phys=fake)


def test_crps_grad_by_hand():
    # truth a ramp 0, 1, 2, 3 along x (differences 1, 1, 1 along x, 0 along y); two members
    # with the same pixel values at the block scale but a jump: 0, 0, 3, 3 (differences
    # 0, 3, 0) and the ramp itself (1, 1, 1).
    ramp = torch.arange(4.0).expand(1, 1, 1, 2, 4)
    jump = torch.tensor([0.0, 0.0, 3.0, 3.0]).expand(1, 1, 1, 2, 4)
    fake = torch.stack([jump, ramp])
    # along x, per difference: members (0, 1) vs 1 -> skill 1/2, spread 1/2 -> 0;
    # (3, 1) vs 1 -> skill 1, spread 1 -> 0; (0, 1) vs 1 -> 0. So 0 along x (the pair is
    # fair); along y every difference is 0 for all: 0.
    assert float(CRPSGradLoss().loss(None, _batch(fake, ramp))) == pytest.approx(0.0, abs=1e-6)
    # both members jumping: along x (0, 0) vs 1 -> 1, (3, 3) vs 1 -> 2, (0, 0) vs 1 -> 1:
    # mean 4/3 over the x differences, 0 along y: loss (4/3 + 0) / 2
    both = torch.stack([jump, jump])
    assert float(CRPSGradLoss().loss(None, _batch(both, ramp))) == pytest.approx(2 / 3)
    # and the pixel CRPS cannot tell a smooth pair from a jumping one with equal marginals
    assert float(CRPSGradLoss().loss(None, _batch(torch.stack([ramp, ramp]), ramp))) == 0.0


def test_crps_grad_penalises_block_edge_jumps_that_pixel_crps_misses(rng):
    """Members with the truth's pixel values per block, shuffled inside blocks, versus the
    same values with the blocks' levels swapped at the edges: the pixel CRPS is blind to
    where a value sits, the difference CRPS sees the jumps."""
    truth = torch.from_numpy(np.cumsum(rng.random((1, 1, 1, 8, 8)), axis=-1)).float()
    smooth = torch.stack([truth, truth + 0.01])
    blocky = smooth.clone()
    blocky[..., :, 4:] += 2.0  # a step at the block edge x = 4
    blocky[..., :, :4] -= 2.0
    g_smooth = CRPSGradLoss().loss(None, _batch(smooth, truth))
    g_blocky = CRPSGradLoss().loss(None, _batch(blocky, truth))
    assert float(g_blocky) > float(g_smooth) + 0.1


def test_crps_grad_masks_and_builds():
    real = torch.zeros(1, 1, 1, 4, 4)
    fake = torch.zeros(2, 1, 1, 1, 4, 4)
    fake[:, ..., 0] = 100.0          # wrong only in the missing column
    mask = torch.ones_like(real)
    mask[..., 0] = 0
    assert float(CRPSGradLoss().loss(None, _batch(fake, real, mask))) == 0.0
    obj = build_objective({"crps": 1.0, "crps-grad": 0.5}, ensemble_members=3)
    assert obj.members == 3 and set(obj.terms) == {"crps", "crps-grad"}
    assert build_objective("crps-grad", ensemble_members=4).members == 4
    with pytest.raises(ValueError, match="at least 2 x 2"):
        CRPSGradLoss().loss(None, _batch(torch.zeros(2, 1, 1, 1, 1, 4), torch.zeros(1, 1, 1, 1, 4)))


def test_gradients_flow_to_the_generator_through_the_inverse_transform():
    from xstochsr.models import transforms
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    spec = transforms.fit(None, "log_rain")
    g = Generator(GeneratorConfig.small(4, width=16, noise_channels=4, encoder_blocks=1,
                                        init_blocks=1))
    c = torch.rand(2, 3, 1, 4, 4).repeat(2, 1, 1, 1, 1)           # k = 2 copies
    noise = torch.randn(4, 3, 4, 4, 4)
    y, _ = g(c, noise, None, torch.randn(4, 4, 4, 4))
    fake = y.reshape(2, 2, 3, 1, 16, 16)
    real = torch.rand(2, 3, 1, 16, 16) * 5
    s = GeneratedBatch(coarse=c[:2], real=transforms.forward(real, spec), fake=fake,
                       real_phys=real, fake_phys=transforms.inverse(fake, spec))
    loss = CRPSLoss().loss(None, s)
    loss.backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0


def test_objective_strings_and_dicts():
    assert normalize("wgan-gp") == {"wgan-gp": 1.0}
    assert normalize({"crps": 2, "wgan-gp": 1}) == {"crps": 2.0, "wgan-gp": 1.0}
    for bad in ("l1", {"crps": 0.0}, {"mse": 1, "crps": 1}, {}):
        with pytest.raises(ValueError):
            normalize(bad)
    with pytest.raises(InvalidInputError, match="mse"):
        from_preset("cpu", objective={"mse": 1.0, "crps": 1.0})
    with pytest.raises(InvalidInputError, match="ensemble_members"):
        from_preset("cpu", objective="crps", ensemble_members=1)
    o = build_objective({"wgan-gp": 1.0, "crps": 0.5}, ensemble_members=3)
    assert isinstance(o, Objective) and o.adversarial and o.members == 3 and o.needs_physical
    o = build_objective("crps", ensemble_members=4)
    assert not o.adversarial and o.members == 4 and o.stochastic
    o = build_objective("wgan-gp")
    assert o.members == 1 and not o.needs_physical
    assert not build_objective("mse").stochastic
    cfg = from_preset("cpu", objective={"crps": 1.0})
    assert cfg.generator_config().noise_channels == cfg.gen_noise_channels
    assert from_preset("cpu", objective="mse").generator_config().noise_channels == 0


def test_weighted_sum_and_logs():
    real = torch.zeros(1, 1, 1, 4, 4)
    fake = torch.stack([torch.ones_like(real), 3 * torch.ones_like(real)])
    s = GeneratedBatch(coarse=torch.zeros(1, 1, 1, 1, 1), real=real, fake=fake,
                       real_phys=real, fake_phys=fake)
    one = build_objective("crps", crps_scales=[1])
    two = build_objective({"crps": 2.5}, crps_scales=[1])
    l1, logs1 = one.generator_loss(None, s)
    l2, logs2 = two.generator_loss(None, s)
    # members 1 and 3, truth 0: skill 2, spread |1-3| * 2 / (2*2*1) = 1: CRPS 1
    assert float(l1) == pytest.approx(1.0) and float(l2) == pytest.approx(2.5)
    assert logs1["loss_crps"] == logs2["loss_crps"] == pytest.approx(1.0)


def test_loss_values_do_not_depend_on_member_order(rng):
    x = torch.from_numpy(rng.normal(size=(4, 3, 5)))
    y = torch.from_numpy(rng.normal(size=(3, 5)))
    perm = torch.tensor([2, 0, 3, 1])
    np.testing.assert_allclose(fair_crps(x, y).numpy(), fair_crps(x[perm], y).numpy(),
                               rtol=1e-12)
