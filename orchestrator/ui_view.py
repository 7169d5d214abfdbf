"""What the MLflow 3.17 UI shows for a sweep: the runs-table columns, the charts, the search that
lists its trials, and the UI routes (pure functions; ui_server.py and ui.py use them).

The UI keeps columns and charts in the browser (localStorage, per experiment) and takes only
the search from the URL; `page_state` is what the launcher merges into that storage, and
`saved_view` the same as an experiment tag ("saved view") for a stock MLflow server.
Column keys are the UI's own: `<params|metrics|tags|attributes>.`<key>``.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

from orchestrator.tracking import GUARD, PARENT, REASON, STATUS, best_metric_key

SAVED_VIEW_KEY = "orchestrate-newest-sweep"  # experiment tag mlflow.sharedViewState.<key>
SAVED_VIEW_TAG = f"mlflow.sharedViewState.{SAVED_VIEW_KEY}"
CHART_SECTION = "orchestrate-sweep"
TRAIN_LOSS = "train/loss"
PARALLEL_PARAMETERS = 8  # more axes than this are unreadable in the UI's parallel chart


def column(kind: str, key: str) -> str:
    """The UI's column key, e.g. column("params", "learning_rate") -> params.`learning_rate`."""
    return f"{kind}.`{key}`"


def trial_columns(parameters: list[str], metric: str) -> list[str]:
    """Runs-table columns for a sweep's trials, in the order shown: how each ended (status,
    then the best and last target metric, the guard and its reason), the sampled parameters,
    the duration and the logged model (the registered winner shows there)."""
    return [
        column("tags", STATUS), column("metrics", best_metric_key(metric)), column("metrics", metric),
        column("tags", GUARD), column("tags", REASON),
        *[column("params", name) for name in parameters],
        column("attributes", "Duration"), column("attributes", "Models"),
    ]


def chart_cards(parameters: list[str], metric: str) -> list[dict]:
    """Compare-view charts: parallel coordinates of the parameters against the target metric,
    the target metric by epoch, and the training loss by epoch."""
    common = {"runsCountToCompare": 100, "metricSectionId": CHART_SECTION, "deleted": False,
              "isGenerated": False}
    line = {"type": "LINE", "xAxisKey": "step", "scaleType": "linear", "lineSmoothness": 0,
            "selectedXAxisMetricKey": "", **common}
    return [
        {"uuid": "orchestrate-parallel", "type": "PARALLEL",
         "selectedParams": parameters[:PARALLEL_PARAMETERS], "selectedMetrics": [metric],
         "displayName": f"parameters vs {metric}", **common},
        {"uuid": "orchestrate-metric", "metricKey": metric, "selectedMetricKeys": [metric], **line},
        {"uuid": "orchestrate-loss", "metricKey": TRAIN_LOSS, "selectedMetricKeys": [TRAIN_LOSS], **line},
    ]


def chart_sections() -> list[dict]:
    return [{"uuid": CHART_SECTION, "name": "Sweep", "display": True, "isReordered": False,
             "deleted": False, "isGenerated": False}]


def trials_search(sweep_run_id: str, metric: str, mode: str) -> dict:
    """The search that lists one sweep's trials flat (no sweep row), best first.

    A filter on the parent id with a metric sort is what keeps the UI from nesting the trials
    under a collapsed sweep row.
    """
    return {
        "searchFilter": f"tags.`{PARENT}` = '{sweep_run_id}'",
        "orderByKey": column("metrics", best_metric_key(metric)),
        "orderByAsc": mode == "min",
    }


def page_state(parameters: list[str], metric: str) -> dict:
    """The part of the UI's per-experiment runs-page state (localStorage) the launcher sets:
    columns, charts, and every run shown in the charts (the UI shows the first 10 otherwise)."""
    columns = trial_columns(parameters, metric)
    return {
        "selectedColumns": columns,
        # without an order the UI groups columns by kind, putting the status after every param
        "columnOrder": columns,
        "columnWidths": {column("tags", REASON): 320, column("tags", STATUS): 100},
        "compareRunCharts": chart_cards(parameters, metric),
        "compareRunSections": chart_sections(),
        "runsHiddenMode": "SHOW_ALL",
        "runsHidden": [],
        "runsVisibilityMap": {},
        "hideEmptyCharts": True,
        # keep the given section order: ours first, the UI's generated sections after it
        "isAccordionReordered": True,
    }


def runs_route(experiment_id: str, sweep_run_id: str, metric: str, mode: str, charts: bool = False) -> str:
    """`#/experiments/<id>/runs?...`: the sweep's trials in the model-training view, the table
    (or, with charts, the compare charts)."""
    search = trials_search(sweep_run_id, metric, mode)
    query = {"searchFilter": search["searchFilter"], "orderByKey": search["orderByKey"],
             "orderByAsc": str(search["orderByAsc"]).lower(), "workflowType": "machine_learning"}
    if charts:
        query["compareRunsMode"] = "CHART"
    return f"#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def run_route(experiment_id: str, run_id: str) -> str:
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def models_route(model_name: str | None = None) -> str:
    """The model registry (`#/models`), or one registered model's page."""
    return f"#/models/{quote(model_name, safe='')}" if model_name else "#/models"


def saved_view(sweep_name: str, sweep_run_id: str, parameters: list[str], metric: str, mode: str) -> str:
    """The value of the experiment tag SAVED_VIEW_TAG: a saved view of the sweep's trials with
    its columns and charts, for servers without the launcher (`?viewStateShareKey=...`)."""
    state = {**trials_search(sweep_run_id, metric, mode), "startTime": "ALL",
             "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
             **page_state(parameters, metric)}
    now = int(time.time() * 1000)
    return json.dumps({"name": f"orchestrate: {sweep_name} trials", "createdAt": now, "updatedAt": now,
                       "state": json.dumps(state)})


def saved_view_route(experiment_id: str, charts: bool = False) -> str:
    """The route of SAVED_VIEW_TAG's view (a stock server: no launcher, the URL sets the mode)."""
    route = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={SAVED_VIEW_KEY}"
    return route + ("&compareRunsMode=CHART" if charts else "")
