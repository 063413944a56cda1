"""The filter stage on Spark + Delta: annotate, decide, re-decide, list rejects, run the job."""
from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from curation.filters.decide import decide_pandas
from curation.filters.stage import DEFAULTS, rejected, run_filter
from core.config import merge
from core.stats import latest_run
from core.tables import read_table, write_table

from test_filter_signals import extracted_page, udhr  # noqa: E402  (same tests folder)


@pytest.fixture(scope="module")
def docs_table(spark, corpus, tmp_path_factory):
    """A small documents table from real corpus text plus planted cases."""
    d = tmp_path_factory.mktemp("filter")
    code = [json.loads(ln)["content"] for _, ln in zip(range(2), gzip.open(
        corpus / "code" / "thealgorithms.jsonl.gz", "rt"))]
    gsm = [json.loads(ln) for _, ln in zip(range(2), open(corpus / "math" / "gsm8k" / "test.jsonl"))]
    page = extracted_page(corpus, "bmjv.de.konsum.html")
    rows = [
        ("page", "crawl", "https://www.bmjv.de/konsum", "bmjv.de", page, None),
        ("udhr-en", "crawl", "https://un.org/en/udhr", "un.org", udhr(corpus, "eng"), "en"),
        ("udhr-zh", "crawl", "https://un.org/zh/udhr", "un.org", udhr(corpus, "cmn_hans"), "zh-CN"),
        ("udhr-ru", "crawl", "https://un.org/ru/udhr", "un.org", udhr(corpus, "rus"), None),
        ("code-0", "thealgorithms", None, None, code[0], None),
        ("code-1", "thealgorithms", None, None, code[1], None),
        ("gsm-0", "gsm8k", None, None, gsm[0]["question"] + "\n" + gsm[0]["answer"], None),
        ("gsm-1", "gsm8k", None, None, gsm[1]["question"] + "\n" + gsm[1]["answer"], None),
        ("casino", "crawl", "https://www.0-casino.info/bonus", "0-casino.info",
         udhr(corpus, "eng")[:3000], "en"),
        ("log", "crawl", "https://ops.example.com/log", "example.com",
         "\n".join(f"2024-05-0{i % 9 + 1} ERROR worker-{i} failed: connection reset by peer "
                   f"while writing block {1000 + i} to replica" for i in range(60)), "en"),
        ("pii", "crawl", "https://people.example.com/jane", "example.com",
         udhr(corpus, "eng")[:2000] + "\nContact jane.doe@example.com, +1 415 555 2671, "
         "SSN 078-05-1120.", "en"),
        ("empty", "crawl", "https://example.com/empty", "example.com", "  ", None),
    ]
    pdf = pd.DataFrame(rows, columns=["doc_id", "source", "url", "domain", "text", "html_lang"])
    path = str(d / "documents")
    write_table(spark.createDataFrame(pdf).repartition(3), path)
    return d, path


@pytest.fixture(scope="module")
def job_output(spark, docs_table, corpus):
    """`jobs/filter.py` run once in-process (the shared session is the active one), with token KL
    on against a small English reference built from Tatoeba (the sample corpus)."""
    import contextlib
    import io

    import jobs.filter as job
    from core import corpus as corpus_files
    from curation.filters import token_kl
    d, path = docs_table
    chunks = []
    for f in corpus_files.tatoeba_files(corpus, english=True)[:8]:
        lines = corpus_files.tatoeba_lines(f)
        chunks.extend("\n".join(lines[k:k + 100]) for k in range(0, len(lines), 100))
    token_kl.build_reference([(f"en-{k}", "en", t) for k, t in enumerate(chunks)], alpha=0.1,
                             min_tokens=3_000).save(d / "klref")
    (d / "filter.yaml").write_text(f"token_kl:\n  enabled: true\n  reference: {d / 'klref'}\n")
    out = str(d / "annotated")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert job.main(["--input", path, "--output", out, "--show-rejected", "5",
                         "--config", str(d / "filter.yaml")]) == 0
    return d, path, out, buf.getvalue()


def test_filter_end_to_end(spark, job_output):
    d, path, out, printed = job_output
    stats_path = out + "_stats"
    assert "drop_reasons" in printed and "casino" in printed
    df = read_table(spark, out)
    rows = {r["doc_id"]: r for r in df.collect()}  # 12 rows: a test-sized table
    assert len(rows) == 12
    for k in ("page", "udhr-en", "udhr-zh", "udhr-ru", "code-0", "code-1", "gsm-0", "gsm-1"):
        assert rows[k]["keep"], (k, rows[k]["drop_reasons"])
    assert rows["udhr-zh"]["filter_lang"] == "zh" and rows["udhr-ru"]["filter_lang_source"] == "fasttext"
    assert "url.block_categories" in rows["casino"]["drop_reasons"]
    assert rows["casino"]["url_block_hits"] == ["ut1:gambling"]
    assert any(r.startswith("repetition.") for r in rows["log"]["drop_reasons"])
    assert rows["empty"]["drop_reasons"][0] == "empty_text"
    p = rows["pii"]
    assert (p["pii_email_count"], p["pii_phone_count"], p["pii_ssn_count"]) == (1, 1, 1)
    assert "<EMAIL>" in p["text"] and "jane.doe@example.com" not in p["text"]
    assert p["domain_doc_count"] == 3 and p["domain_pii_doc_share"] == pytest.approx(1 / 3)
    assert rows["udhr-en"]["token_kl"] > 0 and rows["udhr-en"]["token_count"] > 1000
    assert rows["udhr-en"]["token_kl_lang"] == "en" and rows["udhr-en"]["token_kl_excess"] is not None
    assert rows["udhr-ru"]["token_kl"] is None          # no Russian reference: no value
    assert rows["code-0"]["c4_curly_brace"] in (True, False)
    # stats: per-reason counts from the stats table
    counters = latest_run(spark, stats_path, "filter")
    assert counters["documents.in"] == 12
    assert counters["documents.kept"] == sum(r["keep"] for r in rows.values())
    assert counters["dropped.reason.url.block_categories"] == 1
    assert counters["pii.total"] == 3
    assert sum(v for k, v in counters.items() if k.startswith("dropped.first_reason.")) \
        == counters["documents.dropped"]
    # rejected documents are listable with their reasons
    rej = {r["doc_id"]: r["drop_reasons"] for r in rejected(spark, out).collect()}
    assert set(rej) == {k for k, r in rows.items() if not r["keep"]}
    assert set(r["doc_id"] for r in rejected(spark, out, "url.block_categories").collect()) == {"casino"}
    # Spark and pandas decisions agree on the stored signals
    pdf = df.toPandas()
    again = decide_pandas(pdf.drop(columns=["keep", "drop_reasons"]),
                          merge(DEFAULTS, {"token_kl": {"enabled": True, "reference": str(d / "klref")}}))
    assert [list(x) for x in again.sort_values("doc_id")["drop_reasons"]] == \
        [list(x) for x in pdf.sort_values("doc_id")["drop_reasons"]]

    # decide-only: new thresholds, no recomputation, same signals
    out2 = str(d / "redecided")
    run_filter(spark, out, out2, config={"pii": {"max_domain_pii_doc_share": 0.3, "min_domain_docs": 2},
                                         "token_kl": {"max_excess": -100.0}}, decide_only=True)
    r2 = {r["doc_id"]: r for r in read_table(spark, out2).collect()}
    assert "pii.max_domain_pii_doc_share" in r2["pii"]["drop_reasons"]
    assert "token_kl.max_excess" in r2["udhr-en"]["drop_reasons"]
    assert "token_kl.max_excess" not in r2["code-0"]["drop_reasons"]   # code rule set
    assert r2["udhr-en"]["token_kl"] == rows["udhr-en"]["token_kl"]
    with pytest.raises(ValueError, match="annotated table"):
        run_filter(spark, path, str(d / "nope"), decide_only=True)


def test_rerun_is_idempotent_whatever_the_partitioning(spark, job_output):
    d, path, out, _ = job_output
    first = read_table(spark, out).orderBy("doc_id").toPandas()
    repart = str(d / "documents_1part")
    write_table(read_table(spark, path).repartition(1), repart)
    run_filter(spark, repart, out,  # replaces the job's output, never appends
               config={"token_kl": {"enabled": True, "reference": str(d / "klref")}})
    second = read_table(spark, out).orderBy("doc_id").toPandas()
    assert len(second) == len(first) == 12
    pd.testing.assert_frame_equal(first, second)



def test_language_signals_use_the_final_language(spark, tmp_path):
    """With per-language thresholds computed from the corpus, a document whose fastText score is
    under the global 0.65 but over its language's computed threshold is that language, and its
    dirty words are counted with that language's list. ("Arschloch" alone scores 0.645 for `de`;
    with these four German documents the `de` threshold is ~0.43.) The thresholds used to be
    computed after the signals and only `filter_lang` re-decided: the document was `de` in the
    output with the dirty-word count of the English fallback list (0)."""
    texts = {"short": "Arschloch", "greeting": "Guten Morgen", "house": "Das Haus",
             "mixed": "Danke schön mein friend"}
    pdf = pd.DataFrame({"doc_id": list(texts), "source": "crawl", "text": list(texts.values())})
    path, out = str(tmp_path / "docs"), str(tmp_path / "out")
    write_table(spark.createDataFrame(pdf).coalesce(1), path)
    st = run_filter(spark, path, out, config={"lang": {"min_docs_per_language": 3}})
    assert 0.3 <= st.info["lang.thresholds"]["de"] < 0.6
    r = {x["doc_id"]: x for x in read_table(spark, out).collect()}["short"]
    assert 0.6 < r["lid_score"] < 0.65 and r["filter_lang"] == "de"
    assert r["dirty_word_count"] == 1
