"""Exact deduplication key: a hash of the normalised text.

Normalisation: Unicode NFC is left to extraction; here text is lower-cased, every run of whitespace
becomes one space, and spaces at both ends are removed, so copies that differ only in case or layout
share a key. "Whitespace" is one explicit character class, the same in the JVM regex and in Python
(`WHITESPACE`, core/text.py: ASCII whitespace, the information separators U+001C..U+001F, NEL,
NBSP and the other Unicode space separators, line/paragraph separators): Java's `\s` is ASCII-only and Python's `\s`
is Unicode-wide, and Spark's `trim` strips only U+0020, so using either engine's defaults gave two
different keys for a text with a non-breaking space. The Spark expression and the Python function
give the same hex digest (tested with non-ASCII whitespace).
"""
from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from core.text import WHITESPACE, WHITESPACE_JVM  # the same set in Python `re` and java.util.regex

if TYPE_CHECKING:  # the Spark expression is the only part that needs pyspark
    from pyspark.sql import Column

_WS = re.compile(WHITESPACE)


def normalize_text(text: str | None) -> str:
    return _WS.sub(" ", (text or "").lower()).strip(" ")


def normalized_hash(text: str | None) -> str:
    """sha1 hex of `normalize_text(text)` (the Python twin of `normalized_hash_col`)."""
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


def normalized_hash_col(text: Column | str = "text") -> Column:
    """The same key as a Spark column expression (runs in the JVM, no Python worker)."""
    from pyspark.sql import functions as F
    c = F.col(text) if isinstance(text, str) else text
    return F.sha1(F.trim(F.regexp_replace(F.lower(F.coalesce(c, F.lit(""))), WHITESPACE_JVM, " ")))
