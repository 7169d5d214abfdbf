"""The preflight before Ray: one build, training step, evaluation and probe of a task, in process;
a misspelt metric or a broken task is one line and nothing written; the guards a task can and
cannot have are listed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from orchestrator.preflight import (
    PREFLIGHT_SAMPLES, PreflightFailed, install_demo_data, preflight_all, run_preflight,
)
from orchestrator.sweep_input import SweepOptions, prepare
from tests import preflight_tasks
from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.test_cli_errors import assert_nothing_written, assert_one_line_error


def write_space(directory: Path, name: str, **changes) -> Path:
    space = {"metric": "val/accuracy", "mode": "max",
             "budget": {"max_epochs": 2, "grace_period": 2},
             "parameters": {"learning_rate": {"type": "float", "low": 0.005, "high": 0.02, "log": True}},
             **changes}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def prepared(tmp_path, monkeypatch, reference: str, **changes):
    monkeypatch.chdir(tmp_path)
    space = write_space(tmp_path, reference.split(":")[1], **changes)
    return prepare(reference, space, None, SweepOptions(name="preflight"))


def preflight_of(one):
    """run_preflight, its temporary demo data removed (nothing is installed in these tests)."""
    result = run_preflight(one, seed=0)
    if result.demo_dir is not None:
        shutil.rmtree(result.demo_dir)
    return result


def preflight_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("orchestrate-preflight-*"))


def test_a_misspelt_metric_is_one_line_exit_2_and_nothing_written(workdir, tmp_path_factory):
    write_space(workdir, "space", metric="val/acuracy")
    # a temporary directory of this run's own: other sweeps on the machine write theirs to /tmp
    private_tmp = tmp_path_factory.mktemp("tmpdir")
    result = subprocess.run(
        orchestrate_command("sweep", "--task", "tests.zoo.noise:task", "--space", "space.yaml"),
        cwd=workdir, env={**orchestrate_env(plugins=True), "TMPDIR": str(private_tmp)},
        capture_output=True, text=True, timeout=900)
    assert_one_line_error(result, "space.yaml: metric 'val/acuracy' is not reported by task "
                          "zoo_noise_encoder; its evaluate reports: val/accuracy, val/chance/accuracy")
    assert_nothing_written(workdir, "space.yaml")  # no demo data, no mlflow.db, no ray_results
    assert not list(private_tmp.glob("orchestrate-preflight-*"))  # no temporary demo data left


def test_the_guards_on_and_off_are_listed_with_why(tmp_path, monkeypatch):
    one = prepared(tmp_path, monkeypatch, "tests.zoo.zero_loss:task", metric="val/mae", mode="min",
                   health={"plateau": {"enabled": False}})
    result = preflight_of(one)
    on = {item.guard for item in result.guards_on()}
    off = {item.guard: item.gaps for item in result.guards_off()}
    assert on == {"non_finite", "impossible_value", "flat_line"}
    assert off["embedding_collapse"] == (
        "no probe/<modality>/offdiag_cosine, dim_std or zero_fraction reported",)
    assert off["modality_ignored"] == ("no probe/<modality>_shuffled/<metric> reported",)
    assert off["plateau"] == ("disabled by health.plateau.enabled: false",)
    lines = result.lines()
    assert lines[0].startswith("[zoo_zero_loss] preflight passed in ")
    assert lines[1].startswith("[zoo_zero_loss] guards on: non_finite (all ")
    assert "plateau (disabled by health.plateau.enabled: false)" in lines[2]
    params = result.mlflow_params()
    assert "flat_line (train/loss)" in params["guards_on"]
    assert "modality_ignored (no probe/<modality>_shuffled/<metric> reported)" in params["guards_off"]


def test_the_preflight_asks_for_a_data_subset_when_the_config_has_the_field(tmp_path, monkeypatch):
    preflight_tasks.BUILT_WITH.clear()
    with_field = prepared(tmp_path, monkeypatch, "tests.preflight_tasks:recording")
    assert preflight_of(with_field).subset
    assert preflight_tasks.BUILT_WITH[-1].max_samples_per_split == PREFLIGHT_SAMPLES
    without = prepared(tmp_path, monkeypatch, "tests.preflight_tasks:strict_config")
    assert not preflight_of(without).subset
    assert not hasattr(preflight_tasks.BUILT_WITH[-1], "max_samples_per_split")


def test_a_task_that_raises_fails_its_preflight_in_one_line_naming_the_step(tmp_path, monkeypatch,
                                                                            tmp_path_factory):
    one = prepared(tmp_path, monkeypatch, "tests.preflight_tasks:broken_step")
    # a temporary directory of this test's own: other sweeps on the machine write theirs to /tmp
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("tmpdir")))
    before = preflight_dirs()
    with pytest.raises(PreflightFailed) as raised:
        run_preflight(one, seed=0)
    message = str(raised.value)
    assert message.startswith("task preflight_broken_step failed its preflight in training_step: "
                              "RuntimeError: ")
    assert "shapes cannot be multiplied" in message
    assert "\n" not in message and "--debug shows the traceback" in message
    assert preflight_dirs() <= before and not (tmp_path / "data").exists()


def test_plausible_maxima_must_name_reported_keys(tmp_path, monkeypatch):
    space = prepared(tmp_path, monkeypatch, "tests.zoo.class_leak:task",
                     health={"leakage": {"plausible_max": {"val/acc": 0.9}}})
    with pytest.raises(PreflightFailed, match="health.leakage.plausible_max names 'val/acc', which "
                       "task zoo_class_leak does not report"):
        run_preflight(space, seed=0)
    task = prepared(tmp_path, monkeypatch, "tests.preflight_tasks:plausible")
    with pytest.raises(PreflightFailed, match="task preflight_plausible declares plausible_max for "
                       "'val/acuracy', which its evaluate does not report"):
        run_preflight(task, seed=0)


def test_fresh_demo_data_waits_in_a_temporary_directory_until_its_sweep_starts(tmp_path, monkeypatch):
    one = prepared(tmp_path, monkeypatch, "tests.zoo.noise:task")
    assert one.make_demo_data
    [ready] = preflight_all([one], seed=0, console=Console(file=open("/dev/null", "w")))
    temporary = ready.preflight.demo_dir
    assert temporary.is_dir() and not ready.data_dir.exists()
    install_demo_data(ready, seed=0)
    assert (ready.data_dir / "labels.csv").is_file() and not temporary.exists()


def test_a_guard_whose_warm_up_outlasts_the_budget_is_listed_as_a_blind_spot(tmp_path, monkeypatch):
    one = prepared(tmp_path, monkeypatch, "tests.zoo.noise:task")  # a 2-epoch budget
    result = preflight_of(one)
    ignored = next(item for item in result.guards_on() if item.guard == "modality_ignored")
    assert ignored.gaps[-1].startswith("judges from report 5 on, after this sweep's 2-epoch budget")
    assert any("modality_ignored: judges from report 5 on" in line for line in result.lines())
