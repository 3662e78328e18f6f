"""Several variables at once: training data with a channel axis, joint models, Datasets."""

import numpy as np
import pytest
import xarray as xr
from fields import TINY_TRAIN as TINY

import xstochsr
from xstochsr.api import _jobs
from xstochsr.errors import InvalidInputError, ModelCardError
from xstochsr.joint import Interleaved, match_channels
from xstochsr.models import transforms
from xstochsr.models.base import ModelCard
from xstochsr.training.data import PatchSampler, fit_transform, load_training_data


def winds(seed=0, sequences=3, frames=12, n=32, v_units="cm s-1"):
    """A synthetic (u, v) pair: smooth random fields, v in other units than u."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    shape = (sequences, frames, n, n) if sequences else (frames, n, n)
    dims = ("sequence", "time", "y", "x") if sequences else ("time", "y", "x")
    u = 10 + 5 * gaussian_filter(rng.standard_normal(shape), (0,) * (len(shape) - 2) + (3, 3),
                                 mode="wrap") * 8
    v = -2 + 5 * gaussian_filter(rng.standard_normal(shape), (0,) * (len(shape) - 2) + (3, 3),
                                 mode="wrap") * 8
    scale = 100.0 if v_units == "cm s-1" else 1.0
    coords = {"time": np.datetime64("2001-01-01") + np.arange(frames) * np.timedelta64(6, "h"),
              "y": ("y", (np.arange(n) + 0.5) * 25e3, {"axis": "Y", "units": "m",
                                                       "standard_name": "projection_y_coordinate"}),
              "x": ("x", (np.arange(n) + 0.5) * 25e3, {"axis": "X", "units": "m",
                                                       "standard_name": "projection_x_coordinate"})}
    return xr.Dataset({
        "ua": (dims, u.astype("f4"), {"units": "m s-1", "standard_name": "eastward_wind"}),
        "va": (dims, (v * scale).astype("f4"), {"units": v_units,
                                                 "standard_name": "northward_wind"})},
        coords=coords)


def coarse_of(ds, f=4):
    out = ds.coarsen(y=f, x=f).mean()
    for v in ds.data_vars:
        out[v].attrs = ds[v].attrs
    for c in ("x", "y"):
        out[c].attrs = ds[c].attrs
    return out


@pytest.fixture(scope="module")
def joint_model(tmp_path_factory):
    """A tiny (ua, va) generator with the additive constraint, 2 steps of fair CRPS."""
    d = tmp_path_factory.mktemp("joint")
    return xstochsr.train(winds(), var=["ua", "va"], steps=2, seed=0, checkpoint_dir=d,
                          objective={"crps": 1.0}, constraint="additive", **TINY)


# --- training data --------------------------------------------------------------------------


def test_load_several_variables_stacks_channels_in_pair_units():
    ds = winds()
    data = load_training_data(ds, ["ua", "va"], 4)
    assert data.fine.shape == (3, 12, 2, 32, 32) and data.coarse.shape == (3, 12, 2, 8, 8)
    assert data.channels == 2
    # the northward part comes in the eastward part's units: cm s-1 -> m s-1
    np.testing.assert_allclose(data.fine[:, :, 1], ds.va.values / 100, rtol=1e-6)
    np.testing.assert_allclose(data.coarse[:, :, 0],
                               ds.ua.coarsen(y=4, x=4).mean().values, rtol=1e-5)
    info = data.info
    assert [c["name"] for c in info["channels"]] == ["ua", "va"]
    assert [c["units"] for c in info["channels"]] == ["m s-1", "m s-1"]
    assert info["units"] == "m s-1" and info["variable"] == "ua+va"
    one = load_training_data(ds, ["ua"], 4)  # a one-name list is the one variable
    assert one.fine.ndim == 4 and one.channels == 1


def test_several_variables_bad_input():
    ds = winds()
    with pytest.raises(InvalidInputError, match="share"):
        half = ds.va.isel(x=slice(0, 16)).rename(x="xs")  # on a grid of its own
        load_training_data(ds.assign(va=half), ["ua", "va"], 4)
    with pytest.raises(InvalidInputError, match="precipitation"):
        rain = abs(ds.ua).assign_attrs(units="mm h-1", standard_name="rainfall_rate")
        load_training_data(ds.assign(pr=rain), ["ua", "pr"], 4)
    with pytest.raises(InvalidInputError, match="twice"):
        load_training_data(ds, ["ua", "ua"], 4)
    with pytest.raises(InvalidInputError, match="No variable 'wa'"):
        load_training_data(ds, ["ua", "wa"], 4)
    with pytest.raises(InvalidInputError, match="Dataset"):
        load_training_data(ds.ua, ["ua", "va"], 4)
    with pytest.raises(InvalidInputError, match="units="):
        load_training_data(ds, ["ua", "va"], 4, units="m s-1")


def test_sampler_keeps_variables_of_one_place_together():
    data = load_training_data(winds(), ["ua", "va"], 4)
    runs = [(s, 0, 12) for s in range(3)]
    spec = fit_transform(data, runs, "standardize")
    assert spec["kind"] == "channels" and len(spec["channels"]) == 2
    s = PatchSampler(data, runs, spec, patch_size=4, seq_len=3, rng=np.random.default_rng(0))
    origins = s.draw(5)
    for op in range(8):  # every flip and rotation moves both variables alike
        b = s.assemble(origins, np.full(5, op))
        assert b.coarse.shape == (5, 3, 2, 4, 4) and b.fine.shape == (5, 3, 2, 16, 16)
        blocks = b.fine_phys.reshape(5, 3, 2, 4, 4, 4, 4).mean(axis=(4, 6))
        np.testing.assert_allclose(blocks, b.coarse_phys, atol=1e-4)
    np.testing.assert_allclose(transforms.inverse(b.fine, spec), b.fine_phys, atol=1e-4)


# --- transforms and cards --------------------------------------------------------------------


def test_channels_transform_round_trip_numpy_and_torch():
    import torch

    spec = {"kind": "channels", "channels": [{"kind": "standardize", "mean": 10.0, "std": 5.0},
                                             {"kind": "standardize", "mean": -2.0, "std": 0.5}]}
    x = np.random.default_rng(1).normal(size=(2, 3, 2, 4, 4)).astype("f4")
    y = transforms.forward(x, spec)
    np.testing.assert_allclose(y[:, :, 0], (x[:, :, 0] - 10) / 5, rtol=1e-6)
    np.testing.assert_allclose(y[:, :, 1], (x[:, :, 1] + 2) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(transforms.inverse(y, spec), x, atol=1e-5)
    yt = transforms.forward(torch.from_numpy(x), spec)
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-6)
    with pytest.raises(ModelCardError, match="2, H, W"):
        transforms.forward(x[:, :, :1], spec)
    with pytest.raises(ModelCardError, match="one spec per channel"):
        transforms.forward(x, {"kind": "channels", "channels": []})


def test_card_channels_need_a_matching_transform():
    chans = [{"name": "ua", "standard_name": "eastward_wind", "long_name": None,
              "units": "m s-1"},
             {"name": "va", "standard_name": "northward_wind", "long_name": None,
              "units": "m s-1"}]
    good = {"kind": "channels", "channels": [{"kind": "identity"}, {"kind": "identity"}]}
    card = ModelCard.from_dict({"name": "w", "channels": chans, "transform": good})
    assert card.variables == ["ua", "va"]
    assert "channels" not in ModelCard(name="one").to_dict()  # old cards stay byte-equal
    with pytest.raises(ModelCardError, match="transform"):
        ModelCard.from_dict({"name": "w", "channels": chans, "transform": {"kind": "identity"}})
    with pytest.raises(ModelCardError, match="channels"):
        ModelCard.from_dict({"name": "w", "channels": chans[:1], "transform": good})
    with pytest.raises(ModelCardError, match="distinct"):
        ModelCard.from_dict({"name": "w", "channels": [chans[0], chans[0]], "transform": good})


def test_trained_joint_model_card_and_round_trip(joint_model, tmp_path):
    m = joint_model
    assert m.card.variables == ["ua", "va"] and m.card.units == "m s-1"
    assert m.card.transform["kind"] == "channels"
    cfg = m.generator.config
    assert (cfg.in_channels, cfg.out_channels, cfg.constraint) == (2, 2, "additive")
    m.save(tmp_path / "w")
    back = xstochsr.load_model(tmp_path / "w")
    assert back.card.channels == m.card.channels
    x = np.random.default_rng(0).normal(3, 2, (1, 2, 2, 4, 4)).astype("f4")
    y, _ = back.run(x, factor=4, members=[0, 1], seed=3)
    assert y.shape == (2, 1, 2, 2, 16, 16)
    # the constraint layer holds every block mean of both variables
    np.testing.assert_allclose(y.reshape(2, 1, 2, 2, 4, 4, 4, 4).mean(axis=(5, 7)),
                               np.broadcast_to(x, (2, 1, 2, 2, 4, 4)), atol=1e-4)
    with pytest.raises(InvalidInputError, match=r"\(B, T, 2, H, W\)"):
        back.run(x[:, :, 0], factor=4, members=[0], seed=3)


def test_joint_training_resumes_and_refuses_other_data(tmp_path):
    """A joint run's checkpoint resumes (its transform is one part per variable)."""
    from xstochsr.errors import CheckpointError

    kw = dict(TINY, objective={"crps": 1.0}, constraint="additive")
    xstochsr.train(winds(), var=["ua", "va"], steps=2, seed=0, checkpoint_dir=tmp_path,
                   **kw)
    more = xstochsr.train(winds(), var=["ua", "va"], steps=3, seed=0, resume=tmp_path, **kw)
    assert more.card.training["steps"] == 3
    with pytest.raises(CheckpointError, match="transform 'channels'"):
        xstochsr.train(winds().ua.to_dataset(), var="ua", steps=3, seed=0, resume=tmp_path,
                       **kw)


# --- downscaling a Dataset -------------------------------------------------------------------


def test_dataset_downscale_joint(joint_model):
    coarse = coarse_of(winds(seed=5, sequences=None, frames=4))
    ens = coarse.sr.downscale(model=joint_model, factor=4, members=3, seed=2, progress=False)
    assert isinstance(ens, xr.Dataset) and list(ens.data_vars) == ["ua", "va"]
    assert ens.ua.dims == ("realization", "time", "y", "x") and ens.ua.shape == (3, 4, 32, 32)
    assert ens.va.attrs["units"] == "cm s-1" and ens.ua.attrs["units"] == "m s-1"
    assert ens.va.attrs["standard_name"] == "northward_wind"
    assert ens.attrs["xstochsr_seed"] == 2
    for c in ("x", "y"):  # coordinate attrs (units, axis) survive the stacking
        assert ens[c].attrs["units"] == "m" and ens[c].attrs["axis"] == c.upper()
    # in the input's units, block means equal the coarse input (constraint layer)
    for v in ("ua", "va"):
        bm = ens[v].coarsen(y=4, x=4).mean()
        np.testing.assert_allclose(bm.values, np.broadcast_to(coarse[v].values, bm.shape),
                                   rtol=1e-5, atol=1e-4 * float(abs(coarse[v]).max()))
    # a member is the same field whatever the batch: variables stay together per call
    one = xstochsr.downscale(coarse, model=joint_model, factor=4, members=[1], seed=2,
                             batch_size=1, progress=False)
    for v in ("ua", "va"):
        np.testing.assert_allclose(one[v].sel(realization=1), ens[v].sel(realization=1),
                                   rtol=1e-5, atol=1e-5 * float(abs(ens[v]).max()))


def test_dataset_downscale_finds_channels_by_standard_name(joint_model):
    coarse = coarse_of(winds(seed=6, sequences=2, frames=3, v_units="m s-1"))
    renamed = coarse.rename(ua="u", va="v")
    assert match_channels(renamed, joint_model.card.channels) == ["u", "v"]
    a = xstochsr.downscale(renamed, model=joint_model, members=2, seed=4, progress=False)
    b = xstochsr.downscale(coarse, model=joint_model, members=2, seed=4, progress=False)
    np.testing.assert_array_equal(a.u.values, b.ua.values)
    assert a.u.dims == ("realization", "sequence", "time", "y", "x")


def test_dataset_downscale_bad_input(joint_model):
    coarse = coarse_of(winds(seed=7, sequences=None, frames=3))
    with pytest.raises(InvalidInputError, match="together; pass a Dataset"):
        xstochsr.downscale(coarse.ua, model=joint_model)
    with pytest.raises(InvalidInputError, match="needs 'va'"):
        xstochsr.downscale(coarse.drop_vars("va").assign(w=coarse.ua), model=joint_model)
    with pytest.raises(InvalidInputError, match="does not take"):
        xstochsr.downscale(coarse.assign(t=coarse.ua), model=joint_model,
                           variables=["ua", "va", "t"])
    with pytest.raises(InvalidInputError, match="share one grid"):
        staggered = coarse.va.rename(x="xu").assign_coords(xu=coarse.x.values + 12.5e3)
        xstochsr.downscale(coarse.assign(va=staggered.assign_coords(
            xu=staggered.xu.assign_attrs(coarse.x.attrs))), model=joint_model)
    with pytest.raises(Exception, match="units"):
        xstochsr.downscale(coarse.assign(va=coarse.va.assign_attrs(units="K")),
                           model=joint_model)


# --- plumbing ------------------------------------------------------------------------------


@pytest.mark.parametrize("members,nseq,bsize,group", [
    (3, 8, 5, 2), (4, 6, 1, 3), (1, 10, 64, 2), (5, 4, 7, 1), (2, 12, 4, 4)])
def test_jobs_keep_groups_whole_and_cover_everything(members, nseq, bsize, group):
    ids = list(range(members))
    jobs = _jobs(ids, nseq, bsize, group)
    seen = set()
    for mids, b0, b1 in jobs:
        assert b0 % group == 0 and (b1 - b0) % group == 0
        seen |= {(m, b) for m in mids for b in range(b0, b1)}
    assert seen == {(m, b) for m in ids for b in range(nseq)}


class _Echo(xstochsr.models.base.Downscaler):
    """Returns its (B, T, C, H, W) input repeated, tagged with the sequence index."""

    card = ModelCard(name="echo")

    def run(self, x, *, factor, members, seed, t0=0, batch_offset=0, state=None,
            device="cpu"):
        assert x.ndim == 5
        y = np.repeat(np.repeat(x, factor, -2), factor, -1)[None].repeat(len(members), 0)
        seq = batch_offset + np.arange(x.shape[0])
        return y + 1000 * seq[None, :, None, None, None, None], None


def test_interleaved_rows_round_trip():
    x = np.arange(4 * 2 * 2 * 2, dtype="f4").reshape(4, 2, 2, 2)  # rows: (seq, var) pairs
    y, _ = Interleaved(_Echo(), 2).run(x, factor=2, members=[0], seed=0, batch_offset=6)
    assert y.shape == (1, 4, 2, 4, 4)
    np.testing.assert_array_equal(y[0, :, :, ::2, ::2] % 1000, x)
    np.testing.assert_array_equal(y[0, :, 0, 0, 0] // 1000, [3, 3, 4, 4])  # 6 // 2 = 3
    with pytest.raises(InvalidInputError, match="split"):
        Interleaved(_Echo(), 2).run(x[:3], factor=2, members=[0], seed=0)


def test_a_registered_joint_model_is_chosen_for_a_dataset_not_for_a_dataarray(
        joint_model, monkeypatch):
    """model=None: a Dataset holding a pretrained joint model's variables gets it; a
    single component never does (it cannot run a joint model)."""
    from xstochsr import model_choice
    from xstochsr.models import registry

    names = registry._pretrained_names()
    monkeypatch.setattr(registry, "_pretrained_names", lambda: [*names, "uv-test"])
    real = registry.pretrained_card
    monkeypatch.setattr(registry, "pretrained_card",
                        lambda n: joint_model.card if n == "uv-test" else real(n))
    coarse = coarse_of(winds(seed=7, sequences=1, frames=2, v_units="m s-1"))
    got = model_choice.choose_joint_model(coarse.rename(ua="u", va="v"), None, 4)
    assert got is not None and got[0] == "uv-test"
    assert model_choice.choose_joint_model(coarse, None, 2) is None  # another factor
    assert model_choice.choose_joint_model(coarse, ["ua"], 4) is None  # one variable
    bad = coarse.copy()
    bad["va"].attrs["units"] = "K"
    assert model_choice.choose_joint_model(bad, None, 4) is None
    name, _ = model_choice.choose_model("m s-1", "eastward_wind", "ua", 8)
    assert name != "uv-test"
