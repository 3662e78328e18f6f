"""The pretrained models can be rebuilt: each script's settings are exactly its card's."""

import json
import sys
from importlib import resources

import pytest
from repo_files import ROOT, load_script

sys.path.insert(0, str(ROOT / "scripts"))
common = load_script("scripts/pretrain_common.py", "pretrain_common")


def card(name):
    return json.loads(resources.files("xstochsr.data").joinpath(f"{name}.json").read_text())


@pytest.mark.parametrize("script, name", [("scripts/train_rain_x8.py", "rain-x8"),
                                          ("scripts/train_qg_wind_x8.py", "qg-wind-x8"),
                                          ("scripts/train_qg_uv_x8.py", "qg-uv-x8")])
def test_script_settings_are_the_cards(script, name):
    mod = load_script(script, f"script_{name.replace('-', '_')}")
    shipped = getattr(mod, "SHIPPED", mod.SETTINGS)  # a script of several stages says which
    assert common.card_mismatches(shipped, card(name)) == {}
    assert card(name)["training"]["script"] == script


def test_rain_x8_is_the_smooth_stage_of_the_pinned_base():
    mod = load_script("scripts/train_rain_x8.py", "script_rain")
    training = card("rain-x8")["training"]
    assert training["init"] == "rain-x8"
    assert training["init_weights_sha256"] == mod.BASE_SHA256
    assert training["config"]["constraint_prior"] == "smooth"


def test_a_changed_setting_is_caught():
    mod = load_script("scripts/train_rain_x8.py", "script_rain")
    bad = {**mod.SHIPPED, "lr_generator": 2e-4}
    assert common.card_mismatches(bad, card("rain-x8")) == {"lr_generator": (2e-4, 1e-4)}
    bad = {**mod.SHIPPED, "constraint": None, "constraint_dry": None,
           "constraint_prior": None}
    assert "constraint" in common.card_mismatches(bad, card("rain-x8"))
