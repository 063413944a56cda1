"""Dirty-word matching: one regex alternation per language (the first implementation) against the
word n-gram set look-up now in `curation/filters/dirty_words.py`, side by side on the same pages.

    python benchmarks/filter_dirty_words.py [--pages 120]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import re
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=120)
    args = ap.parse_args()
    from filter_rules import load_pages
    from curation.filters import dirty_words as dw

    texts = load_pages(args.pages).text.tolist()
    langs = ("en", "de")
    regexes = {}
    for lg in langs:
        terms = [t for f in dw.list_files_for(lg, ["en"]) for t in dw.load_terms(f)]
        terms = [t for t in terms if not (dw.has_no_space_script(t) and len(t) < dw.MIN_NO_SPACE_TERM_CHARS)]
        ordered = sorted(set(terms), key=lambda t: (-len(t), t))
        regexes[lg] = re.compile("|".join(dw._term_pattern(t) for t in ordered), re.IGNORECASE)
        dw.dirty_word_matches("warm up", lg)
    timings = {"regex alternation": [], "set look-up": []}
    hits = {}
    for _ in range(2):
        t = time.perf_counter()
        hits["regex alternation"] = sum(len(regexes[lg].findall(x)) for x in texts for lg in langs)
        timings["regex alternation"].append(time.perf_counter() - t)
        t = time.perf_counter()
        hits["set look-up"] = sum(len(dw.dirty_word_matches(x, lg)) for x in texts for lg in langs)
        timings["set look-up"].append(time.perf_counter() - t)
    chars = sum(map(len, texts)) * len(langs)
    for k, v in timings.items():
        print(f"{k:<18} best of 2: {min(v):7.2f} s  {chars / min(v) / 1e6:6.2f} M chars/s  hits {hits[k]}")
    print(f"speedup: {min(timings['regex alternation']) / min(timings['set look-up']):.1f}x "
          f"({len(texts)} pages, lists {', '.join(langs)})")


if __name__ == "__main__":
    main()
