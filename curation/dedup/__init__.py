"""Deduplication: URL, exact, MinHash near-duplicates (LSH + connected components) and lines.

Entry point: `curation.dedup.stage.run_dedup` (also `from curation.dedup import run_dedup`). The
engine-free modules (`exact`, `minhash`, `lsh`, `lines`) import without Spark; `stage` (and the
two names above, loaded on first use) needs it.
"""


def __getattr__(name):
    if name in ("DEFAULTS", "run_dedup"):
        from curation.dedup import stage
        return getattr(stage, name)
    raise AttributeError(f"module 'curation.dedup' has no attribute {name!r}")
