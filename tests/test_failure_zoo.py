"""The failure zoo: each broken task of tests/zoo/ is stopped by the right health guard, and
no failure guard stops its healthy tasks.

The fast tests prove each zoo task's failure (or health) is real in the task itself (so the zoo
cannot silently change kind). The slow test runs one real CLI sweep over every zoo plug-in task
(local Ray, Optuna, ASHA out of the way, sqlite MLflow) and checks, per task, the guard that
stopped it, how many reports after the failure's onset it took, the modality its reason names,
and what MLflow, the terminal, `orchestrate report` and `orchestrate best` say.

Onset: the first report at which the failure is visible to its guard. A negative loss or a
collapsed embedding shows on a single report; a loss that stopped moving first shows on the
first report equal to its predecessor; a chance-level or modality-ignored metric counts once
the guard's documented warm-up is over (the raw first report is printed beside it); a leak
shows on the first report where the target sits at its ceiling with one modality alone
nearly matching it; a plateau shows `patience` reports after the metric's last real gain.
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
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.health import HealthConfig, check_health
from orchestrator.training import MixedPrecision, build_optimizer, seed_everything, train_one_epoch
from tasks.common.contrastive import symmetric_infonce
from tests.zoo import (
    class_leak, collapse, constant_tower, dead_relu, majority, noise, one_modality_first, plateau,
    small_val_plateau, unpaired_labels, wrong_infonce, zero_loss,
)
from tests.health_histories import only
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


def test_dead_relu_attribute_embeddings_are_all_zero_vectors(data_dir):
    setup = build(dead_relu.task, data_dir)
    train(dead_relu.task, setup, epochs=1)
    probes = dead_relu.task.probe(setup)
    assert probes["attributes/zero_fraction"] == 1.0 and probes["attributes/offdiag_cosine"] == 0.0
    assert probes["image/zero_fraction"] == 0.0


def test_constant_tower_gives_one_attribute_embedding_whatever_the_input(data_dir):
    setup = build(constant_tower.task, data_dir)
    val = setup.extras["val"]
    _, attributes = constant_tower.task.embed(setup, val)
    assert torch.allclose(attributes, attributes[:1].expand_as(attributes))
    assert constant_tower.task.probe(setup)["image/offdiag_cosine"] < 1.0


def test_class_level_attributes_are_one_vector_per_class(data_dir):
    setup = build(class_leak.task, data_dir)
    val = setup.extras["val"]
    for category in range(4):
        rows = val.attributes[val.category == category]
        assert torch.equal(rows, rows[:1].expand_as(rows))


def test_unpaired_labels_are_balanced_and_unrelated_to_the_images(data_dir):
    setup = build(unpaired_labels.task, data_dir)
    val = setup.extras["val"]
    assert 0.35 < val.rare_event.double().mean().item() < 0.65
    agreement = (val.rare_event == (val.category >= 2).long()).double().mean().item()
    assert 0.35 < agreement < 0.65  # the images' own bit predicts these labels at chance


def test_small_val_plateau_attributes_carry_heavy_sensor_noise(data_dir):
    clean = build(plateau.task, data_dir).extras["val"].attributes
    noisy = build(small_val_plateau.task, data_dir).extras["val"].attributes
    assert (noisy - clean).std().item() == pytest.approx(small_val_plateau.SENSOR_NOISE, rel=0.1)


# --- slow: one real sweep over the whole zoo --------------------------------------------------


def _first(history, condition) -> int:
    return next(epoch for epoch, report in history.items() if condition(report))


def _modality_ignored_onset(history, key="val/accuracy", probe="probe/image_shuffled/accuracy"):
    guard = DEFAULTS.modality_ignored
    raw = _first(history, lambda r: r[key] - r[probe] < guard.min_absolute_gain)
    return raw, max(raw, guard.warmup_reports + 1)


def _negative_loss_onset(history):
    raw = _first(history, lambda r: r["train/loss"] < 0)
    return raw, raw


def _flat_loss_onset(history):
    losses = {e: r["train/loss"] for e, r in history.items()}
    # the failure appears at the first report of exactly 0, or the first that repeats the last
    raw = next(e for e in losses if losses[e] == 0.0 or (e > 1 and losses[e] == losses[e - 1]))
    return raw, raw


def _collapse_onset(modality):
    guard = DEFAULTS.embedding_collapse

    def onset(history):
        raw = _first(history, lambda r: r[f"probe/{modality}/offdiag_cosine"] >= guard.max_offdiag_cosine
                     or r[f"probe/{modality}/zero_fraction"] >= guard.max_zero_fraction)
        return raw, raw
    return onset


def _chance_onset(history):
    guard = DEFAULTS.chance_level
    raw = _first(history, lambda r: r["val/auroc"] <= 0.5 + guard.auroc_band
                 or r["val/accuracy"] <= r["val/majority_rate"] + guard.majority_tolerance)
    return raw, max(raw, guard.warmup_reports + 1)


def _leak_onset(history):
    guard = DEFAULTS.leakage

    def visible(r):
        span = 1 - r["val/chance/accuracy"]
        alone, carrier_shuffled = r["probe/image_shuffled/accuracy"], r["probe/attributes_shuffled/accuracy"]
        at_ceiling = 1 - r["val/accuracy"] <= max(guard.ceiling_margin * span, 1 / r["val/samples"]) + 1e-9
        return at_ceiling and (
            r["val/accuracy"] - alone <= guard.modality_alone_margin * span
            or (r["val/accuracy"] - alone <= guard.carrier_alone_margin * span
                and carrier_shuffled - r["val/chance/accuracy"] <= guard.chance_margin * span))
    raw = _first(history, visible)
    return raw, raw


def _plateau_onset(history, key="val/mean_r1"):
    guard = DEFAULTS.plateau
    values = [history[e][key] for e in sorted(history)]
    last_gain = max(i + 1 for i, v in enumerate(values) if i == 0 or v - max(values[:i]) >= guard.min_delta)
    return last_gain, last_gain + guard.patience


LEAK_KEYS = ["val/accuracy", "val/chance/accuracy", "val/samples", "probe/image_shuffled/accuracy",
             "probe/attributes_shuffled/accuracy"]
# broken: module, expected guard, onset(history) -> (raw first report, report its guard can see
# it), the keys that onset reads, the modality its reason must name first, search-space extras
BROKEN = [
    (noise, "modality_ignored", _modality_ignored_onset,
     ["val/accuracy", "probe/image_shuffled/accuracy"], "image", {}),
    (wrong_infonce, "impossible_value", _negative_loss_onset, ["train/loss"], None, {}),
    (zero_loss, "flat_line", _flat_loss_onset, ["train/loss"], None, {}),
    (collapse, "embedding_collapse", _collapse_onset("image"),
     ["probe/image/offdiag_cosine", "probe/image/zero_fraction"], "image", {}),
    (dead_relu, "embedding_collapse", _collapse_onset("attributes"),
     ["probe/attributes/offdiag_cosine", "probe/attributes/zero_fraction"], "attributes", {}),
    (constant_tower, "embedding_collapse", _collapse_onset("attributes"),
     ["probe/attributes/offdiag_cosine", "probe/attributes/zero_fraction"], "attributes", {}),
    (majority, "chance_level", _chance_onset,
     ["val/auroc", "val/accuracy", "val/majority_rate"], None, {}),
    (unpaired_labels, "chance_level", _chance_onset,
     ["val/auroc", "val/accuracy", "val/majority_rate"], None, {}),
    (class_leak, "leakage", _leak_onset, LEAK_KEYS, "attributes", {}),
]
# healthy: module, the guard that may end it (None: runs its budget), search-space extras
HEALTHY = [
    (plateau, "plateau",
     {"budget": {"max_epochs": 10, "grace_period": 10, "reduction_factor": 2},
      "fixed": {"batch_size": 16},
      "parameters": {"learning_rate": {"type": "float", "low": 0.025, "high": 0.035, "log": True}}}),
    (one_modality_first, None,
     {"budget": {"max_epochs": 10, "grace_period": 10, "reduction_factor": 2},
      "fixed": {"batch_size": 16}}),
    (small_val_plateau, "plateau",
     {"budget": {"max_epochs": 12, "grace_period": 12, "reduction_factor": 2}}),
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


def run_cli(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
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


def full_history(client: MlflowClient, run) -> list[dict]:
    """Every reported key of the trial run, one dict per epoch, as the guards saw them."""
    keys = [key for key in run.data.metrics if key.startswith(("train/", "val/", "probe/"))]
    return [{"training_iteration": epoch, **report}
            for epoch, report in metric_history(client, run.info.run_id, keys).items()]


def squash(text: str) -> str:
    return " ".join(text.split())


def the_trial(client: MlflowClient, task):
    experiment = client.get_experiment_by_name(task.name)
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(runs) == 1, task.name
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    return runs[0], sweeps[0]


@pytest.fixture(scope="module")
def zoo_sweep(tmp_path_factory):
    """One real CLI sweep over every zoo task, 1 trial each."""
    workdir = tmp_path_factory.mktemp("zoo_sweep")
    for module, *_, extras in BROKEN:
        write_space(workdir, module.task, extras)
    for module, _, extras in HEALTHY:
        write_space(workdir, module.task, extras)
    modules = [entry[0] for entry in BROKEN] + [entry[0] for entry in HEALTHY]
    tasks = [arg for module in modules for arg in ("--task", reference(module))]
    sweep = run_cli("sweep", "--figures-of-best", "0", *tasks, "--trials", "1", "--cpus-per-trial", "1", "--name", "zoo",
                    cwd=workdir)
    return workdir, sweep, MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")


@pytest.mark.slow
def test_one_sweep_stops_every_broken_zoo_task_with_its_guard_within_two_reports(zoo_sweep, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    workdir, sweep, client = zoo_sweep
    # no trial of a broken task finished well, so the sweep says so and exits 1
    assert sweep.returncode == 1, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    stdout, stderr = squash(sweep.stdout), squash(sweep.stderr)
    assert len(sweep.stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")
    assert "[zoo_class_leak] guards on: " in stdout  # the preflight's coverage, before Ray started
    assert "[zoo_zero_loss] guards off: " in stdout
    lines = [f"{'zoo task':26} {'expected':18} {'caught':18} onset(raw) verdict reports"]
    for module, guard, onset_of, keys, modality, _ in BROKEN:
        task = module.task
        assert f"no trial of {task.name} finished well (1 stopped (1 {guard}))" in stderr
        run, sweep_run = the_trial(client, task)
        tags = run.data.tags
        assert tags["orchestrate.status"] == "stopped", (task.name, tags)
        assert tags.get("orchestrate.guard") == guard, (task.name, tags.get("orchestrate.reason"))
        reason = tags["orchestrate.reason"]
        verdict = json.loads(Path(client.download_artifacts(
            run.info.run_id, "health_verdict.json", str(workdir))).read_text())
        assert verdict["health/guard"] == guard and verdict["health/failure"] is True
        verdict_epoch = int(verdict["health/epoch"])

        history = metric_history(client, run.info.run_id, keys)
        assert max(history) == verdict_epoch  # the trial stopped at the verdict's report
        raw_onset, onset = onset_of(history)
        lines.append(f"{task.name:26} {guard:18} {tags['orchestrate.guard']:18} "
                     f"{onset:>5} ({raw_onset}) {verdict_epoch:>7} {verdict_epoch - onset + 1:>7}")
        assert 0 <= verdict_epoch - onset <= 1, (task.name, raw_onset, onset, verdict_epoch)
        if modality is not None:  # the reason names the right modality first
            named = reason.split(" embeddings collapsed")[0].removeprefix("the ") \
                if guard == "embedding_collapse" else reason
            assert (named == modality) if guard == "embedding_collapse" else (modality in named), reason

        assert squash(reason) in stdout, task.name
        assert f"1 (1 {guard})" in stdout, task.name  # the summary's stopped column
        assert "leakage" in sweep_run.data.params["guards_on"] or guard != "leakage"
        report = run_cli("report", "--task", reference(module), cwd=workdir)
        assert report.returncode == 0, report.stderr
        assert guard in report.stdout and "stopped" in report.stdout, report.stdout
    print("\n" + "\n".join(lines))


@pytest.mark.slow
def test_the_leaky_zoo_task_is_stopped_by_leakage_and_never_exported(zoo_sweep):
    workdir, _, client = zoo_sweep
    run, _ = the_trial(client, class_leak.task)
    assert (run.data.tags["orchestrate.status"], run.data.tags["orchestrate.guard"]) == ("stopped", "leakage")
    export = run_cli("best", "--task", reference(class_leak), "--out", "leaked", cwd=workdir)
    assert export.returncode == 2, export.stdout + export.stderr
    assert "1 of its 1 trials were stopped by a failure guard (1 leakage)" in export.stderr
    assert len(export.stderr.strip().splitlines()) == 1
    assert not (workdir / "leaked").exists()


@pytest.mark.slow
def test_no_failure_guard_stops_a_healthy_zoo_task(zoo_sweep):
    workdir, sweep, client = zoo_sweep
    stderr = squash(sweep.stderr)
    for module, guard, extras in HEALTHY:
        task = module.task
        assert task.name not in stderr  # each has a winner
        run, _ = the_trial(client, task)
        tags = run.data.tags
        assert tags["orchestrate.status"] in ("completed", "converged"), (task.name, tags)
        assert tags.get("orchestrate.guard") in (None, guard), (task.name, tags.get("orchestrate.reason"))
        export = run_cli("best", "--task", reference(module), "--out", f"best_{task.name}", cwd=workdir)
        assert export.returncode == 0, export.stderr


@pytest.mark.slow
def test_a_model_that_learns_its_attributes_first_keeps_running_until_its_images_matter(zoo_sweep):
    _, _, client = zoo_sweep
    run, _ = the_trial(client, one_modality_first.task)
    history = full_history(client, run)
    gains = [r["val/auroc"] - r["probe/image_shuffled/auroc"] for r in history]
    print("image gains per epoch:", [round(gain, 4) for gain in gains])
    assert min(gains[1:4]) < 0.02  # a fixed 0.02 after a short warm-up would have stopped it
    assert gains[-1] >= 0.03  # ... yet the images came to matter
    assert run.data.tags["orchestrate.status"] in ("completed", "converged")


@pytest.mark.slow
def test_a_small_val_set_wandering_at_its_ceiling_converges_before_its_budget(zoo_sweep):
    _, _, client = zoo_sweep
    run, _ = the_trial(client, small_val_plateau.task)
    assert (run.data.tags["orchestrate.status"], run.data.tags["orchestrate.guard"]) == ("converged", "plateau")
    history = full_history(client, run)
    print("R@1 per epoch:", [round(r["val/mean_r1"], 4) for r in history])
    assert len(history) < 12
    # a plateau guard that counted every gain above a fixed min_delta would still be running
    fixed_delta = only("plateau", plateau={"noise_sigmas": 0})
    for end in range(1, len(history) + 1):
        assert check_health(history[:end], metric=small_val_plateau.task.metric, mode="max",
                            value_bounds={}, config=fixed_delta) is None
