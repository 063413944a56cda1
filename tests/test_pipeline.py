"""The orchestrator's skip/resume logic, on a real Spark session and real Delta tables written by
two trivial stages registered here (the curation stages themselves are tested by their owners)."""
from __future__ import annotations

import json
import os

import pytest

from pipeline import (MissingStageError, Stage, StageFailed, load_pipeline_config,
                      run_stages, select)
from pipeline.runner import STATE_FILE, PipelineState
from core.tables import read_table, table_version, write_table

CALLS: list[str] = []
FAIL: dict = {"mode": None}   # how stage 2 ends: None, "error", or "kill" (not part of its config,
#                               so a killed run and its resumption have the same fingerprint)


def make_numbers(spark, output, n):
    """Stage 1: a Delta table of the numbers 0..n-1."""
    CALLS.append("make")
    write_table(spark.range(0, n, 1, 1).withColumnRenamed("id", "x"), output)   # one file
    return {"rows": n}


def double(spark, inp, output):
    """Stage 2: x*2 of stage 1's table; FAIL["mode"] raises (an error, or a kill)."""
    CALLS.append("double")
    fail = FAIL["mode"]
    if fail == "error":
        raise ValueError("boom")
    if fail == "kill":
        raise KeyboardInterrupt  # what a killed process looks like from inside: no cleanup
    from pyspark.sql import functions as F
    write_table(read_table(spark, inp).select((F.col("x") * 2).alias("y")), output)
    return {"output": output}   # no extra count job: the tests read the table themselves


def chain(tmp, n=5, fail=None, code="v1"):
    FAIL["mode"] = fail
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    return [
        Stage("make", make_numbers, lambda c: c.entry(c.spark, c.outputs[0], **c.config),
              outputs=[a], config={"n": n}, code_version=code),
        Stage("double", double, lambda c: c.entry(c.spark, c.inputs[0], c.outputs[0], **c.config),
              inputs=[a], outputs=[b], config={}, code_version="v1"),
    ]


def statuses(results):
    return [(r.name, r.status) for r in results]


@pytest.fixture
def work(tmp_path):
    CALLS.clear()
    return str(tmp_path)


def test_skip_then_rerun_on_config_code_or_force(spark, work):
    quiet = dict(log=lambda *_: None)
    r1 = run_stages(spark, chain(work), work, **quiet)
    assert statuses(r1) == [("make", "ran"), ("double", "ran")]
    vb = table_version(spark, os.path.join(work, "b"))
    r2 = run_stages(spark, chain(work), work, **quiet)
    assert statuses(r2) == [("make", "skipped"), ("double", "skipped")]
    assert CALLS == ["make", "double"]
    assert table_version(spark, os.path.join(work, "b")) == vb
    assert sorted(r.y for r in read_table(spark, os.path.join(work, "b")).collect()) == [0, 2, 4, 6, 8]
    # forcing one stage re-runs only that one
    r = run_stages(spark, chain(work), work, force=["double"], **quiet)
    assert statuses(r) == [("make", "skipped"), ("double", "ran")]
    with pytest.raises(ValueError, match="unknown stage"):
        run_stages(spark, chain(work), work, force=["nope"], **quiet)
    # a config change re-runs the stage and, through its new table version, everything downstream
    r = run_stages(spark, chain(work, n=7), work, **quiet)
    assert statuses(r) == [("make", "ran"), ("double", "ran")]
    assert "config" in r[0].reason and "inputs" in r[1].reason
    assert read_table(spark, os.path.join(work, "b")).count() == 7
    # so does a code change
    r = run_stages(spark, chain(work, n=7, code="v2"), work, **quiet)
    assert r[0].status == "ran" and "code" in r[0].reason and r[1].status == "ran"


def test_killed_or_failed_run_resumes_at_first_unfinished_stage(spark, work):
    quiet = dict(log=lambda *_: None)
    with pytest.raises(KeyboardInterrupt):
        run_stages(spark, chain(work, fail="kill"), work, **quiet)
    state = json.load(open(os.path.join(work, STATE_FILE)))
    assert state["stages"]["make"]["status"] == "done"
    assert state["stages"]["double"]["status"] == "running"
    CALLS.clear()
    r = run_stages(spark, chain(work), work, **quiet)
    assert statuses(r) == [("make", "skipped"), ("double", "ran")]
    assert "did not finish" in r[1].reason
    assert read_table(spark, os.path.join(work, "b")).count() == 5
    # an exception: recorded as failed with its message; the next run starts at that stage
    with pytest.raises(StageFailed, match="double.*boom"):
        run_stages(spark, chain(work, fail="error"), work, force=["double"], **quiet)
    st = PipelineState(os.path.join(work, STATE_FILE))
    assert st.get("make")["status"] == "done" and st.get("double")["status"] == "failed"
    assert "boom" in st.get("double")["error"]
    CALLS.clear()
    r = run_stages(spark, chain(work), work, **quiet)
    assert statuses(r) == [("make", "skipped"), ("double", "ran")] and CALLS == ["double"]


def test_missing_or_rewritten_output_reruns(spark, work):
    import shutil
    run_stages(spark, chain(work), work, log=lambda *_: None)
    shutil.rmtree(os.path.join(work, "b"))
    r = run_stages(spark, chain(work), work, log=lambda *_: None)
    assert statuses(r) == [("make", "skipped"), ("double", "ran")] and "missing" in r[1].reason
    # someone overwrote stage 1's output by hand: stage 1 runs again to restore it
    write_table(spark.range(0, 3, 1, 1).withColumnRenamed("id", "x"), os.path.join(work, "a"))
    r = run_stages(spark, chain(work), work, log=lambda *_: None)
    assert r[0].status == "ran" and "changed since" in r[0].reason
    assert read_table(spark, os.path.join(work, "b")).count() == 5


def test_missing_stage_fails_before_running_anything(spark, work):
    stages = chain(work) + [Stage("later", "curation.no_such_stage_module:run_it",
                                  lambda c: None, issue="#99")]
    with pytest.raises(MissingStageError, match=r"'later'.*curation.no_such_stage_module.*#99"):
        run_stages(spark, stages, work, log=lambda *_: None)
    assert CALLS == [] and not os.path.exists(os.path.join(work, "a"))
    stages[-1].entry = "pipeline.runner:no_such_function"
    with pytest.raises(MissingStageError, match="has no 'no_such_function'"):
        run_stages(spark, stages, work, log=lambda *_: None)


def test_stage_that_writes_nothing_is_not_marked_done(spark, work):
    st = [Stage("lazy", lambda *a: None, lambda c: None, outputs=[os.path.join(work, "never")],
                code_version="1")]
    with pytest.raises(StageFailed, match="did not write"):
        run_stages(spark, st, work, log=lambda *_: None)
    assert PipelineState(os.path.join(work, STATE_FILE)).get("lazy")["status"] == "failed"


def test_pipeline_config_and_stage_list():
    from pipeline.stages import build_stages
    cfg = load_pipeline_config(None, {"work_dir": "/tmp/w"})
    stages = build_stages(cfg)
    names = [s.name for s in stages]
    assert names[:7] == ["extract.crawl", "extract.thealgorithms", "extract.gsm8k",
                         "derive.math_train", "extract.math", "extract.tatoeba", "extract.udhr"]
    assert names[7:] == ["documents", "models.quality", "models.domain", "dedup", "decontaminate",
                         "filter", "score", "mix.pretrain", "mix.anneal", "train", "report"]
    by = {s.name: s for s in stages}
    assert by["dedup"].inputs == ["/tmp/w/documents"] and by["dedup"].outputs == ["/tmp/w/deduped"]
    # the math source is the MATH training split the pipeline derives (MATH500 held out)
    assert by["derive.math_train"].outputs == ["/tmp/w/derived/math_train.jsonl"]
    assert by["derive.math_train"].inputs[1].endswith("math_oai/test.jsonl")
    assert by["extract.math"].inputs == ["/tmp/w/derived/math_train.jsonl"]
    # the benchmark files and the registry are inputs too: a changed benchmark re-runs the stage
    dec = by["decontaminate"].inputs
    assert dec[0] == "/tmp/w/deduped" and dec[1].endswith("configs/evalsets.yaml")
    assert any(p.endswith("math_oai/test.jsonl") for p in dec[2:])        # MATH500
    assert any("gsm8k" in p and p.endswith("test.jsonl") for p in dec[2:])
    assert by["filter"].inputs == ["/tmp/w/decontaminated"]          # token KL off by default
    kl = {s.name: s for s in build_stages(load_pipeline_config(None, {
        "work_dir": "/tmp/w", "stages": {"filter": {"token_kl": {"enabled": True, "reference": "/r/kl"}}}}))}
    assert kl["filter"].inputs == ["/tmp/w/decontaminated", "/r/kl/manifest.json", "/r/kl/counts.npz"]
    assert by["score"].inputs == ["/tmp/w/filtered", "/tmp/w/models/quality/metadata.json",
                                  "/tmp/w/models/domain/metadata.json"]
    assert by["score"].config["models"] == {"quality": "/tmp/w/models/quality",
                                            "domain": "/tmp/w/models/domain"}
    assert by["extract.tatoeba"].config["text"]["lang_pattern"]
    assert by["mix.pretrain"].config["seq_len"] == 512  # the pipeline's override over the spec
    assert by["train"].config["stages"][0]["data"] == "/tmp/w/mix/pretrain"
    assert by["train"].config["stages"][1]["data"] == "/tmp/w/mix/anneal"
    assert by["train"].config["stages"][0]["tokens"] == 32768       # dotted override
    assert by["train"].config["stages"][0]["schedule"] == "warmup_cosine"   # the rest kept
    # a given classifier folder replaces its training stage
    cfg2 = load_pipeline_config(None, {"work_dir": "/tmp/w", "classifiers": {"quality": "/m/q"}})
    names2 = [s.name for s in build_stages(cfg2)]
    assert "models.quality" not in names2 and "models.domain" in names2
    assert by["mix.anneal"].inputs == ["/tmp/w/scored"]
    assert by["train"].inputs == ["/tmp/w/mix/pretrain", "/tmp/w/mix/anneal"]
    assert by["crawl" and "extract.crawl"].inputs[0].endswith("crawl/*.warc.gz")
    assert [s.name for s in select(stages, only=["extract"])] == [
        n for n in names[:7] if n.startswith("extract.")]
    assert [s.name for s in select(stages, until="documents")] == names[:8]
    assert [s.name for s in select(stages, start="dedup", until="score")] == [
        "dedup", "decontaminate", "filter", "score"]
    from core.config import ConfigError
    with pytest.raises(ConfigError, match="unknown config key"):
        load_pipeline_config(None, {"stagez": {}})
    # trainer overrides are the trainer's own keys: added to the defaults', typos refused early
    cfg3 = load_pipeline_config(None, {"work_dir": "/tmp/w",
                                       "trainer": {"overrides": {"cpu_threads": 1}}})
    tc = {s.name: s for s in build_stages(cfg3)}["train"].config
    assert tc["cpu_threads"] == 1 and tc["stages"][0]["tokens"] == 32768
    with pytest.raises(ConfigError, match="unknown trainer config keys"):
        load_pipeline_config(None, {"trainer": {"overrides": {"cpu_thread": 1}}})
    # the shipped YAML is the defaults
    from core.paths import PROJECT_ROOT
    from pipeline import DEFAULTS
    assert load_pipeline_config(PROJECT_ROOT / "configs" / "pipeline.yaml") == DEFAULTS


def test_union_documents(spark, tmp_path):
    from pipeline.stages import union_documents
    from core.stats import latest_run
    a, b, out = (str(tmp_path / n) for n in ("a", "b", "docs"))
    write_table(spark.createDataFrame([("1", "crawl", "t1")], "doc_id string, source string, text string")
                .coalesce(1), a)
    write_table(spark.createDataFrame([("2", "gsm8k", "t2", "x"), ("3", "gsm8k", "t3", "y")],
                                      "doc_id string, source string, text string, extra string").coalesce(1), b)
    union_documents(spark, [a, b], out, stats_path=out + "_stats")
    union_documents(spark, [a, b], out, stats_path=out + "_stats")  # rerun replaces
    rows = sorted((r.doc_id, r.source, r.extra) for r in read_table(spark, out).collect())
    assert rows == [("1", "crawl", None), ("2", "gsm8k", "x"), ("3", "gsm8k", "y")]
    s = latest_run(spark, out + "_stats", "documents")
    assert s["documents.source.gsm8k"] == 2 and s["documents.out"] == 3


def test_code_version_follows_the_stages_imports():
    """A stage's code version covers the project modules its code imports (lazily too), so an
    edit to a shared helper in core/ re-runs the stages that use it. Two probe files in the
    tree: the stage's own module and a core/ helper it imports inside a function."""
    from core.paths import PROJECT_ROOT
    from pipeline.runner import code_version
    helper = PROJECT_ROOT / "core" / "_codever_probe.py"
    user = PROJECT_ROOT / "mixer" / "_codever_probe_user.py"
    assert not helper.exists() and not user.exists()
    try:
        helper.write_text("X = 1\n")
        user.write_text("def f():\n    from core._codever_probe import X\n    return X\n")
        stage = Stage("probe", "mixer._codever_probe_user:f", lambda c: None,
                      code=["mixer/_codever_probe_user.py"])
        before = code_version(stage)
        assert code_version(stage) == before                    # deterministic
        helper.write_text("X = 2\n")
        assert code_version(stage) != before                    # the imported helper counts
    finally:
        helper.unlink(missing_ok=True)
        user.unlink(missing_ok=True)
