"""What the tracker writes so that the MLflow UI shows a sweep, not a table of ids: trial run
names, MLflow statuses, descriptions and colours (the wording is orchestrator/run_presentation.py).

A trial's run is named when it is created (its index in start order, the first searched
parameters), and every trial run is renamed at each end of the sweep, when all configs are known,
after the parameters that vary most; its colour follows its index, so no two trials share one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from mlflow.entities import Run, RunTag
from mlflow.tracking import MlflowClient

from orchestrator.outcomes import OutcomeLedger, TrialOutcome
from orchestrator.run_presentation import (
    COLOUR_TAG, DESCRIPTION_TAG, MLFLOW_STATUS, SWEEP_RUN_COLOUR, abbreviations, sweep_description,
    trial_colour, trial_description, trial_run_name, varying_parameters,
)
from orchestrator.tracking.names import TRIAL_ID

TAG_LIMIT = 5000  # MLflow's longest tag value


def first_name(index: int, config: Mapping[str, Any], searched: Sequence[str]) -> str:
    """The name a trial run gets when it is created: `t<index>` and its first searched values."""
    candidates = _candidates([config], searched)
    return trial_run_name(index, config, varying_parameters([config], candidates))


def first_tags(index: int) -> dict[str, str]:
    """The tags a trial run gets when it is created (its colour)."""
    return {COLOUR_TAG: trial_colour(index)}


def sweep_run_tags() -> dict[str, str]:
    """The sweep run's own colour: neutral, it is a summary, not a trial."""
    return {COLOUR_TAG: SWEEP_RUN_COLOUR}


def closing_status(outcome: TrialOutcome, tune_status: str) -> str:
    """The MLflow status of a trial run at its end: from how orchestrate judged the trial (a
    failure guard's stop is FAILED), or Tune's when the ledger has no verdict yet."""
    return MLFLOW_STATUS.get(outcome.status, tune_status) if outcome.status != "running" else tune_status


def description_tag(outcome: TrialOutcome, metric: str, status: str | None = None,
                    reason: str | None = None) -> RunTag:
    """The trial's description (markdown on its page); status and reason override the
    outcome's (an interrupted trial's outcome still says running)."""
    if status is not None or reason is not None:
        outcome = dataclasses.replace(outcome, status=status or outcome.status,
                                      reason=outcome.reason if reason is None else reason)
    return RunTag(DESCRIPTION_TAG, trial_description(outcome, metric)[:TAG_LIMIT])


def rename_trials(client: MlflowClient, runs: Sequence[Run], searched: Sequence[str]) -> dict[str, str]:
    """Name and colour every trial run of the sweep (runs: start order) after the parameters
    that vary most across all of them; writes only what changed. Returns trial id -> name."""
    configs = [dict(run.data.params) for run in runs]
    shown = varying_parameters(configs, _candidates(configs, searched))
    labels = abbreviations(shown)
    names = {}
    for index, (run, config) in enumerate(zip(runs, configs), start=1):
        name = trial_run_name(index, config, shown, labels)
        if name != run.info.run_name:
            client.update_run(run.info.run_id, name=name)
        if run.data.tags.get(COLOUR_TAG) != trial_colour(index):
            client.set_tag(run.info.run_id, COLOUR_TAG, trial_colour(index))
        names[run.data.tags.get(TRIAL_ID, run.info.run_id)] = name
    return names


def describe_sweep(sweep_name: str, ledger: OutcomeLedger, runs: Sequence[Run],
                   names: Mapping[str, str]) -> str:
    """The sweep run's description: its trials (those of `runs`, in start order) per status,
    the winner, each guard verdict with its trial."""
    order = [run.data.tags.get(TRIAL_ID) for run in runs]
    outcomes = [ledger.trials[trial_id] for trial_id in order if trial_id in ledger.trials]
    return sweep_description(sweep_name, ledger.metric, ledger.mode, outcomes, names, ledger.best())


def _candidates(configs: Sequence[Mapping[str, Any]], searched: Sequence[str]) -> list[str]:
    """The searched parameters, or (none given) every parameter of the configs, sorted."""
    if searched:
        return list(searched)
    return sorted({key for config in configs for key in config})
