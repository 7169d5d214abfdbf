"""CUB's small `<id> <value>` tables (images.txt, train_test_split.txt, image_class_labels.txt,
classes.txt, attributes.txt), read with every problem listed, one line each."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = 3


def read_id_table(path: Path, value_name: str) -> tuple[dict[int, str], list[str]]:
    """A `<id> <value>` file (value may hold spaces) as id -> value, blank lines skipped, and the
    problems: every malformed line, every repeated id, an empty file, text that is not UTF-8."""
    table: dict[int, str] = {}
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return table, [f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"]
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(maxsplit=1)
        if not fields:
            continue
        if len(fields) < 2 or not fields[0].isdigit():
            problems.append(f"{path}:{line_number}: expected '<id> <{value_name}>'; fix or delete this line")
            continue
        identifier = int(fields[0])
        if identifier in table:
            problems.append(f"{path}:{line_number}: id {identifier} appears twice; keep one line")
            continue
        table[identifier] = fields[1].strip()
    if not table and not problems:
        problems.append(f"{path}: empty; it must list one '<id> <{value_name}>' per line")
    return table, problems


def integer_values(
    path: Path, table: dict[int, str], allowed: set[int], expected: str
) -> tuple[dict[int, int], list[str]]:
    """The table's values as ints, and one problem per value that is not one of `allowed`."""
    values: dict[int, int] = {}
    problems: list[str] = []
    for identifier, text in table.items():
        if not text.isdigit() or int(text) not in allowed:
            problems.append(f"{path}: image {identifier} has value {text!r}, expected {expected}; fix that line")
            continue
        values[identifier] = int(text)
    return values, problems


def id_mismatch(path: Path, ids: set[int], image_ids: set[int], images_file: str) -> str | None:
    """A problem line when a table does not list exactly the images of images.txt, else None."""
    missing, extra = sorted(image_ids - ids), sorted(ids - image_ids)
    parts = []
    if missing:
        parts.append(f"lacks {len(missing)} image id(s) of {images_file} {missing[:EXAMPLES]}{'...' if len(missing) > EXAMPLES else ''}")
    if extra:
        parts.append(f"has {len(extra)} image id(s) not in {images_file} {extra[:EXAMPLES]}{'...' if len(extra) > EXAMPLES else ''}")
    if not parts:
        return None
    return f"{path}: {' and '.join(parts)}; the files must list the same images"
