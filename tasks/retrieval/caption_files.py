"""The two Flickr8k caption files: the original `Flickr8k.token.txt` and Kaggle's `captions.txt`.

Both parsers read the whole file and return every problem they find (one line each, naming the
file and line) next to the captions they could read, so a user sees all bad lines at once.

Known quirk of the original `Flickr8k.token.txt` (Flickr8k_text.zip): one caption is keyed
`2258277193_586949ec62.jpg.1#0` while the other four captions of that image are keyed
`2258277193_586949ec62.jpg#1..4`. A key `<name>.<digits>` whose `<name>` also has captions in
the file is read as `<name>`, and the reader says so in a note (Kaggle's re-export fixed it the
same way: 8091 images with 5 captions each).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_CAPTIONS_FILE = "Flickr8k.token.txt"
LEMMA_CAPTIONS_FILE = "Flickr8k.lemma.token.txt"  # lemmatised ("a dog be run"): never trained on
KAGGLE_CAPTIONS_FILE = "captions.txt"

# `<image>.<copy number>`, e.g. 2258277193_586949ec62.jpg.1
COPY_SUFFIX = re.compile(r"^(?P<name>.+\.(?:jpe?g|png))\.\d+$", re.IGNORECASE)


@dataclass
class CaptionTable:
    """What one caption file holds: image file name -> its captions in file order.

    problems: one line per bad line (file:line, what is wrong, the fix).
    notes: one line per tolerated quirk (for the data report's sources).
    """

    captions: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_text(path: Path, table: CaptionTable) -> str | None:
    """The file's text, or None with a problem added when it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        table.problems.append(
            f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"
        )
        return None


def merge_copy_suffixed_keys(path: Path, captions: dict[str, list[str]], table: CaptionTable) -> None:
    """Fold `<name>.<digits>` keys into `<name>` when `<name>` has captions of its own."""
    for key in [key for key in captions if COPY_SUFFIX.match(key)]:
        name = COPY_SUFFIX.match(key).group("name")
        if name in captions:
            captions[name].extend(captions.pop(key))
            table.notes.append(
                f"{path.name}: caption key {key} read as {name} (a known typo of the original file)"
            )


def parse_token_captions(path: Path) -> CaptionTable:
    """`Flickr8k.token.txt` (`<image>#<n><TAB><caption>` per line) -> CaptionTable.

    Blank lines and Windows line ends are tolerated; a line without a tab, or without a caption
    after it, is a problem.
    """
    table = CaptionTable()
    text = read_text(path, table)
    if text is None:
        return table
    captions: dict[str, list[str]] = defaultdict(list)
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        name = key.rpartition("#")[0] or key
        if not tab or not caption.strip() or not name.strip():
            table.problems.append(
                f"{path}:{line_number}: expected '<image>#<n><TAB><caption>'; fix or delete this line"
            )
            continue
        captions[name.strip()].append(caption.strip())
    merge_copy_suffixed_keys(path, captions, table)
    table.captions = dict(captions)
    if not table.captions and not table.problems:
        table.problems.append(f"{path}: holds no caption; it must list '<image>#<n><TAB><caption>' lines")
    return table


def parse_kaggle_captions(path: Path) -> CaptionTable:
    """Kaggle's `captions.txt` (csv with header `image,caption`, one row per caption) -> CaptionTable.

    An unquoted comma inside a caption splits it into several csv fields; they are joined back.
    """
    table = CaptionTable()
    text = read_text(path, table)
    if text is None:
        return table
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None or [cell.strip().lower() for cell in header[:2]] != ["image", "caption"]:
        table.problems.append(
            f"{path}: first line must be the header 'image,caption' (Kaggle Flickr8k); fix the header"
        )
        return table
    captions: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if not row or not any(cell.strip() for cell in row):
            continue
        caption = ",".join(row[1:]).strip()
        if len(row) < 2 or not row[0].strip() or not caption:
            table.problems.append(
                f"{path}:{rows.line_num}: expected '<image>,<caption>'; fix or delete this line"
            )
            continue
        captions[row[0].strip()].append(caption)
    table.captions = dict(captions)
    if not table.captions and not table.problems:
        table.problems.append(f"{path}: holds no caption; add '<image>,<caption>' rows under the header")
    return table


PARSERS = {TOKEN_CAPTIONS_FILE: parse_token_captions, KAGGLE_CAPTIONS_FILE: parse_kaggle_captions}


def parse_caption_file(path: Path) -> CaptionTable:
    """Parse a caption file by its name (Flickr8k.token.txt or captions.txt)."""
    return PARSERS[path.name](path)
