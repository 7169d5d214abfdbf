"""Where a sweep's data and results live, and how every node of a cluster reads the data.

A location is a local directory (on a cluster it must exist on every node: a shared filesystem
or a `file_mounts` entry) or a URI of any filesystem pyarrow reads (s3://, gs://, abfs://,
file://, ...; options in a query string, e.g. `s3://bucket?endpoint_override=host:9000`).
A URI dataset is copied once per node into a node-local cache keyed by the URI and shared by
all the trials on that node.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CACHE_ENV = "ORCHESTRATE_DATA_CACHE"  # where a node keeps its copies of URI datasets
DEFAULT_CACHE = "~/.cache/orchestrate/data"


class LocationError(ValueError):
    """A storage or data location that cannot be used; the message is one line for a user."""


def is_uri(location: str) -> bool:
    return "://" in location


def join_location(base: str, *parts: str) -> str:
    """A location inside `base`: a path joined, or a URI with the parts before its query string.

    `s3://bucket/sweeps?endpoint_override=h:9000` + `a` -> `s3://bucket/sweeps/a?endpoint_override=h:9000`.
    """
    if not is_uri(base):
        return str(Path(base, *parts))
    head, separator, query = base.partition("?")
    return "/".join([head.rstrip("/"), *(part.strip("/") for part in parts)]) + separator + query


def open_uri(uri: str, what: str):
    """(pyarrow filesystem, path inside it) of a URI; LocationError (one line) if it is malformed.

    `what` names the flag the URI came from, for the message. Nothing is contacted here.
    """
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
    except OSError as error:  # e.g. S3 asks the bucket for its region when none is given
        raise LocationError(
            f"{what} {uri!r}: cannot reach it ({_first_line(error)}); check the bucket name, the "
            "credentials and the network, or give the region in the URI (?region=...)") from None
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a bad URI
        first = _first_line(error)
        raise LocationError(
            f"{what} {uri!r}: not a URI pyarrow can open ({first}); use s3://BUCKET/PATH, "
            "gs://BUCKET/PATH, file:///PATH or a local path"
        ) from None
    if not path.strip("/") and not isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        raise LocationError(f"{what} {uri!r}: names no bucket or path; use e.g. s3://BUCKET/PATH")
    return filesystem, path


def cache_root() -> Path:
    """This node's cache of URI datasets: $ORCHESTRATE_DATA_CACHE, else ~/.cache/orchestrate/data."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def cached_copy(uri: str, root: Path | None = None) -> Path:
    """The node-local copy of the directory at `uri`, fetched on first use and reused after.

    Concurrent callers on one node are safe: one fetches while the others wait on a file lock,
    and the copy appears under its final name only once complete (an atomic rename of a staging
    directory), so no caller ever reads a half-written copy. A failed fetch leaves nothing behind.
    Raises LocationError (one line) when the URI is malformed, not a directory, or empty.
    """
    root = root or cache_root()
    key = hashlib.sha256(uri.encode()).hexdigest()[:20]
    final = root / key
    if final.is_dir():
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock_file = open(root / f"{key}.lock", "w")
    except OSError as error:
        raise LocationError(f"cannot use the data cache {root} ({error.strerror}); "
                            f"set {CACHE_ENV} to a writable directory") from None
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if final.is_dir():  # fetched by another trial while this one waited
            return final
        _fetch(uri, root, final)
        (root / f"{key}.uri").write_text(uri + "\n")  # which URI this copy is, for a person
    return final


def _fetch(uri: str, root: Path, final: Path) -> None:
    import pyarrow.fs

    filesystem, path = open_uri(uri, "--data-dir")
    try:
        kind = filesystem.get_file_info(path).type
    except OSError as error:
        raise LocationError(f"--data-dir {uri}: cannot be read ({_first_line(error)})") from None
    if kind != pyarrow.fs.FileType.Directory:
        raise LocationError(f"--data-dir {uri}: no such directory; give the dataset's directory")
    staging = Path(tempfile.mkdtemp(prefix=f"{final.name}.partial-", dir=root))
    try:
        pyarrow.fs.copy_files(path, str(staging), source_filesystem=filesystem,
                              destination_filesystem=pyarrow.fs.LocalFileSystem())
        if not any(staging.iterdir()):
            raise LocationError(f"--data-dir {uri}: the directory is empty; put the dataset there")
        os.rename(staging, final)
    except OSError as error:
        raise LocationError(f"--data-dir {uri}: fetching it failed ({_first_line(error)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def local_data_dir(location: str) -> Path:
    """The directory to read a dataset from on this node: the path itself, or the cached copy."""
    return cached_copy(location) if is_uri(location) else Path(location)


def publish_directory(local_dir: Path, destination: str) -> None:
    """Copy a local directory to a location every node reaches (a URI or a shared path)."""
    import pyarrow.fs

    if is_uri(destination):
        filesystem, path = open_uri(destination, "--storage")
    else:
        filesystem, path = pyarrow.fs.LocalFileSystem(), str(Path(destination).resolve())
    try:
        filesystem.create_dir(path, recursive=True)
        pyarrow.fs.copy_files(str(local_dir.resolve()), path,
                              source_filesystem=pyarrow.fs.LocalFileSystem(),
                              destination_filesystem=filesystem)
    except OSError as error:
        raise LocationError(
            f"cannot copy the demo data to {destination} ({_first_line(error)}); "
            "check --storage and this node's rights to write there") from None


def unreadable_reason(location: str) -> str | None:
    """Why this node cannot read the dataset at `location`, or None when it can.

    A URI is fetched into this node's cache (so the trials placed here reuse that copy).
    """
    try:
        directory = local_data_dir(location)
    except LocationError as error:
        return str(error)
    if not directory.is_dir():
        return "no such directory"
    try:
        if not any(directory.iterdir()):
            return "the directory is empty"
    except OSError as error:
        return f"cannot list it ({error.strerror})"
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
