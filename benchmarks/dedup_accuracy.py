"""Near-duplicate accuracy on real documents with injected near duplicates of known Jaccard.

Real GSM8K, MATH and code documents from the sample corpus each get at most one variant: random
word edits at a rate drawn to spread the exact word-5-gram Jaccard over 0.2..1.0, boilerplate
lines added around the text, or a paragraph of another document inserted. The truth is the exact
shingle Jaccard of each (original, variant) pair. A pair counts as positive at J >= 0.8 and as
negative at J < 0.5 (pairs in between are not scored); a pair is predicted a duplicate when both
documents end in the same cluster. Also reported: merges of two different originals.

Part 1 (always): the bands x rows sweep with the library functions the job uses (vectorised
signatures, `lsh.band_hashes`, clusters from shared buckets with an in-process union-find).
Part 2 (--spark): the job itself (`run_dedup`, url/exact/lines off) at its default 14 x 8.

    python benchmarks/dedup_accuracy.py [--docs 3000] [--spark]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from curation.dedup import lsh, minhash  # noqa: E402
from fixtures import documents as samples  # noqa: E402
from core.paths import corpus_dir  # noqa: E402


def build_set(n_docs, seed=0):
    c = corpus_dir()
    per = n_docs // 3
    pool = ([("gsm8k", t) for t in samples.gsm8k(c, 2 * per)]
            + [("math", t) for t in samples.math_solutions(c, 2 * per)]
            + [("thealgorithms", t) for t in samples.code_files(c, 2 * per)])
    pool = [(s, t) for s, t in pool if len(minhash.words(t)) >= 40]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))[:n_docs]
    originals = [pool[i] for i in order]
    rows, pairs = [], []
    for i, (src, text) in enumerate(originals):
        rows.append(samples.make_row(src, f"o{i}", text))
    n_var = len(originals) // 2
    for i in range(n_var):
        src, text = originals[i]
        kind = rng.choice(["edit", "edit", "boilerplate", "insert"])
        if kind == "edit":
            v = samples.edit_words(text, float(rng.uniform(0.0, 0.35)), rng)
        elif kind == "boilerplate":
            v = samples.with_boilerplate(text, rng)
        else:
            other = originals[(i + 1 + int(rng.integers(len(originals) - 1))) % len(originals)][1]
            lines = text.split("\n")
            k = int(rng.integers(len(lines) + 1))
            v = "\n".join(lines[:k] + other.split("\n")[: int(rng.integers(1, 6))] + lines[k:])
        if v == text:
            v += " (v)"
        rows.append(samples.make_row(src, f"v{i}", v))
        pairs.append((i, len(originals) + i, minhash.jaccard(text, v), kind))
    return rows, pairs, len(originals)


def clusters_from_buckets(bh):
    """Union-find over documents sharing any (band, bucket)."""
    n, b = bh.shape
    parent = np.arange(n)

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for band in range(b):
        first = {}
        for d, key in enumerate(bh[:, band].tolist()):
            if key in first:
                ra, rb = find(first[key]), find(d)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            else:
                first[key] = d
    return np.array([find(i) for i in range(n)])


def score(label, pairs, n_orig):
    pos = [p for p in pairs if p[2] >= 0.8]
    neg = [p for p in pairs if p[2] < 0.5]
    tp = sum(label[a] == label[b] for a, b, _, _ in pos)
    fp = sum(label[a] == label[b] for a, b, _, _ in neg)
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / len(pos) if pos else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    orig = label[:n_orig]
    _, cnt = np.unique(orig, return_counts=True)
    merges = int((cnt - 1).sum())
    return prec, rec, f1, merges, len(pos), len(neg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000, help="original documents (half get a variant)")
    ap.add_argument("--spark", action="store_true", help="also run the Spark job at 14 x 8")
    args = ap.parse_args()
    t0 = time.time()
    rows, pairs, n_orig = build_set(args.docs)
    js = np.array([p[2] for p in pairs])
    print(f"{len(rows)} documents: {n_orig} originals, {len(pairs)} variants "
          f"(J>=0.8: {(js >= 0.8).sum()}, 0.5<=J<0.8: {((js >= 0.5) & (js < 0.8)).sum()}, "
          f"J<0.5: {(js < 0.5).sum()}) built in {time.time() - t0:.0f} s")
    texts = [r["text"] for r in rows]
    sig, has = minhash.signatures(texts, num_perm=128)
    print(f"{'bands x rows':>13} {'threshold':>9} {'P(J=0.8)':>8} {'precision':>9} {'recall':>7}"
          f" {'F1':>6} {'orig merges':>11}")
    for b, r in ((14, 8), (9, 13), (20, 5), (16, 7), (10, 10), (8, 14), (28, 4), (12, 10)):
        bh = lsh.band_hashes(sig, b, r)
        bh[~has] = np.arange((~has).sum())[:, None] * 1000003 + np.arange(b)  # never collide
        label = clusters_from_buckets(bh)
        p, rc, f1, merges, npos, nneg = score(label, pairs, n_orig)
        print(f"{b:>7} x {r:<3} {lsh.threshold(b, r):>9.2f} {lsh.candidate_probability(0.8, b, r):>8.2f}"
              f" {p:>9.3f} {rc:>7.3f} {f1:>6.3f} {merges:>11}")
    if args.spark:
        from curation.dedup.stage import run_dedup
        from core.schema import DOCUMENTS
        from core.spark import get_spark
        from core.tables import read_table, write_table
        spark = get_spark("dedup-accuracy")
        tmp = tempfile.mkdtemp(prefix="dedup_acc_")
        write_table(spark.createDataFrame(rows, DOCUMENTS), f"{tmp}/docs")
        t1 = time.time()
        run_dedup(spark, f"{tmp}/docs", f"{tmp}/out",
                  {"url": {"enabled": False}, "exact": {"enabled": False},
                   "lines": {"enabled": False}})
        wall = time.time() - t1
        idx = {r["doc_id"]: i for i, r in enumerate(rows)}
        label = np.arange(len(rows))
        for d in read_table(spark, f"{tmp}/out_duplicates").collect():
            label[idx[d.doc_id]] = idx[d.duplicate_of]
        p, rc, f1, merges, npos, nneg = score(label, pairs, n_orig)
        print(f"Spark job (run_dedup, 14 x 8, 112 perms): precision {p:.3f} recall {rc:.3f} "
              f"F1 {f1:.3f}, original merges {merges}, on {npos} positive / {nneg} negative "
              f"pairs ({wall:.0f} s wall)")


if __name__ == "__main__":
    main()
