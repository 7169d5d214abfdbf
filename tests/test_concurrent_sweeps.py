"""Several tasks swept at once on one local Ray, through the real CLI (tests/side_by_side_tasks.py:
a matcher reporting val/mean_r1 and a classifier reporting val/accuracy, each its own space).

All at once: every trial runs its own task (its MLflow run holds its own task's metrics, never
the other's), the two tasks' trials run at the same time (both have a trial in flight when
Ctrl-C comes), one Ctrl-C stops both tasks as interrupted (exit 130, both sweep runs KILLED,
the trials in flight `interrupted`) and the printed command finishes both: every run complete,
one value per epoch. `--one-at-a-time`: the second task's trials start after the first task's
ended. Overlap is judged from the start and end times MLflow recorded, never from durations.
A task whose experiment ended draws its best trials only once every task's experiment has
(trials first): judged from the order of events, with plain functions in place of sweeps.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.concurrent_sweeps import sweep_side_by_side
from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.mlflow_checks import assert_one_value_per_step, runs_of
from tests.side_by_side_tasks import SPACES, classifier, matcher

TASKS = {matcher.name: "tests.side_by_side_tasks:matcher",
         classifier.name: "tests.side_by_side_tasks:classifier"}
OWN_METRIC = {matcher.name: "val/mean_r1", classifier.name: "val/accuracy"}
EPOCHS = 12  # no pruning (grace period = budget); a trial is in flight long enough to see it
EPOCH_LINE = re.compile(r"^\[(\w+)\] trial (\w+) epoch (\d+)/(\d+)")
END_LINE = re.compile(r"^\[(\w+)\] trial (\w+) (completed|converged|pruned|stopped|failed)")


def write_spaces(workdir: Path) -> None:
    (workdir / "search_spaces").mkdir()
    for name, space in SPACES.items():
        space = {**space, "budget": {"max_epochs": EPOCHS, "grace_period": EPOCHS, "reduction_factor": 2}}
        (workdir / "search_spaces" / f"{name}.yaml").write_text(yaml.safe_dump(space))


def task_args(*extra: str) -> list[str]:
    return [arg for reference in TASKS.values() for arg in ("--task", reference)] + list(extra)


def start_sweep(workdir: Path, *args: str) -> subprocess.Popen:
    """`orchestrate sweep` in its own process group, as a shell runs a foreground command."""
    return subprocess.Popen(orchestrate_command("sweep", *args), cwd=workdir,
                            env=orchestrate_env(plugins=True), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def overlap(first, second) -> bool:
    """Whether two MLflow runs' [start, end] times intersect."""
    return first.info.start_time < second.info.end_time and second.info.start_time < first.info.end_time


def interrupt_when_both_in_flight(sweep) -> list[str]:
    """Read the sweep's lines; send Ctrl-C (to its process group, as a terminal does) the moment
    each task's latest line is an epoch of a trial in its first half. Returns what it printed."""
    output: list[str] = []
    in_flight: dict[str, bool] = {}
    for line in sweep.stdout:
        output.append(line)
        if epoch := EPOCH_LINE.match(line):
            in_flight[epoch.group(1)] = int(epoch.group(3)) <= int(epoch.group(4)) // 2
        elif ended := END_LINE.match(line):
            in_flight[ended.group(1)] = False
        if len(in_flight) == len(TASKS) and all(in_flight.values()):
            os.killpg(sweep.pid, signal.SIGINT)
            return output + sweep.stdout.readlines()
    pytest.fail("the sweep ended before both tasks had a trial in flight:\n" + "".join(output)[-3000:])


@pytest.mark.slow
def test_tasks_swept_at_once_run_their_own_trials_side_by_side_and_stop_and_resume_together(workdir):
    write_spaces(workdir)
    args = task_args("--trials", "2", "--concurrency", "1", "--figures-of-best", "0", "--name", "both")
    sweep = start_sweep(workdir, *args)
    output = interrupt_when_both_in_flight(sweep)
    assert sweep.wait(timeout=120) == 130, "".join(output)[-3000:]
    text = "".join(output)
    assert f"Sweep interrupted (Ctrl-C) during tasks {matcher.name}, {classifier.name}" in text, text[-3000:]
    assert "Traceback" not in text and "MLflow calls failed" not in text
    command = text.split("Continue it with:\n", 1)[1].splitlines()[0].strip()
    assert command == "orchestrate sweep " + shlex.join([*args[:-2], "--name", "both", "--resume"])

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    stopped = {}
    for name in TASKS:
        (sweep_run,) = runs_of(client, name, "sweep")
        assert sweep_run.info.status == "KILLED" and sweep_run.data.tags["orchestrate.status"] == "interrupted"
        trials = runs_of(client, name, "trial")
        assert all(run.info.status != "RUNNING" for run in trials)
        (stopped[name],) = [run for run in trials if run.data.tags["orchestrate.status"] == "interrupted"]
    # both tasks had a trial running when Ctrl-C came: the two ran side by side
    assert overlap(stopped[matcher.name], stopped[classifier.name])

    resumed = orchestrate(*shlex.split(command)[1:], cwd=workdir, plugins=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "MLflow calls failed" not in resumed.stdout
    for name, metric in OWN_METRIC.items():
        (sweep_run,) = runs_of(client, name, "sweep")
        assert sweep_run.info.status == "FINISHED" and sweep_run.data.tags["orchestrate.status"] == "finished"
        trials = runs_of(client, name, "trial")
        assert len(trials) == 2 and all(run.info.status == "FINISHED" for run in trials)
        other = ({*OWN_METRIC.values()} - {metric}).pop()
        for run in trials:  # each trial trained its own task, every epoch recorded once
            history = client.get_metric_history(run.info.run_id, metric)
            assert sorted(point.step for point in history) == list(range(1, len(history) + 1))
            assert other not in run.data.metrics, (name, sorted(run.data.metrics))
        assert_one_value_per_step(client, name)


@pytest.mark.slow
def test_one_at_a_time_sweeps_the_second_task_after_the_first(workdir):
    write_spaces(workdir)
    swept = orchestrate("sweep", "--figures-of-best", "0", *task_args("--trials", "1", "--max-epochs", "1", "--one-at-a-time",
                                            "--name", "serial"), cwd=workdir, plugins=True)
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    first, second = ([*runs_of(client, name, "sweep"), *runs_of(client, name, "trial")] for name in TASKS)
    assert len(first) == len(second) == 2
    assert all(run.info.status == "FINISHED" for run in first + second)
    assert max(run.info.end_time for run in first) <= min(run.info.start_time for run in second)


def test_a_task_goes_on_after_its_experiment_only_once_every_task_s_experiment_ended():
    events: list[str] = []
    first_drew = threading.Event()

    def sweep_one(index, stop, wait_for_others):
        if index == 1:  # ends at once if the first task draws without waiting, else after 1 s
            first_drew.wait(1.0)
        events.append(f"experiment {index} ended")
        wait_for_others()
        events.append(f"drawing {index}")
        if index == 0:
            first_drew.set()
        return index

    assert sweep_side_by_side(["first", "second"], sweep_one, "resume") == [0, 1]
    assert events.index("drawing 0") > events.index("experiment 1 ended")
    assert events.index("drawing 1") > events.index("experiment 0 ended")


def test_a_task_that_raises_before_its_experiment_ended_holds_no_other_task_back():
    waited = threading.Event()

    def sweep_one(index, stop, wait_for_others):
        if index == 1:
            raise RuntimeError("task 1 could not start")
        wait_for_others()  # returns: task 1 raised (its thread marks it ended and sets stop)
        waited.set()
        return index

    with pytest.raises(RuntimeError, match="task 1 could not start"):
        sweep_side_by_side(["first", "second"], sweep_one, "resume")
    assert waited.is_set()
