"""downscale(precision=): bfloat16 autocast where native and checked, float32 otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fields import projected_field, tiny_model

import xstochsr
from xstochsr import precision
from xstochsr.errors import InvalidInputError


@pytest.fixture(scope="module")
def field():
    return projected_field(np.random.default_rng(5), nt=2, ny=12, nx=10)


def _down(da, model, **kw):
    return xstochsr.downscale(da, model=model, members=2, seed=3, progress=False, **kw)


def test_auto_is_float32_without_a_check_on_the_card(field):
    m = tiny_model(factor=4)
    assert not precision.checked_bf16(m)
    ens = _down(field, m)
    assert ens.attrs["xstochsr_precision"] == "float32"
    np.testing.assert_array_equal(ens.values, _down(field, m, precision="float32").values)


def test_auto_follows_hardware_and_card(field, monkeypatch):
    m = tiny_model(factor=4)
    m.card.scores = {"precision": {"bfloat16_ok": True}}
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": (False, "test"))
    assert precision.resolve("auto", "cpu", m) == "float32"
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": (True, "test"))
    assert precision.resolve("auto", "cpu", m) == "bfloat16"
    m.card.scores = {"precision": {"bfloat16_ok": False}}
    assert precision.resolve("auto", "cpu", m) == "float32"


def test_bfloat16_really_runs_in_bfloat16_and_stays_close(field):
    m = tiny_model(factor=4)
    seen = []
    hook = m.generator.register_forward_hook(lambda mod, a, out: seen.append(
        (out[0] if isinstance(out, tuple) else out).dtype))
    try:
        ref = _down(field, m, precision="float32")
        n = len(seen)
        bf = _down(field, m, precision="bfloat16")
    finally:
        hook.remove()
    assert bf.attrs["xstochsr_precision"] == "bfloat16"
    assert bf.dtype == np.float32 and bf.shape == ref.shape
    assert not np.array_equal(bf.values, ref.values)       # not a no-op
    rel = float(abs(bf - ref).max()) / float(abs(ref).max())
    assert rel < 0.05, rel                                   # bf16 has 8 bits of mantissa
    assert len(seen) > n


def test_bfloat16_keeps_a_constraint_layer_exact(field):
    from xstochsr.grid import coarsen_field
    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=2, width=8, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, constraint="multiplicative",
                          output_activation="none")
    from fields import RAIN_TRANSFORM

    card = ModelCard(name="tiny-c", units="mm h-1", standard_name="lwe_precipitation_rate",
                     variable="precip", transform=RAIN_TRANSFORM)
    m = GANModel(Generator(cfg), card)
    ens = _down(field, m, precision="bfloat16")
    back = coarsen_field(ens, 2)
    np.testing.assert_allclose(back.values, np.broadcast_to(field.values, back.shape),
                               rtol=1e-3, atol=1e-4)


def test_baselines_ignore_it(field):
    ens = _down(field, "bilinear", precision="bfloat16")
    assert "xstochsr_precision" not in ens.attrs


def test_bad_precision_names_the_choices(field):
    with pytest.raises(InvalidInputError, match="float32"):
        _down(field, tiny_model(factor=4), precision="fp16")


@pytest.mark.hardware_bf16
def test_native_detection_reads_the_hardware():
    native, why = precision.native_bf16("cpu")
    assert isinstance(native, bool) and why
    if torch.cuda.is_available():
        major, _ = torch.cuda.get_device_capability()
        assert precision.native_bf16("cuda")[0] == (major >= 8)
    else:
        assert precision.native_bf16("cuda") == (False, "no CUDA device")
