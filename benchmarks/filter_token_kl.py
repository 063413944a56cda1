"""Token KL by document length, raw and length-corrected, on real sample data (issue 16).

    python benchmarks/filter_token_kl.py [--ref models/token_kl] [--pages /tmp/pages.parquet]
                                         [--code 400] [--top 12]

The reference (per-language cl100k unigram counts + calibration curves) is built by
`python -m curation.filters.token_kl_reference --out <ref>` (built here first when <ref> is missing).
Evaluation data, none of it in the reference:
* web: the evaluation quarter of the trafilatura-eval pages (curation.filters.token_kl_reference.
  is_eval_page), extracted with our extractor, language by fastText (>= 0.65);
* truncation: those of the web pages with >= 2,048 tokens, cut to their first L tokens, L = 32..2048
  (the same text at several lengths: the raw KL's length trend in its purest form);
* udhr: the UDHR translations (multilingual/udhr, tags stripped), in languages the reference has;
* code: TheAlgorithms files scored against the English reference (code has no KL rule by default:
  how far it sits from prose).
Printed: per set and length bucket the median raw KL and median excess (corrected), their Spearman
correlation with log(length), the excess quantiles of in-distribution web pages, and the
highest-excess pages with their first characters (what a threshold would drop).
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import gzip
import re
import time

import numpy as np
import pandas as pd

BUCKETS = [(20, 64), (64, 256), (256, 1024), (1024, 4096), (4096, 10 ** 9)]


def bucket_of(n: int) -> str | None:
    for lo, hi in BUCKETS:
        if lo <= n < hi:
            return f"{lo}-{hi if hi < 10 ** 9 else ''}"
    return None


def udhr_texts(corpus=None) -> list[tuple[str, str]]:
    from core import corpus as corpus_files
    out = []
    for f in corpus_files.udhr_files(corpus):
        raw = (gzip.open(f) if f.name.endswith(".gz") else open(f, "rb")).read().decode("utf-8", "replace")
        body = re.sub(r"<[^>]+>", "\n", raw.split("<body", 1)[-1])
        body = "\n".join(ln.strip() for ln in body.splitlines() if ln.strip())
        out.append((f.name, body))
    return out


def spearman(x, y) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(x, y).statistic) if len(x) > 2 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="models/token_kl")
    ap.add_argument("--pages", default=None, help="parquet cache of the extracted trafilatura-eval pages")
    ap.add_argument("--code", type=int, default=400)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    from core import corpus as corpus_files
    from curation.filters import token_kl
    from curation.filters.langid import detect_languages
    from curation.filters.token_kl_reference import is_eval_page, main as build, web_pages

    t0 = time.time()
    if not os.path.exists(os.path.join(args.ref, "manifest.json")):
        print(f"building the reference at {args.ref}")
        build(["--out", args.ref] + (["--pages", args.pages] if args.pages else []))
    ref = token_kl.Reference.load(args.ref)
    print(f"reference {args.ref}: {len(ref.languages)} languages, alpha {ref.alpha}; "
          + ", ".join(f"{lg} {m['tokens_counted']}" for lg, m in sorted(
              ref.manifest["languages"].items(), key=lambda kv: -kv[1]["tokens_counted"])[:8]) + " ...")
    for lg in ("en", "de"):
        if lg in ref.curves:
            c = ref.curves[lg]
            print(f"calibration {lg}: " + "  ".join(f"L={L}: {m:.2f} (p99 {p:.2f})"
                                                    for L, m, p in zip(c["length"], c["median"], c["p99"])))

    rows = []

    def add(set_name, key, lang, text, ids=None):
        ids = token_kl.encode_batch([text])[0] if ids is None else ids
        used, kl, ex = ref.score(ids, lang)
        if used is not None and len(ids) >= 20:
            rows.append({"set": set_name, "key": key, "lang": used, "n": len(ids), "kl": kl, "excess": ex,
                         "head": text[:90].replace("\n", " | ")})

    web = [(u, t) for u, t in web_pages(None, args.pages) if is_eval_page(u)]
    labels = detect_languages([t for _, t in web], threshold=0.0)
    long_docs = []
    for (u, t), (lg, sc) in zip(web, labels):
        if sc < 0.65:
            continue
        ids = token_kl.encode_batch([t])[0]
        add("web", u, lg, t, ids)
        if len(ids) >= 2048 and lg in ref.counts:
            long_docs.append((u, lg, ids))
    for u, lg, ids in long_docs:
        for L in (32, 64, 128, 256, 512, 1024, 2048):
            used, kl, ex = ref.score(ids[:L], lg)
            rows.append({"set": "truncation", "key": u, "lang": lg, "n": L, "kl": kl, "excess": ex, "head": ""})
    udhr = udhr_texts()
    for (name, t), (lg, sc) in zip(udhr, detect_languages([t for _, t in udhr], threshold=0.0)):
        if sc >= 0.65:
            add("udhr", name, lg, t)
    code = [r["content"] for _, r in zip(range(args.code), corpus_files.thealgorithms())]
    for k, t in enumerate(code):
        add("code(en ref)", f"code-{k}", "en", t)
    df = pd.DataFrame(rows)
    print(f"\nscored: {df.groupby('set').size().to_dict()} ({time.time() - t0:.0f} s)\n")

    print("| set | tokens | docs | median raw KL | median excess | excess p90 |\n| --- | --- | ---: | ---: | ---: | ---: |")
    for s in ("web", "truncation", "udhr", "code(en ref)"):
        d = df[df.set == s]
        if s == "truncation":
            groups = [(str(L), d[d.n == L]) for L in sorted(d.n.unique())]
        else:
            b = d.n.map(bucket_of)
            groups = [(f"{lo}-{hi if hi < 10 ** 9 else ''}", d[b == f"{lo}-{hi if hi < 10 ** 9 else ''}"])
                      for lo, hi in BUCKETS]
        for name, g in groups:
            if len(g):
                print(f"| {s} | {name} | {len(g)} | {g.kl.median():.2f} | {g.excess.median():+.2f} | "
                      f"{g.excess.quantile(0.9):+.2f} |")
    print("\nSpearman correlation with log(length) (0 = no trend):")
    for s in ("web", "truncation", "udhr"):
        d = df[df.set == s]
        print(f"  {s:<11} raw {spearman(np.log(d.n), d.kl):+.2f}   excess {spearman(np.log(d.n), d.excess):+.2f}"
              f"   ({len(d)} docs)")
    w = df[df.set == "web"]
    qs = [0.5, 0.9, 0.95, 0.99, 0.995]
    print("\nweb (in-distribution) quantiles  raw: " + " ".join(f"p{q * 100:g} {w.kl.quantile(q):.2f}" for q in qs))
    print("                                excess: " + " ".join(f"p{q * 100:g} {w.excess.quantile(q):+.2f}" for q in qs))
    for name, d in (("web", w), ("udhr", df[df.set == "udhr"])):
        print(f"\nhighest excess, {name}:")
        for r in d.sort_values("excess", ascending=False).head(args.top).itertuples():
            print(f"  {r.excess:+.2f} (raw {r.kl:.2f}, {r.n} tok, {r.lang}) {r.key[:60]}  {r.head[:70]!r}")
    print("\nlowest excess, web:")
    for r in w.sort_values("excess").head(5).itertuples():
        print(f"  {r.excess:+.2f} (raw {r.kl:.2f}, {r.n} tok, {r.lang}) {r.key[:60]}  {r.head[:70]!r}")
    c = df[df.set == "code(en ref)"]
    for thr in (0.5, 1.0, 1.5, 2.0):
        print(f"excess > {thr}: web {int((w.excess > thr).sum())}/{len(w)}, "
              f"udhr {int((df[df.set == 'udhr'].excess > thr).sum())}/{int((df.set == 'udhr').sum())}, "
              f"code vs en {int((c.excess > thr).sum())}/{len(c)}")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
