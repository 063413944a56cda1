"""WARC/ARC/WET reading: every file of the sample's warc/ folder (some broken on purpose) is read
without a crash and every record is accounted for; splitting a record-gzipped file gives the same
records as reading it whole."""
import glob
import os

import pytest

from curation.extract.stage import warc_record_to_row, DEFAULTS
from core.config import merge
from curation.extract.warc import Problem, RawRecord, iter_records, new_tally, plan_file


def _read_all(path, split_bytes=1 << 40, tally=None):
    out = []
    for (p, s, e, lay) in plan_file(path, split_bytes):
        out.extend(iter_records(p, s, e, lay, max_bytes=5_000_000, tally=tally))
    return out


def test_every_sample_file_reads_without_crash(corpus):
    files = sorted(f for f in glob.glob(str(corpus / "warc" / "**" / "*"), recursive=True)
                   if os.path.isfile(f))
    assert len(files) >= 40
    total = 0
    corrupt_files = set()
    for f in files:
        tally = new_tally()
        recs = _read_all(f, tally=tally)
        assert recs, f"nothing read from {f}"
        for r in recs:
            assert isinstance(r, (RawRecord, Problem))
            if isinstance(r, Problem):
                corrupt_files.add(os.path.basename(f))
                assert r.end is None or r.end > r.offset      # a real, non-empty byte range
        assert tally["records"] == sum(isinstance(r, RawRecord) for r in recs)
        total += tally["records"]
    # only the files broken on purpose lose bytes; a wrong length that warcio overshoots (ClueWeb09,
    # ARC header lengths) is a resync, not a corrupt range
    assert corrupt_files == {"clipped.warc.gz", "example-wrong-chunks.warc.gz"}
    assert total > 2500


def test_known_counts_and_recovery(corpus):
    recs = _read_all(str(corpus / "warc" / "aut" / "example.warc.gz"))
    types = [r.rec_type for r in recs]
    assert types.count("response") == 299 and types.count("request") == 261
    assert types.count("metadata") == 261 and types.count("warcinfo") == 1
    # ARC with wrong header lengths: warcio overshoots, the reader finds the record again
    tally = new_tally()
    recs = _read_all(str(corpus / "warc" / "copycat-cc-arc" / "small-sample-1213893279526_0.arc"),
                     tally=tally)
    assert not [r for r in recs if isinstance(r, Problem)] and tally["resyncs"] >= 1
    assert sum(isinstance(r, RawRecord) and r.rec_type == "response" for r in recs) > 100
    # ARC records have no stable WARC-Record-ID (warcio invents random ones): None
    assert all(r.record_id is None for r in recs if isinstance(r, RawRecord))
    # truncated gzip: the record is reported, never an exception
    recs = _read_all(str(corpus / "warc" / "resiliparse" / "clipped.warc.gz"))
    assert any(isinstance(r, Problem) for r in recs)


def test_split_ranges_read_the_same_records(corpus):
    """Byte ranges planned from the file size alone (no decompression): each range resyncs to the
    first gzip member at or after its start, so the ranges together read every record once."""
    for name, split in (("aut/example.warc.gz", 300_000), ("aut/example.warc.gz", 77_777),
                        ("aut/example.arc.gz", 250_000),
                        ("copycat-cc-arc/clueweb09-en0000-00.warc.gz", 10_000)):  # gzipped whole
        path = str(corpus / "warc" / name)
        ranges = plan_file(path, split)
        assert len(ranges) >= 5
        for a, b in zip(ranges, ranges[1:]):
            assert a[2] == b[1]                      # ranges tile the file
        whole = [(r.offset, r.rec_type, r.record_id, r.url) for r in _read_all(path)]
        split_recs = [(r.offset, r.rec_type, r.record_id, r.url) for r in _read_all(path, split)]
        assert whole == split_recs and len(whole) > 20, name


def test_record_dispatch_reasons(corpus):
    cfg = merge(DEFAULTS, {})
    recs = _read_all(str(corpus / "warc" / "warcio-edgecases" / "example.warc.gz"))
    reasons = {r.rec_type: warc_record_to_row(r, "t", cfg).get("reason") for r in recs}
    assert reasons["request"] == "skipped.request"
    assert reasons["warcinfo"] == "skipped.warcinfo"
    assert reasons["revisit"] == "skipped.revisit"
    rows = [warc_record_to_row(r, "t", cfg) for r in recs]
    docs = [r for r in rows if r["_kind"] == "doc"]
    assert len(docs) == 1 and "Example Domain" in (docs[0]["title"] or "")
    assert docs[0]["url_canonical"] == "http://example.com/" and docs[0]["domain"] == "example.com"
    # WET: conversion records are taken as text
    wet = _read_all(str(corpus / "warc" / "cc-whirlwind" / "whirlwind.warc.wet.gz"))
    rows = [warc_record_to_row(r, "t", cfg) for r in wet]
    conv = [r for r in rows if r["_kind"] == "doc"]
    assert len(conv) == 1 and conv[0]["extraction"]["extractor"] == "wet"
    assert conv[0]["fetch_time"] is not None and conv[0]["n_words"] > 50
    assert [r["reason"] for r in rows if r["_kind"] == "reject"] == ["skipped.warcinfo"]


def test_doc_id_stable(corpus):
    cfg = merge(DEFAULTS, {})
    path = str(corpus / "warc" / "cc-whirlwind" / "whirlwind.warc.gz")
    a = [warc_record_to_row(r, "crawl", cfg).get("doc_id") for r in _read_all(path)]
    b = [warc_record_to_row(r, "crawl", cfg).get("doc_id") for r in _read_all(path)]
    assert a == b and any(a)
    c = [warc_record_to_row(r, "other", cfg).get("doc_id") for r in _read_all(path)]
    assert set(filter(None, a)).isdisjoint(filter(None, c))
