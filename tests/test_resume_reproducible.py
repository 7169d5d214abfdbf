"""A trial resumed from its checkpoint continues exactly as if it had never stopped.

For every built-in task, on CPU and in this process, through the trial loop's own checkpoint
save and load: the same trial run for 2 epochs, and run again from its epoch-1 checkpoint,
reports the same epoch 2 (every train, val and probe value, compared exactly). What makes it
hold: the global generators are in the checkpoint, and the loop tells the task's batches the
epoch (`set_epoch`), so a resumed trial does not replay epoch 1's batch order.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from ray import tune

from orchestrator import rng_state
from orchestrator.health import HealthConfig
from orchestrator.registry import builtin_task_names, load_task, task_reference
from orchestrator.trainable import TrialPlan, train_trial
from orchestrator.training import seed_everything, set_epoch

EPOCHS = 2
COMPARED = ("train/", "val/", "probe/")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as Ray gives a 1-CPU trial (several threads fight over 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("demo")


def demo_data(root: Path, task_name: str) -> Path:
    data_dir = root / task_name
    if not data_dir.exists():
        load_task(task_reference(task_name)).make_demo_data(data_dir, seed=0)
    return data_dir


def run_trial_in_process(plan: TrialPlan, checkpoints: Path, resume_from: Path | None = None):
    """The trial's reported epochs, from scratch or from the checkpoint in `resume_from`; each
    epoch's checkpoint is kept under `checkpoints`."""
    results = []

    def keep(result, directory):
        results.append({key: value for key, value in result.items() if key.startswith(COMPARED)})
        shutil.copytree(directory, checkpoints / f"epoch-{result['epoch']}")

    checkpoint = None if resume_from is None else tune.Checkpoint.from_directory(str(resume_from))
    train_trial({}, plan, checkpoint, keep)
    return results


@pytest.mark.parametrize("task_name", builtin_task_names())
def test_a_trial_resumed_from_its_checkpoint_reports_the_epochs_it_would_have(
        task_name, demo_root, tmp_path):
    task = load_task(task_reference(task_name))
    plan = TrialPlan(task_reference(task_name), str(demo_data(demo_root, task_name)), EPOCHS,
                     task.metric, task.mode, HealthConfig())
    uninterrupted = run_trial_in_process(plan, tmp_path / "uninterrupted")
    assert len(uninterrupted) == EPOCHS
    torch.manual_seed(12345)  # whatever this process drew since, the checkpoint decides
    np.random.seed(12345)
    random.seed(12345)
    resumed = run_trial_in_process(plan, tmp_path / "resumed",
                                   resume_from=tmp_path / "uninterrupted" / "epoch-1")
    assert resumed == uninterrupted[1:]


@pytest.mark.parametrize("task_name", builtin_task_names())
def test_each_tasks_batch_order_is_a_function_of_the_epoch(task_name, demo_root):
    """The second pass of one build equals the pass of another build told it is epoch 1."""
    task = load_task(task_reference(task_name))
    config = task.config_model()
    data_dir = demo_data(demo_root, task_name)

    def first_batch(setup):
        return [tensor.clone() if isinstance(tensor, torch.Tensor) else tensor
                for tensor in next(iter(setup.train_batches))]

    seed_everything(config.seed)
    continuing = task.build(config, data_dir, torch.device("cpu"))
    epoch_0 = first_batch(continuing)
    epoch_1 = first_batch(continuing)
    seed_everything(config.seed)
    resumed = task.build(config, data_dir, torch.device("cpu"))
    set_epoch(resumed.train_batches, 1)
    assert all(torch.equal(a, b) for a, b in zip(first_batch(resumed), epoch_1))
    assert not all(torch.equal(a, b) for a, b in zip(epoch_0, epoch_1))  # the order does change


def test_the_generators_state_round_trips_through_a_checkpoint(tmp_path):
    seed_everything(3)
    saved = rng_state.capture()
    torch.save(saved, tmp_path / "state.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    seed_everything(4)
    rng_state.restore(torch.load(tmp_path / "state.pt", weights_only=True))
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(drawn[0], expected[0]) and np.array_equal(drawn[1], expected[1])
    assert drawn[2] == expected[2]
