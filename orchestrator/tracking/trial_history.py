"""A trial run mirrors the history in its trial's latest checkpoint, epoch by epoch.

The checkpoint is the truth: it holds the history of the attempts whose weights survive, so
the run logs each epoch from it once (step = epoch), and the weights of the best epoch with
`best/<metric>` and `best/epoch` at that epoch's step. A checkpoint whose history is not longer
than what the run holds means the trial re-ran epochs the run has (a driver killed after the
run logged them, before Ray Tune saved its own state): the run cannot take a second value at a
step, so the caller replaces it and mirrors the checkpoint into the new run; unless it is the
very history the run holds, its last epoch reported again (a resumed trial does, see
orchestrator/resume_point.py): that epoch's summed training seconds, a sum of wall times that
no re-run repeats, are then the ones the run logged. Figures the
worker drew into a checkpoint's plots/ (orchestrator/trial_figures.py) go to the run's plots/.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from orchestrator.outcomes import is_better
from orchestrator.tracking.names import (
    BEST_EPOCH, MODEL_ARTIFACT_DIR, NODE_ID, REPORTED_PREFIXES, TRAIN_SECONDS, best_metric_key)
from orchestrator.tracking.store import now_ms
from orchestrator.tracking.trial_runs import TrialRun
from orchestrator.trial_figures import PLOTS_DIR
from orchestrator.training import MODEL_FILE, RESULT_FILE, best_weights_file, read_result


def mirror_checkpoint(client: MlflowClient, run: TrialRun, checkpoint: Any, metric: str,
                      mode: str) -> bool:
    """Log the epochs (and a new best epoch's weights) the checkpoint has and the run has not.

    Returns False, logging nothing, when the checkpoint's history is not longer than the
    epochs the run holds, unless it is the history the run holds (see the module docstring).
    """
    with checkpoint.as_directory() as directory:
        saved = read_result(Path(directory))
        history = saved["history"]
        if len(history) <= run.epochs_logged:
            return len(history) == run.epochs_logged and holds_epoch(client, run, history[-1], len(history))
        best_epoch = saved["best_epoch"] or best_epoch_of(history, metric, mode)
        new_best = best_epoch is not None and best_epoch > run.best_epoch
        if new_best:  # the weights first: best/<metric> never names weights MLflow lacks
            log_model(client, run.run_id, Path(directory), history, best_epoch)
        if (Path(directory) / PLOTS_DIR).is_dir():  # drawn by the worker (trial_figures.py)
            client.log_artifacts(run.run_id, str(Path(directory) / PLOTS_DIR), PLOTS_DIR)
    for epoch in range(run.epochs_logged + 1, len(history) + 1):
        # one batch per epoch: an epoch is in the run whole or not at all
        metrics = epoch_metrics(history[epoch - 1], epoch)
        tags = []
        if epoch == len(history):
            tags = epoch_tags(history[-1])
            if new_best:
                value = float(history[best_epoch - 1][metric])
                metrics += [Metric(best_metric_key(metric), value, now_ms(), best_epoch),
                            Metric(BEST_EPOCH, best_epoch, now_ms(), best_epoch)]
        client.log_batch(run.run_id, metrics=metrics, tags=tags)
        run.epochs_logged = epoch
    if new_best:
        run.best_epoch = best_epoch
    return True


def holds_epoch(client: MlflowClient, run: TrialRun, result: dict[str, Any], epoch: int) -> bool:
    """Whether the run logged this very result at step `epoch` (not a re-run of that epoch)."""
    logged = [m.value for m in client.get_metric_history(run.run_id, TRAIN_SECONDS) if m.step == epoch]
    return TRAIN_SECONDS in result and logged == [float(result[TRAIN_SECONDS])]


def epoch_metrics(result: dict[str, Any], epoch: int) -> list[Metric]:
    """An epoch's reported values as MLflow metrics at step `epoch`."""
    return [
        Metric(key, float(value), now_ms(), epoch)
        for key, value in result.items()
        if key.startswith(REPORTED_PREFIXES) and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ]


def epoch_tags(result: dict[str, Any]) -> list[RunTag]:
    """Where the epoch ran: the node and the device (orchestrator/devices.py)."""
    tags = [RunTag(NODE_ID, str(result["node_id"]))] if result.get("node_id") else []
    return tags + [RunTag(key, str(value)) for key, value in (result.get("run_tags") or {}).items()]


def log_model(client: MlflowClient, run_id: str, checkpoint_dir: Path,
              history: list[dict[str, Any]], best_epoch: int) -> None:
    """Put the best epoch's weights, with the history up to that epoch, in the run's model/."""
    with tempfile.TemporaryDirectory() as staging:
        shutil.copyfile(best_weights_file(checkpoint_dir, best_epoch, len(history)),
                        Path(staging) / MODEL_FILE)
        (Path(staging) / RESULT_FILE).write_text(
            json.dumps({"history": history[:best_epoch]}, default=float))
        client.log_artifacts(run_id, staging, MODEL_ARTIFACT_DIR)


def best_epoch_of(history: list[dict[str, Any]], metric: str, mode: str) -> int | None:
    """The first epoch reaching the best value of `metric` (None when it was never a number)."""
    best, best_epoch = None, None
    for epoch, result in enumerate(history, start=1):
        value = result.get(metric)
        if isinstance(value, (int, float)) and is_better(float(value), best, mode):
            best, best_epoch = float(value), epoch
    return best_epoch
