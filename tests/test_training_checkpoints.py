"""Checkpoint helpers of the generic loop: the ended-trial marker a resumed sweep relies on."""

from ray import tune

from orchestrator.training import has_ended, mark_ended


def test_a_trial_marked_ended_is_recognised_from_any_of_its_checkpoints(tmp_path):
    trial_dir = tmp_path / "trial_abc"
    older, latest = trial_dir / "checkpoint_000000", trial_dir / "checkpoint_000003"
    older.mkdir(parents=True)
    latest.mkdir()
    assert not has_ended(tune.Checkpoint.from_directory(str(older)))
    mark_ended(tune.Checkpoint.from_directory(str(latest)))
    # Tune may restore from an older checkpoint than the last one: the marker still shows
    assert has_ended(tune.Checkpoint.from_directory(str(older)))
    assert not has_ended(tune.Checkpoint.from_directory(str(tmp_path / "trial_other")))
