import json
import os
from pathlib import Path

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


# --- issue 14: saves that vouch for their pair, cards checked before anything is built ---


def test_interrupted_save_is_refused_at_load(tmp_path, monkeypatch):
    """Killed between the two renames: new weights beside the old card never load."""
    tiny_model(seed=0).save(tmp_path / "m")
    real = os.replace
    calls = []

    def die_on_second(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", die_on_second)
    with pytest.raises(KeyboardInterrupt):
        tiny_model(seed=1).save(tmp_path / "m")
    monkeypatch.undo()
    assert calls == ["m.safetensors", "m.json"]
    with pytest.raises(WeightsIntegrityError, match="not saved together"):
        GANModel.load(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_failure_while_writing_keeps_both_old_files(tmp_path, monkeypatch):
    """Both files are written before either is renamed: a failure in the card keeps all."""
    m = tiny_model(seed=0)
    w, c = m.save(tmp_path / "m")
    old = (w.read_bytes(), c.read_bytes())
    real = os.fsync
    calls = []

    def full_on_card(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", full_on_card)
    with pytest.raises(OSError, match="no space left on device"):
        tiny_model(seed=1).save(tmp_path / "m")
    monkeypatch.undo()
    assert (w.read_bytes(), c.read_bytes()) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    GANModel.load(w)


def test_weights_and_card_of_two_models_refused(tmp_path):
    a, _ = tiny_model(name="model-a").save(tmp_path / "a")
    _, cb = tiny_model(name="model-b", seed=1).save(tmp_path / "b")
    card = json.loads(cb.read_text())
    card["weights_sha256"] = ""  # even a card that vouches for nothing
    (tmp_path / "a.json").write_text(json.dumps(card))
    with pytest.raises(WeightsIntegrityError, match="'model-a' but .* describes 'model-b'"):
        GANModel.load(a)


def test_card_edited_after_save_refused(tmp_path):
    w, c = tiny_model().save(tmp_path / "m")
    card = json.loads(c.read_text())
    card["units"] = "K"  # same weights, now claiming another quantity
    c.write_text(json.dumps(card))
    with pytest.raises(WeightsIntegrityError, match="different card"):
        GANModel.load(w)


def test_nan_weights_refused_at_save_and_load(tmp_path):
    import torch
    from safetensors.torch import save

    m = tiny_model()
    with torch.no_grad():
        next(m.generator.parameters())[0] = float("nan")
    with pytest.raises(WeightsIntegrityError, match="NaN or infinite"):
        m.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []
    # a file written by something else still cannot get NaN weights in
    good = tiny_model()
    good.save(tmp_path / "m")
    state = {k: v.clone() for k, v in good.generator.state_dict().items()}
    next(iter(state.values())).view(-1)[0] = float("inf")
    (tmp_path / "m.safetensors").write_bytes(save(state))
    card = json.loads((tmp_path / "m.json").read_text())
    card["weights_sha256"] = ""
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(WeightsIntegrityError, match="NaN or infinite"):
        GANModel.load(tmp_path / "m")


@pytest.mark.parametrize("key, value", [
    ("width", 20000), ("encoder_blocks", 100000), ("init_blocks", -1), ("width", "big"),
    ("upsample_widths", [10**6, 8]), ("factor", 3), ("noise_channels", 1.5),
])
def test_oversized_or_malformed_architecture_refused_before_building(tmp_path, key, value):
    import time

    w, c = tiny_model().save(tmp_path / "m")
    card = json.loads(c.read_text())
    card["architecture"][key] = value
    card["weights_sha256"] = ""
    c.write_text(json.dumps(card))
    t0 = time.perf_counter()
    with pytest.raises(ModelCardError, match=f"{key!r}.*model.save"):
        GANModel.load(w)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("key, value", [
    ("factor", "8"), ("factor", 4096), ("name", ""), ("name", 3), ("transform", "log"),
    ("units", 5), ("native_grid_spacing", {"value": -1, "units": "m"}), ("scores", []),
])
def test_malformed_card_fields_refused(tmp_path, key, value):
    w, c = tiny_model().save(tmp_path / "m")
    card = json.loads(c.read_text())
    card[key] = value
    c.write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match=f"{key!r}"):
        GANModel.load(w)


def test_architecture_checked_against_header_before_loading(tmp_path, monkeypatch):
    """Card and weights of the same name but different sizes: refused from the header."""
    import safetensors.torch

    w, c = tiny_model(width=16).save(tmp_path / "m")
    card = json.loads(c.read_text())
    card["architecture"]["width"] = 24
    card["weights_sha256"] = ""
    c.write_text(json.dumps(card))

    def never(*a, **k):
        raise AssertionError("tensors were loaded before the header was checked")

    monkeypatch.setattr(safetensors.torch, "load", never)
    with pytest.raises(WeightsIntegrityError, match="do not fit"):
        GANModel.load(w)


def test_truncated_header_refused(tmp_path):
    w, _ = tiny_model().save(tmp_path / "m")
    w.write_bytes(w.read_bytes()[:20])
    with pytest.raises(WeightsIntegrityError, match="truncated"):
        GANModel.load(w)


def test_gan_module_does_not_import_the_package_init():
    import ast
    from pathlib import Path

    import xstochsr.models.gan as gan

    tree = ast.parse(Path(gan.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module is None:
            names = [a.name for a in node.names]
            raise AssertionError(f"models/gan.py imports {names} from the package __init__")


def test_scores_written_into_a_saved_card_still_load(tmp_path):
    """Evaluation adds held-out scores to a saved card (scripts/evaluate_pretrained.py):
    that is not a tampered card; any other edit still is."""
    w, c = tiny_model().save(tmp_path / "m")
    card = json.loads(c.read_text())
    card["scores"] = {"held_out": {"crps": 0.1}, "precision": {"bfloat16_ok": True}}
    c.write_text(json.dumps(card))
    assert GANModel.load(w).card.scores["held_out"] == {"crps": 0.1}
    card["description"] = "something else"
    c.write_text(json.dumps(card))
    with pytest.raises(WeightsIntegrityError, match="different card"):
        GANModel.load(w)


def test_weights_saved_with_the_older_digest_load(tmp_path, monkeypatch):
    """Weights saved when the digest still covered the scores keep loading."""
    from xstochsr.models import gan

    m = tiny_model()
    m.card.scores = {"held_out": {"crps": 0.2}}
    real = gan._card_digest
    monkeypatch.setattr(gan, "_card_digest",
                        lambda card, with_scores=False: real(card, with_scores=True))
    w, _ = m.save(tmp_path / "m")  # the old save: the digest includes the scores
    monkeypatch.setattr(gan, "_card_digest", real)
    assert real(m.card) != real(m.card, with_scores=True)
    assert GANModel.load(w).card.scores == {"held_out": {"crps": 0.2}}
