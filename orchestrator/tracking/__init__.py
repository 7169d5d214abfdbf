"""MLflow: one experiment per task, a parent run per sweep, a nested child run per trial.

What a run holds stays true through kills, retries and Ctrl-C: a trial run mirrors the history
in its trial's latest checkpoint, the attempts whose weights survive (trial_history.py); a run
that holds epochs a re-run replaced is replaced (trial_runs.py); each attempt and each failure
is recorded (attempts.py); durations leave out the time the sweep's driver was down
(durations.py); the sweep run ends FINISHED, or KILLED and tagged `interrupted` (sweep_run.py).
The Tune callback that drives them is tracker.py; a failing store never stops a sweep (store.py).
"""

from orchestrator.tracking.names import (  # noqa: F401 - the package's public names
    ATTEMPTS, BEST_EPOCH, BEST_TRIAL, CONFIG_ARTIFACT, DATA_LEAK, EPOCH_SECONDS,
    ERRORS_ARTIFACT_DIR, FAILURE_OF_ATTEMPT, GUARD, LAST_FAILURE, MODEL_ARTIFACT_DIR, NODE_ID,
    PARENT, PAUSED_SECONDS, REASON, REPLACES, RETRIES, ROLE, STATUS, SWEEP, TASK, TRAIN_SECONDS,
    TRIAL_ID, best_metric_key)
from orchestrator.tracking.store import TrackingUnavailable, open_client, open_experiment  # noqa: F401
from orchestrator.tracking.tracker import FinalResult, MlflowTracker  # noqa: F401
