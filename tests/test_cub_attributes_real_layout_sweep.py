"""Real CLI sweeps of cub_attributes on CUB-200-2011 as its tarball unpacks (real metadata
excerpts, generated labels, placeholder images): local Ray, sqlite MLflow. Slow (about a minute
each). The search space's grace period is 2 epochs, so 2 is the shortest budget."""

import pytest

from tests.conftest import orchestrate, place_demo_encoders
from tests.cub_layouts import tarball

DATA_LEAK_TAG = "orchestrate.data_leak"


def trial_runs(workdir):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cub_attributes")
    return client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")


@pytest.mark.slow
def test_one_trial_sweep_runs_on_the_unpacked_tarball(workdir):
    data_dir = place_demo_encoders(tarball(workdir / "CUB_200_2011_download"))  # the space's weights
    sweep = orchestrate("sweep", "--figures-of-best", "0", "--task", "cub_attributes", "--data-dir", str(data_dir), "--trials", "1",
                        "--max-epochs", "2", "--name", "tarball", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert ("[cub_attributes] data: CUB-200-2011, unpacked tarball (CUB_200_2011/ one level down); "
            "train 66, val 24, test 88 images") in sweep.stdout
    (trial,) = trial_runs(workdir)
    assert trial.data.tags["orchestrate.status"] != "failed", trial.data.tags.get("orchestrate.reason")
    assert DATA_LEAK_TAG not in trial.data.tags


@pytest.mark.slow
def test_allow_data_leak_lets_the_sweep_run_and_tags_every_run(workdir):
    data_dir = place_demo_encoders(tarball(workdir / "leaky", class_level=True))
    sweep = orchestrate("sweep", "--figures-of-best", "0", "--task", "cub_attributes", "--data-dir", str(data_dir), "--trials", "1",
                        "--max-epochs", "2", "--name", "leaky", "--allow-data-leak", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "warning: label leak allowed by --allow-data-leak" in sweep.stdout
    (trial,) = trial_runs(workdir)
    assert "a label leak" in trial.data.tags[DATA_LEAK_TAG]
