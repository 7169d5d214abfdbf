import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def orchestrate(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real `orchestrate` console script as a user would."""
    executable = shutil.which("orchestrate") or str(Path(sys.executable).parent / "orchestrate")
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("ORCHESTRATE_STORAGE", None)
    return subprocess.run([executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to run the CLI in, as a new user would."""
    return tmp_path
