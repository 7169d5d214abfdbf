"""Builds and runs one task's Ray Tune experiment: OptunaSearch + ASHA + health stopper + MLflow.

`run` executes a sweep prepared by orchestrator/sweep_input.py (which checks everything a user
can get wrong before Ray starts) on an already-connected Ray and returns its ledger.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from rich.console import Console

from orchestrator.best_figures import draw_leaders, leaders_to_draw
from orchestrator.callbacks import LedgerCallback
from orchestrator.cluster_info import alive_nodes, cluster_params
from orchestrator.data_access import LocationError, join_location, publish_directory
from orchestrator.data_check import inspect_dataset, summary_line
from orchestrator.interruption import InterruptWatch
from orchestrator.moved_experiment import ResumableSearchGenerator, restoring_experiment
from orchestrator.outcomes import OutcomeLedger
from orchestrator.preflight import install_demo_data
from orchestrator.progress import ProgressDisplay
from orchestrator.resume_point import (
    TRIAL_DIR_PREFIX, has_saved_state, recreate_gone_checkpoints, remove_unrecorded_trials)
from orchestrator.searcher import make_searcher
from orchestrator.slot_shares import NewestFirstASHA, SharedSlotLimiter
from orchestrator.spaces import OptunaSpace, SearchSpaceSpec
from orchestrator.sweep_input import PreparedSweep, SweepOptions, sweep_storage, trial_resources
from orchestrator.tracking import DATA_LEAK, FinalResult, MlflowTracker
from orchestrator.trainable import TrialPlan, run_trial
from orchestrator.user_errors import UsageError

DEMO_DATA_DIR = "demo-data"  # <storage>/<sweep>/demo-data/<task>: demo data every node reads
CHECKPOINTS_KEPT = 2


@dataclass(frozen=True)
class TaskSweep:
    """One task's sweep as it ended: its ledger, its tracker, and whether Ctrl-C stopped it."""

    ledger: OutcomeLedger
    tracker: MlflowTracker
    interrupted: bool


def place_data(prepared: PreparedSweep, options: SweepOptions, on_cluster: bool,
               console: Console) -> PreparedSweep:
    """Write the demo data on first use and, on a cluster, put it where every node reads it.

    The driver writes demo data to ./data/<task> on its own node; on a cluster (--address) that
    directory is copied to `<storage>/<sweep>/demo-data/<task>` and the trials read it there.
    Returns the sweep with the location its trials read.
    """
    task = prepared.task
    if prepared.make_demo_data:
        console.print(f"[{task.name}] no data at {prepared.data_dir}: writing the demo dataset there",
                      highlight=False, markup=False, soft_wrap=True)
        install_demo_data(prepared, options.seed)  # its preflight's copy, moved into place
    location = prepared.data_location
    if on_cluster and prepared.default_data:
        location = join_location(sweep_storage(options), DEMO_DATA_DIR, task.name)
        try:
            publish_directory(prepared.data_dir, location)
        except LocationError as error:
            raise UsageError(str(error)) from None
        console.print(f"[{task.name}] demo data copied to {location}, where every node reads it",
                      highlight=False, markup=False, soft_wrap=True)
    return replace(prepared, make_demo_data=False, data_location=location)


def run(
    prepared: PreparedSweep, options: SweepOptions, client: MlflowClient, experiment_id: str,
    console: Console, stop: threading.Event | None = None,
    before_drawing: Callable[[], None] | None = None, share_slots: bool = False,
) -> TaskSweep:
    """Run one task's sweep to its end or to a Ctrl-C (orchestrator/interruption.py).

    In the main thread Ray Tune catches Ctrl-C itself. Beside other tasks (a thread of its
    own, orchestrator/concurrent_sweeps.py) the sweep stops when `stop` is set, as Tune stops
    on a Ctrl-C, and ends as interrupted; its progress is then one line per event.
    `before_drawing` is called once the experiment has ended, before the best trials are drawn
    (beside other tasks: it waits for their experiments, so drawings take no trial's slot).
    `share_slots`: the task's trials in flight are capped at its share of the cluster's slots
    (orchestrator/slot_shares.py; beside other tasks).
    """
    task, spec = prepared.task, prepared.spec
    metric, mode = spec.metric, spec.mode
    if prepared.make_demo_data:
        prepared = place_data(prepared, options, on_cluster=False, console=console)
    report = prepared.data_report or inspect_dataset(task, prepared.data_dir)
    report.raise_if_unusable(allow_leaks=options.allow_data_leak)
    console.print(f"[{task.name}] data: {summary_line(report)}",
                  highlight=False, markup=False, soft_wrap=True)
    for leak in report.leaks:  # only reached with --allow-data-leak
        console.print(f"[{task.name}] warning: label leak allowed by --allow-data-leak: {leak}",
                      highlight=False, markup=False, soft_wrap=True)
    leaks = report.leaks

    ledger = OutcomeLedger(metric, mode, prepared.max_epochs)
    tracker = MlflowTracker(
        client, experiment_id, options.name, task.name, ledger,
        sweep_params={
            "task": task.name, "task_reference": prepared.task_reference, "metric": metric,
            "mode": mode, "trials": options.trials, "max_epochs": prepared.max_epochs,
            "grace_period": min(spec.budget.grace_period, prepared.max_epochs),
            "reduction_factor": spec.budget.reduction_factor, "seed": options.seed,
            "search_space": str(prepared.space_path), "data_dir": prepared.data_location,
            **cluster_params(alive_nodes()),
            **(prepared.preflight.mlflow_params() if prepared.preflight else {}),
        },
        # A user who allowed a label leak gets every run marked, so no result hides it.
        run_tags={DATA_LEAK: "; ".join(leaks)[:5000]} if leaks else {},
        full_config=lambda config: {
            "task": prepared.task_reference, "data_dir": prepared.data_location,
            "max_epochs": prepared.max_epochs,
            "config": task.config_model.model_validate(config).model_dump(),
        },
        resume_command=options.resume_hint(),
        searched=list(spec.parameters),
    )
    tracker.start_sweep()

    plan = TrialPlan(
        task_reference=prepared.task_reference, data_dir=prepared.data_location,
        max_epochs=prepared.max_epochs, metric=metric, mode=mode, health=spec.health,
    )
    trainable = registered_trainable(task.name, plan, trial_resources(options))
    watch = InterruptWatch(options.resume_hint())
    # One live table at a time fits a terminal; tasks side by side print lines.
    display = ProgressDisplay(task.name, ledger, console, live=stop is None)
    callbacks = [LedgerCallback(ledger), tracker, display, watch]
    experiment_dir = prepared.experiment_dir(options)
    resuming = options.resume and tune.Tuner.can_restore(experiment_dir)
    if options.resume and not resuming:
        # Killed before anything was saved, starting is right; but a sweep moved elsewhere (or
        # a mistyped --name) would start from scratch unnoticed.
        console.print(f"[{task.name}] --resume: nothing of sweep {options.name!r} is saved in {experiment_dir}; "
                      "starting it (if it was moved, stop and pass --storage where it is now)",
                      highlight=False, markup=False, soft_wrap=True)
    if resuming:
        if gone := recreate_gone_checkpoints(experiment_dir):
            console.print(f"[{task.name}] {len(gone)} trial(s) resume from a checkpoint Ray Tune deleted "
                          "after it last saved its state: each goes on from its newest complete checkpoint",
                          highlight=False, markup=False, soft_wrap=True)
        if unrecorded := remove_unrecorded_trials(experiment_dir):
            console.print(f"[{task.name}] removed {len(unrecorded)} trial director(ies) Ray Tune has no record "
                          "of (started after it last saved its state; new trials take their place)",
                          highlight=False, markup=False, soft_wrap=True)
    # Killed before Tune first saved its state, the experiment has only its tuner.pkl: Tune's
    # restore then fails to read the state (an error traceback) and runs one trial. Start anew.
    if resuming and has_saved_state(experiment_dir):
        with restoring_experiment(experiment_dir):  # its study where it is now, if moved
            tuner = tune.Tuner.restore(
                experiment_dir, trainable=trainable, resume_unfinished=True, resume_errored=True
            )
        _use_callbacks(tuner, callbacks)
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, num_samples=options.trials,
                search_alg=_searcher(spec, options, prepared.max_epochs, experiment_dir, task.name,
                                     share_slots),
                scheduler=_scheduler(spec, prepared.max_epochs, share_slots),
                trial_dirname_creator=_trial_dirname,
                # A worker process per trial costs a Python start and the imports of torch and
                # the task: bench/reuse_actors.py measured 1-epoch trials at 0.40x the wall
                # time with reused workers. run_trial builds everything per call, so nothing
                # carries over from one trial to the next.
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=task.name,
                storage_path=sweep_storage(options),
                stop=_stopped_by_health_guard,
                callbacks=callbacks,
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=CHECKPOINTS_KEPT,
                    checkpoint_score_attribute=metric,
                    checkpoint_score_order=mode,
                ),
                failure_config=tune.FailureConfig(max_failures=options.max_failures),
                verbose=0,
            ),
        )
    final_results, interrupted = None, False
    in_main_thread = threading.current_thread() is threading.main_thread()
    handler_before = signal.getsignal(signal.SIGINT)
    try:
        grid = tuner.fit()
        if before_drawing is not None:
            before_drawing()
        final_results = {
            _trial_id(result): FinalResult(
                result.metrics, None if result.error is None else str(result.error),
                result.checkpoint)
            for result in grid
        }
        if not (watch.interrupted or (stop is not None and stop.is_set())):
            _draw_best_trials(prepared, ledger, final_results, options, tracker, console)
    except KeyboardInterrupt:  # a Ctrl-C Ray Tune did not catch
        interrupted = True
        raise
    finally:
        interrupted = interrupted or watch.interrupted or (stop is not None and stop.is_set())
        if not interrupted and in_main_thread:  # Tune leaves its handler; a later Ctrl-C must work
            signal.signal(signal.SIGINT, handler_before)
        tracker.end_sweep(final_results, interrupted=interrupted)
    return TaskSweep(ledger, tracker, interrupted)


def _draw_best_trials(prepared: PreparedSweep, ledger: OutcomeLedger,
                      final_results: dict[str, FinalResult], options: SweepOptions,
                      tracker: MlflowTracker, console: Console) -> None:
    """The best trials' figures, from their best epochs, into their runs (best_figures.py)."""
    checkpoints = {trial_id: final.checkpoint for trial_id, final in final_results.items()}
    leaders = leaders_to_draw(ledger, checkpoints, options.figures_of_best)
    if not leaders:
        return
    console.print(f"[{prepared.task.name}] drawing the figures of the best trials (their best epochs)",
                  highlight=False, markup=False, soft_wrap=True)
    problems = draw_leaders(
        leaders, checkpoints, prepared.task_reference, prepared.data_location,
        trial_resources(options), tracker.log_figures)
    for line in problems:
        console.print(f"[{prepared.task.name}] warning: {line}", highlight=False, markup=False,
                      soft_wrap=True)


def registered_trainable(task_name: str, plan: TrialPlan, resources: dict[str, float]) -> str:
    """Register `run_trial` with this task's plan and resources under a name of the task's own;
    returns the name, which the task's Tuner is given.

    Tune keeps trainables in one registry per Ray job, and a trial looks its trainable up by
    name: tasks swept at once under one name (Tune takes the function's `__name__`) would run
    each other's plan. The name is fixed per task, so a resumed sweep finds its trainable.
    That registry is not thread-safe (two threads registering at once break its flush), so
    trainables are registered here, one at a time, and Tune is handed the name only.
    """
    name = f"run_trial_{task_name}"
    trainable = tune.with_resources(tune.with_parameters(run_trial, plan=plan), resources)
    trainable.__name__ = name
    with _REGISTERING:
        tune.register_trainable(name, trainable)
    return name


_REGISTERING = threading.Lock()


def _use_callbacks(tuner: tune.Tuner, callbacks: list) -> None:
    """Give a restored Tuner this process's callbacks.

    Tune restores the callbacks pickled when the sweep began, with that moment's (empty)
    state; the ledger and tracker of this process must be the ones that see the results.
    """
    run_config = getattr(getattr(tuner, "_local_tuner", None), "get_run_config", lambda: None)()
    if run_config is None:
        raise UsageError("this Ray version cannot resume a sweep with new callbacks; start a new --name")
    run_config.callbacks = callbacks


def _searcher(spec: SearchSpaceSpec, options: SweepOptions, max_epochs: int,
              experiment_dir: str, task_name: str, share_slots: bool) -> Any:
    searcher = make_searcher(
        OptunaSpace(spec), spec.metric, spec.mode, max_epochs=max_epochs, trials=options.trials,
        seed=options.seed, experiment_dir=experiment_dir, study_name=task_name,
        concurrency=None if share_slots else options.concurrency)
    if share_slots:
        searcher = SharedSlotLimiter(searcher, task_name, options.trials, options.concurrency)
    return ResumableSearchGenerator(searcher)  # what Tune wraps a Searcher in, made movable


def _scheduler(spec: SearchSpaceSpec, max_epochs: int, share_slots: bool = False) -> ASHAScheduler:
    scheduler = NewestFirstASHA if share_slots else ASHAScheduler
    return scheduler(
        # The trial loop's own epoch, not Tune's count of reports: a resumed trial may report
        # an epoch again (resume_point.py), and its rungs must still be its epochs.
        time_attr="epoch",
        max_t=max_epochs,
        grace_period=min(spec.budget.grace_period, max_epochs),
        reduction_factor=spec.budget.reduction_factor,
    )


def _trial_dirname(trial: Any) -> str:
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def _trial_id(result: tune.Result) -> str:
    """A result's trial id, also for a trial that failed before it reported anything."""
    return result.metrics.get("trial_id") or Path(result.path).name.removeprefix(TRIAL_DIR_PREFIX)


def _stopped_by_health_guard(trial_id: str, result: dict[str, Any]) -> bool:
    """Tune stopper: a health verdict in a result ends its trial at once (ASHA ignores NaN)."""
    return bool(result.get("health/guard"))
