import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "verification.md"


def test_user_guide_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)
    assert (tmp_path / "panel.png").exists()
    import matplotlib.pyplot as plt

    plt.close("all")
