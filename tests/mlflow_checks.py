"""What MLflow must hold after any sweep, however it was interrupted: checks shared by tests.

- every metric key of every run has at most one value per step;
- one trial run per Ray Tune trial, none left RUNNING;
- each trial run's epochs equal the history of its trial's latest checkpoint (the attempt whose
  weights survive), and its model/ artifact holds the history up to its best epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

REPORTED_PREFIXES = ("train/", "val/", "probe/", "time/")


def runs_of(client: MlflowClient, experiment_name: str, role: str) -> list:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], f"tags.`orchestrate.role` = '{role}'",
                              max_results=50000)


def steps_with_two_values(client: MlflowClient, run) -> list[tuple[str, int]]:
    """(key, step) pairs at which the run holds more than one value."""
    doubled = []
    for key in run.data.metrics:
        steps = [metric.step for metric in client.get_metric_history(run.info.run_id, key)]
        doubled += [(key, step) for step in sorted(set(steps)) if steps.count(step) > 1]
    return doubled


def assert_one_value_per_step(client: MlflowClient, experiment_name: str) -> None:
    for run in runs_of(client, experiment_name, "trial") + runs_of(client, experiment_name, "sweep"):
        doubled = steps_with_two_values(client, run)
        assert not doubled, (run.info.run_name, doubled)


def latest_checkpoints(experiment_dir: Path) -> dict[str, Path]:
    """Trial id -> the checkpoint Ray Tune's experiment state names as the trial's latest.

    Not the highest-numbered checkpoint directory: a driver killed before Tune saved its state
    can leave a later attempt's `checkpoint_000001` beside the `checkpoint_000000` that the
    trial, restarted from scratch, wrote and kept.
    """
    from ray.tune import ExperimentAnalysis

    return {trial.trial_id: Path(trial.checkpoint.path)
            for trial in ExperimentAnalysis(str(experiment_dir)).trials if trial.checkpoint is not None}


def checkpoint_history(checkpoint: Path) -> list[dict]:
    return json.loads((checkpoint / "result.json").read_text())["history"]


def epoch_values(client: MlflowClient, run_id: str, keys) -> dict[str, dict[int, float]]:
    return {key: {m.step: m.value for m in client.get_metric_history(run_id, key)} for key in keys}


def assert_runs_mirror_checkpoints(client: MlflowClient, experiment_name: str,
                                   experiment_dir: Path, metric: str) -> list:
    """One run per Tune trial, none RUNNING, each run's epochs and model/ equal to its trial's
    latest checkpoint. Returns the trial runs."""
    runs = runs_of(client, experiment_name, "trial")
    trial_dirs = {path.name.removeprefix("trial_"): path for path in experiment_dir.glob("trial_*")}
    checkpoints = latest_checkpoints(experiment_dir)
    by_trial = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["orchestrate.trial_id"], []).append(run)
    assert all(len(group) == 1 for group in by_trial.values()), by_trial
    assert set(trial_dirs) <= set(by_trial), (sorted(trial_dirs), sorted(by_trial))
    assert all(run.info.status != "RUNNING" for run in runs), [r.info.status for r in runs]
    for trial_id in trial_dirs:
        if trial_id not in checkpoints:
            continue  # the trial failed before its first epoch
        run = by_trial[trial_id][0]
        history = checkpoint_history(checkpoints[trial_id])
        keys = [key for key in history[-1] if key.startswith(REPORTED_PREFIXES)]
        logged = epoch_values(client, run.info.run_id, keys)
        for key in keys:
            expected = {epoch: float(result[key]) for epoch, result in enumerate(history, 1) if key in result}
            assert logged[key] == expected, (trial_id, key, logged[key], expected)
        best_epoch = int(run.data.metrics["best/epoch"])
        assert run.data.metrics[f"best/{metric}"] == history[best_epoch - 1][metric]
        local = client.download_artifacts(run.info.run_id, "model/result.json")
        assert json.loads(Path(local).read_text())["history"] == history[:best_epoch]
    return runs


def uninterrupted_history(client: MlflowClient, run) -> list[dict]:
    """What the trial of `run` reports when trained in this process from scratch, without a
    stop: the config, data, budget and health checks its sweep used (config.yaml, the sweep
    run's search space), one torch thread as Ray gives a 1-CPU trial."""
    import torch
    import yaml

    from orchestrator.registry import load_task
    from orchestrator.spaces import load_spec
    from orchestrator.trainable import TrialPlan, train_trial

    saved = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config.yaml")).read_text())
    sweep = client.get_run(run.data.tags["mlflow.parentRunId"])
    task = load_task(saved["task"])
    plan = TrialPlan(saved["task"], saved["data_dir"], saved["max_epochs"], task.metric, task.mode,
                     load_spec(Path(sweep.data.params["search_space"])).health)
    results: list[dict] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_trial(saved["config"], plan, None, lambda result, directory: results.append(result))
    finally:
        torch.set_num_threads(threads)
    return results


def assert_matches_uninterrupted(client: MlflowClient, run) -> int:
    """Every epoch MLflow holds of the run equals the same trial trained without a stop.
    Returns how many epochs were compared."""
    reference = uninterrupted_history(client, run)
    keys = [key for key in reference[0] if key.startswith(("train/", "val/", "probe/"))]
    logged = epoch_values(client, run.info.run_id, keys)
    epochs = len(logged[keys[0]])
    assert 0 < epochs <= len(reference)
    for key in keys:
        expected = {epoch: float(result[key]) for epoch, result in enumerate(reference[:epochs], 1)}
        assert set(logged[key]) == set(expected), key
        for epoch, value in expected.items():
            assert abs(logged[key][epoch] - value) <= 1e-6 + 1e-6 * abs(value), (key, epoch, logged[key][epoch], value)
    return epochs
