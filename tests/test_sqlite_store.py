"""A new sqlite tracking store is created whole or not at all; a half-created one is one line.

A real process is SIGKILLed while MLflow migrates the store it creates (the random-kill soak hit
this: the next sweep died in MLflow's "table mcp_servers already exists" traceback).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.tracking import TrackingUnavailable, open_client
from orchestrator.tracking.sqlite_store import create_whole, holds_no_runs, sqlite_path

REPO = Path(__file__).resolve().parent.parent


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _kill_while_creating(directory: Path, creation: str) -> None:
    """Run `creation` in a child process and SIGKILL it once its database holds a few tables
    (MLflow is part-way through its migrations)."""
    child = subprocess.Popen([sys.executable, "-c", creation], cwd=directory,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            for file in directory.glob("*mlflow.db*"):
                if not file.name.endswith("-journal") and len(_safe_tables(file)) >= 5:
                    child.send_signal(signal.SIGKILL)
                    child.wait()
                    return
            time.sleep(0.005)
        pytest.fail("the creation ended before it could be killed part-way")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _safe_tables(path: Path) -> set[str]:
    try:
        return _tables(path)
    except sqlite3.Error:
        return set()


def test_a_store_killed_while_being_created_leaves_no_store_and_the_next_creation_is_whole(tmp_path):
    _kill_while_creating(tmp_path, "from pathlib import Path\n"
                                   "from orchestrator.tracking.sqlite_store import create_whole\n"
                                   "create_whole(Path('mlflow.db'))\n")
    assert not (tmp_path / "mlflow.db").exists()
    assert list(tmp_path.glob(".mlflow.db.creating-*")), "the kill should leave the temporary store"

    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("after-the-kill")
    assert client.get_experiment(experiment_id).name == "after-the-kill"
    assert not list(tmp_path.glob(".mlflow.db.creating-*")), "the abandoned temporary store is removed"


def _half_migrated(path: Path) -> None:
    """The state a kill part-way through MLflow's migrations leaves (seen in the soak): tables
    beyond the schema version alembic recorded, and some tables still missing."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    # In another process: MLflow caches the store of a URI, and this one must open it afresh.
    subprocess.run([sys.executable, "-c", "from mlflow.tracking import MlflowClient\n"
                    f"MlflowClient(tracking_uri='sqlite:///{path}')"], check=True)
    first_revision = ScriptDirectory.from_config(_get_alembic_config("")).get_base()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (first_revision,))
        connection.execute("DROP TABLE webhooks")


def test_a_store_half_created_by_mlflow_itself_is_refused_in_one_line_saying_to_delete_it(tmp_path):
    _half_migrated(tmp_path / "mlflow.db")
    half = tmp_path / "mlflow.db"
    assert half.is_file() and holds_no_runs(half)

    with pytest.raises(TrackingUnavailable) as refused:
        open_client(f"sqlite:///{half}")
    message = str(refused.value)
    assert "\n" not in message
    assert f"delete {half} and run again" in message

    result = CliRunner().invoke(app, ["best", "--task", "retrieval", "--out", str(tmp_path / "out"),
                                      "--tracking-uri", f"sqlite:///{half}"])
    assert result.exit_code == 2
    assert "delete" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_store_that_holds_runs_is_never_called_safe_to_delete(tmp_path):
    path = tmp_path / "mlflow.db"
    client = open_client(f"sqlite:///{path}")
    client.create_run(client.create_experiment("kept"))
    assert not holds_no_runs(path)
    assert holds_no_runs(tmp_path / "missing.db") is False


def test_creation_keeps_a_store_another_sweep_put_there_first(tmp_path):
    path = tmp_path / "mlflow.db"
    client = open_client(f"sqlite:///{path}")
    run = client.create_run(client.create_experiment("first"))
    create_whole(path)  # a second sweep that saw no file a moment ago
    assert open_client(f"sqlite:///{path}").get_run(run.info.run_id).info.run_id == run.info.run_id


@pytest.mark.parametrize("uri, path", [
    ("sqlite:///mlflow.db", Path("mlflow.db")),
    ("sqlite:////abs/dir/store.db?timeout=20", Path("/abs/dir/store.db")),
    ("sqlite://", None), ("sqlite:///:memory:", None),
    ("http://127.0.0.1:5000", None), ("postgresql://u@h/db", None),
])
def test_sqlite_path_reads_the_file_of_sqlite_uris_only(uri, path):
    assert sqlite_path(uri) == path
