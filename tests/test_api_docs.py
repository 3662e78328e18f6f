from repo_files import ROOT, load_script


def test_api_reference_is_current():
    mod = load_script("scripts/render_api_docs.py")
    assert (ROOT / "docs" / "api.md").read_text() == mod.rendered(), (
        "docs/api.md is stale: run python scripts/render_api_docs.py")
