"""Generate a `documents` Delta table of N documents from the real sample corpus, with a controlled
share of URL re-fetches, exact and near duplicates (for the dedup scale benchmark).

A unique document is 3 real documents (GSM8K, MATH, code) joined; its URL is
https://gen.example/<i>. A duplicate copies an earlier unique document: `url` (same URL with a
tracking parameter, a later fetch time, one changed line), `exact` (case and whitespace changed) or
`near` (about 3% of words edited). Document i depends only on (seed, i), so a set is reproducible
and built in chunks (bounded memory); the truth goes to <output>_truth (doc_id, kind, copy_of).

    python benchmarks/generate_documents.py --n 20000 --output /tmp/gen20k [--exact 0.1 --near 0.1 --url 0.02]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from curation.dedup import samples  # noqa: E402
from curation.paths import corpus_dir  # noqa: E402

T0 = dt.datetime(2024, 1, 1)


def kind_of(seed, i, shares):
    u = np.random.default_rng([seed, i, 0]).random()
    acc = 0.0
    for k in ("exact", "near", "url"):
        acc += shares[k]
        if u < acc and i > 0:
            return k
    return "unique"


def unique_text(pool, seed, i):
    rng = np.random.default_rng([seed, i, 1])
    return "\n\n".join(pool[j] for j in rng.integers(0, len(pool), 3))


def document(pool, seed, i, shares):
    kind = kind_of(seed, i, shares)
    rng = np.random.default_rng([seed, i, 2])
    if kind == "unique":
        return kind, None, samples.make_row("gen", str(i), unique_text(pool, seed, i),
                                            url=f"https://gen.example/{i}",
                                            fetch_time=T0 + dt.timedelta(minutes=i))
    src = int(rng.integers(0, i))
    for _ in range(50):                               # copy an earlier unique document
        if kind_of(seed, src, shares) == "unique":
            break
        src = int(rng.integers(0, i))
    else:
        return "unique", None, samples.make_row("gen", str(i), unique_text(pool, seed, i),
                                                url=f"https://gen.example/{i}")
    base = unique_text(pool, seed, src)
    url = f"https://gen.example/{i}"
    fetch = T0 + dt.timedelta(minutes=i)
    if kind == "exact":
        text = "  " + base.upper().replace(" ", "   ")
    elif kind == "near":
        text = samples.edit_words(base, 0.03, rng)
    else:
        text = base + "\nUpdated."
        url = f"https://gen.example/{src}?utm_source=newsletter"
        fetch = T0 + dt.timedelta(days=365, minutes=i)
    return kind, samples.doc_id("gen", str(src)), samples.make_row("gen", str(i), text, url, fetch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact", type=float, default=0.10)
    ap.add_argument("--near", type=float, default=0.10)
    ap.add_argument("--url", type=float, default=0.02)
    ap.add_argument("--chunk", type=int, default=20000)
    args = ap.parse_args()
    shares = {"exact": args.exact, "near": args.near, "url": args.url}
    c = corpus_dir()
    pool = samples.gsm8k(c) + samples.math_solutions(c) + samples.code_files(c)
    from curation.schema import DOCUMENTS
    from curation.spark import get_spark
    from curation.tables import write_table
    from pyspark.sql import functions as F
    tmp = tempfile.mkdtemp(prefix="gen_docs_")
    t0 = time.time()
    truth = {"doc_id": [], "kind": [], "copy_of": []}
    for lo in range(0, args.n, args.chunk):
        rows = []
        for i in range(lo, min(args.n, lo + args.chunk)):
            kind, src, row = document(pool, args.seed, i, shares)
            rows.append(row)
            truth["doc_id"].append(row["doc_id"])
            truth["kind"].append(kind)
            truth["copy_of"].append(src)
        tbl = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "extraction"} for r in rows])
        pq.write_table(tbl, f"{tmp}/part-{lo:09d}.parquet")
        print(f"  {min(args.n, lo + args.chunk):,}/{args.n:,} documents ({time.time() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    spark = get_spark("generate-documents")
    df = spark.read.parquet(tmp).withColumn("extraction", F.lit(None))
    df = df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in DOCUMENTS.fields])
    write_table(df, args.output)
    write_table(spark.createDataFrame(list(zip(truth["doc_id"], truth["kind"], truth["copy_of"])),
                                      "doc_id string, kind string, copy_of string"),
                args.output.rstrip("/") + "_truth")
    shutil.rmtree(tmp, ignore_errors=True)
    kinds = {k: truth["kind"].count(k) for k in ("unique", "exact", "near", "url")}
    print(f"wrote {args.n:,} documents to {args.output} ({kinds}) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
