"""A new sqlite tracking store is created whole or not at all.

MLflow creates its tables with dozens of migrations that sqlite does not run as one transaction;
it takes seconds. A sweep killed meanwhile left a store that no MLflow opens again ("table ...
already exists"), and the next sweep ended in MLflow's traceback. So a missing store is built
under a temporary name beside it and linked into place once complete. A link, unlike a rename,
never replaces a store that another sweep put there in the meantime.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"
CREATING = ".creating-"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a sqlite tracking URI (query options dropped); None for any other store."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    location = tracking_uri.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    return Path(location) if location and location != ":memory:" else None


def create_whole(path: Path) -> None:
    """Create an MLflow store at `path` unless a file is there; a kill leaves no store, not half
    of one (only a hidden temporary file, removed by the next creation)."""
    if path.exists():
        return
    _remove_abandoned(path)
    temporary = path.with_name(f".{path.name}{CREATING}{os.getpid()}")
    temporary.unlink(missing_ok=True)
    _create_tables(temporary)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another sweep created it first: theirs is whole too
    except OSError:  # a file system without hard links
        if not path.exists():
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def holds_no_runs(path: Path) -> bool:
    """Whether the sqlite file at `path` has no MLflow run in it (nothing lost by deleting it)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    except sqlite3.Error as error:
        return "no such table" in str(error)


def _create_tables(file: Path) -> None:
    import sqlalchemy
    # MLflow's own initialisation (its tables, then every migration to the current schema),
    # which MlflowClient runs on first opening an empty database.
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(f"{SQLITE_PREFIX}{file}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


def _remove_abandoned(path: Path) -> None:
    """Temporary stores of creations that were killed (their process is gone)."""
    for leftover in path.parent.glob(f".{path.name}{CREATING}*"):
        pid = leftover.name.rsplit(CREATING, 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
