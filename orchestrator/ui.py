"""`orchestrate ui`: MLflow's UI on 127.0.0.1, opened on the newest sweep's trials.

Finds the newest sweep (of a task, or of all), draws its plots if it has none yet, saves a view
of its trials in its experiment (for any MLflow server), starts MLflow's server in this process
with the launcher route (ui_server.py) and prints the URLs: the trials, their charts, the sweep
run, the model registry. With a tracking server URI (http://...) nothing is started: the view is
saved there and the server's own URLs are printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from mlflow.tracking import MlflowClient
from rich.console import Console

from orchestrator.user_errors import UsageError
from orchestrator.tracking import ROLE, open_client

DEFAULT_PORT = 5000  # as `mlflow ui`


class SweepNotFound(LookupError):
    """No sweep matches; the message is one line for a user."""


@dataclass(frozen=True)
class SweepView:
    """What the UI needs to know of one sweep run."""

    experiment_id: str
    run_id: str
    name: str
    task: str
    metric: str
    mode: str
    parameters: list[str]  # the searched parameters (ui_view's columns and charts)
    trials: int
    finished: bool  # the sweep run is no longer RUNNING


def find_sweep(client: MlflowClient, sweep_run_id: str | None = None, task_name: str | None = None) -> SweepView:
    """The sweep run with that id, else the newest sweep of the task's experiment, else the
    newest sweep of all experiments. SweepNotFound (one line) when there is none."""
    from orchestrator.sweep_plots import read_sweep, searched_parameters

    if sweep_run_id:
        if not sweep_run_id.isalnum():
            raise SweepNotFound(f"{sweep_run_id!r} is not an MLflow run id")
        try:
            run = client.get_run(sweep_run_id)
        except Exception:  # noqa: BLE001 - a missing run and a malformed id read the same
            raise SweepNotFound(f"no run {sweep_run_id} in {client.tracking_uri}") from None
        if run.data.tags.get(ROLE) != "sweep":
            raise SweepNotFound(f"run {sweep_run_id} is not a sweep run (tag {ROLE}=sweep)")
    else:
        run = _newest_sweep(client, task_name)
    sweep = read_sweep(client, run.info.run_id, with_history=False)
    experiment = client.get_experiment(run.info.experiment_id)
    return SweepView(
        experiment_id=run.info.experiment_id, run_id=run.info.run_id, name=run.info.run_name,
        task=run.data.params.get("task", experiment.name), metric=sweep.metric, mode=sweep.mode,
        parameters=searched_parameters(sweep), trials=len(sweep.trials),
        finished=run.info.status != "RUNNING",
    )


def _newest_sweep(client: MlflowClient, task_name: str | None):
    if task_name:
        experiment = client.get_experiment_by_name(task_name)
        experiments = [] if experiment is None else [experiment.experiment_id]
        where = f"of task {task_name!r} "
    else:
        experiments = [e.experiment_id for e in client.search_experiments()]
        where = ""
    runs = client.search_runs(experiments, f"tags.`{ROLE}` = 'sweep'",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
    if not runs:
        task_flag = f" --task {task_name}" if task_name else ""
        raise SweepNotFound(f"no sweep {where}in {client.tracking_uri} yet; run `orchestrate sweep{task_flag}` first")
    return runs[0]


def launcher_urls(base_url: str, sweep: SweepView, model_name: str | None) -> dict[str, str]:
    """label -> URL of the launcher (ui_server.py) on a server at base_url."""
    def url(**query: str) -> str:
        return f"{base_url}/orchestrate-open?{urlencode(query)}"

    models = {"show": "models", **({"model": model_name} if model_name else {})}
    return {
        "trials": url(sweep=sweep.run_id),
        "charts": url(sweep=sweep.run_id, show="charts"),
        "sweep run": url(sweep=sweep.run_id, show="sweep"),
        "registry": url(**models),
    }


def server_urls(base_url: str, sweep: SweepView, model_name: str | None) -> dict[str, str]:
    """label -> URL on a stock MLflow server (no launcher): the saved view and plain routes."""
    from orchestrator.ui_view import models_route, run_route, saved_view_route

    return {
        "trials": f"{base_url}/{saved_view_route(sweep.experiment_id)}",
        "charts": f"{base_url}/{saved_view_route(sweep.experiment_id, charts=True)}",
        "sweep run": f"{base_url}/{run_route(sweep.experiment_id, sweep.run_id)}",
        "registry": f"{base_url}/{models_route(model_name)}",
    }


def run_ui(tracking_uri: str, port: int, task_name: str | None, console: Console) -> None:
    """The `orchestrate ui` command: see the module docstring. Returns when the server stops
    (Ctrl-C or SIGTERM); raises UsageError (one line) for a missing store, no sweep, a taken
    port."""
    from orchestrator.ui_server import bind, mlflow_app, serve

    remote = tracking_uri.startswith(("http://", "https://"))
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        raise UsageError(
            f"no MLflow store at {tracking_uri}; run `orchestrate sweep` here first or pass --tracking-uri")
    client = open_client(tracking_uri)
    try:
        sweep = find_sweep(client, task_name=task_name)
    except SweepNotFound as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - an unreadable store is one line for the user
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UsageError(f"cannot read the MLflow store {tracking_uri} ({first}); check --tracking-uri") from None
    model_name = sweep.task if _has_registered_model(client, sweep.task) else None
    _prepare(client, sweep, console)
    if remote:
        _print_urls(console, sweep, server_urls(tracking_uri.rstrip("/"), sweep, model_name),
                    f"MLflow server {tracking_uri} (nothing started here)")
        return
    sock = bind(port)
    host, bound_port = sock.getsockname()
    try:
        app = mlflow_app(tracking_uri, Path.cwd() / "mlartifacts")
    except BaseException:
        sock.close()
        raise
    _print_urls(console, sweep, launcher_urls(f"http://{host}:{bound_port}", sweep, model_name),
                f"MLflow UI on http://{host}:{bound_port} for {tracking_uri} (Ctrl-C stops it)")
    serve(app, sock)
    console.print("MLflow UI stopped.", highlight=False)


def _prepare(client: MlflowClient, sweep: SweepView, console: Console) -> None:
    """Save the trials view in the sweep's experiment, and draw the sweep's plots if it has
    none (a sweep from before plots existed); neither may keep the UI from starting."""
    from orchestrator.sweep_plots import PLOTS_DIR, log_sweep_plots
    from orchestrator.ui_view import SAVED_VIEW_TAG, saved_view

    try:
        client.set_experiment_tag(sweep.experiment_id, SAVED_VIEW_TAG, saved_view(
            sweep.name, sweep.run_id, sweep.parameters, sweep.metric, sweep.mode))
    except Exception as error:  # noqa: BLE001
        console.print(f"warning: could not save the trials view in MLflow ({type(error).__name__})",
                      highlight=False, markup=False)
    if not sweep.finished:
        return
    try:
        if not client.list_artifacts(sweep.run_id, PLOTS_DIR):
            logged = log_sweep_plots(client, sweep.run_id)
            if logged:
                console.print(f"drew the sweep's plots on its run: {', '.join(logged)}",
                              highlight=False, markup=False, soft_wrap=True)
    except Exception as error:  # noqa: BLE001
        console.print(f"warning: could not draw the sweep's plots ({type(error).__name__}: {error})",
                      highlight=False, markup=False, soft_wrap=True)


def _has_registered_model(client: MlflowClient, name: str) -> bool:
    try:
        client.get_registered_model(name)
        return True
    except Exception:  # noqa: BLE001 - none, or a store without a registry
        return False


def _print_urls(console: Console, sweep: SweepView, urls: dict[str, str], where: str) -> None:
    console.print(where, highlight=False, markup=False, soft_wrap=True)
    console.print(f"newest sweep: {sweep.name} of task {sweep.task}, {sweep.trials} trials, "
                  f"{sweep.metric} ({sweep.mode})", highlight=False, markup=False, soft_wrap=True)
    width = max(len(label) for label in urls)
    for label, url in urls.items():
        console.print(f"  {label + ':':{width + 1}} {url}", highlight=False, markup=False, soft_wrap=True)
