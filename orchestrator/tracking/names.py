"""The names MLflow holds for a sweep: tags, metric keys and artifact paths, in one place."""

from __future__ import annotations

from orchestrator.outcomes import BEST_EPOCH, best_metric_key  # noqa: F401 - re-exported
from orchestrator.trial_progress import EPOCH_SECONDS, TRAIN_SECONDS  # noqa: F401 - re-exported

ROLE, STATUS, REASON, GUARD = "orchestrate.role", "orchestrate.status", "orchestrate.reason", "orchestrate.guard"
SWEEP, TASK, TRIAL_ID = "orchestrate.sweep", "orchestrate.task", "orchestrate.trial_id"
PARENT = "mlflow.parentRunId"
NODE_ID = "orchestrate.node_id"  # the Ray node the trial's latest epoch ran on
DATA_LEAK = "orchestrate.data_leak"  # a label leak in the data the user chose to allow
ATTEMPTS = "orchestrate.attempts"  # times the trial's training started: first, retries, resumes
RETRIES, LAST_FAILURE = "orchestrate.retries", "orchestrate.last_failure"  # a trial Tune retried
FAILURE_OF_ATTEMPT = "orchestrate.failure.attempt-{attempt}"  # that attempt's last error line
PAUSED_SECONDS = "orchestrate.paused_seconds"  # time the sweep's driver was down, not in the duration
REPLACES = "orchestrate.replaces"  # the run (now deleted) a re-run of its epochs replaced
BEST_TRIAL = "orchestrate.best_trial"

MODEL_ARTIFACT_DIR = "model"  # the best epoch's weights and the history up to that epoch
CONFIG_ARTIFACT = "config.yaml"
ERRORS_ARTIFACT_DIR = "errors"  # errors/attempt-<n>.txt: what ended each failed attempt
HEALTH_VERDICT_ARTIFACT = "health_verdict.json"
REPORTED_PREFIXES = ("train/", "val/", "probe/", "time/")  # per-epoch keys mirrored as metrics
