"""The demos' pretrained encoders: built once per machine in the cache (also when several
processes ask at once), copied beside the demo data, loadable as real local weights are
(`torch.load(weights_only=True)`, `from_pretrained(local_files_only=True)`), nothing downloaded.

The cache mechanics run on tiny recipes in a private cache; one test uses the real recipes in
the machine's cache, as the demos do, so the whole suite pretrains at most once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from tasks.common import demo_encoders
from tasks.common.demo_encoders import (
    IMAGE_ENCODER_FILE,
    TEXT_ENCODER_DIR,
    ImageRecipe,
    place_image_encoder,
    place_text_encoder,
)
from tasks.common.image_encoders import SmallCNN, build_image_encoder
from tasks.common.mlm_pretraining import MaskedLmRecipe
from tasks.common.pretext_shapes import COLOURS, SHAPES, pretext_pool
from tasks.common.pretrained_cache import COMPLETE_MARKER, cached_build, recipe_key
from tasks.common.text_encoders import TextEncoder, load_local_text_model
from tasks.common.text_tokenizer import load_local_tokenizer, tokenize_captions
from tasks.retrieval.demo import pretraining_captions

TINY_IMAGE = ImageRecipe(pool_size=64, epochs=1, batch_size=32)
TINY_TEXT = MaskedLmRecipe(hidden_size=16, layers=2, heads=2, epochs=1, batch_size=16)
TINY_CORPUS = pretraining_captions(60)


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ORCHESTRATE_CACHE_DIR", str(cache))
    return cache


def counting_build(calls: list[int], pause: float = 0.0):
    def build(directory: Path) -> None:
        calls.append(1)
        time.sleep(pause)
        (directory / "weights.bin").write_bytes(b"weights")
    return build


def test_cached_build_builds_once_then_reuses(private_cache):
    calls: list[int] = []
    first, built = cached_build("demo_encoders", "image-abc", counting_build(calls))
    again, built_again = cached_build("demo_encoders", "image-abc", counting_build(calls))
    assert (built, built_again) == (True, False) and calls == [1]
    assert first == again == private_cache / "demo_encoders" / "image-abc"
    assert (first / "weights.bin").read_bytes() == b"weights" and (first / COMPLETE_MARKER).is_file()


def test_builders_asking_at_once_build_once_and_all_get_the_complete_copy(private_cache):
    calls: list[int] = []
    results: list[tuple[Path, bool]] = []
    barrier = threading.Barrier(3)

    def ask() -> None:
        barrier.wait()
        results.append(cached_build("demo_encoders", "text-abc", counting_build(calls, pause=0.3)))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert sorted(built for _, built in results) == [False, False, True]
    assert all((path / "weights.bin").is_file() for path, _ in results)


def test_a_killed_build_left_half_written_is_built_again(private_cache):
    leftover = private_cache / "demo_encoders" / "image-abc"
    leftover.mkdir(parents=True)
    (leftover / "weights.bin").write_bytes(b"half")  # no completion marker
    calls: list[int] = []
    path, built = cached_build("demo_encoders", "image-abc", counting_build(calls))
    assert built and calls == [1] and (path / "weights.bin").read_bytes() == b"weights"


def test_an_unwritable_cache_still_builds_into_a_temporary_directory(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the cache would go")
    monkeypatch.setenv("ORCHESTRATE_CACHE_DIR", str(blocker))
    calls: list[int] = []
    path, built = cached_build("demo_encoders", "image-abc", counting_build(calls))
    assert built and (path / "weights.bin").is_file() and not path.is_relative_to(blocker)


def test_the_cache_key_names_the_whole_recipe():
    assert recipe_key("image", {"epochs": 4, "seed": 0}) == recipe_key("image", {"seed": 0, "epochs": 4})
    assert recipe_key("image", {"epochs": 4}) != recipe_key("image", {"epochs": 5})


def test_the_pretext_pool_is_deterministic_and_labelled():
    images, labels = pretext_pool(16, seed=0)
    again, labels_again = pretext_pool(16, seed=0)
    other, _ = pretext_pool(16, seed=1)
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert all(torch.equal(labels[k], labels_again[k]) for k in labels)
    assert labels["shape"].max() < len(SHAPES) and labels["colour"].max() < len(COLOURS)


def test_image_encoder_is_pretrained_once_and_loads_weights_only_into_the_small_cnn(private_cache, tmp_path):
    lines: list[str] = []
    placed = place_image_encoder(tmp_path / "data", TINY_IMAGE, progress=lines.append)
    assert placed == tmp_path / "data" / IMAGE_ENCODER_FILE
    assert any("epoch 1/1" in line for line in lines)  # progress: a line per stage and epoch
    state = torch.load(placed, map_location="cpu", weights_only=True)
    assert state.keys() == SmallCNN().state_dict().keys()
    encoder = build_image_encoder("small_cnn", placed)
    assert torch.equal(encoder.state_dict()["blocks.0.0.weight"], state["blocks.0.0.weight"])
    assert not torch.equal(state["blocks.0.0.weight"], SmallCNN().state_dict()["blocks.0.0.weight"])

    again: list[str] = []
    place_image_encoder(tmp_path / "other", TINY_IMAGE, progress=again.append)
    assert again == []  # from the cache: no pretraining
    assert (tmp_path / "other" / IMAGE_ENCODER_FILE).read_bytes() == placed.read_bytes()


def test_text_encoder_is_saved_as_a_local_bert_directory_that_loads_offline(private_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines: list[str] = []
    placed = place_text_encoder(tmp_path / "data", TINY_CORPUS, TINY_TEXT, progress=lines.append)
    assert placed == tmp_path / "data" / TEXT_ENCODER_DIR and any("epoch 1/1" in line for line in lines)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        path.name for path in placed.iterdir()}
    model = AutoModel.from_pretrained(placed, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(placed, local_files_only=True)
    assert type(model).__name__ == "BertModel" and model.config.num_hidden_layers == 2
    assert tokenizer.tokenize("a large red circle") == ["a", "large", "red", "circle"]
    # the task's own loaders read it too, and it encodes captions
    encoder = TextEncoder(load_local_text_model(placed), "mean")
    ids, mask = tokenize_captions(load_local_tokenizer(placed), TINY_CORPUS[:4], 24)
    assert encoder(ids, mask).shape == (4, 16)

    again: list[str] = []
    place_text_encoder(tmp_path / "other", TINY_CORPUS, TINY_TEXT, progress=again.append)
    assert again == []
    assert demo_encoders.text_encoder_dir(TINY_CORPUS, TINY_TEXT, progress=again.append).is_dir()
    assert again == []


def test_a_different_corpus_is_a_different_text_encoder(private_cache):
    first = demo_encoders.text_encoder_dir(TINY_CORPUS, TINY_TEXT, progress=lambda line: None)
    other = demo_encoders.text_encoder_dir(TINY_CORPUS[:-1], TINY_TEXT, progress=lambda line: None)
    assert first != other


def test_the_demo_encoders_are_made_once_per_machine_and_copied_beside_the_data(tmp_path, monkeypatch):
    """The real recipes, in the machine's cache: the first test session pretrains (a minute or
    two on 2 cores), every later demo, test and CI step copies."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    place_image_encoder(tmp_path / "one")
    place_text_encoder(tmp_path / "one", pretraining_captions())
    lines: list[str] = []
    image = place_image_encoder(tmp_path / "two", progress=lines.append)
    text = place_text_encoder(tmp_path / "two", pretraining_captions(), progress=lines.append)
    assert lines == []  # made once: the second data directory got copies
    assert image.read_bytes() == (tmp_path / "one" / IMAGE_ENCODER_FILE).read_bytes()
    assert build_image_encoder("small_cnn", image) is not None  # weights_only load, keys fit
    model = load_local_text_model(text)
    assert model.config.num_hidden_layers == MaskedLmRecipe().layers
    assert len(load_local_tokenizer(text)) == model.config.vocab_size
