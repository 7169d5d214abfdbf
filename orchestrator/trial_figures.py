"""A trial's figures, drawn in its worker and carried to MLflow in its checkpoint.

The worker has the model and the data, the driver neither; so the trial loop draws the task's
figures (`Task.figures`, optional) and the health probes over epochs as PNG files into the
checkpoint's `plots/` folder, and the driver's tracker logs that folder on the trial's run
(tracking/trial_history.py), replacing the earlier drawing. Drawn on a guard's stop (what the
guard saw) and on a new best epoch when the PlotBudget allows it (on real data, with epochs of
minutes, every new best). The best trials of a sweep are drawn again from their best epoch
once the experiment has ended (orchestrator/best_figures.py), off the trials' path. A figure
that fails to draw is skipped with a warning: a plot never stops a trial.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from orchestrator.plot_budget import PlotBudget
from tasks.common.figures import health_probes, png_bytes

PLOTS_DIR = "plots"  # in the checkpoint and in the trial's MLflow run
PLOT_SECONDS = "time/plot_seconds"  # reported on epochs that drew: plotting's cost, measurable

log = logging.getLogger(__name__)


@dataclass
class TrialFigures:
    """When a trial draws, and what: call `add_epoch` per epoch, then `draw` when `due`."""

    budget: PlotBudget = field(default_factory=PlotBudget)

    def add_epoch(self, seconds: float) -> None:
        self.budget.add_epoch(seconds)

    def due(self, new_best: bool, stopped: bool) -> bool:
        """Whether this epoch draws (see the module docstring)."""
        return stopped or (new_best and self.budget.allows())

    def draw(self, task: Any, setup: Any, history: Sequence[dict[str, Any]]) -> dict[str, bytes]:
        """The figures of the model as it is now, as PNG bytes by file name; the time it took
        counts against the budget."""
        started = time.perf_counter()
        figures: dict[str, Any] = {}
        draw_task_figures = getattr(task, "figures", None)
        if callable(draw_task_figures):
            try:
                with torch.no_grad():
                    figures.update(draw_task_figures(setup, "val"))
            except Exception as error:  # noqa: BLE001 - a plot never stops a trial
                log.warning("task %s: could not draw its figures: %s: %s",
                            getattr(task, "name", "?"), type(error).__name__, error)
        if any(key.startswith("probe/") for key in history[-1]):
            try:
                figures["health_probes"] = health_probes(history)
            except Exception as error:  # noqa: BLE001
                log.warning("could not draw the health probes: %s: %s", type(error).__name__, error)
        pngs = {}
        for name, figure in figures.items():
            try:
                pngs[f"{name}.png"] = png_bytes(figure)
            except Exception as error:  # noqa: BLE001
                log.warning("could not render figure %s: %s: %s", name, type(error).__name__, error)
        self.budget.add_plotting(time.perf_counter() - started)
        return pngs


def save_figures(checkpoint_dir: Path, pngs: dict[str, bytes]) -> None:
    """Write the PNGs into the checkpoint's plots/ folder (nothing when there are none)."""
    if not pngs:
        return
    folder = checkpoint_dir / PLOTS_DIR
    folder.mkdir()
    for name, data in pngs.items():
        (folder / name).write_bytes(data)
