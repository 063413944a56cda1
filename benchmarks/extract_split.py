"""One task per file against split files: the extract job (`run_extract`, local[2]) on the sample
crawl (crawl/*.warc.gz: two record-gzipped WARCs, 18.8 and 12.8 MB, 1,110 records) with
`split_bytes` large enough for one task per file, and with the default `auto` (here 8 MB byte
ranges: total / (2 x cores) clamped to [8 MB, 1 GB]), alternated in one Spark session (A B B A ...)
so that both see the same load. Prints each run's wall time, tasks and the load average, and
whether every run's documents (doc_id, sha256(text)) and rejects are the same.

    python benchmarks/extract_split.py [--rounds 2] [--work /tmp/bench_split]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

from core.paths import corpus_dir  # noqa: E402
from core.spark import get_spark  # noqa: E402
from curation.extract.stage import run_extract  # noqa: E402

MODES = {"per_file": 1 << 40, "auto": "auto"}


def contents(spark, path):
    from pyspark.sql import functions as F
    docs = spark.read.format("delta").load(path) \
        .select("doc_id", F.sha2(F.col("text"), 256).alias("h")).collect()
    rej = spark.read.format("delta").load(path + "_rejects") \
        .select("input_file", "input_offset", "reason").collect()
    return sorted(map(tuple, docs)), sorted(map(tuple, rej))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", default="/tmp/bench_split")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    spark = get_spark("bench-extract-split", master=args.master)
    inp = str(corpus_dir() / "crawl" / "*.warc.gz")
    print(f"cores {spark.sparkContext.defaultParallelism}; load average {os.getloadavg()}", flush=True)
    # warm-up: Spark, Delta, the Python workers and the imports, on a small input (not timed)
    run_extract(spark, str(corpus_dir() / "warc" / "resiliparse" / "warcfile.warc.gz"),
                os.path.join(args.work, "warmup"), source="crawl")
    times = {m: [] for m in MODES}
    first = {}
    same = True
    for r in range(args.rounds):
        for mode in (("per_file", "auto") if r % 2 == 0 else ("auto", "per_file")):
            out = os.path.join(args.work, f"{mode}_{r}")
            la0 = os.getloadavg()[0]
            t = time.time()
            st = run_extract(spark, inp, out, {"split_bytes": MODES[mode]}, source="crawl")
            dt = time.time() - t
            c = st.counters
            times[mode].append(dt)
            got = contents(spark, out)
            first.setdefault("ref", got)
            same &= got == first["ref"]
            print(f"round {r} {mode:8s}: {dt:6.1f} s, split_bytes {int(c['split_bytes']):,}, "
                  f"{int(c['tasks'])} ranges in {int(c['spark_tasks'])} Spark tasks, "
                  f"{int(c['documents'])} documents + {int(c['rejects'])} rejects "
                  f"({int(c['records.seen'])} records), load average {la0:.1f} -> "
                  f"{os.getloadavg()[0]:.1f}; same (doc_id, sha256(text)) and rejects as the first "
                  f"run: {got == first['ref']}", flush=True)
            for suffix in ("", "_rejects", "_progress", "_stats"):
                shutil.rmtree(out + suffix, ignore_errors=True)
    a, p = sum(times["auto"]), sum(times["per_file"])
    print(f"auto / per_file wall time: {a / p:.3f} (total {a:.0f} s vs {p:.0f} s); all outputs "
          f"identical: {same}")
    spark.stop()


if __name__ == "__main__":
    main()
