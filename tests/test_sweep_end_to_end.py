"""The README's demo, for real: a sweep through the CLI on a local Ray, MLflow on sqlite, export.

Slow (a minute or two): it trains real models. It checks what the product promises a newcomer:
ASHA prunes, MLflow holds one sweep run with one nested run per trial and per-epoch metrics, no
health guard stops a healthy demo trial, the winner beats chance tenfold, the exported weights
reproduce the recorded metric (sweep_demo_and_export), and `orchestrate report` lists the trials.
"""

import json

import pytest
import torch
import yaml

from tests.conftest import orchestrate, sweep_demo_and_export

TRIALS = 8
STATUSES = {"completed", "converged", "pruned"}


@pytest.mark.slow
def test_demo_sweep_prunes_tracks_beats_chance_and_exports_a_reproducible_winner(workdir):
    # exactly the command: `orchestrate sweep --task retrieval --trials 8`, default budget
    demo = sweep_demo_and_export("retrieval", workdir, trials=TRIALS, max_epochs=None,
                                 metric="val/mean_r1", figures_of_best=None)
    assert "Sweep summary" in demo.output

    statuses = [run.data.tags["orchestrate.status"] for run in demo.trials]
    assert set(statuses) <= STATUSES and "pruned" in statuses, statuses
    assert all(run.data.tags["orchestrate.reason"] for run in demo.trials)
    assert all(run.info.status == "FINISHED" for run in demo.trials)

    for run in demo.trials:  # every epoch of every trial is a step of its metric history
        history = demo.client.get_metric_history(run.info.run_id, "val/mean_r1")
        assert sorted(m.step for m in history) == list(range(1, len(history) + 1))
        assert demo.client.get_metric_history(run.info.run_id, "train/loss")
        assert run.data.params["learning_rate"]

    chance = demo.trials[0].data.metrics["val/chance/mean_r1"]  # 1 / number of val images
    assert demo.best >= 10 * chance, (demo.best, chance)

    winners = workdir / "winners"
    assert {p.name for p in winners.iterdir()} == {"config.yaml", "metrics.json", "model.pt", "README.md"}
    state = torch.load(winners / "model.pt", weights_only=True)
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    config = yaml.safe_load((winners / "config.yaml").read_text())
    assert config["task"] == "tasks.retrieval:task" and "temperature" in config["config"]
    run_id = json.loads((winners / "metrics.json").read_text())["run_id"]
    assert run_id in (winners / "README.md").read_text()  # the model card names its run

    report = orchestrate("report", "--task", "retrieval", cwd=workdir)
    assert report.returncode == 0, report.stderr
    assert all(run.info.run_name in report.stdout for run in demo.trials), report.stdout
