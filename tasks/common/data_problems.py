"""Collecting every problem of a dataset instead of stopping at the first one.

A reader checks many files; a user fixing a download wants the whole list at once. Readers
raise DataError (one line) where a problem makes the rest of a step meaningless, and the
checker turns each such step into an entry of a ProblemList.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from tasks.base import DataError


class ProblemList:
    """One line per data problem, in the order found."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Run a checking step; a DataError it raises becomes one entry and checking goes on."""
        try:
            yield
        except DataError as error:
            self.lines.append(str(error))

    def __len__(self) -> int:
        return len(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)
