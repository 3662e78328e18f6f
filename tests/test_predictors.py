"""Inputs-only predictors: coarse variables a model sees but does not downscale."""

import numpy as np
import pytest
import xarray as xr
from fields import TINY_TRAIN as TINY
from test_joint import coarse_of, winds

import xstochsr
from xstochsr.errors import InvalidInputError, ModelCardError
from xstochsr.models import transforms
from xstochsr.models.base import ModelCard
from xstochsr.training.data import PatchSampler, fit_transform, load_training_data


def with_height(ds, seed=1):
    """``ds`` plus a geopotential height field (its own units, hundreds of metres)."""
    rng = np.random.default_rng(seed)
    z = 5500 + 80 * rng.standard_normal(ds.ua.shape).astype("f4")
    return ds.assign(zg=(ds.ua.dims, z, {"units": "m",
                                         "standard_name": "geopotential_height"}))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Tiny (ua, va) generator taking zg as an inputs-only predictor; additive layer."""
    d = tmp_path_factory.mktemp("pred")
    return xstochsr.train(with_height(winds()), var=["ua", "va"], predictors="zg", steps=2,
                          seed=0, checkpoint_dir=d, objective={"crps": 1.0},
                          constraint="additive", **TINY)


def test_training_data_puts_predictors_last_and_samples_outputs_only():
    data = load_training_data(with_height(winds()), ["ua", "va"], 4, predictors=["zg"])
    assert (data.channels, data.outputs) == (3, 2)
    assert [c["name"] for c in data.info["channels"]] == ["ua", "va"]
    assert data.info["predictors"] == [{"name": "zg", "standard_name": "geopotential_height",
                                        "long_name": None, "units": "m"}]
    spec = fit_transform(data, data.runs, "standardize")
    assert transforms.n_channels(spec) == 3  # the predictor is normalised with its own stats
    assert abs(spec["channels"][2]["mean"] - 5500) < 5
    s = PatchSampler(data, data.runs, spec, patch_size=4, seq_len=3,
                     rng=np.random.default_rng(0))
    b = s.sample(3)
    assert b.coarse.shape == (3, 3, 3, 4, 4) and b.fine.shape == (3, 3, 2, 16, 16)
    assert b.coarse_phys.shape[2] == 3 and b.fine_phys.shape[2] == 2
    # the coarse predictor is the block mean of the fine one, in its own units
    assert 5000 < float(b.coarse_phys[:, :, 2].mean()) < 6000


def test_one_output_with_a_predictor():
    data = load_training_data(with_height(winds()), "ua", 4, predictors=["zg"])
    assert (data.channels, data.outputs) == (2, 1)
    assert data.info["standard_name"] == "eastward_wind"
    assert data.info["units"] is None  # inputs in m s-1 and m: each channel has its own
    with pytest.raises(InvalidInputError, match="needs var="):
        load_training_data(with_height(winds()), None, 4, predictors=["zg"])


def test_trained_model_card_network_and_run(model, tmp_path):
    cfg = model.generator.config
    assert (cfg.in_channels, cfg.out_channels) == (3, 2)
    assert model.card.variables == ["ua", "va"] and model.card.units is None
    assert [p["name"] for p in model.card.predictors] == ["zg"]
    assert [c["name"] for c in model.card.inputs] == ["ua", "va", "zg"]
    model.save(tmp_path / "w")
    back = xstochsr.load_model(tmp_path / "w")
    assert back.card.predictors == model.card.predictors
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(3, 2, (1, 2, 2, 4, 4)),
                        rng.normal(5500, 50, (1, 2, 1, 4, 4))], axis=2).astype("f4")
    y, _ = back.run(x, factor=4, members=[0, 1], seed=3)
    assert y.shape == (2, 1, 2, 2, 16, 16)  # outputs only
    np.testing.assert_allclose(y.reshape(2, 1, 2, 2, 4, 4, 4, 4).mean(axis=(5, 7)),
                               np.broadcast_to(x[:, :, :2], (2, 1, 2, 2, 4, 4)), atol=1e-4)
    with pytest.raises(InvalidInputError, match=r"\['ua', 'va', 'zg'\]"):
        back.run(x[:, :, :2], factor=4, members=[0], seed=3)
    # the predictor changes the members (the network does see it)
    x2 = x.copy()
    x2[:, :, 2] += 300
    y2, _ = back.run(x2, factor=4, members=[0, 1], seed=3)
    assert not np.allclose(y, y2)


def test_dataset_downscale_returns_outputs_and_needs_the_predictor(model):
    coarse = coarse_of(with_height(winds(seed=5, sequences=None, frames=4), seed=2))
    ens = coarse.sr.downscale(model=model, factor=4, members=3, seed=2, progress=False)
    assert list(ens.data_vars) == ["ua", "va"]
    assert ens.ua.shape == (3, 4, 32, 32) and ens.va.attrs["units"] == "cm s-1"
    for v in ("ua", "va"):
        bm = ens[v].coarsen(y=4, x=4).mean()
        np.testing.assert_allclose(bm.values, np.broadcast_to(coarse[v].values, bm.shape),
                                   rtol=1e-5, atol=1e-4 * float(abs(coarse[v]).max()))
    # found by standard_name, converted from other units (km)
    km = coarse.rename(zg="height").assign(height=coarse.zg / 1000)
    km.height.attrs = {"units": "km", "standard_name": "geopotential_height"}
    alt = xstochsr.downscale(km, model=model, factor=4, members=3, seed=2, progress=False)
    for v in ("ua", "va"):
        np.testing.assert_allclose(alt[v].values, ens[v].values, rtol=1e-4,
                                   atol=1e-4 * float(abs(ens[v]).max()))
    with pytest.raises(InvalidInputError, match="predictors.*add them"):
        xstochsr.downscale(coarse.drop_vars("zg"), model=model, factor=4, members=2)
    with pytest.raises(InvalidInputError, match="does not take"):
        xstochsr.downscale(coarse, model=model, variables=["ua", "va", "zg"], members=2)


def test_card_predictors_checked():
    parts = [{"kind": "standardize", "mean": 0.0, "std": 1.0}] * 3
    entry = {"name": "ua", "standard_name": None, "long_name": None, "units": "m s-1"}
    pred = dict(entry, name="zg", units="m")
    ok = ModelCard(name="p", factor=4, transform={"kind": "channels", "channels": parts},
                   channels=[entry, dict(entry, name="va")], predictors=[pred])
    assert ModelCard.from_dict(ok.to_dict()).predictors == [pred]
    assert "predictors" not in ModelCard(name="q").to_dict()  # old cards unchanged
    with pytest.raises(ModelCardError, match="'transform'"):  # 2 parts for 3 inputs
        ModelCard.from_dict({**ok.to_dict(), "transform": {"kind": "channels",
                                                          "channels": parts[:2]}})
    with pytest.raises(ModelCardError, match="predictors"):  # predictors need outputs
        ModelCard.from_dict({**ok.to_dict(), "channels": None})
    with pytest.raises(ModelCardError, match="distinct"):
        ModelCard.from_dict({**ok.to_dict(), "predictors": [dict(pred, name="ua")]})


def test_leading_transform():
    a, b = {"kind": "standardize", "mean": 1.0, "std": 2.0}, {"kind": "identity"}
    spec = {"kind": "channels", "channels": [a, a, b]}
    assert transforms.leading(spec, 2) == {"kind": "channels", "channels": [a, a]}
    assert transforms.leading(spec, 1) == a and transforms.leading(spec, 3) is spec
    assert transforms.leading(a, 1) is a
    with pytest.raises(ModelCardError):
        transforms.leading(spec, 4)


def test_generator_refuses_more_outputs_than_inputs():
    from xstochsr.models.generator import GeneratorConfig

    with pytest.raises(ModelCardError, match="must not exceed"):
        GeneratorConfig.small(factor=4, in_channels=1, out_channels=2)


def test_dataset_path_keeps_xarray_types(model):
    coarse = coarse_of(with_height(winds(seed=8, sequences=2, frames=3)))
    ens = xstochsr.downscale(coarse, model=model, members=2, seed=0, progress=False)
    assert isinstance(ens, xr.Dataset) and "zg" not in ens
    assert ens.ua.dims == ("realization", "sequence", "time", "y", "x")
