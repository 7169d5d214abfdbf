"""The README's demo, for real: a sweep through the CLI on a local Ray, MLflow on sqlite, export.

Slow (minutes): it trains real models. It checks what the product promises a newcomer: ASHA
prunes, MLflow holds one sweep run with one nested run per trial and per-epoch metrics, the
winner clearly beats chance, and the exported weights reproduce the recorded metric.
"""

import json

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate

TRIALS = 8
STATUSES = {"completed", "converged", "pruned", "stopped", "failed"}


@pytest.mark.slow
def test_demo_sweep_prunes_tracks_beats_chance_and_exports_a_reproducible_winner(workdir):
    sweep = orchestrate("sweep", "--task", "retrieval", "--trials", str(TRIALS), "--name", "demo",
                        cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    print(sweep.stdout[-4000:])
    assert "writing the demo dataset" in sweep.stdout
    assert "Sweep summary" in sweep.stdout

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(sweeps) == 1 and len(trials) == TRIALS
    parent = sweeps[0].info.run_id
    assert all(run.data.tags["mlflow.parentRunId"] == parent for run in trials)
    assert all(run.data.tags["orchestrate.status"] in STATUSES for run in trials)
    assert all(run.data.tags["orchestrate.reason"] for run in trials)
    assert all(run.info.status in ("FINISHED", "FAILED") for run in trials)
    statuses = [run.data.tags["orchestrate.status"] for run in trials]
    assert "pruned" in statuses, statuses
    # healthy demo trials: no failure guard may stop one (a plateau stop is not a failure)
    guards = [run.data.tags.get("orchestrate.guard") for run in trials]
    assert set(guards) <= {None, "plateau"}, guards

    # every epoch of every trial is a step of its metric history
    for run in trials:
        history = client.get_metric_history(run.info.run_id, "val/mean_r1")
        assert sorted(m.step for m in history) == list(range(1, len(history) + 1))
        assert client.get_metric_history(run.info.run_id, "train/loss")
        assert run.data.params["learning_rate"]

    # the winner beats chance (1 / number of val images) at least tenfold
    best = max(run.data.metrics.get("best/val/mean_r1", 0.0) for run in trials)
    chance = next(iter(trials)).data.metrics["val/chance/mean_r1"]
    assert best >= 10 * chance, (best, chance)

    export = orchestrate("best", "--task", "retrieval", "--out", "winners", cwd=workdir)
    assert export.returncode == 0, export.stderr
    winners = workdir / "winners"
    assert {p.name for p in winners.iterdir()} == {"config.yaml", "metrics.json", "model.pt", "README.md"}
    state = torch.load(winners / "model.pt", weights_only=True)
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    metrics = json.loads((winners / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(best)
    config = yaml.safe_load((winners / "config.yaml").read_text())
    assert config["task"] == "tasks.retrieval:task" and "temperature" in config["config"]
    assert metrics["run_id"] in (winners / "README.md").read_text()

    report = orchestrate("report", "--task", "retrieval", cwd=workdir)
    assert report.returncode == 0 and report.stdout.count("demo-") == TRIALS, report.stdout

    evaluation = orchestrate("evaluate", "--model", "winners", "--split", "val", cwd=workdir)
    assert evaluation.returncode == 0, evaluation.stderr
    reproduced = json.loads(evaluation.stdout)["mean_r1"]
    assert abs(reproduced - metrics["value"]) <= 1e-3
