"""Packing documents into rows of `seq_len` tokens, per source.

A source's token stream is its documents in order (see `order`), each followed by one end-of-text
token, pass after pass. Row `r` of the source is the stream's tokens `[r*L, (r+1)*L)`. A document
occurrence that starts at stream offset `o` and contributes `take` tokens (the document plus its
EOT, cut only where the source's target ends) falls into rows `o // L .. (o+take-1) // L`: one piece
per row. A piece starts a document (or continues one) at its position within the row; those
positions are the row's document boundaries (`doc_starts`, first entry always 0).

Everything here is a pure function of (offset, tokens), so packing is partition-independent.
"""
from __future__ import annotations

import numpy as np


def doc_pieces(offset: int, take: int, tokens: np.ndarray, eot: int, seq_len: int):
    """Yield (row, pos_in_row, piece) for one document occurrence (tokens without EOT)."""
    if take <= 0:
        return
    seq = np.empty(len(tokens) + 1, dtype="<u4")
    seq[:-1] = tokens
    seq[-1] = eot
    seq = seq[:take]
    end = offset + take
    r = offset // seq_len
    while r * seq_len < end:
        lo = max(offset, r * seq_len)
        hi = min(end, (r + 1) * seq_len)
        yield r, lo - r * seq_len, seq[lo - offset:hi - offset]
        r += 1


def assemble_row(pieces: list[tuple[int, bytes]], seq_len: int) -> tuple[bytes, list[int]]:
    """Join (pos, piece-bytes) pieces of one row into its bytes and document starts."""
    pieces = sorted(pieces, key=lambda p: p[0])
    starts, pos = [], 0
    for p, b in pieces:
        if p != pos:
            raise ValueError(f"row pieces leave a gap or overlap at position {pos} (next at {p})")
        starts.append(p)
        pos += len(b) // 4
    if pos != seq_len:
        raise ValueError(f"row holds {pos} tokens, expected {seq_len}")
    return b"".join(b for _, b in pieces), starts
