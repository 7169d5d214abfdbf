"""When a trial may spend time drawing its figures: a cap on plotting as a share of training.

Figures are drawn on new best epochs. On a small dataset an epoch takes about as long as its
figures (bench/plot_cost.py), so drawing on every new best would nearly double those epochs;
on real data an epoch takes minutes and the cap never bites. The share is small because a
trial's time beyond training is meant to stay within a few percent (bench/trial_overhead.py);
the best trials are drawn after the sweep anyway (orchestrator/best_figures.py). The trial loop asks `allows`
before drawing and reports what each epoch and each drawing took.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SHARE = 0.02  # plotting may take at most 2% of the time spent training


@dataclass
class PlotBudget:
    """Plotting time kept under `share` of training time, over a trial's life.

    The first drawing is allowed once training has taken `first_cost / share` (first_cost: a
    typical figure set, fonts included); later ones when the last drawing's cost still fits.
    """

    share: float = DEFAULT_SHARE
    first_cost: float = 0.5
    training_seconds: float = 0.0
    plotting_seconds: float = 0.0
    last_cost: float | None = None

    def add_epoch(self, seconds: float) -> None:
        """Count an epoch's training (and evaluation) time."""
        self.training_seconds += seconds

    def allows(self) -> bool:
        """Whether drawing now keeps plotting within its share of the training time so far."""
        expected = self.first_cost if self.last_cost is None else self.last_cost
        return self.plotting_seconds + expected <= self.share * self.training_seconds

    def add_plotting(self, seconds: float) -> None:
        """Count a drawing's time; it becomes the expected cost of the next one."""
        self.plotting_seconds += seconds
        self.last_cost = seconds
