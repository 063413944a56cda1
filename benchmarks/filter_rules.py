"""What each filter rule removes on real crawl pages, and where the time goes.

Builds a documents sample from the trafilatura-eval crawl pages (HTML extracted with trafilatura, in
this script), computes the corpus token distribution, annotates every page in ONE process
(`annotate_batch`, so docs/s is per core) with a timer per signal, and decides with the default
config. Prints: documents/s/core, share of annotate time per signal, per-reason drop counts and shares
(any reason, and first reason), a few example lines per reason, and the token-KL spread.

    python benchmarks/filter_rules.py [--limit 400] [--examples 2]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import gzip
import time
from collections import Counter, defaultdict

import numpy as np
import pandas as pd


def load_pages(limit: int) -> pd.DataFrame:
    import trafilatura
    from core import corpus as corpus_files
    rows = []
    for url, m in sorted(corpus_files.trafilatura_eval().items()):
        if len(rows) >= limit:
            break
        p = corpus_files.trafilatura_eval_page(m["file"], prefer=("cache", "eval"))
        if p is None:
            continue
        html = gzip.open(p).read().decode("utf-8", "replace")
        text = trafilatura.extract(html) or ""
        from urllib.parse import urlsplit
        host = (urlsplit(url).hostname or "").removeprefix("www.")
        rows.append({"doc_id": m["file"], "source": "crawl", "url": url, "domain": host, "text": text})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--examples", type=int, default=2)
    args = ap.parse_args()

    from core.config import merge
    from curation.filters import token_kl
    from curation.filters.annotate import annotate_batch
    from curation.filters.decide import decide_pandas
    from curation.filters.defaults import DEFAULTS

    t0 = time.time()
    pdf = load_pages(args.limit)
    print(f"pages extracted: {len(pdf)} in {time.time() - t0:.1f} s "
          f"(empty after extraction: {(pdf.text.str.strip() == '').sum()})")
    cfg = merge(DEFAULTS, None)
    # warm-up: models and lists load once per process; not part of the per-document time
    # token KL is off by default (configs/filter.yaml); with it on, the reference is loaded once
    kl_ref = token_kl.Reference.load(cfg["token_kl"]["reference"] or "models/token_kl") \
        if cfg["token_kl"]["enabled"] else None
    annotate_batch(pdf.head(2).copy(), cfg, kl_ref)
    t_dist = 0.0
    timings: dict = defaultdict(float)
    t0 = time.perf_counter()
    out = annotate_batch(pdf.copy(), cfg, kl_ref, timings=timings)
    t_ann = time.perf_counter() - t0
    # per-domain PII share, as the stage computes it
    g = out.groupby("domain")["pii_total"].agg(domain_doc_count="size",
                                               domain_pii_doc_share=lambda s: float((s > 0).mean()))
    out = out.join(g, on="domain")
    dec = decide_pandas(out, cfg)
    total = t_dist + t_ann
    n = len(pdf)
    mb = pdf.text.str.len().sum() / 1e6
    print(f"\nwhole pass, one process: {n} docs, {mb:.2f} M chars in {total:.2f} s -> "
          f"{n / total:.1f} docs/s/core, {mb / total:.2f} M chars/s/core "
          f"(annotate {t_ann:.2f} s)")
    other = total - sum(timings.values())
    timings["other (frames, glue)"] = max(other, 0.0)
    print("\nshare of time per signal:")
    for k, v in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<24} {v:7.3f} s  {100 * v / total:5.1f} %")

    print(f"\nkept {int(dec.keep.sum())} of {n} ({100 * dec.keep.mean():.1f} %)")
    anyr = Counter(r for rs in dec.drop_reasons for r in rs)
    first = Counter(rs[0] for rs in dec.drop_reasons if rs)
    print(f"\n{'reason':<42} {'any':>5} {'share':>7} {'first':>6}")
    for r, c in anyr.most_common():
        print(f"{r:<42} {c:>5} {100 * c / n:6.1f}% {first.get(r, 0):>6}")
    print("\nexamples (doc, first line of text):")
    for r, _ in anyr.most_common():
        ex = dec[dec.drop_reasons.map(lambda rs: r in rs)].sort_values("doc_id").head(args.examples)
        for _, row in ex.iterrows():
            line = next((ln.strip() for ln in row.text.splitlines() if ln.strip()), "")[:90]
            print(f"  [{r}] {row.doc_id}: {line!r}")
    kl = out.token_kl[out.token_count >= cfg["token_kl"]["min_tokens"]].dropna()
    q = np.percentile(kl, [1, 10, 50, 90, 99]) if len(kl) else []
    print("\ntoken_kl (nats) percentiles 1/10/50/90/99: " + " / ".join(f"{x:.2f}" for x in q))
    hi = out.loc[kl.sort_values().index[-3:]] if len(kl) else out.head(0)
    for _, row in hi.iterrows():
        print(f"  high KL {row.token_kl:.2f} {row.doc_id}: {row.text[:80]!r}")
    print(f"\nlanguages: {dict(Counter(out.filter_lang.fillna('none')).most_common(6))}")


if __name__ == "__main__":
    main()
