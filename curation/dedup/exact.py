"""Exact deduplication key: a hash of the normalised text.

Normalisation: Unicode NFC is left to extraction; here text is lower-cased, trimmed, and every run
of whitespace becomes one space, so copies that differ only in case or layout share a key. The
Spark expression and the Python function give the same hex digest (tested).
"""
from __future__ import annotations

import hashlib
import re

from pyspark.sql import Column
from pyspark.sql import functions as F

_WS = re.compile(r"\s+")


def normalize_text(text: str | None) -> str:
    return _WS.sub(" ", (text or "").lower()).strip()


def normalized_hash(text: str | None) -> str:
    """sha1 hex of `normalize_text(text)` (the Python twin of `normalized_hash_col`)."""
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


def normalized_hash_col(text: Column | str = "text") -> Column:
    """The same key as a Spark column expression (runs in the JVM, no Python worker)."""
    c = F.col(text) if isinstance(text, str) else text
    return F.sha1(F.trim(F.regexp_replace(F.lower(F.coalesce(c, F.lit(""))), r"\s+", " ")))
