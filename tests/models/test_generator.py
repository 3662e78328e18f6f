import numpy as np
import pytest
import torch

from xstochsr.errors import ModelCardError, UnsupportedFactorError
from xstochsr.models.generator import Generator, GeneratorConfig


def test_paper_config_parameter_count():
    # Leinonen et al. (2021) report about 13.6 M parameters (factor 16).
    n = sum(p.numel() for p in Generator(GeneratorConfig(factor=16)).parameters())
    assert 13.5e6 < n < 13.7e6


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
@pytest.mark.parametrize("hw", [(2, 2), (3, 5), (7, 4)])
def test_any_size_any_factor(factor, hw):
    g = Generator(GeneratorConfig(factor=factor, width=16, noise_channels=4,
                                  encoder_blocks=1, init_blocks=1))
    b, t = 2, 3
    x = torch.rand(b, t, 1, *hw)
    with torch.no_grad():
        y, h = g(x, torch.randn(b, t, 4, *hw), None, torch.randn(b, 4, *hw))
    assert y.shape == (b, t, 1, hw[0] * factor, hw[1] * factor)
    assert h.shape == (b, 16, *hw)
    assert float(y.min()) >= 0 and float(y.max()) <= 1  # sigmoid output


def test_state_carry_equals_one_pass():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.small(factor=2, width=16)).eval()
    x, n, i = torch.rand(1, 6, 1, 4, 4), torch.randn(1, 6, 8, 4, 4), torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        full, _ = g(x, n, None, i)
        a, h = g(x[:, :2], n[:, :2], None, i)
        b, _ = g(x[:, 2:], n[:, 2:], h)
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=1e-5, atol=1e-6)


def test_recurrence_uses_past():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.small(factor=2, width=16)).eval()
    x, n, i = torch.rand(1, 3, 1, 4, 4), torch.randn(1, 3, 8, 4, 4), torch.randn(1, 8, 4, 4)
    x2 = x.clone()
    x2[:, 0] = 0.0
    with torch.no_grad():
        y1, _ = g(x, n, None, i)
        y2, _ = g(x2, n, None, i)
    assert not torch.allclose(y1[:, 2], y2[:, 2])  # frame 2 remembers frame 0


def test_config_round_trip_and_errors():
    cfg = GeneratorConfig.small(factor=8)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.upsample_widths == [64, 32, 16]
    with pytest.raises(UnsupportedFactorError, match="powers of two"):
        GeneratorConfig(factor=6)
    with pytest.raises(ModelCardError, match="Unknown generator settings"):
        GeneratorConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ModelCardError, match="upsample_widths needs 3"):
        GeneratorConfig(factor=8, upsample_widths=[8, 8])


def test_deterministic_generator_needs_no_noise():
    g = Generator(GeneratorConfig(factor=2, width=16, noise_channels=0))
    y, _ = g(torch.rand(1, 2, 1, 3, 3))
    assert y.shape == (1, 2, 1, 6, 6) and np.isfinite(y.detach().numpy()).all()
