"""Engine-free n-gram decontamination logic: normalised words with their character spans, 64-bit
n-gram hashes, the benchmark index, and the removal of contaminated regions from one document.

Normalisation (the same on both sides): a word is a maximal run of Unicode letters and digits
(`[^\\W_]+`), or one character of a script written without spaces (core/text.py: Chinese,
Japanese, Thai, ...), NFKC-folded and lower-cased, with apostrophes inside a word dropped
("Janet’s" = "Janet's" = "Janets"); everything else (whitespace, line breaks, punctuation, markdown, underscores)
only separates words. So a benchmark item re-cased, re-spaced, re-punctuated
or split across lines in a web page gives the same word sequence. Each word keeps its (start, end)
character span in the original text, so a match can be cut out of the document as it is.

Hashes: a word hashes to 64 bits (BLAKE2b, stable across processes and machines); an n-gram's
hash combines its n word hashes with fixed odd multipliers and a splitmix64 finaliser (numpy,
vectorised over every window of a document). The index maps n-gram hash -> (benchmark, item id);
a 64-bit collision makes at worst a false match of one n-gram, and the stage records the item and
the overlap of every match, so one can be checked.

Items shorter than n words have no n-gram and cannot be found (GPT-3's and NeMo Curator's
convention); the index counts them per benchmark as `unchecked` so the report says so.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from core.text import NO_SPACE_CLASS

# A letter or digit of a script written with spaces; a character of a script written without
# them (Chinese, Japanese, Thai, ...: core/text.py, the set MinHash and the filters use) is a word
# of its own, so a Chinese item's n-grams are n characters, not n clauses.
_SPACED = f"[^\\W_{NO_SPACE_CLASS}]"
WORD = re.compile(f"{_SPACED}+|[{NO_SPACE_CLASS}]")
# Apostrophes join, they do not split: "Janet's", "Janet’s" and "Janets" are one word.
APOSTROPHES = re.compile(f"(?<={_SPACED})['’ʼ`´](?={_SPACED})")
WORD_OR_APOS = re.compile(f"{_SPACED}+(?:['’ʼ`´]{_SPACED}+)*|[{NO_SPACE_CLASS}]")

# Fixed odd multipliers (one per position in the n-gram; n up to 32).
_rng = np.random.Generator(np.random.PCG64(0x5EED_DEC0))
_MULT = (_rng.integers(0, 2**63, size=32, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
MAX_N = len(_MULT)


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).lower() if not word.isascii() else word.lower()


def words_with_spans(text: str | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(normalised words, start offsets, end offsets) of `text`."""
    if not text:
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
    ws, st, en = [], [], []
    for m in WORD_OR_APOS.finditer(text):
        ws.append(_fold(APOSTROPHES.sub("", m.group())))
        st.append(m.start())
        en.append(m.end())
    return ws, np.asarray(st, np.int64), np.asarray(en, np.int64)


def normalised_words(text: str | None) -> list[str]:
    return [_fold(APOSTROPHES.sub("", w)) for w in WORD_OR_APOS.findall(text or "")]


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


class WordHasher:
    """Word -> uint64 with a cache (words repeat; a batch of documents shares one hasher)."""

    def __init__(self, max_cache: int = 1_000_000):
        self._cache: dict[str, int] = {}
        self._max = max_cache

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        c = self._cache
        if len(c) > self._max:
            c.clear()
        out = np.empty(len(words), np.uint64)
        for i, w in enumerate(words):
            h = c.get(w)
            if h is None:
                h = c[w] = _word_hash(w)
            out[i] = h
        return out


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """The hash of every window of `n` consecutive words (len(word_hashes) - n + 1 of them, none
    when there are fewer than n words), as uint64."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be in 1..{MAX_N}, got {n}")
    m = len(word_hashes) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64)
    acc = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):
        for i in range(n):
            acc += word_hashes[i:i + m] * _MULT[i]
        return _splitmix(acc)


def to_int64(h: np.ndarray) -> np.ndarray:
    """uint64 hashes as int64 (Spark's long), the same bits."""
    return h.view(np.int64)


# --------------------------------------------------------------------------- the benchmark index

@dataclass
class Index:
    """N-gram hashes of every registered item: parallel arrays (one row per distinct n-gram of an
    item), plus per-benchmark item counts."""
    n: int
    hashes: np.ndarray          # int64
    benchmark: np.ndarray       # object (str)
    item_id: np.ndarray         # object (str)
    item_ngrams: np.ndarray     # int32: distinct n-grams of the item
    items: dict[str, int]       # benchmark -> items read
    unchecked: dict[str, int]   # benchmark -> items shorter than n words

    def distinct_hashes(self) -> np.ndarray:
        """Sorted distinct hashes (int64): the membership set shipped to every task."""
        if getattr(self, "_distinct", None) is None:
            self._distinct = np.unique(self.hashes)
        return self._distinct

    def rows_by_hash(self) -> dict[int, list[int]]:
        """hash -> the index rows holding it (for checks outside Spark; built once)."""
        if getattr(self, "_rows", None) is None:
            rows: dict[int, list[int]] = {}
            for k, h in enumerate(self.hashes.tolist()):
                rows.setdefault(h, []).append(k)
            self._rows = rows
        return self._rows


def build_index(items: Iterable[tuple[str, str, str]], n: int) -> Index:
    """`items`: (benchmark, item_id, text) -> the n-gram index."""
    hasher = WordHasher()
    hs, bs, ids, cnt = [], [], [], []
    n_items: dict[str, int] = {}
    unchecked: dict[str, int] = {}
    for bench, item_id, text in items:
        n_items[bench] = n_items.get(bench, 0) + 1
        unchecked.setdefault(bench, 0)
        g = np.unique(ngram_hashes(hasher(normalised_words(text)), n))
        if len(g) == 0:
            unchecked[bench] += 1
            continue
        hs.append(to_int64(g))
        bs.append(np.full(len(g), bench, dtype=object))
        ids.append(np.full(len(g), item_id, dtype=object))
        cnt.append(np.full(len(g), len(g), dtype=np.int32))
    if not hs:
        return Index(n, np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, object),
                     np.zeros(0, np.int32), n_items, unchecked)
    return Index(n, np.concatenate(hs), np.concatenate(bs), np.concatenate(ids),
                 np.concatenate(cnt), n_items, unchecked)


def member_positions(text: str | None, n: int, members: np.ndarray | None,
                     hasher: WordHasher) -> tuple[np.ndarray, np.ndarray]:
    """(word positions, int64 hashes) of the n-grams of `text` that are in the sorted `members`
    array (all n-grams when `members` is None)."""
    words = normalised_words(text)
    h = to_int64(ngram_hashes(hasher(words), n))
    if members is None or len(h) == 0:
        return np.arange(len(h), dtype=np.int32), h
    i = np.searchsorted(members, h)
    i[i == len(members)] = 0
    hit = members[i] == h if len(members) else np.zeros(len(h), bool)
    return np.nonzero(hit)[0].astype(np.int32), h[hit]


# --------------------------------------------------------------------------- removal

_NO_SPACE_CHAR = re.compile(f"[{NO_SPACE_CLASS}]")


def _no_space_at(text: str, i: int) -> bool:
    """A character of a script without spaces on either side of position i: a cut there splits no
    word (each such character is a word of its own)."""
    return (i > 0 and _NO_SPACE_CHAR.match(text, i - 1) is not None) or \
        (i < len(text) and _NO_SPACE_CHAR.match(text, i) is not None)


def _widen_to_space(text: str, a: int, b: int, cap: int = 64) -> tuple[int, int]:
    stop = max(0, a - cap)
    while a > stop and not text[a - 1].isspace() and not _no_space_at(text, a):
        a -= 1
    stop = min(len(text), b + cap)
    while b < stop and not text[b].isspace() and not _no_space_at(text, b):
        b += 1
    return a, b


@dataclass(frozen=True)
class Removal:
    text: str | None            # the document after removal; None when it is dropped
    chars_removed: int
    pieces: int                 # pieces kept
    drop_reason: str | None     # None | "too_many_pieces" | "too_short"


def remove_regions(text: str, positions: Sequence[int], n: int, margin_chars: int,
                   min_piece_chars: int, max_pieces: int, min_doc_chars: int,
                   joiner: str = "\n\n") -> Removal:
    """Cut every contaminated region out of `text`: the characters from the first to the last word
    of each matched n-gram (word `positions` of the n-gram starts), widened by `margin_chars` on
    each side (and on to the next whitespace, so no word is cut in half; at most 64 characters
    further; in scripts without spaces every character boundary is a word boundary); overlapping
    regions merge. The pieces left are stripped; pieces shorter than
    `min_piece_chars` go too. The document is dropped when more than `max_pieces` pieces are left
    or the kept text is shorter than `min_doc_chars` (NeMo Curator's rule: a document that falls
    apart is not worth keeping)."""
    _, starts, ends = words_with_spans(text)
    pos = np.unique(np.asarray(positions, np.int64))
    if len(pos) == 0:
        return Removal(text, 0, 1, None)
    if pos.max() + n > len(starts):
        raise ValueError("n-gram position beyond the document's words: text changed since the "
                         "match was computed")
    lo = np.maximum(starts[pos] - margin_chars, 0)
    hi = np.minimum(ends[pos + n - 1] + margin_chars, len(text))
    regions: list[list[int]] = []
    for a, b in zip(lo.tolist(), hi.tolist()):
        a, b = _widen_to_space(text, a, b)
        if regions and a <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], b)
        else:
            regions.append([a, b])
    pieces, prev = [], 0
    for a, b in regions:
        pieces.append(text[prev:a])
        prev = b
    pieces.append(text[prev:])
    kept = [p.strip() for p in pieces]
    kept = [p for p in kept if len(p) >= max(1, min_piece_chars)]
    new = joiner.join(kept)
    removed = len(text) - sum(len(p) for p in kept)
    if len(kept) > max_pieces:
        return Removal(None, len(text), len(kept), "too_many_pieces")
    if len(new) < min_doc_chars:
        return Removal(None, len(text), len(kept), "too_short")
    return Removal(new, removed, len(kept), None)


def item_overlaps(texts: Iterable[str], index: Index) -> dict[tuple[int, str, str], float]:
    """For checks outside Spark (tests, small files): {(text number, benchmark, item id): the
    fraction of the item's n-grams found in that text}, only for pairs sharing an n-gram."""
    members = index.distinct_hashes()
    rows = index.rows_by_hash()
    hasher = WordHasher()
    out: dict[tuple[int, str, str], float] = {}
    for t_no, text in enumerate(texts):
        _, hs = member_positions(text, index.n, members, hasher)
        per_item: dict[tuple[str, str], list[int]] = {}
        for h in set(hs.tolist()):
            for k in rows[h]:
                key = (str(index.benchmark[k]), str(index.item_id[k]))
                per_item.setdefault(key, [0, int(index.item_ngrams[k])])[0] += 1
        for (b, i), (m, total) in per_item.items():
            out[(t_no, b, i)] = m / total
    return out
