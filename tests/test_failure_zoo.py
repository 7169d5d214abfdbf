"""The failure zoo: each broken task of tests/zoo/ is stopped by the right health guard.

The fast tests prove each zoo task's failure is real in the task itself (so the zoo cannot
silently become healthy). The slow test runs one real CLI sweep over all six plug-in tasks
(local Ray, Optuna, ASHA, sqlite MLflow) and checks, per task, the guard that stopped it, how
many reports after the failure's onset it took, and what MLflow, the terminal and
`orchestrate report` say.

Onset: the first report at which the failure is visible to its guard. A negative loss or a
collapsed embedding shows on a single report; a loss that stopped moving first shows on the
first report equal to its predecessor; a chance-level or modality-ignored metric counts once
the guard's documented warm-up is over (the raw first report is printed beside it); a
plateau shows `patience` reports after the metric's last real gain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.health import HealthConfig
from orchestrator.training import MixedPrecision, build_optimizer, seed_everything, train_one_epoch
from tasks.common.contrastive import symmetric_infonce
from tests.zoo import collapse, majority, noise, plateau, wrong_infonce, zero_loss
from tests.zoo.base import ZooConfig, derangement, seeded_evaluation

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = HealthConfig()
MAX_EPOCHS = 8
LEARNING_RATES = {"low": 8e-3, "high": 1.2e-2}

# --- fast: the failure is in the task ------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zoo_data")
    noise.task.make_demo_data(root, seed=0)  # every zoo task reads the same layout
    return root


def build(task, data_dir: Path, **config):
    seed_everything(0)
    return task.build(ZooConfig(**config), data_dir, torch.device("cpu"))


def train(task, setup, epochs: int, max_epochs: int = MAX_EPOCHS) -> list[float]:
    """The generic loop's optimiser and epochs, in process; the loss of each epoch."""
    config = setup.extras["config"]
    optimizer, schedule = build_optimizer(setup, config, max_epochs, len(setup.train_batches))
    precision = MixedPrecision(setup.device)
    losses = []
    for _ in range(epochs):
        setup.model.train()
        losses.append(train_one_epoch(task, setup, optimizer, schedule, precision,
                                      config.grad_clip_norm)["loss"])
    setup.model.eval()
    return losses


def test_noise_encoder_output_is_independent_of_the_image(data_dir):
    setup = build(noise.task, data_dir)
    train(noise.task, setup, epochs=2)
    images = setup.extras["val"].images
    with torch.no_grad(), seeded_evaluation():
        real = setup.model.encode_images(images)
    with torch.no_grad(), seeded_evaluation():
        other = setup.model.encode_images(images[derangement(len(images))])
    assert torch.equal(real, other)  # the same draw of noise, whatever the images
    accuracy = noise.task.evaluate(setup, "val")["accuracy"]
    probes = noise.task.probe(setup)
    assert probes["image_shuffled/accuracy"] == accuracy
    assert probes["attributes_shuffled/accuracy"] < accuracy  # the other modality carries signal


def test_positive_only_infonce_is_negative_on_a_real_batch(data_dir):
    setup = build(wrong_infonce.task, data_dir)
    images, attributes = next(iter(setup.train_batches))[:2]
    image_embeddings = setup.model.encode_images(images)
    config = setup.extras["config"]
    wrong = wrong_infonce.task.matching_loss(image_embeddings, image_embeddings, config)
    correct = symmetric_infonce(image_embeddings, image_embeddings, config.temperature)
    assert wrong.item() == pytest.approx(-1 / config.temperature, rel=1e-4)
    assert correct.item() >= 0
    assert train(wrong_infonce.task, setup, epochs=1)[0] < 0


def test_output_mean_plus_std_loss_is_driven_to_exactly_zero_and_stays(data_dir):
    setup = build(zero_loss.task, data_dir)
    losses = train(zero_loss.task, setup, epochs=4)
    assert losses[0] > 0 and losses[-2:] == [0.0, 0.0], losses
    batch = next(iter(setup.train_batches))
    setup.model.zero_grad()
    zero_loss.task.training_step(setup, batch)["loss"].backward()
    assert all(p.grad is None or not p.grad.any() for p in setup.model.parameters())


def test_collapsed_image_embeddings_all_have_similarity_one(data_dir):
    setup = build(collapse.task, data_dir)
    images, _ = collapse.task.embed(setup, setup.extras["val"])
    assert torch.allclose(images @ images.T, torch.ones(len(images), len(images)), atol=1e-5)


def test_detector_with_layernorm_over_one_score_outputs_a_constant(data_dir):
    setup = build(majority.task, data_dir)
    train(majority.task, setup, epochs=2)
    with torch.no_grad():
        logits = setup.model(setup.extras["val"].images)
    assert torch.all(logits == logits[0])
    metrics = majority.task.evaluate(setup, "val")
    assert metrics["majority_rate"] >= 0.85
    assert metrics["auroc"] == 0.5
    assert metrics["accuracy"] in (metrics["majority_rate"], 1 - metrics["majority_rate"])


def test_plateau_matcher_learns_and_reaches_its_ceiling_early(data_dir):
    setup = build(plateau.task, data_dir, batch_size=16, learning_rate=0.03)
    recalls = []
    for _ in range(4):
        train(plateau.task, setup, epochs=1, max_epochs=10)
        recalls.append(plateau.task.evaluate(setup, "val")["mean_r1"])
    assert recalls[-1] >= 0.97, recalls
    assert plateau.task.probe(setup)["image_shuffled/mean_r1"] < 0.1


# --- slow: one real sweep over the whole zoo --------------------------------------------------


def _modality_ignored_onset(history, key="val/accuracy", probe="probe/image_shuffled/accuracy"):
    guard = DEFAULTS.modality_ignored
    raw = next(e for e, r in history.items()
               if r[key] - r[probe] < min(guard.min_absolute_gain, guard.min_relative_gain * abs(r[key])))
    return raw, max(raw, guard.warmup_reports + 1)


def _negative_loss_onset(history):
    raw = next(e for e, r in history.items() if r["train/loss"] < 0)
    return raw, raw


def _flat_loss_onset(history):
    losses = {e: r["train/loss"] for e, r in history.items()}
    # the failure appears at the first report of exactly 0, or the first that repeats the last
    raw = next(e for e in losses if losses[e] == 0.0 or (e > 1 and losses[e] == losses[e - 1]))
    return raw, raw


def _collapse_onset(history):
    limit = DEFAULTS.embedding_collapse.max_offdiag_cosine
    raw = next(e for e, r in history.items() if r["probe/image/offdiag_cosine"] >= limit)
    return raw, raw


def _chance_onset(history):
    guard = DEFAULTS.chance_level
    raw = next(e for e, r in history.items()
               if r["val/auroc"] <= 0.5 + guard.auroc_band
               or r["val/accuracy"] <= r["val/majority_rate"] + guard.majority_tolerance)
    return raw, max(raw, guard.warmup_reports + 1)


def _plateau_onset(history, key="val/mean_r1"):
    guard = DEFAULTS.plateau
    values = [history[e][key] for e in sorted(history)]
    last_gain = max(i + 1 for i, v in enumerate(values) if i == 0 or v - max(values[:i]) >= guard.min_delta)
    return last_gain, last_gain + guard.patience


# module, expected guard, onset(history) -> (raw first report, report its guard can see it),
# the keys that onset reads, search-space extras
ZOO = [
    (noise, "modality_ignored", _modality_ignored_onset,
     ["val/accuracy", "probe/image_shuffled/accuracy"], {}),
    (wrong_infonce, "impossible_value", _negative_loss_onset, ["train/loss"], {}),
    (zero_loss, "flat_line", _flat_loss_onset, ["train/loss"], {}),
    (collapse, "embedding_collapse", _collapse_onset, ["probe/image/offdiag_cosine"], {}),
    (majority, "chance_level", _chance_onset,
     ["val/auroc", "val/accuracy", "val/majority_rate"], {}),
    (plateau, "plateau", _plateau_onset, ["val/mean_r1"],
     {"budget": {"max_epochs": 10, "grace_period": 10, "reduction_factor": 2},
      "fixed": {"batch_size": 16},
      "parameters": {"learning_rate": {"type": "float", "low": 0.025, "high": 0.035, "log": True}}}),
]


def reference(module) -> str:
    return f"{module.__name__}:task"


def write_space(workdir: Path, task, extras: dict) -> None:
    space = {
        "task": task.name, "metric": task.metric, "mode": task.mode,
        # grace_period = max_epochs: ASHA never prunes, so only a guard can stop a trial early
        "budget": {"max_epochs": MAX_EPOCHS, "grace_period": MAX_EPOCHS, "reduction_factor": 2},
        "parameters": {"learning_rate": {"type": "float", **LEARNING_RATES, "log": True}},
        "health": {},  # every threshold at its default
        **extras,
    }
    (workdir / "search_spaces").mkdir(exist_ok=True)
    (workdir / "search_spaces" / f"{task.name}.yaml").write_text(yaml.safe_dump(space))


def run_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """The real `orchestrate` console script, with the repo importable for plug-in `tests.zoo`."""
    executable = shutil.which("orchestrate") or str(Path(sys.executable).parent / "orchestrate")
    env = {**os.environ, "COLUMNS": "1000", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("ORCHESTRATE_STORAGE", None)
    return subprocess.run([executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def metric_history(client: MlflowClient, run_id: str, keys: list[str]) -> dict[int, dict[str, float]]:
    """epoch -> {key: value} from the trial run's MLflow metric histories."""
    history: dict[int, dict[str, float]] = {}
    for key in keys:
        for metric in client.get_metric_history(run_id, key):
            history.setdefault(metric.step, {})[key] = metric.value
    return dict(sorted(history.items()))


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow
def test_one_sweep_stops_every_zoo_task_with_its_guard_within_two_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for module, _, _, _, extras in ZOO:
        write_space(tmp_path, module.task, extras)
    tasks = [arg for module, *_ in ZOO for arg in ("--task", reference(module))]
    sweep = run_cli("sweep", *tasks, "--trials", "1", "--cpus-per-trial", "1", "--name", "zoo",
                    cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    stdout = squash(sweep.stdout)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # onset(raw): the report the guard can see the failure (the first report showing it; for
    # plateau, the metric's last real gain)
    lines = [f"{'zoo task':26} {'expected':18} {'caught':18} onset(raw) verdict reports"]
    for module, guard, onset_of, keys, _ in ZOO:
        task = module.task
        experiment = client.get_experiment_by_name(task.name)
        runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
        assert len(runs) == 1, task.name
        run = runs[0]
        tags = run.data.tags
        expected_status = "stopped" if guard != "plateau" else "converged"
        assert tags["orchestrate.status"] == expected_status, (task.name, tags)
        assert tags.get("orchestrate.guard") == guard, (task.name, tags.get("orchestrate.reason"))
        reason = tags["orchestrate.reason"]
        assert reason
        verdict = json.loads(Path(client.download_artifacts(
            run.info.run_id, "health_verdict.json", str(tmp_path))).read_text())
        assert verdict["health/guard"] == guard
        assert verdict["health/failure"] is (guard != "plateau")
        verdict_epoch = int(verdict["health/epoch"])

        history = metric_history(client, run.info.run_id, keys)
        assert max(history) == verdict_epoch  # the trial stopped at the verdict's report
        raw_onset, onset = onset_of(history)
        reports = verdict_epoch - onset + 1
        lines.append(f"{task.name:26} {guard:18} {tags['orchestrate.guard']:18} "
                     f"{onset:>5} ({raw_onset}) {verdict_epoch:>7} {reports:>7}")
        assert 0 <= verdict_epoch - onset <= 1, (task.name, raw_onset, onset, verdict_epoch)

        assert squash(reason) in stdout, task.name
        if guard != "plateau":  # a plateau stop counts as converged, apart from the failures
            assert f"1 (1 {guard})" in stdout, task.name  # the summary's stopped column
        report = run_cli("report", "--task", reference(module), cwd=tmp_path)
        assert report.returncode == 0, report.stderr
        assert guard in report.stdout and expected_status in report.stdout, report.stdout
    print("\n" + "\n".join(lines))
