"""Parity of our Gopher / C4 / FineWeb signals and rules with datatrove's own filters, on real pages.

Pages: the 990 trafilatura-eval pages of the sample corpus, extracted with OUR extractor
(curation.extract.html.extract_html); pages written mostly in scripts without spaces are set aside (datatrove
tokenizes them with jieba/sudachi/..., we count characters: a different word on purpose) and counted.

datatrove is a benchmark-only dependency (never a runtime one): `pip install datatrove spacy` (its
English word tokenizer is spaCy's blank `en`, offline). Without it this script prints a message and
exits 0.

For every signal: datatrove's value (computed with datatrove's own helpers: split_into_words,
find_duplicates, find_top_duplicate, find_all_duplicate, and the formulas of its filter bodies) and
ours (annotate_batch), the share of pages where they agree within a tolerance, and the mean absolute
difference. For every rule: datatrove's filter class run with only that rule enabled (all others
disabled) against our rule (our signal vs our default threshold, language conditions ignored because
datatrove has none): agreement, and every disagreeing page with both values.

    python benchmarks/filter_parity.py [--limit 990] [--pages /tmp/pages.parquet] [--show 3]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import gzip
import time
from collections import defaultdict

import numpy as np
import pandas as pd


def load_pages(limit: int, cache: str | None) -> pd.DataFrame:
    if cache and os.path.exists(cache):
        return pd.read_parquet(cache).head(limit)
    from core import corpus as corpus_files
    from curation.extract.html import extract_html
    rows = []
    for url, m in sorted(corpus_files.trafilatura_eval().items()):
        p = corpus_files.trafilatura_eval_page(m["file"], prefer=("cache", "eval"))
        if p is None:
            continue
        ex = extract_html(gzip.open(p).read(), url=url)
        rows.append({"doc_id": m["file"], "url": url, "text": ex.text, "html_lang": ex.html_lang})
    pdf = pd.DataFrame(rows)
    if cache:
        pdf.to_parquet(cache)
    return pdf.head(limit)


def datatrove_signals(text: str) -> dict:
    """datatrove's quantities, with its helpers and the formulas of its filter bodies."""
    import re
    from datatrove.pipeline.filters.gopher_repetition_filter import (find_all_duplicate, find_duplicates,
                                                                     find_top_duplicate, get_n_grams)
    from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION, split_into_words
    out = {}
    n = len(text)
    paras = re.split(r"\n{2,}", text.strip())
    pd_, pc = find_duplicates(paras)
    out["dup_para_frac"], out["dup_para_char_frac"] = pd_ / len(paras), pc / n
    lines = re.split("\n+", text)
    ld, lc = find_duplicates(lines)
    out["dup_line_frac"], out["dup_line_char_frac"] = ld / len(lines), lc / n
    words = split_into_words(text, "en")
    for k in (2, 3, 4):
        g = get_n_grams(words, k)
        out[f"top_{k}gram_char_frac"] = find_top_duplicate(g) / n if g else 0.0
    for k in range(5, 11):
        out[f"dup_{k}gram_char_frac"] = find_all_duplicate(words, k) / n
    nsw = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
    out["gopher_word_count"] = len(nsw)
    out["gopher_mean_word_len"] = float(np.mean([len(w) for w in nsw])) if nsw else 0.0
    nw = max(1, len(words))
    out["gopher_hash_word_ratio"] = text.count("#") / nw
    out["gopher_ellipsis_word_ratio"] = (text.count("...") + text.count("…")) / nw
    sl = text.splitlines()
    out["gopher_bullet_line_frac"] = sum(s.lstrip().startswith(("•", "-")) for s in sl) / max(1, len(sl))
    out["gopher_ellipsis_line_frac"] = sum(s.rstrip().endswith(("...", "…")) for s in sl) / max(1, len(sl))
    out["gopher_alpha_word_frac"] = sum(any(c.isalpha() for c in w) for w in words) / nw
    out["gopher_stop_word_count"] = len({"the", "be", "to", "of", "and", "that", "have", "with"} & set(words))
    fl = [x for x in text.split("\n") if x.strip()]
    out["fineweb_terminal_punct_line_frac"] = sum(x.endswith(tuple(TERMINAL_PUNCTUATION)) for x in fl) / max(1, len(fl))
    out["fineweb_short_line_frac"] = sum(len(x) <= 30 for x in fl) / max(1, len(fl))
    out["fineweb_dup_line_char_frac"] = find_duplicates(fl)[1] / max(1, len(text.replace("\n", "")))
    out["fineweb_newline_word_ratio"] = text.count("\n") / nw
    return out


# (rule name, our signal column, our config path, datatrove filter factory with only this rule on)
def rule_table():
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)
    off_rep = dict(dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
                   top_n_grams=(), dup_n_grams=())
    off_q = dict(min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
                 max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
                 max_non_alpha_words_ratio=None, min_stop_words=None)
    off_fw = dict(line_punct_thr=-1.0, short_line_thr=2.0, char_duplicates_ratio=2.0, new_line_ratio=1e18)
    off_c4 = dict(filter_no_terminal_punct=True, min_num_sentences=-1, min_words_per_line=5,
                  filter_lorem_ipsum=False, filter_javascript=True, filter_curly_bracket=False, filter_policy=True)
    R = []
    for k, t in (("dup_line_frac", .3), ("dup_para_frac", .3), ("dup_line_char_frac", .2), ("dup_para_char_frac", .2)):
        R.append((f"repetition.max_{k}", [k], GopherRepetitionFilter, {**off_rep, k: t}))
    for k, t in ((2, .2), (3, .18), (4, .16)):
        R.append((f"repetition.max_top_{k}gram_char_frac", [f"top_{k}gram_char_frac"], GopherRepetitionFilter,
                  {**off_rep, "top_n_grams": ((k, t),)}))
    for k, t in ((5, .15), (6, .14), (7, .13), (8, .12), (9, .11), (10, .10)):
        R.append((f"repetition.max_dup_{k}gram_char_frac", [f"dup_{k}gram_char_frac"], GopherRepetitionFilter,
                  {**off_rep, "dup_n_grams": ((k, t),)}))
    for key, cols, kw in (("min_words", ["gopher_word_count"], {"min_doc_words": 50}),
                          ("max_words", ["gopher_word_count"], {"max_doc_words": 100000}),
                          ("min_mean_word_len", ["gopher_mean_word_len"], {"min_avg_word_length": 3}),
                          ("max_mean_word_len", ["gopher_mean_word_len"], {"max_avg_word_length": 10}),
                          ("max_symbol_word_ratio", ["gopher_hash_word_ratio", "gopher_ellipsis_word_ratio"],
                           {"max_symbol_word_ratio": 0.1}),
                          ("max_bullet_line_frac", ["gopher_bullet_line_frac"], {"max_bullet_lines_ratio": 0.9}),
                          ("max_ellipsis_line_frac", ["gopher_ellipsis_line_frac"], {"max_ellipsis_lines_ratio": 0.3}),
                          ("min_alpha_word_frac", ["gopher_alpha_word_frac"], {"max_non_alpha_words_ratio": 0.8}),
                          ("min_stop_words", ["gopher_stop_word_count"], {"min_stop_words": 2})):
        R.append((f"gopher.{key}", cols, GopherQualityFilter, {**off_q, **kw}))
    R.append(("c4.drop_lorem_ipsum", ["c4_lorem_ipsum"], C4QualityFilter, {**off_c4, "filter_lorem_ipsum": True}))
    R.append(("c4.drop_curly_brace", ["c4_curly_brace"], C4QualityFilter, {**off_c4, "filter_curly_bracket": True}))
    R.append(("c4.min_sentences(3)", ["c4_sentence_count"], C4QualityFilter, {**off_c4, "min_num_sentences": 3}))
    for key, col, kw in (("min_terminal_punct_line_frac", "fineweb_terminal_punct_line_frac", {"line_punct_thr": 0.12}),
                         ("max_short_line_frac", "fineweb_short_line_frac", {"short_line_thr": 0.67}),
                         ("max_dup_line_char_frac", "fineweb_dup_line_char_frac", {"char_duplicates_ratio": 0.01}),
                         ("max_newline_word_ratio", "fineweb_newline_word_ratio", {"new_line_ratio": 0.3})):
        R.append((f"fineweb.{key}", [col], FineWebQualityFilter, {**off_fw, **kw}))
    return R


def our_fires(rule: str, row, cfg) -> bool:
    if rule == "c4.min_sentences(3)":
        return row["c4_sentence_count"] < 3
    group, key = rule.split(".")
    t = cfg[group][key]
    if key.startswith("drop_"):
        col = {"drop_lorem_ipsum": "c4_lorem_ipsum", "drop_curly_brace": "c4_curly_brace"}[key]
        return bool(row[col])
    from curation.filters.decide import RULES
    fire = False
    for r in RULES:
        if r.reason == rule:
            v = row[r.column]
            fire |= (v > t) if r.kind == "max" else (v < t)
    return bool(fire)


def tolerance_ok(col: str, a: float, b: float) -> bool:
    if col in ("gopher_word_count",):
        return abs(a - b) <= max(1.0, 0.02 * max(a, b))
    if col in ("gopher_stop_word_count", "c4_sentence_count"):
        return abs(a - b) <= max(0.0, 0.05 * max(a, b))
    if col == "gopher_mean_word_len":
        return abs(a - b) <= 0.1
    return abs(a - b) <= 0.01


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=990)
    ap.add_argument("--pages", default=None, help="parquet cache of the extracted pages")
    ap.add_argument("--show", type=int, default=50, help="disagreeing pages printed per rule")
    args = ap.parse_args()
    try:
        import datatrove  # noqa: F401
        import spacy  # noqa: F401
    except ImportError as e:
        print(f"SKIP: {e.name} is not installed (benchmark-only: pip install datatrove spacy)")
        return
    from datatrove.data import Document

    from core.config import merge
    from curation.filters.annotate import annotate_batch
    from curation.filters.defaults import DEFAULTS
    from curation.filters.text import _NO_SPACE_CHAR

    t0 = time.time()
    pdf = load_pages(args.limit, args.pages)
    pdf = pdf[pdf.text.notna()].reset_index(drop=True)
    nospace = pdf.text.map(lambda t: len(_NO_SPACE_CHAR.findall(t)) > 0.2 * len(t))
    print(f"pages with text: {len(pdf)}; set aside (mostly a script without spaces): {int(nospace.sum())}")
    pdf = pdf[~nospace].reset_index(drop=True)
    cfg = merge(DEFAULTS, {"token_kl": {"enabled": False}, "lang": {"detect": False}, "pii": {"redact": False}})
    ours = annotate_batch(pdf[["text"]].copy(), cfg)
    theirs = pd.DataFrame([datatrove_signals(t) for t in pdf.text])
    print(f"pages compared: {len(pdf)} ({time.time() - t0:.0f} s)\n")
    print("| signal | agreement | mean abs diff |\n| --- | --- | --- |")
    sig_rows = []
    for col in theirs.columns:
        a, b = ours[col].astype(float).to_numpy(), theirs[col].astype(float).to_numpy()
        ok = np.array([tolerance_ok(col, x, y) for x, y in zip(a, b)])
        sig_rows.append((col, ok.mean()))
        print(f"| {col} | {ok.mean():.2%} ({int((~ok).sum())} off) | {np.abs(a - b).mean():.4f} |")
    # why the signals differ: pages with some text in a script without spaces (we count characters
    # as words, datatrove's English tokenizer keeps whole runs), else the tokenizers' differences
    from collections import Counter
    from datatrove.utils.text import split_into_words
    from curation.filters.text import tokens_of

    def why(i: int) -> str:
        t = pdf.text[i]
        if _NO_SPACE_CHAR.search(t):
            return "some text in a script without spaces (characters are words here)"
        a, b = Counter(split_into_words(t, "en")), Counter(tokens_of(t))
        ta = ", ".join(f"{k!r}x{v}" for k, v in (a - b).most_common(3))
        tb = ", ".join(f"{k!r}x{v}" for k, v in (b - a).most_common(3))
        return f"tokens: spaCy only [{ta}] / ours only [{tb}]"

    off_pages = sorted({i for col in theirs.columns for i in range(len(pdf))
                        if not tolerance_ok(col, float(ours[col][i]), float(theirs[col][i]))})
    cats = Counter("no-space script" if _NO_SPACE_CHAR.search(pdf.text[i]) else "tokenizer" for i in off_pages)
    print(f"\npages with any signal outside its tolerance: {len(off_pages)} ({dict(cats)})")
    print("\n| rule | datatrove drops | ours drops | agreement | disagreements |\n| --- | --- | --- | --- | --- |")
    details = defaultdict(list)
    table = rule_table()
    filters = [cls(**kw) for _, _, cls, kw in table]
    # pages outer, rules inner: datatrove memoises the word split of the last few texts
    dt_all = np.array([[f.filter(Document(text=t, id=str(i))) is not True for f in filters]
                       for i, t in enumerate(pdf.text)])
    for k, (rule, cols, _, _) in enumerate(table):
        dt = dt_all[:, k]
        us = np.array([our_fires(rule, ours.iloc[i], cfg) for i in range(len(pdf))])
        dis = np.flatnonzero(dt != us)
        print(f"| {rule} | {int(dt.sum())} | {int(us.sum())} | {1 - len(dis) / len(pdf):.2%} | {len(dis)} |")
        for i in dis:
            details[rule].append((pdf.doc_id[i], bool(dt[i]), {c: round(float(ours[c][i]), 4) for c in cols},
                                  {c: round(float(theirs[c][i]), 4) for c in cols if c in theirs.columns},
                                  why(i)))
    for rule, rows in details.items():
        print(f"\n{rule}: {len(rows)} disagreements")
        for doc, dtdrop, o, t, reason in rows[:args.show]:
            print(f"  {doc}: datatrove {'drops' if dtdrop else 'keeps'}; ours {o} theirs {t}; {reason}")


if __name__ == "__main__":
    main()
