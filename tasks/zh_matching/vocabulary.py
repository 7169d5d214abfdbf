"""The caption vocabulary: built from the training captions, caption encoding, a fingerprint,
and json save/load. Captions are split into tokens by caption_tokens.py (jieba for Chinese,
SCAN's nltk-style splitting for English).

A built vocabulary is a pure function of the training captions and `min_word_count`: special
tokens first (`<pad>` is id 0), then words by descending count, ties in code-point order. (When
the dataset ships SCAN's vocabulary json, scan_vocabulary.py reads that one instead.) So a trial
rebuilds exactly the vocabulary its weights were trained with from its config and data alone;
the model stores the vocabulary's fingerprint (see model.py), so weights loaded against a
different vocabulary fail loudly instead of reading the wrong embedding rows.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from tasks.zh_matching.caption_tokens import caption_tokens

PAD, START, END, UNKNOWN = "<pad>", "<start>", "<end>", "<unk>"
SPECIAL_TOKENS = (PAD, START, END, UNKNOWN)


class Vocabulary:
    """Token <-> id for captions; tokens[i] is the token of id i."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary must start with {' '.join(SPECIAL_TOKENS)}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary must not repeat a token")
        self.tokens = list(tokens)
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def encode(self, caption: str, max_tokens: int) -> list[int]:
        """Ids of `<start> words <end>`, words cut so the whole is at most max_tokens (>= 3)."""
        unknown = self.ids[UNKNOWN]
        words = [self.ids.get(word, unknown) for word in caption_tokens(caption)]
        return [self.ids[START], *words[: max(0, max_tokens - 2)], self.ids[END]]

    def fingerprint(self) -> int:
        """A signed 63-bit hash of the token list, stable across processes and machines."""
        digest = hashlib.sha256(json.dumps(self.tokens, ensure_ascii=False).encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1


def build_vocabulary(captions: Iterable[str], min_word_count: int = 1) -> Vocabulary:
    """The vocabulary of the training captions: specials, then words seen at least
    `min_word_count` times, most frequent first, ties in code-point order."""
    counts = Counter(word for caption in captions for word in caption_tokens(caption))
    kept = [
        word
        for word, count in counts.items()
        if count >= min_word_count and word not in SPECIAL_TOKENS
    ]
    words = sorted(kept, key=lambda word: (-counts[word], word))
    return Vocabulary([*SPECIAL_TOKENS, *words])


def save_vocabulary(vocabulary: Vocabulary, path: Path) -> None:
    """Write the vocabulary as a UTF-8 json list of tokens in id order."""
    text = json.dumps(vocabulary.tokens, ensure_ascii=False, indent=0)
    Path(path).write_text(text, encoding="utf-8")


def load_vocabulary(path: Path) -> Vocabulary:
    """Read a vocabulary written by `save_vocabulary`; ValueError (one line) if it is not one."""
    try:
        tokens = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable vocabulary json ({type(error).__name__})"
        ) from None
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise ValueError(f"{path}: a vocabulary json is a list of token strings")
    try:
        return Vocabulary(tokens)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
