"""Soft physics terms for wind pairs: vorticity and divergence in the loss."""

import numpy as np
import pytest
import torch
from fields import TINY_TRAIN as TINY

import xstochsr
from xstochsr.errors import InvalidInputError
from xstochsr.training.losses import (
    DivergenceLoss,
    GeneratedBatch,
    KinematicsLoss,
    build_objective,
)
from xstochsr.training.losses.kinematics import vorticity_divergence


def grid(n=16):
    y, x = torch.meshgrid(torch.arange(n, dtype=torch.float64),
                          torch.arange(n, dtype=torch.float64), indexing="ij")
    return y, x


def test_vorticity_divergence_of_analytic_flows():
    y, x = grid()
    z, d = vorticity_divergence(-y, x)  # solid-body rotation: vorticity 2, no divergence
    assert torch.allclose(z, torch.full_like(z, 2.0)) and torch.allclose(d, torch.zeros_like(d))
    z, d = vorticity_divergence(x, y)  # a source: divergence 2, no vorticity
    assert torch.allclose(d, torch.full_like(d, 2.0)) and torch.allclose(z, torch.zeros_like(z))
    z, d = vorticity_divergence(x, -y)  # pure strain: neither
    assert torch.allclose(z, torch.zeros_like(z)) and torch.allclose(d, torch.zeros_like(d))


def streamfunction_winds(shape, seed=0):
    """u = -dpsi/dy, v = dpsi/dx of a random psi: non-divergent for the same differences."""
    g = torch.Generator().manual_seed(seed)
    psi = torch.randn(shape, generator=g, dtype=torch.float64)
    dpdy, dpdx = torch.gradient(psi, dim=(-2, -1))
    return torch.stack([-dpdy, dpdx], dim=-3)


def batch(fake, real, f=4, mask=None):
    b, t, c, h, w = real.shape
    return GeneratedBatch(coarse=torch.zeros(b, t, c, h // f, w // f), real=real, fake=fake,
                          mask=mask, real_phys=real, fake_phys=fake)


def test_kinematics_is_zero_for_the_truth_and_has_no_units():
    real = streamfunction_winds((2, 3, 16, 16)).float()
    fake = torch.stack([real, real + 0.3 * streamfunction_winds((2, 3, 16, 16), 1).float()])
    term = KinematicsLoss()
    assert float(term.loss(None, batch(real[None].repeat(2, 1, 1, 1, 1, 1), real))) < 1e-12
    base = float(term.loss(None, batch(fake, real)))
    assert base > 1e-3
    # scale-free: winds in cm s-1 instead of m s-1 give the same loss
    assert float(term.loss(None, batch(100 * fake, 100 * real))) == pytest.approx(base,
                                                                              rel=1e-4)
    # a block-constant shift of u and v (what the additive layer adds) changes the
    # block-mean vorticity only through the block edges: still a finite loss with gradient
    fake.requires_grad_(True)
    term.loss(None, batch(fake, real)).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_kinematics_ignores_invalid_blocks():
    real = streamfunction_winds((1, 2, 16, 16)).float()
    fake = real[None].repeat(2, 1, 1, 1, 1, 1).clone()
    mask = torch.ones_like(real)
    mask[..., :4, :4] = 0  # the first block is missing in the truth
    fake[..., :4, :4] += 5.0  # members are free there
    term = KinematicsLoss()
    # the error reaches the neighbouring blocks through the centred differences, so
    # only the block itself is exempt: compare with the same error in a valid block
    masked = float(term.loss(None, batch(fake, real, mask=mask)))
    unmasked = float(term.loss(None, batch(fake, real)))
    assert masked < unmasked


def test_divergence_penalty():
    real = streamfunction_winds((2, 2, 16, 16)).float()
    term = DivergenceLoss()
    nondiv = streamfunction_winds((2, 2, 2, 16, 16), seed=3).float()
    assert float(term.loss(None, batch(nondiv, real))) < 1e-10
    y, x = grid()
    source = torch.stack([x, y]).float().expand(2, 2, 2, 2, 16, 16)
    assert float(term.loss(None, batch(source, real))) > 0.1


def test_wind_terms_need_a_wind_pair():
    real = torch.zeros(1, 2, 1, 8, 8)
    with pytest.raises(ValueError, match="wind pair"):
        KinematicsLoss().loss(None, batch(real[None], real))
    obj = build_objective({"crps": 1.0, "kinematics": 1.0, "divergence": 0.5})
    assert obj.needs_physical and obj.members == 2


def winds_ds(seed=0):
    from test_joint import winds

    return winds(seed=seed, v_units="m s-1")


def test_training_with_wind_terms(tmp_path):
    m = xstochsr.train(winds_ds(), var=["ua", "va"], steps=2, seed=0, checkpoint_dir=tmp_path,
                       objective={"crps": 1.0, "kinematics": 1.0, "divergence": 0.1},
                       constraint="additive", **TINY)
    h = m.history
    assert np.isfinite(h["loss_kinematics"].values).all()
    assert np.isfinite(h["loss_divergence"].values).all()
    assert m.card.training["config"]["objective"] == {"crps": 1.0, "divergence": 0.1,
                                                      "kinematics": 1.0}


def test_wind_terms_refuse_one_variable_or_wrong_order(tmp_path):
    ds = winds_ds()
    with pytest.raises(InvalidInputError, match="wind pair"):
        xstochsr.train(ds, var="ua", steps=1, checkpoint_dir=tmp_path,
                       objective={"crps": 1.0, "kinematics": 1.0}, **TINY)
    with pytest.raises(InvalidInputError, match="Reorder"):
        xstochsr.train(ds, var=["va", "ua"], steps=1, checkpoint_dir=tmp_path,
                       objective={"crps": 1.0, "divergence": 1.0}, **TINY)


# --- the streamfunction head -----------------------------------------------------------------


@pytest.mark.parametrize("head,prior", [("streamfunction", None), ("helmholtz", None),
                                        ("streamfunction", "bilinear")])
def test_wind_head_training_conserves_and_streamfunction_is_non_divergent(tmp_path, head, prior):
    from xstochsr.training.losses.kinematics import vorticity_divergence

    m = xstochsr.train(winds_ds(1), var=["ua", "va"], steps=2, seed=0,
                       checkpoint_dir=tmp_path, objective={"crps": 1.0},
                       constraint="additive", gen_wind_head=head, constraint_prior=prior,
                       **TINY)
    cfg = m.generator.config
    assert cfg.wind_head == head and m.generator.head.conv.out_channels == (
        1 if head == "streamfunction" else 2)
    assert m.card.architecture["wind_head"] == head
    x = np.random.default_rng(2).normal(3, 2, (1, 2, 2, 6, 6)).astype("f4")
    y, _ = m.run(x, factor=4, members=[0, 1], seed=1)
    np.testing.assert_allclose(y.reshape(2, 1, 2, 2, 6, 4, 6, 4).mean(axis=(5, 7)),
                               np.broadcast_to(x, (2, 1, 2, 2, 6, 6)), atol=1e-4)
    if head == "streamfunction" and prior is None:  # no divergence inside a block
        _, d = vorticity_divergence(torch.from_numpy(y[..., 0, :, :]).double(),
                                    torch.from_numpy(y[..., 1, :, :]).double())
        d = d.numpy().reshape(2, 1, 2, 6, 4, 6, 4)
        inner = d[..., 1:3, :, 1:3]  # cells whose centred differences stay in the block
        assert np.abs(inner).max() < 1e-4 * np.abs(y).max()


def test_wind_head_settings_are_checked(tmp_path):
    from xstochsr.models.generator import GeneratorConfig

    with pytest.raises(InvalidInputError, match="additive"):
        xstochsr.train(winds_ds(), var=["ua", "va"], steps=1, checkpoint_dir=tmp_path,
                       gen_wind_head="streamfunction", **TINY)
    with pytest.raises(InvalidInputError, match="one variable"):
        xstochsr.train(winds_ds(), var="ua", steps=1, checkpoint_dir=tmp_path,
                       constraint="additive", gen_wind_head="streamfunction", **TINY)
    with pytest.raises(Exception, match="wind_head"):
        GeneratorConfig(factor=4, in_channels=2, out_channels=2, width=16, noise_channels=4,
                        output_activation="none", constraint=None, wind_head="streamfunction")
    old = GeneratorConfig(factor=4, width=16, noise_channels=4).to_dict()
    assert "wind_head" not in old  # cards of other models stay as they were
