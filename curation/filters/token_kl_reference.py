"""Build the token-KL reference (per-language cl100k unigram distributions + length calibration)
from the sample corpus, and store it with its manifest. Nothing is downloaded.

    python -m curation.filters.token_kl_reference --out models/token_kl [--corpus ../shared/corpus]
                                                  [--pages /tmp/pages.parquet]

What goes in (documented in the manifest's `sources`):
* web: the trafilatura-eval pages (`extraction/trafilatura-eval`, the sample crawl's pages),
  extracted with this project's extractor, language by fastText lid.176 (score >= 0.65, the
  filter's default), EXCEPT the evaluation quarter: pages with sha1("kl-eval:" + url)[0] % 4 == 0
  are never used here; benchmarks/filter_token_kl.py measures on them;
* multilingual: the non-English side of every Tatoeba pair file (`multilingual/tatoeba`), in chunks
  of 100 sentences, language by fastText on each chunk. UDHR is not used (the benchmark's
  multilingual evaluation set).
Not used: code, math (their own rule sets have no KL rule), the LM evaluation sets.

`token_kl.build_reference` then splits each language's documents by a hash of their key into a
counted half and a held-out half (the calibration curve).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import sys

EVAL_SALT = "kl-eval:"
TATOEBA_CHUNK = 50


def is_eval_page(url: str) -> bool:
    """The evaluation quarter of the web pages: never in the reference."""
    return hashlib.sha1((EVAL_SALT + url).encode()).digest()[0] % 4 == 0


def web_pages(corpus=None, pages_cache: str | None = None):
    """[(url, text)] of the trafilatura-eval pages, extracted with our extractor (cached in a
    parquet file when `pages_cache` is given: the same cache benchmarks/filter_parity.py writes)."""
    import os

    import pandas as pd
    if pages_cache and os.path.exists(pages_cache):
        pdf = pd.read_parquet(pages_cache)
        return [(u, t) for u, t in zip(pdf.url, pdf.text) if isinstance(t, str) and t]
    from core import corpus as corpus_files
    from curation.extract.html import extract_html
    rows = []
    for url, m in sorted(corpus_files.trafilatura_eval(corpus).items()):
        p = corpus_files.trafilatura_eval_page(m["file"], corpus, prefer=("cache", "eval"))
        if p is None:
            continue
        ex = extract_html(gzip.open(p).read(), url=url)
        rows.append({"doc_id": m["file"], "url": url, "text": ex.text, "html_lang": ex.html_lang})
    if pages_cache:
        pd.DataFrame(rows).to_parquet(pages_cache)
    return [(r["url"], r["text"]) for r in rows if r["text"]]


def tatoeba_chunks(corpus=None) -> list[tuple[str, str]]:
    from core import corpus as corpus_files
    out = []
    for f in corpus_files.tatoeba_files(corpus):
        lines = corpus_files.tatoeba_lines(f)
        for k in range(0, len(lines), TATOEBA_CHUNK):
            out.append((f"tatoeba:{f.name}:{k // TATOEBA_CHUNK}", "\n".join(lines[k:k + TATOEBA_CHUNK])))
    return out


def reference_documents(corpus=None, pages_cache: str | None = None, min_score: float = 0.65):
    """[(key, language, text)] the reference is built from, and a summary of the sources."""
    from curation.filters.langid import detect_languages
    web = [(u, t) for u, t in web_pages(corpus, pages_cache) if not is_eval_page(u)]
    tat = tatoeba_chunks(corpus)
    docs, summary = [], {}
    for name, items in (("web", web), ("tatoeba", tat)):
        labels = detect_languages([t for _, t in items], threshold=0.0)
        kept = [(k, lg, t) for (k, t), (lg, sc) in zip(items, labels) if sc >= min_score]
        docs.extend(kept)
        summary[name] = {"documents": len(items), "documents_with_language": len(kept)}
    summary["web"]["what"] = ("extraction/trafilatura-eval pages (the sample crawl's pages), extracted with "
                              "curation.extract.html; the evaluation quarter sha1('kl-eval:'+url)[0] % 4 == 0 "
                              "left out")
    summary["tatoeba"]["what"] = (f"multilingual/tatoeba, non-English side of each pair file, chunks of "
                                  f"{TATOEBA_CHUNK} sentences")
    summary["language_id"] = f"fastText lid.176 on the text, score >= {min_score}"
    return docs, summary


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    from curation.filters import token_kl
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", default=None, help="sample corpus folder (default: the configured one)")
    ap.add_argument("--pages", default=None, help="parquet cache of the extracted trafilatura-eval pages")
    ap.add_argument("--alpha", type=float, default=0.1, help="additive smoothing of the counts")
    ap.add_argument("--min-tokens", type=int, default=4_000, help="per half, per language")
    args = ap.parse_args(argv)
    docs, summary = reference_documents(args.corpus, args.pages)
    ref = token_kl.build_reference(docs, alpha=args.alpha, min_tokens=args.min_tokens, sources=summary)
    ref.save(Path(args.out))
    langs = ref.manifest["languages"]
    print(f"token KL reference: {len(langs)} languages -> {args.out}", file=sys.stderr)
    for lg, m in sorted(langs.items(), key=lambda kv: -kv[1]["tokens_counted"]):
        c = m["calibration"]
        print(f"  {lg}: {m['tokens_counted']} tokens counted ({m['documents_counted']} docs), "
              f"{m['tokens_held_out']} held out; median KL at L={c['length'][0]}: {c['median'][0]:.2f}, "
              f"L={c['length'][-1]}: {c['median'][-1]:.2f}; fit {c['fit']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
