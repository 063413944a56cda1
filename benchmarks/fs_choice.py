"""fsspec (s3fs) or pyarrow.fs for the filesystem layer? Side by side, in one run, on a local
S3-compatible server (SeaweedFS, as in the tests):

* read throughput: the sample crawl WARCs (two files, 31 MB) read whole in 8 MiB ranged GETs, and
  read as the WARC reader does (gzip-decompressed stream of the whole file);
* listing: a glob over `--objects` small objects (size and mtime of each, no file opened).

Each measurement is repeated `--repeat` times, alternating the two libraries; the median is
printed. Usage: python benchmarks/fs_choice.py [--objects 1000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cluster_fixtures import S3Server  # noqa: E402
from core.paths import corpus_dir  # noqa: E402

BLOCK = 8 << 20


def read_fsspec(fs, key: str) -> int:
    size = fs.size(key)
    n = 0
    for s in range(0, size, BLOCK):
        n += len(fs.cat_file(key, start=s, end=min(size, s + BLOCK)))
    return n


def read_arrow(afs, key: str) -> int:
    n = 0
    with afs.open_input_file(key) as f:
        size = f.size()
        for s in range(0, size, BLOCK):
            n += len(f.read_at(min(BLOCK, size - s), s))
    return n


def gunzip_fsspec(key: str) -> int:
    from core import fs as cfs
    with gzip.GzipFile(fileobj=cfs.open_input("s3://" + key), mode="rb") as g:
        return sum(len(b) for b in iter(lambda: g.read(1 << 20), b""))


def gunzip_arrow(afs, key: str) -> int:
    with afs.open_input_stream(key, compression=None, buffer_size=BLOCK) as f:
        with gzip.GzipFile(fileobj=f, mode="rb") as g:
            return sum(len(b) for b in iter(lambda: g.read(1 << 20), b""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import pyarrow.fs as pafs
    files = sorted((corpus_dir() / "crawl").glob("*.warc.gz"))
    total = sum(f.stat().st_size for f in files)
    with tempfile.TemporaryDirectory() as tmp, S3Server(Path(tmp)) as s3:
        s3.start()
        os.environ.update(s3.env)
        cli = s3.client()
        cli.mkdir("bench")
        for f in files:
            cli.put_file(str(f), f"bench/crawl/{f.name}")
        cli.pipe({f"bench/many/obj-{i:05d}.txt": b"x" * 100 for i in range(args.objects)})
        from core import fs as cfs
        sfs, _ = cfs.get_fs("s3://bench")
        afs = pafs.S3FileSystem(access_key=s3.access_key, secret_key=s3.secret_key,
                                endpoint_override=s3.endpoint.replace("http://", ""),
                                scheme="http", region="us-east-1")
        keys = [f"bench/crawl/{f.name}" for f in files]
        res = {k: [] for k in ("read.fsspec", "read.arrow", "gunzip.fsspec", "gunzip.arrow",
                               "list.fsspec", "list.arrow")}
        for _ in range(args.repeat):
            t = time.perf_counter(); n = sum(read_fsspec(sfs, k) for k in keys)
            res["read.fsspec"].append(time.perf_counter() - t); assert n == total
            t = time.perf_counter(); n = sum(read_arrow(afs, k) for k in keys)
            res["read.arrow"].append(time.perf_counter() - t); assert n == total
            t = time.perf_counter(); a = sum(gunzip_fsspec(k) for k in keys)
            res["gunzip.fsspec"].append(time.perf_counter() - t)
            t = time.perf_counter(); b = sum(gunzip_arrow(afs, k) for k in keys)
            res["gunzip.arrow"].append(time.perf_counter() - t); assert a == b
            sfs.invalidate_cache()
            t = time.perf_counter(); got = cfs.expand("s3://bench/many/*.txt")
            res["list.fsspec"].append(time.perf_counter() - t); assert len(got) == args.objects
            t = time.perf_counter()
            sel = afs.get_file_info(pafs.FileSelector("bench/many", recursive=True))
            got2 = [i for i in sel if i.type == pafs.FileType.File and i.path.endswith(".txt")]
            res["list.arrow"].append(time.perf_counter() - t); assert len(got2) == args.objects
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"inputs: {len(files)} WARCs, {total / 1e6:.1f} MB; {args.objects} objects to list; "
              f"median of {args.repeat}")
        for what in ("read", "gunzip"):
            f, a = med[f"{what}.fsspec"], med[f"{what}.arrow"]
            print(f"{what:7s} fsspec {total / f / 1e6:7.1f} MB/s   pyarrow {total / a / 1e6:7.1f} MB/s"
                  f"   fsspec/pyarrow time {f / a:.2f}")
        f, a = med["list.fsspec"], med["list.arrow"]
        print(f"list    fsspec {f * 1000:7.1f} ms     pyarrow {a * 1000:7.1f} ms     "
              f"fsspec/pyarrow time {f / a:.2f}")


if __name__ == "__main__":
    main()
