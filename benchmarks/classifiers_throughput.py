"""Scoring speed (documents per second per core) and the share of each stream.

    python benchmarks/classifiers_throughput.py [--documents DELTA] [--master local[2]]

Sample documents (built from the corpus unless --documents names a documents Delta table):
crawl = main text of the 990 annotated crawl pages (trafilatura), thealgorithms = 4,261 source
files, gsm8k = 1,319 test problems with answers, math = 5,000 MATH problems with solutions,
udhr = 532 UDHR translations. All sources keep their names, so the configured source rules apply
(thealgorithms -> code, gsm8k/math -> math).

1. Each model alone and the whole per-batch function (`score_frame`) in this one Python process:
   documents per second on one core, on the same documents, side by side.
2. The scoring job (`run_score`, real Spark + Delta, read + score + write + statistics) on
   `--master` (default local[2]): documents per second per core = docs / seconds / cores.
3. The share of each stream in documents and in characters, for the crawl pages alone and for
   the whole sample.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from classifiers import recipes  # noqa: E402
from curation.filters import langid  # noqa: E402
from classifiers.stage import Scorer, load_score_config, resolve_model_dir, run_score, score_frame  # noqa: E402
from core.paths import corpus_dir  # noqa: E402


def sample_documents() -> list[dict]:
    c = corpus_dir()
    docs = []
    for p in recipes.eval_pages(c):
        if p["main"].strip():
            docs.append({"source": "crawl", "url": p["url"], "text": p["main"]})
    for r in recipes._read_jsonl(c / "code" / "thealgorithms.jsonl.gz"):
        docs.append({"source": "thealgorithms", "url": f"{r['repo']}/{r['path']}", "text": r["content"]})
    for i, line in enumerate(open(c / "math" / "gsm8k" / "test.jsonl")):
        r = json.loads(line)
        docs.append({"source": "gsm8k", "url": f"gsm8k/test/{i}", "text": r["question"] + "\n" + r["answer"]})
    for i, line in enumerate(open(c / "math" / "math-hendrycks" / "math" / "test.jsonl")):
        r = json.loads(line)
        docs.append({"source": "math", "url": f"math/test/{i}", "text": r["problem"] + "\n" + r["solution"]})
    import re
    ud = c / "multilingual" / "udhr" / "declaration"
    for f in sorted(os.listdir(ud)):
        raw = gzip.open(ud / f).read().decode("utf-8", "replace")
        body = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw.split("<body", 1)[-1])).strip()
        docs.append({"source": "udhr", "url": f"udhr/{f}", "text": body})
    for d in docs:
        d["doc_id"] = hashlib.sha1(f"{d['source']}:{d['url']}".encode()).hexdigest()
        d["n_chars"] = len(d["text"])
    return docs


def rate(fn, texts, repeat: int = 1) -> float:
    fn(texts[:50])  # warm (model load)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(texts)
    return repeat * len(texts) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", default=None, help="a documents Delta table instead of the built sample")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--single-docs", type=int, default=3000, help="documents for the one-process timings")
    args = ap.parse_args()
    import pandas as pd
    from core.spark import get_spark
    from core.tables import read_table, write_table
    from pyspark.sql import functions as F

    cfg = load_score_config(None)
    scorer = Scorer(cfg, str(resolve_model_dir(cfg["models"]["quality"], "quality")),
                    str(resolve_model_dir(cfg["models"]["domain"], "domain")))
    t0 = time.time()
    spark = get_spark("bench-score", master=args.master, shuffle_partitions=4)
    cores = spark.sparkContext.defaultParallelism
    tmp = tempfile.mkdtemp(prefix="bench_score_")
    try:
        if args.documents:
            in_path = args.documents
            pdf = read_table(spark, in_path).select("source", "text").limit(args.single_docs).toPandas()
        else:
            docs = sample_documents()
            print(f"built {len(docs):,} sample documents in {time.time() - t0:.1f} s", file=sys.stderr)
            pdf_all = pd.DataFrame(docs)
            in_path = os.path.join(tmp, "documents")
            write_table(spark.createDataFrame(pdf_all).repartition(8, "doc_id"), in_path)
            # the same mix, in a stable order, for the single-process timings
            pdf = pdf_all.sort_values("doc_id").head(args.single_docs).reset_index(drop=True)
        texts = pdf["text"].tolist()
        mean_chars = sum(len(t) for t in texts) / len(texts)
        print(f"== one process, one core, {len(texts):,} documents (mean {mean_chars:,.0f} chars), side by side")
        r_lid = rate(lambda x: langid.detect_languages(x), texts)
        r_q = rate(lambda x: scorer.quality.positive_scores(x), texts)
        r_d = rate(lambda x: scorer.domain.predict_proba(x), texts)
        r_all = rate(lambda x: score_frame(pdf.iloc[:len(x)], scorer), texts)
        for name, r in (("language ID (lid.176)", r_lid), ("quality model", r_q),
                        ("domain model", r_d), ("score_frame (all three + stream)", r_all)):
            print(f"  {name:<34} {r:>9,.0f} docs/s   ({r / r_all:.2f}x score_frame)")

        print(f"\n== scoring job (run_score: Delta read, score, write, statistics) on {args.master}")
        n = read_table(spark, in_path).count()
        out = os.path.join(tmp, "scored")
        times = []
        for i in range(2):
            t1 = time.time()
            run_score(spark, in_path, out, None, None)
            times.append(time.time() - t1)
        for i, s in enumerate(times):
            print(f"  run {i + 1}: {n:,} docs in {s:.1f} s = {n / s:,.0f} docs/s = {n / s / cores:,.0f} docs/s/core "
                  f"({cores} cores)")

        scored = read_table(spark, out)
        print("\n== stream shares (documents, characters)")
        for name, df in (("crawl pages", scored.where(F.col("source") == "crawl")), ("whole sample", scored)):
            rows = df.groupBy("stream").agg(F.count(F.lit(1)).alias("n"),
                                             F.sum(F.length("text")).alias("c")).collect()
            tn = sum(r["n"] for r in rows)
            tc = sum(r["c"] or 0 for r in rows)
            print(f"  {name}: {tn:,} docs, {tc:,} chars")
            for r in sorted(rows, key=lambda r: -r["n"]):
                print(f"    {str(r['stream']):<13} {r['n'] / tn:6.1%} of docs  {(r['c'] or 0) / tc:6.1%} of chars")
        print("\n== crawl pages by language (top 8)")
        for r in (scored.where(F.col("source") == "crawl").groupBy("lang").count()
                  .orderBy(F.desc("count"), "lang").limit(8).collect()):
            print(f"    {r['lang']:<8} {r['count']}")
        print("\n== per source: stream counts")
        for r in scored.groupBy("source", "stream").count().orderBy("source", "stream").collect():
            print(f"    {r['source']:<14} {str(r['stream']):<13} {r['count']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
