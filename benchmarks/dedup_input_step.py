"""Dedup's input step, side by side in one Spark session (issue 14's wall-time check):

1. `checkpoint`: the metadata frame (ids, URL key, text hash) materialised with `localCheckpoint`
   (the old code) against a Parquet checkpoint (core/checkpoints.py), each followed by the input
   checks' count, alternating, `--rounds` times;
2. `whitespace`: the text hash's whitespace regex in the JVM: the old ASCII `\\s+`, the explicit
   Unicode class (core.text.WHITESPACE), the fast form Spark now uses (core.text.WHITESPACE_JVM),
   and `translate` to spaces then ` +`; plus a check that the three Unicode forms give the same
   keys on text holding every whitespace character.

    python benchmarks/dedup_input_step.py /tmp/gen200k [--rows 60000] [--rounds 2]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("documents", help="a documents Delta table (benchmarks/generate_documents.py)")
    ap.add_argument("--rows", type=int, default=60_000, help="rows for the whitespace comparison")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from pyspark.sql import functions as F

    from core.checkpoints import Checkpoints
    from core.spark import get_spark
    from core.text import WHITESPACE, WHITESPACE_JVM
    from curation.dedup.stage import count_documents, metadata_columns, read_documents

    spark = get_spark("dedup-input-step", master="local[2]", memory="6g")
    print(f"load average at start: {os.getloadavg()}")
    docs = read_documents(spark, args.documents)
    work = tempfile.mkdtemp(prefix="dedup_input_")
    for r in range(args.rounds):
        t = time.time()
        m = metadata_columns(docs, False).localCheckpoint()
        count_documents(m, args.documents)
        print(f"round {r + 1}: localCheckpoint + count {time.time() - t:6.1f} s", flush=True)
        m.unpersist()
        ck = Checkpoints(spark, f"{work}/ck", "benchmark")
        t = time.time()
        m = ck.save(metadata_columns(docs, False))
        t1 = time.time()
        count_documents(m, args.documents)
        print(f"round {r + 1}: Parquet checkpoint {t1 - t:6.1f} s + count {time.time() - t1:.1f} s",
              flush=True)
        ck.close()

    texts = spark.read.format("delta").load(args.documents).select("text").limit(args.rows).cache()
    texts.count()
    ws = [chr(c) for c in [*range(9, 14), *range(0x1C, 0x20), 0x20, 0x85, 0xA0, 0x1680,
                           *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]]

    def regex_key(pattern):
        return F.sha1(F.trim(F.regexp_replace(F.lower(F.coalesce(F.col("text"), F.lit(""))),
                                              pattern, " ")))
    translate_key = F.sha1(F.trim(F.regexp_replace(F.translate(
        F.lower(F.coalesce(F.col("text"), F.lit(""))), "".join(ws), " " * len(ws)), " +", " ")))
    variants = {"ASCII \\s+ (old)": regex_key(r"\s+"),
                "explicit class (WHITESPACE)": regex_key(WHITESPACE),
                "(?U)[\\s\\x1C-\\x1F]+ (WHITESPACE_JVM)": regex_key(WHITESPACE_JVM),
                "translate, then ' +'": translate_key}
    for r in range(args.rounds):
        for name, key in variants.items():
            t = time.time()
            texts.select(F.sum(F.hash(key))).collect()
            print(f"round {r + 1}: {name:38s} {time.time() - t:6.1f} s ({args.rows:,} rows)",
                  flush=True)
    sample = spark.createDataFrame([(f"a{w}b {w}{w} c{w}",) for w in ws]
                                   + [("x\u200bY",), ("tab\tnew\nline",)], "text string")
    keys = {n: [r[0] for r in sample.select(k).collect()] for n, k in variants.items()}
    names = list(variants)[1:]
    print("same keys on every whitespace character:",
          all(keys[n] == keys[names[0]] for n in names), f"({', '.join(names)})")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
