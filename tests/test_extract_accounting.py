"""Accounting that can fail: the reader counts records on its own, resync regions are corrupt
byte ranges (not records), an exception on one record rejects that record only, and the job
refuses to write when records read != documents + rejects for a file."""
import pytest

from core.config import merge
from curation.extract.stage import (DEFAULTS, AccountingError, CORRUPT_RANGE, _unified_schema,
                                    check_accounting, process_task)
from curation.extract.warc import Problem, RawRecord, iter_records, new_tally, plan_file
from warc_fixtures import member_starts, page, write_warc


def _read(path):
    tally = new_tally()
    items = []
    for (p, s, e, lay) in plan_file(path, 1 << 40):
        items.extend(iter_records(p, s, e, lay, max_bytes=5_000_000, tally=tally))
    return items, tally


def test_clueweb_resyncs_are_not_records(corpus):
    # ClueWeb09 (WARC 0.18): every record's length is off, warcio overshoots into the next header
    # and the reader finds it again: 24 good records, nothing lost, so nothing is a reject
    items, tally = _read(str(corpus / "warc" / "copycat-cc-arc" / "clueweb09-en0000-00.warc.gz"))
    assert sum(isinstance(r, RawRecord) for r in items) == 24
    assert [r for r in items if isinstance(r, Problem)] == []
    assert tally["records"] == 24 and tally["corrupt_ranges"] == 0 and tally["resyncs"] == 22


def test_corrupt_member_is_a_byte_range(tmp_path):
    urls = [f"http://site.example/{i}" for i in range(5)]
    path = write_warc(tmp_path / "five.warc.gz", [(u, page(i), None) for i, u in enumerate(urls)])
    starts = member_starts(path)
    assert len(starts) == 5
    data = bytearray(open(path, "rb").read())
    mid = (starts[2] + starts[3]) // 2
    data[mid:mid + 40] = b"\xff" * 40           # garbage inside the third record's gzip member
    open(path, "wb").write(bytes(data))
    items, tally = _read(path)
    recs = [r for r in items if isinstance(r, RawRecord)]
    probs = [r for r in items if isinstance(r, Problem)]
    assert [r.url for r in recs] == urls[:2] + urls[3:]
    assert len(probs) == 1 and probs[0].offset == starts[2] and probs[0].end == starts[3]
    assert tally == {"records": 4, "corrupt_ranges": 1, "corrupt_bytes": starts[3] - starts[2],
                     "resyncs": 0}
    rows = list(process_task((path, 0, None, "members", "warc"), "t", merge(DEFAULTS, {})))
    kinds = [(r["_kind"], r.get("record_type")) for r in rows]
    assert kinds.count(("reject", CORRUPT_RANGE)) == 1 and kinds[-1][0] == "tally"
    assert rows[-1]["n_bytes_raw"] == 4 and sum(k == "doc" for k, _ in kinds) == 4


class _FailsOnOnePage:
    """An extractor with a bug on one page (raises), as a parser or our own code can."""

    def extract(self, payload, url=None, http_charset=None, cfg=None):
        if url.endswith("/2"):
            raise RuntimeError("extractor bug on this page")
        from curation.extract.html import extract_html
        return extract_html(payload, url=url, http_charset=http_charset, cfg=cfg)


def test_exception_mid_file_rejects_only_that_record(tmp_path):
    urls = [f"http://site.example/{i}" for i in range(5)]
    path = write_warc(tmp_path / "five.warc.gz", [(u, page(i), None) for i, u in enumerate(urls)])
    rows = list(process_task((path, 0, None, "members", "warc"), "t", merge(DEFAULTS, {}),
                             sandbox=_FailsOnOnePage()))
    by_url = {r["url"]: r for r in rows if r["_kind"] != "tally"}
    assert by_url[urls[2]]["reason"] == "rejected.row_error" and "extractor bug" in by_url[urls[2]]["detail"]
    assert [by_url[u]["_kind"] for u in urls] == ["doc", "doc", "reject", "doc", "doc"]
    assert rows[-1]["_kind"] == "tally" and rows[-1]["n_bytes_raw"] == 5


def test_job_refuses_a_mismatch(spark, tmp_path):
    path = write_warc(tmp_path / "three.warc.gz", [(f"http://s.example/{i}", page(i), None) for i in range(3)])
    rows = list(process_task((path, 0, None, "members", "warc"), "t", merge(DEFAULTS, {})))
    names = [f.name for f in _unified_schema().fields]

    def frame(rs):
        return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rs], _unified_schema())

    check_accounting(frame(rows))                   # complete: no error
    lost = [r for r in rows if r["_kind"] != "doc"] + [r for r in rows if r["_kind"] == "doc"][1:]
    with pytest.raises(AccountingError, match="read 3 records, wrote 2 documents"):
        check_accounting(frame(lost))
    extra = rows + [r for r in rows if r["_kind"] == "doc"][:1]
    with pytest.raises(AccountingError):
        check_accounting(frame(extra))
