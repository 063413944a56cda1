"""The scoring job end to end on a small Delta table built from corpus text (real Spark, Delta,
fastText)."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json

import pytest

from classifiers.metadata import ModelMetadataError
from test_classifiers import GERMAN, PYTHON_FILE
from test_classifiers_fixtures import small_models  # noqa: F401  (session fixture)


def _doc(i: int, source: str, text, url=None, keep=True):
    t = text or ""
    return {
        "doc_id": hashlib.sha1(f"{source}:{i}".encode()).hexdigest(), "source": source,
        "url": url, "url_canonical": url, "domain": "example.org" if url else None,
        "fetch_time": dt.datetime(2024, 1, 1) if url else None, "warc_record_id": None,
        "title": None, "text": text, "content_hash": hashlib.sha1(t.encode()).hexdigest(),
        "n_chars": len(t), "n_words": len(t.split()), "n_bytes_raw": len(t.encode()),
        "input_file": "test", "input_offset": i, "html_lang": None, "extraction": {"x": "y"},
        "keep": keep, "drop_reasons": [] if keep else ["gopher.too_short"],
    }


@pytest.fixture(scope="module")
def docs_table(spark, corpus, tmp_path_factory, small_models):
    from pyspark.sql import types as T
    from core.schema import DOCUMENTS
    from core.tables import write_table
    gsm = [json.loads(l) for l in (corpus / "math" / "gsm8k" / "test.jsonl").open()][:3]
    code = [json.loads(l) for l in gzip.open(corpus / "code" / "thealgorithms.jsonl.gz", "rt")][:2]
    # an English held-out web page that the library calls general: the job must agree
    from curation.filters import langid
    _, d, held = small_models
    web = [e.text for e in held["domain"] if e.source == "web-main"]
    eng = next(t for t, (lab, sc), (lg, _) in zip(web, d.predict(web), langid.detect_languages(web))
               if lab == "general" and sc >= 0.5 and lg == "en")
    rows = [
        _doc(0, "crawl", GERMAN, "https://example.org/de"),
        _doc(1, "crawl", eng, "https://example.org/en"),
        _doc(2, "crawl", PYTHON_FILE, "https://example.org/code.py"),
        _doc(3, "crawl", None, "https://example.org/empty"),             # bad input: no text
        _doc(4, "crawl", "   ", "https://example.org/blank"),
        _doc(5, "crawl", eng, "https://example.org/dropped", keep=False),
    ]
    rows += [_doc(10 + i, "web", r["question"]) for i, r in enumerate(gsm)]
    rows += [_doc(20 + i, "thealgorithms", r["content"]) for i, r in enumerate(code)]
    schema = T.StructType(
        [T.StructField(f.name, f.dataType, True) for f in DOCUMENTS.fields]
        + [T.StructField("keep", T.BooleanType()), T.StructField("drop_reasons", T.ArrayType(T.StringType()))])
    path = str(tmp_path_factory.mktemp("score") / "filtered")
    write_table(spark.createDataFrame(rows, schema).repartition(3), path)
    return path


def _config(models):
    q, d, _ = models
    return {"models": {"quality": str(q.model_dir), "domain": str(d.model_dir)}}


def test_score_job_end_to_end(spark, docs_table, small_models, tmp_path):
    from classifiers.stage import run_score
    from core.stats import latest_run
    from core.tables import read_table, table_version
    out, stats_path = str(tmp_path / "scored"), str(tmp_path / "scored_stats")
    stats = run_score(spark, docs_table, out, _config(small_models), stats_path)
    df = read_table(spark, out)
    rows = {r["doc_id"]: r for r in df.collect()}
    assert len(rows) == 11  # nothing lost: empty and dropped documents stay, with their reason
    by_url = {r["url"]: r for r in rows.values() if r["url"]}
    de = by_url["https://example.org/de"]
    assert de["lang"] == "de" and de["stream"] == "multilingual" and de["domain"] == "example.org"
    en = by_url["https://example.org/en"]
    assert en["lang"] == "en" and en["stream"] == "general" and en["content_domain"] == "general"
    code = by_url["https://example.org/code.py"]
    assert code["content_domain"] == "code" and code["stream"] == "code"
    assert set(code["domain_scores"]) == {"general", "math", "code"}
    assert abs(sum(code["domain_scores"].values()) - 1.0) < 1e-6
    for r in rows.values():
        if r["source"] == "web":
            assert r["content_domain"] == "math" and r["stream"] == "math" and r["lang"] == "en"
        if r["source"] == "thealgorithms":
            assert r["stream"] == "code"
        if r["text"] and r["text"].strip():
            assert 0.0 <= r["quality"] <= 1.0 and r["stream"] is not None
    for u in ("https://example.org/empty", "https://example.org/blank"):
        assert by_url[u]["stream"] is None and by_url[u]["lang"] is None
    assert by_url["https://example.org/dropped"]["stream"] == "general"  # scored by default
    # statistics: per stream and per reason, in the stats table too
    c = stats.counters
    assert c["docs.in"] == 11 and c["unscored.empty_text"] == 2 and c["docs.unscored"] == 2
    assert c["stream.code.docs"] == 3 and c["stream.math.docs"] == 3
    assert c["stream.multilingual.docs"] == 1 and c["lang.de"] == 1
    assert latest_run(spark, stats_path, "score")["stream.math.docs"] == 3
    # idempotent: a re-run replaces the table with the same content
    v = table_version(spark, out)
    run_score(spark, docs_table, out, _config(small_models))
    assert table_version(spark, out) == v + 1
    again = {r["doc_id"]: (r["lang"], r["quality"], r["stream"]) for r in read_table(spark, out).collect()}
    assert again == {k: (r["lang"], r["quality"], r["stream"]) for k, r in rows.items()}


def test_score_config_options(spark, docs_table, small_models, tmp_path):
    from classifiers.stage import run_score
    from core.tables import read_table
    cfg = _config(small_models)
    cfg.update({"score_dropped": False, "stream": {"non_english": "domain"}})
    cfg["models"]["ship"] = True  # the cluster path: addArchive + SparkFiles.get on the executors
    out = str(tmp_path / "scored2")
    stats = run_score(spark, docs_table, out, cfg)
    by_url = {r["url"]: r for r in read_table(spark, out).where("url IS NOT NULL").collect()}
    assert by_url["https://example.org/de"]["stream"] == "general"  # routed by domain
    assert by_url["https://example.org/dropped"]["stream"] is None
    assert stats.counters["unscored.dropped_by_filter"] == 1
    assert stats.info["models_shipped"] == "addArchive"


def test_score_refuses_missing_or_bad_model(spark, docs_table, small_models, tmp_path):
    import shutil
    from classifiers.stage import run_score
    cfg = _config(small_models)
    cfg["models"]["domain"] = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="python -m classifiers.train domain --recipe default"):
        run_score(spark, docs_table, str(tmp_path / "x"), cfg)
    bad = tmp_path / "quality_no_meta"
    shutil.copytree(small_models[0].model_dir, bad)
    (bad / "metadata.json").unlink()
    cfg = _config(small_models)
    cfg["models"]["quality"] = str(bad)
    with pytest.raises(ModelMetadataError, match="classifiers.train quality"):
        run_score(spark, docs_table, str(tmp_path / "y"), cfg)
    from core.config import ConfigError
    with pytest.raises(ConfigError):
        run_score(spark, docs_table, str(tmp_path / "z"), {"no_such_key": 1})


def test_score_reuses_the_filter_stage_language(small_models):
    """Language ID runs once per document (filter stage): with `filter_lang` / `lid_score` in the input,
    score copies them and never loads the language-ID model (here: a path that does not exist)."""
    import pandas as pd
    from classifiers.stage import DEFAULTS, Scorer, score_frame
    from core.config import merge
    q, d, _ = small_models
    cfg = merge(DEFAULTS, {"models": {"lid": "/nonexistent/lid.176.ftz"}})
    pdf = pd.DataFrame({"doc_id": ["a", "b"], "source": ["crawl", "crawl"],
                        "text": [GERMAN, "An English sentence about the weather in London today."],
                        "filter_lang": ["de", None], "lid_score": [0.97, 0.41]})
    out = score_frame(pdf, Scorer(cfg, str(q.model_dir), str(d.model_dir)))
    assert out["lang"].tolist() == ["de", "unknown"]
    assert out["lang_score"].tolist() == [0.97, 0.41]
