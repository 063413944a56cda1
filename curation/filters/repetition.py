"""Repetition signals (Gopher, Rae et al. 2021, table A1; Llama 3's duplicated n-gram coverage).

All fractions are in [0, 1]; a document with no lines/words gets 0.

* dup_line_frac / dup_line_char_frac: lines that repeat an earlier line of the document (count,
  and their characters over all line characters);
* dup_para_frac / dup_para_char_frac: the same for paragraphs;
* top_{2,3,4}gram_char_frac: characters covered by every occurrence of the most frequent word
  n-gram (occurring at least twice) over all word characters;
* dup_{5..10}gram_char_frac: characters of the words covered by any n-gram that occurs more than
  once, over all word characters (each word counted once). This is the signal that catches long
  unique log or error lines repeated with small variations, which line dedup misses.

N-grams are hashed on integer word ids with numpy (one vectorised pass per n), not built as tuples.
"""
from __future__ import annotations

import numpy as np

from curation.filters.text import lines_of, paragraphs_of

TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
_MUL = np.uint64(0x9E3779B97F4A7C15)


def _dup_frac(items: list[str]) -> tuple[float, float]:
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_n = dup_chars = total_chars = 0
    for it in items:
        total_chars += len(it)
        if it in seen:
            dup_n += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    return dup_n / len(items), (dup_chars / total_chars if total_chars else 0.0)


def line_signals(text: str) -> dict[str, float]:
    lf, lcf = _dup_frac(lines_of(text))
    pf, pcf = _dup_frac(paragraphs_of(text))
    return {"dup_line_frac": lf, "dup_line_char_frac": lcf,
            "dup_para_frac": pf, "dup_para_char_frac": pcf}


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash per n-gram start position (wrapping polynomial over word ids)."""
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _MUL + ids[k:len(ids) - n + 1 + k]
    return h


def ngram_signals(words: list[str]) -> dict[str, float]:
    out = {f"top_{n}gram_char_frac": 0.0 for n in TOP_NS}
    out.update({f"dup_{n}gram_char_frac": 0.0 for n in DUP_NS})
    if len(words) < 2:
        return out
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) + 1 for w in words), dtype=np.uint64,
                      count=len(words))
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    total = float(lens.sum())
    if total == 0:
        return out
    clens = np.concatenate(([0], np.cumsum(lens)))
    L = len(words)
    for n in TOP_NS:
        if L < n:
            break
        h = _ngram_hashes(ids, n)
        uniq, first, inv, counts = np.unique(h, return_index=True, return_inverse=True,
                                             return_counts=True)
        best = counts.max()
        if best < 2:
            continue
        # ties: the n-gram that occurs first in the document (stable)
        cand = np.flatnonzero(counts == best)
        j = cand[np.argmin(first[cand])]
        start = first[j]
        chars = clens[start + n] - clens[start]
        out[f"top_{n}gram_char_frac"] = min(1.0, float(best * chars) / total)
    for n in DUP_NS:
        if L < n:
            break
        h = _ngram_hashes(ids, n)
        _, inv, counts = np.unique(h, return_inverse=True, return_counts=True)
        starts = np.flatnonzero(counts[inv] > 1)
        if len(starts) == 0:
            break  # no repeated n-gram means no repeated longer one either
        diff = np.zeros(L + 1, dtype=np.int64)
        np.add.at(diff, starts, 1)
        np.add.at(diff, starts + n, -1)
        covered = np.cumsum(diff[:L]) > 0
        out[f"dup_{n}gram_char_frac"] = float(lens[covered].sum()) / total
    return out
