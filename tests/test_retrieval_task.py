"""The retrieval task end to end on small real data: layout errors, build, train, evaluate, probe."""

from __future__ import annotations

import csv
import math
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch
from PIL import Image

from tasks.base import DataError, Task
from tasks.retrieval import RetrievalConfig, task
from tasks.retrieval import data as flickr
from tasks.retrieval.caption_files import (
    KAGGLE_CAPTIONS_FILE,
    TOKEN_CAPTIONS_FILE,
    parse_kaggle_captions,
    parse_token_captions,
)
from tasks.retrieval.split_sources import SPLIT_FILES

SMALL_CONFIG = dict(batch_size=32, embed_dim=16, text_vocab_size=200)
IMAGES_DIR = "Images"


def write_tiny_flickr(root: Path, images_per_split: int = 2) -> dict[str, list[str]]:
    """Images/ + captions.txt + the three split files; returns image name -> captions."""
    (root / IMAGES_DIR).mkdir(parents=True)
    captions: dict[str, list[str]] = {}
    for split_number, (split, split_file) in enumerate(SPLIT_FILES.items()):
        names = []
        for index in range(images_per_split):
            name = f"{split_number}{index}_photo.jpg"
            Image.new("RGB", (40, 30), (10 * index, 50, 200)).save(root / IMAGES_DIR / name)
            captions[name] = [f"a photo, number {index}, caption {k} of {split}" for k in range(5)]
            names.append(name)
        (root / split_file).write_text("\n".join(names) + "\n")
    write_kaggle_captions(root / KAGGLE_CAPTIONS_FILE, captions)
    return captions


def write_kaggle_captions(path: Path, captions: dict[str, list[str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["image", "caption"])
        writer.writerows((name, caption) for name, texts in captions.items() for caption in texts)


def write_token_captions(path: Path, captions: dict[str, list[str]]) -> None:
    path.write_text(
        "".join(
            f"{name}#{k}\t{caption}\n"
            for name, texts in captions.items()
            for k, caption in enumerate(texts)
        )
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("retrieval_demo")
    task.make_demo_data(root, seed=0)
    return root


@pytest.fixture(scope="module")
def demo_setup(demo_dir):
    return task.build(RetrievalConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))


def assert_within_bounds(prefix: str, values: dict[str, float]) -> None:
    for key, value in values.items():
        full_key = f"{prefix}/{key}"
        bounds = [
            task.value_bounds[pattern]
            for pattern in task.value_bounds
            if fnmatch(full_key, pattern)
        ]
        assert bounds, f"{full_key} has no declared bounds"
        assert math.isfinite(value), full_key
        assert all(low <= value <= high for low, high in bounds), (full_key, value, bounds)


def only_problem(root: Path) -> str:
    report = task.check_data(root)
    assert len(report.problems) == 1, report.problems
    assert "\n" not in report.problems[0]
    return report.problems[0]


# --- layout and data errors -------------------------------------------------------------------


def test_both_caption_formats_parse_to_the_same_captions(tmp_path):
    captions = write_tiny_flickr(tmp_path)
    token_file = tmp_path / TOKEN_CAPTIONS_FILE
    write_token_captions(token_file, captions)
    from_kaggle = parse_kaggle_captions(tmp_path / KAGGLE_CAPTIONS_FILE)
    assert from_kaggle.captions == captions and not from_kaggle.problems  # commas survive the csv
    assert parse_token_captions(token_file).captions == from_kaggle.captions
    (tmp_path / KAGGLE_CAPTIONS_FILE).unlink()
    report = task.check_data(tmp_path)
    assert not report.problems and "captions: Flickr8k.token.txt" in report.sources


def test_missing_split_file_is_named(tmp_path):
    write_tiny_flickr(tmp_path)
    (tmp_path / "Flickr_8k.devImages.txt").unlink()
    assert only_problem(tmp_path).startswith("Flickr_8k.devImages.txt: missing")


def test_wrong_caption_count_names_the_image(tmp_path):
    captions = write_tiny_flickr(tmp_path)
    captions["01_photo.jpg"] = captions["01_photo.jpg"][:4]
    write_kaggle_captions(tmp_path / KAGGLE_CAPTIONS_FILE, captions)
    assert re.search(r"01_photo\.jpg: has 4 captions, needs exactly 5", only_problem(tmp_path))


def test_split_naming_a_missing_image_is_reported_with_its_line(tmp_path):
    write_tiny_flickr(tmp_path)
    (tmp_path / IMAGES_DIR / "20_photo.jpg").unlink()
    assert re.search(r"Flickr_8k\.testImages\.txt:1: names 20_photo\.jpg", only_problem(tmp_path))


def test_unreadable_image_is_named_by_check_data(tmp_path):
    write_tiny_flickr(tmp_path)
    (tmp_path / IMAGES_DIR / "10_photo.jpg").write_bytes(b"not an image at all")
    assert re.search(r"10_photo\.jpg: unreadable image", only_problem(tmp_path))


def test_truncated_image_is_named_when_decoded(tmp_path):
    write_tiny_flickr(tmp_path)
    path = tmp_path / IMAGES_DIR / "00_photo.jpg"
    path.write_bytes(path.read_bytes()[:200])  # header intact, pixels cut off
    index = flickr.read_index(tmp_path)
    with pytest.raises(DataError, match=r"00_photo\.jpg: cannot decode image"):
        flickr.load_split(index, "train", 16)


@pytest.mark.parametrize("make_layout", ["empty", "no_captions", "no_images_dir"])
def test_unusable_directory_is_one_problem_naming_it(tmp_path, make_layout):
    if make_layout != "empty":
        write_tiny_flickr(tmp_path)
    if make_layout == "no_captions":
        (tmp_path / KAGGLE_CAPTIONS_FILE).unlink()
    if make_layout == "no_images_dir":
        for image in (tmp_path / IMAGES_DIR).iterdir():
            image.unlink()
        (tmp_path / IMAGES_DIR).rmdir()
    assert str(tmp_path) in only_problem(tmp_path)


def test_build_refuses_data_with_problems_in_one_line(tmp_path):
    write_tiny_flickr(tmp_path)
    (tmp_path / IMAGES_DIR / "20_photo.jpg").unlink()
    (tmp_path / IMAGES_DIR / "21_photo.jpg").unlink()
    with pytest.raises(DataError, match=r"names 20_photo\.jpg.*\(and 1 more problem\)") as error:
        task.build(RetrievalConfig(**SMALL_CONFIG), tmp_path, "cpu")
    assert "\n" not in str(error.value)


# --- the task on demo data --------------------------------------------------------------------


def test_task_satisfies_the_interface():
    assert isinstance(task, Task)
    assert (task.name, task.metric, task.mode) == ("retrieval", "val/mean_r1", "max")
    with pytest.raises(ValueError):
        RetrievalConfig(hard_negative_ratio=1.5)
    with pytest.raises(ValueError):
        RetrievalConfig(temprature=0.1)


def test_demo_data_is_kaggle_layout_deterministic_and_passes_check(tmp_path, demo_dir):
    report = task.check_data(demo_dir)
    assert report.layout == "Flickr8k, Kaggle download (Images/ + captions.txt)"
    assert report.splits == {"train": 600, "val": 100, "test": 100} and not report.problems
    task.make_demo_data(tmp_path, seed=0)
    assert (tmp_path / "captions.txt").read_bytes() == (demo_dir / "captions.txt").read_bytes()
    assert (tmp_path / "Images" / "shape_00007.png").read_bytes() == (
        demo_dir / "Images" / "shape_00007.png"
    ).read_bytes()


def test_epoch_visits_each_training_image_once_never_twice_in_a_batch(demo_setup):
    train_images = demo_setup.extras["splits"].get("train")
    seen = []
    for images, input_ids, attention_mask in demo_setup.train_batches:
        assert images.dtype == torch.uint8 and input_ids.shape == attention_mask.shape
        batch_keys = {bytes(image.numpy()) for image in images}
        assert len(batch_keys) == len(images)
        seen.extend(batch_keys)
    assert len(seen) == len(set(seen)) == 600 - 600 % 32  # 18 full batches, remainder dropped
    assert train_images is None  # training data lives in the loader, not the eval cache


def test_two_training_steps_give_finite_loss_and_gradients_in_both_encoders(demo_setup):
    model = demo_setup.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    image_stem = model.image_encoder.blocks_top_first()[-1]
    text_embeddings = model.text_encoder.blocks_top_first()[-1]
    batches = iter(demo_setup.train_batches)
    for _ in range(2):
        optimizer.zero_grad()
        losses = task.training_step(demo_setup, next(batches))
        assert set(losses) == {"loss", "infonce", "hard_negative_hinge"}
        assert torch.isfinite(losses["loss"]) and losses["loss"].item() > 0
        losses["loss"].backward()
        for block in (image_stem, text_embeddings, model.image_head, model.text_head):
            gradients = [p.grad for p in block.parameters() if p.grad is not None]
            assert gradients and any(g.abs().sum() > 0 for g in gradients)
        optimizer.step()


def test_encoders_from_random_init_are_not_handed_over_for_freezing(demo_setup):
    assert demo_setup.unfreezable_blocks == {}


def test_unfreezable_blocks_are_disjoint_submodules_top_first(demo_setup):
    model = demo_setup.model
    blocks = model.unfreezable_blocks(image_pretrained=True, text_pretrained=True)
    assert blocks["image"][0] is model.image_encoder.blocks[-1]
    assert blocks["text"][0] is model.text_encoder.transformer.encoder.layer[-1]
    submodules = {id(module) for module in model.modules()}
    params = [
        id(p)
        for blocks in blocks.values()
        for block in blocks
        for p in block.parameters()
    ]
    assert all(
        id(block) in submodules
        for blocks in blocks.values()
        for block in blocks
    )
    assert len(params) == len(set(params))
    head_params = {id(p) for p in model.image_head.parameters()} | {
        id(p) for p in model.text_head.parameters()
    }
    assert not head_params & set(params)


def test_evaluate_and_probe_report_every_key_within_bounds(demo_setup):
    for split in ("val", "test"):
        metrics = task.evaluate(demo_setup, split)
        assert {"i2t_r1", "t2i_r10", "mean_r1", "rsum", "mrr", "chance/mean_r1"} <= set(metrics)
        assert metrics["chance/mean_r1"] == pytest.approx(1 / 100)
        assert metrics["samples"] == 100  # images
        assert_within_bounds(split, metrics)
    probes = task.probe(demo_setup)
    assert {
        "image/offdiag_cosine",
        "text/dim_std",
        "image/dim",
        "image_shuffled/mean_r1",
        "text_shuffled/mean_r1",
        "positive_similarity",
        "negative_similarity",
    } <= set(probes)
    assert probes["image/dim"] == SMALL_CONFIG["embed_dim"]
    assert_within_bounds("probe", probes)


def test_evaluate_leaves_the_model_in_training_mode(demo_setup):
    demo_setup.model.train()
    task.evaluate(demo_setup, "val")
    assert demo_setup.model.training and demo_setup.model.image_head.training


def test_hard_negative_term_is_reported_when_switched_on(demo_dir):
    config = RetrievalConfig(
        **SMALL_CONFIG, hard_negative_ratio=0.25, hard_negative_weight=1.0, hard_negative_margin=2.0
    )
    setup = task.build(config, demo_dir, torch.device("cpu"))
    losses = task.training_step(setup, next(iter(setup.train_batches)))
    assert losses["hard_negative_hinge"].item() > 0
    assert losses["loss"].item() == pytest.approx(
        losses["infonce"].item() + losses["hard_negative_hinge"].item(), rel=1e-5
    )


def test_build_is_deterministic_in_the_config(demo_dir, demo_setup):
    config = RetrievalConfig(**SMALL_CONFIG, pooling="mean_max")
    first = task.build(config, demo_dir, torch.device("cpu"))
    second = task.build(config, demo_dir, torch.device("cpu"))
    assert first.extras["tokenizer"].get_vocab() == second.extras["tokenizer"].get_vocab()
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    first_batch, second_batch = next(iter(first.train_batches)), next(iter(second.train_batches))
    assert all(torch.equal(a, b) for a, b in zip(first_batch, second_batch))


# --- local weights, never downloaded ----------------------------------------------------------


def test_local_image_weights_are_loaded_and_a_missing_file_is_one_line(tmp_path, demo_dir):
    from tasks.common.image_encoders import SmallCNN, build_image_encoder

    saved = SmallCNN()
    torch.nn.init.constant_(saved.blocks[0][0].weight, 0.5)
    torch.save(saved.state_dict(), tmp_path / "small_cnn.pt")
    loaded = build_image_encoder("small_cnn", tmp_path / "small_cnn.pt")
    assert torch.equal(loaded.blocks[0][0].weight, saved.blocks[0][0].weight)
    with pytest.raises(ValueError, match="does not exist") as error:
        task.build(
            RetrievalConfig(**SMALL_CONFIG, image_weights=str(tmp_path / "absent.pt")),
            demo_dir,
            "cpu",
        )
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="does not fit resnet18"):
        build_image_encoder("resnet18", tmp_path / "small_cnn.pt")


def test_resnet_blocks_are_listed_top_first():
    from tasks.common.image_encoders import build_image_encoder

    encoder = build_image_encoder("resnet18")
    assert encoder.blocks_top_first() == [
        encoder.layer4,
        encoder.layer3,
        encoder.layer2,
        encoder.layer1,
        encoder.stem,
    ]
    assert encoder(torch.zeros(2, 3, 32, 32)).shape == (2, encoder.feature_dim) == (2, 512)


def test_local_text_encoder_directory_trains(tmp_path, demo_dir):
    from transformers import BertConfig, BertModel

    from tasks.common.text_tokenizer import train_wordpiece_tokenizer

    model_dir = tmp_path / "tiny_bert"
    tokenizer = train_wordpiece_tokenizer(["a red circle on the left", "a big blue box"], 120)
    tokenizer.save_pretrained(model_dir)
    BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(model_dir)
    setup = task.build(
        RetrievalConfig(**SMALL_CONFIG, text_encoder=str(model_dir), pooling="max"), demo_dir, "cpu"
    )
    assert len(setup.unfreezable_blocks["text"]) == 2  # one layer + embeddings
    losses = task.training_step(setup, next(iter(setup.train_batches)))
    assert torch.isfinite(losses["loss"])


def test_max_samples_per_split_loads_the_first_images_of_each_split(demo_dir, demo_setup):
    setup = task.build(RetrievalConfig(**SMALL_CONFIG, max_samples_per_split=40), demo_dir, "cpu")
    train = setup.train_batches.dataset
    assert len(train.images) == 40 and len(train) == 40 * 5
    assert torch.equal(train.images, flickr.load_split(setup.extras["index"], "train", 32).images[:40])
    for split in ("val", "test"):
        metrics = task.evaluate(setup, split)
        assert metrics["samples"] == 40 and metrics["chance/mean_r1"] == pytest.approx(1 / 40)
        cut, full = setup.extras["splits"][split], task._split(demo_setup, split)
        assert torch.equal(cut.images, full.images[:40])
