"""C4 (Raffel et al. 2020, section 2.2) and FineWeb (Penedo et al. 2024) line rules, as document signals.

C4's rules, as its reference implementation applies them (tensorflow_datasets
`text/c4_utils.py`, `clean_page`: _MIN_WORDS_PER_LINE = 5, _MIN_NUM_SENTENCES = 3, end marks
. ? ! "), and datatrove's `C4QualityFilter` (pipeline/filters/c4_filters.py) re-implements: a line
(stripped) is a C4 line when it has no word over 1,000 characters, ends (after removing
Wikipedia-style citation marks) with a terminal mark and not with an ellipsis, and has at least
`min_words_per_line` whitespace words. Among those lines, in order: "lorem ipsum" drops the page;
a line mentioning "javascript" is removed; a '{' drops the page; a line with a cookie/privacy/terms
phrase is removed; the sentences of the remaining lines are counted. Here nothing is removed from
`text`; the signals are:
* c4_lorem_ipsum / c4_curly_brace: the page-dropping conditions above (on C4 lines only, as the
  reference; a '{' in a menu line without terminal punctuation does not count);
* c4_sentence_count: sentences in the C4 lines that survive (a sentence ends at a terminal-mark
  token followed by a non-terminal token or the end of the line);
* c4_boilerplate_line_count: C4 lines removed as javascript / policy lines.

FineWeb's rules, as datatrove's `FineWebQualityFilter` (pipeline/filters/fineweb_quality_filter.py)
computes them, over the non-blank lines of `text.split("\n")` (not stripped):
* fineweb_terminal_punct_line_frac: lines ending with a Unicode Sentence_Terminal character
  (drop when < 0.12);
* fineweb_short_line_frac: lines of at most 30 characters (drop when > 0.67);
* fineweb_dup_line_char_frac: characters of lines that repeat an earlier line, over the characters
  of the text without its newlines (drop when > 0.01);
* fineweb_newline_word_ratio: newlines per token of `tokens_of` (drop when > 0.3).
"""
from __future__ import annotations

import re

import regex

from curation.filters.text import tokens_of

C4_END_MARKS = (".", "?", "!", '"')
C4_MIN_WORDS_PER_LINE = 5
C4_MAX_WORD_LEN = 1000
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
           "use cookies")
_SENT_MARKS = frozenset({".", "!", "?", "...", "…", "。", "！", "？", "‼", "⁇", "⁈", "⁉"})
_STERM = regex.compile(r"\p{Sentence_Terminal}$")
SHORT_LINE_CHARS = 30


def _sentences(line: str) -> int:
    toks = tokens_of(line)
    n = 0
    for i, t in enumerate(toks):
        if t in _SENT_MARKS and (i + 1 == len(toks) or toks[i + 1] not in _SENT_MARKS):
            n += 1
    return max(n, 1) if toks else 0


def c4_signals(text: str, min_words_per_line: int = C4_MIN_WORDS_PER_LINE) -> dict:
    lorem = curly = False
    sentences = boiler = 0
    for raw in text.splitlines():
        line = raw.strip()
        words = line.split()
        if any(len(w) > C4_MAX_WORD_LEN for w in words):
            continue
        line = _CITATION.sub("", line)
        if not line.endswith(C4_END_MARKS) or line.endswith("..."):
            continue
        if len(words) < min_words_per_line:
            continue
        low = line.lower()
        if "lorem ipsum" in low:
            lorem = True
        if "javascript" in low:
            boiler += 1
            continue
        if "{" in line:
            curly = True
        if any(p in low for p in _POLICY):
            boiler += 1
            continue
        sentences += _sentences(line)
    return {"c4_lorem_ipsum": lorem, "c4_curly_brace": curly, "c4_sentence_count": sentences,
            "c4_boilerplate_line_count": boiler}


def fineweb_signals(text: str, n_tokens: int) -> dict:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    n = len(lines)
    seen: set[str] = set()
    dup_chars = 0
    for ln in lines:
        if ln in seen:
            dup_chars += len(ln)
        else:
            seen.add(ln)
    body = len(text) - text.count("\n")
    return {
        "fineweb_terminal_punct_line_frac": (sum(1 for ln in lines if _STERM.search(ln)) / n) if n else 0.0,
        "fineweb_short_line_frac": (sum(1 for ln in lines if len(ln) <= SHORT_LINE_CHARS) / n) if n else 0.0,
        "fineweb_dup_line_char_frac": (dup_chars / body) if body else 0.0,
        "fineweb_newline_word_ratio": (text.count("\n") / n_tokens) if n_tokens else 0.0,
    }
