"""Repetition signals, as Gopher defines them (Rae et al. 2021, appendix A, table A1) and as datatrove's
`GopherRepetitionFilter` (src/datatrove/pipeline/filters/gopher_repetition_filter.py) computes them:
the implementation FineWeb and most open pipelines ran with Gopher's thresholds.

Every character fraction is over `len(text)` (all characters, spaces and newlines included); a
document with no text gets 0.

* dup_para_frac / dup_para_char_frac: paragraphs are the pieces between runs of 2+ newlines (of the
  stripped text); a paragraph that repeats an EARLIER one counts (the first occurrence does not):
  their number over all paragraphs, their characters over the text;
* dup_line_frac / dup_line_char_frac: the same for lines (pieces between runs of newlines);
* top_{2,3,4}gram_char_frac: characters of the most frequent word n-gram (its words joined by one
  space) times its number of occurrences; ties go to the n-gram seen first;
* dup_{5..10}gram_char_frac: characters of the words of repeated n-grams, counting only the repeats:
  a scan from left to right remembers every n-gram seen; an n-gram seen before adds its words'
  characters and the scan jumps past it (so overlapping repeats are not counted twice, and the first
  occurrence never counts). Half of a document pasted twice scores ~0.5 x (word characters / text).

Words are `text.tokens_of` (punctuation marks are tokens, as in the reference tokenizer). N-grams are
compared by 64-bit hashes of word ids (numpy), not built as strings; the greedy scan is a Python loop
over those integers, O(words) per n.
"""
from __future__ import annotations

import re

import numpy as np

TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
_MUL = np.uint64(0x9E3779B97F4A7C15)
_PARA_SPLIT = re.compile(r"\n{2,}")
_LINE_SPLIT = re.compile(r"\n+")


def _repeats(items: list[str]) -> tuple[int, int]:
    """(number of items equal to an earlier item, their characters)."""
    seen: set[str] = set()
    n = chars = 0
    for it in items:
        if it in seen:
            n += 1
            chars += len(it)
        else:
            seen.add(it)
    return n, chars


def line_signals(text: str) -> dict[str, float]:
    out = {"dup_line_frac": 0.0, "dup_line_char_frac": 0.0, "dup_para_frac": 0.0, "dup_para_char_frac": 0.0}
    if not text:
        return out
    total = len(text)
    paras = _PARA_SPLIT.split(text.strip())
    pn, pc = _repeats(paras)
    lines = _LINE_SPLIT.split(text)
    ln, lc = _repeats(lines)
    out["dup_para_frac"] = pn / len(paras)
    out["dup_para_char_frac"] = pc / total
    out["dup_line_frac"] = ln / len(lines)
    out["dup_line_char_frac"] = lc / total
    return out


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash per n-gram start position (wrapping polynomial over word ids)."""
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _MUL + ids[k:len(ids) - n + 1 + k]
    return h


def _greedy_repeat_chars(h: list[int], chars: list[int], n: int) -> int:
    seen: set[int] = set()
    total = i = 0
    last = len(h)
    while i < last:
        x = h[i]
        if x in seen:
            total += chars[i]
            i += n
        else:
            seen.add(x)
            i += 1
    return total


def ngram_signals(words: list[str], text_len: int) -> dict[str, float]:
    """N-gram signals of `words` (tokens_of(text)) over `text_len` = len(text) characters."""
    out = {f"top_{n}gram_char_frac": 0.0 for n in TOP_NS}
    out.update({f"dup_{n}gram_char_frac": 0.0 for n in DUP_NS})
    L = len(words)
    if L < 2 or text_len <= 0:
        return out
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) + 1 for w in words), dtype=np.uint64, count=L)
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=L)
    clens = np.concatenate(([0], np.cumsum(lens)))
    for n in TOP_NS:
        if L < n:
            break
        h = _ngram_hashes(ids, n)
        _, first, counts = np.unique(h, return_index=True, return_counts=True)
        best = counts.max()
        cand = np.flatnonzero(counts == best)
        start = first[cand[np.argmin(first[cand])]]
        chars = clens[start + n] - clens[start] + (n - 1)   # words joined by single spaces
        out[f"top_{n}gram_char_frac"] = float(best * chars) / text_len
    for n in DUP_NS:
        if L < n:
            break
        h = _ngram_hashes(ids, n)
        if len(np.unique(h)) == len(h):
            break  # no repeated n-gram means no repeated longer one either
        gram_chars = (clens[n:] - clens[:-n]).tolist()
        out[f"dup_{n}gram_char_frac"] = _greedy_repeat_chars(h.tolist(), gram_chars, n) / text_len
    return out
