"""Training from a notebook (issue 15): callbacks, live history and plot, Ctrl-C anywhere."""

from __future__ import annotations

import numpy as np
import pytest
from fields import TINY_TRAIN as TINY

import xstochsr
from xstochsr.training import loop
from xstochsr.training.callbacks import LiveHistory, LivePlot, format_duration
from xstochsr.training.data import synthetic_rain

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rain():
    return synthetic_rain(24, 32, 32, seed=0)


def test_callback_sees_every_validation_and_live_history(rain, tmp_path, capsys):
    calls = []
    live = LiveHistory()

    def cb(step, scores):
        # the history is current when the callback runs, not only after return
        calls.append((step, dict(scores), live.history.sizes["step"] if live.history else 0))

    m = xstochsr.train(rain, steps=5, seed=1, checkpoint_dir=tmp_path, callbacks=[live, cb],
                       **TINY)
    assert [c[0] for c in calls] == [0, 3, 5] == live.steps
    assert all("val_crps" in c[1] and np.isfinite(c[1]["val_crps"]) for c in calls)
    assert [c[2] for c in calls] == [0, 3, 5]  # LiveHistory ran first: losses up to the step
    assert list(m.history.val_step.values) == [0, 3, 5]
    np.testing.assert_allclose(m.history.val_crps.values, [c[1]["val_crps"] for c in calls])
    out = capsys.readouterr().out
    assert "xstochsr: about" in out and "for 5 steps" in out


def test_short_run_history_plots_as_the_docs_show(rain, tmp_path):
    """docs/training.md: h.val_crps.plot(marker="o") for a run shorter than val_every."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    m = xstochsr.train(rain, steps=2, seed=0, checkpoint_dir=tmp_path, **{**TINY,
                                                                           "val_every": 50})
    assert list(m.history.val_step.values) == [0, 2]  # untrained baseline and the end
    m.history.val_crps.plot(marker="o")
    plt.close("all")


@pytest.mark.parametrize("when", ["baseline", "middle", "final"])
def test_ctrl_c_during_validation_keeps_a_checkpoint_and_returns(rain, tmp_path, monkeypatch,
                                                                 when):
    """Interrupt the validation at step 0, at step 3, or the final one (step 5)."""
    real = loop.Trainer.validate
    target = {"baseline": 0, "middle": 3, "final": 5}[when]

    def validate(self):
        if self.step == target:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(loop.Trainer, "validate", validate)
    m = xstochsr.train(rain, steps=5, seed=2, checkpoint_dir=tmp_path, **TINY)
    assert m.card.training["interrupted"] is True
    assert m.checkpoint is not None and m.checkpoint.exists()
    assert m.card.training["steps"] == (5 if when == "final" else target)
    if when != "baseline":
        ens = synthetic_rain(4, 16, 16, seed=5).precip.sr.coarsen(4).sr.downscale(
            model=m, members=2, seed=0, factor=4)
        assert np.isfinite(ens).all()


def test_ctrl_c_during_a_step_returns_the_model(rain, tmp_path, monkeypatch):
    real = loop.Trainer.train_step

    def step(self):
        if self.step == 4:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(loop.Trainer, "train_step", step)
    m = xstochsr.train(rain, steps=6, seed=3, checkpoint_dir=tmp_path, **TINY)
    assert m.card.training["interrupted"] and m.card.training["steps"] == 4
    assert m.checkpoint.exists()


def test_live_plot_draws_without_ipython(rain, tmp_path):
    import matplotlib

    matplotlib.use("Agg", force=True)
    live = LivePlot()
    xstochsr.train(rain, steps=3, seed=0, checkpoint_dir=tmp_path, callbacks=[live], **TINY)
    axes = live.figure.axes
    assert len(axes) == 2 and len(axes[0].lines) == 2
    assert list(axes[0].lines[0].get_xdata()) == [0, 3]
    import matplotlib.pyplot as plt

    plt.close(live.figure)


def test_format_duration_and_notebook_extra():
    from pathlib import Path

    import tomllib

    assert format_duration(30) == "30 s" and format_duration(600) == "10 min"
    assert format_duration(2.3 * 3600) == "2.3 h"
    py = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert any(r.startswith("ipywidgets") for r in py["project"]["optional-dependencies"]
               ["notebook"])
