import pytest
import torch

from xstochsr.errors import ModelCardError, UnsupportedFactorError
from xstochsr.models.critic import Critic, CriticConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(factor=4):
    return CriticConfig.small(factor, width=16, dense=16)


def test_scores_one_per_frame():
    torch.manual_seed(0)
    c = Critic(tiny())
    s = c(torch.rand(2, 3, 1, 4, 5), torch.rand(2, 3, 1, 16, 20))
    assert s.shape == (2, 3)
    assert torch.isfinite(s).all()


def test_critic_is_causal_in_time():
    torch.manual_seed(0)
    c = Critic(tiny()).eval()
    x, y = torch.rand(1, 4, 1, 4, 4), torch.rand(1, 4, 1, 16, 16)
    y2 = y.clone()
    y2[:, 2:] = torch.rand(1, 2, 1, 16, 16)
    with torch.no_grad():
        a, b = c(x, y), c(x, y2)
    assert torch.equal(a[:, :2], b[:, :2])
    assert not torch.equal(a[:, 2:], b[:, 2:])


def test_critic_sees_coarse_and_fine_jointly():
    torch.manual_seed(0)
    c = Critic(tiny()).eval()
    x, y = torch.rand(1, 2, 1, 4, 4), torch.rand(1, 2, 1, 16, 16)
    with torch.no_grad():
        assert not torch.equal(c(x, y), c(x + 1, y))
        assert not torch.equal(c(x, y), c(x, y + 1))


def test_spectral_norm_everywhere():
    c = Critic(tiny())
    convs = [m for m in c.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    c2 = Critic(CriticConfig.small(4, width=16, spectral_norm=False))
    assert not any(hasattr(m, "parametrizations") for m in c2.modules())


def test_shape_mismatch_raises():
    c = Critic(tiny())
    with pytest.raises(ValueError, match="does not match"):
        c(torch.rand(1, 2, 1, 4, 4), torch.rand(1, 2, 1, 8, 8))


def test_paper_config_sizes():
    cfg = CriticConfig()
    assert cfg.fine_widths == [32, 64, 128, 256]
    n = sum(p.numel() for p in Critic(cfg).parameters())
    assert 10e6 < n < 25e6  # the paper reports about 15 M


def test_config_round_trip_and_errors():
    cfg = tiny(8)
    assert CriticConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelCardError):
        CriticConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(UnsupportedFactorError):
        CriticConfig(factor=3)
    with pytest.raises(ModelCardError):
        CriticConfig(factor=4, fine_widths=[8, 8, 8])


def test_gradient_penalty_double_backward():
    torch.manual_seed(0)
    c = Critic(tiny())
    x = torch.rand(2, 2, 1, 4, 4)
    y = torch.rand(2, 2, 1, 16, 16, requires_grad=True)
    (g,) = torch.autograd.grad(c(x, y).sum(), y, create_graph=True)
    (g.norm() ** 2).backward()
    weights = [p for n, p in c.named_parameters() if n.endswith("weight.original")]
    assert sum(p.grad is not None for p in weights) >= len(weights) - 1
