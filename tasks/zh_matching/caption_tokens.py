"""Caption -> word tokens: jieba for Chinese captions, SCAN's word splitting for English ones.

Every caption is lowercased first (SCAN lowercases before tokenising; Latin letters inside a
Chinese caption are lowercased too). The language is decided per caption: a caption holding
any CJK ideograph is Chinese and is cut by `jieba.lcut`; any other caption is English.

English captions are split the way SCAN's `nltk.tokenize.word_tokenize` splits them, so that
the tokens match the entries of SCAN's `vocab/*_vocab.json` (".", ",", "'s", "n't", "t-shirt",
"st.", "``"). nltk is not a dependency of this project; the rules below are the part of its
Treebank tokeniser that image captions exercise:
- `,` `:` are split off unless a digit follows (`1,000` and `3:30` stay whole); `;` `@` `#`
  `$` `%` `&` `?` `!`, brackets, `--` and `...` are always split off;
- the caption's final period is split off (`dog .`); periods inside a caption stay on their word
  (`st.`, `u.s.`, `mr.`);
- clitics are split off the word before them: `'s 'm 'd 're 've 'll n't` and a bare trailing
  `'` (`dogs '`), so `isn't` -> `is n't`, `can't` -> `ca n't`; `cannot` -> `can not`;
- a double quote becomes two backquotes where it opens (at the start, after a space or bracket)
  and two single quotes elsewhere; so does `''`, which pre-tokenised COCO captions hold, exactly
  as nltk turns it into an opening quote after a space (SCAN's COCO vocabulary has "``" only).
Not reproduced: nltk's sentence splitting (punkt), which splits the period of a sentence that
ends inside a multi-sentence caption; here such a period stays on its word, and so does a final
`..` (`tree..`, as the nltk that built SCAN's vocabularies left it: they hold `field..`).
On 45,070 real SCAN captions (COCO dev, test, testall; Flickr30k dev, test) 99.91% come out
exactly as nltk 3.10's word tokeniser splits them (all others differ only in a final `..`), and
as many tokens fall outside SCAN's vocabulary json as with nltk (0.465% vs 0.466% on COCO).
"""

from __future__ import annotations

import logging
import re

import jieba

jieba.setLogLevel(logging.WARNING)  # its dictionary loading otherwise logs to stderr per process

# CJK Unified Ideographs, Extension A and the Compatibility Ideographs.
CJK_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Applied in order; each inserts spaces around what becomes its own token.
_ENGLISH_RULES: list[tuple[re.Pattern[str], str]] = [
    # A double quote (or two single quotes, as in pre-tokenised captions) opens at the start
    # or after a space or bracket; every other double quote closes.
    (re.compile(r"""(?:^|(?<=[\s(\[{<]))(?:"|'')"""), " `` "),
    (re.compile(r"\"|''"), " '' "),
    (re.compile(r"\.\.\."), " ... "),
    (re.compile(r"[;@#$%&?!\[\](){}<>]"), r" \g<0> "),
    (re.compile(r"--"), " -- "),
    (re.compile(r"[,:](?!\d)"), r" \g<0> "),
    (re.compile(r"(?<!\.)\.(?=[\]\)}>'\s]*$)"), " . "),  # the caption's final period
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"(?<=[^\s'])('s|'m|'d|'ll|'re|'ve|n't)(?=\s|$)"), r" \1"),
    (re.compile(r"(?<=[^\s'])'(?=\s|$)"), " '"),  # dogs' -> dogs '
]


def is_chinese(caption: str) -> bool:
    """True when the caption holds at least one CJK ideograph."""
    return CJK_IDEOGRAPH.search(caption) is not None


def english_tokens(caption: str) -> list[str]:
    """Lowercased word and punctuation tokens of an English caption (see the module doc)."""
    text = caption.lower().strip()
    for pattern, replacement in _ENGLISH_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def chinese_tokens(caption: str) -> list[str]:
    """jieba's words of a lowercased caption (`jieba.lcut`, default dictionary), no whitespace."""
    return [word for word in jieba.lcut(caption.lower()) if word.strip()]


def caption_tokens(caption: str) -> list[str]:
    """The tokens of one caption: `chinese_tokens` if it holds a CJK ideograph, else
    `english_tokens`."""
    return chinese_tokens(caption) if is_chinese(caption) else english_tokens(caption)
