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


def test_critic_loss_and_penalty():
    d, c, real, _ = setup()
    fake = torch.rand_like(real)
    obj = WGANGP(10.0)
    loss, logs = obj.critic_loss(d, c, real, fake, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and logs["gradient_penalty"] >= 0
    assert loss.item() == pytest.approx(-logs["wasserstein"] + 10 * logs["gradient_penalty"],
                                        rel=1e-4, abs=1e-5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


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
