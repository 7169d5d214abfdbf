"""The winner as an MLflow model: `orchestrate best` registers it under the task's name with the
alias `champion`, without pickled code, and `load_champion` rebuilds it from MLflow alone.

Real pieces throughout: a real (tiny) zoo model trained one epoch, its weights and config
logged as the tracker logs a trial's, a real sqlite MLflow store and registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.artifacts
import pytest
import torch
import yaml
from mlflow.entities import LoggedModelStatus, Metric, Param
from mlflow.tracking import MlflowClient

from orchestrator.export import export_winner, load_champion
from orchestrator.model_registry import CHAMPION, FLAVOUR, LOADER
from orchestrator.tracking import open_experiment
from orchestrator.training import MixedPrecision, build_optimizer, seed_everything, train_one_epoch
from tests.conftest import orchestrate
from tests.zoo import plateau

TASK = plateau.task
REFERENCE = "tests.zoo.plateau:task"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    TASK.make_demo_data(root / "data", seed=0)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = open_experiment(client, TASK.name)
    sweep = client.create_run(experiment_id, run_name="sweep", tags={"orchestrate.role": "sweep"})
    client.log_batch(sweep.info.run_id, params=[Param("metric", TASK.metric), Param("mode", TASK.mode)])
    return root, uri, client, experiment_id, sweep.info.run_id


def log_trial(store, learning_rate: float, epochs: int) -> tuple[str, float, dict]:
    """Train the zoo matcher for `epochs` and record the trial as the tracker does (config.yaml,
    model/model.pt + model/result.json, best/<metric>); returns its run id, metric and weights."""
    root, _, client, experiment_id, sweep_id = store
    config = TASK.config_model(learning_rate=learning_rate)
    seed_everything(config.seed)
    setup = TASK.build(config, root / "data", torch.device("cpu"))
    optimizer, schedule = build_optimizer(setup, config, epochs, len(setup.train_batches))
    history = []
    for _ in range(epochs):
        setup.model.train()
        train_one_epoch(TASK, setup, optimizer, schedule, MixedPrecision(setup.device), config.grad_clip_norm)
        setup.model.eval()
        history.append({f"val/{k}": v for k, v in TASK.evaluate(setup, "val").items()})
    value = history[-1][TASK.metric]
    run = client.create_run(experiment_id, run_name=f"lr{learning_rate}", tags={
        "orchestrate.role": "trial", "mlflow.parentRunId": sweep_id, "orchestrate.status": "completed"})
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param("learning_rate", str(learning_rate))], metrics=[
        Metric(f"best/{TASK.metric}", value, 0, epochs), Metric("best/epoch", epochs, 0, epochs)])
    staging = root / run_id
    staging.mkdir()
    (staging / "config.yaml").write_text(yaml.safe_dump({
        "task": REFERENCE, "data_dir": str(root / "data"), "max_epochs": epochs,
        "config": config.model_dump()}))
    torch.save(setup.model.state_dict(), staging / "model.pt")
    (staging / "result.json").write_text(json.dumps({"history": history}))
    client.log_artifact(run_id, str(staging / "config.yaml"))
    client.log_artifact(run_id, str(staging / "model.pt"), "model")
    client.log_artifact(run_id, str(staging / "result.json"), "model")
    client.set_terminated(run_id, "FINISHED")
    return run_id, value, {k: v.clone() for k, v in setup.model.state_dict().items()}


def test_best_registers_the_winner_and_champion_follows_a_better_one(store, tmp_path):
    root, uri, client, experiment_id, _ = store
    first_run, first_value, first_weights = log_trial(store, learning_rate=1e-2, epochs=1)

    export = export_winner(client, TASK, tmp_path / "winners")
    assert export.winner.run_id == first_run
    registered = export.registered
    assert (registered.name, registered.version, registered.reused) == (TASK.name, "1", False)
    version = client.get_model_version_by_alias(TASK.name, CHAMPION)
    assert str(version.version) == "1" and version.run_id == first_run
    assert {p.name for p in (tmp_path / "winners").iterdir()} == {"config.yaml", "metrics.json", "model.pt", "README.md"}

    # the run's Models column and the logged model point at each other
    model = client.get_logged_model(registered.model_id)
    assert model.source_run_id == first_run and model.status == LoggedModelStatus.READY
    assert [output.model_id for output in client.get_run(first_run).outputs.model_outputs] == [registered.model_id]
    files = {Path(a.path).name for a in client.list_logged_model_artifacts(registered.model_id)}
    assert files == {"MLmodel", "model.pt", "config.yaml", "metrics.json", "README.md"}

    # registering the same winner again moves nothing and creates nothing
    again = export_winner(client, TASK, tmp_path / "winners")
    assert (again.registered.version, again.registered.reused) == ("1", True)
    assert len(client.search_model_versions(f"name = '{TASK.name}'")) == 1

    better_run, better_value, better_weights = log_trial(store, learning_rate=3e-2, epochs=3)
    assert better_value > first_value, "the longer trial should win; the fixture's data changed?"
    moved = export_winner(client, TASK, tmp_path / "winners")
    assert (moved.registered.version, moved.registered.reused) == ("2", False)
    assert client.get_model_version_by_alias(TASK.name, CHAMPION).run_id == better_run

    champion = load_champion(TASK.name, tracking_uri=uri)
    assert champion.version == "2"
    loaded = champion.setup.model.state_dict()
    assert set(loaded) == set(better_weights)
    assert all(torch.equal(loaded[key], better_weights[key]) for key in loaded)
    assert champion.task.evaluate(champion.setup, "val")["mean_r1"] == pytest.approx(better_value, abs=1e-6)
    assert champion.files["metrics.json"]["run_id"] == better_run


def test_the_registered_model_holds_no_pickled_code(store, tmp_path):
    root, uri, client, *_ = store
    if not client.search_registered_models(f"name = '{TASK.name}'"):
        log_trial(store, learning_rate=1e-2, epochs=1)
        export_winner(client, TASK, tmp_path / "winners")
    version = client.get_model_version_by_alias(TASK.name, CHAMPION)
    model_id = version.source.removeprefix("models:/")
    files = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_logged_model(model_id).artifact_location, dst_path=str(tmp_path)))
    mlmodel = yaml.safe_load((files / "MLmodel").read_text())
    assert mlmodel["flavors"] == {FLAVOUR: {
        "task": TASK.name, "weights": "model.pt", "config": "config.yaml", "loader": LOADER,
        "weights_format": "torch state_dict (torch.load(weights_only=True))",
        "torch_version": str(torch.__version__)}}
    assert not list(files.glob("*.pkl")) and "python_function" not in mlmodel["flavors"]
    state = torch.load(files / "model.pt", weights_only=True)  # refuses anything but tensors
    assert all(isinstance(tensor, torch.Tensor) for tensor in state.values())
    assert yaml.safe_load((files / "config.yaml").read_text())["task"] == REFERENCE


def test_a_task_without_a_champion_is_one_clear_error(store):
    _, uri, *_ = store
    with pytest.raises(LookupError, match="no registered model 'nobody' with alias 'champion'"):
        load_champion("nobody", tracking_uri=uri)


def test_best_no_register_exports_without_touching_the_registry(store, tmp_path):
    root, uri, client, *_ = store
    if not client.search_runs([store[3]], "tags.`orchestrate.role` = 'trial'"):
        log_trial(store, learning_rate=1e-2, epochs=1)
    versions_before = len(client.search_model_versions(f"name = '{TASK.name}'"))
    result = orchestrate("best", "--task", REFERENCE, "--out", str(tmp_path / "out"), "--no-register",
                         "--tracking-uri", uri, cwd=tmp_path, plugins=True)
    assert result.returncode == 0, result.stderr
    assert "exported zoo_plateau_matcher winner" in result.stdout
    assert "registered" not in result.stdout
    assert (tmp_path / "out" / "model.pt").is_file()
    assert len(client.search_model_versions(f"name = '{TASK.name}'")) == versions_before
