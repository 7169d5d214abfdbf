"""Train / val / test by scenario: every frame of a scenario lands in the same split.

Frames of one AnoVox scenario are consecutive ticks of one drive (near duplicates), so a split
by frame would put the same scene in train and val. AnoVox ships no split, so one is derived
from the scenario folder names alone, reproducibly on any machine:

    bucket = zlib.crc32(folder_name.encode("utf-8")) % 100
    train if bucket < 70, val if bucket < 85, else test

(e.g. `python -c 'import zlib; print(zlib.crc32(b"Scenario_<id>") % 100)'`). A scenario keeps
its split when scenarios are added or removed. When the buckets leave train or val empty (a
dataset of a handful of scenarios), the scenarios are instead ranked by (bucket, name) and cut
70 / 15 / 15 with at least one scenario in train and one in val; the report says which rule ran.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass

SPLIT_ORDER = ("train", "val", "test")
BUCKET_LIMITS = (("train", 70), ("val", 85), ("test", 100))
MIN_SCENARIOS = 2


@dataclass(frozen=True)
class ScenarioSplit:
    """split of every scenario (folder name -> train|val|test) and the rule that produced it."""

    assignment: dict[str, str]
    rule: str

    def describe(self) -> str:
        """One line for the data report: the rule, the counts, and an example of each split."""
        counts = Counter(self.assignment.values())
        parts = []
        for split in SPLIT_ORDER:
            members = sorted(name for name, chosen in self.assignment.items() if chosen == split)
            example = f" (e.g. {members[0]})" if members else ""
            parts.append(f"{split} {counts.get(split, 0)}{example}")
        return f"split by scenario, {self.rule}: " + ", ".join(parts) + " scenarios"


def bucket(scenario: str) -> int:
    """The scenario's bucket in [0, 100): crc32 of its folder name."""
    return zlib.crc32(scenario.encode("utf-8")) % 100


def bucket_split(scenario: str) -> str:
    value = bucket(scenario)
    return next(split for split, limit in BUCKET_LIMITS if value < limit)


def split_scenarios(scenarios: list[str]) -> ScenarioSplit:
    """Assign each scenario folder name to train, val or test (see the module docstring)."""
    assignment = {name: bucket_split(name) for name in scenarios}
    chosen = set(assignment.values())
    if len(scenarios) < MIN_SCENARIOS or {"train", "val"} <= chosen:
        return ScenarioSplit(assignment, "crc32(folder name) % 100: < 70 train, < 85 val, else test")
    ranked = sorted(scenarios, key=lambda name: (bucket(name), name))
    count = len(ranked)
    val_count = max(1, round(0.15 * count))
    test_count = min(round(0.15 * count), count - val_count - 1)
    train_count = count - val_count - test_count
    assignment = {
        name: "train" if rank < train_count else "val" if rank < train_count + val_count else "test"
        for rank, name in enumerate(ranked)
    }
    return ScenarioSplit(
        assignment,
        f"crc32 buckets left {'train' if 'train' not in chosen else 'val'} empty, so ranked by "
        "(crc32(folder name) % 100, name) and cut 70/15/15",
    )
