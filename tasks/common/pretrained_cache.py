"""A directory built once per machine and kept in the cache: the demos' pretrained encoders.

`cached_build(namespace, key, build)` returns `<cache root>/<namespace>/<key>/`, calling
`build(directory)` only when no complete copy is there. The build writes into a temporary
directory beside it that is renamed into place when complete, and a lock file serialises
builders, so processes starting at once (several demos, parallel tests) build it once and never
see a half-written copy. Where the cache cannot be written, the build goes to a temporary
directory instead (the caller copies what it needs out of it). The key names everything the
result depends on, so a changed recipe is a new directory, never a stale hit.

Cache root: $ORCHESTRATE_CACHE_DIR, else $XDG_CACHE_HOME/orchestrate, else ~/.cache/orchestrate.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from tasks.common.file_cache import cache_root

COMPLETE_MARKER = ".complete"


def recipe_key(prefix: str, recipe: dict[str, Any]) -> str:
    """`<prefix>-<16 hex digits>`: a stable name for everything in `recipe` (JSON-able)."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{digest}"


def is_complete(directory: Path) -> bool:
    return (directory / COMPLETE_MARKER).is_file()


def cached_build(namespace: str, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The complete directory for `key`, and whether it was built by this call.

    build(directory) fills an empty directory; it is called at most once per machine and key
    (unless the cache is unwritable: then into a fresh temporary directory on every call).
    """
    target = cache_root() / namespace / key
    if is_complete(target):
        return target, False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = open(target.parent / f"{key}.lock", "a+")
    except OSError:
        scratch = Path(tempfile.mkdtemp(prefix=f"orchestrate-{key}-"))
        build(scratch)
        return scratch, True
    with lock:  # closing the file releases the lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(target):  # another process built it while this one waited
            return target, False
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
        try:
            build(staging)
            (staging / COMPLETE_MARKER).write_text("")
            if target.exists():  # an incomplete leftover of a killed build
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target, True
