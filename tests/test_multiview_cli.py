"""The multiview layouts through the real `orchestrate` console script, as a user meets them.

`orchestrate data --check DIR` prints the layout, objects per split and every problem (exit 2
on any); `orchestrate sweep --data-dir DIR` refuses a broken or leaking dataset with one
`error:` line, exit 2, nothing written; and a 1-trial 1-epoch sweep runs on an MVCNN tree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.multiview.layouts import mvcnn
from tests.conftest import orchestrate, place_demo_encoders
from tests.fixtures.multiview.trees import (
    co3d_frame,
    co3d_sequence_name,
    mvcnn_name,
    write_co3d_tree,
    write_mvcnn_tree,
    write_view,
)


def test_data_check_prints_the_layout_and_objects_per_split(tmp_path):
    tree = write_mvcnn_tree(tmp_path / "modelnet40_images_new_12x")
    result = orchestrate("data", "--task", "multiview", "--check", str(tree), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"layout:   {mvcnn.LAYOUT}" in lines
    assert mvcnn.LAYOUT.startswith("ModelNet40 MVCNN renders (<class>/<train|test>/")
    assert "splits:   train 16, val 4, test 12 objects" in lines
    assert "source:   split: the dataset's own train/ and test/ folders (train 20, test 12 objects)" in lines
    assert lines[-1] == "no problems found"


def test_data_check_lists_every_problem_of_a_broken_co3d_tree_and_exits_2(tmp_path):
    write_co3d_tree(tmp_path)
    sequence = co3d_sequence_name(0, 1)
    (tmp_path / co3d_frame("apple", sequence, 3)).unlink()
    (tmp_path / co3d_frame("apple", sequence, 4)).unlink()
    result = orchestrate("data", "--task", "multiview", "--check", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "2 problems:" in result.stdout
    for frame in (3, 4):
        assert f"names {co3d_frame('apple', sequence, frame)}, which does not exist" in result.stdout


def sweep_refusal(data_dir: Path, workdir: Path) -> str:
    """Run a sweep on data_dir from an empty workdir; assert exit 2, one error line, nothing
    written; return that line."""
    workdir.mkdir()
    result = orchestrate("sweep", "--figures-of-best", "0", "--task", "multiview", "--data-dir", str(data_dir), cwd=workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), errors
    assert list(workdir.iterdir()) == []
    return errors[0]


def test_sweep_refuses_an_object_with_one_view_in_one_line_and_writes_nothing(tmp_path):
    tree = write_mvcnn_tree(tmp_path / "data")
    for view in range(2, 13):
        (tree / "airplane" / "test" / mvcnn_name("airplane", 7, view)).unlink()
    line = sweep_refusal(tree, tmp_path / "work")
    assert "airplane_0007.obj.shaded_v001.png: the only view of object airplane/airplane_0007" in line


def test_sweep_refuses_an_object_in_train_and_test(tmp_path):
    tree = write_mvcnn_tree(tmp_path / "data")
    for view in (1, 2):
        write_view(tree / "chair" / "test" / mvcnn_name("chair", 2, view), "copy", view)
    line = sweep_refusal(tree, tmp_path / "work")
    assert "object chair/chair_0002 is in train and test" in line


@pytest.mark.slow
def test_a_one_trial_one_epoch_sweep_runs_on_an_mvcnn_tree(tmp_path):
    tree = place_demo_encoders(write_mvcnn_tree(tmp_path / "modelnet40_images_new_12x"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = orchestrate(
        "sweep", "--figures-of-best", "0", "--task", "multiview", "--data-dir", str(tree), "--trials", "1", "--max-epochs", "1",
        "--name", "fixture", cwd=workdir,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[multiview] data: ModelNet40 MVCNN renders" in result.stdout
    assert "train 16, val 4, test 12 objects" in result.stdout

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("multiview")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(runs) == 1
    assert runs[0].data.tags["orchestrate.status"] not in ("stopped", "failed"), runs[0].data.tags
    assert 0.0 <= runs[0].data.metrics["val/auroc"] <= 1.0
