"""Weight paths in a config: a relative one is read from the data directory, an absolute one is
used as given, and a relative one naming nothing there is one line saying where it looked."""

from pathlib import Path

import pytest
import torch

from tasks.common.image_encoders import SmallCNN
from tasks.common.local_weights import resolve_weights_path, with_resolved_weights
from tasks.multiview.config import MultiviewConfig
from tasks.multiview.layouts import mvcnn


def test_a_relative_path_is_read_from_the_data_directory(tmp_path):
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "image_encoder.pt").write_bytes(b"")
    resolved = resolve_weights_path("image_weights", "pretrained/image_encoder.pt", tmp_path)
    assert resolved == str(tmp_path.resolve() / "pretrained" / "image_encoder.pt")


def test_absolute_paths_and_unset_fields_are_kept(tmp_path):
    elsewhere = tmp_path / "weights" / "resnet50.pt"
    assert resolve_weights_path("image_weights", str(elsewhere), tmp_path / "data") == str(elsewhere)
    assert resolve_weights_path("image_weights", None, tmp_path) is None


def test_a_relative_path_missing_from_the_data_directory_says_where_it_looked(tmp_path):
    with pytest.raises(ValueError) as error:
        resolve_weights_path("text_encoder", "pretrained/text_encoder", tmp_path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path.resolve() / "pretrained" / "text_encoder") in message
    assert "read from the data directory" in message


def test_a_task_build_loads_weights_named_relative_to_its_data_directory(tmp_path):
    from tasks.multiview.model import build_view_encoder

    (tmp_path / "pretrained").mkdir()
    weights = SmallCNN().state_dict()
    torch.save(weights, tmp_path / "pretrained" / "image_encoder.pt")
    config = with_resolved_weights(
        MultiviewConfig(backbone_weights="pretrained/image_encoder.pt"), tmp_path, ("backbone_weights",))
    assert Path(config.backbone_weights).is_absolute()
    model = build_view_encoder(config)
    assert torch.equal(model.backbone.state_dict()["blocks.2.0.weight"], weights["blocks.2.0.weight"])


def test_the_mvcnn_reader_leaves_the_pretrained_folder_out_of_the_classes(tmp_path):
    for split, number in (("train", 1), ("test", 2)):
        folder = tmp_path / "chair" / split
        folder.mkdir(parents=True)
        (folder / f"chair_{number:04d}.obj.shaded_v001.png").write_bytes(b"")
    (tmp_path / "pretrained" / "text_encoder").mkdir(parents=True)
    scan = mvcnn.read(tmp_path)
    assert not scan.problems, scan.problems
    assert {item.class_name for objects in scan.objects.values() for item in objects} == {"chair"}
