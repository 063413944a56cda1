"""Shared fixtures: one local Spark session for the whole test run, and the sample corpus."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.paths import corpus_dir  # noqa: E402


@pytest.fixture(scope="session")
def corpus() -> Path:
    d = corpus_dir()
    if not d.is_dir():
        pytest.skip(f"sample corpus not found at {d} (set CURATION_CORPUS)")
    return d


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (2 cores, small shuffles) shared by every test."""
    from core.spark import get_spark
    s = get_spark("curation-tests", master=os.environ.get("CURATION_TEST_MASTER", "local[2]"),
                  memory="3g", shuffle_partitions=4)
    yield s
    s.stop()
