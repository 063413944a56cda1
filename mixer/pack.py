"""Packing documents into rows of `seq_len` tokens, per source.

A source's token stream is its documents in order (see `order`), each followed by one end-of-text
token, pass after pass. Row `r` of the source is the stream's tokens `[r*L, (r+1)*L)`. A document
occurrence that starts at stream offset `o` and contributes `take` tokens (the document plus its
EOT, cut only where the source's target ends) falls into rows `o // L .. (o+take-1) // L`: one piece
per row. A piece starts a document (or continues one) at its position within the row; those
positions are the row's document boundaries (`doc_starts`, first entry always 0).

Both steps are vectorised numpy over many occurrences / pieces at once:

* `cut_pieces(offset, take, n)` -> one entry per (occurrence, row it touches): the row, the
  position in the row, where the piece starts within the document, how many of the document's own
  tokens it holds and whether it ends with the EOT.
* `fill_rows(...)` copies the pieces of a block of consecutive rows into one buffer, checking that
  they tile every row exactly, and returns the rows' document starts.

Everything here is a pure function of (offset, tokens), so packing is partition-independent.
"""
from __future__ import annotations

import numpy as np


def cut_pieces(offset, take, n, seq_len: int) -> dict[str, np.ndarray]:
    """Pieces of document occurrences. `offset[i]`: the occurrence's start in its source's stream;
    `take[i]`: tokens it contributes (<= n[i] + 1, the document and its EOT); `n[i]`: the
    document's own tokens. Returns arrays with one entry per piece, in occurrence order:
    `occ` (index of the occurrence), `row` (row of the source's stream), `pos` (position in the
    row), `doc_pos` (first token of the piece within the document), `ntok` (document tokens in
    the piece), `eot` (the piece ends with the document's EOT) and `first` (the occurrence's
    first piece)."""
    offset = np.asarray(offset, np.int64)
    take = np.asarray(take, np.int64)
    n = np.asarray(n, np.int64)
    live = take > 0
    r0 = offset // seq_len
    r1 = np.where(live, (offset + take - 1) // seq_len, r0 - 1)
    counts = (r1 - r0 + 1).astype(np.int64)
    occ = np.repeat(np.arange(len(offset), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    row = r0[occ] + (np.arange(len(occ), dtype=np.int64) - starts[occ])
    lo = np.maximum(offset[occ], row * seq_len)
    hi = np.minimum(offset[occ] + take[occ], (row + 1) * seq_len)
    a, b = lo - offset[occ], hi - offset[occ]   # the piece is [a, b) of document + EOT
    return {"occ": occ, "row": row, "pos": (lo - row * seq_len).astype(np.int32),
            "doc_pos": a, "ntok": (np.minimum(b, n[occ]) - a).astype(np.int32),
            "eot": b > n[occ], "first": a == 0}


def fill_rows(n_rows: int, seq_len: int, row, pos, ntok, eot, copy, eot_id: int):
    """Assemble rows `0 .. n_rows-1` from pieces (`row`, `pos`, `ntok`, `eot` per piece, any
    order). `copy(i, dst)` writes the `ntok[i]` document tokens of piece `i` into the 1-d view
    `dst`. Raises ValueError unless the pieces tile every row exactly. Returns the tokens
    (n_rows * seq_len uint32), the number of document starts per row and the starts."""
    row = np.asarray(row, np.int64)
    pos = np.asarray(pos, np.int64)
    ntok = np.asarray(ntok, np.int64)
    eot = np.asarray(eot, bool)
    o = np.lexsort((pos, row))
    row, pos, ntok, eot = row[o], pos[o], ntok[o], eot[o]
    length = ntok + eot
    if len(row) == 0 and n_rows:
        raise ValueError(f"no pieces for {n_rows} rows")
    if len(row):
        new = np.ones(len(row), bool)
        new[1:] = row[1:] != row[:-1]
        expect = np.where(new, 0, np.concatenate([[0], pos[:-1] + length[:-1]]))
        bad = np.flatnonzero((pos != expect) | (length <= 0))
        if len(bad):
            i = bad[0]
            raise ValueError(f"row {row[i]}: pieces leave a gap or overlap at position "
                             f"{expect[i]} (next piece at {pos[i]})")
        last = np.append(new[1:], True)
        ends = pos[last] + length[last]
        have = row[last]
        if len(have) != n_rows or (have != np.arange(n_rows)).any():
            missing = sorted(set(range(n_rows)) - set(have.tolist()))[:5]
            raise ValueError(f"rows without pieces: {missing} (or rows out of range)")
        short = np.flatnonzero(ends != seq_len)
        if len(short):
            raise ValueError(f"row {have[short[0]]} holds {ends[short[0]]} tokens, "
                             f"expected {seq_len}")
    buf = np.empty(n_rows * seq_len, dtype="<u4")
    dst = row * seq_len + pos
    for j in range(len(row)):
        d, k = int(dst[j]), int(ntok[j])
        if k:
            copy(int(o[j]), buf[d:d + k])
        if eot[j]:
            buf[d + k] = eot_id
    per_row = np.bincount(row, minlength=n_rows).astype(np.int32) if n_rows else \
        np.zeros(0, np.int32)
    return buf, per_row, pos.astype(np.int32)
