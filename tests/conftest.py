import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to run the CLI in, as a new user would."""
    return tmp_path
