"""Deduplication: URL, exact, MinHash near-duplicates (LSH + connected components) and lines.

Entry point: `curation.dedup.stage.run_dedup` (also `from curation.dedup import run_dedup`).
"""
from curation.dedup.stage import DEFAULTS, run_dedup  # noqa: F401
