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


# The ASCII fast path of the same normalisation, with bytes.translate (one C pass, no regex):
# digits -> "0"; whitespace other than "\n" (what `\s` matches in ASCII: \t \r \v \f \x1c-\x1f
# and space) -> space; every other non-alphanumeric byte, "_" included, deleted.
_ASCII_WS = b"\t\r\x0b\x0c\x1c\x1d\x1e\x1f "
_ASCII_TABLE = bytes((0x30 if 0x30 <= c <= 0x39 else 0x20 if bytes([c]) in _ASCII_WS else c)
                     for c in range(256))
_ASCII_DELETE = bytes(c for c in range(128)
                      if not (bytes([c]).isalnum() or bytes([c]) in _ASCII_WS or c == 0x0A))


def normalized_lines_batch(texts: Sequence[str]) -> list[str]:
    """`normalized_lines` of every text of a batch, concatenated: the ASCII texts (most of a web
    crawl) in one bytes.translate pass over their joined bytes, the others with the regexes."""
    out: list[str] = []
    run: list[str] = []

    def flush_ascii():
        if run:
            b = "\n".join(run).encode("ascii").lower().translate(_ASCII_TABLE, _ASCII_DELETE)
            out.extend(" ".join(ln.split()) for ln in b.decode("ascii").split("\n"))
            run.clear()
    for t in texts:
        if t.isascii():
            run.append(t)
        else:
            flush_ascii()
            out.extend(normalized_lines(t) if t else [""])
    flush_ascii()
    return out


def _hash_strings(values: Sequence[str]) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(values, dtype=object)
    return pd.util.hash_array(arr, categorize=False).view(np.int64)


def line_hashes(text: str | None) -> np.ndarray:
    """int64 hash per line of `text` (aligned with `text.split("\\n")`); 0 for lines that normalise
    to nothing (0 is never a counted hash)."""
    return _hash_normalized(normalized_lines(text))


def _hash_normalized(norm: list[str]) -> np.ndarray:
    h = _hash_strings(norm)
    empty = np.fromiter((not s for s in norm), dtype=bool, count=len(norm))
    h[empty] = 0
    h[~empty & (h == 0)] = 1      # keep 0 free as the "not counted" marker
    return h


def batch_line_hashes(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Line hashes of a whole batch at once: (hashes of every line of every text, in order, as
    `line_hashes` gives them; lines per text). Equal to concatenating `line_hashes(t)` per text,
    but normalised by `normalized_lines_batch` and hashed with one `hash_array` call."""
    texts = [t or "" for t in texts]
    if not texts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_lines = np.fromiter((t.count("\n") + 1 for t in texts), dtype=np.int64, count=len(texts))
    norm = normalized_lines_batch(texts)
    if len(norm) != int(n_lines.sum()):        # cannot happen (no pass adds or drops "\n"); safe path
        return np.concatenate([line_hashes(t) for t in texts]), n_lines
    return _hash_normalized(norm), n_lines


def distinct_line_hashes(texts: Iterable[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """For a batch: (doc index, line hash) for each distinct counted line of each document, ordered
    by document, then hash."""
    h, n_lines = batch_line_hashes(list(texts))
    if not len(h):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    doc = np.repeat(np.arange(len(n_lines), dtype=np.int64), n_lines)
    keep = h != 0
    doc, h = doc[keep], h[keep]
    order = np.lexsort((h, doc))
    doc, h = doc[order], h[order]
    first = np.ones(len(h), dtype=bool)
    first[1:] = (doc[1:] != doc[:-1]) | (h[1:] != h[:-1])
    return doc[first], h[first]


def remove_lines_batch(texts: Sequence[str | None], bads: Sequence[Iterable[int] | None]
                       ) -> tuple[list[str], np.ndarray]:
    """`remove_lines` for a batch: texts without their lines whose hash is in the text's own bad
    list, and the number of lines removed per text (hashing done once for the batch)."""
    texts = list(texts)
    out, removed = list(texts), np.zeros(len(texts), dtype=np.int64)
    todo = [i for i, b in enumerate(bads) if b is not None and len(b) and texts[i]]
    if not todo:
        return [t or "" for t in out], removed
    h, n_lines = batch_line_hashes([texts[i] for i in todo])
    ends = np.cumsum(n_lines)
    for k, i in enumerate(todo):
        hs = h[ends[k] - n_lines[k]:ends[k]]
        drop = np.isin(hs, np.fromiter(bads[i], dtype=np.int64))
        n = int(drop.sum())
        if n:
            lines = texts[i].split("\n")
            out[i] = "\n".join([ln for ln, d in zip(lines, drop.tolist()) if not d]).strip("\n")
            removed[i] = n
    return [t or "" for t in out], removed


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
