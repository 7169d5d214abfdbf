"""SCAN's vocabulary json (`vocab/<data_name>_vocab.json`): found beside the data and read.

SCAN's vocab.py writes `{"word2idx": {word: id}, "idx2word": {"id": word}, "idx": size}` with
`<pad> <start> <end> <unk>` as ids 0-3, built with nltk tokens from train_caps.txt and
dev_caps.txt (words seen at least 4 times); its vocab.zip holds f30k_precomp_vocab.json and
coco_precomp_vocab.json. SCAN looks for `<vocab_path>/<data_name>_vocab.json`, data_name being
the folder name (`f30k_precomp`). The json is looked up, first found wins, in:
    <data_dir>/<name>_vocab.json, <data_dir>/vocab/<name>_vocab.json,
    <data_dir>/../vocab/<name>_vocab.json, <data_dir>/../../vocab/<name>_vocab.json
(the last is SCAN's own layout: data.zip unpacked to data/f30k_precomp beside vocab/).
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.base import DataError
from tasks.zh_matching.vocabulary import SPECIAL_TOKENS, Vocabulary


def vocabulary_json_candidates(data_dir: Path) -> list[Path]:
    """Where a SCAN vocabulary json for data_dir may be, in the order they are tried."""
    data_dir = Path(data_dir).resolve()
    name = f"{data_dir.name}_vocab.json"
    return [
        data_dir / name,
        data_dir / "vocab" / name,
        data_dir.parent / "vocab" / name,
        data_dir.parent.parent / "vocab" / name,
    ]


def find_vocabulary_json(data_dir: Path) -> Path | None:
    """The first existing candidate of `vocabulary_json_candidates`, or None."""
    return next((path for path in vocabulary_json_candidates(data_dir) if path.is_file()), None)


def read_scan_vocabulary(path: Path) -> Vocabulary:
    """The Vocabulary of a SCAN vocab json (tokens in id order); DataError (one line naming the
    file) if it is not valid json, lacks word2idx, has ids that are not 0..N-1, lacks SCAN's
    special tokens at ids 0-3, or its idx / idx2word disagree with word2idx."""
    fix = (
        "re-extract SCAN's vocab.zip, or remove the file to build the vocabulary from "
        "train_caps.txt"
    )
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 (byte {error.start}); {fix}") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise DataError(f"{path}: not valid JSON ({error.msg} at {where}); {fix}") from None
    word2idx = content.get("word2idx") if isinstance(content, dict) else None
    if not isinstance(word2idx, dict) or not word2idx:
        raise DataError(
            f"{path}: no word2idx mapping; a SCAN vocabulary json holds word2idx, idx2word and "
            f"idx; {fix}"
        )
    by_id: dict[int, str] = {}
    for word, index in word2idx.items():
        if not isinstance(index, int) or isinstance(index, bool) or index in by_id:
            what = "repeated" if index in by_id else "not an integer"
            raise DataError(f"{path}: word2idx id of {word!r} is {what} ({index!r}); {fix}")
        by_id[index] = word
    size = len(by_id)
    missing = next((index for index in range(size) if index not in by_id), None)
    if missing is not None:
        raise DataError(
            f"{path}: word2idx ids are not 0..{size - 1} (id {missing} is missing); {fix}"
        )
    tokens = [by_id[index] for index in range(size)]
    if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise DataError(
            f"{path}: ids 0-3 are {' '.join(tokens[:4])}, not SCAN's special tokens "
            f"{' '.join(SPECIAL_TOKENS)}; {fix}"
        )
    if "idx" in content and content["idx"] != size:
        raise DataError(f"{path}: idx is {content['idx']!r} but word2idx holds {size} words; {fix}")
    idx2word = content.get("idx2word")
    if idx2word is not None:
        if not isinstance(idx2word, dict) or len(idx2word) != size:
            raise DataError(
                f"{path}: idx2word is not a mapping of each of the {size} ids to its word; {fix}"
            )
        for key, word in idx2word.items():
            index = int(key) if str(key).isdigit() else None
            if index is None or by_id.get(index) != word:
                raise DataError(
                    f"{path}: idx2word[{key!r}] = {word!r} disagrees with word2idx; {fix}"
                )
    return Vocabulary(tokens)
