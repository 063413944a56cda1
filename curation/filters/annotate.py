"""A batch of documents -> the same batch plus one column per signal (no Spark here).

`annotate_batch(pdf, cfg, kl_reference)` runs every signal over a pandas frame with at least `text`
(and, when present, `url`, `lang`, `html_lang`). The Spark stage calls it per Arrow batch through
`mapInPandas`; tests and notebooks call it directly. The language is identified here once per
document (fastText on the text: `lid_lang`, `lid_score`, `filter_lang`); the score stage reuses it. A document whose signals fail gets
`filter_error` set (and is dropped by `decide` with reason `error`), never a crashed task.
"""
from __future__ import annotations

import re
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from curation.filters import c4, dirty_words, gopher, pii, repetition, token_kl, url_blocklist
from curation.filters.text import tokens_of, words_of

# (column, Spark SQL type) for every column annotate adds, in order.
SIGNAL_COLUMNS: list[tuple[str, str]] = [
    ("filter_lang", "string"), ("filter_lang_source", "string"),
    ("lid_lang", "string"), ("lid_score", "double"),
    ("dup_line_frac", "double"), ("dup_line_char_frac", "double"),
    ("dup_para_frac", "double"), ("dup_para_char_frac", "double"),
    *[(f"top_{n}gram_char_frac", "double") for n in repetition.TOP_NS],
    *[(f"dup_{n}gram_char_frac", "double") for n in repetition.DUP_NS],
    ("gopher_word_count", "int"), ("gopher_mean_word_len", "double"),
    ("gopher_hash_word_ratio", "double"), ("gopher_ellipsis_word_ratio", "double"),
    ("gopher_bullet_line_frac", "double"),
    ("gopher_ellipsis_line_frac", "double"), ("gopher_alpha_word_frac", "double"),
    ("gopher_stop_word_count", "int"),
    ("c4_boilerplate_line_count", "int"), ("c4_lorem_ipsum", "boolean"), ("c4_curly_brace", "boolean"),
    ("c4_sentence_count", "int"),
    ("fineweb_terminal_punct_line_frac", "double"), ("fineweb_short_line_frac", "double"),
    ("fineweb_dup_line_char_frac", "double"), ("fineweb_newline_word_ratio", "double"),
    ("dirty_word_count", "int"), ("dirty_word_ratio", "double"),
    ("token_count", "int"), ("token_kl", "double"), ("token_kl_excess", "double"), ("token_kl_lang", "string"),
    ("url_block_hits", "array<string>"), ("url_soft_banned_count", "int"), ("url_blocked", "boolean"),
    *[(c, "int") for c in pii.COUNT_COLUMNS.values()], ("pii_total", "int"), ("pii_scanned", "boolean"),
    ("filter_error", "string"),
]
SIGNAL_NAMES = [c for c, _ in SIGNAL_COLUMNS]
_INT_COLS = [c for c, t in SIGNAL_COLUMNS if t == "int"]
_LANG_TAG = re.compile(r"^[a-z]{2,3}$")


def normalise_lang(tag) -> str | None:
    """'en-US' -> 'en', 'DE' -> 'de', 'unknown'/''/None -> None."""
    if tag is None or (isinstance(tag, float) and np.isnan(tag)):
        return None
    t = str(tag).strip().lower()
    if t.startswith("__label__"):
        t = t[len("__label__"):]
    t = t.replace("_", "-").split("-")[0].split(",")[0].strip()
    return t if _LANG_TAG.match(t) else None


def lang_threshold(lang: str | None, thresholds: dict | None, default: float) -> float:
    """The score a `lang` prediction needs: its per-language threshold, else `default`."""
    if thresholds and lang in thresholds and thresholds[lang] is not None:
        return float(thresholds[lang])
    return default


def resolve_languages(pdf: pd.DataFrame, text_col: str, detect: bool, threshold: float,
                      thresholds: dict | None = None
                      ) -> tuple[list[str | None], list[str], list[str | None], list[float | None]]:
    """The language every signal uses, from the TEXT (fastText lid.176, as Llama 3 does).

    Returns (language, source, fastText top label, its score) per row. The top label counts when
    its score reaches the label's threshold (`thresholds[label]`, the per-language thresholds of the
    run, else `threshold`). When it does not (or detection is off), a `lang` column (a source's own
    language metadata) is the fallback; `<html lang>` is never used: pages declare it wrongly (15
    German pages of the sample crawl declare `en`); it stays in the table as `html_lang`."""
    n = len(pdf)
    langs: list[str | None] = [None] * n
    src = ["none"] * n
    top: list[str | None] = [None] * n
    score: list[float | None] = [None] * n
    if detect and n:
        from curation.filters.langid import detect_languages
        texts = [t if isinstance(t, str) else "" for t in pdf[text_col].tolist()]
        for i, (lg, sc) in enumerate(detect_languages(texts, threshold=0.0)):
            lg = normalise_lang(lg) if sc > 0 else None
            top[i], score[i] = lg, float(sc)
            if lg and sc >= lang_threshold(lg, thresholds, threshold):
                langs[i], src[i] = lg, "fasttext"
    if "lang" in pdf.columns:
        vals = pdf["lang"].tolist()
        for i in range(n):
            if langs[i] is None:
                lg = normalise_lang(vals[i])
                if lg:
                    langs[i], src[i] = lg, "lang"
    return langs, src, top, score


def annotate_batch(pdf: pd.DataFrame, cfg: dict, kl_reference: "token_kl.Reference | None" = None,
                   timings: dict | None = None) -> pd.DataFrame:
    """Return `pdf` with every signal column added (and `text` redacted when cfg pii.redact).
    Token KL is computed when cfg token_kl.enabled and `kl_reference` (token_kl.Reference) is given:
    against the reference of the text's fastText language (its top label, else `filter_lang`)."""
    tcol = cfg["text_column"]
    if tcol not in pdf.columns:
        raise KeyError(f"input has no text column {tcol!r}; columns: {list(pdf.columns)}")
    tm = timings if timings is not None else defaultdict(float)
    texts = [t if isinstance(t, str) else "" for t in pdf[tcol].tolist()]
    urls = pdf["url"].tolist() if "url" in pdf.columns else [None] * len(pdf)

    t0 = time.perf_counter()
    langs, lang_src, lid_top, lid_score = resolve_languages(
        pdf, tcol, cfg["lang"]["detect"], cfg["lang"]["min_score"], cfg["lang"].get("thresholds"))
    tm["lang"] += time.perf_counter() - t0

    kl_vals: list[float | None] = [None] * len(texts)
    kl_excess: list[float | None] = [None] * len(texts)
    kl_lang: list[str | None] = [None] * len(texts)
    tok_counts = [0] * len(texts)
    if cfg["token_kl"]["enabled"] and kl_reference is not None:
        t0 = time.perf_counter()
        ids = token_kl.encode_batch(texts, kl_reference.encoding, cfg["token_kl"]["max_chars"])
        tm["token_kl.tokenize"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, a in enumerate(ids):
            tok_counts[i] = len(a)
            lg = lid_top[i] if lid_top[i] in kl_reference.counts else langs[i]
            kl_lang[i], kl_vals[i], kl_excess[i] = kl_reference.score(a, lg)
        tm["token_kl.divergence"] += time.perf_counter() - t0

    dw = cfg["dirty_words"]
    uc = cfg["url"]
    pii_types = tuple(cfg["pii"]["types"])
    # PII only where configured (default: prose rule sets; code is full of numbers that have a
    # card's or a phone's shape, and its e-mails are authors' addresses in licence headers)
    from curation.filters.decide import rule_sets_of
    pii_sets = set(cfg["pii"]["rule_sets"])
    scan = [rs in pii_sets for rs in rule_sets_of(pdf, cfg).tolist()]
    rows = []
    redacted = []
    for i, text in enumerate(texts):
        row: dict = {}
        red = text
        pii_error = None
        if scan[i]:
            t0 = time.perf_counter()
            try:
                counts, red = pii.pii_signals(text, pii_types)
                row.update(counts)
            except Exception as e:
                # never store a text whose PII could not be removed: it is emptied, the document
                # dropped with reason `error`
                pii_error = f"pii: {type(e).__name__}: {e}"[:500]
                red = ""
            tm["pii"] += time.perf_counter() - t0
        row["pii_scanned"] = scan[i] and pii_error is None
        try:
            t0 = time.perf_counter()
            words = words_of(text)
            tokens = tokens_of(text)
            t1 = time.perf_counter(); tm["split"] += t1 - t0
            row.update(repetition.line_signals(text))
            t2 = time.perf_counter(); tm["repetition.lines"] += t2 - t1
            row.update(repetition.ngram_signals(tokens, len(text)))
            t3 = time.perf_counter(); tm["repetition.ngrams"] += t3 - t2
            row.update(gopher.gopher_signals(text, tokens))
            t4 = time.perf_counter(); tm["gopher"] += t4 - t3
            row.update(c4.c4_signals(text, cfg["c4"]["min_words_per_line"]))
            row.update(c4.fineweb_signals(text, len(tokens)))
            t5 = time.perf_counter(); tm["c4_fineweb"] += t5 - t4
            row.update(dirty_words.dirty_word_signals(text, len(words), langs[i], dw["fallback_langs"],
                                                      dw["lists_dir"]))
            t6 = time.perf_counter(); tm["dirty_words"] += t6 - t5
            row.update(url_blocklist.url_signals(urls[i], uc["block_categories"],
                                                 uc["soft_banned_threshold"], uc["lists_dir"]))
            tm["url"] += time.perf_counter() - t6
            row["filter_error"] = pii_error
        except Exception as e:  # a bad document gets a recorded reason, never a crashed task
            keep = {k: row[k] for k in (*pii.COUNT_COLUMNS.values(), "pii_total", "pii_scanned") if k in row}
            row = {**keep, "filter_error": pii_error or f"{type(e).__name__}: {e}"[:500]}
        redacted.append(red)       # the redacted text (or "" when redaction failed), never the original
        row["filter_lang"] = langs[i]
        row["filter_lang_source"] = lang_src[i]
        row["lid_lang"] = lid_top[i]
        row["lid_score"] = lid_score[i]
        row["token_count"] = tok_counts[i]
        row["token_kl"] = kl_vals[i]
        row["token_kl_excess"] = kl_excess[i]
        row["token_kl_lang"] = kl_lang[i]
        rows.append(row)
    sig = pd.DataFrame(rows, columns=SIGNAL_NAMES, index=pdf.index)
    for c in _INT_COLS:
        sig[c] = sig[c].fillna(0).astype("int32")
    for c, t in SIGNAL_COLUMNS:
        if t == "boolean":
            sig[c] = [bool(v) if isinstance(v, (bool, np.bool_)) else False for v in sig[c]]
        elif t == "array<string>":
            sig[c] = sig[c].apply(lambda v: v if isinstance(v, list) else [])
    out = pdf.drop(columns=[c for c in SIGNAL_NAMES if c in pdf.columns])
    if cfg["pii"]["redact"]:
        out = out.assign(**{tcol: redacted})
    return pd.concat([out, sig], axis=1)
