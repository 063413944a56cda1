"""C4 (Raffel et al. 2020) and FineWeb (Penedo et al. 2024) line rules, as document signals.

C4 removes some lines and whole pages; here every rule is a per-document signal so a threshold can be
re-tuned without recomputation (lines are not removed from `text`):

* c4_terminal_punct_line_frac: lines ending in terminal punctuation (. ! ? " ' and CJK 。！？);
  FineWeb drops a document when this is < 0.12; C4 keeps only such lines.
* c4_short_line_frac: lines of at most 30 characters (FineWeb: drop when > 0.67);
* c4_boilerplate_line_count: lines containing "javascript" or a cookie/privacy/terms-of-use phrase
  (C4 removes those lines);
* c4_lorem_ipsum: the page contains "lorem ipsum" (C4 drops it);
* c4_curly_brace: the page contains '{' (C4 drops it; prose rule, never applied to code);
* c4_sentence_count: terminal punctuation marks followed by a space or the end of a line;
* fineweb_newline_word_ratio: newlines per word (FineWeb: drop when > 0.3).
The duplicated-line character share FineWeb uses (> 0.1 drops) is `dup_line_char_frac` (repetition).
"""
from __future__ import annotations

import re

TERMINAL = (".", "!", "?", '"', "'", "”", "’", "。", "！", "？", "»")
_POLICY = re.compile(r"javascript|terms of use|privacy policy|cookie policy|uses cookies|"
                     r"use of cookies|use cookies|cookie settings|accept cookies", re.I)
_SENT_END = re.compile(r"[.!?。！？](?:\s|$)")


def c4_signals(text: str, words: list[str], lines: list[str]) -> dict[str, float]:
    n_lines = len(lines)
    low = text.lower()
    return {
        "c4_terminal_punct_line_frac": (sum(1 for ln in lines if ln.endswith(TERMINAL)) / n_lines)
        if n_lines else 0.0,
        "c4_short_line_frac": (sum(1 for ln in lines if len(ln) <= 30) / n_lines) if n_lines else 0.0,
        "c4_boilerplate_line_count": sum(1 for ln in lines if _POLICY.search(ln)),
        "c4_lorem_ipsum": "lorem ipsum" in low,
        "c4_curly_brace": "{" in text,
        "c4_sentence_count": len(_SENT_END.findall(text)),
        "fineweb_newline_word_ratio": (text.count("\n") / len(words)) if words else 0.0,
    }
