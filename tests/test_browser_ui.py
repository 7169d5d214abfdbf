"""What a user sees in a real browser: Debian's Chromium (headless, a fresh profile) against
`orchestrate ui` after a real small sweep and `orchestrate best`.

The sweep is tests/ui_sweep_task.py: four trials of a tiny matcher whose search space holds a
real bug (a contrastive loss without negatives), so some trials finish and at least one is
stopped by the impossible_value guard. Screenshots go to the test's temporary directory.

Until phase B wires orchestrator/run_presentation.py into orchestrator/tracking.py, the sweep
itself still writes `<sweep>-<id>` names and FINISHED statuses; `present_like_phase_b` applies
the same functions to the recorded runs, and the strict xfail test below flips to a failure
(XPASS) the day the sweep does it by itself, so the stand-in is then removed.

Every request the browser makes outside 127.0.0.1 is aborted.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.outcomes import TrialOutcome
from orchestrator.run_presentation import (
    COLOUR_TAG, DESCRIPTION_TAG, abbreviations, mlflow_status, trial_colour, trial_description,
    trial_run_name, varying_parameters,
)
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
    """A real sweep of the plug-in task, exported and registered; the runs as the sweep left
    them (before the phase-B stand-in)."""
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


def present_like_phase_b(client: MlflowClient, trials: list) -> None:
    """Stand-in for phase B's wiring: names, statuses, descriptions and colours of the trial runs
    from run_presentation's functions, written as the tracker will write them."""
    configs = [dict(run.data.params) for run in trials]
    shown = varying_parameters(configs, list(SPACE["parameters"]))
    labels = abbreviations(shown)
    for index, run in enumerate(trials, start=1):
        tags = run.data.tags
        outcome = TrialOutcome(tags["orchestrate.trial_id"], configs[index - 1], status=tags["orchestrate.status"],
                               reason=tags["orchestrate.reason"], guard=tags.get("orchestrate.guard"),
                               epochs=int(run.data.metrics.get("best/epoch", 0)),
                               best_metric=run.data.metrics.get("best/val/mean_r1"))
        client.update_run(run.info.run_id, name=trial_run_name(index, configs[index - 1], shown, labels))
        client.set_tag(run.info.run_id, DESCRIPTION_TAG, trial_description(outcome, "val/mean_r1"))
        client.set_tag(run.info.run_id, COLOUR_TAG, trial_colour(index))
        client.set_terminated(run.info.run_id, mlflow_status(outcome.status))


def log_winner_figures(workdir: Path, client: MlflowClient) -> str:
    """The champion's similarity histogram and health probes, drawn from the registered model
    and the run's recorded metrics, logged on its run under plots/ (what phase B does on each
    new best epoch); returns the run id."""
    import torch

    from orchestrator.export import load_champion
    from tasks.common.figures import health_probes, png_bytes, similarity_histograms

    champion = load_champion("ui_matcher", tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    run_id = champion.files["metrics.json"]["run_id"]
    images, attributes = champion.task.embed(champion.setup, champion.setup.extras["val"])
    similarity = images @ attributes.T
    matching = torch.eye(len(similarity), dtype=torch.bool)
    run = client.get_run(run_id)
    keys = [key for key in run.data.metrics if key.startswith(("probe/", "val/"))]
    history: dict[int, dict] = {}
    for key in keys:
        for metric in client.get_metric_history(run_id, key):
            history.setdefault(metric.step, {"epoch": metric.step})[key] = metric.value
    plots = workdir / "plots"
    plots.mkdir()
    (plots / "similarities.png").write_bytes(png_bytes(similarity_histograms(similarity[matching], similarity[~matching])))
    (plots / "health_probes.png").write_bytes(png_bytes(health_probes([history[s] for s in sorted(history)])))
    client.log_artifacts(run_id, str(plots), "plots")
    return run_id


def test_browser_shows_the_sweeps_trials_a_failed_trial_a_plot_and_the_champion(swept, tmp_path):
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    workdir, client, experiment_id, trials = swept
    present_like_phase_b(client, trials)
    winner_run = log_winner_figures(workdir, client)
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
                check_plot_artifact(page, base, experiment_id, winner_run, "plots/similarities.png", shots)
                sweep_run = trials[0].data.tags["mlflow.parentRunId"]
                check_plot_artifact(page, base, experiment_id, sweep_run, "plots/parallel_coordinate.png", shots)
                check_charts(page, urls["charts"], shots)
                check_registry(page, urls["registry"], shots)
            finally:
                context.close()
    finally:
        code, output = stop(process)
    assert code == 0, output
    assert len(list(shots.glob("*.png"))) == 6
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
    page.screenshot(path=str(shots / f"artifact_{Path(path).stem}.png"))
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


@pytest.mark.xfail(strict=True, reason="phase B: orchestrator/tracking.py does not yet name trial runs or set "
                                       "FAILED for guard-stopped trials (run_presentation.py); remove the "
                                       "stand-in present_like_phase_b when this passes")
def test_the_sweep_itself_names_its_trials_and_marks_the_guard_stopped_one_failed(swept):
    _, _, _, trials = swept  # the runs as the sweep recorded them, before the stand-in
    for run in trials:
        assert run.info.run_name.startswith("t0"), run.info.run_name
        expected = mlflow_status(run.data.tags["orchestrate.status"])
        assert run.info.status == expected, (run.data.tags["orchestrate.status"], run.info.status)
    assert json.dumps([run.data.tags.get(DESCRIPTION_TAG) for run in trials]).count("null") == 0
