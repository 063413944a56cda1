"""Line-level deduplication after ccNet and Llama 3: lines repeated across many documents
(navigation, cookie banners, share buttons, legal footers) are removed from every document that
has them.

A line is normalised (strip, lower case, every digit to 0, punctuation and symbols dropped,
whitespace collapsed) and hashed to 64 bits; lines that normalise to nothing are never counted or
removed (they are layout). The Spark stage counts, within each bucket of documents, how many
documents contain each line hash, and removes the lines whose count is above the threshold; the
functions here do the per-document work on a batch.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"[^\S\n]+")


def normalize_line(line: str) -> str:
    """ccNet normalisation of one line."""
    s = _PUNCT.sub("", _DIGIT.sub("0", line.lower()))
    return _SPACE.sub(" ", s).strip()


def normalized_lines(text: str | None) -> list[str]:
    """The normalised form of every line of `text` (split on "\\n"), aligned with `text.split("\\n")`.

    The whole text is normalised with three regex passes, then split, which is much faster than a
    call per line and gives the same result (newlines are never touched by the passes).
    """
    if not text:
        return [""]
    s = _SPACE.sub(" ", _PUNCT.sub("", _DIGIT.sub("0", text.lower())))
    return [ln.strip() for ln in s.split("\n")]


def _hash_strings(values: Sequence[str]) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(values, dtype=object)
    return pd.util.hash_array(arr, categorize=False).view(np.int64)


def line_hashes(text: str | None) -> np.ndarray:
    """int64 hash per line of `text` (aligned with `text.split("\\n")`); 0 for lines that normalise
    to nothing (0 is never a counted hash)."""
    norm = normalized_lines(text)
    h = _hash_strings(norm)
    empty = np.fromiter((not s for s in norm), dtype=bool, count=len(norm))
    h[empty] = 0
    h[~empty & (h == 0)] = 1      # keep 0 free as the "not counted" marker
    return h


def distinct_line_hashes(texts: Iterable[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """For a batch: (doc index, line hash) for each distinct counted line of each document."""
    doc_idx, hashes = [], []
    for i, t in enumerate(texts):
        h = np.unique(line_hashes(t))
        h = h[h != 0]
        doc_idx.append(np.full(len(h), i, dtype=np.int64))
        hashes.append(h)
    if not hashes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(doc_idx), np.concatenate(hashes)


def remove_lines(text: str | None, bad: Iterable[int]) -> tuple[str, int]:
    """`text` without its lines whose hash is in `bad`, and the number of lines removed."""
    if not text:
        return text or "", 0
    bad_arr = np.fromiter(bad, dtype=np.int64)
    if not len(bad_arr):
        return text, 0
    lines = text.split("\n")
    drop = np.isin(line_hashes(text), bad_arr)
    n = int(drop.sum())
    if not n:
        return text, 0
    kept = [ln for ln, d in zip(lines, drop.tolist()) if not d]
    return "\n".join(kept).strip("\n"), n
