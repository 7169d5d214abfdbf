"""A sweep whose driver is killed with SIGKILL mid-sweep, twice, then finished with `--resume`.

Checked against Tune's own record of the experiment and its checkpoints: every trial has
exactly one MLflow run and no run is left RUNNING, trials that had finished are not rerun, no
metric has two values at one step, every epoch in MLflow is the one in the trial's surviving
checkpoint (and its exported weights' history), and a resumed trial reports what the same
trial trained without a stop reports.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from ray.tune import ExperimentAnalysis

from orchestrator.moved_experiment import study_url
from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.mlflow_checks import (
    assert_matches_uninterrupted, assert_one_value_per_step, assert_runs_mirror_checkpoints,
    checkpoint_history, runs_of)
from tests.test_cli_errors import assert_one_line_error

TRIALS = 4
SWEEP = ["sweep", "--figures-of-best", "0", "--task", "retrieval", "--trials", str(TRIALS), "--max-epochs", "3",
         "--name", "resumable"]


def trial_runs(client: MlflowClient):
    experiment = client.get_experiment_by_name("retrieval")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")


def finished(runs):
    """Trial runs that ended: their status tag says how, and MLflow closed them (the tag is
    written first: a kill between the two leaves a run the resumed sweep closes)."""
    return [run for run in runs if run.data.tags.get("orchestrate.status") not in (None, "running")
            and run.info.end_time is not None]


def epochs_logged(client: MlflowClient) -> int:
    return sum(len(client.get_metric_history(run.info.run_id, "time/train_seconds"))
               for run in trial_runs(client))


def kill_driver_when(workdir: Path, client: MlflowClient, ready, *args: str) -> None:
    """Start the sweep's driver and SIGKILL it once `ready(runs)` holds (its Ray goes with it)."""
    driver = subprocess.Popen(orchestrate_command(*SWEEP, *args), cwd=workdir, env=orchestrate_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(1)
        if (workdir / "mlflow.db").exists() and ready(trial_runs(client)):
            break
        assert driver.poll() is None, "the sweep ended before it could be killed"
    else:
        pytest.fail("the sweep never reached the state to kill it in")
    kill_driver(driver)


def kill_driver(driver: subprocess.Popen) -> None:
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # let the killed driver's Ray processes go


@pytest.mark.slow
def test_driver_killed_twice_mid_sweep_is_resumed_to_what_an_unbroken_sweep_records(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    # first kill: some trials finished, others running
    kill_driver_when(workdir, client, lambda runs: len(finished(runs)) >= 2 and len(runs) > len(finished(runs)))
    before = {run.data.tags["orchestrate.trial_id"]: run for run in finished(trial_runs(client))}
    logged = epochs_logged(client)
    print(f"killed with {len(before)} trials finished, {len(trial_runs(client)) - len(before)} running")
    # second kill: the resumed driver logged a new epoch
    kill_driver_when(workdir, client, lambda runs: epochs_logged(client) > logged, "--resume")

    resumed = orchestrate(*SWEEP, "--resume", cwd=workdir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Sweep summary" in resumed.stdout and "Traceback" not in resumed.stdout + resumed.stderr

    experiment_dir = workdir / "ray_results" / "resumable" / "retrieval"
    tune_trials = {trial.trial_id for trial in ExperimentAnalysis(str(experiment_dir)).trials}
    runs = assert_runs_mirror_checkpoints(client, "retrieval", experiment_dir, "val/mean_r1")
    assert {run.data.tags["orchestrate.trial_id"] for run in runs} == tune_trials  # runs = trials
    assert len(tune_trials) == TRIALS
    assert_one_value_per_step(client, "retrieval")
    by_trial = {run.data.tags["orchestrate.trial_id"]: run for run in runs}
    for trial_id, earlier in before.items():  # finished trials were not rerun
        later = by_trial[trial_id]
        assert later.info.end_time == earlier.info.end_time
        assert later.data.tags["orchestrate.status"] == earlier.data.tags["orchestrate.status"]
    replaced = [run for run in runs if "orchestrate.replaces" in run.data.tags]
    print(f"{len(replaced)} runs replaced after re-run epochs")

    # a trial that was resumed from a checkpoint and trained on reports what it would have
    resumed_trials = [run for run in runs if int(run.data.tags["orchestrate.attempts"]) > 1
                      and run.data.metrics.get("best/epoch", 0) >= 1]
    assert resumed_trials
    longest = max(resumed_trials, key=lambda run: len(
        client.get_metric_history(run.info.run_id, "val/mean_r1")))
    assert assert_matches_uninterrupted(client, longest) >= 1




HELD_SPACE = """
metric: val/mean_r1
mode: max
budget: {{max_epochs: {epochs}, grace_period: {epochs}, reduction_factor: 2}}
fixed: {{release_dir: "{release}", hold_at_evaluation: {epochs}}}
parameters:
  learning_rate: {{type: float, low: 1.0e-3, high: 3.0e-3, log: true}}
"""


HELD_SWEEP = ["sweep", "--figures-of-best", "0", "--task", "tests.faults.held:held_at_last_epoch"]


def held_task_space(workdir: Path, epochs: int) -> Path:
    """Write the held task's space into workdir/search_spaces; its release directory."""
    release = workdir / "release"
    release.mkdir()
    spaces = workdir / "search_spaces"
    spaces.mkdir()
    (spaces / "held_at_last_epoch.yaml").write_text(HELD_SPACE.format(release=release, epochs=epochs))
    return release


class HeldSweep:
    """A running sweep of tests.faults.held's task: each trial waits in its last epoch until a
    file named after it (or `all`) appears in `release`. Tune saves its experiment state every
    `save_state_every_s` seconds (TUNE_GLOBAL_CHECKPOINT_S; None: Tune's default)."""

    def __init__(self, workdir: Path, epochs: int, *args: str, save_state_every_s: str | None = "120"):
        self.workdir = workdir
        self.release = held_task_space(workdir, epochs)
        self.args = [*HELD_SWEEP, *args, "--name", "held"]
        self.experiment_dir = workdir / "ray_results" / "held" / "held_at_last_epoch"
        self.client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
        env = orchestrate_env(plugins=True)
        if save_state_every_s is not None:
            env["TUNE_GLOBAL_CHECKPOINT_S"] = save_state_every_s
        self.driver = subprocess.Popen(orchestrate_command(*self.args), cwd=workdir, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
        self.deadline = time.monotonic() + 300

    def running(self) -> bool:
        """The driver is alive and the test has time left (assert it while waiting)."""
        return self.driver.poll() is None and time.monotonic() < self.deadline

    def kill(self) -> None:
        kill_driver(self.driver)

    def resume(self) -> subprocess.CompletedProcess:
        """Release every trial and run the sweep to its end with --resume."""
        (self.release / "all").touch()
        return orchestrate(*self.args, "--resume", cwd=self.workdir, plugins=True)


def saved_trials(experiment_dir: Path) -> dict[str, tuple[bool, int]]:
    """Trial id -> whether Tune's saved experiment state has the trial ended, and how many
    epochs the checkpoint that state names as its latest holds (0: none)."""
    if not list(experiment_dir.glob("experiment_state-*.json")):
        return {}
    return {trial.trial_id: (trial.status in ("TERMINATED", "ERROR"),
                             len(checkpoint_history(Path(trial.checkpoint.path))) if trial.checkpoint else 0)
            for trial in ExperimentAnalysis(str(experiment_dir)).trials}


def saved_trials_while_running(experiment_dir: Path) -> dict[str, tuple[bool, int]]:
    """saved_trials, or none while the driver is still copying its state file over."""
    try:
        return saved_trials(experiment_dir)
    except (ValueError, OSError, KeyError):
        return {}


@pytest.mark.slow
@pytest.mark.parametrize("epochs", [3, 1], ids=["saved-at-epoch-2", "saved-before-epoch-1"])
def test_a_trial_that_ended_after_tunes_last_saved_state_is_recorded_as_it_ended(workdir, epochs):
    """The driver dies after a trial ended (MLflow has all its epochs, its run closed) but
    before Tune saved its experiment state again, which still has the trial running, at an
    older checkpoint or none. The resumed sweep trains it no more, and Tune's record of it
    becomes the checkpoint it ended with: the one MLflow mirrors and `best` exports from.

    Tune saves its state when it starts, every TUNE_GLOBAL_CHECKPOINT_S seconds (120 here),
    and when a trial has checkpointed `num_to_keep` (2) times since the last save: a trial of
    3 epochs held in its last one is saved at epoch 2; a trial of 1 epoch only when it starts.
    """
    # two trials: the sweep must go on (the other trial held) when the first ends, or Tune
    # would save its state at the sweep's end
    held_sweep = HeldSweep(workdir, epochs, "--trials", "2")
    release, experiment_dir, client = held_sweep.release, held_sweep.experiment_dir, held_sweep.client
    held = (False, epochs - 1)  # saved while the trial waits in its last epoch

    def saved_held():  # trials that started (have a run) and that Tune saved as held
        started = {run.data.tags["orchestrate.trial_id"] for run in runs_of(client, "held_at_last_epoch", "trial")}
        return [trial for trial, saved in saved_trials_while_running(experiment_dir).items()
                if saved == held and trial in started]

    while not saved_held():
        assert held_sweep.running(), "Tune never saved a held trial"
        time.sleep(0.5)
    trial_id = saved_held()[0]
    (release / trial_id).touch()

    def closed_run():  # its status tag is written just before MLflow closes it: wait for both
        return [run for run in runs_of(client, "held_at_last_epoch", "trial")
                if run.data.tags["orchestrate.trial_id"] == trial_id
                and run.data.tags.get("orchestrate.status") != "running" and run.info.end_time is not None]

    while not closed_run():  # kill the driver as soon as the trial's run is closed
        assert held_sweep.running(), "the trial never ended"
        time.sleep(0.2)
    held_sweep.kill()
    (ended,) = closed_run()
    assert ended.data.tags["orchestrate.status"] == "completed"
    assert len(client.get_metric_history(ended.info.run_id, "val/mean_r1")) == epochs
    # the case: Tune's saved state still has the trial held (its next save was due later)
    assert saved_trials(experiment_dir)[trial_id] == held

    resumed = held_sweep.resume()
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    runs = assert_runs_mirror_checkpoints(client, "held_at_last_epoch", experiment_dir, "val/mean_r1")
    assert saved_trials(experiment_dir)[trial_id] == (True, epochs)
    trial = next(trial for trial in ExperimentAnalysis(str(experiment_dir)).trials if trial.trial_id == trial_id)
    assert trial.last_result["epoch"] == epochs  # Tune's last result is the trial's end too
    assert_one_value_per_step(client, "held_at_last_epoch")
    (run,) = [run for run in runs if run.data.tags["orchestrate.trial_id"] == trial_id]
    assert run.info.run_id == ended.info.run_id and run.info.end_time == ended.info.end_time  # not rerun
    assert run.data.tags["orchestrate.attempts"] == "1"


@pytest.mark.slow
def test_a_trial_whose_saved_checkpoint_was_deleted_since_resumes_from_its_newest_complete_one(workdir, monkeypatch):
    """Tune deletes a trial's older checkpoints (num_to_keep) as soon as a newer one registers,
    and saves its experiment state only every so often: a driver killed in between leaves a
    saved state naming a checkpoint that is gone. The resumed trial goes on from the newest
    complete checkpoint in its directory, keeping its MLflow run, and ends as it would have.

    One trial of 4 epochs, held in its 4th: Tune saves its state at the start and after the
    trial's 2nd checkpoint (num_to_keep = 2 since the last save), not after the 3rd. The test
    deletes the checkpoint that state names, as Tune does when that one scores lowest.
    """
    held_sweep = HeldSweep(workdir, 4, "--trials", "1")
    experiment_dir, client = held_sweep.experiment_dir, held_sweep.client

    def three_epochs_logged():
        runs = runs_of(client, "held_at_last_epoch", "trial") if (workdir / "mlflow.db").exists() else []
        return [run for run in runs if len(client.get_metric_history(run.info.run_id, "val/mean_r1")) == 3]

    while not three_epochs_logged():  # the trial is held in its 4th epoch
        assert held_sweep.running(), "the trial never reached epoch 3"
        time.sleep(0.5)
    held_sweep.kill()
    (before,) = three_epochs_logged()
    trial_id = before.data.tags["orchestrate.trial_id"]
    # the case: the saved state names the trial's checkpoint of epoch 2, and one of epoch 3 exists
    assert saved_trials(experiment_dir)[trial_id] == (False, 2)
    (saved,) = ExperimentAnalysis(str(experiment_dir)).trials
    shutil.rmtree(saved.checkpoint.path)
    assert 3 in {len(checkpoint_history(path)) for path in (experiment_dir / f"trial_{trial_id}").glob("checkpoint_*")
                 if (path / "result.json").exists()}

    resumed = held_sweep.resume()
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "1 trial(s) resume from a checkpoint Ray Tune deleted" in resumed.stdout

    runs = assert_runs_mirror_checkpoints(client, "held_at_last_epoch", experiment_dir, "val/mean_r1")
    assert saved_trials(experiment_dir)[trial_id] == (True, 4)
    assert_one_value_per_step(client, "held_at_last_epoch")
    (run,) = runs
    assert run.data.tags["orchestrate.status"] == "completed"
    # went on from epoch 3: the run is the same one, no epoch was trained again
    assert run.info.run_id == before.info.run_id and "orchestrate.replaces" not in run.data.tags
    monkeypatch.chdir(workdir)  # the sweep's space path is relative to it
    assert assert_matches_uninterrupted(client, run) == 4


@pytest.mark.slow
def test_a_trial_started_after_tunes_last_saved_state_leaves_no_run_and_no_directory(workdir):
    """The driver dies while a trial runs that Tune's saved state does not name yet (Tune
    saves every TUNE_GLOBAL_CHECKPOINT_S, 120 here). The resumed sweep samples a new trial in
    its place; the dead trial's run is deleted and its directory removed, so the sweep's runs
    and directories are Tune's trials (the random-kill soak found its directory left behind)."""
    held_sweep = HeldSweep(workdir, 2, "--trials", "2", "--concurrency", "1")
    release, experiment_dir, client = held_sweep.release, held_sweep.experiment_dir, held_sweep.client

    def started() -> set[str]:
        if not (workdir / "mlflow.db").exists():
            return set()
        return {run.data.tags["orchestrate.trial_id"] for run in runs_of(client, "held_at_last_epoch", "trial")}

    while True:  # until a trial runs, with its directory, that the saved state does not name
        assert held_sweep.running(), "no trial ran unrecorded"
        saved = saved_trials_while_running(experiment_dir)
        unrecorded = [trial for trial in started() - set(saved) if (experiment_dir / f"trial_{trial}").is_dir()]
        if unrecorded:
            break
        for trial in saved:  # the state names the first trial: let it end so the next starts
            (release / trial).touch()
        time.sleep(0.5)
    held_sweep.kill()
    (dead,) = unrecorded
    assert dead not in saved_trials(experiment_dir)

    resumed = held_sweep.resume()
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "removed 1 trial director(ies) Ray Tune has no record of" in resumed.stdout

    tune_trials = {trial.trial_id for trial in ExperimentAnalysis(str(experiment_dir)).trials}
    assert len(tune_trials) == 2 and dead not in tune_trials
    assert not (experiment_dir / f"trial_{dead}").exists()
    runs = assert_runs_mirror_checkpoints(client, "held_at_last_epoch", experiment_dir, "val/mean_r1")
    assert {run.data.tags["orchestrate.trial_id"] for run in runs} == tune_trials
    assert_one_value_per_step(client, "held_at_last_epoch")


@pytest.mark.slow
def test_a_sweep_killed_before_tune_first_saved_its_state_starts_anew_on_resume(workdir):
    """Killed after Tune wrote tuner.pkl but before its first experiment state (the two-task
    kill soak hit it): Tuner.can_restore accepts the directory, Tuner.restore logs an error
    traceback and ran one trial instead of the sweep's. The resumed sweep starts the experiment
    anew: every trial runs, the dead trials' runs and directories are gone.

    The state is removed by the test after a kill while a trial is held: what the driver had
    left had it been killed before Tune's first save."""
    held_sweep = HeldSweep(workdir, 2, "--trials", "2", save_state_every_s=None)
    experiment_dir, client = held_sweep.experiment_dir, held_sweep.client
    while not list(experiment_dir.glob("trial_*/checkpoint_*")):  # a trial is held in epoch 2
        assert held_sweep.running(), "no trial reached its 2nd epoch"
        time.sleep(0.5)
    held_sweep.kill()
    dead = {path.name for path in experiment_dir.glob("trial_*")}
    for state in experiment_dir.glob("experiment_state-*.json"):
        state.unlink()
    assert (experiment_dir / "tuner.pkl").exists() and dead

    resumed = held_sweep.resume()
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Failed to restore" not in resumed.stdout + resumed.stderr
    tune_trials = {trial.trial_id for trial in ExperimentAnalysis(str(experiment_dir)).trials}
    assert len(tune_trials) == 2
    assert not dead & {path.name for path in experiment_dir.glob("trial_*")}
    runs = assert_runs_mirror_checkpoints(client, "held_at_last_epoch", experiment_dir, "val/mean_r1")
    assert {run.data.tags["orchestrate.trial_id"] for run in runs} == tune_trials
    assert all(run.data.tags["orchestrate.status"] == "completed" for run in runs)


@pytest.mark.slow
def test_a_sweep_moved_after_a_kill_resumes_where_it_is_now_and_writes_nothing_at_the_old_path(workdir):
    """Killed, its storage moved (a larger disk, another machine), resumed with the new
    --storage: Tune resumes a moved experiment, but the study its pickled searcher held pointed
    at the old path (the resume died in sqlite's "unable to open database file"), and so did
    the storage of the third trial, sampled after the resume (it failed on Ray's "Unable to set
    up cluster storage")."""
    held_sweep = HeldSweep(workdir, 2, "--trials", "3", "--concurrency", "1", save_state_every_s="1")
    experiment_dir, release = held_sweep.experiment_dir, held_sweep.release
    while True:  # until Tune saved a state with the first trial ended and the second held
        assert held_sweep.running(), "no state with a trial ended and one running was saved"
        saved = saved_trials_while_running(experiment_dir)
        if saved:
            (release / next(iter(saved))).touch()
        if len(saved) == 2 and sorted(ended for ended, _ in saved.values()) == [False, True]:
            break
        time.sleep(0.5)
    held_sweep.kill()
    moved = workdir / "moved"
    shutil.move(workdir / "ray_results", moved)

    (release / "all").touch()
    resumed = orchestrate(*held_sweep.args, "--resume", "--storage", str(moved), cwd=workdir, plugins=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert not (workdir / "ray_results").exists()

    experiment_dir = moved / "held" / "held_at_last_epoch"
    tune_trials = {trial.trial_id for trial in ExperimentAnalysis(str(experiment_dir)).trials}
    assert len(tune_trials) == 3
    study = optuna.load_study(study_name="held_at_last_epoch", storage=study_url(experiment_dir))
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 3
    runs = assert_runs_mirror_checkpoints(held_sweep.client, "held_at_last_epoch", experiment_dir, "val/mean_r1")
    assert {run.data.tags["orchestrate.trial_id"] for run in runs} == tune_trials


@pytest.mark.slow
def test_resuming_a_sweep_not_saved_there_starts_it_saying_so_and_a_resume_with_another_budget_is_refused(workdir):
    """A sweep moved without passing its new --storage, or a mistyped --name: --resume finds
    nothing saved. It says so in one line and starts the sweep (one killed before it saved
    anything must start), rather than starting from scratch unnoticed. Resumed then with
    another --trials, it is refused in one line: Tune would run the trials it was started with."""
    (held_task_space(workdir, 1) / "all").touch()
    args = [*HELD_SWEEP, "--name", "elsewhere", "--resume"]
    result = orchestrate(*args, "--trials", "1", cwd=workdir, plugins=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    experiment_dir = workdir / "ray_results" / "elsewhere" / "held_at_last_epoch"
    assert (f"[held_at_last_epoch] --resume: nothing of sweep 'elsewhere' is saved in {experiment_dir}; "
            "starting it (if it was moved, stop and pass --storage where it is now)") in result.stdout
    assert len(ExperimentAnalysis(str(experiment_dir)).trials) == 1

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    before = [(run.info.run_id, run.info.status, run.info.end_time) for run in client.search_runs(
        [client.get_experiment_by_name("held_at_last_epoch").experiment_id])]
    refused = orchestrate(*args, "--trials", "2", cwd=workdir, plugins=True)
    assert_one_line_error(refused, "sweep 'elsewhere' of task held_at_last_epoch was started with --trials 1 "
                          "--max-epochs 1; a resumed sweep keeps them")
    after = [(run.info.run_id, run.info.status, run.info.end_time) for run in client.search_runs(
        [client.get_experiment_by_name("held_at_last_epoch").experiment_id])]
    assert after == before
