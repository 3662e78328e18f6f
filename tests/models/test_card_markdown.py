from repo_files import ROOT, load_script

from xstochsr.models.base import ModelCard
from xstochsr.models.registry import list_models, pretrained_card


def test_docs_models_md_shows_the_registered_cards():
    r = load_script("scripts/render_model_cards.py")
    text = (ROOT / "docs" / "models.md").read_text()
    assert r.rendered() in text, "docs/models.md is stale: run scripts/render_model_cards.py"


def test_markdown_has_every_held_out_score():
    for name in list_models("pretrained"):
        card = pretrained_card(name)
        md = card.to_markdown()
        assert md.startswith(f"## `{name}`")
        for set_name, table in card.scores["held_out"].items():
            assert f"`{set_name}`" in md
            row = table["model"]
            crps = f"{row.get('crps', row.get('eastward_wind_crps')):.3f}"
            assert crps in md
        assert card._repr_markdown_().startswith("### ")


def test_minimal_card_renders():
    md = ModelCard(name="mine", factor=4, units="K").to_markdown()
    assert "## `mine`" in md and "factor | 4" in md and "Held-out" not in md


def test_gates_extra_columns_and_training_range_render():
    row = {"crps": 0.5, "rank_ks": 0.1, "outlier_proportion": 0.2, "rmse": 1.0, "lsd_db": 3.0,
           "fss": 0.7, "q99_ratio": 1.0, "mass_error": 0.0, "lag1": 0.81, "lag1_truth": 0.77}
    card = ModelCard(
        name="mine", factor=8, units="mm h-1",
        training_range={"units": "mm h-1", "std": 4.25, "quantiles": {"0.5": 0.12, "0.99": 20.0},
                        "time_step": {"value": 5.0, "units": "min"}},
        scores={"members": 8, "subset": "test", "held_out": {"sim": {"model_raw": row,
                                                                    "bilinear": {"crps": 0.9}}},
                "gates": [{"set": "sim", "gate": "wet rank KS", "value": 0.12, "limit": 0.08,
                           "passed": False},
                          {"set": "sim", "gate": "CRPS vs bilinear", "value": 0.5, "limit": 0.9,
                           "passed": True}]})
    md = card.to_markdown()
    assert "Gates (issue 10, on the bare network): 1 of 2 passed" in md
    assert "| sim | wet rank KS | 0.120 | 0.08 | **missed** |" in md
    assert "| truth lag-1 |" in md and "0.810 | 0.770 |" in md
    assert "| bilinear | 0.900 | - |" in md  # a score the row lacks is "-", not NaN
    assert "std 4.250 mm h-1; percentiles 50, 99: 0.120, 20.000; time step 5.000 min" in md
    card.training = {"objective": "wgan-gp+crps", "steps": 5,
                     "config": {"term_balance": "adaptive"}}
    assert "wgan-gp+crps (term balance adaptive), 5 steps" in card.to_markdown()


def test_a_wind_pair_card_names_each_field_and_its_physics_scores():
    chans = [{"name": "ua", "standard_name": "eastward_wind", "units": "m s-1"},
             {"name": "va", "standard_name": "northward_wind", "units": "m s-1"}]
    row = {"eastward_wind_crps": 1.25, "northward_wind_crps": 1.5, "rank_ks_u": 0.1,
           "rank_ks_v": 0.2, "outlier_proportion_u": 0.3, "outlier_proportion_v": 0.4,
           "divergence_rmse": 2.0, "vorticity_lsd": 3.0, "kinetic_energy_slope_error": 0.5,
           "kinetic_energy_lsd": 4.0}
    card = ModelCard(name="uv", factor=8, units="m s-1", variable="ua",
                     standard_name="eastward_wind", channels=chans,
                     transform={"kind": "channels", "channels": [{"kind": "identity"}] * 2},
                     scores={"members": 8, "held_out": {"qg_atmos": {"model": row}}})
    md = card.to_markdown()
    assert "ds.sr.downscale" in md and "a Dataset holding eastward_wind, northward_wind" in md
    assert "| field 2 of 2 | `va`, standard_name `northward_wind`, in `m s-1` |" in md
    assert "| CRPS u | CRPS v |" in md and "| 1.250 | 1.500 | 0.100 | 0.200 |" in md


def test_extremes_get_a_table_of_their_own_and_the_qq_figure_is_shown():
    row = {"crps": 0.5, "q90_ratio": 0.95, "q99_ratio": 0.9, "q999_ratio": 0.8,
           "exceed1_ratio": 1.1, "exceed5_ratio": 0.7}
    card = ModelCard(name="mine", factor=8, units="mm h-1",
                     scores={"members": 8, "subset": "test", "qq_figure": "img/cards/mine_qq.png",
                             "held_out": {"sim": {"model_raw": row, "rainfarm": {"crps": 0.6}}}})
    md = card.to_markdown()
    assert "*Extremes, set `sim`*" in md
    assert "| q90 ratio | q99 ratio | q99.9 ratio | >= 1 mm/h freq. ratio | >= 5 mm/h" in md
    assert "| mine, bare network (`conserve=False`) | 0.950 | 0.900 | 0.800 | 1.100 | 0.700 |" in md
    assert "| rainfarm | - | - | - | - | - |" in md  # a ratio a row lacks is "-"
    assert "![quantile-quantile plot" in md and "(img/cards/mine_qq.png)" in md
    assert "Extremes" not in ModelCard(name="plain").to_markdown()
