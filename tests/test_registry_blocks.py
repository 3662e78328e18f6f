"""scripts/registry_blocks.py: one managed block rewritten, every other line kept."""

from __future__ import annotations

from repo_files import load_script

rb = load_script("scripts/registry_blocks.py", "registry_blocks")


def _root(tmp_path, text):
    (tmp_path / "xstochsr" / "data").mkdir(parents=True)
    (tmp_path / "data_registry.txt").write_text(text)
    return tmp_path


def test_replaces_its_block_keeps_the_rest_and_copies_into_the_package(tmp_path):
    text = "# head\n\n# >>> a (managed)\nold\n# <<< a\n\n# >>> b\nkeep\n# <<< b\n"
    root = _root(tmp_path, text)
    rb.write_block("# >>> a", "# <<< a", "# >>> a (managed)\nnew\n# <<< a\n", root)
    got = (root / "data_registry.txt").read_text()
    assert got == text.replace("old", "new")
    assert (root / "xstochsr" / "data" / "registry.txt").read_text() == got


def test_appends_a_new_block_after_a_blank_line(tmp_path):
    root = _root(tmp_path, "# head\nx sha256:1\n\n\n")
    rb.write_block("# >>> c", "# <<< c", "# >>> c\ny\n# <<< c\n", root)
    assert (root / "data_registry.txt").read_text() == "# head\nx sha256:1\n\n# >>> c\ny\n# <<< c\n"
