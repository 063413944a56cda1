"""Mixer throughput: tokens/s of the whole Spark build against bare tiktoken
`encode_ordinary_batch` on the same text, in the same run.

    python benchmarks/mix_throughput.py [--copies 4] [--master local[2]]

The input is the sample corpus (all GSM8K/MATH, TheAlgorithms, Tatoeba/UDHR, article pages)
repeated `--copies` times under new doc_ids, as a Delta table. The build's spec gives each category
its share of the available tokens and a total of 90% of them, so the build tokenizes everything and
packs ~0.9 epochs of every source. Both timings tokenize the same documents; the build also reads
Delta, plans, orders, packs, interleaves and writes shards.

Fair comparison: bare tiktoken runs with `num_threads` = the cores Spark uses (its default
parallelism: 2 for `local[2]`), before and after the build; the ratio uses the mean of the two.
The build runs `--repeat` times (default 2) in one session: the first pays the start of Spark's
Python workers (and their tokenizer load), the later ones find them started, as a stage of a
pipeline run does. `--reference-threads 8` also times tiktoken's default 8 threads, and
`--reference-threads 1` one thread (the build's CPU cost per token: compare 2 x build time with it),
for reference only. The build's phases (seconds and Spark jobs each) are printed from its run
statistics.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--repeat", type=int, default=2,
                    help="builds in the same session (the first is cold, later ones warm)")
    ap.add_argument("--reference-threads", type=int, default=0,
                    help="also time bare tiktoken with this many threads (not the comparison)")
    args = ap.parse_args()

    from core.paths import corpus_dir
    from core.spark import get_spark
    from mixer.build import build_mix
    from fixtures.scored_table import sample_documents, write_sample_table
    from core.tokenizer import get_tokenizer

    work = Path(args.workdir or tempfile.mkdtemp(prefix="mixbench-"))
    spark = get_spark("mix-bench", master=args.master, shuffle_partitions=8)
    docs = sample_documents(corpus_dir(), per_stream=None)
    table = str(work / "table")
    n = write_sample_table(spark, corpus_dir(), table, per_stream=None, partitions=8,
                           copies=args.copies)
    texts = [d["text"] for d in docs] * args.copies
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"input: {n:,} documents, {mb:,.1f} MB of text ({args.copies} copies of "
          f"{len(docs):,} sample documents); Spark {args.master}")

    # Fair baseline: bare tiktoken gets as many threads as Spark runs tasks (its cores).
    cores = spark.sparkContext.defaultParallelism
    tok = get_tokenizer()
    # warm: a full untimed run first (the first run of a process also pays for allocating the
    # memory of ~N Python ints; later runs reuse it), so the timed runs are bare tiktoken at its best
    tok.encoding.encode_ordinary_batch(texts, num_threads=cores)
    ref_s = None
    if args.reference_threads and args.reference_threads != cores:
        t = time.time()
        tok.encoding.encode_ordinary_batch(texts, num_threads=args.reference_threads)
        ref_s = time.time() - t
    t = time.time()
    ids = tok.encoding.encode_ordinary_batch(texts, num_threads=cores)
    bare_s = time.time() - t
    bare_tokens = sum(len(x) for x in ids)
    per_stream = {}
    for d, x in zip(docs * args.copies, ids):
        per_stream[d["stream"]] = per_stream.get(d["stream"], 0) + len(x) + 1
    del ids
    print(f"bare tiktoken encode_ordinary_batch, num_threads={cores} (= Spark's cores): "
          f"{bare_tokens:,} tokens in {bare_s:.1f} s = {bare_tokens / bare_s:,.0f} tokens/s")
    if ref_s is not None:
        print(f"  (for reference, num_threads={args.reference_threads}: {ref_s:.1f} s = "
              f"{bare_tokens / ref_s:,.0f} tokens/s)")

    total = sum(per_stream.values())
    spec = {"stage": "bench", "seq_len": args.seq_len, "total_tokens": int(total * 0.9),
            "heldout_fraction": 0.0, "max_doc_tokens": 0, "on_infeasible": "rescale",
            "categories": {k: v / total for k, v in per_stream.items()},
            "sources": [{"name": k, "category": k, "filter": f"stream = '{k}'"}
                        for k in per_stream]}
    for rep in range(args.repeat):
        t = time.time()
        st = build_mix(spark, spec, str(work / "out"), input_path=table)
        build_s = time.time() - t
        # The machine may be shared: time bare tiktoken again right after the build and compare
        # the build with the mean of the two bare runs that bracket it.
        t = time.time()
        tok.encoding.encode_ordinary_batch(texts, num_threads=cores)
        bare2_s = time.time() - t
        print(f"bare tiktoken again after build {rep + 1}: {bare2_s:.1f} s")
        mean_bare = (bare_s + bare2_s) / 2
        bare_s = bare2_s
        kind = "cold: the session's first Python workers" if rep == 0 else \
            "warm: Python workers already started by the previous build"
        print(f"build {rep + 1} ({kind}) (read Delta, tokenize, plan, order, pack, interleave, "
              f"write shards): {bare_tokens:,} tokens tokenized, "
              f"{st.counters['tokens.out']:,.0f} written, in {build_s:.1f} s = "
              f"{bare_tokens / build_s:,.0f} tokens/s")
        phases = {k[len("seconds."):]: v for k, v in st.counters.items()
                  if k.startswith("seconds.") and k not in ("seconds.spark", "seconds.write")}
        jobs = {k[len("spark_jobs."):]: v for k, v in st.counters.items()
                if k.startswith("spark_jobs.")}
        print("  phases: " + ", ".join(f"{k} {v:.1f} s ({int(jobs.get(k, 0))} jobs)"
                                      for k, v in phases.items() if k in jobs))
        print(f"  build {rep + 1} time / bare tiktoken time (mean of the runs before and after: "
              f"{mean_bare:.1f} s) = {build_s / mean_bare:.2f} "
              f"(overhead {100 * (build_s / mean_bare - 1):+.0f}%)")
    spark.stop()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
