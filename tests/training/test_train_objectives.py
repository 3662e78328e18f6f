"""Training with the composable objective, the constraint layer, init=, and the guards."""

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

import xstochsr
from xstochsr.errors import (
    CheckpointError,
    InvalidInputError,
    TrainingError,
    UnsupportedFactorError,
)
from xstochsr.training import loop
from xstochsr.training.data import load_training_data, synthetic_rain

TINY = dict(factor=4, gen_width=16, gen_noise_channels=4, gen_encoder_blocks=1,
            gen_init_blocks=1, critic_width=16, critic_dense=16, critic_coarse_blocks=1,
            critic_stream_blocks=1, patch_size=4, seq_len=3, batch_size=4, critic_steps=1,
            split_block=8, val_every=2, val_sequences=4, val_members=3, checkpoint_every=2,
            progress=False, crps_scales=[1, 4])

NOFACTOR = {k: v for k, v in TINY.items() if k != "factor"}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rain():
    return synthetic_rain(24, 32, 32, seed=0)


def test_crps_alone_has_no_critic_and_draws_k_members(rain, tmp_path, monkeypatch):
    seen = []
    real_loss = loop.Trainer._generator_step

    def spy(self):
        orig = self.objective.generator_loss

        def capture(critic, gb):
            seen.append((critic, gb.fake.detach().clone(), gb.fake_phys is not None))
            return orig(critic, gb)

        self.objective.generator_loss = capture
        try:
            return real_loss(self)
        finally:
            self.objective.generator_loss = orig

    monkeypatch.setattr(loop.Trainer, "_generator_step", spy)
    m = xstochsr.train(rain, steps=2, seed=0, objective="crps", ensemble_members=3,
                       checkpoint_dir=tmp_path, **TINY)
    assert len(seen) == 2
    critic, fake, phys = seen[0]
    assert critic is None and phys
    assert fake.shape[:2] == (3, 4)                       # k = 3 members of 4 sequences
    assert not torch.equal(fake[0], fake[1]) and not torch.equal(fake[1], fake[2])
    assert np.isnan(m.history.loss_critic).all()
    assert np.isfinite(m.history.loss_generator).all()
    cfg = m.card.training["config"]
    assert cfg["objective"] == "crps" and cfg["ensemble_members"] == 3
    assert cfg["crps_scales"] == [1, 4] and m.card.training["objective"] == "crps"
    assert m.stochastic and not m.card.name.endswith("-det")
    ck = loop.read_checkpoint(tmp_path)[1]
    assert ck["critic_config"] is None and ck["config"]["objective"] == "crps"


def test_wgan_plus_crps_logs_each_term_and_validates_in_physical_units(rain, tmp_path):
    m = xstochsr.train(rain, steps=2, seed=0, objective={"wgan-gp": 1.0, "crps": 0.5},
                       checkpoint_dir=tmp_path, **TINY)
    h = m.history
    assert np.isfinite(h.loss_critic).all() and np.isfinite(h.loss_crps).all()
    assert np.isfinite(h.loss_wgan_gp).all()
    assert h.attrs["objective"] == "crps+wgan-gp"
    assert h.val_crps.attrs["units"] == "mm h-1"
    assert {"val_wet_crps", "val_wet_rank_ks", "val_wet_outlier_proportion"} <= set(h)
    assert m.card.training["config"]["objective"] == {"crps": 0.5, "wgan-gp": 1.0}


def test_resume_with_another_objective_is_refused(rain, tmp_path):
    xstochsr.train(rain, steps=2, seed=0, objective="crps", checkpoint_dir=tmp_path, **TINY)
    with pytest.raises(CheckpointError, match="objective"):
        xstochsr.train(rain, steps=3, resume=tmp_path, objective="wgan-gp")
    m = xstochsr.train(rain, steps=3, resume=tmp_path, objective={"crps": 1.0})
    assert m.card.training["steps"] == 3


def test_constraint_layer_trained_model_conserves_exactly(rain, tmp_path):
    m = xstochsr.train(rain, steps=2, seed=0, objective={"wgan-gp": 1.0, "crps": 1.0},
                       constraint="multiplicative", checkpoint_dir=tmp_path, **TINY)
    assert m.generator.config.constraint == "multiplicative"
    assert m.card.architecture["constraint"] == "multiplicative"
    assert m.card.training["constraint"] == "multiplicative"
    da = rain["precip"].isel(time=slice(0, 4)).coarsen(y=4, x=4).mean()
    da[:, :2, :2] = 0.0
    ens = da.sr.downscale(model=m, members=3, seed=0)
    assert "conserved" not in ens.attrs["history"]             # nothing rescaled afterwards
    means = ens.coarsen(y=4, x=4).mean().transpose("realization", *da.dims)
    np.testing.assert_allclose(means.values, np.broadcast_to(da.values, means.shape),
                               rtol=3e-5, atol=1e-6)
    assert float(ens.min()) >= 0 and float(abs(ens[:, :, :8, :8]).max()) == 0.0


def test_non_finite_loss_stops_with_training_error_and_keeps_a_finite_checkpoint(
        rain, tmp_path, monkeypatch):
    from xstochsr.training.losses import CRPSLoss

    calls = {"n": 0}
    orig = CRPSLoss.loss

    def bad(self, critic, s):
        calls["n"] += 1
        v = orig(self, critic, s)
        return v * float("nan") if calls["n"] >= 3 else v

    monkeypatch.setattr(CRPSLoss, "loss", bad)
    with pytest.raises(TrainingError, match="loss became nan at step 3") as err:
        xstochsr.train(rain, steps=6, seed=0, objective="crps", checkpoint_dir=tmp_path,
                       **{**TINY, "checkpoint_every": 0, "val_every": 0})
    assert "checkpoint" in str(err.value)
    tensors, meta = loop.read_checkpoint(tmp_path)
    assert meta["step"] == 2
    gen = {k: v for k, v in tensors.items() if k.startswith("generator/")}
    assert gen and all(torch.isfinite(v).all() for v in gen.values())


def test_non_finite_weights_are_never_saved_or_built(rain, tmp_path):
    t = loop.Trainer(rain, None, 4, steps=1, seed=0, checkpoint_dir=tmp_path,
                     overrides={**NOFACTOR, "objective": "crps"})
    with torch.no_grad():
        next(t.G.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingError, match="non-finite"):
        t.save_checkpoint()
    with pytest.raises(TrainingError, match="non-finite"):
        t._t_start = 0.0
        t._build_model(False)
    assert not list(tmp_path.glob("ckpt-*"))


def test_resume_refuses_other_variable_units_or_transform(rain, tmp_path):
    xstochsr.train(rain, steps=2, seed=0, checkpoint_dir=tmp_path, **TINY)
    temp = rain["precip"].copy(data=280.0 + rain["precip"].values)
    temp.attrs = {"units": "K", "standard_name": "air_temperature"}
    temp.name = "precip"
    with pytest.raises(CheckpointError, match="units 'mm h-1'.*transform 'log_rain'"):
        xstochsr.train(temp.to_dataset(), steps=3, resume=tmp_path)


def test_init_fine_tunes_a_pretrained_generator(rain, tmp_path):
    base = xstochsr.train(rain, steps=2, seed=0, objective="crps", constraint="multiplicative",
                          checkpoint_dir=tmp_path / "a", **TINY)
    base.save(tmp_path / "base")
    t = loop.Trainer(rain, None, 4, steps=1, seed=3, init=tmp_path / "base.safetensors",
                     checkpoint_dir=tmp_path / "b",
                     overrides={k: v for k, v in NOFACTOR.items() if not k.startswith("gen_")})
    assert t.gcfg == base.generator.config                    # its config wins
    for k, v in base.generator.state_dict().items():
        assert torch.equal(t.G.state_dict()[k], v)             # its weights are the start
    assert t.cfg.init == "precip-x4" and t.cfg.gen_width == 16
    assert t.spec == base.card.transform
    m = t.run()
    assert m.card.training["init"] == "precip-x4"
    with pytest.raises(UnsupportedFactorError, match="factor=4"):
        xstochsr.train(rain, factor=2, init=tmp_path / "base.safetensors", steps=1)
    with pytest.raises(InvalidInputError, match="contradicts"):
        xstochsr.train(rain, init=tmp_path / "base.safetensors", steps=1,
                       **{**TINY, "gen_width": 32})
    wind = xr.Dataset({"u": rain["precip"].copy(data=rain["precip"].values - 1.0)})
    wind["u"].attrs = {"units": "m s-1", "standard_name": "eastward_wind"}
    with pytest.raises(InvalidInputError, match="not precipitation"):
        xstochsr.train(wind, init=tmp_path / "base.safetensors", steps=1,
                       **{k: v for k, v in TINY.items() if not k.startswith("gen_")})


def test_init_may_change_the_weight_free_constraint_prior(rain, tmp_path):
    base = xstochsr.train(rain, steps=2, seed=0, objective="crps", constraint="multiplicative",
                          checkpoint_dir=tmp_path / "a", **TINY)
    base.save(tmp_path / "base")
    free = {k: v for k, v in NOFACTOR.items() if not k.startswith("gen_")}
    t = loop.Trainer(rain, None, 4, steps=1, seed=3, init=tmp_path / "base.safetensors",
                     checkpoint_dir=tmp_path / "b",
                     overrides={**free, "constraint_prior": "smooth"})
    assert base.generator.config.constraint_prior is None
    assert t.gcfg.constraint_prior == "smooth"                # the one setting changed
    assert dataclasses.replace(t.gcfg, constraint_prior=None) == base.generator.config
    for k, v in base.generator.state_dict().items():
        assert torch.equal(t.G.state_dict()[k], v)             # same weights to start
    m = t.run()
    assert m.generator.config.constraint_prior == "smooth"
    assert m.card.training["init_weights_sha256"] == base.card.weights_sha256
    more = xstochsr.train(rain, steps=2, resume=tmp_path / "b")   # kept through a resume
    assert more.generator.config.constraint_prior == "smooth"
    assert more.card.training["init_weights_sha256"] == base.card.weights_sha256
    with pytest.raises(InvalidInputError, match="does not fit"):
        loop.Trainer(rain, None, 4, steps=1, seed=3, init=tmp_path / "base.safetensors",
                     checkpoint_dir=tmp_path / "c",
                     overrides={**free, "constraint_prior": "nearest"})


def test_a_fifth_of_every_batch_is_zero_sequences(rain):
    from xstochsr.training.data import PatchSampler, fit_transform

    d = load_training_data(rain, factor=4)
    spec = fit_transform(d, d.runs, "log_rain")
    s = PatchSampler(d, d.runs, spec, patch_size=4, seq_len=3,
                     rng=np.random.default_rng(0), zero_batch_fraction=0.2,
                     importance_floor=0.0, wet_threshold=0.1)
    fractions = []
    for _ in range(40):
        b = s.sample(10)
        zero = ~b.fine.reshape(10, -1).any(axis=1)
        assert zero.sum() < 10                                 # never a whole batch
        assert np.array_equal(zero, ~b.fine_phys.reshape(10, -1).any(axis=1))
        fractions.append(zero.mean())
    assert 0.12 < np.mean(fractions) < 0.28


def test_weight_decay_only_where_keras_l2_was(tmp_path, rain):
    from xstochsr.models.critic import Critic, CriticConfig
    from xstochsr.models.generator import Generator, GeneratorConfig
    from xstochsr.training.optim import decayed_parameters, l2_param_groups

    g = Generator(GeneratorConfig.small(4, width=16, noise_channels=4))
    names = {id(p): n for n, p in g.named_parameters()}
    decayed = {names[id(p)] for p in decayed_parameters(g)}
    assert decayed and all(n.endswith("weight") for n in decayed)
    assert all(n.startswith(("init_blocks", "frame_blocks", "decoder")) for n in decayed)
    assert any(n.endswith("shortcut.weight") for n in decayed)   # 1x1 shortcut included
    assert not any(n.startswith(("gru", "head", "init_stem", "frame_stem")) for n in decayed)
    assert decayed_parameters(Critic(CriticConfig.small(4, width=16, dense=16))) == []
    groups = l2_param_groups(g, 1e-4, 1e-4)
    assert groups[0]["weight_decay"] == pytest.approx(2e-4)     # Keras l2(c): gradient 2cw
    assert sum(len(gr["params"]) for gr in groups) == len(list(g.parameters()))


def test_channels_last_is_the_default_and_the_model_comes_back_contiguous(rain, tmp_path):
    from xstochsr.training.config import TrainConfig

    assert TrainConfig().channels_last is True
    m = xstochsr.train(rain, steps=2, seed=0, checkpoint_dir=tmp_path, **TINY)
    assert m.card.training["config"]["channels_last"] is True
    assert all(p.is_contiguous() for p in m.generator.parameters())  # as once loaded
