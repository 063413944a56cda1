"""FastWARC against the job's reader, end to end (issue 14: "use FastWARC for WARC 1.x files if it
measures faster end to end").

A FastWARC-based `iter_records` (defined here, for the measurement: same signature, same
`RawRecord`s, same byte-range rule: resynchronise to the first gzip member at or after `start`
with the job's own `next_member`, stop at the first record starting at or after `end`) is compared
with `curation.extract.warc.iter_records` on the sample crawl (crawl/*.warc.gz):

1. **Same records**: offset, type, record id, URL, date, HTTP status, content type, payload
   (sha1) and payload length of every record, whole files and 8 MB byte ranges.
2. **Reading alone**: records with their payloads read, best of `--rounds`, the two readers
   alternated.
3. **End to end**: `process_task` (the per-task code of the Spark job: reading, the sandboxed
   trafilatura extraction, the row) over the same files with either reader, alternated
   (A B B A ...), so both see the same load.

    pip install -e '.[bench]'     # FastWARC: a benchmark-only dependency
    python benchmarks/warc_fastwarc.py [--rounds 2] [--files crawl-2024-06.warc.gz ...]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

from core import fs  # noqa: E402
from core.config import merge  # noqa: E402
from core.paths import corpus_dir  # noqa: E402
from curation.extract import stage as stage_mod  # noqa: E402
from curation.extract import warc as warc_mod  # noqa: E402
from curation.extract.warc import RawRecord, new_tally, next_member, plan_file, read_payload  # noqa: E402

HTTP_RECORDS = ("response", "request", "revisit")


def iter_records_fastwarc(path, start=0, end=None, layout=None, max_bytes=0, log=None, tally=None):
    """FastWARC reading WARC 1.x record-gzipped (or plain) files, with warcio's rules for when a
    record has HTTP headers (a response/request/revisit whose URI is http(s)), so that the records
    are the job reader's. No ARC, no WARC 0.18, no recovery: an error propagates (an adoption
    would fall back to the current reader from the failing offset)."""
    from fastwarc.warc import ArchiveIterator
    if tally is None:
        tally = new_tally()
    for k, v in new_tally().items():
        tally.setdefault(k, v)
    with fs.open_input(path, 0, None) as raw:
        pos = 0 if not start else next_member(raw, start, end)
        if pos is None:
            return
        raw.seek(pos)
        for rec in ArchiveIterator(raw, parse_http=False, stream_detect=True):
            offset = rec.stream_pos
            if end is not None and offset >= end:
                return
            h = rec.headers
            rt = str(rec.record_type)
            url = h.get("WARC-Target-URI")
            if url and url.startswith("<") and url.endswith(">"):
                url = url[1:-1]
            if url and " " in url:
                url = url.replace(" ", "%20")     # as warcio writes it
            status = ctype = lang = None
            http = rt in HTTP_RECORDS and bool(url) and url.startswith(("http:", "https:")) and \
                rec.content_length > 0
            if http:
                rec.parse_http(auto_decode="all")
                status = rec.http_headers.status_code
                ctype = rec.http_headers.get("Content-Type")
                lang = rec.http_headers.get("Content-Language")
            if ctype is None:
                ctype = h.get("Content-Type")
            payload, plen, err = None, 0, None
            try:
                payload, plen = read_payload(rec.reader, max_bytes)
            except Exception as e:  # noqa: BLE001
                err = f"{type(e).__name__}: {str(e)[:200]}"
            rid = h.get("WARC-Record-ID")
            date = h.get("WARC-Date")
            tally["records"] += 1
            yield RawRecord(file=path, offset=offset, rec_type=rt, url=url,
                            date=date.strip() if date else None,
                            record_id=rid.strip() if rid else None, content_type=ctype,
                            http_status=status, content_language=lang, payload=payload,
                            payload_len=plen, error=err)


def key(r):
    if not isinstance(r, RawRecord):
        return ("problem", r.offset, r.reason)
    return (r.offset, r.rec_type, r.record_id, r.url, r.date, r.http_status,
            (r.content_type or "").strip(), r.content_language,
            hashlib.sha1(r.payload or b"").hexdigest(), r.payload_len, r.error)


def read_all(reader, tasks, max_bytes):
    out, tally = [], new_tally()
    for (p, s, e, lay) in tasks:
        out.extend(key(r) for r in reader(p, s, e, lay, max_bytes=max_bytes, tally=tally))
    return out, tally


def compare(files, max_bytes):
    print("same records (offset, type, id, URL, date, status, content type, payload sha1, length):")
    for split in (None, 8_000_000):
        tasks = [t for f in files for t in plan_file(f, split or 1 << 40)]
        a, ta = read_all(warc_mod.iter_records, tasks, max_bytes)
        b, tb = read_all(iter_records_fastwarc, tasks, max_bytes)
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        print(f"  {'whole files' if split is None else '8 MB byte ranges'} ({len(tasks)} tasks): "
              f"current {len(a)} records (tally {ta['records']}), FastWARC {len(b)} "
              f"(tally {tb['records']}); differing records: {len(diff) + abs(len(a) - len(b))}")
        for x, y in diff[:3]:
            print("    current :", x)
            print("    FastWARC:", y)


def time_reading(files, rounds, max_bytes):
    tasks = [t for f in files for t in plan_file(f, 1 << 40)]
    best = {"current": float("inf"), "fastwarc": float("inf")}
    readers = {"current": warc_mod.iter_records, "fastwarc": iter_records_fastwarc}
    n = 0
    for r in range(rounds):
        for name in (("current", "fastwarc") if r % 2 == 0 else ("fastwarc", "current")):
            t = time.perf_counter()
            n = len(read_all(readers[name], tasks, max_bytes)[0])
            best[name] = min(best[name], time.perf_counter() - t)
    print(f"reading alone ({n} records, payloads read, best of {rounds}): current "
          f"{best['current']:.2f} s ({n / best['current']:.0f} records/s), FastWARC "
          f"{best['fastwarc']:.2f} s ({n / best['fastwarc']:.0f} records/s); "
          f"FastWARC saves {1000 * (best['current'] - best['fastwarc']) / n:.1f} ms per record")
    return best, n


def one_pass(files, reader):
    """process_task (reading + sandboxed extraction + rows) over the files with `reader`."""
    stage_mod.iter_records = reader
    cfg = merge(stage_mod.DEFAULTS, {})
    t = time.perf_counter()
    rows = []
    try:
        for f in files:
            for task in plan_file(f, 1 << 40):
                for row in stage_mod.process_task((*task, "warc"), "crawl", cfg):
                    rows.append((row["_kind"], row.get("doc_id"), row.get("reason"),
                                 hashlib.sha256((row.get("text") or "").encode()).hexdigest()))
    finally:
        stage_mod.iter_records = warc_mod.iter_records
    return time.perf_counter() - t, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", nargs="*", default=["crawl-2024-01.warc.gz", "crawl-2024-06.warc.gz"])
    ap.add_argument("--rounds", type=int, default=2, help="end-to-end rounds (each: both readers)")
    ap.add_argument("--read-rounds", type=int, default=4)
    args = ap.parse_args()
    logging.disable(logging.WARNING)   # trafilatura's warnings
    import fastwarc
    files = [str(corpus_dir() / "crawl" / f) for f in args.files]
    max_bytes = stage_mod.DEFAULTS["max_bytes"]
    print(f"FastWARC {getattr(fastwarc, '__version__', '?')}; files: {', '.join(args.files)}; "
          f"load average {os.getloadavg()}")
    compare(files, max_bytes)
    read_best, n = time_reading(files, args.read_rounds, max_bytes)
    if args.rounds < 1:           # reading alone
        return
    readers = {"current": warc_mod.iter_records, "fastwarc": iter_records_fastwarc}
    one_pass(files[:1], iter_records_fastwarc)      # warm imports, caches, the sandbox's fork
    tot = {"current": 0.0, "fastwarc": 0.0}
    outs = {}
    for r in range(args.rounds):
        for name in (("current", "fastwarc") if r % 2 == 0 else ("fastwarc", "current")):
            secs, rows = one_pass(files, readers[name])
            tot[name] += secs
            outs.setdefault(name, rows)
            docs = sum(k == "doc" for k, *_ in rows)
            print(f"end to end round {r} {name:8s}: {secs:.1f} s, {len(rows)} rows, {docs} documents, "
                  f"{docs / secs:.2f} documents/s; load average {os.getloadavg()}", flush=True)
    same = sorted(outs["current"]) == sorted(outs["fastwarc"])
    print(f"end to end: FastWARC / current time {tot['fastwarc'] / tot['current']:.3f} "
          f"({100 * (1 - tot['fastwarc'] / tot['current']):+.1f}% saved); same rows (kind, doc_id, "
          f"reason, sha256(text)): {same}")
    saved = read_best["current"] - read_best["fastwarc"]
    per_pass = tot["current"] / args.rounds
    print(f"reading's share of the current end-to-end pass: {100 * read_best['current'] / per_pass:.1f}%;"
          f" the most FastWARC can save end to end: {100 * saved / per_pass:.1f}%")


if __name__ == "__main__":
    main()
