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
    assert c.critic_config().coarse_widths == [32, 64, 128, 256]


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


# --- what the training loop actually builds from a preset ---------------------------------
# The checks below build a Trainer and inspect its optimisers and step counts: a preset that
# is wrong, or a loop that ignores one of its settings, fails them. Networks and patches are
# shrunk (those sizes do not touch the optimisation settings under test).

TINY_NETS = dict(gen_width=16, gen_noise_channels=4, gen_encoder_blocks=1, gen_init_blocks=1,
                 critic_width=16, critic_dense=16, critic_coarse_blocks=1,
                 critic_stream_blocks=1, patch_size=2, seq_len=2, batch_size=2, val_every=0,
                 checkpoint_every=0, progress=False, augment=False)

# The paper's optimisation (Leinonen et al. 2021, Sect. IV; /work/shared/design/paper.md):
PAPER = dict(lr=1e-4, betas=(0.5, 0.9), critic_steps=5, steps=25000, weight_decay=1e-4,
             sgd_lr=1e-5, sgd_sequences=50_000, batch=16)


@pytest.fixture(scope="module")
def rain64():
    from xstochsr.training.data import synthetic_rain

    return synthetic_rain(16, 64, 64, seed=0)


def _trainer(ds, preset, tmp_path, **kw):
    from xstochsr.training.loop import Trainer

    factor = PRESETS[preset]["factor"]
    return Trainer(ds, factor=factor, preset=preset, seed=0, checkpoint_dir=tmp_path,
                   overrides={**TINY_NETS, **kw})


def _check_optimizer(opt, kind, lr, weight_decay, betas=None, *, decays=True):
    """``weight_decay`` is the preset's Keras ``l2`` coefficient c: Keras adds c * sum(w^2)
    to the loss, so torch's coupled decay on the regularised kernels must be 2 c
    (xstochsr.training.optim). The critic's kernels are all spectral-normalised, which the
    reference leaves unregularised: ``decays=False`` requires no decay at all there."""
    assert isinstance(opt, kind)
    groups = [g for g in opt.param_groups if g["params"]]
    assert groups
    for g in groups:
        assert g["lr"] == pytest.approx(lr, rel=1e-12)
        if betas is not None:
            assert tuple(g["betas"]) == pytest.approx(betas)
    decayed = [g for g in groups if g["weight_decay"] != 0]
    if not decays:
        assert not decayed, "the critic's spectral-normalised weights must not decay"
        return {id(p) for g in groups for p in g["params"]}
    # which tensors decay is the loop's choice; the strength must be the preset's
    assert decayed, "no parameter group carries the preset's weight decay"
    assert all(g["weight_decay"] == pytest.approx(2 * weight_decay, rel=1e-12)
               for g in decayed)
    assert sum(p.numel() for g in decayed for p in g["params"]) > 0
    return {id(p) for g in groups for p in g["params"]}


def _count_steps(trainer, n):
    """Run ``n`` generator updates; count the critic's and generator's optimiser steps."""

    counts = {"g": 0, "d": 0, "types": []}

    def hook(opt, args, kwargs):
        if opt is trainer.opt_d:
            counts["d"] += 1
        elif opt is trainer.opt_g:
            counts["g"] += 1
            counts["types"].append(type(opt).__name__)

    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(hook)
    try:
        for _ in range(n):
            trainer.train_step()
    finally:
        handle.remove()
    return counts


@pytest.mark.usefixtures("one_thread")
def test_paper_preset_reaches_the_optimisers(rain64, tmp_path):
    import torch

    tr = _trainer(rain64, "paper", tmp_path)
    assert tr.cfg.steps == PAPER["steps"]
    g_ids = _check_optimizer(tr.opt_g, torch.optim.Adam, PAPER["lr"], PAPER["weight_decay"],
                             PAPER["betas"])
    d_ids = _check_optimizer(tr.opt_d, torch.optim.Adam, PAPER["lr"], PAPER["weight_decay"],
                             PAPER["betas"], decays=False)
    assert g_ids == {id(p) for p in tr.G.parameters()}
    assert d_ids == {id(p) for p in tr.D.parameters()}
    counts = _count_steps(tr, 1)
    assert (counts["g"], counts["d"]) == (1, PAPER["critic_steps"])


@pytest.mark.usefixtures("one_thread")
def test_paper_preset_switches_to_sgd_for_the_last_50000_sequences(rain64, tmp_path):
    import torch

    tr = _trainer(rain64, "paper", tmp_path)
    sgd_steps = PAPER["sgd_sequences"] // PAPER["batch"]  # 3,125 generator steps
    switch = PAPER["steps"] - sgd_steps
    tr.step = switch - 1  # jump to just before the switch (a resumed run does the same)
    counts = _count_steps(tr, 2)
    assert counts["types"] == ["Adam", "SGD"]
    assert counts["d"] == 2 * PAPER["critic_steps"]
    _check_optimizer(tr.opt_g, torch.optim.SGD, PAPER["sgd_lr"], PAPER["weight_decay"])
    _check_optimizer(tr.opt_d, torch.optim.SGD, PAPER["sgd_lr"], PAPER["weight_decay"],
                     decays=False)


@pytest.mark.usefixtures("one_thread")
def test_cpu_preset_reaches_the_optimisers(rain64, tmp_path):
    import torch

    want = from_preset("cpu")
    assert want.sgd_steps == 0 and want.critic_steps >= 1
    tr = _trainer(rain64, "cpu", tmp_path)
    _check_optimizer(tr.opt_g, torch.optim.Adam, want.lr_generator, want.weight_decay,
                     want.betas)
    _check_optimizer(tr.opt_d, torch.optim.Adam, want.lr_critic, want.weight_decay, want.betas,
                     decays=False)
    tr.step = want.steps - 2  # no SGD phase in the cpu preset: Adam to the end
    counts = _count_steps(tr, 2)
    assert counts["types"] == ["Adam", "Adam"]
    assert counts["d"] == 2 * want.critic_steps


@pytest.mark.usefixtures("one_thread")
def test_learning_rates_are_not_swapped(rain64, tmp_path):
    tr = _trainer(rain64, "cpu", tmp_path, lr_generator=3e-4, lr_critic=7e-5, critic_steps=3)
    assert {g["lr"] for g in tr.opt_g.param_groups} == {3e-4}
    assert {g["lr"] for g in tr.opt_d.param_groups} == {7e-5}
    assert _count_steps(tr, 1)["d"] == 3
