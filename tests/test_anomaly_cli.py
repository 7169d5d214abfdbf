"""`orchestrate data --check` and `orchestrate sweep` on AnoVox trees, through the real CLI."""

from __future__ import annotations

import pytest

from tests.conftest import orchestrate
from tests.fixtures.anovox import trees


@pytest.mark.parametrize("write, layout", [
    (trees.write_released, "layout:   AnoVox as released"),
    (trees.write_generator, "layout:   AnoVox as its generator writes it"),
])
def test_data_check_reports_layout_splits_and_sources(workdir, write, layout):
    write(workdir / "anovox", scenarios=8, frames=2)
    result = orchestrate("data", "--task", "anomaly", "--check", "anovox", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert layout in result.stdout and "no problems found" in lines[-1]
    splits = next(line for line in lines if line.startswith("splits:"))
    assert splits.endswith(" frames") and "train " in splits and "val " in splits
    assert any(line.startswith("source:   split by scenario") for line in lines)


def test_data_check_on_broken_anovox_lists_every_problem_and_exits_2(workdir):
    plan = trees.write_released(workdir / "anovox", scenarios=8, frames=2)
    scan = next((workdir / "anovox" / plan[0][0] / "PCD").glob("*.pcd"))
    scan.write_bytes(scan.read_bytes()[:-5])
    next((workdir / "anovox" / plan[1][0] / "SEMANTIC_PCD").glob("*.pcd")).unlink()
    result = orchestrate("data", "--task", "anomaly", "--check", "anovox", cwd=workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "2 problems:" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert f"{scan.name}: LiDAR scan is unreadable: truncated" in result.stdout
    assert "has no counterpart in SEMANTIC_PCD/" in result.stdout


def test_sweep_on_broken_anovox_is_one_error_line_and_writes_nothing(workdir):
    plan = trees.write_generator(workdir / "anovox", scenarios=8, frames=2)
    lidar = next((workdir / "anovox" / plan[2][0]).glob("LIDAR(*/*.npy"))
    lidar.write_bytes(lidar.read_bytes()[:-16])
    result = orchestrate("sweep", "--figures-of-best", "0", "--task", "anomaly", "--data-dir", "anovox", "--trials", "1",
                         "--max-epochs", "1", cwd=workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and lidar.name in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(path.name for path in workdir.iterdir()) == ["anovox"]
