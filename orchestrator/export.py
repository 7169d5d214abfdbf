"""Picks a task's winning trial from MLflow, exports and registers it; loads it back.

Works from the tracking store alone, after Ray and the sweep's result directory are gone.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mlflow.tracking import MlflowClient

from orchestrator.model_registry import RegisteredWinner, download_champion, register_winner
from orchestrator.outcomes import FINISHED_WELL
from orchestrator.tracking import (
    CONFIG_ARTIFACT, GUARD, MODEL_ARTIFACT_DIR, PARENT, ROLE, STATUS, best_metric_key,
)
from orchestrator.training import MODEL_FILE, RESULT_FILE
from tasks.base import Task, TrialSetup


BEST_EPOCH = "best/epoch"  # logged beside best/<metric>: the epoch that reached it


class NothingToExport(LookupError):
    """The task has no finished trial with weights; the message is one line for a user."""


@dataclass(frozen=True)
class Winner:
    run_id: str
    sweep_run_id: str
    metric: str
    mode: str
    value: float


def find_winner(client: MlflowClient, task: Task) -> Winner:
    """The best finished trial of the task across its sweeps, by its best target metric.

    Ties go to the trial that reached that value at the earlier epoch, then to the trial
    started first: the same order as the sweep's summary and its `orchestrate.best_trial` tag.
    Trials stopped by a failure guard (leakage included) or failed are never winners.
    """
    experiment = client.get_experiment_by_name(task.name)
    if experiment is None:
        raise NothingToExport(
            f"no MLflow experiment {task.name!r} at {client.tracking_uri}; "
            f"run `orchestrate sweep --task {task.name}` first or pass --tracking-uri"
        )
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{ROLE}` = 'trial'", max_results=50000
    )
    sweeps = {
        run.info.run_id: run for run in client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`{ROLE}` = 'sweep'", max_results=50000
        )
    }
    candidates: list[tuple[tuple, Winner]] = []
    for run in runs:
        sweep = sweeps.get(run.data.tags.get(PARENT, ""))
        if sweep is None or run.data.tags.get(STATUS) not in FINISHED_WELL:
            continue
        metric, mode = sweep.data.params.get("metric", task.metric), sweep.data.params.get("mode", task.mode)
        value = run.data.metrics.get(best_metric_key(metric))
        if value is not None:
            epoch = run.data.metrics.get(BEST_EPOCH, float("inf"))
            candidates.append(((value, epoch, run.info.start_time or 0, run.info.run_id),
                               Winner(run.info.run_id, sweep.info.run_id, metric, mode, value)))
    if not candidates:
        raise NothingToExport(
            f"task {task.name!r} has no finished trial with saved weights in {client.tracking_uri}"
            + _why_none(runs, task.name)
        )
    sign = -1.0 if candidates[0][1].mode == "max" else 1.0
    return min(candidates, key=lambda item: (sign * item[0][0], *item[0][1:]))[1]


def _why_none(runs: list, task_name: str) -> str:
    """'; its 3 trials were stopped (3 leakage), ...': why no trial of the task can win."""
    stopped: dict[str, int] = {}
    for run in runs:
        if run.data.tags.get(STATUS) == "stopped":
            guard = run.data.tags.get(GUARD, "?")
            stopped[guard] = stopped.get(guard, 0) + 1
    if not stopped:
        return f"; run `orchestrate sweep --task {task_name}` first"
    guards = ", ".join(f"{count} {guard}" for guard, count in sorted(stopped.items()))
    return (f": {sum(stopped.values())} of its {len(runs)} trials were stopped by a failure guard "
            f"({guards}) and such trials are never exported; `orchestrate report --task "
            f"{task_name}` shows why")


@dataclass(frozen=True)
class Export:
    winner: Winner
    registered: RegisteredWinner | None  # None with register=False


def export_winner(client: MlflowClient, task: Task, out_dir: Path, register: bool = True) -> Export:
    """Write config.yaml, metrics.json, model.pt and a model card README.md into out_dir and,
    with register, register the same files as a version of the MLflow model named after the
    task with the alias `champion` (model_registry.py). Registration comes first: when the
    registry refuses, out_dir is left untouched."""
    winner = find_winner(client, task)
    with tempfile.TemporaryDirectory() as staging_root:
        staging = Path(staging_root)
        client.download_artifacts(winner.run_id, CONFIG_ARTIFACT, str(staging))
        model_dir = Path(client.download_artifacts(winner.run_id, MODEL_ARTIFACT_DIR, str(staging)))
        history = json.loads((model_dir / RESULT_FILE).read_text())["history"]
        # The model artifact is logged exactly when the metric improves, with the history so far.
        best_epoch = len(history)
        run = client.get_run(winner.run_id)
        metrics = {
            "task": task.name, "run_id": winner.run_id, "sweep_run_id": winner.sweep_run_id,
            "metric": winner.metric, "mode": winner.mode, "value": winner.value,
            "epoch": best_epoch, "status": run.data.tags.get(STATUS),
            "metrics_at_epoch": history[best_epoch - 1],
        }
        config = yaml.safe_load((staging / CONFIG_ARTIFACT).read_text())
        export = staging / "export"
        export.mkdir()
        shutil.copyfile(model_dir / MODEL_FILE, export / "model.pt")
        (export / "config.yaml").write_text((staging / CONFIG_ARTIFACT).read_text())
        (export / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        (export / "README.md").write_text(_model_card(task, winner, config, metrics, run.info.run_name))
        registered = None
        if register:
            registered = register_winner(
                client, task.name, run.info.experiment_id, winner.run_id, winner.metric,
                winner.value, best_epoch, dict(run.data.params), export)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("model.pt", "config.yaml", "metrics.json", "README.md"):
            shutil.copyfile(export / name, out_dir / name)
    return Export(winner, registered)


def _model_card(task: Task, winner: Winner, config: dict, metrics: dict, run_name: str) -> str:
    params = "\n".join(f"| `{key}` | `{value}` |" for key, value in sorted(config["config"].items()))
    at_epoch = metrics["metrics_at_epoch"]
    val_rows = "\n".join(
        f"| `{key}` | {value:.4f} |" for key, value in sorted(at_epoch.items())
        if key.startswith("val/") and isinstance(value, (int, float))
    )
    return f"""# Model card: {task.name}

Winner of the `{task.name}` sweeps, exported by `orchestrate best`.

- Target metric: `{winner.metric}` ({winner.mode}) = **{winner.value:.4f}** at epoch {metrics['epoch']}
- MLflow run: `{winner.run_id}` (`{run_name}`), sweep run `{winner.sweep_run_id}`
- Trial status: {metrics['status']}
- Data: `{config['data_dir']}`
- Task: `{config['task']}`; epoch budget {config['max_epochs']}

## Files
- `model.pt`: the model's state_dict (`torch.load(path, weights_only=True)`)
- `config.yaml`: the full config to rebuild and retrain the model
- `metrics.json`: every metric reported at the exported epoch

Re-evaluate: `orchestrate evaluate --model <this directory> --split val`

## Validation metrics at the exported epoch
| metric | value |
|---|---|
{val_rows}

## Hyperparameters
| parameter | value |
|---|---|
{params}
"""


def evaluate_export(model_dir: Path, split: str, data_dir: Path | None = None) -> dict[str, float]:
    """Rebuild an exported model from its config.yaml, load model.pt, evaluate it on a split."""
    task, setup = load_exported(model_dir, data_dir)
    return task.evaluate(setup, split)


def load_exported(model_dir: Path, data_dir: Path | str | None = None, device=None) -> tuple[Task, TrialSetup]:
    """Rebuild the model of an export directory (config.yaml + model.pt) and load its weights.

    The task builds the model from the config and its dataset (data_dir, default the one in
    config.yaml: tasks derive vocabularies and sizes from their data); the weights load with
    `torch.load(weights_only=True)`, so no pickled code runs. Returns the task and its setup,
    the model in eval mode.
    """
    import torch

    from orchestrator.data_access import local_data_dir
    from orchestrator.registry import load_task
    from orchestrator.training import training_device

    exported = yaml.safe_load((Path(model_dir) / "config.yaml").read_text())
    task = load_task(exported["task"])
    config = task.config_model.model_validate(exported["config"])
    setup = task.build(config, local_data_dir(str(data_dir or exported["data_dir"])),
                       device or training_device())
    state = torch.load(Path(model_dir) / "model.pt", map_location=setup.device, weights_only=True)
    setup.model.load_state_dict(state)
    setup.model.eval()
    return task, setup


@dataclass
class Champion:
    """A task's registered winner, rebuilt: its task, its setup (model in eval mode, data
    loaded), the registered model version and the run it came from."""

    task: Task
    setup: TrialSetup
    version: str
    files: dict[str, Any]  # config.yaml and metrics.json as read


def load_champion(task_name: str, tracking_uri: str | None = None,
                  data_dir: Path | str | None = None, device=None) -> Champion:
    """Rebuild `models:/<task_name>@champion` from MLflow alone: download its files, build the
    model from its config.yaml and load model.pt with `torch.load(weights_only=True)`.

    tracking_uri: the MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db);
    data_dir: the dataset to build with (default the one the winner trained on). Raises
    LookupError when the task has no champion.
    """
    import os

    from orchestrator.defaults import DEFAULT_TRACKING_URI

    client = MlflowClient(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)
    with tempfile.TemporaryDirectory() as directory:
        files_dir, version = download_champion(client, task_name, Path(directory))
        task, setup = load_exported(files_dir, data_dir, device)
        files = {"config.yaml": yaml.safe_load((files_dir / "config.yaml").read_text()),
                 "metrics.json": json.loads((files_dir / "metrics.json").read_text())}
    return Champion(task, setup, version, files)
