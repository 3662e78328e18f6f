import pytest
import torch

from xstochsr.models.critic import Critic, CriticConfig
from xstochsr.training.objective import WGANGP, MSEObjective, apply_mask, make_objective

pytestmark = pytest.mark.usefixtures("one_thread")


def setup():
    torch.manual_seed(0)
    d = Critic(CriticConfig.small(4, width=16, dense=16))
    c = torch.rand(2, 3, 1, 4, 4)
    real = torch.rand(2, 3, 1, 16, 16)
    mask = torch.ones_like(real)
    mask[:, :, :, :, :5] = 0
    return d, c, real, mask


class LinearCritic(torch.nn.Module):
    """``D(c, x)[b, l] = sum(W[l] * x[b, l]) + a * sum(c[b, l])``: its input gradient is ``W``.

    Records every (coarse, fine) pair it is called with, row by row.
    """

    def __init__(self, shape, seed=0, scale=1.0, a=0.7):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(scale * torch.randn(shape, generator=g))
        self.a = a
        self.seen = []

    def forward(self, coarse, fine):
        self.seen.append((coarse.detach().clone(), fine.detach().clone()))
        return (self.W * fine).flatten(2).sum(-1) + self.a * coarse.flatten(2).sum(-1)


class SquareCritic(torch.nn.Module):
    """``D(c, x)[b, l] = sum(x[b, l]^2) / 2``: its input gradient is ``x`` itself."""

    def forward(self, coarse, fine):
        return 0.5 * fine.square().flatten(2).sum(-1)


def _data(seed=1):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(3, 2, 1, 2, 2, generator=g)
    real = torch.rand(3, 2, 1, 8, 8, generator=g)
    fake = torch.rand(3, 2, 1, 8, 8, generator=g)
    return c, real, fake


@pytest.mark.parametrize("gp_weight", [10.0, 0.0, 3.0])
@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_linear_critic_penalty_and_wasserstein_by_hand(gp_weight, scale):
    c, real, fake = _data()
    d = LinearCritic(real.shape[1:], scale=scale)
    loss, logs = WGANGP(gp_weight).critic_loss(d, c, real, fake,
                                               generator=torch.Generator().manual_seed(0))
    W = d.W.detach().double()
    # the gradient of the summed scores w.r.t. any input is W whatever e is
    gp = (W.flatten().norm().item() - 1.0) ** 2
    B = real.shape[0]
    s_real = [[(W[t] * real[b, t].double()).sum().item() + 0.7 * c[b, t].double().sum().item()
               for t in range(2)] for b in range(B)]
    s_fake = [[(W[t] * fake[b, t].double()).sum().item() + 0.7 * c[b, t].double().sum().item()
               for t in range(2)] for b in range(B)]
    wdist = sum(map(sum, s_real)) / (2 * B) - sum(map(sum, s_fake)) / (2 * B)
    assert logs["gradient_penalty"] == pytest.approx(gp, rel=1e-4, abs=1e-6)
    assert logs["wasserstein"] == pytest.approx(wdist, rel=1e-4, abs=1e-5)
    assert loss.item() == pytest.approx(-wdist + gp_weight * gp, rel=1e-4, abs=1e-5)
    loss.backward()
    # d/dW[l] of -wdist + w (||W|| - 1)^2 = -mean_b(real - fake)[l] / L + 2 w (||W|| - 1) W / ||W||
    n = W.flatten().norm()
    expect = (-(real.double() - fake.double()).mean(0) / real.shape[1]
              + gp_weight * 2 * (n - 1) * W / n)
    torch.testing.assert_close(d.W.grad.double(), expect, rtol=1e-4, atol=1e-5)


def test_penalty_is_taken_per_sample_at_the_interpolates():
    c, real, _ = _data()
    # real == fake: every interpolate is `real`, where the square critic's gradient is `real`
    loss, logs = WGANGP(10.0).critic_loss(SquareCritic(), c, real, real.clone(),
                                          generator=torch.Generator().manual_seed(0))
    norms = [real[b].double().flatten().norm().item() for b in range(real.shape[0])]
    gp = sum((x - 1.0) ** 2 for x in norms) / len(norms)
    assert logs["gradient_penalty"] == pytest.approx(gp, rel=1e-4)
    assert logs["wasserstein"] == pytest.approx(0.0, abs=1e-5)
    assert loss.item() == pytest.approx(10.0 * gp, rel=1e-4)


def test_interpolates_lie_between_real_and_fake_with_one_weight_per_sample():
    c, real, fake = _data()
    d = LinearCritic(real.shape[1:])
    WGANGP(10.0).critic_loss(d, c, real, fake, generator=torch.Generator().manual_seed(0))
    coarse_rows = torch.cat([s[0] for s in d.seen])
    fine_rows = torch.cat([s[1] for s in d.seen])
    # the same coarse input conditions real, fake and interpolates
    for row in coarse_rows[:len(fine_rows)]:
        match = [b for b in range(3) if torch.equal(row, c[b])]
        assert match, "the critic saw a coarse sequence that is not the batch's"
    interp = [x for x in fine_rows
              if not any(torch.equal(x, r) for r in real) and
              not any(torch.equal(x, f) for f in fake)]
    assert len(interp) == real.shape[0]
    es = []
    for b, x in enumerate(interp):
        e = ((x - fake[b]) / (real[b] - fake[b])).flatten()
        assert e.std() < 1e-4 and 0.0 <= e.mean() <= 1.0
        es.append(e.mean().item())
    assert len(set(round(e, 4) for e in es)) > 1  # one e per sample, not one per batch


def test_mask_by_hand_in_critic_and_generator_losses():
    c, real, fake = _data()
    mask = torch.ones_like(real)
    mask[..., :3] = 0  # three missing columns
    d = LinearCritic(real.shape[1:])
    W = d.W.detach()
    _, logs = WGANGP(10.0).critic_loss(d, c, real, fake, mask,
                                       generator=torch.Generator().manual_seed(0))
    # missing pixels of `fake` are the target's: only valid pixels differ
    wdist = (W * (real - fake) * mask).flatten(2).sum(-1).mean().item()
    assert logs["wasserstein"] == pytest.approx(wdist, rel=1e-4, abs=1e-6)
    fk = fake.clone().requires_grad_(True)
    g_loss = WGANGP(10.0).generator_loss(d, c, real, fk, mask)
    masked_fake = fake * mask + real * (1 - mask)
    expect = -((W * masked_fake).flatten(2).sum(-1) + 0.7 * c.flatten(2).sum(-1)).mean()
    assert g_loss.item() == pytest.approx(expect.item(), rel=1e-5)
    g_loss.backward()
    torch.testing.assert_close(fk.grad, -(W * mask).expand_as(fk) / 6)
    # MSE: squared error over valid pixels only, divided by their number
    mse = MSEObjective().generator_loss(None, c, real, fake, mask).item()
    by_hand = ((fake - real) ** 2 * mask).sum().item() / mask.sum().item()
    assert mse == pytest.approx(by_hand, rel=1e-5)
    assert mse != pytest.approx(((fake - real) ** 2).mean().item(), rel=1e-3)


def test_critic_loss_with_the_real_critic_trains_it():
    d, c, real, _ = setup()
    fake = torch.rand_like(real)
    loss, logs = WGANGP(10.0).critic_loss(d, c, real, fake,
                                          generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and logs["gradient_penalty"] >= 0
    loss.backward()
    assert all(p.grad is not None for n, p in d.named_parameters() if "weight" in n)


def test_masked_pixels_give_no_generator_gradient():
    d, c, real, mask = setup()
    fake = torch.rand_like(real, requires_grad=True)
    WGANGP().generator_loss(d, c, real, fake, mask).backward()
    assert fake.grad[..., :5].abs().max() == 0
    assert fake.grad[..., 5:].abs().max() > 0


def test_masked_pixels_invisible_to_critic():
    d, c, real, mask = setup()
    fake = real.clone()
    fake[..., :5] = 5.0  # garbage only where the target is missing
    _, logs = WGANGP().critic_loss(d, c, real, fake, mask, generator=torch.Generator())
    assert logs["wasserstein"] == pytest.approx(0.0, abs=1e-6)


def test_mse_ignores_masked_and_nan_never_enters():
    _, c, real, mask = setup()
    fake = real.clone()
    fake[..., :5] = 100.0
    assert MSEObjective().generator_loss(None, c, real, fake, mask).item() == 0.0
    assert MSEObjective().generator_loss(None, c, real, fake).item() > 0


def test_apply_mask_and_factory():
    a, b = torch.zeros(2), torch.ones(2)
    assert torch.equal(apply_mask(a, b, torch.tensor([1.0, 0.0])), torch.tensor([0.0, 1.0]))
    assert apply_mask(a, b, None) is a
    assert isinstance(make_objective("mse"), MSEObjective)
    with pytest.raises(ValueError):
        make_objective("l1")
