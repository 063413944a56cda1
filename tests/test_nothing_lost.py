"""Nothing lost (issue 19): jobs write only what they own, refuse what they would destroy, and
leave two-table results consistent when killed between the two writes.

Each test reproduces a loss that the code before this change let happen (named in the test)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.tables import (OutputRefused, claim_output, companion_version, inspect_path,
                         read_companion, read_table, table_version)

ROOT = Path(__file__).resolve().parent.parent


def _jsonl(path: Path, texts: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": t, "id": f"r{i}", "url": f"https://ex.org/{i}"}) + "\n"
                            for i, t in enumerate(texts)))
    return str(path)


DOC = ("The quick brown fox jumps over the lazy dog near the river bank while the farmer watches "
       "the sheep on the hill and the sun sets slowly behind the old stone church tower {k}.")


@pytest.fixture(scope="module")
def documents(spark, tmp_path_factory):
    """A small documents table written by the extract job (12 rows, 4 of them exact copies)."""
    from curation.extract.stage import run_extract
    d = tmp_path_factory.mktemp("owned")
    texts = [DOC.format(k=i) for i in range(8)] + [DOC.format(k=i) for i in range(4)]
    src = _jsonl(d / "a.jsonl", texts)
    out = str(d / "documents")
    run_extract(spark, src, out, source="a", config={"text": {"id_field": "id", "url_field": "url"}})
    return d, out


def _foreign_table(spark, path: str) -> int:
    """A Delta table another tool wrote (no ownership marker), partitioned like documents."""
    spark.createDataFrame([("x", "a", 1), ("y", "b", 2)], "doc_id string, source string, n int") \
        .write.format("delta").partitionBy("source").save(path)
    return table_version(spark, path)


def test_foreign_delta_table_is_not_replaced(spark, documents, tmp_path):
    """Before: dedup, filter and score replaced any Delta table at --output whatever its schema."""
    from classifiers.stage import run_score
    from curation.dedup.stage import run_dedup
    from curation.filters.stage import run_filter
    _, docs = documents
    foreign = str(tmp_path / "users_table")
    v = _foreign_table(spark, foreign)
    for run in (run_dedup, run_filter, run_score):
        with pytest.raises(OutputRefused, match=r"users_table: it holds a Delta table \(version 0\) "
                                                r"not written by this project.*--overwrite"):
            run(spark, docs, foreign)
    assert table_version(spark, foreign) == v and read_table(spark, foreign).count() == 2
    # a table of another job of the project is refused too (dedup into the documents table)
    with pytest.raises(OutputRefused, match=r"written by the 'extract' job"):
        run_dedup(spark, foreign, docs)


def test_user_folder_is_never_taken_over(spark, documents, tmp_path):
    """Before: extract and dedup wrote a Delta log into a folder of user files (the next VACUUM
    deleted them)."""
    from curation.dedup.stage import run_dedup
    from curation.extract.stage import run_extract
    d, docs = documents
    mine = tmp_path / "my_files"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputRefused, match=r"my_files: it holds a folder that is not a Delta table "
                                            r"\(1 entries: notes.txt\)"):
        run_dedup(spark, docs, str(mine))
    with pytest.raises(OutputRefused, match="my_files"):
        run_extract(spark, str(d / "a.jsonl"), str(mine), source="a")
    assert sorted(os.listdir(mine)) == ["notes.txt"]
    # the input inside (or equal to) the output is refused
    with pytest.raises(OutputRefused, match="inside the output"):
        run_extract(spark, str(d / "a.jsonl"), str(d), source="a")
    with pytest.raises(OutputRefused, match="is the output"):
        run_dedup(spark, docs, docs)


def test_overwrite_replaces_and_marks(spark, documents, tmp_path):
    from pipeline.stages import union_documents
    _, docs = documents
    foreign = str(tmp_path / "foreign")
    _foreign_table(spark, foreign)
    with pytest.raises(OutputRefused):
        union_documents(spark, [docs], foreign)
    union_documents(spark, [docs], foreign, overwrite=True)
    st = inspect_path(spark, foreign)
    assert st.job == "documents" and st.schema_version == "1"
    assert read_table(spark, foreign).count() == read_table(spark, docs).count()
    claim_output(spark, foreign, "documents")        # now its own: no overwrite needed
    assert inspect_path(spark, str(tmp_path / "nothing")).kind == "absent"


def test_unreadable_delta_log_is_an_error_not_a_new_table(spark, tmp_path):
    """Only "no Delta log" means a new table: a damaged log fails instead of being replaced."""
    t = tmp_path / "t"
    _foreign_table(spark, str(t))
    (t / "_delta_log" / "00000000000000000000.json").write_text("{not json")
    with pytest.raises(Exception) as e:
        inspect_path(spark, str(t))
    assert not isinstance(e.value, OutputRefused)


def test_source_rerun_with_fewer_files_needs_allow_shrink(spark, tmp_path):
    """Before: `--input good.jsonl 'typo*.jsonl'` replaced the source's rows with fewer, silently."""
    from curation.extract.stage import run_extract
    a = _jsonl(tmp_path / "a.jsonl", [DOC.format(k=i) for i in range(3)])
    b = _jsonl(tmp_path / "b.jsonl", [DOC.format(k=10 + i) for i in range(2)])
    out = str(tmp_path / "docs")
    run_extract(spark, [a, b], out, source="s")
    with pytest.raises(OutputRefused, match=r"source 's': this run lists 1 input files, its last run "
                                            r"\(version \d+ of .*\) listed 2.*--allow-shrink"):
        run_extract(spark, [a], out, source="s")
    assert read_table(spark, out).count() == 5
    run_extract(spark, [a], out, source="s", allow_shrink=True)
    assert read_table(spark, out).count() == 3


def test_mix_never_deletes_a_folder_it_did_not_create(spark, corpus, tmp_path):
    """Before: the mix deleted whatever --output named (a folder of user files, or its own input
    table when --input and --output were the same path), exit 0."""
    from mixer.build import build_mix
    from fixtures.scored_table import write_sample_table
    table = str(tmp_path / "scored")
    write_sample_table(spark, corpus, table, per_stream=5, partitions=1)
    spec = {"stage": "t", "total_tokens": 4096, "seq_len": 128, "shard_rows": 8,
            "heldout_fraction": 0.0, "categories": {"general": 1.0},
            "sources": [{"name": "g", "category": "general", "filter": "stream = 'general'"}]}
    mine = tmp_path / "my_folder"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputRefused, match=r"my_folder: it holds a folder that is not a mix"):
        build_mix(spark, spec, str(mine), input_path=table)
    assert (mine / "thesis.tex").read_text() == "years of work"
    with pytest.raises(OutputRefused, match="is the output"):
        build_mix(spark, spec, table, input_path=table)
    other = str(tmp_path / "other_table")
    _foreign_table(spark, other)
    with pytest.raises(OutputRefused, match=r"other_table: it holds a Delta table"):
        build_mix(spark, spec, other, input_path=table)
    assert table_version(spark, other) == 0 and table_version(spark, table) == 0


def test_dedup_killed_between_its_two_writes_is_never_seen_as_finished(spark, documents, tmp_path):
    """Before: a kill between dedup's `deduped` and `_duplicates` writes left duplicate rows
    pointing at survivors that were not in `deduped`. Now `_duplicates` is written first and the
    deduped commit names its version: a real SIGKILL between the writes leaves the old pair."""
    from curation.dedup.stage import run_dedup
    from curation.extract.stage import run_extract
    d, docs = documents
    out = str(tmp_path / "deduped")
    run_dedup(spark, docs, out)
    v_main = table_version(spark, out)
    old_dups = {r["doc_id"] for r in read_companion(spark, out, "_duplicates").collect()}
    # new input: other documents (other survivors), copies included
    docs2 = str(tmp_path / "documents2")
    texts = [DOC.format(k=100 + i) for i in range(5)] * 2
    run_extract(spark, _jsonl(tmp_path / "b.jsonl", texts), docs2, source="b",
                config={"text": {"id_field": "id", "url_field": "url"}})
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from core.spark import get_spark\n"
            "from curation.dedup.stage import run_dedup\n"
            "spark = get_spark('killed-dedup', master='local[1]', memory='1g', shuffle_partitions=2)\n"
            f"run_dedup(spark, {docs2!r}, {out!r})\n")
    env = {**os.environ, "CURATION_CRASH_AT": "dedup.between_writes",
           "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    dup_path = out + "_duplicates"
    # the companion did advance (the kill came after its write) ...
    assert table_version(spark, dup_path) > companion_version(spark, out, "_duplicates")
    latest = read_table(spark, dup_path)
    survivors = {r["doc_id"] for r in read_table(spark, out).select("doc_id").collect()}
    assert latest.where(latest.duplicate_of.isNotNull()).select("duplicate_of").distinct() \
        .rdd.map(lambda r: r[0]).filter(lambda x: x not in survivors).count() > 0
    # ... but the deduped table did not, and the pair a reader gets is the finished run's
    assert table_version(spark, out) == v_main
    pair = read_companion(spark, out, "_duplicates").collect()
    assert {r["doc_id"] for r in pair} == old_dups
    assert all(r["duplicate_of"] in survivors for r in pair if r["duplicate_of"])


def test_extract_killed_between_its_two_writes_keeps_documents_and_rejects_paired(
        spark, tmp_path, monkeypatch):
    """The same window in extract (rejects written, documents not yet): the documents commit
    names the rejects version of its own run, so the pair stays the finished run's."""
    from core.tables import CrashPoint
    from curation.extract.stage import run_extract
    out = str(tmp_path / "docs")
    good = _jsonl(tmp_path / "a.jsonl", [DOC.format(k=i) for i in range(3)])
    run_extract(spark, good, out, source="s")
    v_docs = table_version(spark, out)
    bad = tmp_path / "b.jsonl"
    bad.write_text("{broken\n" + json.dumps({"text": DOC.format(k=9)}) + "\n")
    monkeypatch.setenv("CURATION_CRASH_AT", "extract.between_writes:raise")
    with pytest.raises(CrashPoint):
        run_extract(spark, [good, str(bad)], out, source="s")
    monkeypatch.delenv("CURATION_CRASH_AT")
    assert table_version(spark, out) == v_docs
    assert read_table(spark, out + "_rejects").count() == 1          # the new, unfinished run's
    assert read_companion(spark, out, "_rejects").count() == 0      # the finished run's
    run_extract(spark, [good, str(bad)], out, source="s")
    assert read_companion(spark, out, "_rejects").count() == 1 and read_table(spark, out).count() == 4
