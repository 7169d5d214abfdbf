"""`orchestrate sweep` end to end, from its prepared input (sweep_input.py): check it against
earlier sweeps and preflight it, connect Ray, sweep each task, summarise."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from rich.console import Console

from orchestrator.cluster_info import alive_nodes
from orchestrator.concurrent_sweeps import sweep_side_by_side
from orchestrator.ctrl_c import raise_if_ctrl_c
from orchestrator.interruption import quiet_tune_interruption_logs
from orchestrator.local_ray import keep_on_loopback, listens_on_loopback_only
from orchestrator.node_check import check_every_node
from orchestrator.outcomes import stopped_by_guard
from orchestrator.preflight import preflight_all
from orchestrator.progress import config_text, print_full_width, summary_table
from orchestrator.slot_shares import cluster_slots
from orchestrator.tracking import open_client, open_experiment
from orchestrator.tracking.sqlite_store import sqlite_path
from orchestrator.tracking.store import unreachable
from orchestrator.tracking.sweep_run import find_sweep_run
from orchestrator.sweep import place_data, run
from orchestrator.sweep_input import PreparedSweep, SweepOptions, check_resources, trial_resources
from orchestrator.tune_noise import quiet_tune_noise
from orchestrator.user_errors import SweepFailed, SweepInterrupted, UsageError


def run_sweeps(
    prepared: list[PreparedSweep],
    options: SweepOptions,
    tracking_uri: str,
    address: str | None,
    console: Console,
) -> None:
    """Sweep the prepared tasks (sweep_input.prepare_all), all at once on the one Ray cluster
    (each its own Tune experiment) or, with options.one_at_a_time, one after another; all input
    is checked before Ray starts."""
    _check_no_earlier_sweep(prepared, options)
    _check_resume_keeps_budget(prepared, options, tracking_uri)
    prepared = preflight_all(prepared, options.seed, console)  # writes nothing when it fails
    raise_if_ctrl_c()
    _connect_ray(address, options)
    raise_if_ctrl_c()  # Ray forks its processes; a Ctrl-C then is lost (interruption.py)
    # The tracking store is checked before any trial starts: one line if it is unreachable.
    client = open_client(tracking_uri)
    experiment_ids = {one.task.name: open_experiment(client, one.task.name) for one in prepared}
    prepared = [place_data(one, options, on_cluster=address is not None, console=console)
                for one in prepared]
    # Every alive node reads the data (and can use its GPUs) before any trial starts there.
    check_every_node(alive_nodes(), [one.data_location for one in prepared], options.gpus_per_trial)
    raise_if_ctrl_c()

    if len(prepared) > 1 and not options.one_at_a_time:
        for one in prepared:
            _announce(one, options, console)
        swept_tasks = sweep_side_by_side(
            [one.task.name for one in prepared],
            lambda index, stop, wait_for_others: run(
                prepared[index], options, client, experiment_ids[prepared[index].task.name],
                console, stop, before_drawing=wait_for_others, share_slots=True),
            options.resume_hint(), slots=cluster_slots(trial_resources(options)))
    else:
        swept_tasks = []
        for one in prepared:
            _announce(one, options, console)
            swept_tasks.append(run(one, options, client, experiment_ids[one.task.name], console))
            if swept_tasks[-1].interrupted:
                break

    ledgers = [(one, swept.ledger) for one, swept in zip(prepared, swept_tasks)]
    failed_logging = [line for swept in swept_tasks for line in swept.tracker.failed_calls]
    interrupted = [(one, swept.ledger) for one, swept in zip(prepared, swept_tasks) if swept.interrupted]
    summaries = [_summary_row(one, ledger) for one, ledger in ledgers]
    print_full_width(console, summary_table(summaries))
    for one, ledger in ledgers:
        for outcome in ledger.trials.values():
            if outcome.guard:
                console.print(f"[{one.task.name}] trial {outcome.trial_id} {outcome.status} by "
                              f"{outcome.guard}: {outcome.reason}",
                              highlight=False, markup=False, soft_wrap=True)
    console.print(f"MLflow: orchestrate ui --tracking-uri {tracking_uri}  (sweep name {options.name}; "
                  f"or plain `mlflow ui --backend-store-uri {tracking_uri}`)",
                  highlight=False, soft_wrap=True)
    no_winner = [(one.task.name, ledger) for one, ledger in ledgers if ledger.best() is None]
    if failed_logging:
        console.print(f"[yellow]{len(failed_logging)} MLflow calls failed; these logs are missing:[/]")
        for line in failed_logging:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    if interrupted:
        not_started = [one.task.name for one in prepared[len(ledgers):]]
        for line in _interruption_text(interrupted, options, not_started):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        raise SweepInterrupted(options.resume_hint())
    if no_winner:
        raise SweepFailed("; ".join(_no_winner_text(name, ledger) for name, ledger in no_winner))


def _announce(one: PreparedSweep, options: SweepOptions, console: Console) -> None:
    console.print(
        f"[{one.task.name}] sweeping {options.trials} trials of up to {one.max_epochs} epochs "
        f"({one.spec.metric}, {one.spec.mode}); space {one.space_path}, data {one.data_location}",
        highlight=False, markup=False, soft_wrap=True,
    )


def _summary_row(one: PreparedSweep, ledger) -> dict[str, Any]:
    """The summary table's row of a task (progress.summary_table)."""
    winner = ledger.best()
    return {
        "task": one.task.name,
        "trials": len(ledger.trials),
        **ledger.counts(),
        "stopped": _stopped_text(ledger),
        "best": (f"none: {ledger.why_no_winner()}" if winner is None
                 else f"{winner.best_metric:.4f} ({winner.trial_id})"),
        "best_config": "" if winner is None else config_text(
            {k: v for k, v in winner.config.items() if k not in one.spec.fixed}),
    }


def _interruption_text(interrupted: list[tuple[PreparedSweep, Any]], options: SweepOptions,
                       not_started: list[str]) -> list[str]:
    """What an interrupted sweep did and did not do, per task it stopped, and the command that
    continues it."""
    per_task = []
    for task_sweep, ledger in interrupted:
        in_flight = ledger.counts()["running"]
        unsampled = max(0, options.trials - len(ledger.trials))
        per_task.append(
            f"{task_sweep.task.name}: {in_flight} trial{'s' if in_flight != 1 else ''} in flight "
            f"stopped (each resumes from its last checkpoint), {unsampled} not started")
    tasks = f"; tasks not started: {', '.join(not_started)}" if not_started else ""
    if len(interrupted) == 1:
        name = interrupted[0][0].task.name
        during = f"during task {name}: " + per_task[0].removeprefix(f"{name}: ")
    else:
        during = f"during tasks {', '.join(one.task.name for one, _ in interrupted)}: " + "; ".join(per_task)
    return [
        f"Sweep interrupted (Ctrl-C) {during}{tasks}. "
        f"MLflow marks the stopped trials and the sweep run{'s' if len(interrupted) > 1 else ''} "
        "as interrupted (KILLED).",
        "Continue it with:",
        f"  {options.resume_hint()}",
    ]


def _no_winner_text(task_name: str, ledger) -> str:
    counts = ledger.counts()
    if counts["failed"] and counts["failed"] == len(ledger.trials):
        return (f"every trial of {task_name} failed; see the reasons above and the trials' "
                "error.txt under the storage path (or rerun with --max-failures 0 --debug)")
    return (f"no trial of {task_name} finished well ({ledger.why_no_winner()}), so it has no "
            "winner; see the reasons above (`orchestrate report` keeps them)")


def _stopped_text(ledger) -> str:
    """'3 (2 chance_level, 1 flat_line)': how many trials each failure guard stopped."""
    guards = stopped_by_guard(ledger.trials.values())
    total = sum(guards.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{n} {guard}" for guard, n in sorted(guards.items())) + ")"


def _check_no_earlier_sweep(prepared: list[PreparedSweep], options: SweepOptions) -> None:
    if options.resume or "://" in options.storage:
        return
    for one in prepared:
        if Path(one.experiment_dir(options)).exists():
            raise UsageError(
                f"sweep {options.name!r} of task {one.task.name} already exists in {options.storage}; "
                "pass --resume to continue it or choose another --name"
            )


def _check_resume_keeps_budget(prepared: list[PreparedSweep], options: SweepOptions, tracking_uri: str) -> None:
    """Refuse, before anything starts, a resume that asks for another trial count or epoch
    budget than the sweep was started with (its MLflow sweep run's params).

    Ray Tune restores both: a new --trials was announced and not run (and the summary counted
    trials "not started" that no resume would start), a new --max-epochs made the trial loop
    and ASHA's last rung disagree on when a trial completed.
    """
    if not options.resume:
        return
    path = sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        return  # no store: nothing of this sweep was recorded
    try:
        client = MlflowClient(tracking_uri)
        started = {}
        for one in prepared:
            experiment = client.get_experiment_by_name(one.task.name)
            run = experiment and find_sweep_run(client, experiment.experiment_id, options.name)
            if run:
                started[one.task.name] = (one, run.data.params)
    except Exception as error:  # noqa: BLE001 - any store failure means the same to the user
        # Said here, once: passing on would wait out the same retries again when the sweep opens it.
        raise unreachable(tracking_uri, error) from None
    for one, params in started.values():
        asked = {"trials": str(options.trials), "max_epochs": str(one.max_epochs)}
        if any(params.get(key, value) != value for key, value in asked.items()):
            raise UsageError(
                f"sweep {options.name!r} of task {one.task.name} was started with --trials "
                f"{params.get('trials')} --max-epochs {params.get('max_epochs')}; a resumed sweep keeps "
                "them (Ray Tune restores its trial count and epoch budget): resume with those, or "
                "start a new --name"
            )


def _check_reachable(address: str) -> None:
    """Fail fast on a host:port nobody listens on; `ray.init` would wait for minutes."""
    if address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        raise UsageError(
            f"cannot connect to the Ray cluster at --address {address!r} ({error}); "
            "check the address, or leave --address out to start a local Ray"
        ) from None


def _connect_ray(address: str | None, options: SweepOptions) -> None:
    import optuna
    import ray

    if address is None:  # a local Ray: nothing of it listens beyond this machine
        keep_on_loopback()

    # Workers import plug-in tasks (`module:object`) from the directory the user runs in.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.getcwd(), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Our own progress table replaces Tune's console output.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Keeping the best N checkpoints forces an experiment snapshot after every N checkpoints;
    # with epochs of a second that is often, and wanted (a resume loses less), not a warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # A failed attempt is one line of ours (progress.py) and its traceback goes to the trial's
    # error file and MLflow; Tune's own traceback only with --debug.
    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "1" if options.debug else "0"
    if not options.debug:
        quiet_tune_interruption_logs()
        quiet_tune_noise()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Token authentication stays on; Ray's notice that it is on is not news to print each run.
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    if address is not None:
        _check_reachable(address)
    try:
        ray.init(
            # "local" starts a new Ray even when another one runs on this machine (None would
            # join it: a test cluster or a colleague's sweep would take the trials).
            address=address or "local",
            include_dashboard=False if address is None else None,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(
            f"cannot connect to the Ray cluster at --address {address!r} ({first}); "
            "check the address, or leave --address out to start a local Ray"
        ) from None
    if not options.debug:
        # Worker output is already off (log_to_driver); what remains is the raylet's paragraph
        # on each dead worker, which a retry line of ours (progress.py) replaces.
        ray._private.worker._worker_logs_enabled = False
    if address is None:  # an autoscaling cluster may still add larger nodes
        if not listens_on_loopback_only():  # refused: the network could reach this sweep
            ray.shutdown()
            raise UsageError(
                "the local Ray listens beyond 127.0.0.1 (this Ray version ignores "
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0); install the Ray version the project pins, "
                "or start Ray yourself and pass its --address")
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        check_resources(options, nodes)
