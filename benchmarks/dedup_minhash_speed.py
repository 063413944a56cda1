"""MinHash signature speed: the project's vectorised batch code vs datasketch.MinHash.update_batch
on the same documents, the same word 5-gram shingles and the same number of permutations, side by
side in one process (one core). Times are CPU seconds of this process (time.process_time), which
is less sensitive than wall time to other load on a shared machine; median of --reps runs.

Also a statistical check: on pairs of real documents with random word edits, the error of the
Jaccard estimate of both implementations against the exact shingle Jaccard.

    python benchmarks/dedup_minhash_speed.py [--docs 2000] [--num-perm 112] [--reps 5]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from datasketch import MinHash  # noqa: E402

from curation.dedup import minhash  # noqa: E402
from fixtures import documents as samples  # noqa: E402
from core.paths import corpus_dir  # noqa: E402


def ds_shingles(text, n=5):
    w = minhash.words(text)
    return [" ".join(w[i:i + n]).encode() for i in range(max(1, len(w) - n + 1))] if w else []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    c = corpus_dir()
    per = args.docs // 3
    texts = (samples.gsm8k(c, per) + samples.math_solutions(c, per)
             + samples.code_files(c, args.docs - 2 * per))
    arr = pa.array(texts, type=pa.large_string())
    n_words = sum(len(minhash.words(t)) for t in texts)
    print(f"{len(texts)} documents (GSM8K, MATH, code), {n_words:,} words, "
          f"{args.num_perm} permutations, word 5-grams")
    perms = minhash.permutations(args.num_perm)

    def ours():
        h, cnt = minhash.shingle_hashes(arr, 5)
        minhash.signatures_from_shingles(h, cnt, *perms)

    def ds_full():          # datasketch's natural path from text: shingles in Python + update_batch
        for t in texts:
            m = MinHash(num_perm=args.num_perm)
            m.update_batch(ds_shingles(t))

    pre = [ds_shingles(t) for t in texts]

    def ds_update_only():   # datasketch given the shingles ready-made (its best case)
        for s in pre:
            m = MinHash(num_perm=args.num_perm)
            m.update_batch(s)

    ours()   # warm-up (buffers, caches)
    res = {}
    for name, fn in (("project (text -> signatures)", ours),
                     ("datasketch update_batch only (shingles given)", ds_update_only),
                     ("datasketch from text (shingling + update_batch)", ds_full)):
        ts = []
        for _ in range(args.reps):
            t0 = time.process_time()
            fn()
            ts.append(time.process_time() - t0)
        res[name] = len(texts) / float(np.median(ts))
    base = res["project (text -> signatures)"]
    for name, v in res.items():
        print(f"  {name:<50} {v:>10,.0f} docs/s/core   (project is {base / v:.1f}x)")

    # Jaccard estimation check
    rng = np.random.default_rng(1)
    long_ = [t for t in texts if len(t.split()) > 60][:400]
    var = [samples.edit_words(t, rng.uniform(0.01, 0.4), rng) for t in long_]
    sig, _ = minhash.signatures(long_ + var, num_perm=args.num_perm)
    true, e1, e2 = [], [], []
    for i, (a, b) in enumerate(zip(long_, var)):
        true.append(minhash.jaccard(a, b))
        e1.append(minhash.estimate_jaccard(sig[i], sig[i + len(long_)]))
        m1, m2 = MinHash(num_perm=args.num_perm), MinHash(num_perm=args.num_perm)
        m1.update_batch(ds_shingles(a))
        m2.update_batch(ds_shingles(b))
        e2.append(m1.jaccard(m2))
    true, e1, e2 = map(np.array, (true, e1, e2))
    theo = np.sqrt(np.mean(true * (1 - true) / args.num_perm))
    print(f"Jaccard estimate on {len(true)} edited pairs (true J {true.min():.2f}..{true.max():.2f},"
          f" mean {true.mean():.2f}); binomial RMSE expected {theo:.4f}")
    for name, e in (("project", e1), ("datasketch", e2)):
        err = e - true
        print(f"  {name:<11} bias {err.mean():+.4f}  RMSE {np.sqrt((err ** 2).mean()):.4f}  "
              f"max |err| {np.abs(err).max():.3f}")


if __name__ == "__main__":
    main()
