"""Typed text fields, counted replacements and bounded decompression in the extraction readers
(issue 19). Engine-free: the functions every Spark task runs, on files written here."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.extract.sources import iter_jsonl, iter_parquet, iter_plain
from curation.extract.warc import Problem

ROOT = Path(__file__).resolve().parent.parent


def test_non_string_text_field_is_a_reject_with_its_type(tmp_path):
    """Before: a list or a boolean in the text field became its Python repr as document text."""
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [
        {"text": ["a", "list"]}, {"text": True}, {"text": 12}, {"q": "Q?", "a": {"x": 1}},
        {"text": "a real document"}]) + "\n")
    got = list(iter_jsonl(str(p), {"text_field": "text"}))
    assert [g.reason if isinstance(g, Problem) else g["text"] for g in got] == [
        "rejected.bad_field_type", "rejected.bad_field_type", "rejected.bad_field_type",
        "rejected.missing_field", "a real document"]
    assert "is a list" in got[0].detail and "is a bool" in got[1].detail
    two = list(iter_jsonl(str(p), {"text_field": ["q", "a"]}))[3]
    assert two.reason == "rejected.bad_field_type" and "field 'a' is a dict" in two.detail


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    """Before: invalid bytes became U+FFFD with no counter."""
    p = tmp_path / "a.jsonl.gz"
    with gzip.open(p, "wb") as f:
        f.write(b'{"text": "caf\xe9 and \xff\xfe"}\n{"text": "clean \xef\xbf\xbd kept"}\n')
    a, b = list(iter_jsonl(str(p), {"text_field": "text"}))
    assert a["text"] == "caf\ufffd and \ufffd\ufffd" and a["replaced"] == 3
    assert b["replaced"] == 0 and "\ufffd" in b["text"]       # a real U+FFFD is not counted
    t = tmp_path / "t.txt"
    t.write_bytes(b"line one\nline \xc3\x28 two\n")
    (doc,) = list(iter_plain(str(t), {"lines_per_doc": 5}))
    assert doc["replaced"] == 1


def test_parquet_with_the_wrong_schema_is_one_reject_naming_its_columns(tmp_path):
    """Before: one `missing_field` reject per row, and the columns were never named."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    p = tmp_path / "w.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "body": ["x", "y", "z"]}), p)
    got = list(iter_parquet(str(p), {"text_field": "text"}))
    assert len(got) == 1 and got[0].reason == "rejected.bad_schema"
    assert "no column ['text']" in got[0].detail and "id (int64), body (string)" in got[0].detail
    q = tmp_path / "n.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), q)
    (bad,) = list(iter_parquet(str(q), {"text_field": "text"}))
    assert bad.reason == "rejected.bad_schema" and "non-string text column ['text (int64)']" in bad.detail


def test_parquet_reader_closes_its_file(tmp_path):
    """Before: the reader never closed the handle it opened for the ParquetFile; CPython closed
    it when the generator was freed, with an "unclosed file" ResourceWarning (and on an
    interpreter without reference counting, not until a collection)."""
    import warnings

    import pyarrow as pa
    import pyarrow.parquet as pq
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["one", "two"]}), p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = list(iter_parquet(str(p), {"text_field": "text"}))
        bad = list(iter_parquet(str(p), {"text_field": "body"}))     # the reject path too
        first = next(iter_parquet(str(p), {"text_field": "text"}))   # abandoned mid-file
    assert [r["text"] for r in rows] == ["one", "two"] and first["text"] == "one"
    assert bad[0].reason == "rejected.bad_schema"
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], \
        [str(w.message) for w in caught]


def _bomb(path: Path, gib: int = 4) -> None:
    """A gzip file that inflates to `gib` GiB of zeros: one 64 MiB member repeated (~4 MB/4 GiB)."""
    member = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(b"<html><body><p>"))
        for _ in range(gib * 16):
            f.write(member)


CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a runaway inflate fails, not the machine
from curation.extract.stage import DEFAULTS, html_file_to_row
from curation.extract.sources import iter_jsonl
row = html_file_to_row(sys.argv[2], "s", DEFAULTS, None)
lines = [getattr(r, "reason", "doc") for r in iter_jsonl(sys.argv[3], {"text_field": "text"})]
# VmHWM: this process image's own peak RSS. ru_maxrss would not do: Linux carries it over from
# the forking parent (pytest with the whole suite imported: 770 MB) across exec.
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"reason": row["reason"], "detail": row["detail"], "lines": lines, "peak_mb": peak}))
"""


def test_gzip_bombs_stay_under_a_memory_bound(tmp_path):
    """Before: a .html.gz input was decompressed whole before the size cap (4.2 MB holding 4 GiB
    peaked at 8.4 GB). Now the readers stop at the cap while streaming: measured as the peak RSS
    of a child process reading a 4 GiB-in-4 MB page and a one-line JSONL bomb."""
    page = tmp_path / "bomb.html.gz"
    _bomb(page, 4)
    assert page.stat().st_size < 8 << 20
    lines = tmp_path / "bomb.jsonl.gz"
    with open(lines, "wb") as f:
        f.write(gzip.compress(b'{"text": "before"}\n{"text": "'))
        member = gzip.compress(b"a" * (64 << 20), compresslevel=9)
        for _ in range(4):                      # one 256 MiB line
            f.write(member)
        f.write(gzip.compress(b'"}\n{"text": "after"}\n'))
    r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(page), str(lines)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    peak_mb = out["peak_mb"]          # the child's own peak RSS (VmHWM of its process image)
    assert out["reason"] == "rejected.too_large" and "after decompression" in out["detail"]
    assert out["lines"] == ["doc", "rejected.too_large", "doc"]
    assert peak_mb < 400, f"child peak RSS {peak_mb:.0f} MB"
    print(f"peak RSS of the reading process: {peak_mb:.0f} MB")
