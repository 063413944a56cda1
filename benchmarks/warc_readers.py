"""warcio vs FastWARC on the sample's WARC/ARC/WET files: robustness (files read to the end without
an exception, records seen) and speed (records/s iterating the two crawl files, payloads read).

    pip install -e '.[bench]'     # FastWARC: a benchmark-only dependency
    python benchmarks/warc_readers.py
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import glob
import io
import time

from core.paths import corpus_dir
from curation.extract.warc import Problem, iter_records


def read_warcio(path):
    from warcio.archiveiterator import ArchiveIterator
    n = 0
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, arc2warc=True):
            rec.content_stream().read()
            n += 1
    return n


def read_fastwarc(path):
    from fastwarc.warc import ArchiveIterator
    n = 0
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, parse_http=True):
            rec.reader.read()
            n += 1
    return n


def read_ours(path):
    n = p = 0
    for r in iter_records(path):
        n += 1
        p += isinstance(r, Problem)
    return n - p


def main():
    root = corpus_dir()
    files = sorted(f for f in glob.glob(str(root / "warc" / "**" / "*"), recursive=True) if os.path.isfile(f))
    readers = {"warcio": read_warcio, "fastwarc": read_fastwarc, "curation.extract.warc": read_ours}
    print(f"robustness over {len(files)} files in warc/:")
    for name, fn in readers.items():
        ok = recs = 0
        for f in files:
            err = sys.stderr
            sys.stderr = io.StringIO()
            try:
                recs += fn(f)
                ok += 1
            except Exception:
                pass
            finally:
                sys.stderr = err
        print(f"  {name:14s} files read to the end: {ok}/{len(files)}  records (clean files): {recs}")
    crawl = sorted(glob.glob(str(root / "crawl" / "*.warc.gz")))
    print("speed on crawl/*.warc.gz (records/s, payloads read; best of 3):")
    for name, fn in readers.items():
        best = None
        for _ in range(3):
            t = time.perf_counter()
            n = sum(fn(f) for f in crawl)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        print(f"  {name:14s} {n} records in {best:.2f}s = {n / best:,.0f} records/s")


if __name__ == "__main__":
    main()
