"""The curated-vs-raw ablation's tables (benchmarks/ablation.py): both arms pass through the same
decontamination, so the comparison measures curation, not leakage (issue 15). Real Spark, real
Delta tables, the real decontamination stage, real web pages with real benchmark items planted."""
from __future__ import annotations

import importlib.util
from argparse import Namespace

import numpy as np
import pytest

import evalsets
from core.paths import PROJECT_ROOT
from core.schema import DOCUMENTS
from core.stats import RunStats
from core.tables import read_table, write_table
from curation.decontaminate import ngrams, samples as planting
from fixtures import documents as samples


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation", PROJECT_ROOT / "benchmarks" / "ablation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _grams(text, n=13):
    h = ngrams.WordHasher()
    return set(ngrams.ngram_hashes(h(ngrams.normalised_words(text)), n).tolist())


def test_raw_arm_is_decontaminated_like_the_curated_arm(spark, corpus, tmp_path, ablation):
    from pyspark.sql import functions as F
    from core.config import load_config
    from curation.decontaminate.stage import DEFAULTS, run_decontaminate
    sets = evalsets.read_sets(evalsets.load_registry(corpus=corpus))
    rng = np.random.default_rng(3)
    web = samples.web_pages(corpus, limit=4)
    rows = [samples.make_row("crawl", f"w{i}", t, url=u) for i, (u, t) in enumerate(web)]
    math_item = sets["math500"][11]
    host_url, host = max(web, key=lambda w: len(w[1]))   # long enough to survive the removal
    text, _, _ = planting.plant(host, planting.reformat(
        evalsets.text_for_contamination(math_item), "whitespace", rng), rng)
    planted = samples.make_row("crawl", "planted", text, url=host_url + "?copy")
    gsm_item = sets["gsm8k_test"][5]
    alone = samples.make_row("gsm8k", "alone", evalsets.text_for_contamination(gsm_item))
    texts = ablation.eval_texts(corpus, 0.05)
    held_code = texts["code"][0][1]                       # a held-out code file (not a registered set)
    code = samples.make_row("thealgorithms", "held", held_code)
    rows += [planted, alone, code]
    docs = str(tmp_path / "documents")
    write_table(spark.createDataFrame(rows, DOCUMENTS), docs)
    # the "pipeline": decontaminate (against the two sets planted here: a smaller index, a faster
    # test), then a scored table with every row kept
    conf = tmp_path / "decontaminate.yaml"
    conf.write_text("evalsets: {only: [gsm8k_test, math500]}\n")
    decon = str(tmp_path / "decontaminated")
    run_decontaminate(spark, docs, decon, config=load_config(DEFAULTS, str(conf)), corpus=corpus)
    scored = str(tmp_path / "scored")
    write_table(read_table(spark, decon).withColumn("keep", F.lit(True))
                .withColumn("stream", F.lit("general")), scored)

    args = Namespace(documents=docs, scored=scored, decontaminated=decon, corpus=str(corpus),
                     decontaminate_config=str(conf))
    stats = RunStats("ablation-test")
    paths, report = ablation.prepare_tables(spark, args, texts, tmp_path / "tables", stats)

    assert report["config"]["same_config"] is True
    for arm in ("raw", "curated"):
        assert report[arm]["math500"]["docs"] == 1, report
        assert report[arm]["gsm8k_test"]["docs"] == 1, report
    raw = {r["doc_id"]: r["text"] for r in read_table(spark, paths["documents"]).collect()}
    cur = {r["doc_id"]: r["text"] for r in read_table(spark, paths["scored"]).collect()}
    bench = _grams(evalsets.text_for_contamination(math_item)) | _grams(
        evalsets.text_for_contamination(gsm_item))
    for table in (raw, cur):
        assert alone["doc_id"] not in table            # nothing but a benchmark item: dropped
        assert planted["doc_id"] in table              # the host page stays, without the item
        assert not any(_grams(t) & bench for t in table.values())
        assert code["doc_id"] not in table             # held-out code: removed by the start-key check
        assert {r["doc_id"] for r in rows[:4]} <= set(table)
    assert stats.counters["excluded.original.eval.code"] == 1
    assert stats.counters["excluded.raw.eval.math500"] == 0    # decontamination left no start key
