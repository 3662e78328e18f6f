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


def _reference_critic_parameters() -> int:
    """Trainable parameters of the reference critic, counted layer by layer.

    From ``discriminator()`` in jleinonen/downscaling-rnn-gan ``dsrnngan/models.py`` and
    ``res_block`` in ``blocks.py``: a residual block is two 3x3 convolutions plus a 1x1
    shortcut convolution when the channels change; the fine path (strided) and the coarse
    path (not strided) both run 1 -> 32 -> 64 -> 128 -> 256; the joint stream is
    res_block(512 -> 256), res_block(256); the fine-only stream two res_block(256); each
    ConvGRU has three 3x3 convolutions of 512 -> 256; then dense 512 -> 256 and 256 -> 1.
    Spectral normalisation's ``u`` vectors are not trainable.
    """
    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    def res(cin, cout):
        return conv(3, cin, cout) + conv(3, cout, cout) + (conv(1, cin, cout) if cin != cout else 0)

    widths = [1, 32, 64, 128, 256]
    path = sum(res(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    joint = res(512, 256) + res(256, 256)
    solo = 2 * res(256, 256)
    grus = 2 * 3 * conv(3, 512, 256)
    head = (512 * 256 + 256) + (256 + 1)
    return 2 * path + joint + solo + grus + head


def test_paper_config_has_the_reference_parameter_count():
    cfg = CriticConfig()
    assert cfg.fine_widths == [32, 64, 128, 256]
    assert cfg.coarse_widths == [32, 64, 128, 256]
    c = Critic(cfg)
    n = sum(p.numel() for p in c.parameters() if p.requires_grad)
    assert _reference_critic_parameters() == 15_083_201  # the paper's "15.1 M"
    assert n == _reference_critic_parameters()


def test_paper_preset_builds_the_paper_critic():
    from xstochsr.training.config import from_preset

    c = Critic(from_preset("paper").critic_config())
    assert sum(p.numel() for p in c.parameters() if p.requires_grad) == 15_083_201


def test_coarse_widths_validated_and_stored():
    cfg = CriticConfig(factor=4, width=16, coarse_blocks=2, coarse_widths=[8, 24], dense=8)
    c = Critic(cfg)
    assert c.coarse_path[-1].conv2.conv.out_channels == 24
    assert CriticConfig.from_dict(cfg.to_dict()).coarse_widths == [8, 24]
    with pytest.raises(ModelCardError, match="coarse_widths"):
        CriticConfig(factor=4, coarse_blocks=2, coarse_widths=[8])


def test_old_layout_state_fails_with_checkpoint_error():
    """A critic state from before the paper-matched coarse path (a ``coarse_stem`` conv and
    ``width``-wide coarse blocks) must be refused with a CheckpointError naming the fix."""
    from xstochsr.errors import CheckpointError
    from xstochsr.models.blocks import ReflectConv, ResBlock

    cfg = tiny()
    c = Critic(cfg)
    old = Critic(cfg)
    w = cfg.width
    old.coarse_stem = ReflectConv(cfg.coarse_channels, w, 3, sn=True)
    old.coarse_path = torch.nn.Sequential(
        *[ResBlock(w, w, "leaky", sn=True) for _ in range(cfg.coarse_blocks)])
    old.joint_blocks[0] = ResBlock(cfg.fine_widths[-1] + w, w, "leaky", sn=True)
    with pytest.raises(CheckpointError, match="older xstochsr.*coarse stem.*new training run"):
        c.load_state_dict(old.state_dict())
    other = Critic(CriticConfig.small(4, width=24, dense=16))
    with pytest.raises(CheckpointError, match="sizes differ"):
        c.load_state_dict(other.state_dict())
    c.load_state_dict(Critic(cfg).state_dict())  # same layout loads


def test_config_round_trip_and_errors():
    cfg = tiny(8)
    assert CriticConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelCardError):
        CriticConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(UnsupportedFactorError):
        CriticConfig(factor=3)
    with pytest.raises(ModelCardError):
        CriticConfig(factor=4, fine_widths=[8, 8, 8])


def _batch(factor=4):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 1, 4, 4)
    y = torch.rand(2, 3, 1, 4 * factor, 4 * factor, requires_grad=True)
    return x, y


@pytest.mark.parametrize("cfg", [tiny(), CriticConfig.small(8, width=16, dense=16),
                                 CriticConfig.small(4, width=16, dense=16, spectral_norm=False)],
                         ids=["tiny-x4", "small-x8", "no-sn"])
def test_every_trainable_tensor_gets_a_gradient_from_the_scores(cfg):
    torch.manual_seed(0)
    c = Critic(cfg)
    x, y = _batch(cfg.factor)
    c(x, y).square().mean().backward()
    params = dict(c.named_parameters())
    assert params and all(p.requires_grad for p in params.values())
    dead = [n for n, p in params.items() if p.grad is None or not (p.grad.abs().sum() > 0)]
    assert dead == []


def test_gradient_penalty_reaches_every_weight():
    """Double backward through the critic (what the gradient penalty does).

    Every weight tensor, spectral-norm ones included, gets a non-zero gradient. Exactly two
    tensors legitimately get none, because ``dD/dx`` does not depend on them:
    ``head.2.bias`` adds a constant to each score (no gradient at all), and ``head.0.bias``
    enters ``dD/dx`` only through LeakyReLU's derivative, which is piecewise constant in it
    (gradient exactly zero).
    """
    torch.manual_seed(0)
    c = Critic(tiny())
    x, y = _batch()
    (g,) = torch.autograd.grad(c(x, y).sum(), y, create_graph=True)
    ((g.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    params = dict(c.named_parameters())
    dead = sorted(n for n, p in params.items() if p.grad is None or not (p.grad.abs().sum() > 0))
    assert dead == ["head.0.bias", "head.2.bias"]
    assert params["head.2.bias"].grad is None
    assert torch.count_nonzero(params["head.0.bias"].grad) == 0
    sn_weights = [n for n in params if n.endswith("weight.original")]
    assert len(sn_weights) == sum(1 for m in c.modules()
                                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
