"""The sweep's searcher: Optuna's TPE under Ray Tune, told how every trial really ended.

Ray Tune's OptunaSearch tells its study every ended trial as COMPLETE with the metric of the
trial's last result: a trial ASHA pruned after one epoch enters TPE as a finished trial with
its first-rung value, and a trial a guard stopped on NaN is refused by Optuna ("The value nan
is not acceptable") and stays RUNNING in the study for ever. TPE then learns little, and
nothing about the broken regions the guards find.

`GuardAwareOptunaSearch` tells the study what happened, from the result dicts Tune hands a
searcher (`on_trial_result`, `on_trial_complete(trial_id, result, error)`):
- every epoch's finite metric is an intermediate value (`trial.report`), the last one too
  (Tune hands the result that ends a trial only to `on_trial_complete`); they are kept in
  memory and written when the trial ends: Tune runs the searcher on the driver while the trial
  that reported waits, and an sqlite write per epoch was part of that wait, while TPE reads
  intermediate values only of trials that ended;
- `trial_ending` classifies the end. completed (its whole budget) and converged (the plateau
  guard: no longer improving) -> COMPLETE with the trial's best value, the epoch a winner is
  exported from; pruned (ASHA stopped it before its budget, no guard, no error) -> PRUNED, so
  TPE ranks it by how far it got and its value there; stopped (a failure guard's verdict) ->
  PRUNED and infeasible: the constraint `failure_guard` is 1 (Optuna 5's
  `Trial.set_constraint`; every other trial gets 0), and TPE puts infeasible trials below
  every feasible one, so it samples away from the region the guards found broken; failed (it
  raised, or never reported) -> FAIL, which TPE ignores;
- no trial stays RUNNING: a study loaded from storage, or restored with Tune's experiment,
  fails the trials no live Tune trial owns (asked by a driver that died before Tune
  snapshotted them).

Where the study is kept (`make_searcher`): with a local storage path, in an sqlite database
`optuna.db` in the task's experiment directory (`<storage>/<sweep>/<task>/optuna.db`), written
at every tell, so a resumed sweep and `optuna` tools (e.g. optuna-dashboard) read the same
study; a resumed sweep opens the study file of the directory it resumes, also when that was
moved (orchestrator/moved_experiment.py). With an object-store URI there is no file sqlite can
lock, so the study is kept in memory and persisted inside Tune's own searcher checkpoint, which
Tune writes to the URI with the experiment state and reads back on `--resume`.
"""

from __future__ import annotations

import inspect
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Literal

import optuna
from optuna.trial import TrialState
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from orchestrator.data_access import is_uri
from orchestrator.moved_experiment import StudyStorage, restoring_experiment

FAILURE_CONSTRAINT = "failure_guard"  # > 0: a failure guard stopped the trial (infeasible)
# TPE's random start-up trials. Optuna's default is 10 and the sweep used min(10, trials / 2):
# with 20 trials, 10 random configs, and with ASHA-pruned and NaN trials mis-told, 17 of 20
# were the random sampler's. bench/tpe_startup.py measures, for 8- and 20-trial sweeps, the
# share of broken-region samples and the best value found against this count and against
# TPE's `gamma` (below); see the README.
MIN_STARTUP_TRIALS = 3
STARTUP_TRIALS_SHARE = 0.2
# TPE models the best `gamma(n)` of n finished trials against the rest. Optuna's default,
# ceil(0.1 n), is one or two trials in an 8- to 20-trial sweep: TPE then favours configs far
# from every trial it has seen, broken regions included. The top quarter (the quantile of
# hyperopt's TPE) cuts the broken-region samples of a sweep's second half by a third (8
# trials) to two thirds (20) in the bench. Optuna 4.9 deprecated `gamma` (removal planned for
# 6.0); without it the sampler keeps Optuna's default.
TOP_SHARE = 0.25
MAX_TOP_TRIALS = 25  # Optuna's cap

Ending = Literal["completed", "converged", "pruned", "stopped", "failed"]
TOLD_STATE: dict[str, TrialState] = {
    "completed": TrialState.COMPLETE, "converged": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED, "stopped": TrialState.PRUNED, "failed": TrialState.FAIL,
}


def startup_trials(trials: int) -> int:
    """How many of a sweep's first trials TPE samples at random before it models the results."""
    return max(MIN_STARTUP_TRIALS, round(STARTUP_TRIALS_SHARE * trials))


def top_quarter(finished_trials: int) -> int:
    """TPE's `gamma`: how many of the finished trials it models as the good ones."""
    return min(math.ceil(TOP_SHARE * finished_trials), MAX_TOP_TRIALS)


def trial_ending(result: dict[str, Any] | None, error: bool, max_epochs: int) -> Ending:
    """How a trial ended, from what Tune hands `Searcher.on_trial_complete`.

    result: the trial's last result (None when it errored or never ran); error: whether it
    raised; max_epochs: the sweep's budget. A guard's verdict is in the last result
    (`health/guard`, `health/failure`); a trial that stopped before its budget without a
    verdict and without an error was stopped by the scheduler (ASHA).
    """
    epoch = epoch_of(result) if result else None
    if error or epoch is None:
        return "failed"
    if result.get("health/guard"):
        return "stopped" if result.get("health/failure", True) else "converged"
    if epoch >= max_epochs:
        return "completed"
    return "pruned"


def epoch_of(result: dict[str, Any]) -> int | None:
    """The epoch a result reports: the trial loop's `epoch`, else Tune's `training_iteration`."""
    for key in ("epoch", "training_iteration"):
        if isinstance(result.get(key), (int, float)):
            return int(result[key])
    return None


class GuardAwareOptunaSearch(OptunaSearch):
    """Ray Tune's OptunaSearch that tells its study how each trial ended (module docstring).

    space, metric, mode, sampler, storage, study_name: as OptunaSearch's; max_epochs: the
    sweep's budget, to tell a pruned trial from a completed one.
    """

    def __init__(self, space: Callable, metric: str, mode: str, sampler: optuna.samplers.BaseSampler,
                 max_epochs: int, storage: optuna.storages.BaseStorage | None = None,
                 study_name: str | None = None):
        self._max_epochs = max_epochs
        self._values: dict[str, dict[int, float]] = {}  # trial id -> epoch -> finite metric
        self.endings: dict[str, Ending] = {}  # trial id -> how it ended, as told
        super().__init__(space=space, metric=metric, mode=mode, sampler=sampler,
                         storage=storage, study_name=study_name)

    def _setup_study(self, mode: str) -> None:
        super()._setup_study(mode)
        self._fail_orphans()

    def restore(self, checkpoint_path: str) -> None:
        """Tune's saved searcher state, its study read from where this searcher's is.

        Tune restores the searcher of a resumed experiment from a copy of the state in a
        staging directory, not from the experiment directory: the study file is the one this
        searcher (unpickled inside `restoring_experiment`) already opened.
        """
        if isinstance(self._storage, StudyStorage):
            with restoring_experiment(self._storage.experiment_dir):
                super().restore(checkpoint_path)
        else:
            super().restore(checkpoint_path)
        self._fail_orphans()

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._completed_trials.add(trial_id)
        ot_trial = self._ot_trials[trial_id]
        if self._study_trial(ot_trial.number).state.is_finished():
            return  # told before the sweep was resumed from an older snapshot
        if result:
            self._report(trial_id, result)
        self._tell_intermediate_values(trial_id)
        ending = trial_ending(result, error, self._max_epochs)
        best = self._best_value(trial_id)
        if ending in ("completed", "converged") and best is None:
            ending = "stopped"  # no finite metric: broken, though no guard said so
        self.endings[trial_id] = ending
        ot_trial.set_user_attr("ending", ending)
        if ending == "stopped" and result:
            ot_trial.set_user_attr("guard", str(result.get("health/guard") or "non-finite metric"))
        if ending != "failed":
            ot_trial.set_constraint(FAILURE_CONSTRAINT, 1.0 if ending == "stopped" else 0.0)
        state = TOLD_STATE[ending]
        self._ot_study.tell(ot_trial, best if state == TrialState.COMPLETE else None, state=state)

    def _report(self, trial_id: str, result: dict[str, Any]) -> None:
        """Keep the result's metric as the trial's intermediate value at its epoch."""
        value, step = result.get(self.metric), epoch_of(result)
        values = self._values.setdefault(trial_id, {})
        if trial_id not in self._ot_trials or step is None or step in values:
            return
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # TPE sorts pruned trials by their last value; NaN would rank nowhere
        values[step] = float(value)

    def _tell_intermediate_values(self, trial_id: str) -> None:
        """Write the ended trial's intermediate values to its study trial."""
        ot_trial = self._ot_trials[trial_id]
        for step, value in sorted(self._values.get(trial_id, {}).items()):
            try:
                ot_trial.report(value, step)
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # told before the sweep was resumed from an older snapshot

    def _best_value(self, trial_id: str) -> float | None:
        values = self._values.get(trial_id, {}).values()
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)

    def _study_trial(self, number: int) -> optuna.trial.FrozenTrial:
        return next(trial for trial in self._ot_study.get_trials(deepcopy=False)
                    if trial.number == number)

    def _fail_orphans(self) -> None:
        """FAIL the study's RUNNING trials that no live Tune trial of this searcher owns."""
        live = {trial.number for trial_id, trial in self._ot_trials.items()
                if trial_id not in self._completed_trials}
        for frozen in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number not in live:
                self._ot_study.tell(frozen.number, state=TrialState.FAIL)


def make_searcher(space: Callable, metric: str, mode: str, *, max_epochs: int, trials: int,
                  seed: int, experiment_dir: str, study_name: str,
                  concurrency: int | None = None) -> Searcher:
    """The sweep's searcher: GuardAwareOptunaSearch with multivariate TPE, its study kept at
    `experiment_dir` (below), behind a ConcurrencyLimiter when `concurrency`.

    space: a define-by-run callable (orchestrator.spaces.OptunaSpace); trials: the sweep's
    trial count (sets the random start-up, `startup_trials`); seed: the sampler's seed;
    experiment_dir: the task's experiment directory, the study's file is in it when local
    (an object-store URI keeps the study in memory, module docstring).
    """
    options = {"gamma": top_quarter} if "gamma" in inspect.signature(
        optuna.samplers.TPESampler).parameters else {}
    # Chosen on purpose, not news for every sweep: `group` is "experimental" since Optuna 2.8,
    # `gamma` deprecated since 4.9. Filters for these two messages, kept for the process: the
    # tasks of a sweep make their searchers side by side in threads, and `catch_warnings` is not
    # thread-safe (two overlapping blocks let the zoo sweep print the `group` warning).
    warnings.filterwarnings("ignore", message=r"Argument ``group`` is an experimental feature",
                            category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=r"`gamma` has been deprecated", category=FutureWarning)
    sampler = optuna.samplers.TPESampler(
        seed=seed,
        multivariate=True,
        group=True,  # conditional parameters (`when:`) are modelled jointly, not at random
        constant_liar=True,  # parallel trials do not all sample the same point
        n_startup_trials=startup_trials(trials),
        **options,
    )
    storage = None
    if not is_uri(experiment_dir):
        Path(experiment_dir).mkdir(parents=True, exist_ok=True)
        storage = StudyStorage(experiment_dir)
    searcher = GuardAwareOptunaSearch(space, metric, mode, sampler, max_epochs,
                                      storage=storage, study_name=study_name)
    if concurrency:
        return ConcurrencyLimiter(searcher, max_concurrent=concurrency)
    return searcher
