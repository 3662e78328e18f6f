import pytest

from xstochsr.errors import InvalidInputError
from xstochsr.training.config import PRESETS, TrainConfig, from_preset


def test_paper_preset_has_the_papers_numbers():
    c = from_preset("paper")
    assert (c.factor, c.patch_size, c.seq_len, c.batch_size) == (16, 8, 8, 16)
    assert (c.lr_generator, c.lr_critic, c.betas) == (1e-4, 1e-4, (0.5, 0.9))
    assert (c.critic_steps, c.gp_weight, c.weight_decay) == (5, 10.0, 1e-4)
    assert (c.steps, c.sgd_steps, c.sgd_lr) == (25000, 3125, 1e-5)
    assert c.zero_batch_fraction == 0.2 and c.target_smoothing == 0.65
    g = c.generator_config()
    assert g.width == 256 and g.noise_channels == 8 and g.upsample_widths == [256, 128, 64, 32]
    assert c.critic_config().fine_widths == [32, 64, 128, 256]


def test_cpu_preset_is_small():
    c = from_preset("cpu")
    assert c.preset == "cpu" and c.factor == 8
    assert c.gen_width < 256 and c.batch_size <= 8


def test_overrides_and_none():
    c = from_preset("cpu", steps=None, batch_size=2, betas=[0.1, 0.2])
    assert c.steps == PRESETS["cpu"]["steps"] and c.batch_size == 2 and c.betas == (0.1, 0.2)


def test_unknown_key_suggests():
    with pytest.raises(InvalidInputError, match="did you mean 'batch_size'"):
        from_preset("cpu", batchsize=4)
    with pytest.raises(InvalidInputError, match="Unknown preset"):
        from_preset("gpu")


def test_invalid_values():
    with pytest.raises(InvalidInputError):
        from_preset("cpu", objective="l1")
    with pytest.raises(InvalidInputError):
        from_preset("cpu", val_fraction=1.5)


def test_round_trip_and_mse_generator():
    c = from_preset("cpu", objective="mse")
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert c.generator_config().noise_channels == 0
    with pytest.raises(InvalidInputError):
        c.replace(nope=1)
