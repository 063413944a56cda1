"""Order and sampling as pure functions of stable keys (never of partitioning or rand()).

* `order_key(seed, source, pass, doc_id)`: documents of a source are read, in pass `p`, in
  ascending (key, doc_id) order. A new pass reshuffles, because the key includes `p`.
* `is_heldout(doc_id, fraction)`: a document is held out of training (for held-out loss) when the
  hash of its doc_id alone falls below `fraction`: the same documents are held out by every stage
  and every seed.
* `keep_downsampled(seed, source, doc_id, factor)`: down-sampling keeps a fixed subset.

The hash is BLAKE2b (8 bytes) over the parts joined by a unit separator, so the same values come
out in a Spark worker, a test or a notebook.
"""
from __future__ import annotations

import hashlib

_SEP = "\x1f"


def _h(*parts) -> bytes:
    return hashlib.blake2b(_SEP.join(str(p) for p in parts).encode("utf-8"),
                           digest_size=8).digest()


def order_key(seed: int, source: str, pass_: int, doc_id: str) -> int:
    """A signed 64-bit sort key (fits a Spark/Arrow int64)."""
    return int.from_bytes(_h("order", seed, source, pass_, doc_id), "big", signed=True)


def unit_interval(*parts) -> float:
    """A uniform value in [0, 1) from the hash of `parts`."""
    return int.from_bytes(_h(*parts), "big") / 2.0 ** 64


def is_heldout(doc_id: str, fraction: float) -> bool:
    return fraction > 0 and unit_interval("heldout", doc_id) < fraction


def keep_downsampled(seed: int, source: str, doc_id: str, factor: float) -> bool:
    return factor >= 1 or unit_interval("downsample", seed, source, doc_id) < factor
