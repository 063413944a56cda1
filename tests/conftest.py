"""Shared fixtures: one local Spark session for the whole test run, the sample corpus, and torch on
one CPU thread for a module's tests."""
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


@pytest.fixture(scope="module")
def one_cpu_thread():
    """One intra-op torch thread for a module's tests (`pytestmark = pytest.mark.usefixtures(
    "one_cpu_thread")`): on a 2-core machine shared with Spark, two OpenMP threads spin-wait on
    each other and run several times slower. Restored afterwards for the other test modules."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
