"""The winner as an MLflow model: a logged model on the winning trial's run, registered under
the task's name with the alias `champion` moved to it.

No pickled code: the model's files are the export's (model.pt, a state_dict loaded with
`torch.load(weights_only=True)`; config.yaml, the config that rebuilds it) plus an MLmodel file
whose `orchestrate` flavour names them and the function that loads them back
(`orchestrator.export.load_champion`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import LoggedModelOutput
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from orchestrator.user_errors import RegistryError

CHAMPION = "champion"
FLAVOUR = "orchestrate"
LOADER = "orchestrator.export:load_champion"
MODEL_FILES = ("model.pt", "config.yaml", "metrics.json", "README.md")
WINNER_VALUE = "orchestrate.value"  # model-version tag: the metric value it was registered for


@dataclass(frozen=True)
class RegisteredWinner:
    name: str
    version: str
    model_id: str | None
    reused: bool  # the winner was registered before: the alias moved, nothing new was created


def champion_uri(task_name: str) -> str:
    """`models:/<task>@champion`: the registered winner of a task, wherever it lives."""
    return f"models:/{task_name}@{CHAMPION}"


def register_winner(
    client: MlflowClient, task_name: str, experiment_id: str, run_id: str, metric: str,
    value: float, epoch: int, params: dict[str, str], export_dir: Path,
) -> RegisteredWinner:
    """Log export_dir's files as a model of the winning run, register it as a new version of
    the registered model `task_name` and move the alias `champion` to it.

    The same winner registered again (same run, same value) reuses its version: the alias
    moves back to it and nothing new is created. Raises RegistryError (one line) when the
    registry refuses.
    """
    try:
        _ensure_registered_model(client, task_name)
        existing = _version_of(client, task_name, run_id, value)
        if existing is not None:
            client.set_registered_model_alias(task_name, CHAMPION, existing.version)
            return RegisteredWinner(task_name, str(existing.version), existing.model_id, reused=True)
        model = client.create_logged_model(
            experiment_id, name=task_name, source_run_id=run_id, params=params,
            tags={"orchestrate.task": task_name, "orchestrate.metric": metric, WINNER_VALUE: repr(value)},
            model_type="orchestrate-winner",
        )
        try:
            with tempfile.TemporaryDirectory() as staging:
                _write_model_directory(Path(staging), export_dir, model.model_id, run_id, task_name)
                client.log_model_artifacts(model.model_id, staging)
            client.finalize_logged_model(model.model_id, "READY")
        except BaseException:
            client.delete_logged_model(model.model_id)  # no half-written model left behind
            raise
        # the run's Models column and the model's page point at each other
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=epoch)])
        # MLflow's sql registry looks a `models:/<id>` source up through the process-wide
        # tracking URI (a TODO in its code), not this client's: point that at our store meanwhile.
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        with _use_tracking_uri(client.tracking_uri):
            version = client.create_model_version(
                task_name, source=f"models:/{model.model_id}", run_id=run_id, model_id=model.model_id,
                tags={WINNER_VALUE: repr(value), "orchestrate.metric": metric},
                description=f"`{metric}` = {value:.4f} at epoch {epoch} (run `{run_id}`)",
            )
        client.set_registered_model_alias(task_name, CHAMPION, version.version)
        return RegisteredWinner(task_name, str(version.version), model.model_id, reused=False)
    except MlflowException as error:
        first = str(error.message).strip().splitlines()[0] if str(error.message).strip() else type(error).__name__
        raise RegistryError(
            f"could not register the {task_name} winner in MLflow's model registry at "
            f"{client.tracking_uri} ({first}); pass --no-register to export without registering"
        ) from None


def download_champion(client: MlflowClient, task_name: str, destination: Path) -> tuple[Path, str]:
    """Download the files of `models:/<task>@champion` into destination; returns the directory
    holding model.pt and config.yaml, and the version. LookupError (one line) when the task has
    no champion."""
    try:
        version = client.get_model_version_by_alias(task_name, CHAMPION)
    except MlflowException:
        raise LookupError(
            f"no registered model {task_name!r} with alias {CHAMPION!r} at {client.tracking_uri}; "
            f"run `orchestrate best --task {task_name} --out DIR` first") from None
    import mlflow.artifacts

    model_id = version.model_id or (
        version.source.removeprefix("models:/") if version.source.startswith("models:/m-") else None)
    if model_id:  # a logged model (the sqlite registry keeps its id only in the source URI)
        location = client.get_logged_model(model_id).artifact_location
    else:  # a version registered from a plain artifact path
        location = client.get_model_version_download_uri(task_name, version.version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=location, dst_path=str(destination), tracking_uri=client.tracking_uri)
    return Path(local), str(version.version)


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description=(
                f"Winners of the `{name}` sweeps, registered by `orchestrate best`. The alias "
                f"`{CHAMPION}` is the current winner; load it with "
                f"`orchestrator.export.load_champion('{name}')` (state_dict + config, no pickled code)."),
            tags={"orchestrate.task": name})


def _version_of(client: MlflowClient, name: str, run_id: str, value: float):
    for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        if version.tags.get(WINNER_VALUE) == repr(value):
            return version
    return None


def _write_model_directory(directory: Path, export_dir: Path, model_id: str, run_id: str,
                           task_name: str) -> None:
    """MLmodel + the export's files: what the registry holds for one winner."""
    import torch

    for name in MODEL_FILES:
        shutil.copyfile(export_dir / name, directory / name)
    model = Model(artifact_path=f"models:/{model_id}", run_id=run_id, model_id=model_id)
    model.add_flavor(
        FLAVOUR, task=task_name, weights="model.pt", config="config.yaml", loader=LOADER,
        weights_format="torch state_dict (torch.load(weights_only=True))", torch_version=str(torch.__version__),
    )
    model.save(str(directory / "MLmodel"))
