import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

# Every Ray a test starts, in this process (ray.init, ray.cluster_utils.Cluster) or in an
# `orchestrate` it runs, listens on 127.0.0.1 only (orchestrator/local_ray.py). Set before any
# test module imports Ray, which reads it once.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def orchestrate_command(*args: str) -> list[str]:
    executable = shutil.which("orchestrate") or str(Path(sys.executable).parent / "orchestrate")
    return [executable, *args]


def orchestrate_env(plugins: bool = False) -> dict[str, str]:
    """The user's environment; with plugins, the repo is importable so tests' own tasks load."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("ORCHESTRATE_STORAGE", None)
    if plugins:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def orchestrate(*args: str, cwd: Path, timeout: int = 900, plugins: bool = False
                ) -> subprocess.CompletedProcess:
    """Run the real `orchestrate` console script as a user would."""
    return subprocess.run(orchestrate_command(*args), cwd=cwd, env=orchestrate_env(plugins),
                          capture_output=True, text=True, timeout=timeout)


def place_demo_encoders(data_dir: Path, text: bool = False) -> Path:
    """Put the demos' pretrained encoders (made once per machine, cached) under
    `data_dir/pretrained/`, where the default search spaces read their weights: a real-layout
    tree then carries its weights as a user's dataset would. Returns data_dir."""
    from tasks.common.demo_encoders import place_image_encoder, place_text_encoder

    place_image_encoder(data_dir)
    if text:
        from tasks.retrieval.demo import pretraining_captions

        place_text_encoder(data_dir, pretraining_captions())
    return data_dir


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to run the CLI in, as a new user would."""
    return tmp_path


@dataclass
class DemoSweep:
    """What a demo sweep through the CLI left behind, checked for what every task promises."""

    client: Any
    trials: list  # the MLflow trial runs
    best: float  # the best trial's best target metric
    output: str  # what the sweep printed


def sweep_demo_and_export(task: str, workdir: Path, trials: int, max_epochs: int | None,
                          metric: str, figures_of_best: int | None = 1) -> DemoSweep:
    """Run `orchestrate sweep` on a task's demo data, then `best` and `evaluate`, asserting the
    contract shared by every task: the sweep succeeds, MLflow holds one sweep run with one
    nested run per trial, no failure guard stops a healthy demo trial, the best trials' figures
    are drawn after the sweep (`figures_of_best` of them; None: the sweep's default) and the
    winner's run holds them, the export is the best trial and its weights reproduce the
    recorded metric within 1e-3."""
    from mlflow.tracking import MlflowClient

    budget = [] if max_epochs is None else ["--max-epochs", str(max_epochs)]
    figures = [] if figures_of_best is None else ["--figures-of-best", str(figures_of_best)]
    sweep = orchestrate("sweep", "--task", task, "--trials", str(trials), *budget, *figures,
                        "--name", "t", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "writing the demo dataset" in sweep.stdout
    assert f"[{task}] drawing the figures of the best trials" in sweep.stdout
    assert "could not draw" not in sweep.stdout, sweep.stdout[-3000:]

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(task)
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(sweeps) == 1 and len(runs) == trials
    assert all(run.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for run in runs)
    stopped = [run.data.tags["orchestrate.reason"] for run in runs
               if run.data.tags["orchestrate.status"] in ("stopped", "failed")]
    assert not stopped, stopped  # healthy demo trials: no failure guard, no crash
    best = max(run.data.metrics.get(f"best/{metric}", float("-inf")) for run in runs)

    export = orchestrate("best", "--task", task, "--out", "winners", cwd=workdir)
    assert export.returncode == 0, export.stderr
    exported = json.loads((workdir / "winners" / "metrics.json").read_text())
    assert exported["value"] == pytest.approx(best)
    winner_plots = [artifact.path for artifact in client.list_artifacts(exported["run_id"], "plots")]
    assert any(path.endswith(".png") for path in winner_plots), winner_plots
    evaluation = orchestrate("evaluate", "--model", "winners", "--split", "val", cwd=workdir)
    assert evaluation.returncode == 0, evaluation.stderr
    reproduced = json.loads(evaluation.stdout)[metric.removeprefix("val/")]
    assert abs(reproduced - exported["value"]) <= 1e-3
    return DemoSweep(client, runs, best, sweep.stdout)
