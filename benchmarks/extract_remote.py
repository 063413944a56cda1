"""Extraction from object storage, measured side by side in one run (docs/BENCHMARKS.md).

1. `overhead`: the sample crawl WARCs extracted by `run_extract` (local Spark, local[2]) from the
   local disk and from a local S3-compatible server (SeaweedFS, started here on 127.0.0.1), in the
   order local, s3, s3, local (so drift in the shared machine's load hits both alike); prints each
   time, the documents (must be equal) and the s3/local time ratio.
2. `planning`: the driver side of extraction as the input grows to 10, 100 and 1,000 WARC files
   (copies of the first gzip members of a sample crawl under new names, uploaded to the server):
   listing (`core.fs.expand`), byte-range planning (`plan_file` from the listed sizes, on the
   driver, as `run_extract` does) and grouping, with the driver's Python memory peak
   (tracemalloc) and RSS growth.

    python benchmarks/extract_remote.py overhead [--files N | --file NAME] [--repeat PAIRS]
    python benchmarks/extract_remote.py planning [--sizes 10,100,1000] [--members 3]
"""
from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cluster_fixtures import S3Server  # noqa: E402
from core.paths import corpus_dir  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def bench_bucket(tmp: str):
    """A local S3 server (SeaweedFS) under `tmp`, `core.fs` pointed at it, with a bucket `bench`;
    yields the server's filesystem client."""
    from core import fs
    with S3Server(Path(tmp) / "s3") as s3:
        s3.start()
        os.environ.update(s3.env)
        fs._FS_CACHE.clear()
        cli = s3.client()
        cli.mkdir("bench")
        yield cli


def session():
    from core.spark import get_spark
    return get_spark("bench-extract-remote", master="local[2]", memory="3g", shuffle_partitions=4,
                     extra_conf={"spark.ui.showConsoleProgress": "false"})


def overhead(args) -> None:
    from curation.extract.stage import run_extract
    files = sorted((corpus_dir() / "crawl").glob("*.warc.gz"))[: args.files]
    if args.file:
        files = [corpus_dir() / "crawl" / args.file]
    mb = sum(f.stat().st_size for f in files) / 1e6
    with tempfile.TemporaryDirectory() as tmp, bench_bucket(tmp) as cli:
        for f in files:
            cli.put_file(str(f), f"bench/crawl/{f.name}")
        spark = session()
        inputs = {"local": [str(f) for f in files],
                  "s3": [f"s3://bench/crawl/{f.name}" for f in files]}
        times = {"local": [], "s3": []}
        docs = {}
        for i, where in enumerate(("local", "s3", "s3", "local")[: 2 * args.repeat]):
            out = os.path.join(tmp, f"out-{i}")
            t = time.perf_counter()
            st = run_extract(spark, inputs[where], out, source="crawl")
            times[where].append(time.perf_counter() - t)
            docs.setdefault(where, st.counters["documents"])
            print(f"{where:5s} run {i}: {times[where][-1]:6.1f} s, "
                  f"{st.counters['documents']} documents", flush=True)
            shutil.rmtree(out, ignore_errors=True)
        spark.stop()
    assert docs["local"] == docs["s3"], docs
    lt, st_ = sum(times["local"]), sum(times["s3"])
    print(f"inputs: {len(files)} WARCs, {mb:.1f} MB, {docs['local']} documents")
    print(f"local disk {lt / len(times['local']):.1f} s per run, S3 server "
          f"{st_ / len(times['s3']):.1f} s per run: s3/local = {st_ / lt:.3f} "
          f"(overhead {100 * (st_ / lt - 1):+.1f}%)")


def _members(path: Path, n: int) -> bytes:
    """The first `n` gzip members (records) of a record-gzipped WARC."""
    import zlib
    data = path.read_bytes()
    pos = 0
    for _ in range(n):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
    return data[:pos]


def planning(args) -> None:
    from core import fs
    from curation.extract.sources import group_tasks
    from curation.extract.warc import plan_file
    src = sorted((corpus_dir() / "crawl").glob("*.warc.gz"))[0]
    body = _members(src, args.members)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp, bench_bucket(tmp) as cli:
        t = time.perf_counter()
        for n in sizes:    # one prefix per size: the listing of n files lists n objects
            cli.pipe({f"bench/warcs-{n}/CC-BENCH-{i:05d}.warc.gz": body for i in range(n)})
        print(f"uploaded {sum(sizes)} WARCs of {len(body) / 1e3:.0f} kB ({args.members} records) "
              f"in {time.perf_counter() - t:.1f} s", flush=True)
        split = 8_000_000
        fs.expand(f"s3://bench/warcs-{sizes[0]}/*.warc.gz")   # warm: client and imports
        for n in sizes:
            pattern = f"s3://bench/warcs-{n}/CC-BENCH-*.warc.gz"
            fs.get_fs(pattern)[0].invalidate_cache()
            rss0 = rss_mb()
            tracemalloc.start()
            t0 = time.perf_counter()
            listed = fs.expand(pattern)
            assert len(listed) == n
            t1 = time.perf_counter()
            # as run_extract plans: on the driver, from the listing's sizes alone
            known = {f.path: f.size for f in listed}
            tasks = [(p, s_, e, lay, "warc") for f in listed
                     for (p, s_, e, lay) in plan_file(f.path, split, size=f.size)]
            tasks.sort(key=lambda x: (x[0], x[1]))
            groups = group_tasks(tasks, [(x[2] - x[1]) if x[2] is not None else known[x[0]] - x[1]
                                         for x in tasks], split, min_groups=4)
            t2 = time.perf_counter()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{n:5d} files: listing {1000 * (t1 - t0):7.1f} ms, planning "
                  f"{1000 * (t2 - t1):7.1f} ms ({1e6 * (t2 - t0) / n:.0f} us/file listed and "
                  f"planned), {len(tasks)} ranges in {len(groups)} Spark tasks; driver Python "
                  f"peak {peak / 1e6:.2f} MB, RSS {rss_mb():.0f} MB (+{rss_mb() - rss0:.0f})",
                  flush=True)
    print(f"(max RSS of the driver process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--files", type=int, default=2)
    o.add_argument("--file", default=None, help="one sample crawl file by name instead")
    o.add_argument("--repeat", type=int, default=2, help="pairs of runs (1: local, s3)")
    p = sub.add_parser("planning")
    p.add_argument("--sizes", default="10,100,1000")
    p.add_argument("--members", type=int, default=3, help="records per replicated WARC")
    args = ap.parse_args()
    {"overhead": overhead, "planning": planning}[args.cmd](args)
    os._exit(0)


if __name__ == "__main__":
    main()
