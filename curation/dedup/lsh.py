"""LSH banding: a signature of `bands x rows` values becomes `bands` bucket keys; two documents
are candidates when they share a key in at least one band. The probability that a pair at Jaccard
`j` becomes a candidate is `1 - (1 - j^rows)^bands` (the S-curve; 14 x 8 puts its threshold near
0.72 and catches a pair at 0.8 92% of the time).
"""
from __future__ import annotations

import numpy as np

from curation.dedup.minhash import _mix64

# Odd multipliers combining the rows of a band (one per row position, up to 64 rows).
_ROW_MULT = (np.random.Generator(np.random.PCG64(20240601))
             .integers(0, 2**64, size=64, dtype=np.uint64, endpoint=False) | np.uint64(1))


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) int64 bucket keys from (n_docs, >= bands*rows) uint32 signatures."""
    if bands < 1 or rows < 1 or rows > len(_ROW_MULT):
        raise ValueError(f"bands and rows must be >= 1 and rows <= {len(_ROW_MULT)}")
    if sig.shape[1] < bands * rows:
        raise ValueError(f"signature has {sig.shape[1]} values, bands x rows needs {bands * rows}")
    s = sig[:, :bands * rows].astype(np.uint64).reshape(len(sig), bands, rows)
    acc = (s * _ROW_MULT[:rows]).sum(axis=2, dtype=np.uint64)   # wraps mod 2^64
    return _mix64(acc).view(np.int64)


def candidate_probability(j, bands: int, rows: int):
    """Probability that a pair with Jaccard `j` shares at least one band bucket."""
    j = np.asarray(j, dtype=float)
    return 1.0 - (1.0 - j ** rows) ** bands


def threshold(bands: int, rows: int) -> float:
    """The approximate Jaccard where the S-curve rises fastest: (1/bands)^(1/rows)."""
    return (1.0 / bands) ** (1.0 / rows)


def choose_bands(target: float, num_perm: int, fp_weight: float = 0.5) -> tuple[int, int]:
    """bands x rows (bands*rows <= num_perm) minimising the weighted false-positive area below
    `target` plus false-negative area above it, integrated over the S-curve."""
    if not 0.0 < target < 1.0:
        raise ValueError("target threshold must be in (0, 1)")
    xs_lo = np.linspace(0.0, target, 201)
    xs_hi = np.linspace(target, 1.0, 201)
    best, best_cost = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, min(num_perm // b, len(_ROW_MULT)) + 1):
            fp = np.trapezoid(candidate_probability(xs_lo, b, r), xs_lo)
            fn = np.trapezoid(1.0 - candidate_probability(xs_hi, b, r), xs_hi)
            cost = fp_weight * fp + (1.0 - fp_weight) * fn
            if cost < best_cost - 1e-12:
                best, best_cost = (b, r), cost
    return best
