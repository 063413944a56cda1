"""Dedup removals checked against the generator's truth table (benchmarks/generate_documents.py).

    python benchmarks/dedup_truth.py --documents /tmp/dp/gen20k [--dedup /tmp/dp/gen20k_dedup]
    python benchmarks/dedup_truth.py --documents /tmp/dp/gen20k --verify

Runs the dedup job on the generated documents (unless `--dedup` names an existing output of it)
and compares what it removed with what the generator injected (`<documents>_truth`: doc_id, kind
= unique | exact | near | url, copy_of). A document's family is its original (`copy_of`) or
itself. Then:

* **recall**: every injected copy and its original should end in the same cluster (the same final
  survivor after url, exact and near); counted per kind.
* **precision**: every document removed by url, exact or near is either in its survivor's family,
  or, when the generator made two "unique" documents that share corpus texts, a real near
  duplicate: its exact word 5-gram shingle Jaccard with the survivor is measured (the same
  shingles as the job) and binned.

Line dedup (`lines_too_short`) is reported apart: it is not duplicate detection of documents.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

BINS = [(0.8, 1.01, ">= 0.8"), (0.7, 0.8, "0.7-0.8"), (0.5, 0.7, "0.5-0.7"), (0.0, 0.5, "< 0.5")]


MAX_MEMBERS = 300                 # members of one cluster compared with a removed document
_sets: dict[str, np.ndarray] = {}


def shingles(text: str, ngram: int) -> np.ndarray:
    """The job's own word n-gram shingle hashes of one text, sorted and unique (cached)."""
    s = _sets.get(text)
    if s is None:
        from curation.dedup.minhash import shingle_hashes
        h, _ = shingle_hashes([text], ngram)
        s = _sets[text] = np.unique(h)
    return s


def jaccard(a: str, b: str, ngram: int) -> float:
    """`curation.dedup.minhash.jaccard` on cached sorted arrays (Python sets of every compared
    document would not fit in memory at 200k documents)."""
    sa, sb = shingles(a, ngram), shingles(b, ngram)
    if not len(sa) and not len(sb):
        return 0.0
    inter = len(np.intersect1d(sa, sb, assume_unique=True))
    return inter / (len(sa) + len(sb) - inter)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", required=True, help="generated documents table")
    ap.add_argument("--dedup", default=None, help="existing dedup output (default: run the job)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--verify", action="store_true",
                    help="run the job with minhash.verify: jaccard (candidate edges checked)")
    args = ap.parse_args()

    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from curation.dedup import DEFAULTS, run_dedup
    from core.spark import get_spark
    from core.tables import read_table
    spark = get_spark("dedup-truth", master=args.master)
    out = args.dedup or args.documents.rstrip("/") + ("_dedup_verify" if args.verify else "_dedup")
    if not args.dedup:
        t = time.time()
        run_dedup(spark, args.documents, out,
                  config={"minhash": {"verify": "jaccard"}} if args.verify else None)
        print(f"dedup job: {time.time() - t:.1f} s -> {out}")
    ngram = DEFAULTS["minhash"]["ngram"]

    truth = pq.read_table(args.documents.rstrip("/") + "_truth").to_pydict()
    kind = dict(zip(truth["doc_id"], truth["kind"]))
    root = {d: (c if k != "unique" else d) for d, k, c in
            zip(truth["doc_id"], truth["kind"], truth["copy_of"])}
    dups = read_table(spark, out + "_duplicates").select("doc_id", "duplicate_of", "reason") \
        .toPandas()
    final = {d: s for d, s, r in dups.itertuples(index=False) if r != "lines_too_short"}
    reason = dict(zip(dups["doc_id"], dups["reason"]))
    n_docs = len(kind)
    print(f"documents: {n_docs:,}; injected: " + ", ".join(
        f"{k} {sum(1 for v in kind.values() if v == k):,}" for k in ("exact", "near", "url")))
    print("removed: " + ", ".join(f"{r} {int((dups['reason'] == r).sum()):,}"
                                  for r in ("url", "exact", "near", "lines_too_short")))

    # texts needed: injected near copies and their originals (for their Jaccard), and every
    # member of a cluster holding a document removed across families
    cluster = {}
    for d, s in final.items():
        cluster.setdefault(s, [s]).append(d)
    cross = [(d, s, r) for d, s, r in dups.itertuples(index=False)
             if r != "lines_too_short" and root.get(d, d) != root.get(s, s)]
    near_pairs = [(d, root[d]) for d, v in kind.items() if v == "near"]
    need = {x for p in near_pairs for x in p}
    for _, s, _ in cross:
        need.update(cluster[s])
    rows = read_table(spark, args.documents).select("doc_id", "text") \
        .where(F.col("doc_id").isin(sorted(need))).collect()
    texts = {r["doc_id"]: r["text"] for r in rows}

    # recall: each injected copy ends in its original's cluster; near copies by their Jaccard
    print("\nrecall (copy and original end in the same cluster):")
    for k in ("exact", "near", "url"):
        pairs = [(d, root[d]) for d, v in kind.items() if v == k]
        hit = sum(1 for c, o in pairs if final.get(c, c) == final.get(o, o))
        print(f"  {k:6s} {hit:,}/{len(pairs):,} = {hit / max(len(pairs), 1):.4f}")
    jn = np.array([jaccard(texts[c], texts[o], ngram) for c, o in near_pairs])
    caught = np.array([final.get(c, c) == final.get(o, o) for c, o in near_pairs])
    print(f"  near copies' exact Jaccard with their original: median {np.median(jn):.3f}")
    for lo, hi, lab in BINS:
        m = (jn >= lo) & (jn < hi)
        if m.any():
            print(f"    J {lab:7s}: {int(caught[m].sum()):,}/{int(m.sum()):,} caught = "
                  f"{caught[m].mean():.4f}")

    # precision: a removal is in its survivor's family, or else its best exact Jaccard with any
    # other member of its cluster says whether a real near duplicate was there
    same = {r: int((dups["reason"] == r).sum()) for r in ("url", "exact", "near")}
    js = {r: [] for r in ("url", "exact", "near")}
    worst = []
    t, capped = time.time(), 0
    for i, (d, s, r) in enumerate(cross):
        if i and i % 5000 == 0:
            print(f"  ... {i:,}/{len(cross):,} removals checked ({time.time() - t:.0f} s)",
                  flush=True)
        same[r] -= 1
        members = [m for m in cluster[s] if m != d]
        if len(members) > MAX_MEMBERS:   # the survivor first, then a fixed subset
            capped += 1
            members = [s] + sorted(m for m in members if m != s)[:MAX_MEMBERS - 1]
        best = max((jaccard(texts[d], texts[m], ngram), m) for m in members)
        js[r].append(best[0])
        worst.append((best[0], d, best[1], r, len(cluster[s])))
    print("\nprecision (removed documents, by the step that removed them):")
    for r in ("url", "exact", "near"):
        n = same[r] + len(js[r])
        a = np.array(js[r])
        bins = ", ".join(f"{lab} {int(((a >= lo) & (a < hi)).sum()):,}" for lo, hi, lab in BINS)
        ok = same[r] + int((a >= 0.8).sum())
        ok7 = same[r] + int((a >= 0.7).sum())
        print(f"  {r:6s} {n:,} removed: {same[r]:,} in the survivor's family; {len(a):,} across "
              f"families, best exact Jaccard with another member of the cluster: {bins}"
              + (f"; precision at J >= 0.8: {ok / n:.4f}, at J >= 0.7: {ok7 / n:.4f}" if n else ""))
    sizes = np.array([len(v) for v in cluster.values()]) if cluster else np.zeros(1)
    print(f"  clusters: {len(cluster):,}, largest {int(sizes.max()):,} documents"
          + (f"; {capped:,} removals compared with {MAX_MEMBERS} members of their cluster only"
             if capped else ""))
    worst.sort()
    for j, d, m, r, size in worst[:args.examples]:
        print(f"  lowest: {r} {d} (cluster of {size}): best J = {j:.3f} with {m} "
              f"({kind.get(d)} / {kind.get(m)})")
    lt = dups[dups["reason"] == "lines_too_short"]
    print(f"\nlines_too_short: {len(lt):,} documents "
          f"({', '.join(f'{k} {v:,}' for k, v in lt['doc_id'].map(kind).value_counts().items())})")
    spark.stop()


if __name__ == "__main__":
    main()
