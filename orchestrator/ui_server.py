"""MLflow's own UI server (the ASGI app `mlflow server` runs), in this process, plus one route
of ours on the same origin: `/orchestrate-open`, the launcher.

The MLflow 3.17 UI keeps its GenAI / model-training toggle, its columns and its charts in the
browser's localStorage, so no URL or server setting alone opens a fresh browser on a sweep's
trials. The launcher is a tiny page that writes those settings (same origin, so the UI reads
them) and then replaces itself with the UI's route. It resolves the sweep when the browser asks,
so its URL also works for a sweep that ends while the UI runs.

    /orchestrate-open?sweep=<run id>[&show=trials|charts|sweep]   a sweep's trials, charts, run
    /orchestrate-open?task=<name>[&show=...]                       the task's newest sweep
    /orchestrate-open?show=models[&model=<name>]                   the model registry
"""

from __future__ import annotations

import html
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from orchestrator.user_errors import UsageError

LAUNCHER_PATH = "/orchestrate-open"
SHOW = ("trials", "charts", "sweep", "models")
# localStorage keys of the 3.17 UI: useLocalStorage({key: "mlflow.workflowType", version: 1})
# stores JSON; the Assistant panel otherwise opens itself over the runs on a first visit.
BROWSER_SETTINGS = {
    "mlflow.workflowType_v1": json.dumps("machine_learning"),
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
}


def page_state_key(experiment_id: str) -> str:
    """The localStorage key under which the UI keeps an experiment's runs-page state."""
    return f"MLflowLocalStorage-1.1-ExperimentPage-{json.dumps([experiment_id])}-ReactComponentState"


def launcher_page(target: str, experiment_id: str | None = None, state: dict | None = None) -> str:
    """The launcher's HTML: write BROWSER_SETTINGS, merge `state` into the experiment's
    runs-page state, then open `target` (an in-app `#/` route; anything else opens `#/`)."""
    if not target.startswith("#/"):  # in-app routes only: never an open redirect
        target = "#/"
    merge = {} if experiment_id is None or not state else {page_state_key(experiment_id): state}
    script = f"""
const settings = {_js(BROWSER_SETTINGS)}, merge = {_js(merge)};
for (const [key, value] of Object.entries(settings)) localStorage.setItem(key, value);
for (const [key, state] of Object.entries(merge)) {{
  let current = {{}};
  try {{ current = JSON.parse(localStorage.getItem(key) || '{{}}') || {{}}; }} catch (error) {{}}
  localStorage.setItem(key, JSON.stringify(Object.assign(current, state)));
}}
location.replace('/' + {_js(target)});
"""
    return ("<!doctype html><meta charset=utf-8><title>Opening MLflow…</title>"
            f"<script>{script}</script>"
            f"<noscript><a href='/{html.escape(target)}'>Open MLflow</a></noscript>")


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port (0 picks a free port); UsageError when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # a port whose last server just stopped has connections in TIME_WAIT: reusable (as
    # uvicorn does); a port another server listens on is still refused
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise UsageError(
            f"port {port} on 127.0.0.1 is in use ({error.strerror}); pass --port with a free port "
            "(or --port 0 to pick one)") from None
    sock.listen(128)
    return sock


def mlflow_app(backend_uri: str, artifacts_destination: Path) -> Any:
    """MLflow's server app for the store at backend_uri, with the launcher route.

    The server reads its store from the environment variables `mlflow server` sets for its
    workers (mlflow/server/constants.py); they must be set before mlflow.server is imported.
    """
    os.environ["_MLFLOW_SERVER_FILE_STORE"] = backend_uri
    os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = backend_uri
    os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "true"
    os.environ.setdefault("_MLFLOW_SERVER_ARTIFACT_ROOT", "mlflow-artifacts:/")
    os.environ.setdefault("_MLFLOW_SERVER_ARTIFACT_DESTINATION", str(artifacts_destination))
    os.environ.setdefault("_MLFLOW_SERVER_BOOT_ID", uuid.uuid4().hex)
    import warnings

    from flask import Response, request
    from mlflow.server import app as flask_app

    with warnings.catch_warnings():  # MLflow's own use of starlette's WSGI bridge, not ours
        warnings.simplefilter("ignore")  # StarletteDeprecationWarning is no DeprecationWarning
        from mlflow.server.fastapi_app import create_fastapi_app

    if "orchestrate_open" not in flask_app.view_functions:
        @flask_app.route(LAUNCHER_PATH, endpoint="orchestrate_open")
        def orchestrate_open():
            status, body = _launch(os.environ["_MLFLOW_SERVER_FILE_STORE"], request.args)
            return Response(body, status=status, mimetype="text/html",
                            headers={"Cache-Control": "no-store"})

    return create_fastapi_app(flask_app)


def serve(app: Any, sock: socket.socket) -> None:
    """Serve until Ctrl-C or SIGTERM (both end it cleanly, returning normally)."""
    import signal

    import uvicorn

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    # uvicorn shuts down gracefully on a signal, then raises it again; SIGTERM then lands here
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()


def _launch(backend_uri: str, args) -> tuple[int, str]:
    """(HTTP status, launcher page) for the launcher's query arguments."""
    from mlflow.tracking import MlflowClient

    from orchestrator.ui import SweepNotFound, find_sweep
    from orchestrator.ui_view import models_route, page_state, run_route, runs_route

    show = args.get("show", "trials")
    if show not in SHOW:
        return 400, _message(f"show must be one of {', '.join(SHOW)}")
    if show == "models":
        return 200, launcher_page(models_route(args.get("model")))
    client = MlflowClient(backend_uri)
    try:
        sweep = find_sweep(client, sweep_run_id=args.get("sweep"), task_name=args.get("task"))
    except SweepNotFound as error:
        return 404, _message(str(error))
    if show == "sweep":
        return 200, launcher_page(run_route(sweep.experiment_id, sweep.run_id), sweep.experiment_id)
    state = page_state(sweep.parameters, sweep.metric)
    target = runs_route(sweep.experiment_id, sweep.run_id, sweep.metric, sweep.mode, charts=show == "charts")
    return 200, launcher_page(target, sweep.experiment_id, state)


def _message(text: str) -> str:
    return f"<!doctype html><meta charset=utf-8><title>orchestrate ui</title><p>{html.escape(text)}</p>"


def _js(value: Any) -> str:
    """A JSON literal safe inside <script> (no `</script>` can close it early)."""
    return json.dumps(value).replace("<", "\\u003c")
