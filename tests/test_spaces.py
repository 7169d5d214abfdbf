"""Search-space files: valid ones become the right Optuna space, malformed ones fail in one line."""

from pathlib import Path

import optuna
import pytest

from orchestrator.registry import load_task
from orchestrator.spaces import OptunaSpace, SpecError, check_against_task, load_spec

VALID = """
metric: val/mean_r1
mode: max
budget: {max_epochs: 4, grace_period: 1, reduction_factor: 2}
fixed: {image_size: 32}
parameters:
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  pooling: {type: categorical, choices: [cls, mean]}
  unfreeze_stages: {type: int, low: 0, high: 2}
  unfreeze_lr_scale: {type: float, low: 0.1, high: 1.0, when: {parameter: unfreeze_stages, in: [1, 2]}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_shipped_retrieval_space_is_valid_for_its_task():
    spec = load_spec(Path("search_spaces/retrieval.yaml"))
    check_against_task(spec, load_task("tasks.retrieval:task").config_model, Path("x"))
    assert spec.metric == "val/mean_r1" and spec.mode == "max"


def test_conditional_parameter_is_sampled_only_when_its_parent_allows(tmp_path):
    spec = load_spec(write(tmp_path, VALID))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_with, seen_without = 0, 0
    for _ in range(40):
        trial = study.ask()
        fixed = OptunaSpace(spec)(trial)
        assert fixed == {"image_size": 32}
        assert 1e-4 <= trial.params["learning_rate"] <= 1e-2
        if trial.params["unfreeze_stages"] in (1, 2):
            assert "unfreeze_lr_scale" in trial.params
            seen_with += 1
        else:
            assert "unfreeze_lr_scale" not in trial.params
            seen_without += 1
        study.tell(trial, 0.0)
    assert seen_with and seen_without


@pytest.mark.parametrize(
    "change, expected",
    [
        (("mode: max", "mode: maximum"), "mode:"),
        (("budget: {max_epochs: 4,", "budget: {max_epochs: 4, patience: 3,"), "budget.patience: unknown key"),
        (("low: 1.0e-4, high: 1.0e-2", "low: 1.0e-2, high: 1.0e-4"), "parameters.learning_rate: low 0.01 is greater than high 0.0001"),
        (("choices: [cls, mean]", "choices: []"), "parameters.pooling.choices"),
        (("{type: int, low: 0, high: 2}", "{type: integer, low: 0, high: 2}"), "parameters.unfreeze_stages"),
        (("parameter: unfreeze_stages", "parameter: no_such_param"), "names 'no_such_param', which is not a searched parameter"),
        (("low: 1.0e-4, high: 1.0e-2, log: true", "low: 0, high: 1.0e-2, log: true"), "log-scaled range needs low > 0"),
        (("grace_period: 1", "grace_period: 9"), "grace_period 9 is larger than max_epochs 4"),
        (("low: 1.0e-4, high: 1.0e-2", "low: one, high: 1.0e-2"), "parameters.learning_rate.low"),
    ],
)
def test_malformed_space_fails_with_one_line_naming_file_and_key(tmp_path, change, expected):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_not_yaml_and_missing_file_are_one_line_errors(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_spec(write(tmp_path, "metric: [unclosed\nmode: max\n"))
    with pytest.raises(SpecError, match="no such search-space file"):
        load_spec(tmp_path / "absent.yaml")


def test_parameter_unknown_to_the_task_is_rejected(tmp_path):
    path = write(tmp_path, VALID.replace("pooling:", "poolling:"))
    spec = load_spec(path)
    with pytest.raises(SpecError, match=r"parameters.poolling: not a config field of this task"):
        check_against_task(spec, load_task("tasks.retrieval:task").config_model, path)


def test_range_end_the_task_would_reject_is_caught_before_the_sweep(tmp_path):
    path = write(tmp_path, VALID.replace("learning_rate: {type: float, low: 1.0e-4", "learning_rate: {type: float, low: -1.0"
                                         ).replace(", log: true}", "}", 1))
    spec = load_spec(path)
    with pytest.raises(SpecError, match=r"parameters.learning_rate: learning_rate"):
        check_against_task(spec, load_task("tasks.retrieval:task").config_model, path)


def test_health_thresholds_are_read_from_the_space(tmp_path):
    spec = load_spec(write(tmp_path, VALID + "health: {plateau: {patience: 7}}\n"))
    assert spec.health.plateau.patience == 7
    with pytest.raises(SpecError, match="health.plateau.patiense: unknown key"):
        load_spec(write(tmp_path, VALID + "health: {plateau: {patiense: 7}}\n"))


def test_a_plausible_maximum_is_set_under_health_leakage_and_checked_in_one_line(tmp_path):
    spec = load_spec(write(tmp_path, VALID + "health: {leakage: {plausible_max: {val/mean_r1: 0.9}}}\n"))
    assert spec.health.leakage.plausible_max == {"val/mean_r1": 0.9}
    with pytest.raises(SpecError, match=r"health.leakage.plausible_max: plausible_max key 'mean_r1' "
                       r"must be a reported key such as val/accuracy"):
        load_spec(write(tmp_path, VALID + "health: {leakage: {plausible_max: {mean_r1: 0.9}}}\n"))
    with pytest.raises(SpecError, match=r"health.leakage.plausible_max.val/mean_r1: Input should be a valid number"):
        load_spec(write(tmp_path, VALID + "health: {leakage: {plausible_max: {val/mean_r1: high}}}\n"))
