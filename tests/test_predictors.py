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


# --- rain with inputs-only predictors (the wind that steers it) -----------------------------


def rain_and_wind(seed=0, sequences=3, frames=12, n=32):
    """Synthetic rain (mm h-1) beside a wind pair on its grid (``ua`` in m s-1)."""
    from xstochsr.training.data import synthetic_rain

    ds = synthetic_rain(frames=frames, ny=n, nx=n, sequences=sequences, seed=seed)
    w = winds(seed=seed + 1, sequences=sequences, frames=frames, n=n, v_units="m s-1")
    return ds.assign(ua=(ds.precip.dims, w.ua.values, w.ua.attrs),
                     va=(ds.precip.dims, w.va.values, w.va.attrs))


@pytest.fixture(scope="module")
def rain_model(tmp_path_factory):
    """Tiny rain generator seeing the coarse wind; multiplicative layer, fair CRPS."""
    d = tmp_path_factory.mktemp("rainpred")
    return xstochsr.train(rain_and_wind(), var="precip", predictors=["ua", "va"], steps=2,
                          seed=0, checkpoint_dir=d, objective={"crps": 1.0},
                          constraint="multiplicative", constraint_dry=0.1, **TINY)


def test_rain_output_with_wind_predictors_loads_each_in_its_own_transform():
    data = load_training_data(rain_and_wind(), "precip", 4, predictors=["ua", "va"])
    assert (data.channels, data.outputs) == (3, 1) and data.info["rain"]
    assert data.info["units"] is None and data.info["channels"][0]["units"] == "mm h-1"
    spec = fit_transform(data, data.runs, "log_rain")
    assert [p["kind"] for p in spec["channels"]] == ["log_rain", "standardize", "standardize"]
    assert abs(spec["channels"][1]["mean"] - float(data.fine[:, :, 1].mean())) < 0.5
    s = PatchSampler(data, data.runs, spec, patch_size=4, seq_len=3,
                     rng=np.random.default_rng(0), importance_floor=0.1, wet_threshold=0.1)
    b = s.sample(2)  # importance sampled on the rain (channel 0), winds alongside
    assert b.coarse.shape == (2, 3, 3, 4, 4) and b.fine.shape == (2, 3, 1, 16, 16)
    assert float(b.fine.min()) >= 0.0 and float(b.fine.max()) <= 1.0  # log_rain space
    assert float(b.coarse[:, :, 1:].min()) < 0  # winds standardised, not rain-transformed


def test_rain_with_predictors_bad_input():
    ds = rain_and_wind()
    with pytest.raises(InvalidInputError, match="inputs-only predictor must be"):
        load_training_data(ds.assign(pr2=ds.precip), "ua", 4, predictors=["pr2"])
    with pytest.raises(InvalidInputError, match="several outputs"):
        load_training_data(ds, ["precip", "ua"], 4)
    neg = ds.assign(precip=ds.precip - 1.0)
    with pytest.raises(InvalidInputError, match="negative"):
        load_training_data(neg, "precip", 4, predictors=["ua", "va"])


def test_rain_model_card_run_and_dataset_downscale(rain_model, tmp_path):
    m = rain_model
    assert (m.generator.config.in_channels, m.generator.config.out_channels) == (3, 1)
    assert [c["kind"] for c in m.card.transform["channels"]] == ["log_rain", "standardize",
                                                                 "standardize"]
    assert m.card.variables == ["precip"] and [p["name"] for p in m.card.predictors] == [
        "ua", "va"]
    m.save(tmp_path / "w")
    back = xstochsr.load_model(tmp_path / "w")
    coarse = coarse_of(rain_and_wind(seed=4, sequences=None, frames=4))
    ens = coarse.sr.downscale(model=back, factor=4, members=3, seed=1, progress=False)
    assert list(ens.data_vars) == ["precip"] and ens.precip.attrs["units"] == "mm h-1"
    assert float(ens.precip.min()) >= 0.0
    bm = ens.precip.coarsen(y=4, x=4).mean()  # the multiplicative layer keeps block means
    np.testing.assert_allclose(bm.values, np.broadcast_to(coarse.precip.values, bm.shape),
                               rtol=1e-4, atol=1e-4)
    # the wind is seen: turning it around changes the members
    turned = coarse.assign(ua=-coarse.ua, va=-coarse.va)
    other = turned.sr.downscale(model=back, factor=4, members=3, seed=1, progress=False)
    assert float(abs(other.precip - ens.precip).max()) > 0
    with pytest.raises(InvalidInputError, match="negative"):
        coarse.assign(precip=coarse.precip - 5).sr.downscale(model=back, factor=4,
                                                             members=2, progress=False)
    with pytest.raises(InvalidInputError, match="predictors.*add them"):
        coarse.drop_vars("va").sr.downscale(model=back, factor=4, members=2, progress=False)


def test_rain_model_with_predictors_resumes(tmp_path):
    ds = rain_and_wind()
    kw = dict(var="precip", predictors=["ua", "va"], seed=0, objective={"crps": 1.0},
              constraint="multiplicative", constraint_dry=0.1, **TINY)
    first = xstochsr.train(ds, steps=3, checkpoint_dir=tmp_path, **kw)
    assert first.card.transform["channels"][0]["kind"] == "log_rain"
    again = xstochsr.train(ds, steps=4, resume=tmp_path, **{k: v for k, v in kw.items()
                                                            if k != "checkpoint_dir"})
    assert again.card.transform == first.card.transform


def test_command_line_trains_rain_with_predictors(tmp_path):
    from xstochsr.cli import main

    rain_and_wind().to_netcdf(tmp_path / "data.nc")
    sets = [a for k, v in TINY.items() if k not in ("factor", "progress")
            for a in ("--set", f"{k}={v}")]
    assert main(["train", str(tmp_path / "data.nc"), "--var", "precip", "--factor", "4",
                 "--out", str(tmp_path / "out"), "--steps", "1", "--seed", "0",
                 "--no-progress", "--predictor", "ua", "--predictor", "va",
                 "--set", "constraint=multiplicative", *sets]) == 0
    model = xstochsr.load_model(tmp_path / "out" / "precip-x4.safetensors")
    assert [p["name"] for p in model.card.predictors] == ["ua", "va"]
    assert model.generator.config.in_channels == 3


def test_command_line_downscales_a_dataset_for_a_model_with_predictors(rain_model, tmp_path):
    from xstochsr.cli import main

    rain_model.save(tmp_path / "m")
    coarse = coarse_of(rain_and_wind(seed=6, sequences=None, frames=3))
    coarse.to_netcdf(tmp_path / "coarse.nc")
    args = ["downscale", str(tmp_path / "coarse.nc"), str(tmp_path / "ens.nc"), "--members",
            "2", "--seed", "1", "--model", str(tmp_path / "m.safetensors"), "--no-progress"]
    assert main(args) == 0
    want = coarse.sr.downscale(model=rain_model, factor=4, members=2, seed=1, progress=False)
    with xr.open_dataset(tmp_path / "ens.nc") as out:
        assert "precip" in out.data_vars and "ua" not in out.data_vars
        np.testing.assert_allclose(out.precip.values, want.precip.values, rtol=1e-5,
                                   atol=1e-6)
    assert main(args[:2] + [str(tmp_path / "ens.zarr")] + args[3:]) == 2  # refused, named


def test_training_range_of_a_rain_model_ignores_its_wind_predictors(rain_model):
    import copy
    import warnings

    from xstochsr.training_range import OutOfRangeWarning, measure

    coarse = coarse_of(rain_and_wind(seed=7, sequences=None, frames=3))
    m = copy.deepcopy(rain_model)
    m.card.training_range = measure(coarse.precip, source="precip, block means by 4")
    windy = coarse.assign(ua=coarse.ua * 30, va=coarse.va * 30)  # gales: not the range's
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfRangeWarning)
        windy.sr.downscale(model=m, factor=4, members=1, seed=0, progress=False)
    with pytest.warns(OutOfRangeWarning):  # heavier rain than trained on still warns
        coarse.assign(precip=coarse.precip * 50).sr.downscale(model=m, factor=4, members=1,
                                                              seed=0, progress=False)
