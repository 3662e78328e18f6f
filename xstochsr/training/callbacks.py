"""Watching a training run from a notebook: callbacks, a live plot, a run-time estimate.

``xstochsr.train(ds, callbacks=[...])`` calls each callback after every validation
(the untrained generator at step 0, every ``val_every`` steps, and the final model) as
``callback(step, scores)`` with ``scores`` a dict such as ``{"val_crps": 0.21, ...}``.
A callback object with an ``on_validation(trainer, step, scores)`` method gets the
trainer too, so it can read the whole history so far (``trainer.history_dataset()``):
that is how :class:`LiveHistory` keeps ``.history`` current *while* training.

:class:`LivePlot` redraws the validation scores and losses in a Jupyter cell (or does
nothing visible outside IPython). :func:`announce_estimate` prints, after the first step,
how long the run will take.

Examples
--------
>>> seen = []
>>> cb = lambda step, scores: seen.append(step)
>>> model = xstochsr.train(ds, steps=600, callbacks=[cb])  # doctest: +SKIP
>>> live = LivePlot()  # doctest: +SKIP
>>> model = xstochsr.train(ds, callbacks=[live])  # a figure updates  # doctest: +SKIP
>>> live.history.val_crps.plot(marker="o")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Callback", "LiveHistory", "LivePlot", "notify", "announce_estimate",
           "format_duration"]

#: ``callback(step, scores)``
Callback = Callable[[int, dict], Any]


def notify(trainer, callbacks: Sequence[Any] | None, scores: dict[str, float]) -> None:
    """Call every callback with the trainer's current step and the new ``scores``."""
    for cb in callbacks or ():
        hook = getattr(cb, "on_validation", None)
        if hook is not None:
            hook(trainer, trainer.step, dict(scores))
        else:
            cb(trainer.step, dict(scores))


class LiveHistory:
    """A callback that keeps the run's history (losses and scores so far) in ``.history``.

    Attributes
    ----------
    history : xarray.Dataset or None
        As ``model.history``, up to the last validation.
    steps : list of int
        Steps at which it was called.
    """

    def __init__(self) -> None:
        self.history = None
        self.steps: list[int] = []

    def on_validation(self, trainer, step: int, scores: dict) -> None:
        """Record ``trainer``'s history after the validation at ``step``."""
        self.steps.append(step)
        self.history = trainer.history_dataset()

    def __call__(self, step: int, scores: dict) -> None:
        """Record ``step`` (when used as a plain callback, without the trainer)."""
        self.steps.append(step)


class LivePlot(LiveHistory):
    """Redraw validation scores (and smoothed losses) in the notebook cell after each validation.

    Parameters
    ----------
    scores : sequence of str, default ("val_crps", "val_rmse")
        Which validation scores to draw.
    losses : bool, default True
        Also draw the generator and critic losses (rolling mean over ``smooth`` steps).
    smooth : int, default 20

    Outside IPython nothing is displayed, but ``.history`` and ``.figure`` are kept.
    """

    def __init__(self, scores: Sequence[str] = ("val_crps", "val_rmse"), *,
                 losses: bool = True, smooth: int = 20) -> None:
        super().__init__()
        self.scores = tuple(scores)
        self.losses = losses
        self.smooth = smooth
        self.figure = None
        self._handle = None

    def on_validation(self, trainer, step: int, scores: dict) -> None:
        """Record the history and redraw."""
        super().on_validation(trainer, step, scores)
        self.draw()

    def draw(self):
        """Draw ``.history`` into ``.figure`` and show it in place (IPython only)."""
        import matplotlib.pyplot as plt

        h = self.history
        if h is None:
            return None
        if self.figure is None:
            self.figure = plt.figure(figsize=(9, 3.2), layout="constrained")
        fig = self.figure
        fig.clear()
        n = 2 if self.losses else 1
        ax = fig.add_subplot(1, n, 1)
        for name in self.scores:
            if name in h and h.sizes.get("val_step", 0):
                ax.plot(h.val_step.values, h[name].values, marker="o", label=name)
        ax.set_xlabel("step")
        ax.set_title("validation")
        if ax.lines:
            ax.legend(fontsize=8)
        if self.losses and h.sizes.get("step", 0):
            ax2 = fig.add_subplot(1, n, 2)
            w = max(1, min(self.smooth, h.sizes["step"]))
            for name in ("loss_generator", "loss_critic"):
                ax2.plot(h.step.values, h[name].rolling(step=w, min_periods=1).mean().values,
                         label=name)
            ax2.set_xlabel("step")
            ax2.set_title(f"losses (rolling mean of {w})")
            ax2.legend(fontsize=8)
        self._show(fig)
        return fig

    def _show(self, fig) -> None:
        import sys

        if "IPython" not in sys.modules:
            return
        try:
            from IPython.display import display
        except ImportError:  # pragma: no cover - IPython half installed
            return
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2.3 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def announce_estimate(trainer, step_seconds: float, *, echo: Callable[[str], Any] = print) -> str:
    """Say how long the run will take, from the time of its first step.

    Parameters
    ----------
    trainer : Trainer
        Gives ``cfg.steps``, ``cfg.val_every`` and the current ``step``.
    step_seconds : float
        Wall time of one training step.
    echo : callable
        Where the line goes (``print``).

    Returns
    -------
    str
        The line, e.g. ``"xstochsr: about 2.3 h for 3000 steps (2.8 s a step on cpu);
        Ctrl-C stops cleanly and keeps a checkpoint"``.
    """
    cfg = trainer.cfg
    left = max(0, cfg.steps - trainer.step + 1)
    total = left * step_seconds
    line = (f"xstochsr: about {format_duration(total)} for {left} steps "
            f"({step_seconds:.2g} s a step on {trainer.device}); Ctrl-C stops cleanly and "
            "keeps a checkpoint to resume from")
    echo(line)
    return line


class StepTimer:
    """Time the first training step of a run (for :func:`announce_estimate`)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.done = False

    def after_step(self, trainer) -> None:
        """Announce the estimate once, after the first step (rank 0 only)."""
        if self.done:
            return
        self.done = True
        if getattr(trainer, "rank", 0) == 0 and trainer.cfg.steps - trainer.step > 0:
            announce_estimate(trainer, time.perf_counter() - self.t0)
