"""Bad input through the real CLI: one line saying what is wrong, exit code 2, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.retrieval.data import read_index

from tests.conftest import REPO, orchestrate, orchestrate_env


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_nothing_written(workdir: Path, *allowed: str) -> None:
    assert sorted(p.name for p in workdir.iterdir()) == sorted(allowed)


def test_unknown_task(workdir):
    result = orchestrate("sweep", "--task", "no_such_task", cwd=workdir)
    assert_one_line_error(result, "unknown task 'no_such_task'", "retrieval")
    assert_nothing_written(workdir)


def test_a_mistyped_task_is_answered_before_ray_mlflow_or_torch_is_imported(workdir):
    """Seconds of imports stand between a user and the error line otherwise (5 s here before)."""
    probe = ("import sys\nfrom orchestrator.cli import app\n"
             "try:\n    app(['sweep', '--task', 'no_such_task'])\nexcept SystemExit as end:\n"
             "    print(end.code, [m for m in ('ray', 'mlflow', 'torch') if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=workdir, env=orchestrate_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "2 []", result.stdout + result.stderr
    assert "unknown task 'no_such_task'" in result.stderr
    assert_nothing_written(workdir)


def test_debug_shows_the_traceback_and_the_exit_status_says_it_failed(workdir):
    """--debug lets the error escape: Python prints its traceback, and the status survives the
    command's exit without the interpreter's teardown (entry_point.py)."""
    result = orchestrate("sweep", "--task", "no_such_task", "--debug", cwd=workdir)
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr and "TaskNotFound: unknown task 'no_such_task'" in result.stderr


def test_plugin_reference_that_does_not_import(workdir):
    result = orchestrate("sweep", "--task", "no_such_pkg.mod:task", cwd=workdir)
    assert_one_line_error(result, "cannot import module 'no_such_pkg.mod'")
    assert_nothing_written(workdir)


def test_plugin_object_without_the_task_interface(workdir):
    (workdir / "half_task.py").write_text("class HalfTask:\n    name = 'half'\n\ntask = HalfTask()\n")
    result = orchestrate("sweep", "--task", "half_task:task", cwd=workdir)
    assert_one_line_error(result, "lacks the task interface", "metric")
    assert_nothing_written(workdir, "half_task.py")


SHIPPED_SPACE = (REPO / "search_spaces" / "retrieval.yaml").read_text()


@pytest.mark.parametrize("change, expected", [
    (("low: 0.03, high: 0.2", "low: 0.3, high: 0.2"), ["parameters.temperature", "greater than high"]),
    (("{type: int, low: 0, high: 2}", "{type: integer, low: 0, high: 2}"),
     ["parameters.unfreeze_stages", "'float', 'int', 'categorical'"]),
    (("log: true, when: {parameter: unfreeze_stages,", "log: true, when: {parameter: unfreeze_stagez,"),
     ["names 'unfreeze_stagez', which is not a searched parameter"]),
    (("mode: max", "mode: [max"), ["not valid YAML at line"]),
])
def test_malformed_search_space(workdir, change, expected):
    assert change[0] in SHIPPED_SPACE
    space = workdir / "bad.yaml"
    space.write_text(SHIPPED_SPACE.replace(*change))
    result = orchestrate("sweep", "--task", "retrieval", "--space", str(space), cwd=workdir)
    assert_one_line_error(result, str(space), *expected)
    assert_nothing_written(workdir, "bad.yaml")


def test_truncated_feature_file(workdir):
    assert orchestrate("data", "--task", "zh_matching", "--out", "precomp", cwd=workdir).returncode == 0
    features = workdir / "precomp" / "dev_ims.npy"
    features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])
    result = orchestrate("sweep", "--task", "zh_matching", "--data-dir", "precomp", cwd=workdir)
    assert_one_line_error(result, "dev_ims.npy")
    assert_nothing_written(workdir, "precomp")


def test_missing_and_empty_data_directory(workdir):
    result = orchestrate("sweep", "--task", "retrieval", "--data-dir", "absent", cwd=workdir)
    assert_one_line_error(result, "--data-dir absent: no such directory")
    (workdir / "empty").mkdir()
    result = orchestrate("sweep", "--task", "retrieval", "--data-dir", "empty", cwd=workdir)
    assert_one_line_error(result, "the directory is empty", "orchestrate data --task retrieval")
    assert_nothing_written(workdir, "empty")


def test_caption_file_with_wrong_count_per_image(workdir):
    assert orchestrate("data", "--task", "retrieval", "--out", "flickr", cwd=workdir).returncode == 0
    captions = workdir / "flickr" / "captions.txt"
    lines = captions.read_text().splitlines()
    captions.write_text("\n".join(lines[:-1]) + "\n")  # the last image now has 4 captions
    result = orchestrate("sweep", "--task", "retrieval", "--data-dir", "flickr", cwd=workdir)
    assert_one_line_error(result, "has 4 captions, needs exactly 5")
    assert_nothing_written(workdir, "flickr")


def test_best_without_any_sweep(workdir):
    result = orchestrate("best", "--task", "retrieval", "--out", "winners", cwd=workdir)
    assert_one_line_error(result, "no MLflow store at sqlite:///mlflow.db", "orchestrate sweep")
    assert_nothing_written(workdir)


def test_resume_needs_a_name(workdir):
    result = orchestrate("sweep", "--task", "retrieval", "--resume", cwd=workdir)
    assert_one_line_error(result, "--resume needs the --name")


def test_unreadable_image(workdir):
    assert orchestrate("data", "--task", "retrieval", "--out", "flickr", cwd=workdir).returncode == 0
    val_image = read_index(workdir / "flickr").split_images["val"][0]  # Kaggle layout: generated split
    (workdir / "flickr" / "Images" / val_image).write_bytes(b"not a png")
    result = orchestrate("sweep", "--task", "retrieval", "--data-dir", "flickr", cwd=workdir)
    assert_one_line_error(result, val_image)
    assert_nothing_written(workdir, "flickr")


def test_unreachable_ray_address(workdir):
    result = orchestrate("sweep", "--task", "retrieval", "--address", "127.0.0.1:1", cwd=workdir,
                         timeout=300)
    assert_one_line_error(result, "cannot connect to the Ray cluster at --address '127.0.0.1:1'")
    assert_nothing_written(workdir)


def test_more_gpus_per_trial_than_any_node_has(workdir):
    result = orchestrate("sweep", "--task", "retrieval", "--gpus-per-trial", "4", cwd=workdir)
    assert_one_line_error(result, "--gpus-per-trial 4 is more than any node has")
    assert_nothing_written(workdir)


def test_resource_per_trial_that_is_not_name_equals_amount(workdir):
    result = orchestrate("sweep", "--task", "retrieval", "--resource-per-trial", "A100", cwd=workdir)
    assert_one_line_error(result, "--resource-per-trial 'A100': expected NAME=AMOUNT")
    assert_nothing_written(workdir)


def test_resource_per_trial_that_no_node_has(workdir):
    result = orchestrate("sweep", "--task", "retrieval", "--resource-per-trial", "A100=1", cwd=workdir)
    assert_one_line_error(result, "--resource-per-trial A100=1: no node of the cluster has the resource 'A100'")
    assert_nothing_written(workdir)


@pytest.mark.parametrize("resume", [(), ("--name", "s", "--resume")], ids=["new", "resumed"])
def test_unreachable_tracking_server_fails_before_any_trial(workdir, resume):
    result = orchestrate("sweep", "--task", "retrieval", "--tracking-uri", "http://127.0.0.1:9",
                         *resume, cwd=workdir, timeout=300)
    assert_one_line_error(result, "cannot reach the MLflow tracking store 'http://127.0.0.1:9'")
    assert_nothing_written(workdir)
    if resume:  # the resume's budget check reads the store first: said then, not after a preflight
        assert "preflight" not in result.stdout, result.stdout
