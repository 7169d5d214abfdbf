"""Through a real sweep (local Ray, MLflow on sqlite, real Optuna): the study the sweep keeps
in its experiment directory holds every trial as it ended, none RUNNING, and agrees with what
MLflow recorded. Slow: it trains the broken_space bench task (a few seconds per trial)."""

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from orchestrator.moved_experiment import study_url
from orchestrator.searcher import FAILURE_CONSTRAINT
from tests.conftest import REPO, orchestrate

TRIALS = 6
EPOCHS = 3
# the orchestrator's trial status -> the state Optuna must hold, and whether it is infeasible
TOLD = {"completed": (TrialState.COMPLETE, 0.0), "converged": (TrialState.COMPLETE, 0.0),
        "pruned": (TrialState.PRUNED, 0.0), "stopped": (TrialState.PRUNED, 1.0)}


@pytest.mark.slow
def test_a_sweep_keeps_its_study_in_sqlite_every_trial_told_as_it_ended(workdir):
    sweep = orchestrate("sweep", "--figures-of-best", "0", "--task", "bench.tasks.broken_space:task",
                        "--space", str(REPO / "bench" / "tasks" / "broken_space.yaml"),
                        "--trials", str(TRIALS), "--max-epochs", str(EPOCHS), "--name", "s",
                        "--concurrency", "2", "--seed", "1", cwd=workdir, plugins=True)
    assert sweep.returncode in (0, 1), sweep.stdout[-3000:] + sweep.stderr[-3000:]

    study = optuna.load_study(study_name="broken_space",
                              storage=study_url(workdir / "ray_results" / "s" / "broken_space"))
    assert len(study.trials) == TRIALS
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("broken_space")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    statuses = sorted(run.data.tags["orchestrate.status"] for run in runs)
    told = sorted((t.state, t.constraints.get(FAILURE_CONSTRAINT)) for t in study.trials)
    assert told == sorted(TOLD[status] for status in statuses), (statuses, told)
    for trial in study.trials:  # pruned and stopped trials keep their finite epochs' values
        if trial.state == TrialState.COMPLETE:
            assert trial.value == max(trial.intermediate_values.values())
