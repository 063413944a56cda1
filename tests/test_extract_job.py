"""The extraction stage on Spark + Delta: exact schema, every record accounted for, several sources
in one table, idempotent re-runs, jsonl field mapping and text grouping."""
import gzip
import json

import pytest

from curation.extract.stage import run_extract
from core.schema import DOCUMENTS, REJECTS
from core.stats import latest_run
from core.tables import read_table


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory, corpus):
    d = tmp_path_factory.mktemp("extract_inputs")
    rows = [{"question": f"What is {i} + {i}?", "answer": f"It is {2 * i}.", "id": f"q{i}"} for i in range(5)]
    with gzip.open(d / "gsm.jsonl.gz", "wt") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
        fh.write("{not json\n")
        fh.write(json.dumps({"question": "no answer"}) + "\n")
    (d / "tatoeba.deu-eng.deu").write_text("\n".join(f"Satz Nummer {i}." for i in range(45)) + "\n")
    warcs = [str(corpus / "warc" / "warcio-edgecases" / n) for n in
             ("example.warc.gz", "example-trunc.warc", "example-wrong-chunks.warc.gz")]
    warcs.append(str(corpus / "warc" / "cc-whirlwind" / "whirlwind.warc.wet.gz"))
    return d, warcs


def test_multi_source_idempotent(spark, tmp_path, small_inputs):
    d, warcs = small_inputs
    out = str(tmp_path / "documents")
    st = run_extract(spark, warcs, out, source="crawl", stats_path=out + "_stats")
    c = st.counters
    assert c["records.seen"] == c["documents"] + c["rejects"]   # reader's count vs rows written
    assert c["corrupt.ranges"] == 1          # example-wrong-chunks: one byte range, not a record
    assert c["documents"] >= 2 and c["skipped.request"] >= 2
    docs = read_table(spark, out)
    assert [(f.name, f.dataType) for f in docs.schema.fields] == \
        [(f.name, f.dataType) for f in DOCUMENTS.fields]
    rej = read_table(spark, out + "_rejects")
    assert [f.name for f in rej.schema.fields] == [f.name for f in REJECTS.fields]
    assert rej.count() == c["rejects"] + c["corrupt.ranges"] and docs.count() == c["documents"]
    assert rej.where("record_type = 'corrupt_range'").count() == c["corrupt.ranges"]
    assert rej.where("input_file is null or reason is null").count() == 0
    assert latest_run(spark, out + "_stats", "extract")["documents"] == c["documents"]

    # a second source into the same table, with a field list mapping and a language hint
    st2 = run_extract(spark, str(d / "gsm.jsonl.gz"), out, source="gsm8k",
                      text_field=["question", "answer"], config={"text": {"id_field": "id"}})
    assert st2.counters["documents"] == 5
    assert st2.counters["rejected.bad_json"] == 1 and st2.counters["rejected.missing_field"] == 1
    st3 = run_extract(spark, str(d / "tatoeba.deu-eng.deu"), out, source="tatoeba", fmt="text",
                      config={"text": {"lang_pattern": r"\.([a-z]{3})$", "lines_per_doc": 20}})
    assert st3.counters["documents"] == 3       # 45 lines -> 20 + 20 + 5

    docs = read_table(spark, out)
    by_src = {r["source"]: r["count"] for r in docs.groupBy("source").count().collect()}
    assert by_src == {"crawl": c["documents"], "gsm8k": 5, "tatoeba": 3}
    q = docs.where("source = 'gsm8k'").orderBy("input_offset").first()
    assert q["text"] == "What is 0 + 0?\n\nIt is 0."
    assert docs.where("source = 'tatoeba'").select("html_lang").distinct().collect()[0][0] == "deu"

    # re-running one source replaces its rows: same count, same ids, others untouched
    ids_before = sorted(r[0] for r in docs.where("source = 'crawl'").select("doc_id").collect())
    run_extract(spark, warcs, out, source="crawl", config={"split_bytes": 1000})
    docs = read_table(spark, out)
    ids_after = sorted(r[0] for r in docs.where("source = 'crawl'").select("doc_id").collect())
    assert ids_after == ids_before and len(set(ids_after)) == len(ids_after)
    assert docs.count() == c["documents"] + 5 + 3
    assert read_table(spark, out + "_rejects").where("source = 'crawl'").count() == \
        c["rejects"] + c["corrupt.ranges"]
