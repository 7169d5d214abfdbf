"""Masked-language-model pretraining of a small BERT, saved as a local model directory.

The result is laid out as a real local BERT checkpoint is (`save_pretrained` of the model and of
a `BertTokenizerFast` with its vocab.txt), so a task loads it exactly as it would load
bert-base-uncased from disk: `AutoModel.from_pretrained(dir, local_files_only=True)` and
`AutoTokenizer.from_pretrained(dir, local_files_only=True)`. Masking is transformers' own
`DataCollatorForLanguageModeling`, with shares that suit a small corpus (see MASKED_SHARE).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from transformers.utils import logging as hf_logging
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast, DataCollatorForLanguageModeling

from tasks.common.text_tokenizer import SPECIAL_TOKENS, wordpiece_vocabulary

# Masking: 30% of the tokens are chosen, half of them become [MASK], a tenth a random token and
# the other 40% stay as they are. BERT's 15% / 80% / 10% keeps so few tokens that nothing asks
# a visible token's output to stay that token: on a small corpus whose words fill fixed slots
# (any colour may follow "a large"), the words of one slot then leave the encoder with nearly
# the same state ("left" and "right" at cosine 0.99), and the encoder is useless downstream.
MASKED_SHARE = 0.3
MASK_TOKEN_SHARE = 0.5
RANDOM_TOKEN_SHARE = 0.1


def corpus_tokenizer(corpus: Sequence[str], vocab_size: int) -> BertTokenizerFast:
    """A lowercase BERT WordPiece tokeniser whose vocabulary is fitted to `corpus` (deterministic)."""
    return BertTokenizerFast(vocab=wordpiece_vocabulary(corpus, vocab_size), do_lower_case=True, **SPECIAL_TOKENS)


@dataclass(frozen=True)
class MaskedLmRecipe:
    """The BERT's size and how long it is pretrained."""

    hidden_size: int = 64
    layers: int = 4
    heads: int = 4
    max_tokens: int = 32
    vocab_size: int = 400
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0


def pretrain_masked_lm(
    corpus: Sequence[str], out_dir: Path, recipe: MaskedLmRecipe, progress: Callable[[str], None] = print
) -> float:
    """Fit a tokeniser to `corpus`, pretrain a BERT as `recipe` says on it with MLM, and write
    model and tokeniser to `out_dir` (created). A twentieth of the corpus is held out; `progress`
    gets one line per epoch (training loss, held-out masked-token accuracy). Returns the final
    held-out masked-token accuracy. Runs on one CPU thread (see below)."""
    threads = torch.get_num_threads()
    # A model this small spends its time in many tiny kernels: a second thread costs more in
    # hand-offs than it gains, and on a busy machine it made steps 20x slower.
    torch.set_num_threads(1)
    try:
        return _pretrain(corpus, Path(out_dir), recipe, progress)
    finally:
        torch.set_num_threads(threads)


def _pretrain(corpus: Sequence[str], out_dir: Path, recipe: MaskedLmRecipe,
              progress: Callable[[str], None]) -> float:
    seed, batch_size, max_tokens = recipe.seed, recipe.batch_size, recipe.max_tokens
    torch.manual_seed(seed)
    tokenizer = corpus_tokenizer(corpus, recipe.vocab_size)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        intermediate_size=2 * recipe.hidden_size,
        max_position_embeddings=max_tokens,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BertForMaskedLM(config)
    encoded = tokenizer(list(corpus), truncation=True, max_length=max_tokens)["input_ids"]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(encoded), generator=generator).tolist()
    held_out = [encoded[i] for i in order[: len(encoded) // 20]]
    train = [encoded[i] for i in order[len(encoded) // 20 :]]
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=MASKED_SHARE, mask_replace_prob=MASK_TOKEN_SHARE,
        random_replace_prob=RANDOM_TOKEN_SHARE, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.01)
    steps = recipe.epochs * ((len(train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.learning_rate, total_steps=steps)
    accuracy = 0.0
    for epoch in range(recipe.epochs):
        model.train()
        total, batches = 0.0, 0
        shuffled = torch.randperm(len(train), generator=generator).tolist()
        for start in range(0, len(train), batch_size):
            batch = collator([{"input_ids": train[i]} for i in shuffled[start : start + batch_size]])
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
            batches += 1
        accuracy = masked_token_accuracy(model, collator, held_out)
        progress(f"epoch {epoch + 1}/{recipe.epochs}: loss {total / batches:.3f}, "
                 f"held-out masked-token accuracy {accuracy:.2f}")
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()  # a bar for writing one small file is noise
    try:
        model.save_pretrained(out_dir)
    finally:
        hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(out_dir)
    return accuracy


@torch.no_grad()
def masked_token_accuracy(
    model: BertForMaskedLM, collator: DataCollatorForLanguageModeling, sequences: list[list[int]]
) -> float:
    """Share of masked tokens the model predicts exactly, over `sequences` (one masking draw)."""
    model.eval()
    batch = collator([{"input_ids": ids} for ids in sequences])
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    masked = batch["labels"] != -100
    return float((logits.argmax(-1)[masked] == batch["labels"][masked]).float().mean())
