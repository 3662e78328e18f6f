import json

import numpy as np
import pytest
from fields import projected_field, tiny_model

import xstochsr
from xstochsr.errors import ModelCardError, WeightsIntegrityError
from xstochsr.models.gan import GANModel


def test_save_load_round_trip_bit_identical(tmp_path, rng):
    m = tiny_model()
    w, c = m.save(tmp_path / "m")
    assert w.name == "m.safetensors" and c.name == "m.json"
    card = json.loads(c.read_text())
    assert card["units"] == "mm h-1" and card["architecture"]["factor"] == 4
    assert card["package_version"] == xstochsr.__version__
    loaded = xstochsr.load_model(w)
    da = projected_field(rng)
    a = da.sr.downscale(model=m, factor=4, members=2, seed=3)
    b = da.sr.downscale(model=loaded, factor=4, members=2, seed=3)
    np.testing.assert_array_equal(a.values, b.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_load_checks_registry_hash(tmp_path):
    w, _ = tiny_model().save(tmp_path / "m")
    with pytest.raises(WeightsIntegrityError, match="modified"):
        GANModel.load(w, expected_sha256="sha256:" + "0" * 64)


def test_truncated_weights_refused(tmp_path):
    w, _ = tiny_model().save(tmp_path / "m")
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(WeightsIntegrityError, match="corrupted"):
        GANModel.load(w)


def test_tampered_weights_refused(tmp_path):
    w, _ = tiny_model().save(tmp_path / "m")
    other, _ = tiny_model(width=8).save(tmp_path / "other")
    w.write_bytes(other.read_bytes())  # a readable file with the wrong tensors
    with pytest.raises(WeightsIntegrityError, match="do not fit"):
        GANModel.load(w)


def test_missing_or_bad_card(tmp_path):
    w, c = tiny_model().save(tmp_path / "m")
    c.write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        GANModel.load(w)
    c.unlink()
    with pytest.raises(ModelCardError, match="side by side"):
        GANModel.load(w)


def test_failed_save_keeps_old_file(tmp_path, monkeypatch):
    m = tiny_model()
    w, _ = m.save(tmp_path / "m")
    good = w.read_bytes()
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        tiny_model(seed=1).save(tmp_path / "m")
    assert w.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_no_pickle_in_saved_files(tmp_path):
    w, _ = tiny_model().save(tmp_path / "m")
    assert b"\x80\x04" not in w.read_bytes()[:16]  # not a pickle stream
    from safetensors import safe_open

    with safe_open(w, "pt") as f:
        assert f.metadata()["format"] == "xstochsr-generator"
