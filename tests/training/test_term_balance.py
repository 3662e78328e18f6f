"""term_balance="adaptive": the adversarial weight that keeps the CRPS's gradient share.

A hand-built case with closed-form gradients (a linear head, a linear critic and a
squared error), the same invariance on the real networks and terms, the config guards,
and a short training run that logs ``adv_weight``, saves, loads and refuses a resume
with another balance.
"""

import numpy as np
import pytest
import torch
from fields import TINY_TRAIN as TINY

import xstochsr
from xstochsr.errors import CheckpointError, InvalidInputError
from xstochsr.models.critic import Critic, CriticConfig
from xstochsr.models.gan import GANModel
from xstochsr.models.generator import Generator, GeneratorConfig
from xstochsr.training.config import TrainConfig
from xstochsr.training.data import synthetic_rain
from xstochsr.training.losses import (
    ADAPTIVE_EPS,
    WGANGP,
    CRPSLoss,
    GeneratedBatch,
    Objective,
    adaptive_weight,
    build_objective,
)

pytestmark = pytest.mark.usefixtures("one_thread")

MIXED = {"wgan-gp": 1.0, "crps": 1.0}


# --- a hand-built case: y = W h, h = tanh(V z); critic a * y; other term (y - t)^2 / 2 ----
class _Adv:
    adversarial = True

    def loss(self, critic, s):
        return -critic(s.fake).sum()


class _Sq:
    adversarial = False

    def __init__(self, target):
        self.target = target

    def loss(self, critic, s):
        return 0.5 * ((s.fake - self.target) ** 2).sum()


def _tiny(seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(3, generator=g)
    v = torch.randn(4, 3, generator=g).requires_grad_(True)
    w = torch.randn(1, 4, generator=g).requires_grad_(True)
    return z, v, w


def _loss_and_grads(balance, scale, w_adv=0.7, w_sq=2.0, target=3.0):
    z, v, w = _tiny()
    h = torch.tanh(v @ z)
    y = w @ h                                                      # (1,)
    s = GeneratedBatch(coarse=z, real=torch.tensor([target]), fake=y)
    obj = Objective({"sq": (_Sq(target), w_sq), "adv": (_Adv(), w_adv)}, balance=balance)
    total, logs = obj.generator_loss(lambda f: scale * f, s, last_layer=w)
    gw, gv = torch.autograd.grad(total, (w, v))
    return total, logs, gw, gv, (h.detach(), float(y.detach()))


def test_adaptive_weight_is_the_closed_form_ratio_of_gradient_norms():
    w_adv, w_sq, target, scale = 0.7, 2.0, 3.0, 5.0
    _, logs, _, _, (h, y) = _loss_and_grads("adaptive", scale, w_adv, w_sq, target)
    # d/dW of w_sq (y - t)^2 / 2 = w_sq (y - t) h ; d/dW of -a y = -a h
    g_other = abs(w_sq * (y - target)) * float(h.norm())
    g_adv = scale * float(h.norm())
    expected = w_adv * g_other / (g_adv + ADAPTIVE_EPS)
    assert logs["adv_weight"] == pytest.approx(expected, rel=1e-5)
    assert logs["loss_sq"] == pytest.approx(0.5 * (y - target) ** 2, rel=1e-5)
    assert logs["loss_adv"] == pytest.approx(-scale * y, rel=1e-5)


@pytest.mark.parametrize("factor", [10.0, 1000.0])
def test_adaptive_gradient_is_invariant_to_the_critic_scale_and_fixed_is_not(factor):
    _, _, gw1, gv1, _ = _loss_and_grads("adaptive", 1.0)
    _, logs, gw, gv, _ = _loss_and_grads("adaptive", factor)
    torch.testing.assert_close(gw, gw1, rtol=1e-3, atol=1e-6)    # the last layer
    torch.testing.assert_close(gv, gv1, rtol=1e-3, atol=1e-6)    # and the layer before
    _, _, fw1, _, _ = _loss_and_grads("fixed", 1.0)
    _, flogs, fw, _, _ = _loss_and_grads("fixed", factor)
    assert "adv_weight" not in flogs
    assert not torch.allclose(fw, fw1, rtol=0.1)                 # fixed: the critic wins
    # the adversarial part of the adaptive gradient: w_adv times the other's norm
    _, _, gsq, _, (h, y) = _loss_and_grads("adaptive", factor, w_adv=1e-30)
    adv_part = gw - gsq
    assert float(adv_part.norm() / gsq.norm()) == pytest.approx(0.7, rel=1e-3)


def test_adaptive_weight_is_clamped_and_detached():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    big = adaptive_weight(1e-12 * w.sum(), 1e3 * w.sum(), w)   # ratio 1e3 / 1e-4 > 1e4
    assert float(big) == 1e4 and not big.requires_grad
    none = adaptive_weight(w.sum(), 0.0 * w.sum(), w)
    assert float(none) == 0.0


def _real_case(scale, balance, seed=0):
    """Return (||adversarial part|| / ||CRPS part|| of the head's gradient, ||g_adv||)."""
    torch.manual_seed(seed)
    gen = Generator(GeneratorConfig.small(4, width=16, noise_channels=4))
    critic = Critic(CriticConfig.small(4, width=16, dense=16)).requires_grad_(False)
    k, b, t = 2, 2, 3
    c = torch.rand(b, t, 1, 4, 4)
    real = torch.rand(b, t, 1, 16, 16)
    noise = torch.randn(k * b, t, 4, 4, 4)
    init = torch.randn(k * b, 4, 4, 4)
    fake, _ = gen(c.repeat(k, 1, 1, 1, 1), noise, None, init)
    fake = fake.reshape(k, b, *fake.shape[1:])
    s = GeneratedBatch(coarse=c, real=real, fake=fake)
    obj = build_objective(MIXED, ensemble_members=k, crps_scales=[1, 4], crps_space="network",
                          term_balance=balance)
    head = gen.head.conv.weight

    def scaled(cc, ff):
        return scale * critic(cc, ff)

    total, logs = obj.generator_loss(scaled, s, last_layer=head)
    (g_total,) = torch.autograd.grad(total, head, retain_graph=True)
    (g_crps,) = torch.autograd.grad(CRPSLoss([1, 4], physical=False).loss(None, s), head,
                                    retain_graph=True)
    (g_adv,) = torch.autograd.grad(WGANGP().loss(scaled, s), head)
    return float((g_total - g_crps).norm() / g_crps.norm()), float(g_adv.norm())


def test_real_terms_keep_the_adversarial_share_whatever_the_critic_scale():
    share, n_adv = {}, {}
    for a in (1.0, 10.0, 1000.0):
        share[a], n_adv[a] = _real_case(a, "adaptive")
        # w_adv = 1: the adversarial gradient at the head has the CRPS's norm (up to eps)
        assert share[a] == pytest.approx(n_adv[a] / (n_adv[a] + ADAPTIVE_EPS), rel=1e-4)
    assert n_adv[1000.0] == pytest.approx(1000 * n_adv[1.0], rel=1e-4)
    assert share[1000.0] == pytest.approx(1.0, rel=1e-4)
    assert share[10.0] == pytest.approx(share[1000.0], rel=1e-2)
    fixed = {a: _real_case(a, "fixed")[0] for a in (1.0, 1000.0)}
    assert fixed[1000.0] / fixed[1.0] == pytest.approx(1000.0, rel=1e-2)


@pytest.mark.parametrize("objective", ["crps", "wgan-gp", {"wgan-gp": 2.0}, "mse"])
def test_adaptive_without_both_kinds_of_term_is_refused(objective):
    with pytest.raises(InvalidInputError, match="term_balance='fixed'"):
        TrainConfig(objective=objective, term_balance="adaptive")
    TrainConfig(objective=objective, term_balance="fixed")


def test_unknown_balance_is_refused_and_adaptive_needs_the_last_layer():
    with pytest.raises(InvalidInputError, match="term_balance must be one of"):
        TrainConfig(objective=MIXED, term_balance="auto")
    obj = TrainConfig(objective=MIXED, term_balance="adaptive").build_objective()
    assert obj.balance == "adaptive"
    s = GeneratedBatch(coarse=torch.zeros(1), real=torch.zeros(1), fake=torch.zeros(2, 1))
    with pytest.raises(ValueError, match="last_layer"):
        obj.generator_loss(None, s)


def test_train_refuses_adaptive_for_crps_alone_before_loading_data(tmp_path):
    with pytest.raises(InvalidInputError, match="no adversarial term"):
        xstochsr.train(None, steps=1, objective="crps", term_balance="adaptive",
                       checkpoint_dir=tmp_path, **TINY)


@pytest.fixture(scope="module")
def rain():
    return synthetic_rain(24, 32, 32, seed=0)


def test_adaptive_training_logs_adv_weight_saves_loads_and_guards_resume(rain, tmp_path):
    m = xstochsr.train(rain, steps=3, seed=0, objective=MIXED, term_balance="adaptive",
                       checkpoint_dir=tmp_path / "ck", **TINY)
    h = m.history
    assert h.adv_weight.sizes["step"] == 3
    assert np.isfinite(h.adv_weight).all() and (h.adv_weight > 0).all()
    assert len(np.unique(h.adv_weight.values)) > 1           # recomputed every step
    assert np.isfinite(h.loss_crps).all() and np.isfinite(h.loss_wgan_gp).all()
    assert m.card.training["config"]["term_balance"] == "adaptive"
    m.save(tmp_path / "model")
    m2 = GANModel.load(tmp_path / "model")
    assert m2.card.training["config"]["term_balance"] == "adaptive"
    for k, v in m.generator.state_dict().items():
        torch.testing.assert_close(m2.generator.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="term_balance='adaptive'"):
        xstochsr.train(rain, steps=4, resume=tmp_path / "ck", term_balance="fixed")
    r = xstochsr.train(rain, steps=4, resume=tmp_path / "ck", term_balance="adaptive")
    assert r.history.adv_weight.sizes["step"] == 4
    np.testing.assert_array_equal(r.history.adv_weight.values[:3], h.adv_weight.values)


def test_fixed_checkpoint_resumed_as_adaptive_is_refused(rain, tmp_path):
    xstochsr.train(rain, steps=1, seed=0, objective=MIXED, checkpoint_dir=tmp_path,
                   **{**TINY, "val_every": 0})
    with pytest.raises(CheckpointError, match="term_balance='fixed'"):
        xstochsr.train(rain, steps=2, resume=tmp_path, term_balance="adaptive")


def test_adaptive_with_constraint_and_bf16_autocast_trains(rain, tmp_path):
    m = xstochsr.train(rain, steps=2, seed=0, objective=MIXED, term_balance="adaptive",
                       constraint="multiplicative", amp=True, checkpoint_dir=tmp_path,
                       **{**TINY, "val_every": 0})
    assert m.generator.config.constraint == "multiplicative"
    assert np.isfinite(m.history.adv_weight).all() and (m.history.adv_weight > 0).all()
    assert all(torch.isfinite(v).all() for v in m.generator.state_dict().values())


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a GPU machine and none was available here; run on a GPU "
                           "machine: python -m pytest tests/training/test_term_balance.py -k cuda")
def test_cuda_adaptive_training_with_bf16(rain, tmp_path):
    m = xstochsr.train(rain, steps=2, seed=0, objective=MIXED, term_balance="adaptive",
                       amp=True, device="cuda", checkpoint_dir=tmp_path,
                       **{**TINY, "val_every": 0})
    assert m.card.training["hardware"]["device"].startswith("cuda")
    assert np.isfinite(m.history.adv_weight).all() and (m.history.adv_weight > 0).all()
