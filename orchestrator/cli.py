"""`orchestrate`: sweep tasks, export winners, write demo data, re-evaluate an export.

User errors print one line (`error: ...`) and exit with code 2; `--debug` shows the traceback.
Ray, MLflow and torch are imported by the command that needs them, not here: a bad flag or
unknown task is answered before seconds of imports.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console

from orchestrator.ctrl_c import EXIT_CODE as INTERRUPTED_EXIT_CODE, ctrl_c_pressed, remember_ctrl_c
from orchestrator.data_access import LocationError
from orchestrator.defaults import DEFAULT_STORAGE, DEFAULT_TRACKING_URI
from orchestrator.node_check import NodeCheckFailed
from orchestrator.registry import TaskNotFound, builtin_task_names, load_task, task_reference
from orchestrator.spaces import SpecError
from orchestrator.user_errors import (
    RegistryError, SweepFailed, SweepInterrupted, TrackingUnavailable, UsageError)
from tasks.base import DataError

app = typer.Typer(
    help="Hyperparameter sweeps of multimodal training tasks on Ray Tune, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts show defaults in [brackets], which are not rich markup
)
console = Console()
USER_ERRORS = (SpecError, TaskNotFound, DataError, UsageError, TrackingUnavailable, LocationError,
               NodeCheckFailed, RegistryError)

TRACKING_HELP = "MLflow tracking URI [env MLFLOW_TRACKING_URI, else sqlite:///mlflow.db]"


def _tracking_uri(given: Optional[str]) -> str:
    return given or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _task_and_tracking(task: str, tracking_uri: Optional[str]):
    """The named task and a client of an existing tracking store, for commands that read MLflow.

    Reading from a sqlite store that does not exist would create an empty one; refuse instead.
    """
    from orchestrator.tracking import open_client

    loaded = load_task(task_reference(task))
    uri = _tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise UsageError(
            f"no MLflow store at {uri}; run `orchestrate sweep` here first or pass --tracking-uri")
    return loaded, open_client(uri)


def _run_reporting_errors(debug: bool, body: Callable[[], None]) -> None:
    # MLflow sets its own logger's level when it is imported, which the commands do after this:
    # its INFO lines (e.g. creating a store's tables) would reach the terminal.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # An unreachable tracking server should fail in seconds, not after minutes of back-off.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    remember_ctrl_c()
    try:
        body()
    except SweepFailed as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(1) from None
    except SweepInterrupted:  # the summary said what was done and how to continue
        raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
    except Exception as error:
        # An error after a Ctrl-C is the Ctrl-C's doing: one landing in an import leaves a module
        # half made (transformers then reports an ImportError, numpy recurses without end).
        if ctrl_c_pressed() and not debug:
            print("interrupted (Ctrl-C)", file=sys.stderr)
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
        if debug or not isinstance(error, USER_ERRORS):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted (Ctrl-C)", file=sys.stderr)
        raise typer.Exit(INTERRUPTED_EXIT_CODE) from None


def _resume_command(name: str) -> str:
    """The command line that continues this sweep: its own arguments, with --name NAME --resume."""
    given = sys.argv[1:]
    if given[:1] != ["sweep"]:  # not run from a shell (e.g. a test's CLI runner)
        given = ["sweep"]
    kept, skip_value = [], False
    for argument in given:
        if skip_value:
            skip_value = False
        elif argument == "--name":
            skip_value = True
        elif not argument.startswith("--name=") and argument not in ("--resume", "--no-resume"):
            kept.append(argument)
    return shlex.join(["orchestrate", *kept, "--name", name, "--resume"])


@app.command()
def sweep(
    task: Optional[list[str]] = typer.Option(
        None, "--task", help="task name or package.module:object; repeat for several [all built-in]"),
    trials: int = typer.Option(8, min=1, help="trials per task"),
    max_epochs: Optional[int] = typer.Option(None, min=1, help="epoch budget per trial [the space's budget.max_epochs]"),
    space: Optional[Path] = typer.Option(None, help="search-space YAML (one task only) [search_spaces/<task>.yaml]"),
    data_dir: Optional[str] = typer.Option(
        None, help="dataset directory (one task only): a path every node has, or a URI such as "
        "s3://BUCKET/PATH fetched once per node [./data/<task>, demo data written on first use]"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    storage: Optional[str] = typer.Option(
        None, help="where Ray keeps results and checkpoints: a path or s3://, gs:// URI, options "
        "in a query string (s3://BUCKET/PATH?endpoint_override=HOST:PORT) "
        f"[env ORCHESTRATE_STORAGE, else ./{DEFAULT_STORAGE}]"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address, e.g. auto [start a local Ray]"),
    cpus_per_trial: float = typer.Option(1.0, min=0.0, help="CPUs reserved per trial (fractions allowed)"),
    gpus_per_trial: float = typer.Option(0.0, min=0.0, help="GPUs reserved per trial (fractions pack trials on a GPU)"),
    resource_per_trial: Optional[list[str]] = typer.Option(
        None, metavar="NAME=AMOUNT", help="a Ray custom resource each trial reserves, NAME=AMOUNT, e.g. A100=1 "
        "(one the nodes declare); repeat for several"),
    concurrency: Optional[int] = typer.Option(None, min=1, help="max trials at once, per task [as many as resources allow]"),
    one_at_a_time: bool = typer.Option(
        False, "--one-at-a-time",
        help="sweep several tasks one after another [all at once, sharing the cluster]"),
    seed: int = typer.Option(0, help="seed of the Optuna sampler and the demo data"),
    name: Optional[str] = typer.Option(None, help="sweep name; reuse it with --resume [sweep-<timestamp>]"),
    resume: bool = typer.Option(False, help="continue the sweep called --name after an interruption"),
    max_failures: int = typer.Option(2, min=0, help="retries of a crashing trial from its last checkpoint"),
    allow_data_leak: bool = typer.Option(
        False, help="sweep data whose check found a label leak (every run is tagged with it)"),
    figures_of_best: int = typer.Option(
        3, min=0, help="per task, the best trials whose figures are drawn from their best epoch "
        "once its trials ended, into their MLflow runs (0: none)"),
    debug: bool = typer.Option(False, help="show tracebacks"),
) -> None:
    """Run a hyperparameter sweep for each task: Optuna samples, ASHA prunes, guards stop, MLflow records."""
    if resume and not name:
        print("error: --resume needs the --name of the sweep to continue", file=sys.stderr)
        raise typer.Exit(2)

    def body() -> None:
        from orchestrator.sweep_input import (
            SweepOptions, default_sweep_name, parse_resource_per_trial, prepare_all)

        sweep_name = name or default_sweep_name()
        resources = dict(parse_resource_per_trial(text) for text in resource_per_trial or [])
        options = SweepOptions(
            name=sweep_name, trials=trials, max_epochs=max_epochs,
            storage=storage or os.environ.get("ORCHESTRATE_STORAGE") or DEFAULT_STORAGE,
            cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
            resources_per_trial=tuple(resources.items()), concurrency=concurrency,
            seed=seed, resume=resume, max_failures=max_failures, allow_data_leak=allow_data_leak,
            debug=debug, one_at_a_time=one_at_a_time, resume_command=_resume_command(sweep_name),
            figures_of_best=figures_of_best,
        )
        prepared = prepare_all(task or builtin_task_names(), space, data_dir, options)
        from orchestrator.commands import run_sweeps  # Ray, MLflow, torch: once the input is good

        run_sweeps(prepared, options, _tracking_uri(tracking_uri), address, console)

    _run_reporting_errors(debug, body)


@app.command()
def best(
    task: str = typer.Option(..., "--task", help="task name or package.module:object"),
    out: Path = typer.Option(..., help="directory to write config.yaml, metrics.json, model.pt, README.md"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    no_register: bool = typer.Option(
        False, "--no-register", help="only export; do not register the winner in MLflow's model registry"),
    debug: bool = typer.Option(False, help="show tracebacks"),
) -> None:
    """Export the best finished trial of a task from MLflow (works after Ray is gone) and register
    it as the MLflow model named after the task, alias `champion`."""
    def body() -> None:
        from orchestrator.export import NothingToExport, export_winner

        loaded, client = _task_and_tracking(task, tracking_uri)
        try:
            export = export_winner(client, loaded, out, register=not no_register)
        except NothingToExport as error:
            raise UsageError(str(error)) from None
        winner = export.winner
        console.print(
            f"exported {loaded.name} winner: {winner.metric} = {winner.value:.4f} "
            f"(run {winner.run_id}) -> {out}", highlight=False)
        if export.registered is not None:
            registered = export.registered
            again = " (already registered; alias moved back to it)" if registered.reused else ""
            console.print(
                f"registered as MLflow model {registered.name!r} version {registered.version}, "
                f"alias champion{again}: models:/{registered.name}@champion", highlight=False)

    _run_reporting_errors(debug, body)


@app.command()
def report(
    task: str = typer.Option(..., "--task", help="task name or package.module:object"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    debug: bool = typer.Option(False, help="show tracebacks"),
) -> None:
    """Show a task's trials from MLflow: params, best metric, status, guard and reason."""
    def body() -> None:
        from orchestrator.report import report_table, trial_rows

        loaded, client = _task_and_tracking(task, tracking_uri)
        rows = trial_rows(client, loaded)
        if not rows:
            raise UsageError(
                f"no trial of task {loaded.name!r} in {client.tracking_uri}; run `orchestrate sweep` first")
        console.print(report_table(loaded, rows))

    _run_reporting_errors(debug, body)


@app.command()
def ui(
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    port: int = typer.Option(5000, min=0, max=65535, help="port on 127.0.0.1; 0 picks a free one"),
    task: Optional[str] = typer.Option(None, "--task", help="open this task's newest sweep [the newest sweep]"),
    debug: bool = typer.Option(False, help="show tracebacks"),
) -> None:
    """Start MLflow's UI on 127.0.0.1 and print the URLs of the newest sweep's trials, charts,
    sweep run and registry (Ctrl-C stops it, exit code 0)."""
    def body() -> None:
        from orchestrator.ui import run_ui

        run_ui(_tracking_uri(tracking_uri), port, task, console)

    _run_reporting_errors(debug, body)


@app.command()
def data(
    task: str = typer.Option(..., "--task", help="task name or package.module:object"),
    out: Optional[Path] = typer.Option(None, help="directory to write the demo dataset into"),
    check: Optional[Path] = typer.Option(
        None, help="dataset directory to inspect: layout, samples per split, every problem"),
    seed: int = typer.Option(0, help="seed of the generated data"),
    debug: bool = typer.Option(False, help="show tracebacks"),
) -> None:
    """Write a small demo dataset in the task's real layout (--out), or inspect a dataset (--check)."""
    def body() -> None:
        from orchestrator.data_check import inspect_dataset, report_lines

        if (out is None) == (check is None):
            raise UsageError("pass either --out DIR (write the demo dataset) or --check DIR (inspect one)")
        loaded = load_task(task_reference(task))
        if check is not None:
            if not check.is_dir():
                raise UsageError(f"--check {check}: no such directory; give the dataset's directory")
            report = inspect_dataset(loaded, check)
            for line in report_lines(loaded.name, check, report):
                console.print(line, highlight=False, markup=False, soft_wrap=True)
            if report.problems or report.leaks:
                raise typer.Exit(2)
            return
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"--out {out} is not empty; choose a new directory")
        loaded.make_demo_data(out, seed=seed)
        console.print(f"wrote the {loaded.name} demo dataset to {out}", highlight=False)

    _run_reporting_errors(debug, body)


@app.command()
def evaluate(
    model: Path = typer.Option(..., help="a directory written by `orchestrate best`"),
    split: str = typer.Option("val", help="split to evaluate: val or test"),
    data_dir: Optional[Path] = typer.Option(None, help="dataset directory [the one in config.yaml]"),
    debug: bool = typer.Option(False, help="show tracebacks"),
) -> None:
    """Rebuild an exported model, load model.pt and print its metrics on a split as JSON."""
    def body() -> None:
        from orchestrator.export import evaluate_export

        if not (model / "model.pt").is_file() or not (model / "config.yaml").is_file():
            raise UsageError(f"--model {model}: no model.pt and config.yaml; pass an `orchestrate best` output")
        print(json.dumps(evaluate_export(model, split, data_dir), indent=2, sort_keys=True))

    _run_reporting_errors(debug, body)


if __name__ == "__main__":
    app()
