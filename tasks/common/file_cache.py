"""Arrays derived from a large source file, computed once and kept in a cache file.

A task that parses a big annotation file (CUB's 3.7M-line image_attribute_labels.txt) once per
trial wastes seconds per trial; this keeps the parsed arrays in an uncompressed .npz under the
cache directory, keyed by the source's resolved path and checked against its size and
modification time (ns). A changed source, or a cache written by another format version, is a
miss. Writes go to a temporary file in the cache directory and are renamed into place, so
several trials starting at once never read a half-written cache (the last rename wins; all
write the same arrays). The cache is only an optimisation: a cache that cannot be read or
written is ignored.

Cache directory: $ORCHESTRATE_CACHE_DIR, else $XDG_CACHE_HOME/orchestrate, else ~/.cache/orchestrate.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CACHE_DIR_ENV = "ORCHESTRATE_CACHE_DIR"
STAMP_KEY = "__source_size_and_mtime_ns__"
FORMAT_KEY = "__format__"


def cache_root() -> Path:
    """The directory all derived-array caches live under."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "orchestrate"


def source_stamp(source: Path) -> np.ndarray:
    """(size in bytes, modification time in ns) of the source file; take it before parsing."""
    stat = Path(source).stat()
    return np.asarray([stat.st_size, stat.st_mtime_ns], dtype=np.int64)


def cache_path(source: Path, namespace: str) -> Path:
    """Where the cache of `source` lives: <cache root>/<namespace>/<name>.<path hash>.npz."""
    resolved = Path(source).resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:16]
    return cache_root() / namespace / f"{resolved.name}.{digest}.npz"


def load_cached(source: Path, namespace: str, format_version: str) -> dict[str, np.ndarray] | None:
    """The cached arrays of `source`, or None (no cache, stale, other format, unreadable)."""
    path = cache_path(source, namespace)
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored[FORMAT_KEY]) != format_version:
                return None
            if not np.array_equal(stored[STAMP_KEY], source_stamp(source)):
                return None
            return {key: stored[key] for key in stored.files if key not in (STAMP_KEY, FORMAT_KEY)}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def store_cached(
    source: Path, namespace: str, format_version: str, arrays: dict[str, np.ndarray], stamp: np.ndarray
) -> Path | None:
    """Write `arrays` as the cache of `source`, stamped with `stamp` (taken before parsing, so a
    source changed meanwhile is a miss next time). Returns the cache path, None if unwritable."""
    path = cache_path(source, namespace)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays, **{STAMP_KEY: stamp, FORMAT_KEY: np.asarray(format_version)})
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return path
    except OSError:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        return None
