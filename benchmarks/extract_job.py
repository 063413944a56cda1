"""Whole-job throughput: jobs/extract.py's run_extract on the two sample crawl files
(crawl/*.warc.gz, 990 pages), local[2]; prints documents/s and the run's counters.

    python benchmarks/extract_job.py [--output /tmp/bench_documents]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import shutil
import time

from curation.extract.stage import run_extract
from core.paths import corpus_dir
from core.spark import get_spark


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", default="/tmp/bench_extract/documents")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    shutil.rmtree(os.path.dirname(args.output), ignore_errors=True)
    spark = get_spark("bench-extract", master=args.master)
    t = time.time()
    st = run_extract(spark, str(corpus_dir() / "crawl" / "*.warc.gz"), args.output, source="crawl")
    dt = time.time() - t
    c = st.counters
    print(f"documents={int(c['documents'])} records={int(c['records.seen'])} tasks={int(c['tasks'])} "
          f"seconds={dt:.1f} documents/s={c['documents'] / dt:.2f} "
          f"documents/s/core={c['documents'] / dt / 2:.2f}")


if __name__ == "__main__":
    main()
