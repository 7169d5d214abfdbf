"""Trials sampled after a resume are kept in the experiment directory being resumed, wherever
the experiment was when Tune pickled its search generator (no Ray workers; real Tune objects).
tests/test_resume.py checks the same through a real sweep that is killed, moved and resumed."""

import shutil

import pytest

from ray import cloudpickle, tune
from ray.tune.experiment import Experiment
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from orchestrator.moved_experiment import ResumableSearchGenerator, restoring_experiment


def train(config):
    tune.report({"score": config["x"]})


def generator() -> ResumableSearchGenerator:
    searcher = OptunaSearch(space={"x": tune.uniform(0, 1)}, metric="score", mode="max")
    return ResumableSearchGenerator(ConcurrencyLimiter(searcher, max_concurrent=1))


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_a_trial_sampled_after_resuming_a_moved_experiment_is_stored_where_it_is_now(tmp_path, as_uri):
    original, moved = tmp_path / "original", tmp_path / "moved"
    location = (lambda path: f"file://{path}") if as_uri else str
    first = generator()
    at_start = cloudpickle.dumps(first)  # tuner.pkl: the generator as the sweep began
    first.add_configurations(Experiment("task", train, storage_path=location(original), num_samples=3))
    assert first.next_trial().storage.storage_fs_path == str(original)
    state = cloudpickle.dumps(first.get_state())  # Tune's saved search generator state
    shutil.move(original, moved)

    with restoring_experiment(location(moved / "task")):
        resumed = cloudpickle.loads(at_start)
    resumed.set_state(cloudpickle.loads(state))
    trial = resumed.next_trial()
    assert (trial.storage.storage_fs_path, trial.storage.experiment_dir_name) == (str(moved), "task")
    assert not original.exists()
