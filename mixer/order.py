"""Order and sampling as pure functions of stable keys (never of partitioning or rand()).

* `order_key_column(seed, source, pass, doc_id)`: documents of a source are read, in pass `p`, in
  ascending (key, doc_id) order, the key being Spark's `xxhash64(seed, source, pass, doc_id)`
  (computed natively in the JVM, the same on every executor and Spark version with the same
  hash). A new pass reshuffles, because the key includes `p`.
* `is_heldout(doc_id, fraction)`: a document is held out of training (for held-out loss) when the
  hash of its doc_id alone falls below `fraction`: the same documents are held out by every stage
  and every seed.
* `keep_downsampled(seed, source, doc_id, factor)`: down-sampling keeps a fixed subset.

The held-out and down-sampling hash is BLAKE2b (8 bytes) over the parts joined by a unit
separator, so the same values come out in a Spark worker, a test or a notebook.
"""
from __future__ import annotations

import hashlib

_SEP = "\x1f"


def _h(*parts) -> bytes:
    return hashlib.blake2b(_SEP.join(str(p) for p in parts).encode("utf-8"),
                           digest_size=8).digest()


def order_key_column(seed: int, source, pass_, doc_id):
    """The order key as a Spark column: `source`, `pass_` and `doc_id` are column names (or
    columns); a signed 64-bit xxhash64, sorted with the doc_id as tie-break."""
    from pyspark.sql import functions as F
    col = (lambda c: F.col(c) if isinstance(c, str) else c)
    return F.xxhash64(F.lit(int(seed)).cast("long"), col(source).cast("string"),
                      col(pass_).cast("int"), col(doc_id).cast("string"))


def unit_interval(*parts) -> float:
    """A uniform value in [0, 1) from the hash of `parts`."""
    return int.from_bytes(_h(*parts), "big") / 2.0 ** 64


def is_heldout(doc_id: str, fraction: float) -> bool:
    return fraction > 0 and unit_interval("heldout", doc_id) < fraction


def keep_downsampled(seed: int, source: str, doc_id: str, factor: float) -> bool:
    return factor >= 1 or unit_interval("downsample", seed, source, doc_id) < factor
