"""Kill soak: real sweeps signalled at random moments, resumed to their end, then checked.

    python -m tests.kill_soak ROUNDS [--kills 2] [--signal KILL|INT] [--tasks retrieval ...]
        [--trials 4] [--epochs 4] [--min-delay 2] [--max-delay 60] [--move] [--seed 0] [--keep DIR]

Not part of the test suite (a round takes minutes): the faults it found are tests now
(tests/test_resume.py, tests/test_interrupt.py). Each round runs in a fresh directory: the sweep
starts, and `--kills` times, after a delay drawn uniformly from [min-delay, max-delay] seconds,
its driver gets the signal (SIGKILL: Ray goes with it; SIGINT: a user's Ctrl-C) and the sweep is
started again with `--resume`; with `--move` the storage directory is moved to a new place before
each restart, which is passed with `--storage`. A last `--resume` runs to the end. Then, for
every task: the resume exits 0 without a traceback, MLflow's runs are exactly Tune's trials and
mirror their surviving checkpoints, no metric has two values at one step, no run is left
running, the Optuna study holds every trial and none RUNNING, nothing was written where the
storage was before a move, and `orchestrate best` exports the winner. One line per round; a
failing round's directory is kept (under --keep, default a temporary directory) and named.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from ray.tune import ExperimentAnalysis

from orchestrator.moved_experiment import study_url
from orchestrator.spaces import load_spec
from tests.conftest import REPO, orchestrate, orchestrate_command, orchestrate_env
from tests.mlflow_checks import assert_one_value_per_step, assert_runs_mirror_checkpoints

SWEEP_NAME = "soak"


def sweep_args(options: argparse.Namespace, storage: Path) -> list[str]:
    tasks = [arg for task in options.tasks for arg in ("--task", task)]
    return ["sweep", *tasks, "--trials", str(options.trials), "--max-epochs", str(options.epochs),
            "--figures-of-best", "0", "--seed", str(options.seed), "--name", SWEEP_NAME,
            "--storage", str(storage)]


def signal_after(args: list[str], workdir: Path, delay: float, signum: int) -> int | None:
    """Run the sweep, signal its driver after `delay` s; its exit code if it ended first."""
    driver = subprocess.Popen(orchestrate_command(*args), cwd=workdir, env=orchestrate_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        return driver.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(driver.pid, signum)
        try:
            driver.wait(timeout=120)
        except subprocess.TimeoutExpired:  # a Ctrl-C the driver did not honour: a finding too
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
            raise AssertionError(f"the driver ignored signal {signum} for 120 s") from None
        time.sleep(3)  # let the killed driver's Ray processes go
        return None


def check(workdir: Path, storage: Path, earlier: list[Path], options: argparse.Namespace,
          last: subprocess.CompletedProcess) -> None:
    assert last.returncode == 0, f"exit {last.returncode}: {(last.stdout + last.stderr)[-2000:]}"
    assert "Traceback" not in last.stdout + last.stderr, (last.stdout + last.stderr)[-3000:]
    assert not [place for place in earlier if place.exists()], "written where the storage was"
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for task in options.tasks:
        experiment_dir = storage / SWEEP_NAME / task
        tune_trials = {trial.trial_id for trial in ExperimentAnalysis(str(experiment_dir)).trials}
        assert len(tune_trials) == options.trials, f"{task}: {len(tune_trials)} Tune trials"
        runs = assert_runs_mirror_checkpoints(client, task, experiment_dir, metric_of(task))
        assert {run.data.tags["orchestrate.trial_id"] for run in runs} == tune_trials, task
        assert all(run.info.status != "RUNNING" for run in runs), task
        assert_one_value_per_step(client, task)
        study = optuna.load_study(study_name=task, storage=study_url(experiment_dir))
        assert len(study.trials) >= options.trials, f"{task}: {len(study.trials)} study trials"
        assert not [t for t in study.trials if t.state == TrialState.RUNNING], f"{task}: RUNNING in study"
        best = orchestrate("best", "--task", task, "--out", str(workdir / "best" / task), cwd=workdir)
        assert best.returncode == 0, f"{task}: best exit {best.returncode}: {best.stderr[-1000:]}"


def metric_of(task: str) -> str:
    """The target metric of a built-in task's default space."""
    return load_spec(REPO / "search_spaces" / f"{task}.yaml").metric


def soak_round(number: int, options: argparse.Namespace, rng: random.Random, keep: Path) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix=f"round{number}-", dir=keep))
    storage, earlier = workdir / "storage-0", []
    args = sweep_args(options, storage)
    signum = signal.SIGKILL if options.signal == "KILL" else signal.SIGINT
    delays, started = [], time.monotonic()
    try:
        for kill in range(options.kills):
            delay = rng.uniform(options.min_delay, options.max_delay)
            if signal_after(args + (["--resume"] if kill else []), workdir, delay, signum) is not None:
                break  # it ended before the signal was due
            delays.append(round(delay, 1))
            if options.move and storage.exists():  # killed before it made one: nothing to move
                earlier.append(storage)
                storage = workdir / f"storage-{kill + 1}"
                shutil.move(earlier[-1], storage)
                args = sweep_args(options, storage)
        last = orchestrate(*args, "--resume", cwd=workdir, timeout=3600)
        check(workdir, storage, earlier, options, last)
    except AssertionError as failure:
        print(f"round {number}: FAILED after signals at {delays} s: {failure} (kept {workdir})", flush=True)
        return False
    print(f"round {number}: ok, signals at {delays} s, {time.monotonic() - started:.0f} s", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", type=int)
    parser.add_argument("--kills", type=int, default=2, help="signals per round before the last resume")
    parser.add_argument("--signal", choices=["KILL", "INT"], default="KILL")
    parser.add_argument("--tasks", nargs="+", default=["retrieval"])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--min-delay", type=float, default=2.0)
    parser.add_argument("--max-delay", type=float, default=60.0)
    parser.add_argument("--move", action="store_true", help="move the storage before each restart")
    parser.add_argument("--seed", type=int, default=0, help="the delays' and the sweeps' seed")
    parser.add_argument("--keep", type=Path, default=None, help="where rounds run [a temporary directory]")
    options = parser.parse_args(argv)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # the checks download artifacts
    keep = options.keep or Path(tempfile.mkdtemp(prefix="kill-soak-"))
    keep.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    failed = sum(not soak_round(number, options, rng, keep) for number in range(1, options.rounds + 1))
    print(f"{options.rounds - failed} of {options.rounds} rounds ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
