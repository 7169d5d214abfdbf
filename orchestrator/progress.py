"""What the terminal shows: a live table of trials while a sweep runs, a summary at the end.

On a terminal the table redraws in place; in a log (CI, a pipe) each reported epoch and each
trial end is one line, so long sweeps still show progress.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ray import tune
from rich.console import Console, RenderableType
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table

from orchestrator.callbacks import error_text
from orchestrator.outcomes import OutcomeLedger, TrialOutcome, error_summary

REFRESH_SECONDS = 1.0


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def config_text(config: dict[str, Any], limit: int | None = None) -> str:
    """`lr=0.00141, pooling=mean, ...`: a config on one line, floats to 3 significant digits."""
    shown = list(config.items())[:limit]
    text = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown)
    return text + (", ..." if len(shown) < len(config) else "")


def trials_table(task_name: str, ledger: OutcomeLedger) -> Table:
    table = Table(title=f"{task_name}: {ledger.metric} ({ledger.mode})", title_justify="left")
    for column in ("trial", "status", "epoch", "last", "best", "reason / params"):
        table.add_column(column, overflow="fold")
    for outcome in ledger.trials.values():
        detail = outcome.reason if outcome.status != "running" else config_text(outcome.config, limit=4)
        table.add_row(
            outcome.trial_id, outcome.status, f"{outcome.epochs}/{ledger.max_epochs}",
            _value(outcome.last_metric), _value(outcome.best_metric), detail,
        )
    return table


class ProgressDisplay(tune.Callback):
    """Shows the sweep's progress from the ledger. Place it after the LedgerCallback."""

    def __init__(self, task_name: str, ledger: OutcomeLedger, console: Console, live: bool = True):
        """live: redraw a table in place on a terminal; False: one line per event everywhere
        (tasks swept side by side share the terminal, and a terminal holds one live table)."""
        self.task_name, self.ledger, self.console = task_name, ledger, console
        self.use_live = live
        self.live: Live | None = None
        self.last_draw = 0.0

    # Tune pickles its callbacks with the experiment state; consoles and live displays hold
    # locks and belong to this process anyway.
    def __getstate__(self) -> dict[str, Any]:
        return {"task_name": self.task_name, "ledger": self.ledger, "use_live": self.use_live}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["task_name"], state["ledger"], Console(), state.get("use_live", True))

    def setup(self, **info):
        if self.use_live and self.console.is_terminal:
            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()

    def on_step_end(self, iteration, trials, **info):
        if self.live is not None and time.monotonic() - self.last_draw > REFRESH_SECONDS:
            self.live.update(trials_table(self.task_name, self.ledger), refresh=True)
            self.last_draw = time.monotonic()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.live is None:
            outcome = self.ledger.trials[trial.trial_id]
            self.console.print(
                f"[{self.task_name}] trial {trial.trial_id} epoch {outcome.epochs}/"
                f"{self.ledger.max_epochs}: {self.ledger.metric}={_value(outcome.last_metric)} "
                f"(best {_value(outcome.best_metric)})",
                highlight=False, markup=False, soft_wrap=True,
            )

    def on_trial_recover(self, iteration, trials, trial, **info):
        # A trial that failed and was retried (perhaps on another node) must not look clean.
        self.console.print(f"[{self.task_name}] trial {trial.trial_id} {failure_line(trial)}; "
                           "retrying it from its last checkpoint",
                           highlight=False, markup=False, soft_wrap=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._print_end(self.ledger.trials.get(trial.trial_id))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print_end(self.ledger.trials.get(trial.trial_id))

    def on_experiment_end(self, trials, **info):
        if self.live is not None:
            self.live.update(trials_table(self.task_name, self.ledger), refresh=True)
            self.live.stop()
            self.live = None

    def _print_end(self, outcome: TrialOutcome | None) -> None:
        if self.live is None and outcome is not None:
            self.console.print(
                f"[{self.task_name}] trial {outcome.trial_id} {outcome.status}: {outcome.reason}",
                highlight=False, markup=False, soft_wrap=True,
            )


def failure_line(trial) -> str:
    """'failed on node 10.0.0.12: DataError: ...': where a trial last failed and its error's
    last line (outcomes.error_summary); the whole error is in the trial's error file."""
    node = ((trial.last_result or {}).get("run_tags") or {}).get("orchestrate.node_ip")
    return "failed" + (f" on node {node}" if node else "") + ": " + error_summary(error_text(trial))


def summary_table(summaries: list[dict[str, Any]]) -> Table:
    """One row per task: trials run, how they ended, the best metric and its config."""
    table = Table(title="Sweep summary", title_justify="left")
    for column in ("task", "trials", "completed", "converged", "pruned", "stopped", "failed",
                   "best", "best config"):
        table.add_column(column, overflow="fold")
    for row in summaries:
        table.add_row(*(str(row[key]) for key in (
            "task", "trials", "completed", "converged", "pruned", "stopped", "failed", "best",
            "best_config")))
    return table


def output_width(console: Console, renderable: RenderableType) -> int:
    """Columns to render a table in: the terminal's, else $COLUMNS, else all the table needs.

    Output read in a log (a pipe, `ray job submit`, `ray exec` whose terminal has no size) is
    never squeezed to rich's default of 80 columns.
    """
    try:
        columns = os.get_terminal_size(console.file.fileno()).columns if console.is_terminal else 0
    except (AttributeError, OSError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    environment = os.environ.get("COLUMNS", "")
    if environment.isdigit() and int(environment) > 0:
        return int(environment)
    unbounded = console.options.update_width(10_000)
    return Measurement.get(console, unbounded, renderable).maximum


def print_full_width(console: Console, renderable: RenderableType) -> None:
    """Print at `output_width` columns, then give the console back its own width."""
    previous = console.size
    console.size = (output_width(console, renderable), previous.height)
    try:
        console.print(renderable)
    finally:
        console.size = previous
