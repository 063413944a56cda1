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
    # a one-batch run logs its start, files and end in one progress commit (not three)
    from core.tables import table_version
    from curation.extract.stage import progress_path_of
    assert c["batches"] == 1 and table_version(spark, progress_path_of(out)) == 0
    assert sorted(r[0] for r in read_table(spark, progress_path_of(out)).select("event")
                  .collect()) == ["complete"] + ["file"] * c["files"] + ["start"]

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


def test_sources_file_is_one_job_per_source(spark, tmp_path, small_inputs):
    """`jobs/extract.py --sources FILE --base DIR`: the same table as one run_extract per source
    (doc_ids, texts, sources), relative paths joined to --base, absolute ones kept; a bad entry or
    a missing input fails before anything is written."""
    import yaml
    from pyspark.sql import functions as F

    from core.validate import ConfigError
    from core.fs import InputNotFound
    from jobs.extract import main
    d, warcs = small_inputs
    sources = [
        {"name": "gsm8k", "paths": ["gsm.jsonl.gz"],
         "options": {"fmt": "jsonl", "text_field": "question,answer"},
         "config": {"text": {"id_field": "id"}}},
        {"name": "tatoeba", "paths": [str(d / "tatoeba.deu-eng.deu")], "options": {"fmt": "text"},
         "config": {"text": {"lang_pattern": r"\.([a-z]{3})$", "lines_per_doc": 20}}}]
    f = tmp_path / "sources.yaml"
    f.write_text(yaml.safe_dump({"sources": sources}))
    one = str(tmp_path / "one_job")
    assert not main(["--sources", str(f), "--base", str(d), "--output", one])

    each = str(tmp_path / "per_source")
    for s in sources:
        o = s["options"]
        run_extract(spark, str(d / s["paths"][0]) if s["name"] == "gsm8k" else s["paths"][0],
                    each, config=s["config"], source=s["name"], fmt=o["fmt"],
                    text_field=o.get("text_field"))

    def rows(p):
        return sorted(tuple(r) for r in read_table(spark, p).select(
            "source", "doc_id", F.sha1("text"), "html_lang").collect())
    assert rows(one) == rows(each) and {r[0] for r in rows(one)} == {"gsm8k", "tatoeba"}
    assert len(rows(one)) == 5 + 3

    # checked before any work: an unknown key, a repeated name, an input that matches nothing
    bad = tmp_path / "bad.yaml"
    for entries, err in (([dict(sources[0], derived="math_train")], ConfigError),
                         ([sources[0], sources[0]], ConfigError),
                         ([sources[0], dict(sources[1], paths=["missing/*.txt"])], InputNotFound)):
        bad.write_text(yaml.safe_dump({"sources": entries}))
        out = tmp_path / "refused"
        with pytest.raises(err):
            main(["--sources", str(bad), "--base", str(d), "--output", str(out)])
        assert not out.exists()
    with pytest.raises(SystemExit):       # per-source flags belong in the file
        main(["--sources", str(f), "--source", "x", "--output", str(tmp_path / "x")])
