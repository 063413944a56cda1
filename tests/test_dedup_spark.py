"""The dedup stage in local Spark on real corpus text with injected duplicates: every step, the
duplicates table, statistics, determinism across partitionings, and a rerun that replaces."""
from __future__ import annotations

import os
import datetime as dt
import random

import numpy as np
import pytest

from fixtures import documents as samples
from core.checkpoints import MARKER, Checkpoints
from curation.dedup.components import connected_components, drop_components_graph
from curation.dedup.exact import normalized_hash, normalized_hash_col
from curation.dedup.minhash import jaccard
from core.schema import DOCUMENTS
from core.stats import latest_run
from core.tables import read_table, table_version, write_table

T0 = dt.datetime(2024, 1, 15, 12, 0)
T1 = dt.datetime(2024, 6, 15, 12, 0)


@pytest.fixture(scope="module")
def fixture_docs(corpus):
    """Rows with known duplicates, and the truth: {doc_id: (reason, survivor doc_id)}."""
    rng = np.random.default_rng(11)
    rows, truth, expect_lines = [], {}, set()
    web = samples.web_pages(corpus, limit=6)
    for i, (url, text) in enumerate(web):
        rows.append(samples.make_row("crawl", f"a{i}", text, url=url, fetch_time=T0))
    # url: three pages re-fetched later under a tracking-parameter URL (slightly changed text)
    for i in range(3):
        url, text = web[i]
        new = samples.make_row("crawl", f"b{i}", text + "\nUpdated.",
                               url=url + ("&" if "?" in url else "?") + "utm_source=x",
                               fetch_time=T1)
        rows.append(new)
        truth[rows[i]["doc_id"]] = ("url", new["doc_id"])
    math = samples.math_solutions(corpus, 400)
    long_math = [t for t in math if len(t.split()) > 120][:8]
    for i, t in enumerate(long_math):
        rows.append(samples.make_row("math", f"m{i}", t))
    # exact: case and layout changes of two MATH documents
    for i in range(2):
        r = samples.make_row("math", f"mx{i}", "  " + long_math[i].upper().replace(" ", "  \n"))
        rows.append(r)
        a, b = sorted([r["doc_id"], samples.doc_id("math", f"m{i}")])
        truth[b] = ("exact", a)
    # near: light word edits of three other MATH documents (Jaccard about 0.8-0.9)
    for i in range(2, 5):
        v = long_math[i]
        while not 0.75 <= jaccard(v, long_math[i]) < 0.97:      # a real edit, still near
            v = samples.edit_words(long_math[i], 0.02, rng)
        r = samples.make_row("math", f"mn{i}", v)
        rows.append(r)
        a, b = sorted([r["doc_id"], samples.doc_id("math", f"m{i}")])
        truth[b] = ("near", a)
    # lines: ten GSM8K documents framed by the same boilerplate (threshold 6), one of them so
    # short that it falls under min_chars once the boilerplate is gone
    for i, t in enumerate(samples.gsm8k(corpus, 10)):
        r = samples.make_row("gsm8k", f"g{i}", samples.with_boilerplate(t, rng))
        rows.append(r)
        expect_lines.add(r["doc_id"])
    short = samples.make_row("gsm8k", "short", samples.with_boilerplate("Just a note.", rng))
    rows.append(short)
    truth[short["doc_id"]] = ("lines_too_short", None)
    # code keeps its repeated lines (skipped source)
    for i, t in enumerate(samples.code_files(corpus, 8)):
        rows.append(samples.make_row("thealgorithms", f"c{i}", t))
    return rows, truth, expect_lines


def _write_docs(spark, rows, path, parts):
    df = spark.createDataFrame(rows, DOCUMENTS)
    write_table(df.repartition(parts), str(path))


def test_exact_hash_same_in_spark_and_python(spark):
    texts = ["A  b\nC", "  x\t y ", "", None,
             # non-ASCII whitespace: NBSP, ideographic space, line separator, em space, NEL,
             # information separators (Python's str.isspace), narrow NBSP; ZWSP is not whitespace
             "a\u00a0b", "\u3000x\u2028y\u2003", "p\x1cq\x1f r", "s\u0085t\u202f", "\u200bz",
             "\u00a0 lead and trail \u3000", "Straße ΟΔΟΣ Σ"]
    df = spark.createDataFrame([(t,) for t in texts], "text string")
    got = [r[0] for r in df.select(normalized_hash_col("text")).collect()]
    assert got == [normalized_hash(t) for t in texts]


def test_jvm_whitespace_class_is_the_python_one_over_the_bmp(spark):
    """core.text.WHITESPACE_JVM (the fast form Spark uses) matches exactly the characters that
    WHITESPACE matches, in the JVM and in Python's `re`, for every code point of the BMP."""
    import re

    from core.text import WHITESPACE, WHITESPACE_JVM
    from pyspark.sql import functions as F
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    df = spark.createDataFrame([(f"a{c}b",) for c in chars], "t string")
    got = df.select(F.regexp_replace("t", WHITESPACE, "").alias("x"),
                    F.regexp_replace("t", WHITESPACE_JVM, "").alias("y")).collect()
    jvm_explicit = {c for c, r in zip(chars, got) if r["x"] == "ab"}
    jvm_fast = {c for c, r in zip(chars, got) if r["y"] == "ab"}
    py = {c for c in chars if re.fullmatch(WHITESPACE, c)}
    assert jvm_fast == jvm_explicit == py == {c for c in chars if c.isspace()}
    assert len(py) == 29 and "\u200b" not in py and "\x1c" in py


def test_rewritten_text_counts_as_extraction_counts(spark):
    """core.schema.with_new_text (dedup's line removal, decontamination): a rewritten document's
    n_chars and n_words are what extraction gives the same text (len(text), len(text.split())),
    also with non-ASCII whitespace and whitespace at the ends; rows without a new text keep theirs."""
    from core.schema import with_new_text
    texts = ["A  b\nC", "  x\t y ", "", "\tlead\r\n", "a\u00a0b", "\u3000x\u2028y\u2003",
             "p\x1cq\x1f r", "s\u0085t\u202f", "\u200bz", "\u00a0 lead and trail \u3000",
             "Straße ΟΔΟΣ Σ"]
    rows = [(i, "old", 99, 99, t) for i, t in enumerate(texts)] + [(len(texts), "kept as is", 7, 3, None)]
    df = spark.createDataFrame(rows, "i int, text string, n_chars int, n_words int, _new_text string")
    got = {r.i: (r.text, r.n_chars, r.n_words) for r in with_new_text(df).collect()}
    assert got == {**{i: (t, len(t), len(t.split())) for i, t in enumerate(texts)},
                   len(texts): ("kept as is", 7, 3)}


def _union_find(edges):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def _held_blocks(spark, before: set) -> list:
    """The RDDs with blocks in executor memory or on executor disk that were not there `before`
    (Delta's own cached log state aside)."""
    return [r.name() for r in spark.sparkContext._jsc.sc().getRDDStorageInfo()
            if r.id() not in before and "_delta_log" not in (r.name() or "")]


def _rdd_ids(spark) -> set:
    return {r.id() for r in spark.sparkContext._jsc.sc().getRDDStorageInfo()}


def test_connected_components_match_union_find_any_partitioning(spark, tmp_path):
    """Connected components equal union-find's whatever the partitioning; each round's graph is a
    file in the run's checkpoint folder (never executor-local `localCheckpoint` blocks, which die
    with their executor), the previous round's deleted, the last one once the result is used."""
    rnd = random.Random(3)
    edges = [(rnd.randrange(60) * 7919 % 10007 - 5000, rnd.randrange(60) * 7919 % 10007 - 5000)
             for _ in range(45)]
    edges += [(10_000 + i, 10_000 + i + 1) for i in range(8)]           # a chain: several rounds
    edges += [(7, 7), (20_000, 20_001), (20_001, 20_000)]               # loop, duplicate
    expect = _union_find([e for e in edges if e[0] != e[1]])
    before = _rdd_ids(spark)
    folder = tmp_path / "cc_checkpoints"
    with Checkpoints(spark, str(folder), "test") as ck:
        for parts in (1, 3):
            df = spark.createDataFrame(edges, "src long, dst long").repartition(parts)
            comps, rounds = connected_components(df, ck, verbose=False)
            got = {r.node: r.component for r in comps.collect()}
            assert got == expect and rounds >= 2
            # one saved graph (the last round's) besides the marker, gone once dropped
            assert len([p for p in folder.iterdir() if p.name != MARKER]) == 1
            drop_components_graph(ck)
            assert [p.name for p in folder.iterdir()] == [MARKER]
    assert _held_blocks(spark, before) == []
    assert not folder.exists()


def test_dedup_stage_end_to_end_deterministic_and_idempotent(spark, fixture_docs, tmp_path):
    from curation.dedup.stage import run_dedup
    rows, truth, expect_lines = fixture_docs
    out, stats_path = str(tmp_path / "deduped"), str(tmp_path / "stats")
    results = []
    for parts in (1, 5):                      # two partitionings, the same output path
        inp = tmp_path / f"docs_{parts}"
        _write_docs(spark, rows, inp, parts)
        cfg = {"lines": {"min_chars": 60}}
        if parts == 1:      # the checkpoint folder a killed run left (its marker): removed
            os.makedirs(out + "_checkpoints/007-edges")
            open(f"{out}_checkpoints/{MARKER}", "w").write("{}")
        else:               # an empty folder the user made for checkpoints: used, then kept empty
            cfg["spark"] = {"checkpoint_dir": str(tmp_path / "scratch")}
            os.makedirs(cfg["spark"]["checkpoint_dir"])
        # RDDs that earlier tests in this session left cached are not this run's
        before = _rdd_ids(spark)
        st = run_dedup(spark, str(inp), out, cfg, stats_path)
        # nothing the run materialised (its steps' frames, every components round) stays in
        # executor memory or on executor disk, and its checkpoint folder is gone
        assert _held_blocks(spark, before) == []
        assert not os.path.exists(out + "_checkpoints")
        if parts != 1:
            assert os.listdir(cfg["spark"]["checkpoint_dir"]) == []
        deduped = read_table(spark, out)
        dups = read_table(spark, out + "_duplicates")
        results.append((
            sorted((r.doc_id, r.cluster_id, r.cluster_size, r.lines_removed, r.text)
                   for r in deduped.collect()),
            sorted((r.doc_id, r.duplicate_of, r.reason) for r in dups.collect()),
            dict(st.counters)))
    (kept, dup_rows, counters), (kept2, dup_rows2, _) = results
    assert kept == kept2 and dup_rows == dup_rows2            # same survivors, same cluster ids

    # rerun replaced the table (no appended rows) and made a new Delta version
    assert len(kept) == len(rows) - len(truth) == counters["docs.out"]
    assert table_version(spark, out) >= 1
    assert read_table(spark, out).count() == len(kept)

    # every removal is in the duplicates table with its reason and survivor
    assert {d: (r, s) for d, s, r in dup_rows} == truth
    for reason in ("url", "exact", "near", "lines_too_short"):
        n = sum(1 for v in truth.values() if v[0] == reason)
        assert counters[f"removed.{reason}"] == n, reason
    assert counters["docs.in"] == len(rows)

    by_id = {k[0]: k for k in kept}
    for d, (reason, surv) in truth.items():
        if surv:
            assert by_id[surv][1] == surv and by_id[surv][2] == 2      # cluster_id, cluster_size
    # url: the later fetch survives; boilerplate lines removed (4 per framed doc), code untouched
    assert all(by_id[samples.doc_id("crawl", f"b{i}")][4].endswith("Updated.") for i in range(3))
    for d in expect_lines:
        assert by_id[d][3] >= 4 and "Skip to main content" not in by_id[d][4]
        assert "All rights reserved" not in by_id[d][4]
    assert counters["lines.removed"] >= 4 * (len(expect_lines) + 1)
    code_ids = {samples.doc_id("thealgorithms", f"c{i}") for i in range(8)}
    assert all(by_id[c][3] == 0 for c in code_ids)

    recorded = latest_run(spark, stats_path, "dedup")
    assert recorded["removed.near"] == counters["removed.near"]


def test_checkpoint_folder_never_takes_what_it_did_not_make(spark, fixture_docs, tmp_path):
    """The checkpoint folder is the run's own: a folder holding anything a job of this project did
    not write is refused before any work, nothing in it deleted; a run that fails midway (here on
    a repeated doc_id, after its first frame was saved) removes its folder and holds no blocks."""
    from core.tables import OutputRefused
    from curation.dedup.stage import run_dedup
    rows = fixture_docs[0][:12]
    inp, out = tmp_path / "docs", str(tmp_path / "deduped")
    _write_docs(spark, rows, inp, 2)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputRefused, match=r"mine.*notes\.txt.*nothing was deleted"):
        run_dedup(spark, str(inp), out, {"spark": {"checkpoint_dir": str(mine)}})
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"
    assert not os.path.exists(out)

    bad = tmp_path / "bad_docs"
    _write_docs(spark, rows + rows[:1], bad, 2)              # one doc_id twice
    before = _rdd_ids(spark)
    with pytest.raises(ValueError, match="doc_id is not unique"):
        run_dedup(spark, str(bad), out)
    assert not os.path.exists(out + "_checkpoints")
    assert _held_blocks(spark, before) == []
