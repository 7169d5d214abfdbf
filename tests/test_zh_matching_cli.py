"""zh_matching through the real CLI on real SCAN caption excerpts: `orchestrate data --check`
(exit 0, or 2 listing every problem), `orchestrate sweep` refusing bad data in one line with
nothing written, and a 1-trial sweep that runs."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.zh_matching import data
from tests.conftest import orchestrate
from tests.zh_matching_fixture import f30k_scan_layout


def test_data_check_prints_layout_counts_and_sources_and_exits_0(workdir):
    data_dir = f30k_scan_layout(workdir / "scan")
    result = orchestrate("data", "--task", "zh_matching", "--check", str(data_dir), cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "layout:   SCAN/SGRAF precomp, im_div 5 (one feature row per image)" in lines
    assert "splits:   train 9, val 10, test 10 images" in lines
    assert any(line.startswith("source:   vocabulary: ") and "f30k_precomp_vocab.json" in line
               for line in lines)
    assert lines[-1] == "no problems found"


def break_three_files(data_dir):
    """A truncated dev_ims.npy, a test caption file one line short, a malformed vocab json."""
    features = data.features_path(data_dir, "val")
    features.write_bytes(features.read_bytes()[:-100])
    captions = data.captions_path(data_dir, "test")
    captions.write_text("\n".join(captions.read_text().splitlines()[:-1]) + "\n")
    (data_dir.parent.parent / "vocab" / "f30k_precomp_vocab.json").write_text('{"word2idx": ')


def test_data_check_lists_every_problem_and_exits_2(workdir):
    data_dir = f30k_scan_layout(workdir / "scan")
    break_three_files(data_dir)
    result = orchestrate("data", "--task", "zh_matching", "--check", str(data_dir), cwd=workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stdout
    assert "dev_ims.npy: unreadable or truncated .npy" in problems[0]
    assert "test_caps.txt: has 49 caption lines but test_ims.npy has 10 rows" in problems[1]
    assert "f30k_precomp_vocab.json: not valid JSON" in problems[2]


def test_sweep_on_bad_data_is_one_error_line_exit_2_and_writes_nothing(workdir):
    data_dir = f30k_scan_layout(workdir / "scan")
    break_three_files(data_dir)
    result = orchestrate("sweep", "--figures-of-best", "0", "--task", "zh_matching", "--data-dir", str(data_dir),
                         "--trials", "1", "--max-epochs", "1", cwd=workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "dev_ims.npy" in errors[0] and "(and 2 more problems)" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(path.name for path in workdir.iterdir()) == ["scan"]


def test_sweep_on_features_that_fit_neither_im_div_is_refused(workdir):
    data_dir = f30k_scan_layout(workdir / "scan")
    np.save(data.features_path(data_dir, "train"), np.zeros((7, 4, 8), np.float32))
    result = orchestrate("sweep", "--figures-of-best", "0", "--task", "zh_matching", "--data-dir", str(data_dir),
                         "--trials", "1", "--max-epochs", "1", cwd=workdir)
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if line.strip()]
    assert "train_caps.txt: has 45 caption lines but train_ims.npy has 7 rows" in error
    assert sorted(path.name for path in workdir.iterdir()) == ["scan"]


@pytest.mark.slow
def test_one_trial_sweep_on_real_flickr30k_captions_and_scans_vocabulary_runs(workdir):
    data_dir = f30k_scan_layout(workdir / "scan")
    result = orchestrate("sweep", "--figures-of-best", "0", "--task", "zh_matching", "--data-dir", str(data_dir),
                         "--trials", "1", "--max-epochs", "1", "--name", "real", cwd=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "data: SCAN/SGRAF precomp, im_div 5 (one feature row per image); train 9, val 10, " \
           "test 10 images" in result.stdout
    assert "f30k_precomp_vocab.json (SCAN vocab json, 500 tokens)" in result.stdout
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("zh_matching")
    [trial] = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert trial.data.tags["orchestrate.status"] == "completed", trial.data.tags
    assert trial.data.metrics["val/chance/mean_r1"] == pytest.approx(1 / 10)
