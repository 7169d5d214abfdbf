"""Data and storage locations: URIs with query strings, the node-local cache of URI datasets."""

import multiprocessing
from pathlib import Path

import pytest

from orchestrator.data_access import (
    LocationError, cached_copy, join_location, local_data_dir, open_uri, publish_directory,
    unreadable_reason)
from orchestrator.sweep_input import SweepOptions, sweep_storage
from orchestrator.user_errors import UsageError


def make_dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "captions.txt").write_text("image,caption\na.jpg,a dog\n")
    (root / "images" / "a.jpg").write_bytes(b"\xff\xd8" + bytes(range(256)) * 40)
    return root


def test_the_sweep_name_goes_before_a_uri_query_string():
    options = SweepOptions(name="s1", storage="s3://bucket/sweeps?endpoint_override=127.0.0.1:9000&scheme=http")
    assert sweep_storage(options) == "s3://bucket/sweeps/s1?endpoint_override=127.0.0.1:9000&scheme=http"
    assert join_location("s3://bucket?region=eu-west-1", "s1", "retrieval") == \
        "s3://bucket/s1/retrieval?region=eu-west-1"
    assert join_location("gs://bucket/a/", "b") == "gs://bucket/a/b"
    filesystem, path = open_uri(sweep_storage(options), "--storage")
    assert path == "bucket/sweeps/s1"  # pyarrow reads the options, not part of the path
    assert type(filesystem).__name__ == "S3FileSystem"


def test_a_local_storage_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sweep_storage(SweepOptions(name="s1", storage="results")) == str(tmp_path / "results" / "s1")


@pytest.mark.parametrize("storage, fragment", [
    ("nosuchfs://bucket/x", "not a URI pyarrow can open"),
    ("s3://", "names no bucket or path"),
])
def test_a_bad_storage_uri_is_one_line(storage, fragment):
    with pytest.raises(UsageError) as raised:
        sweep_storage(SweepOptions(name="s1", storage=storage))
    message = str(raised.value)
    assert fragment in message and storage in message and "\n" not in message


def test_a_uri_dataset_is_fetched_once_into_the_cache_and_reused(tmp_path):
    source = make_dataset(tmp_path / "bucket" / "retrieval")
    uri = f"file://{source}"
    cache = tmp_path / "cache"
    copy = cached_copy(uri, cache)
    assert copy.parent == cache
    assert (copy / "captions.txt").read_text() == (source / "captions.txt").read_text()
    assert (copy / "images" / "a.jpg").read_bytes() == (source / "images" / "a.jpg").read_bytes()
    # a second call reuses the copy without reading the source again
    (source / "captions.txt").unlink()
    assert cached_copy(uri, cache) == copy and (copy / "captions.txt").is_file()
    # only the finished copy, its lock and its name are left: no staging directory
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [copy.name, f"{copy.name}.lock", f"{copy.name}.uri"])


def test_a_local_path_is_read_in_place(tmp_path):
    source = make_dataset(tmp_path / "data")
    assert local_data_dir(str(source)) == source


def _fetch_and_read(uri: str, cache: str, queue) -> None:
    copy = cached_copy(uri, Path(cache))
    files = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file())
    queue.put((str(copy), files, (copy / "images" / "a.jpg").stat().st_size))


def test_concurrent_trials_on_one_node_fetch_once_and_never_see_a_half_written_copy(tmp_path):
    source = make_dataset(tmp_path / "bucket" / "retrieval")
    for index in range(200):  # enough files that an unguarded reader would catch a partial copy
        (source / "images" / f"{index}.jpg").write_bytes(bytes(range(256)) * 20)
    cache = tmp_path / "cache"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    readers = [context.Process(target=_fetch_and_read, args=(f"file://{source}", str(cache), queue))
               for _ in range(4)]
    for reader in readers:
        reader.start()
    seen = [queue.get(timeout=120) for _ in readers]
    for reader in readers:
        reader.join(timeout=60)
        assert reader.exitcode == 0
    expected = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert {copy for copy, _, _ in seen} == {seen[0][0]}  # one copy, shared by all
    assert all(files == expected and size == 256 * 40 + 2 for _, files, size in seen)
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1  # fetched once, no leftovers


def test_a_missing_or_empty_uri_dataset_is_one_line_and_leaves_no_copy(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(LocationError, match="no such directory"):
        cached_copy(f"file://{tmp_path}/absent", cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LocationError, match="the directory is empty"):
        cached_copy(f"file://{tmp_path}/empty", cache)
    assert not [p for p in cache.iterdir() if p.is_dir()]


def test_an_unwritable_cache_is_named(tmp_path):
    source = make_dataset(tmp_path / "data")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(LocationError, match="ORCHESTRATE_DATA_CACHE"):
        cached_copy(f"file://{source}", blocker / "cache")


def test_published_demo_data_reads_back_through_a_uri(tmp_path):
    source = make_dataset(tmp_path / "demo")
    destination = f"file://{tmp_path}/storage/sweep/demo-data/retrieval?use_mmap=false"
    publish_directory(source, destination)
    copy = cached_copy(destination, tmp_path / "cache")
    assert (copy / "captions.txt").read_text() == (source / "captions.txt").read_text()
    assert (tmp_path / "storage" / "sweep" / "demo-data" / "retrieval" / "images" / "a.jpg").is_file()


def test_unreadable_reason_names_what_is_wrong(tmp_path):
    assert unreadable_reason(str(make_dataset(tmp_path / "data"))) is None
    assert unreadable_reason(str(tmp_path / "absent")) == "no such directory"
    (tmp_path / "empty").mkdir()
    assert unreadable_reason(str(tmp_path / "empty")) == "the directory is empty"


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_storage_and_data_uris_through_the_cli_are_one_line_and_write_nothing(tmp_path):
    from tests.conftest import orchestrate

    result = orchestrate("sweep", "--task", "retrieval", "--storage", "nosuchfs://bucket/sweeps",
                         cwd=tmp_path)
    assert_one_line_error(result, "--storage 'nosuchfs://bucket/sweeps'", "not a URI pyarrow can open")
    result = orchestrate("sweep", "--task", "retrieval", "--data-dir", f"file://{tmp_path}/absent",
                         cwd=tmp_path)
    assert_one_line_error(result, f"--data-dir file://{tmp_path}/absent: no such directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
