"""Caption tokenisers: a WordPiece tokeniser fitted to a dataset's own captions, or a local one.

The fitted vocabulary is built here rather than by `tokenizers.trainers.WordPieceTrainer`: that
trainer (tokenizers 0.23) breaks ties between equally frequent merges by hash-ordered ids, so the
same captions give a different vocabulary from run to run, and a trial would not be reproducible
from its config. The vocabulary here is classic WordPiece: special tokens, every character seen
(alone and as a `##` continuation), then whole words by frequency (ties alphabetical) up to the
size asked for. Unseen or rare words fall back to characters; normalisation is BERT's (lowercase).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
CONTINUATION_PREFIX = "##"


def wordpiece_vocabulary(captions: Sequence[str], vocab_size: int) -> dict[str, int]:
    """Token -> id: specials (so [PAD] is 0), all characters, then the most frequent words.

    The result has max(vocab_size, specials + 2 x characters) entries and depends only on the
    multiset of captions.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts = Counter(
        word
        for caption in captions
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(caption))
    )
    characters = sorted({character for word in word_counts for character in word})
    tokens = [*SPECIAL_TOKENS.values(), *characters, *(CONTINUATION_PREFIX + c for c in characters)]
    words = sorted(
        (word for word in word_counts if len(word) > 1), key=lambda word: (-word_counts[word], word)
    )
    tokens += words[: max(0, vocab_size - len(tokens))]
    return {token: index for index, token in enumerate(tokens)}


def train_wordpiece_tokenizer(captions: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A lowercase BERT-style WordPiece tokeniser fitted to `captions` (deterministic).

    Returns a transformers fast tokeniser that adds [CLS] ... [SEP] and pads with [PAD] (id 0).
    """
    vocabulary = wordpiece_vocabulary(captions, vocab_size)
    tokenizer = Tokenizer(
        models.WordPiece(
            vocabulary,
            unk_token=SPECIAL_TOKENS["unk_token"],
            continuing_subword_prefix=CONTINUATION_PREFIX,
        )
    )
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[(token, vocabulary[token]) for token in ("[CLS]", "[SEP]")],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def load_local_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """The tokeniser saved in a local model directory (never downloads); ValueError if absent."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(
            f"text_encoder directory {directory} does not exist; give a local model directory or leave it unset"
        )
    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def tokenize_captions(
    tokenizer: PreTrainedTokenizerBase, captions: Sequence[str], max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise captions once, padded/truncated to max_tokens.

    Returns (input_ids, attention_mask), both (len(captions), max_tokens) long tensors.
    """
    encoded = tokenizer(
        list(captions),
        padding="max_length",
        truncation=True,
        max_length=max_tokens,
        return_tensors="pt",
    )
    return encoded["input_ids"].long(), encoded["attention_mask"].long()
