"""`orchestrate ui`: the view of a sweep (columns, charts, routes), the launcher page, finding the
newest sweep, the one-line errors, and the real server answering on 127.0.0.1 until Ctrl-C.

The browser's view of all this is tests/test_browser_ui.py (slow, Chromium)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.ui import SweepNotFound, find_sweep, launcher_urls
from orchestrator.ui_server import BROWSER_SETTINGS, launcher_page, page_state_key
from orchestrator.ui_view import (
    SAVED_VIEW_TAG, chart_cards, models_route, page_state, runs_route, saved_view, saved_view_route,
    trial_columns, trials_search,
)
from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.test_cli_errors import assert_one_line_error
from tests.test_sweep_plots import METRIC, record_sweep

PARAMETERS = ["learning_rate", "layers", "pooling"]


# --- the view: pure functions ------------------------------------------------------------------

def test_columns_put_how_each_trial_ended_first_then_metric_then_parameters():
    columns = trial_columns(PARAMETERS, METRIC)
    assert columns[:5] == ["tags.`orchestrate.status`", f"metrics.`best/{METRIC}`", f"metrics.`{METRIC}`",
                           "tags.`orchestrate.guard`", "tags.`orchestrate.reason`"]
    assert columns[5:8] == ["params.`learning_rate`", "params.`layers`", "params.`pooling`"]
    assert columns[-2:] == ["attributes.`Duration`", "attributes.`Models`"]


def test_parallel_coordinates_are_drawn_against_the_target_metric():
    parallel, metric_line, loss_line = chart_cards(PARAMETERS, METRIC)
    assert parallel["type"] == "PARALLEL"
    assert parallel["selectedMetrics"] == [METRIC] and parallel["selectedParams"] == PARAMETERS
    assert metric_line["metricKey"] == METRIC and loss_line["metricKey"] == "train/loss"
    state = page_state(PARAMETERS, METRIC)
    assert state["runsHiddenMode"] == "SHOW_ALL"  # the UI charts only 10 runs otherwise
    assert state["columnOrder"] == state["selectedColumns"]


def test_the_search_lists_one_sweeps_trials_best_first_in_either_direction():
    assert trials_search("abc123", METRIC, "max") == {
        "searchFilter": "tags.`mlflow.parentRunId` = 'abc123'",
        "orderByKey": f"metrics.`best/{METRIC}`", "orderByAsc": False}
    assert trials_search("abc123", "val/loss", "min")["orderByAsc"] is True


def test_runs_route_is_the_model_training_view_with_the_search_in_its_query():
    route = runs_route("7", "abc123", METRIC, "max", charts=True)
    path, _, query = route.partition("?")
    assert path == "#/experiments/7/runs"
    parsed = dict(urllib.parse.parse_qsl(query))
    assert parsed == {"searchFilter": "tags.`mlflow.parentRunId` = 'abc123'",
                      "orderByKey": f"metrics.`best/{METRIC}`", "orderByAsc": "false",
                      "workflowType": "machine_learning", "compareRunsMode": "CHART"}
    assert models_route("a b") == "#/models/a%20b" and models_route() == "#/models"


def test_saved_view_is_the_envelope_the_ui_reads_and_fits_an_experiment_tag():
    value = saved_view("sweep-1", "abc123", PARAMETERS * 10, METRIC, "max")
    assert len(value) < 20_000  # MLflow's tag value limit
    envelope = json.loads(value)
    assert envelope["name"] == "orchestrate: sweep-1 trials"
    state = json.loads(envelope["state"])
    assert state["searchFilter"] == "tags.`mlflow.parentRunId` = 'abc123'"
    assert state["compareRunCharts"][0]["type"] == "PARALLEL"
    assert saved_view_route("3").endswith("workflowType=machine_learning&viewStateShareKey=orchestrate-newest-sweep")


# --- the launcher page -------------------------------------------------------------------------

def embedded(page: str, name: str):
    """The JSON value the launcher's script assigns to `name`."""
    start = page.index(f"{name} = ") + len(name) + 3
    return json.JSONDecoder().raw_decode(page, start)[0]


def test_launcher_writes_the_model_training_mode_and_merges_the_experiment_state():
    state = {"selectedColumns": ["params.`x`"], "note": "</script><script>alert(1)</script>"}
    page = launcher_page("#/experiments/3/runs", "3", state)
    assert "</script><script>" not in page.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    assert embedded(page, "settings") == BROWSER_SETTINGS
    assert BROWSER_SETTINGS["mlflow.workflowType_v1"] == '"machine_learning"'  # JSON, as the UI stores it
    assert embedded(page, "merge") == {page_state_key("3"): state}
    assert page_state_key("3") == 'MLflowLocalStorage-1.1-ExperimentPage-["3"]-ReactComponentState'
    assert "location.replace('/' + \"#/experiments/3/runs\")" in page


def test_launcher_never_redirects_outside_the_ui():
    for target in ("https://example.com", "//evil", "javascript:alert(1)"):
        assert "location.replace('/' + \"#/\")" in launcher_page(target)


# --- finding the sweep ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    """A store with a sweep of experiment "demo" and, started later, one of experiment "other"."""
    root = tmp_path_factory.mktemp("ui_store")
    client, first = record_sweep(root)
    other = client.create_experiment("other", artifact_location=str(root / "other"))
    newest = client.create_run(other, run_name="sweep-2", tags={"orchestrate.role": "sweep"}).info.run_id
    client.log_param(newest, "metric", "val/auroc")
    client.set_terminated(newest, "FINISHED")
    return root, client, first, newest


def test_the_newest_sweep_overall_or_of_a_task(two_sweeps):
    _, client, first, newest = two_sweeps
    assert find_sweep(client).run_id == newest
    sweep = find_sweep(client, task_name="demo")
    assert (sweep.run_id, sweep.name, sweep.metric, sweep.trials) == (first, "sweep-1", METRIC, 5)
    assert sweep.parameters == PARAMETERS  # the search space's, in its order
    assert find_sweep(client, sweep_run_id=first).run_id == first


def test_no_matching_sweep_is_one_line(two_sweeps):
    _, client, first, _ = two_sweeps
    with pytest.raises(SweepNotFound, match="no sweep of task 'nope' in .* yet; run `orchestrate sweep --task nope` first"):
        find_sweep(client, task_name="nope")
    trial = client.search_runs([client.get_experiment_by_name("demo").experiment_id],
                               "tags.`orchestrate.role` = 'trial'")[0].info.run_id
    with pytest.raises(SweepNotFound, match="is not a sweep run"):
        find_sweep(client, sweep_run_id=trial)
    with pytest.raises(SweepNotFound, match="not an MLflow run id"):
        find_sweep(client, sweep_run_id="../x")


def test_printed_urls_all_go_through_the_launcher(two_sweeps):
    _, client, first, _ = two_sweeps
    urls = launcher_urls("http://127.0.0.1:5000", find_sweep(client, sweep_run_id=first), "demo")
    assert urls == {
        "trials": f"http://127.0.0.1:5000/orchestrate-open?sweep={first}",
        "charts": f"http://127.0.0.1:5000/orchestrate-open?sweep={first}&show=charts",
        "sweep run": f"http://127.0.0.1:5000/orchestrate-open?sweep={first}&show=sweep",
        "registry": "http://127.0.0.1:5000/orchestrate-open?show=models&model=demo",
    }


# --- the command -----------------------------------------------------------------------------------

def test_ui_without_a_store_is_one_line(workdir):
    result = orchestrate("ui", cwd=workdir)
    assert_one_line_error(result, "no MLflow store at sqlite:///mlflow.db", "orchestrate sweep")
    assert list(workdir.iterdir()) == []  # no empty store created


def test_ui_of_a_store_without_sweeps_is_one_line(workdir):
    MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}").search_experiments()  # an empty store
    result = orchestrate("ui", cwd=workdir)
    assert_one_line_error(result, "no sweep in sqlite:///mlflow.db yet", "run `orchestrate sweep` first")


def test_ui_on_a_port_in_use_is_one_line(two_sweeps):
    root = two_sweeps[0]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = orchestrate("ui", "--port", str(port), "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}", cwd=root)
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "--port")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def start_ui(root, *args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """`orchestrate ui --port 0` in the background; returns it and its printed URLs by label."""
    process = subprocess.Popen(
        orchestrate_command("ui", "--port", "0", "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}", *args),
        cwd=root, env=orchestrate_env(plugins=True), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    urls: dict[str, str] = {}
    printed = []
    for line in process.stdout:  # the URLs are printed once the server is about to answer
        printed.append(line)
        found = re.match(r"\s+(trials|charts|sweep run|registry):\s+(http://\S+)", line)
        if found:
            urls[found.group(1)] = found.group(2)
        if len(urls) == 4:
            return process, urls
    raise AssertionError("".join(printed) + process.stderr.read())


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, err = process.communicate(timeout=60)
    return process.returncode, out + err


def wait_for_health(base: str) -> None:
    for _ in range(120):
        try:
            if get(f"{base}/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{base}/health never answered")


def test_ui_serves_mlflow_and_the_launcher_on_loopback_until_ctrl_c(two_sweeps):
    root, client, first, newest = two_sweeps
    process, urls = start_ui(root, "--task", "demo")
    try:
        base = urls["trials"].split("/orchestrate-open")[0]
        assert base.startswith("http://127.0.0.1:")
        wait_for_health(base)
        assert urls["trials"] == f"{base}/orchestrate-open?sweep={first}"

        status, page = get(urls["charts"])
        assert status == 200
        assert embedded(page, "settings") == BROWSER_SETTINGS
        state = embedded(page, "merge")[page_state_key(find_sweep(client, sweep_run_id=first).experiment_id)]
        assert state["compareRunCharts"][0]["selectedMetrics"] == [METRIC]
        assert "compareRunsMode=CHART" in page and first in page

        # without a sweep id, the launcher finds the newest sweep when asked
        assert newest in get(f"{base}/orchestrate-open")[1]
        assert get(f"{base}/orchestrate-open?sweep=0123abcd")[0] == 404
        assert get(f"{base}/orchestrate-open?show=everything")[0] == 400
        assert "#/models" in get(urls["registry"])[1]
        status, root_page = get(f"{base}/")
        assert status == 200 and "<div id=\"root\"" in root_page  # MLflow's own UI

        # before serving it saved the trials view and drew the sweep's plots
        experiment = client.get_experiment_by_name("demo")
        assert json.loads(experiment.tags[SAVED_VIEW_TAG])["name"] == "orchestrate: sweep-1 trials"
        plots = {artifact.path for artifact in client.list_artifacts(first, "plots")}
        assert "plots/parallel_coordinate.png" in plots
    finally:
        code, output = stop(process)
    assert code == 0, output
    assert "MLflow UI stopped." in output and "Traceback" not in output
