"""A real CLI sweep of the retrieval task on Flickr8k as its original zips unpack (real annotation
excerpts, placeholder images): local Ray, sqlite MLflow. Slow (about a minute)."""

import pytest

from tests.conftest import orchestrate, place_demo_encoders
from tests.flickr_layouts import original_zips


@pytest.mark.slow
def test_one_trial_sweep_runs_on_the_original_zip_layout(workdir):
    data_dir = place_demo_encoders(original_zips(workdir / "Flickr8k"), text=True)  # the space's weights
    sweep = orchestrate("sweep", "--figures-of-best", "0", "--task", "retrieval", "--data-dir", str(data_dir), "--trials", "1",
                        "--max-epochs", "1", "--name", "real-layout", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert ("[retrieval] data: Flickr8k, original zips (Flicker8k_Dataset/ + Flickr8k_text/); "
            "train 48, val 12, test 12 images") in sweep.stdout

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    (trial,) = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert trial.data.tags["orchestrate.status"] != "failed", trial.data.tags.get("orchestrate.reason")
    assert client.get_metric_history(trial.info.run_id, "val/mean_r1")
