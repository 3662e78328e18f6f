"""Fine noise with memory in time (``GeneratorConfig.fine_noise_memory``, issue 10).

Fresh fine noise every frame lowered the block-edge ratio but made members' fine structure
forget itself between frames (member lag-1 below the truth's). With memory ``r`` the fine
channels become a stationary AR(1) in time, carried in the state: off by default (old cards
and networks unchanged), exact in its statistics, and still the same member whatever the
time chunking or tiling.
"""

import math

import numpy as np
import pytest
import torch
from fields import RAIN_TRANSFORM, projected_field

import xstochsr
from xstochsr.errors import InvalidInputError, ModelCardError
from xstochsr.models.base import ModelCard
from xstochsr.models.gan import GANModel, check_architecture
from xstochsr.models.generator import Generator, GeneratorConfig
from xstochsr.training.config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(r=0.8, factor=4, **kw):
    base = dict(width=16, noise_channels=4, encoder_blocks=1, init_blocks=1, fine_noise=1,
                fine_noise_memory=r)
    base.update(kw)
    return GeneratorConfig(factor=factor, **base)


def _inputs(cfg, b=2, t=4, hw=(3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t, 1, *hw, generator=g)
    noise = torch.randn(b, t, cfg.noise_channels_total, *hw, generator=g)
    init = torch.randn(b, cfg.noise_channels, *hw, generator=g)
    return x, noise, init


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_memory_is_a_correlation_below_one(bad):
    with pytest.raises(ModelCardError, match="fine_noise_memory"):
        _cfg(bad)
    with pytest.raises(InvalidInputError, match="gen_fine_noise_memory"):
        TrainConfig(gen_fine_noise=1, gen_fine_noise_memory=bad)


def test_memory_needs_fine_noise():
    with pytest.raises(ModelCardError, match="fine_noise > 0"):
        _cfg(0.5, fine_noise=0)
    with pytest.raises(InvalidInputError, match="gen_fine_noise > 0"):
        TrainConfig(gen_fine_noise_memory=0.5)


def test_off_by_default_and_left_out_of_old_cards():
    cfg = _cfg(0.0)
    assert "fine_noise_memory" not in cfg.to_dict()
    assert cfg.state_channels == cfg.width
    on = _cfg(0.7)
    d = on.to_dict()
    assert d["fine_noise_memory"] == 0.7
    assert check_architecture(d) == on
    assert on.state_channels == 16 + 1 * (4 + 16)  # fine maps of stages 1, 2 on the coarse grid
    tc = TrainConfig(gen_fine_noise=1, gen_fine_noise_memory=0.7, gen_width=16,
                     gen_noise_channels=4, factor=4)
    assert tc.generator_config().fine_noise_memory == 0.7


def test_zero_memory_is_the_network_without_it_bit_for_bit():
    """Same parameters, same forward: r = 0 changes nothing, and r > 0 no weights."""
    torch.manual_seed(1)
    g0 = Generator(_cfg(0.0))
    g1 = Generator(_cfg(0.6))
    g1.load_state_dict(g0.state_dict())  # no parameter added by the memory
    x, noise, init = _inputs(g0.config, t=1)
    y0, h0 = g0(x, noise, None, init)
    y1, h1 = g1(x, noise, None, init)  # one frame from no state: n_0 = e_0
    assert torch.equal(y0, y1) and torch.equal(h1[:, :16], h0)
    assert torch.equal(h1[:, 16:], noise[:, 0, 4:])


def test_the_fine_noise_is_an_ar1_with_unit_variance_and_lag1_r():
    g = Generator(_cfg(0.8))
    e = torch.randn(64, 30, g.config.noise_channels_total, 6, 6,
                    generator=torch.Generator().manual_seed(0))
    n, last = g._remember(e, None)
    assert torch.equal(n[:, :, :4], e[:, :, :4])  # the stem's noise is untouched
    f = n[:, :, 4:]
    assert torch.equal(last, f[:, -1])
    torch.testing.assert_close(f[:, 1:] - 0.8 * f[:, :-1],
                               math.sqrt(1 - 0.64) * e[:, 1:, 4:])
    assert abs(float(f.std()) - 1.0) < 0.02  # stationary from the first frame
    lag1 = float((f[:, 1:] * f[:, :-1]).mean() / f.var())
    assert abs(lag1 - 0.8) < 0.02


def test_state_carries_the_noise_so_time_chunks_equal_one_pass():
    torch.manual_seed(2)
    g = Generator(_cfg(0.9, constraint="multiplicative", output_activation="none",
                       constraint_dry=0.1))
    x, noise, init = _inputs(g.config)
    coarse = x * 3
    y, h = g(x, noise, None, init, coarse=coarse)
    assert h.shape == (2, g.config.state_channels, 3, 5)
    ya, ha = g(x[:, :2], noise[:, :2], None, init, coarse=coarse[:, :2])
    yb, hb = g(x[:, 2:], noise[:, 2:], ha, coarse=coarse[:, 2:])
    torch.testing.assert_close(torch.cat([ya, yb], 1), y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hb, h, rtol=1e-5, atol=1e-6)
    # the carried noise matters: the same GRU state with other noise gives another field
    other = torch.cat([ha[:, :16], torch.randn_like(ha[:, 16:])], 1)
    fresh, _ = g(x[:, 2:], noise[:, 2:], other, coarse=coarse[:, 2:])
    with pytest.raises(ValueError, match="state_channels"):
        g(x[:, 2:], noise[:, 2:], ha[:, :16], coarse=coarse[:, 2:])
    assert float((fresh - yb).detach().abs().max()) > 1e-4


def _model(r):
    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=2, width=8, noise_channels=4, encoder_blocks=1, init_blocks=1,
                          fine_noise=1, fine_noise_memory=r)
    card = ModelCard(name="tiny-memory", units="mm h-1", standard_name="lwe_precipitation_rate",
                     variable="precip", transform=RAIN_TRANSFORM)
    return GANModel(Generator(cfg), card)


def test_same_member_whatever_tiles_and_time_chunks():
    field = projected_field(np.random.default_rng(3), nt=4, ny=24, nx=20)
    m = _model(0.9)

    def down(**kw):
        return xstochsr.downscale(field, model=m, seed=4, progress=False, members=2, **kw)

    ref = down()
    for kw in (dict(time_chunk=1), dict(tile=10), dict(tile=12, time_chunk=3)):
        got = down(**kw)
        assert float(abs(got - ref).max()) / float(abs(ref).max()) < 1e-5, kw


def test_memory_keeps_members_fine_structure_from_frame_to_frame():
    """Same network weights: with memory, consecutive frames of a member differ less."""
    field = projected_field(np.random.default_rng(5), nt=6, ny=12, nx=12)
    field[:] = field.isel(time=0).values  # a steady coarse field: only noise changes
    fresh, kept = _model(0.0), _model(0.95)
    kept.generator.load_state_dict(fresh.generator.state_dict())
    for mod in (fresh, kept):  # make the fine noise matter
        for inj in mod.generator.noise_inject:
            inj.weight.data.fill_(2.0)

    def change(m):
        y = xstochsr.downscale(field, model=m, seed=1, progress=False, members=2).values
        return float(np.abs(np.diff(y, axis=1)).mean())

    assert change(kept) < 0.6 * change(fresh)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a GPU machine and none was available here; run on a GPU "
                           "machine: python -m pytest tests/models/test_fine_noise_memory.py "
                           "-k cuda")
def test_cuda_chunked_and_tiled_equals_cpu():
    """The carried noise survives the device: CUDA, tiled, in time chunks = CPU in one pass."""
    field = projected_field(np.random.default_rng(3), nt=4, ny=24, nx=20)
    m = _model(0.9)
    kw = dict(model=m, seed=4, progress=False, members=2)
    ref = xstochsr.downscale(field, **kw)
    got = xstochsr.downscale(field, device="cuda", tile=10, time_chunk=3, **kw)
    assert float(abs(got - ref).max()) / float(abs(ref).max()) < 1e-4
