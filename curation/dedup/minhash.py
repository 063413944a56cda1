"""Vectorised MinHash signatures over word n-gram shingles, computed for a whole batch at once.

The pure-Python way (datasketch's `MinHash.update_batch`) hashes every shingle with SHA-1 in a
Python loop and permutes one document at a time. Here a batch of documents goes through a few
numpy operations:

1. words: the batch is lower-cased by Arrow (`utf8_lower`) and handled as ONE uint8 array of
   UTF-8 bytes; word boundaries come from a byte class table (no per-document Python loop); in
   scripts written without spaces (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) each character
   is a word, so shingles are character n-grams there (a clause-long "word" made a 10 % edit in
   Chinese cost far more Jaccard than the same edit in English);
2. word hashes: a polynomial hash of every word's bytes from one prefix sum over the batch
   (position independent through the inverse base), then mixed;
3. shingle hashes: the hashes of n consecutive words combined with fixed odd multipliers and a
   splitmix64 finaliser, over the concatenated batch with shifted views (a rolling window), then
   shingles that cross a document boundary are masked out;
4. permutations: `num_perm` hash functions `h_j(x) = (a_j * x + b_j) mod 2^32` (a_j odd, so each
   is a permutation of the 32-bit space; x = the high 32 bits of the shingle hash) applied to all
   shingles as one `(num_perm x shingles)` wrapping uint32 operation, chunked so memory stays
   bounded;
5. signature: the minimum per document and permutation with `np.minimum.reduceat`.

A document with fewer than n words contributes one shingle made of all its words. A document with
no words at all has no shingles: its signature is all `EMPTY` (2^32 - 1) and `has_shingles` is
False, so the LSH step never makes it a candidate (empty documents are not near-duplicates of each
other; exact dedup deals with them).

The estimator: the fraction of equal signature positions estimates the Jaccard similarity of the two
documents' shingle sets (checked against exact Jaccard and datasketch in tests and benchmarks).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.text import NO_SPACE_SCRIPTS

EMPTY = np.uint32(0xFFFFFFFF)
# Fixed odd multipliers that combine n word hashes into one shingle hash (order sensitive).
_SHINGLE_MULT = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                          0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                          0x94D049BB133111EB, 0xBF58476D1CE4E5B9, 0x2545F4914F6CDD1D,
                          0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63, 0x9FB21C651E98DF25,
                          0xA0761D6478BD642F], dtype=np.uint64)
MAX_NGRAM = len(_SHINGLE_MULT)

# Word characters, decided per UTF-8 byte: ASCII letters, digits and "_", and every byte of a
# multi-byte character (letters of other scripts), except the common Unicode punctuation and spaces
# masked in `_word_mask` (U+2000..U+206F: dashes, curly quotes, ellipsis; and NBSP, guillemets,
# inverted marks, middle dot).
_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _WORD_BYTE[_c] = True
_WORD_BYTE[0x80:] = True
# Code points of scripts written without spaces (core/text.py, shared with the filters and
# decontamination), all 3-byte UTF-8 sequences: Thai, Lao, Myanmar, Khmer, Hiragana/Katakana,
# CJK ext. A, CJK unified, CJK compatibility ideographs.
_NO_SPACE_CP = NO_SPACE_SCRIPTS
_LATIN1_PUNCT = np.zeros(256, dtype=bool)
_LATIN1_PUNCT[[0xA0, 0xA1, 0xAB, 0xB7, 0xBB, 0xBF]] = True

# Polynomial hash of a word's bytes, mod 2^64, position independent through the inverse base.
_BASE = 0x100000001B3                      # odd, so invertible mod 2^64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_BYTE_VALUE = np.arange(1, 257, dtype=np.uint64)   # byte + 1, so zero bytes still count
_pow_cache: dict[str, np.ndarray] = {}


POW_KEEP_ELEMS = 1 << 23    # powers kept for reuse up to this length (2 x 64 MiB)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """B^j and B^-j (mod 2^64) for j < n, cached and grown geometrically up to POW_KEEP_ELEMS;
    a longer request (one very long text) is computed for that call and not kept."""
    have = _pow_cache.get("fwd")
    if n > POW_KEEP_ELEMS:
        fwd = np.full(n, _BASE, dtype=np.uint64)
        fwd[0] = 1
        inv = np.full(n, _BASE_INV, dtype=np.uint64)
        inv[0] = 1
        return np.cumprod(fwd), np.cumprod(inv)
    if have is None or len(have) < n:
        m = min(POW_KEEP_ELEMS, max(n, 2 * (0 if have is None else len(have)), 1 << 16))
        fwd = np.full(m, _BASE, dtype=np.uint64)
        fwd[0] = 1
        inv = np.full(m, _BASE_INV, dtype=np.uint64)
        inv[0] = 1
        _pow_cache["fwd"], _pow_cache["inv"] = np.cumprod(fwd), np.cumprod(inv)
    return _pow_cache["fwd"], _pow_cache["inv"]


_scratch_cache: dict[str, np.ndarray] = {}


SCRATCH_KEEP_ELEMS = 1 << 22     # work arrays up to this size are kept for reuse (32 MiB of uint64)


def _scratch(name: str, n: int, dtype) -> np.ndarray:
    """A reusable work array of at least `n` elements (grown geometrically up to
    SCRATCH_KEEP_ELEMS). A larger request (one batch of very long texts) gets a fresh array that
    is not kept: a Python worker does not hold the largest batch's buffers for its whole life."""
    if n > SCRATCH_KEEP_ELEMS:
        return np.empty(n, dtype=dtype)
    buf = _scratch_cache.get(name)
    if buf is None or len(buf) < n or buf.dtype != dtype:
        size = min(SCRATCH_KEEP_ELEMS, max(n, 1 << 16, 0 if buf is None else 2 * len(buf)))
        buf = _scratch_cache[name] = np.empty(size, dtype=dtype)
    return buf[:n]


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic), spreads bits evenly."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _lower_utf8(texts) -> tuple[np.ndarray, np.ndarray]:
    """Lower-cased UTF-8 bytes of a batch as one uint8 array, and int64 offsets (n + 1)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.large_string())
    if pa.types.is_string(texts.type):
        texts = texts.cast(pa.large_string())
    low = pc.utf8_lower(texts.fill_null(""))
    low = pa.concat_arrays([low]) if low.offset else low       # zero-offset copy if sliced
    n = len(low)
    offsets = np.frombuffer(low.buffers()[1], dtype=np.int64, count=n + 1)
    data_buf = low.buffers()[2]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
            else np.zeros(0, dtype=np.uint8))
    return data, offsets


def _word_spans(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte positions of every word in the batch (words never cross documents)."""
    total = int(offsets[-1])
    data = data[:total]
    if total == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    w = _WORD_BYTE[data]
    # mask U+2000..U+206F (E2 80 xx, E2 81 xx) and Latin-1 punctuation (C2 A0, C2 AB, ...)
    e2 = np.flatnonzero((data[:-2] == 0xE2) & ((data[1:-1] == 0x80) | (data[1:-1] == 0x81)))
    for k in range(3):
        w[e2 + k] = False
    c2 = np.flatnonzero((data[:-1] == 0xC2) & _LATIN1_PUNCT[data[1:]])
    w[c2] = False
    w[c2 + 1] = False
    boundary = np.zeros(total + 1, dtype=bool)      # True at each document start
    boundary[offsets[:-1][offsets[:-1] < total]] = True
    # scripts written without spaces: every character is a word of its own (as the filters'
    # text.words_of does); their characters are the 3-byte UTF-8 sequences decoded below
    lead = np.flatnonzero((data[:-2] >= 0xE0) & (data[:-2] <= 0xEF)) if total >= 3 else np.zeros(0, np.int64)
    if len(lead):
        cp = ((data[lead].astype(np.int64) & 0x0F) << 12) | ((data[lead + 1].astype(np.int64) & 0x3F) << 6) \
            | (data[lead + 2].astype(np.int64) & 0x3F)
        ns = np.zeros(len(cp), dtype=bool)
        for lo, hi in _NO_SPACE_CP:
            ns |= (cp >= lo) & (cp <= hi)
        # CJK symbols and punctuation (U+3000..U+303F: 、。「」) and fullwidth punctuation are not words
        punct = ((cp >= 0x3000) & (cp <= 0x303F)) | ((cp >= 0xFF00) & (cp <= 0xFF0F)) \
            | ((cp >= 0xFF1A) & (cp <= 0xFF20)) | ((cp >= 0xFF3B) & (cp <= 0xFF40)) \
            | ((cp >= 0xFF5B) & (cp <= 0xFF65))
        for k in range(3):
            w[lead[punct] + k] = False
        single = lead[ns]
        boundary[single] = True                     # a word starts at the character ...
        boundary[single + 3] = True                 # ... and the next one after it
    starts_m = w.copy()
    starts_m[1:] &= ~w[:-1] | boundary[1:total]
    ends_m = w.copy()
    ends_m[:-1] &= ~w[1:] | boundary[1:total]
    return np.flatnonzero(starts_m), np.flatnonzero(ends_m) + 1


def tokenize_batch(texts) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hashes of all words of a batch of texts, and the number of words per text.

    Words are lower-cased runs of word characters (see `_WORD_BYTE`); the hash of a word is a
    polynomial hash of its bytes computed for all words at once from prefix sums, then mixed.
    """
    data, offsets = _lower_utf8(texts)
    starts, ends = _word_spans(data, offsets)
    n_docs = len(offsets) - 1
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(n_docs, dtype=np.int64)
    total = int(offsets[-1])
    fwd, inv = _powers(total + 1)
    prefix = _scratch("prefix", total + 1, np.uint64)        # reused: no page faults per batch
    prefix[0] = 0
    body = prefix[1:]
    np.take(_BYTE_VALUE, data[:total], out=body)
    np.multiply(body, fwd[:total], out=body)
    np.cumsum(body, out=body)
    raw = (prefix[ends] - prefix[starts]) * inv[starts]
    wh = _mix64(raw + (ends - starts).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    counts = np.diff(np.searchsorted(starts, offsets)).astype(np.int64)
    return wh, counts


def words(text: str | None) -> list[str]:
    """The tokens of one text, exactly as the batch tokenizer sees them (for references and tests)."""
    data, offsets = _lower_utf8([text or ""])
    starts, ends = _word_spans(data, offsets)
    raw = data.tobytes()
    return [raw[s:e].decode("utf-8", "replace") for s, e in zip(starts.tolist(), ends.tolist())]


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The `num_perm` hash functions `h_j(x) = (a_j x + b_j) mod 2^32`: odd uint32 multipliers `a`
    and uint32 offsets `b`, drawn from `seed`. Each `h_j` is a permutation of the 32-bit space."""
    if num_perm < 1:
        raise ValueError("num_perm must be >= 1")
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 2**32, size=num_perm, dtype=np.uint32, endpoint=False) | np.uint32(1)
    b = rng.integers(0, 2**32, size=num_perm, dtype=np.uint32, endpoint=False)
    return a, b


def shingles_from_words(word_hashes: np.ndarray, word_counts: np.ndarray, ngram: int = 5
                        ) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hashes of the word n-grams of each document, and per-document shingle counts.

    The shingles of document i are `hashes[offsets[i]:offsets[i] + counts[i]]` with
    `offsets = cumsum(counts) - counts`.
    """
    if not 1 <= ngram <= MAX_NGRAM:
        raise ValueError(f"ngram must be in 1..{MAX_NGRAM}")
    lens = np.asarray(word_counts, dtype=np.int64)
    total = int(lens.sum())
    counts = np.where(lens >= ngram, lens - ngram + 1, np.minimum(lens, 1))
    if total == 0:
        return np.zeros(0, dtype=np.uint64), counts
    wh = np.asarray(word_hashes, dtype=np.uint64)
    doc_end = np.cumsum(lens)               # exclusive end of each document's words
    doc_start = doc_end - lens
    # Rolling window: shingle at i combines wh[i .. i+ngram-1] (zero padding past the end).
    padded = np.concatenate([wh, np.zeros(ngram - 1, dtype=np.uint64)])
    acc = np.zeros(total, dtype=np.uint64)
    for k in range(ngram):
        acc += padded[k:k + total] * _SHINGLE_MULT[k]
    # A short document's one shingle must not take words of the next document: recompute it.
    short_docs = np.flatnonzero((lens > 0) & (lens < ngram))
    if len(short_docs):
        s, ln = doc_start[short_docs], lens[short_docs]
        acc_s = np.zeros(len(s), dtype=np.uint64)
        for k in range(ngram - 1):
            sel = ln > k
            acc_s[sel] += wh[s[sel] + k] * _SHINGLE_MULT[k]
        acc[s] = acc_s
    sh = _mix64(acc)
    # Valid if the window ends inside its document; a short document (1..ngram-1 words) keeps
    # exactly its first position: the one shingle of all its words.
    doc_of = np.repeat(np.arange(len(lens)), lens)
    idx = np.arange(total)
    valid = idx + (ngram - 1) < doc_end[doc_of]
    valid |= (lens[doc_of] < ngram) & (idx == doc_start[doc_of])
    return sh[valid], counts


def shingle_hashes(texts, ngram: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a batch of texts and per-text shingle counts."""
    wh, wc = tokenize_batch(texts)
    return shingles_from_words(wh, wc, ngram)


_buf_cache: dict[tuple, np.ndarray] = {}


def signatures_from_shingles(hashes: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray,
                             chunk_elems: int = 1 << 23) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash signatures from concatenated shingle hashes.

    A shingle enters as the high 32 bits of its 64-bit hash. All permutations are applied to a
    chunk of shingles as one `(num_perm x shingles)` uint32 operation (wrapping multiply-add) into
    a reused buffer of `chunk_elems` elements (32 MiB by default), then reduced per document with
    `np.minimum.reduceat`. Memory is bounded by the buffer, not by the batch.
    """
    n, p = len(counts), len(a)
    out = np.full((n, p), EMPTY, dtype=np.uint32)
    if n == 0:
        return out
    counts = np.asarray(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    x32 = (np.asarray(hashes, dtype=np.uint64) >> np.uint64(32)).astype(np.uint32)
    width = max(1, chunk_elems // p)
    a_col = np.asarray(a, dtype=np.uint32)[:, None]
    b_col = np.asarray(b, dtype=np.uint32)[:, None]
    key = (p, width)
    buf = _buf_cache.get(key)
    if buf is None:
        _buf_cache.clear()
        buf = _buf_cache[key] = np.empty(key, dtype=np.uint32)
    i = 0
    while i < n:
        # documents [i, j) whose shingles fit in the buffer
        j = int(np.searchsorted(offsets, offsets[i] + width, side="right")) - 1
        j = min(j, n)
        if j <= i:
            # one document with more shingles than the buffer holds: its slices in turn, the
            # minimum kept across them (the buffer never grows past `chunk_elems`)
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            acc = out[i]
            for s0 in range(lo, hi, width):
                w = min(width, hi - s0)
                m = buf[:, :w]
                np.multiply(a_col, x32[s0:s0 + w][None, :], out=m)
                np.add(m, b_col, out=m)
                np.minimum(acc, m.min(axis=1), out=acc)
            i += 1
            continue
        lo, hi = int(offsets[i]), int(offsets[j])
        if hi > lo:
            w = hi - lo
            m = buf[:, :w]
            np.multiply(a_col, x32[lo:hi][None, :], out=m)
            np.add(m, b_col, out=m)
            c = counts[i:j]
            nz = np.flatnonzero(c > 0)
            starts = (offsets[i:j] - lo)[nz]
            out[i + nz] = np.minimum.reduceat(m, starts, axis=1).T
        i = j
    return out


def signatures(texts: Sequence[str | None], num_perm: int = 112, ngram: int = 5, seed: int = 1,
               perms: tuple[np.ndarray, np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of a batch of texts: `(sig uint32 (n, num_perm), has_shingles bool (n,))`."""
    a, b = perms if perms is not None else permutations(num_perm, seed)
    hashes, counts = shingle_hashes(texts, ngram)
    return signatures_from_shingles(hashes, counts, a, b), counts > 0


def estimate_jaccard(sig1: np.ndarray, sig2: np.ndarray) -> float:
    """Fraction of equal positions of two signatures: an unbiased estimate of their Jaccard."""
    return float(np.mean(np.asarray(sig1) == np.asarray(sig2)))


def shingle_set(text: str | None, ngram: int = 5) -> set[int]:
    """The set of shingle hashes of one text (the reference for exact Jaccard)."""
    h, _ = shingle_hashes([text or ""], ngram)
    return set(h.tolist())


def jaccard(text1: str | None, text2: str | None, ngram: int = 5) -> float:
    """Exact Jaccard similarity of two texts' word n-gram shingle sets (0.0 if both are empty)."""
    s1, s2 = shingle_set(text1, ngram), shingle_set(text2, ngram)
    if not s1 and not s2:
        return 0.0
    return len(s1 & s2) / len(s1 | s2)
