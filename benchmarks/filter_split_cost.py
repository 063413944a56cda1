"""Cost and fidelity of the word split (`curation.filters.text.tokens_of`): an older version of
`curation/filters/text.py` (a file path, e.g. one written by `git show <commit>:curation/filters/text.py`)
against the current one, side by side in one process, on the pages cached by filter_parity.py.

Prints, for both versions: seconds to split every page (interleaved, best of --repeat rounds, so load
on a shared machine hits both alike), and, when spaCy is installed (benchmark-only), how many pages
get exactly the reference's tokens (datatrove's split_into_words = spaCy's blank English tokenizer)
and how many tokens differ in all.

    git show main:curation/filters/text.py > /tmp/text_old.py
    python benchmarks/filter_split_cost.py --old /tmp/text_old.py --pages /tmp/w3h/pages.parquet
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import importlib.util
import time
from collections import Counter

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="path of the older curation/filters/text.py")
    ap.add_argument("--pages", required=True, help="parquet of pages (filter_parity.py --pages)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("text_old", args.old)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    from curation.filters import text as new
    pdf = pd.read_parquet(args.pages)
    texts = [t for t in pdf.text if isinstance(t, str)]
    texts = [t for t in texts if len(new._NO_SPACE_CHAR.findall(t)) <= 0.2 * len(t)]
    print(f"pages: {len(texts)}, characters: {sum(map(len, texts)):,}; load average {os.getloadavg()}")
    best = {"old": float("inf"), "new": float("inf")}
    for _ in range(args.repeat):
        for name, mod in (("old", old), ("new", new)):
            t0 = time.perf_counter()
            for t in texts:
                mod.tokens_of(t)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"split time (best of {args.repeat}): old {best['old']:.1f} s, new {best['new']:.1f} s, "
          f"new/old {best['new'] / best['old']:.2f}")
    try:
        import spacy
    except ImportError:
        print("spaCy not installed: no token comparison (benchmark-only: pip install spacy)")
        return
    nlp = spacy.blank("en")
    ref = [[w.text for w in nlp(t) if not w.is_space] for t in texts]  # not tokens_of's no-space pages
    for name, mod in (("old", old), ("new", new)):
        same, diff = 0, 0
        for t, r in zip(texts, ref):
            ours = mod.tokens_of(t)
            if ours == r:
                same += 1
            else:
                a, b = Counter(r), Counter(ours)
                diff += sum(((a - b) + (b - a)).values())
        print(f"{name}: pages with exactly the reference's tokens {same} of {len(texts)}; tokens differing {diff}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
