"""xstochsr.train(ds, static=...): patches, normalisation, card and downscale (issue 13)."""

import numpy as np
import pytest
import xarray as xr
from fields import TINY_TRAIN as TINY

import xstochsr
from xstochsr.errors import StaticFieldError
from xstochsr.models import transforms
from xstochsr.training.data import PatchSampler, load_training_data, synthetic_rain

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rain():
    return synthetic_rain(24, 32, 32, seed=0)


def topo_like(ds, seed=0):
    r = np.random.default_rng(seed)
    z = np.add.outer(np.linspace(0, 1200, ds.sizes["y"]), np.linspace(0, 400, ds.sizes["x"]))
    z = z + r.uniform(0, 100, z.shape)
    return xr.DataArray(z, dims=("y", "x"), coords={"y": ds.y, "x": ds.x},
                        name="surface_altitude",
                        attrs={"units": "m", "standard_name": "surface_altitude"})


def test_patches_cut_static_at_the_target_window_with_the_same_symmetries(rain):
    """A field constant in time equal to the static field: every patch's static channel,
    un-normalised, is its target, whatever the window, rotation and flip."""
    topo = topo_like(rain)
    still = rain.precip.copy(data=np.broadcast_to(topo.values.astype(np.float32),
                                                  rain.precip.shape).copy())
    still.attrs = {"units": "m", "long_name": "not rain"}
    data = load_training_data(still, factor=4, rain=False, static=topo)
    (entry,) = data.info["static"]
    assert entry["mean"] == pytest.approx(float(topo.mean()))
    assert entry["std"] == pytest.approx(float(topo.std()))
    assert entry["units"] == "m" and entry["standard_name"] == "surface_altitude"
    assert entry["grid_spacing"] == {"value": 2000.0, "units": "m"}
    sampler = PatchSampler(data, data.runs, transforms.fit(np.empty(0), "identity"),
                           patch_size=3, seq_len=2, rng=np.random.default_rng(0), augment=True)
    origins = sampler.draw(16)
    ops = np.arange(16) % 8
    b = sampler.assemble(origins, ops)
    assert b.static.shape == (16, 1, 12, 12)
    back = b.static[:, 0] * entry["std"] + entry["mean"]
    np.testing.assert_allclose(back, b.fine_phys[:, 0, 0], rtol=1e-5, atol=1e-3)


def test_train_with_static_records_the_card_and_downscales(rain, tmp_path):
    topo = topo_like(rain)
    m = xstochsr.train(rain, steps=3, seed=1, checkpoint_dir=tmp_path, static=topo, **TINY)
    assert m.generator.config.static_channels == 1
    (entry,) = m.card.static
    assert entry["name"] == "surface_altitude" and entry["units"] == "m"
    assert entry["mean"] == pytest.approx(float(topo.mean()))
    coarse = rain.precip.isel(time=slice(0, 4)).coarsen(y=4, x=4).mean()
    coarse.attrs.update(rain.precip.attrs)
    a = xstochsr.downscale(coarse, model=m, members=2, seed=0, static=topo)
    b = xstochsr.downscale(coarse, model=m, members=2, seed=0,
                           static=topo[::-1].assign_coords(y=topo.y))
    assert a.shape == (2, 4, 32, 32) and np.isfinite(a).all()
    assert float(abs(a - b).max()) > 1e-4  # the trained model listens to the terrain
    m.save(tmp_path / "m")
    back = xstochsr.load_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(
        xstochsr.downscale(coarse, model=back, members=2, seed=0, static=topo).values, a.values)
    with pytest.raises(StaticFieldError):
        xstochsr.downscale(coarse, model=m, members=2, seed=0)


def test_per_sequence_static_by_name(tmp_path):
    """static="surface_altitude" names a (sequence, y, x) variable of the training Dataset."""
    a, b = synthetic_rain(16, 32, 32, seed=0), synthetic_rain(16, 32, 32, seed=1)
    ds = xr.concat([a, b], dim="sequence")
    ds["surface_altitude"] = xr.concat([topo_like(a, 0), topo_like(a, 1) * 2], dim="sequence")
    data = load_training_data(ds, "precip", factor=4, static="surface_altitude")
    assert data.static.shape == (2, 1, 32, 32)
    assert not np.allclose(data.static[0], data.static[1])
    m = xstochsr.train(ds, "precip", steps=2, seed=0, checkpoint_dir=tmp_path,
                       static="surface_altitude", **{**TINY, "val_every": 0})
    assert m.card.static[0]["name"] == "surface_altitude"
    with pytest.raises(StaticFieldError, match="names no variable"):
        load_training_data(ds, "precip", factor=4, static="orography")


def test_bad_training_static_is_refused(rain):
    topo = topo_like(rain)
    with pytest.raises(StaticFieldError, match="NaN"):
        load_training_data(rain, factor=4, static=topo.where(topo.x > 5000))
    with pytest.raises(StaticFieldError, match="constant"):
        load_training_data(rain, factor=4, static=topo * 0 + 3)


def test_resume_with_static_equals_uninterrupted(rain, tmp_path):
    import torch

    topo = topo_like(rain)
    a = xstochsr.train(rain, steps=6, seed=2, checkpoint_dir=tmp_path / "a", static=topo,
                       **TINY)
    b = xstochsr.train(rain, steps=6, resume=tmp_path / "a" / "ckpt-0000003.json",
                       checkpoint_dir=tmp_path / "b", progress=False, static=topo)
    for k, v in a.generator.state_dict().items():
        assert torch.equal(v, b.generator.state_dict()[k]), k
    assert b.card.static == a.card.static
    from xstochsr.errors import CheckpointError

    with pytest.raises(CheckpointError, match="static"):
        xstochsr.train(rain, steps=6, resume=tmp_path / "a" / "ckpt-0000003.json",
                       checkpoint_dir=tmp_path / "c", progress=False)


def test_init_from_a_terrain_blind_model_gains_static_inputs(rain, tmp_path):
    """Its weights are the start; only the new static convolutions are fresh."""
    import torch
    from fields import tiny_model

    from xstochsr.training import loop

    blind = tiny_model(factor=4)
    blind.save(tmp_path / "blind")
    keep = {k: v for k, v in TINY.items() if not k.startswith("gen_") and k != "factor"}
    t = loop.Trainer(rain, None, 4, steps=1, seed=3, init=tmp_path / "blind.safetensors",
                     checkpoint_dir=tmp_path / "b", overrides=keep, static=topo_like(rain))
    assert t.gcfg.static_channels == 1
    own = t.G.state_dict()
    for k, v in blind.generator.state_dict().items():
        assert torch.equal(own[k], v), k
    assert {k for k in own if k not in blind.generator.state_dict()} == {
        k for k in own if k.startswith("static_")}


def test_command_line_trains_and_downscales_with_static(rain, tmp_path):
    from xstochsr.cli import main

    ds = rain.assign(surface_altitude=topo_like(rain))
    ds.to_netcdf(tmp_path / "data.nc")
    sets = []
    for k, v in TINY.items():
        if k not in ("factor", "progress"):
            sets += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    assert main(["train", str(tmp_path / "data.nc"), "--var", "precip", "--factor", "4",
                 "--out", str(tmp_path / "out"), "--steps", "1", "--seed", "0",
                 "--no-progress", "--static", "surface_altitude", *sets]) == 0
    model = xstochsr.load_model(tmp_path / "out" / "precip-x4.safetensors")
    assert [e["name"] for e in model.card.static] == ["surface_altitude"]
    coarse = rain.precip.isel(time=slice(0, 3)).sr.coarsen(4)
    coarse.to_netcdf(tmp_path / "coarse.nc")
    topo_like(rain).to_dataset().to_netcdf(tmp_path / "topo.nc")
    model_path = str(tmp_path / "out" / "precip-x4.safetensors")
    args = ["downscale", str(tmp_path / "coarse.nc"), str(tmp_path / "ens.nc"), "--members",
            "2", "--seed", "0", "--model", model_path, "--no-progress"]
    assert main(args + ["--static", str(tmp_path / "topo.nc")]) == 0
    with xr.open_dataset(tmp_path / "ens.nc") as out:
        assert out.precip.sizes["realization"] == 2 and bool(out.precip.notnull().all())
    assert main(args[:2] + [str(tmp_path / "ens2.nc")] + args[3:]) == 2  # no --static


def test_the_critic_sees_the_static_fields(rain, tmp_path):
    import torch

    from xstochsr.training import loop

    t = loop.Trainer(rain, None, 4, steps=1, seed=0, checkpoint_dir=tmp_path,
                     overrides={k: v for k, v in TINY.items() if k != "factor"},
                     static=topo_like(rain))
    assert t.D.config.fine_channels == 2
    batch = t.sampler.sample(2)
    c, y, _ = t._tensors(batch)
    st = t._static(batch)
    with torch.no_grad():
        a = loop._critic_with(t.D, st)(c.repeat(3, 1, 1, 1, 1), y.repeat(3, 1, 1, 1, 1))
        b = loop._critic_with(t.D, -st)(c.repeat(3, 1, 1, 1, 1), y.repeat(3, 1, 1, 1, 1))
    assert a.shape == (6, y.shape[1]) and (a - b).abs().max() > 1e-6
    assert loop._critic_with(t.D, None) is t.D
