"""Static fine-resolution predictors in the generator (issue 13): shapes, the old network
unchanged when there are none, and the static field reaching the output."""

import json
from pathlib import Path

import pytest
import torch

import xstochsr
from xstochsr.errors import ModelCardError
from xstochsr.models.base import ModelCard
from xstochsr.models.gan import GANModel, check_architecture
from xstochsr.models.generator import Generator, GeneratorConfig

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(xstochsr.__file__).parent / "data"


def inputs(cfg, b=2, t=3, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((b, t, 1, h, w), generator=g)
    noise = torch.randn((b, t, cfg.noise_channels_total, h, w), generator=g)
    init = torch.randn((b, cfg.noise_channels, h, w), generator=g)
    return x, noise, init


def static_field(cfg, b=2, h=4, w=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((b, cfg.static_channels, cfg.factor * h, cfg.factor * w), generator=g)


@pytest.mark.parametrize("factor,n", [(4, 1), (8, 2)])
def test_shapes_with_static(factor, n):
    cfg = GeneratorConfig.small(factor=factor, width=16, noise_channels=4, static_channels=n)
    g = Generator(cfg)
    x, noise, init = inputs(cfg)
    y, h = g(x, noise, None, init, static=static_field(cfg))
    assert y.shape == (2, 3, 1, 4 * factor, 5 * factor)
    assert h.shape == (2, 16, 4, 5)
    assert len(g.static_inject) == cfg.n_doublings


def test_missing_or_misshapen_static_is_refused():
    cfg = GeneratorConfig.small(factor=4, width=16, noise_channels=4, static_channels=1)
    g = Generator(cfg)
    x, noise, init = inputs(cfg)
    with pytest.raises(ValueError, match="needs static predictors"):
        g(x, noise, None, init)
    with pytest.raises(ValueError, match="needs static predictors"):
        g(x, noise, None, init, static=torch.zeros(2, 1, 8, 10))  # coarse, not fine
    plain = Generator(GeneratorConfig.small(factor=4, width=16, noise_channels=4))
    with pytest.raises(ValueError, match="takes no static"):
        plain(x, noise, None, init, static=torch.zeros(2, 1, 16, 20))


def test_static_channels_zero_is_the_old_network():
    """n = 0: no new parameters, no new card key, and the other modules draw the same
    initial weights with or without static predictors (they are built last)."""
    base = GeneratorConfig.small(factor=4, width=16, noise_channels=4, fine_noise=1)
    assert "static_channels" not in base.to_dict()
    torch.manual_seed(3)
    old = Generator(base)
    torch.manual_seed(3)
    new = Generator(GeneratorConfig.small(factor=4, width=16, noise_channels=4, fine_noise=1,
                                          static_channels=2))
    assert not [k for k in old.state_dict() if "static" in k]
    extra = set(new.state_dict()) - set(old.state_dict())
    assert extra and all(k.startswith("static_") for k in extra)
    for k, v in old.state_dict().items():
        assert torch.equal(v, new.state_dict()[k]), k


def reference_forward(g, x, noise, init):
    """The forward pass as it was before static predictors (fine noise, no constraint)."""
    from torch.nn import functional as F

    cfg = g.config
    b, t, c, hh, ww = x.shape
    h = g.initial_state(x[:, 0], init)
    nz = noise.reshape(b * t, -1, hh, ww)
    fine, i = [], cfg.noise_channels
    for s in range(1, cfg.n_doublings + 1):
        k = cfg.fine_noise_channels(s)
        fine.append(F.pixel_shuffle(nz[:, i:i + k], 2**s))
        i += k
    feat = g.frame_blocks(torch.cat([g.frame_stem(x.reshape(b * t, c, hh, ww)),
                                     nz[:, :cfg.noise_channels]], 1)).reshape(b, t, -1, hh, ww)
    states = []
    for j in range(t):
        h = g.gru(feat[:, j], h)
        states.append(h)
    y = g.decoder[0](torch.stack(states, 1).reshape(b * t, -1, hh, ww))
    for s in range(cfg.n_doublings):
        y = g.decoder[2 + 2 * s](g.decoder[1 + 2 * s](y))
        if cfg.fine_noise:
            y = g.noise_inject[s](y, fine[s])
    return g.out_act(g.head(y)).reshape(b, t, 1, *y.shape[-2:])


@pytest.mark.parametrize("fine_noise", [0, 1])
def test_forward_without_static_is_bit_identical_to_the_old_one(fine_noise):
    cfg = GeneratorConfig.small(factor=4, width=16, noise_channels=4, fine_noise=fine_noise)
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    x, noise, init = inputs(cfg)
    with torch.no_grad():
        y, _ = g(x, noise, None, init)
        ref = reference_forward(g, x, noise, init)
    assert torch.equal(y, ref)


@pytest.mark.parametrize("name", ["rain-x8", "qg-wind-x8"])
def test_shipped_models_load_and_their_cards_are_unchanged(name):
    """The shipped cards carry no ``static`` key; writing one back gives the same JSON
    (the weights file holds the card's digest, so a changed card would not load)."""
    m = xstochsr.load_model(name)
    assert m.card.static is None and m.generator.config.static_channels == 0
    assert not [k for k in m.generator.state_dict() if "static" in k]
    on_disk = json.loads((DATA / f"{name}.json").read_text())
    written = json.loads(m.card.to_json())
    assert "static" not in written and "static" not in on_disk
    assert {k: written[k] for k in on_disk} == on_disk


def test_static_field_changes_the_output_and_gets_gradients():
    cfg = GeneratorConfig.small(factor=4, width=16, noise_channels=4, static_channels=1)
    torch.manual_seed(0)
    g = Generator(cfg)
    x, noise, init = inputs(cfg)
    s1, s2 = static_field(cfg, seed=1), static_field(cfg, seed=2)
    y1, _ = g(x, noise, None, init, static=s1)
    with torch.no_grad():
        y2, _ = g(x, noise, None, init, static=s2)
    assert (y1 - y2).abs().max() > 1e-4
    y1.mean().backward()
    for name, p in g.named_parameters():
        if name.startswith("static_"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["multiplicative", "additive"])
def test_constraint_still_holds_with_static(kind):
    cfg = GeneratorConfig.small(factor=4, width=16, noise_channels=4, static_channels=1,
                                constraint=kind, output_activation="none")
    g = Generator(cfg).eval()
    x, noise, init = inputs(cfg)
    coarse = x * 5.0
    tf = {"kind": "identity"}
    with torch.no_grad():
        y, _ = g(x, noise, None, init, coarse=coarse, transform=tf,
                 static=static_field(cfg))
    means = torch.nn.functional.avg_pool2d(y.reshape(-1, 1, 16, 20), 4).reshape(coarse.shape)
    assert torch.allclose(means, coarse, rtol=1e-4, atol=1e-4)


def test_architecture_and_card_checks():
    arch = GeneratorConfig.small(factor=4, static_channels=2).to_dict()
    assert arch["static_channels"] == 2
    assert check_architecture(arch).static_channels == 2
    with pytest.raises(ModelCardError, match="static_channels"):
        check_architecture({**arch, "static_channels": 99})
    cfg = GeneratorConfig.small(factor=4, width=16, noise_channels=4, static_channels=1)
    with pytest.raises(ModelCardError, match="static predictor"):
        GANModel(Generator(cfg), ModelCard(name="x", units="mm h-1"))  # card lists none
    entry = {"name": "orog", "standard_name": "surface_altitude", "units": "m",
             "mean": 500.0, "std": 300.0, "grid_spacing": None}
    for bad in ({**entry, "std": 0.0}, {**entry, "mean": "high"}, {"mean": 1.0}):
        with pytest.raises(ModelCardError, match="static"):
            ModelCard.from_dict({"name": "x", "static": [bad]})
    assert ModelCard.from_dict({"name": "x", "static": [entry]}).static == [entry]
    assert "static" not in ModelCard(name="x").to_dict()
