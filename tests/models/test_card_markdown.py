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
            crps = f"{table['model']['crps']:.3f}"
            assert crps in md
        assert card._repr_markdown_().startswith("### ")


def test_minimal_card_renders():
    md = ModelCard(name="mine", factor=4, units="K").to_markdown()
    assert "## `mine`" in md and "factor | 4" in md and "Held-out" not in md
