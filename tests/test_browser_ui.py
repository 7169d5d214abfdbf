"""What a user sees in a real browser: Debian's Chromium (headless, a fresh profile) against
`orchestrate ui` after a real small sweep and `orchestrate best`.

The sweep is tests/ui_sweep_task.py: four trials of a tiny matcher whose search space holds a
real bug (a contrastive loss without negatives), so some trials finish and at least one is
stopped by the impossible_value guard. Screenshots go to the test's temporary directory.

The sweep itself names its trial runs, marks the guard-stopped one FAILED, describes each run
and draws the plots (orchestrator/tracking/presentation.py, orchestrator/trial_figures.py);
nothing is added to the runs after it.

Every request the browser makes outside 127.0.0.1 is aborted.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.run_presentation import COLOUR_TAG, DESCRIPTION_TAG, mlflow_status
from tests.conftest import orchestrate
from tests.test_ui import start_ui, stop, wait_for_health
from tests.ui_sweep_task import SPACE

CHROMIUM = "/usr/bin/chromium"
REFERENCE = "tests.ui_sweep_task:task"
TRIALS = 4
FAILED_RED, FINISHED_GREEN = "rgb(200, 45, 76)", "rgb(39, 124, 67)"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


def browser_missing() -> str | None:
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A real sweep of the plug-in task, exported and registered; the runs as the sweep left them."""
    workdir = tmp_path_factory.mktemp("browser")
    (workdir / "space.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
    # one trial at a time: the sampler sees results in a fixed order, so with seed 1 the second
    # (random) trial draws the buggy loss and the others the correct one
    sweep = orchestrate("sweep", "--task", REFERENCE, "--space", "space.yaml", "--trials", str(TRIALS),
                        "--concurrency", "1", "--seed", "1", "--name", "ui", cwd=workdir, plugins=True)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ui_matcher")
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'",
                                order_by=["attributes.start_time ASC"])
    statuses = [run.data.tags["orchestrate.status"] for run in trials]
    assert len(trials) == TRIALS and "stopped" in statuses, statuses
    assert {"completed", "converged", "pruned"} & set(statuses), statuses
    best = orchestrate("best", "--task", REFERENCE, "--out", "winners", cwd=workdir, plugins=True)
    assert best.returncode == 0, best.stderr
    assert "alias champion" in best.stdout
    return workdir, client, experiment.experiment_id, trials


def test_browser_shows_the_sweeps_trials_a_failed_trial_a_plot_and_the_champion(swept, tmp_path):
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    workdir, client, experiment_id, trials = swept
    winner_run = client.get_run(trials[0].data.tags["mlflow.parentRunId"]).data.tags["orchestrate.best_trial"]
    winner_run = next(run.info.run_id for run in trials if run.data.tags["orchestrate.trial_id"] == winner_run)
    stopped = [run for run in trials if run.data.tags["orchestrate.status"] == "stopped"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    process, urls = start_ui(workdir)
    try:
        base = urls["trials"].split("/orchestrate-open")[0]
        assert base.startswith("http://127.0.0.1:")
        wait_for_health(base)
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS,
                viewport={"width": 1600, "height": 1000})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                ("http://127.0.0.1", "data:", "blob:")) else route.abort())
            page = context.new_page()
            try:
                check_trials_table(page, urls["trials"], trials, stopped, shots)
                check_failed_trial_page(page, base, experiment_id, stopped[0], shots)
                check_plot_artifact(page, base, experiment_id, winner_run, "plots/health_probes.png", shots)
                check_plot_artifact(page, base, experiment_id, stopped[0].info.run_id, "plots/health_probes.png", shots)
                sweep_run = trials[0].data.tags["mlflow.parentRunId"]
                for plot in ("parallel_coordinate", "optimization_history", "learning_curves"):
                    check_plot_artifact(page, base, experiment_id, sweep_run, f"plots/{plot}.png", shots)
                check_charts(page, urls["charts"], shots)
                check_registry(page, urls["registry"], shots)
            finally:
                context.close()
    finally:
        code, output = stop(process)
    assert code == 0, output
    assert len(list(shots.glob("*.png"))) == 9
    print(f"screenshots: {shots}")


def check_trials_table(page, url: str, trials: list, stopped: list, shots: Path) -> None:
    """A fresh profile opens on the model-training view, one row per trial, readable names,
    the guard-stopped trial's status icon red, the others green."""
    page.goto(url)
    rows = page.locator(".ag-pinned-left-cols-container [role=row]")
    rows.nth(len(trials) - 1).wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "trials.png"))
    assert "#/experiments/" in page.url and "workflowType=machine_learning" in page.url
    assert page.get_by_text("Model registry").first.is_visible()  # the model-training sidebar
    found = page.evaluate("""() => [...document.querySelectorAll('.ag-pinned-left-cols-container [role=row]')]
        .map(row => { const icon = row.querySelector('[col-id=runDateAndNestInfo] [role=img]');
                      return {id: row.getAttribute('row-id'), text: row.innerText,
                              colour: icon ? getComputedStyle(icon).color : null}; })""")
    assert sorted(row["id"] for row in found) == sorted(run.info.run_id for run in trials)
    # readable names: t01 lr=... (the row's text starts with its colour chip's hidden label)
    assert all(re.search(r"^t0\d lr=", row["text"], re.M) for row in found), found
    stopped_ids = {run.info.run_id for run in stopped}
    for row in found:
        assert row["colour"] == (FAILED_RED if row["id"] in stopped_ids else FINISHED_GREEN), row
    assert page.get_by_text("orchestrate.status", exact=True).first.is_visible()


def check_failed_trial_page(page, base: str, experiment_id: str, run, shots: Path) -> None:
    page.goto(f"{base}/#/experiments/{experiment_id}/runs/{run.info.run_id}")
    page.get_by_text("by guard").first.wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "failed_trial.png"))
    text = page.inner_text("body")
    assert "Failed" in text
    assert "impossible_value" in text
    reason = run.data.tags["orchestrate.reason"]
    assert reason.split(";")[0][:60] in " ".join(text.split()), reason


def check_plot_artifact(page, base: str, experiment_id: str, run_id: str, path: str, shots: Path) -> None:
    page.goto(f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}")
    page.reload()  # a new hash alone is a same-document navigation; open the route afresh
    image = page.locator("img[src^='blob:']").first
    image.wait_for(timeout=60_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=30_000)
    page.screenshot(path=str(shots / f"artifact_{run_id[:8]}_{Path(path).stem}.png"))
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width >= 300 and height >= 200


def check_charts(page, url: str, shots: Path) -> None:
    page.goto(url)
    page.get_by_text("Parallel Coordinates").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "charts.png"))
    assert "compareRunsMode=CHART" in page.url
    assert page.get_by_text("Sweep", exact=True).first.is_visible()  # our section, first


def check_registry(page, url: str, shots: Path) -> None:
    page.goto(url)
    page.get_by_text("champion").first.wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "registry.png"))
    text = page.inner_text("body")
    assert "ui_matcher" in text and "Version 1" in text


def test_the_sweep_itself_names_its_trials_and_marks_the_guard_stopped_one_failed(swept):
    _, client, _, trials = swept
    for index, run in enumerate(trials, start=1):
        assert run.info.run_name.startswith(f"t{index:02d} "), run.info.run_name
        expected = mlflow_status(run.data.tags["orchestrate.status"])
        assert run.info.status == expected, (run.data.tags["orchestrate.status"], run.info.status)
        assert run.data.tags[DESCRIPTION_TAG].startswith(f"**{run.data.tags['orchestrate.status']}**")
    assert "FAILED" in {run.info.status for run in trials}
    colours = [run.data.tags[COLOUR_TAG] for run in trials]
    assert len(set(colours)) == len(colours), colours
    sweep = client.get_run(trials[0].data.tags["mlflow.parentRunId"])
    summary = sweep.data.tags[DESCRIPTION_TAG]
    assert "**Winner**" in summary and "impossible_value" in summary, summary
    names = {run.info.run_name for run in trials}
    assert any(f"`{name}`" in summary for name in names), summary
