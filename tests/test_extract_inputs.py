"""Extraction's inputs through core/fs: every pattern must match, and the error names the one
that does not (before any Spark work)."""
from __future__ import annotations

import pytest

from core import fs
from curation.extract.stage import run_extract


def test_a_pattern_matching_nothing_is_named(spark, corpus, tmp_path):
    good = str(corpus / "crawl" / "*.warc.gz")
    bad = str(tmp_path / "no-such" / "*.warc.gz")
    with pytest.raises(fs.InputNotFound, match="no-such/\\*.warc.gz"):
        run_extract(spark, [good, bad], str(tmp_path / "docs"))
    assert not (tmp_path / "docs").exists()
