"""Search-space files -> one validated spec -> an Optuna define-by-run space.

A search-space YAML names the target metric and direction, the ASHA budget, fixed config
values, the searched parameters (conditionals too) and the health-guard thresholds. Everything
is checked here, before Ray starts; a bad file raises `SpecError` whose message is one line naming
the file, the key and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.health import HealthConfig

Scalar = Union[bool, int, float, str, None]


class SpecError(ValueError):
    """A search-space file is malformed; the message is one line for a user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Budget(_Strict):
    """ASHA's budget, in epochs (one Tune report per epoch)."""

    max_epochs: int = Field(ge=1)
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)

    @model_validator(mode="after")
    def _grace_within_budget(self) -> "Budget":
        if self.grace_period > self.max_epochs:
            raise ValueError(
                f"grace_period {self.grace_period} is larger than max_epochs {self.max_epochs}"
            )
        return self


class Condition(_Strict):
    """Sample a parameter only when another parameter took one of the listed values."""

    parameter: str
    values: list[Scalar] = Field(alias="in", min_length=1)


class _Param(_Strict):
    when: Condition | None = None


class FloatParam(_Param):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check_range(self) -> "FloatParam":
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self


class IntParam(_Param):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check_range(self) -> "IntParam":
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("log and step cannot be combined")
        return self


class CategoricalParam(_Param):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low {low} is greater than high {high}")
    if log and low <= 0:
        raise ValueError(f"a log-scaled range needs low > 0, got {low}")


Parameter = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


class SearchSpaceSpec(_Strict):
    """One task's search space, as read from search_spaces/<task>.yaml."""

    task: str | None = None
    metric: str
    mode: Literal["max", "min"]
    budget: Budget
    fixed: dict[str, Scalar] = Field(default_factory=dict)
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @model_validator(mode="after")
    def _check_names(self) -> "SearchSpaceSpec":
        both = sorted(set(self.fixed) & set(self.parameters))
        if both:
            raise ValueError(f"{both[0]!r} is both fixed and searched; keep one")
        for name, param in self.parameters.items():
            if param.when is None:
                continue
            parent = param.when.parameter
            if parent not in self.parameters:
                raise ValueError(
                    f"parameters.{name}.when names {parent!r}, which is not a searched parameter"
                )
        self.sampling_order()  # raises on a cycle
        return self

    def sampling_order(self) -> list[str]:
        """Parameter names ordered so that every condition's parent is sampled first."""
        ordered: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in ordered:
                return
            if name in visiting:
                raise ValueError(f"parameters.{name}.when forms a cycle of conditions")
            visiting.add(name)
            when = self.parameters[name].when
            if when is not None:
                visit(when.parameter)
            visiting.discard(name)
            ordered.append(name)

        for name in self.parameters:
            visit(name)
        return ordered


def load_spec(path: Path) -> SearchSpaceSpec:
    """Read and validate a search-space YAML file; raises SpecError (one line) when malformed."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: no such search-space file; pass --space FILE") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping with metric, mode, budget and parameters")
    try:
        return SearchSpaceSpec.model_validate(raw)
    except ValidationError as error:
        raise SpecError(f"{path}: {_first_problem(error)}") from None
    except ValueError as error:
        raise SpecError(f"{path}: {error}") from None


def _first_problem(error: ValidationError) -> str:
    """One line from pydantic's report: the dotted key and the message."""
    first = error.errors()[0]
    # Drop the union tags pydantic inserts into the location ("parameters.lr.float.low").
    location = [str(part) for part in first["loc"] if part not in ("float", "int", "categorical")]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against the README's search-space reference)"
    key = ".".join(location)
    return f"{key}: {message}" if key else message


def check_against_task(spec: SearchSpaceSpec, config_model: type[BaseModel], path: Path) -> None:
    """Check that fixed values and every range end or choice are valid configs of the task.

    Catches a misspelt parameter name or an out-of-range bound before any trial starts.
    """
    known = set(config_model.model_fields)
    for section, names in (("fixed", spec.fixed), ("parameters", spec.parameters)):
        for name in names:
            if name not in known:
                raise SpecError(
                    f"{path}: {section}.{name}: not a config field of this task "
                    f"(known: {', '.join(sorted(known))})"
                )
    _validate_config(config_model, dict(spec.fixed), path, "fixed")
    for name, param in spec.parameters.items():
        values = param.choices if isinstance(param, CategoricalParam) else [param.low, param.high]
        for value in values:
            _validate_config(config_model, {**spec.fixed, name: value}, path, f"parameters.{name}")


def _validate_config(config_model: type[BaseModel], values: dict, path: Path, where: str) -> None:
    try:
        config_model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise SpecError(f"{path}: {where}: {key} {first['msg']} (got {first.get('input')!r})") from None


class OptunaSpace:
    """A define-by-run space for OptunaSearch: samples the parameters, returns the fixed values.

    A conditional parameter is sampled only when its parent took one of its `in` values, so
    Optuna's TPE sees the real tree-structured space. A class, not a closure, because Tune
    pickles the searcher with the experiment state.
    """

    def __init__(self, spec: SearchSpaceSpec):
        self.spec = spec
        self.order = spec.sampling_order()

    def __call__(self, trial: Any) -> dict[str, Any]:
        sampled: dict[str, Any] = {}
        for name in self.order:
            param = self.spec.parameters[name]
            if param.when is not None:
                parent = param.when.parameter
                if parent not in sampled or sampled[parent] not in param.when.values:
                    continue
            sampled[name] = _suggest(trial, name, param)
        return dict(self.spec.fixed)


def _suggest(trial: Any, name: str, param: FloatParam | IntParam | CategoricalParam) -> Any:
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
    return trial.suggest_categorical(name, param.choices)
