"""Gopher quality signals (Rae et al. 2021, appendix A.1.1), computed as datatrove's
`GopherQualityFilter` computes them (src/datatrove/pipeline/filters/gopher_quality_filter.py).

`tokens` are `text.tokens_of(text)`: punctuation marks are tokens; a "word" is a token with at least
one character outside the reference's punctuation set (`text.is_symbol_token`: ASCII punctuation,
dashes, double quotes, `’`, `…`, sentence-ending and CJK full-width marks); a lone `€`, `•` or `×` is a
word, as it is in datatrove.

* gopher_word_count: words (tokens of punctuation only excluded);
* gopher_mean_word_len: mean characters per word;
* gopher_hash_word_ratio: '#' occurrences per token;
* gopher_ellipsis_word_ratio: ('...' + '…') occurrences per token. Gopher checks the two symbols
  separately ("a symbol-to-word ratio greater than 0.1 for either the hash symbol or the
  ellipsis"), both against `gopher.max_symbol_word_ratio`;
* gopher_bullet_line_frac: lines (str.splitlines, empty ones included) starting with '•' or '-'
  after leading whitespace;
* gopher_ellipsis_line_frac: lines ending with '...' or '…' (trailing whitespace ignored);
* gopher_alpha_word_frac: tokens with at least one letter, over all tokens;
* gopher_stop_word_count: how many DISTINCT words of {the, be, to, of, and, that, have, with} occur
  (Gopher: "does not contain at least two of the following English words"); case-sensitive, as the
  reference.
"""
from __future__ import annotations

from curation.filters.text import is_symbol_token

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "-")


def gopher_signals(text: str, tokens: list[str]) -> dict[str, float]:
    n_tok = len(tokens)
    words = [t for t in tokens if not is_symbol_token(t)]
    n = len(words)
    lines = text.splitlines()
    n_lines = len(lines)
    hashes = text.count("#")
    ellipses = text.count("...") + text.count("…")
    return {
        "gopher_word_count": n,
        "gopher_mean_word_len": (sum(len(w) for w in words) / n) if n else 0.0,
        "gopher_hash_word_ratio": (hashes / n_tok) if n_tok else float(hashes > 0),
        "gopher_ellipsis_word_ratio": (ellipses / n_tok) if n_tok else float(ellipses > 0),
        "gopher_bullet_line_frac": (sum(1 for ln in lines if ln.lstrip().startswith(BULLETS)) / n_lines)
        if n_lines else 0.0,
        "gopher_ellipsis_line_frac": (sum(1 for ln in lines if ln.rstrip().endswith(("...", "…")))
                                      / n_lines) if n_lines else 0.0,
        "gopher_alpha_word_frac": (sum(1 for w in tokens if any(c.isalpha() for c in w)) / n_tok)
        if n_tok else 0.0,
        "gopher_stop_word_count": len(STOP_WORDS.intersection(tokens)),
    }
