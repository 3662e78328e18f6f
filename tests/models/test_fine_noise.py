"""Multi-scale noise in the generator (``GeneratorConfig.fine_noise``, issue 10).

Noise maps injected after each upsampling stage, drawn on the coarse grid and
pixel-shuffled so that every fine noise pixel belongs to one coarse cell. Off by default:
``fine_noise=0`` must be the old network, bit for bit, and the shipped cards must load
unchanged.
"""

import json

import numpy as np
import pytest
import torch
from fields import LEGACY_ARCH, RAIN_TRANSFORM, TINY_TRAIN

import xstochsr
from xstochsr.cli import main as cli_main
from xstochsr.errors import InvalidInputError, ModelCardError
from xstochsr.models import transforms
from xstochsr.models.base import ModelCard
from xstochsr.models.constraints import block_mean
from xstochsr.models.gan import GANModel, check_architecture
from xstochsr.models.generator import Generator, GeneratorConfig
from xstochsr.training.config import TrainConfig, from_preset
from xstochsr.training.data import synthetic_rain
from xstochsr.training.pretrained import init_overrides

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(factor=4, fine_noise=1, **kw):
    base = dict(width=16, noise_channels=4, encoder_blocks=1, init_blocks=1)
    base.update(kw)
    return GeneratorConfig(factor=factor, fine_noise=fine_noise, **base)


def _inputs(cfg, b=2, t=2, hw=(3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t, 1, *hw, generator=g)
    noise = torch.randn(b, t, cfg.noise_channels_total, *hw, generator=g)
    init = torch.randn(b, cfg.noise_channels, *hw, generator=g)
    return x, noise, init


def _old_forward(g, x, noise, init):
    """The generator's forward as it was before fine noise existed (decoder in one call)."""
    b, t, c, hh, ww = x.shape
    h = g.init_blocks(torch.cat([g.init_stem(x[:, 0]), init], 1))
    feat = torch.cat([g.frame_stem(x.reshape(b * t, c, hh, ww)),
                      noise.reshape(b * t, -1, hh, ww)], 1)
    feat = g.frame_blocks(feat).reshape(b, t, -1, hh, ww)
    states = []
    for i in range(t):
        h = g.gru(feat[:, i], h)
        states.append(h)
    y = g.out_act(g.head(g.decoder(torch.stack(states, 1).reshape(b * t, -1, hh, ww))))
    return y.reshape(b, t, 1, *y.shape[-2:])


# --- shapes and the channel count ----------------------------------------------------------
@pytest.mark.parametrize("factor", [2, 4, 8, 16])
@pytest.mark.parametrize("n", [0, 1, 2])
def test_noise_channel_count_and_output_shape(factor, n):
    cfg = _cfg(factor, n, width=8)
    # sum over stages s = 1..log2(f) of 4**s is (4 f**2 - 4) / 3
    assert cfg.noise_channels_total == 4 + n * (4 * factor**2 - 4) // 3
    assert len(Generator(cfg).noise_inject) == (cfg.n_doublings if n else 0)
    if factor > 4:
        return  # the forward pass at 8 and 16 is covered by the shipped models below
    g = Generator(cfg)
    x, noise, init = _inputs(cfg, hw=(2, 3))
    with torch.no_grad():
        y, h = g(x, noise, None, init)
    assert y.shape == (2, 2, 1, 2 * factor, 3 * factor) and h.shape == (2, 8, 2, 3)
    with pytest.raises(ValueError, match="noise_channels_total"):
        g(x, noise[:, :, :-1], None, init)


def test_config_round_trip_and_card_key():
    cfg = _cfg(8, 2)
    d = cfg.to_dict()
    assert d["fine_noise"] == 2 and GeneratorConfig.from_dict(d) == cfg
    assert "fine_noise" not in _cfg(8, 0).to_dict()  # old-style card, unchanged
    assert GeneratorConfig.from_dict(_cfg(8, 0).to_dict()).fine_noise == 0


@pytest.mark.parametrize("bad", [-1, 17, 1.5, True, "1", None])
def test_fine_noise_is_a_bounded_integer(bad):
    arch = _cfg(4, 0).to_dict()
    with pytest.raises(ModelCardError, match="fine_noise"):
        check_architecture({**arch, "fine_noise": bad})
    with pytest.raises(ModelCardError, match="fine_noise"):
        GeneratorConfig.from_dict({**arch, "fine_noise": bad})
    with pytest.raises(InvalidInputError, match="gen_fine_noise"):
        TrainConfig(gen_fine_noise=bad)


def test_fine_noise_needs_coarse_noise_and_mse_gets_none():
    with pytest.raises(ModelCardError, match="noise_channels > 0"):
        _cfg(4, 1, noise_channels=0)
    assert from_preset("cpu", gen_fine_noise=2).generator_config().fine_noise == 2
    assert from_preset("cpu", gen_fine_noise=2, objective="mse").generator_config().fine_noise == 0


# --- locality: each fine noise pixel belongs to one coarse cell -----------------------------
def _reach(lo, hi, stage, n_stages):
    """Fine-output rows a stage-``stage`` pixel interval can influence (conservative).

    Per later stage: bilinear x2 (input p reaches outputs 2p-1..2p+2), then a residual
    block (two 3x3 convolutions: +-2); finally the 3x3 head (+-1).
    """
    for _ in range(stage, n_stages):
        lo, hi = 2 * lo - 1 - 2, 2 * hi + 2 + 2
    return lo - 1, hi + 1


@pytest.mark.parametrize("n", [1, 2])
def test_each_fine_noise_pixel_acts_only_near_its_coarse_cell(n):
    """Perturb one channel of one coarse cell in one stage's group: the output changes at the
    fine pixels under that noise pixel (which pixel_shuffle puts inside the cell's block)
    and nowhere beyond the network's reach from it."""
    factor, hw, (ci, cj) = 4, (6, 6), (2, 3)
    cfg = _cfg(factor, n)
    torch.manual_seed(0)
    g = Generator(cfg).double().eval()
    x, noise, init = (v.double() for v in _inputs(cfg, b=1, t=1, hw=hw))
    with torch.no_grad():
        base, _ = g(x, noise, None, init)
    start = cfg.noise_channels
    for stage in range(1, cfg.n_doublings + 1):
        r = 2**stage
        for k in (0, cfg.fine_noise_channels(stage) - 1, r * r + 1 if n > 1 else 1):
            _, sub = divmod(k, r * r)  # pixel_shuffle: channel k -> map k // r², offset sub
            py, px = ci * r + sub // r, cj * r + sub % r  # at the stage's resolution
            pert = noise.clone()
            pert[0, 0, start + k, ci, cj] += 10.0
            with torch.no_grad():
                y, _ = g(x, pert, None, init)
            d = (y - base)[0, 0, 0].abs()
            up = factor // r  # stage pixel -> up x up output pixels
            own = d[py * up:(py + 1) * up, px * up:(px + 1) * up]
            assert float(own.min()) > 1e-9, (stage, k)
            # its own output pixels lie inside the coarse cell's factor x factor block
            assert ci * factor <= py * up < (ci + 1) * factor
            assert cj * factor <= px * up < (cj + 1) * factor
            ylo, yhi = _reach(py, py, stage, cfg.n_doublings)
            xlo, xhi = _reach(px, px, stage, cfg.n_doublings)
            outside = torch.ones_like(d, dtype=torch.bool)
            outside[max(ylo, 0):yhi + 1, max(xlo, 0):xhi + 1] = False
            assert outside.any() and float(d[outside].max()) == 0.0, (stage, k)
        start += cfg.fine_noise_channels(stage)
    # the stem's coarse noise still reaches the whole domain (through the GRU and decoder)
    pert = noise.clone()
    pert[0, 0, 0, ci, cj] += 10.0
    with torch.no_grad():
        y, _ = g(x, pert, None, init)
    assert float((y - base).abs().max()) > 0


# --- fine_noise=0 is the old network ---------------------------------------------------------
def test_fine_noise_zero_is_the_old_forward_bit_for_bit():
    torch.manual_seed(3)
    g = Generator(_cfg(4, 0)).eval()
    assert not any("noise_inject" in k for k in g.state_dict())
    x, noise, init = _inputs(g.config)
    with torch.no_grad():
        new, _ = g(x, noise, None, init)
        old = _old_forward(g, x, noise, init)
    assert torch.equal(new, old)


def test_zero_scales_give_the_network_without_fine_noise_bit_for_bit():
    torch.manual_seed(5)
    g0 = Generator(_cfg(4, 0)).eval()
    torch.manual_seed(5)
    g1 = Generator(_cfg(4, 1)).eval()
    s0, s1 = g0.state_dict(), g1.state_dict()
    extra = set(s1) - set(s0)
    assert extra == {"noise_inject.0.weight", "noise_inject.1.weight"}
    assert all(torch.equal(s0[k], s1[k]) for k in s0)  # injections are built last
    x, noise, init = _inputs(g1.config)
    with torch.no_grad():
        y1, _ = g1(x, noise, None, init)
        for m in g1.noise_inject:
            m.weight.zero_()
        y1z, _ = g1(x, noise, None, init)
        y0, _ = g0(x, noise[:, :, :4], None, init)
    assert torch.equal(y1z, y0)
    assert not torch.equal(y1, y0)  # the initial scale is not a no-op


def test_old_cards_load_unchanged_and_run_the_old_forward():
    # an architecture from before fine noise (qg-wind-x8's until 2026-12-01; every
    # shipped card has the key now)
    assert "fine_noise" not in LEGACY_ARCH
    cfg = GeneratorConfig.from_dict(dict(LEGACY_ARCH))
    assert cfg.fine_noise == 0 and cfg.noise_channels_total == cfg.noise_channels
    assert cfg.to_dict() == LEGACY_ARCH  # a re-save writes the same card
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    x, noise, init = _inputs(cfg, b=1, t=2, hw=(3, 4), seed=1)
    with torch.no_grad():
        new, _ = g(x, noise, None, init)
        old = _old_forward(g, x, noise, init)
    assert torch.equal(new, old)


# --- constraint, gradients, inference ---------------------------------------------------------
def test_multiplicative_generator_with_fine_noise_keeps_block_means_exact(rng):
    torch.manual_seed(0)
    cfg = _cfg(4, 2, constraint="multiplicative", output_activation="none")
    g = Generator(cfg)
    phys = torch.from_numpy(rng.gamma(0.4, 3.0, size=(2, 3, 1, 5, 5))).float()
    phys[:, :, :, 0] = 0.0
    x = transforms.forward(phys, RAIN_TRANSFORM)
    _, noise, init = _inputs(cfg, b=2, t=3, hw=(5, 5))
    with torch.no_grad():
        y, _ = g(x, noise, None, init, coarse=phys)
    means = block_mean(y.reshape(6, 1, 20, 20).double(), 4).reshape(phys.shape)
    torch.testing.assert_close(means, phys.double(), rtol=2e-6, atol=1e-6)
    assert (y >= 0).all() and (y[..., :4, :] == 0).all()
    fine_only = noise.clone()
    fine_only[:, :, cfg.noise_channels:] = torch.randn_like(fine_only[:, :, cfg.noise_channels:])
    with torch.no_grad():
        y2, _ = g(x, fine_only, None, init, coarse=phys)
    assert float((y2 - y).abs().max()) > 1e-4  # fine noise moves rain inside blocks ...
    means2 = block_mean(y2.reshape(6, 1, 20, 20).double(), 4).reshape(phys.shape)
    torch.testing.assert_close(means2, phys.double(), rtol=2e-6, atol=1e-6)  # ... only


@pytest.mark.parametrize("n", [1, 3])
def test_gradients_reach_every_noise_scale(n):
    torch.manual_seed(0)
    g = Generator(_cfg(4, n))
    x, noise, init = _inputs(g.config)
    y, _ = g(x, noise, None, init)
    (y * torch.randn_like(y)).sum().backward()
    for m in g.noise_inject:
        assert m.weight.grad is not None and torch.isfinite(m.weight.grad).all()
        assert float(m.weight.grad.abs().min()) > 0  # every channel's scale (and map weight)


def _tiny_fine_model():
    torch.manual_seed(0)
    cfg = _cfg(4, 1)
    card = ModelCard(name="tiny-fine", units="mm h-1", standard_name="lwe_precipitation_rate",
                     variable="precip", transform=RAIN_TRANSFORM)
    return GANModel(Generator(cfg), card)


def test_inference_draws_fine_noise_per_member_reproducibly():
    m = _tiny_fine_model()
    assert m.card.architecture["fine_noise"] == 1 and m.stochastic
    x = np.random.default_rng(0).gamma(0.6, 2.0, (1, 3, 4, 5)).astype(np.float32)
    y, _ = m.run(x, factor=4, members=[0, 1], seed=3)
    y1, _ = m.run(x, factor=4, members=[1], seed=3)
    assert y.shape == (2, 1, 3, 16, 20) and np.isfinite(y).all()
    # member 1 alone is member 1 of the pair (to float rounding: batch size changes the
    # convolution kernels' summation order, with or without fine noise)
    np.testing.assert_allclose(y1[0], y[1], rtol=1e-5, atol=1e-5)
    assert float(np.abs(y[0] - y[1]).max()) > 1e-3
    a, state = m.run(x[:, :2], factor=4, members=[0, 1], seed=3)
    b, _ = m.run(x[:, 2:], factor=4, members=[0, 1], seed=3, t0=2, state=state)
    assert np.array_equal(np.concatenate([a, b], 2), y)  # time chunks equal one pass


def test_fine_tuning_keeps_the_pretrained_fine_noise():
    m = _tiny_fine_model()
    assert init_overrides(m, 4, {})["gen_fine_noise"] == 1
    with pytest.raises(InvalidInputError, match="gen_fine_noise"):
        init_overrides(m, 4, {"gen_fine_noise": 0})


# --- training -----------------------------------------------------------------------------
def test_cli_trains_three_steps_with_fine_noise_and_the_model_loads(tmp_path, capsys):
    data = tmp_path / "rain.nc"
    synthetic_rain(24, 32, 32, seed=0).to_netcdf(data)
    sets = []
    for k, v in TINY_TRAIN.items():
        if k not in ("factor", "progress"):
            sets += ["--set", f"{k}={json.dumps(v)}"]
    rc = cli_main(["train", str(data), "--factor", "4", "--out", str(tmp_path / "run"),
                   "--steps", "3", "--seed", "1", "--no-progress", "--name", "fine",
                   "--set", "gen_fine_noise=1", *sets])
    assert rc == 0, capsys.readouterr().err
    m = xstochsr.load_model(tmp_path / "run" / "fine.safetensors")
    assert m.generator.config.fine_noise == 1 and m.card.architecture["fine_noise"] == 1
    assert m.card.training["config"]["gen_fine_noise"] == 1
    assert m.card.training["steps"] == 3
    scales = [mod.weight.detach() for mod in m.generator.noise_inject]
    assert len(scales) == 2
    assert any(not torch.all(s == 0.1) for s in scales)  # the optimiser moved the scales
    coarse = synthetic_rain(3, 8, 8, seed=1, spacing=8000.0)["precip"]
    ens = xstochsr.downscale(coarse, factor=4, members=2, model=m, seed=0)
    assert ens.sizes["realization"] == 2 and ens.sizes["x"] == 32
    assert np.isfinite(ens.values).all()
