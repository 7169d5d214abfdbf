"""Caption tokens: English split as SCAN's nltk word_tokenize splits it (lowercased, punctuation
and clitics apart), Chinese cut by jieba, the language chosen per caption."""

from __future__ import annotations

import json

import pytest

from tasks.zh_matching.caption_tokens import caption_tokens, english_tokens, is_chinese
from tests.zh_matching_fixture import FIXTURES

# Expected tokens are nltk 3.10's NLTKWordTokenizer output on the lowercased caption.
ENGLISH = [
    ("Two young, White males are outside near many bushes.",
     ["two", "young", ",", "white", "males", "are", "outside", "near", "many", "bushes", "."]),
    ("THERE IS SOME SORT OF VEGETABLES IN A BOWL",  # a real COCO testall caption
     ["there", "is", "some", "sort", "of", "vegetables", "in", "a", "bowl"]),
    ("A man's dog isn't wearing the \"big\" t-shirt... in St. Louis.",
     ["a", "man", "'s", "dog", "is", "n't", "wearing", "the", "``", "big", "''", "t-shirt",
      "...", "in", "st.", "louis", "."]),
    ("1,000 people wait at 3:30; can't you see?",
     ["1,000", "people", "wait", "at", "3:30", ";", "ca", "n't", "you", "see", "?"]),
    ("The dogs' bowls (red & blue) cannot hold it!",
     ["the", "dogs", "'", "bowls", "(", "red", "&", "blue", ")", "can", "not", "hold", "it", "!"]),
    # SCAN's caption files are pre-tokenised; nltk reads a spaced '' as an opening quote, which
    # is why SCAN's vocabularies hold `` and no ''.
    ("A kite with the words `` one love '' on it .",
     ["a", "kite", "with", "the", "words", "``", "one", "love", "``", "on", "it", "."]),
]


@pytest.mark.parametrize("caption, tokens", ENGLISH)
def test_english_captions_are_lowercased_and_split_at_punctuation_as_nltk_does(caption, tokens):
    assert not is_chinese(caption)
    assert caption_tokens(caption) == english_tokens(caption) == tokens


def test_raw_and_pre_tokenised_forms_of_a_caption_give_the_same_tokens():
    raw = "A man in a blue shirt, standing in a garden."
    assert english_tokens(raw) == english_tokens("A man in a blue shirt , standing in a garden .")


def test_real_flickr30k_captions_map_onto_scans_vocabulary_json():
    vocabulary = json.loads(
        (FIXTURES / "f30k" / "vocab" / "f30k_precomp_vocab.json").read_text(encoding="utf-8")
    )["word2idx"]
    lines = (FIXTURES / "f30k/data/f30k_precomp/train_caps.txt").read_text().splitlines()
    tokens = [token for line in lines for token in caption_tokens(line)]
    # SCAN's vocabulary was built from these very train captions (and the rest of train and
    # dev), keeping words seen at least 4 times: every token is in it but one rare word.
    assert [token for token in tokens if token not in vocabulary] == ["spent"]
    # Whitespace splitting alone misses the capitalised words ("Two", "A", ...).
    split = [token for line in lines for token in line.split()]
    assert sum(token not in vocabulary for token in split) > 30


def test_chinese_captions_are_cut_by_jieba_and_latin_letters_lowercased():
    assert is_chinese("一辆红色的汽车停在路边")
    assert caption_tokens("一辆红色的汽车停在路边")[:3] == ["一辆", "红色", "的"]
    tokens = caption_tokens("一个穿着T恤的男人")
    assert "男人" in tokens and not any("T" in token for token in tokens)


def test_language_is_decided_per_caption_by_any_cjk_ideograph():
    assert is_chinese("A dog 在草地上") and not is_chinese("A dog on the grass .")
    assert caption_tokens("A dog 在草地上")[0] == "a"  # jieba: latin words kept, lowercased
    assert "草地" in caption_tokens("A dog 在草地上")
