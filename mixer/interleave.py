"""Row interleaving: the next row comes from the source furthest behind its target.

With integer row targets `rows[s]` summing to `N`, after `i` rows source `s` should have had
`rows[s] * i / N`. Row `i` goes to the source with the largest deficit `rows[s] * (i + 1) -
count[s] * N` (exact integers; ties to the lowest source index), among sources with rows left.
Every prefix of the stream then stays within one row of each source's target, and the stream ends
with exactly `rows[s]` rows of each source (Megatron's blended dataset, made exact).
"""
from __future__ import annotations

import numpy as np


def interleave(rows: list[int]) -> np.ndarray:
    """The source index of every row of the stream, in order."""
    n = int(sum(rows))
    out = np.empty(n, dtype=np.int32)
    active = [s for s, r in enumerate(rows) if r > 0]
    count = [0] * len(rows)
    for i in range(n):
        best, best_d = -1, None
        for s in active:
            d = rows[s] * (i + 1) - count[s] * n
            if best_d is None or d > best_d:
                best, best_d = s, d
        out[i] = best
        count[best] += 1
        if count[best] == rows[best]:
            active.remove(best)
    return out


def prefix_deviation(order: np.ndarray, rows: list[int]) -> float:
    """Largest |count_s(prefix) - target_s(prefix)| over all prefixes and sources, in rows."""
    n = len(order)
    if n == 0:
        return 0.0
    worst = 0.0
    i = np.arange(1, n + 1)
    for s, r in enumerate(rows):
        c = np.cumsum(order == s)
        worst = max(worst, float(np.max(np.abs(c - r * i / n))))
    return worst


def window_deviation(order: np.ndarray, rows: list[int], window: int) -> dict:
    """Per source: largest |share in a window of `window` consecutive rows - target share|."""
    n = len(order)
    w = min(window, n)
    out = {}
    for s, r in enumerate(rows):
        if n == 0:
            out[s] = 0.0
            continue
        c = np.concatenate([[0], np.cumsum(order == s)])
        counts = c[w:] - c[:-w]
        out[s] = float(np.max(np.abs(counts / w - r / n)))
    return out
