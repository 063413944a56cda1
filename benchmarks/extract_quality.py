"""Extraction quality on the trafilatura evaluation set, through the job's own extraction function.

Metric (corpus README): for each page, every `with` snippet found in the extracted text is a true
positive (else a false negative); every `without` snippet found is a false positive (else a true
negative). Matching is on whitespace-normalised text; counts are micro-summed over all pages.

    python benchmarks/extract_quality.py [--limit N] [--set key=value ...] [--bare [--diff]]

`--bare` scores a bare `trafilatura.extract(bytes, url=url)` (its defaults) on the same pages in the
same run; `--diff` then lists, page by page, the must-contain snippets one side finds and the other
misses, and the must-not-contain snippets one side lets in and the other keeps out.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import gzip
import json
import time
from pathlib import Path

from curation.extract.html import extract_html
from core.paths import corpus_dir


def norm(s: str) -> str:
    return " ".join(s.split())


def load_pages(limit: int | None = None):
    root = corpus_dir() / "extraction" / "trafilatura-eval"
    data = json.loads((root / "evaldata.json").read_text())
    pages = []
    for url, item in sorted(data.items()):
        for sub in ("cache", "eval"):
            p = root / sub / (item["file"] + ".gz")
            if p.is_file():
                pages.append((url, gzip.decompress(p.read_bytes()), item))
                break
        if limit and len(pages) >= limit:
            break
    return pages


def score(outputs, pages):
    tp = fn = fp = tn = 0
    for text, (_, _, item) in zip(outputs, pages):
        t = norm(text or "")
        for s in item.get("with", []):
            if norm(s) in t:
                tp += 1
            else:
                fn += 1
        for s in item.get("without", []):
            if norm(s) in t:
                fp += 1
            else:
                tn += 1
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    acc = (tp + tn) / max(1, tp + tn + fp + fn)
    return dict(precision=p, recall=r, f1=f1, accuracy=acc, tp=tp, fn=fn, fp=fp, tn=tn)


def snippet_diff(job_outs, bare_outs, pages):
    """Lines `<kind> <url> <snippet>` where job and bare disagree; kind: job+/job- (a must-contain
    snippet only the job finds / only bare finds), fp+/fp- (a must-not-contain snippet only the job
    lets in / only bare lets in)."""
    lines = []
    for j, b, (url, _, item) in zip(job_outs, bare_outs, pages):
        tj, tb = norm(j or ""), norm(b or "")
        for kinds, snippets in ((("job+", "job-"), item.get("with", [])),
                                (("fp+", "fp-"), item.get("without", []))):
            for s in snippets:
                inj, inb = norm(s) in tj, norm(s) in tb
                if inj != inb:
                    lines.append(f"{kinds[0] if inj else kinds[1]} {url} {s[:100]!r}")
    return lines


def fmt(res):
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="extraction option overrides key=value")
    ap.add_argument("--bare", action="store_true", help="also score bare trafilatura.extract(bytes)")
    ap.add_argument("--diff", action="store_true", help="with --bare: list snippets job and bare disagree on")
    args = ap.parse_args()
    cfg = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        cfg[k] = json.loads(v.lower() if v.lower() in ("true", "false") else v)
    pages = load_pages(args.limit)
    t0 = time.perf_counter()
    outs = [extract_html(html, url=url, cfg=cfg).text for url, html, _ in pages]
    dt = time.perf_counter() - t0
    res = score(outs, pages)
    print(f"pages={len(pages)} options={cfg or 'defaults'} seconds={dt:.1f}")
    print("job extraction:   " + fmt(res))
    if args.bare:
        import trafilatura
        t0 = time.perf_counter()
        bare_outs = [trafilatura.extract(html, url=url) for url, html, _ in pages]
        print(f"bare trafilatura {trafilatura.__version__} seconds={time.perf_counter() - t0:.1f}")
        print("bare trafilatura: " + fmt(score(bare_outs, pages)))
        if args.diff:
            lines = snippet_diff(outs, bare_outs, pages)
            for line in lines:
                print(line)
            kinds = [ln.split(" ", 1)[0] for ln in lines]
            print("job vs bare: " + " ".join(f"{k}={kinds.count(k)}" for k in ("job+", "job-", "fp+", "fp-")))


if __name__ == "__main__":
    main()
