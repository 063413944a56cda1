"""Filter signals on hand-made and real text (several languages), and the pandas decision."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from core.config import merge
from curation.filters import c4, dirty_words, gopher, repetition, token_kl, url_blocklist
from curation.filters.annotate import SIGNAL_NAMES, annotate_batch, normalise_lang
from curation.filters.decide import decide_pandas
from curation.filters.defaults import DEFAULTS
from curation.filters.text import tokens_of, words_of


def udhr(corpus, name: str) -> str:
    import lxml.html
    html = gzip.open(corpus / "multilingual" / "udhr" / "declaration" / f"{name}.html.gz").read()
    doc = lxml.html.fromstring(html.decode("utf-8"))
    return "\n".join(ln.strip() for ln in doc.body.text_content().splitlines() if ln.strip())


def extracted_page(corpus, file: str) -> str:
    import trafilatura
    html = gzip.open(corpus / "extraction" / "trafilatura-eval" / "cache" / f"{file}.gz").read()
    return trafilatura.extract(html.decode("utf-8", "replace")) or ""


# ------------------------------------------------------------------ repetition
def test_repetition_hand_made():
    text = "\n".join(["Buy now!"] * 6 + ["A single unique line with some words."] * 1
                     + ["Another line that is different from all others here."])
    s = repetition.line_signals(text)
    assert s["dup_line_frac"] == pytest.approx(5 / 8)
    assert s["dup_line_char_frac"] > 0.2
    clean = "one two three four five six seven eight nine ten eleven twelve"
    n = repetition.ngram_signals(tokens_of(clean), len(clean))
    assert all(v == 0.0 for k, v in n.items() if k.startswith("dup_"))
    log = " ".join(f"ERROR disk quota exceeded on volume {i} retrying write" for i in range(30))
    n = repetition.ngram_signals(tokens_of(log), len(log))
    # the only varying token is the number: the repeated 5-grams between numbers cover about half
    # the characters (the greedy scan jumps past each repeat; spaces are in the denominator)
    assert n["dup_5gram_char_frac"] > 0.4
    assert n["dup_10gram_char_frac"] == 0.0   # every 10-gram includes a distinct number
    assert n["top_2gram_char_frac"] > 0.15


def test_repetition_real_text_is_clean(corpus):
    for lang in ("eng", "deu_1996", "rus"):
        t = udhr(corpus, lang)
        s = {**repetition.line_signals(t), **repetition.ngram_signals(tokens_of(t), len(t))}
        assert s["dup_line_frac"] < 0.3, (lang, s)
        assert s["top_2gram_char_frac"] < 0.2, (lang, s)
        d = t + "\n" + t
        doubled = repetition.ngram_signals(tokens_of(d), len(d))
        # only the second copy counts (Gopher / datatrove): about half the word characters
        assert 0.35 < doubled["dup_10gram_char_frac"] < 0.5


# ------------------------------------------------------------------ Gopher, C4
def test_gopher_and_c4_hand_made():
    bullets = "\n".join(f"• item {i} ..." for i in range(10))
    g = gopher.gopher_signals(bullets, tokens_of(bullets))
    assert g["gopher_bullet_line_frac"] == 1.0 and g["gopher_ellipsis_line_frac"] == 1.0
    # tokens: • item N ... -> 4 per line; 10 ellipses over 40 tokens
    assert g["gopher_ellipsis_word_ratio"] == pytest.approx(10 / 40)
    assert g["gopher_hash_word_ratio"] == 0.0
    assert g["gopher_stop_word_count"] == 0
    prose = "The cat sat on the mat. It was happy to be there with the dog."
    g = gopher.gopher_signals(prose, tokens_of(prose))
    # distinct stop words (case-sensitive, as the reference): the, to, be, with
    assert g["gopher_stop_word_count"] == 4
    assert g["gopher_alpha_word_frac"] == pytest.approx(15 / 17)   # two '.' tokens
    page = ("Lorem ipsum dolor sit amet, consectetur.\nThis site uses cookies to track you.\n"
            "function() { return 1 }\nshort")
    c = c4.c4_signals(page)
    assert c["c4_lorem_ipsum"] and not c["c4_curly_brace"]     # the '{' line is no C4 line
    assert c["c4_boilerplate_line_count"] == 1
    f = c4.fineweb_signals(page, len(tokens_of(page)))
    assert f["fineweb_terminal_punct_line_frac"] == pytest.approx(0.5)
    assert f["fineweb_short_line_frac"] == pytest.approx(0.5)


def test_gopher_c4_on_real_page(corpus):
    t = extracted_page(corpus, "bmjv.de.konsum.html")
    assert len(t) > 200
    g, f = gopher.gopher_signals(t, tokens_of(t)), c4.fineweb_signals(t, len(tokens_of(t)))
    assert g["gopher_word_count"] > 50 and 3 <= g["gopher_mean_word_len"] <= 10
    assert f["fineweb_terminal_punct_line_frac"] > 0.12


def test_words_in_scripts_without_spaces(corpus):
    zh = udhr(corpus, "cmn_hans")
    w = words_of(zh)
    assert len(w) > 1000 and np.mean([len(x) for x in w]) < 2  # one word per character


# ------------------------------------------------------------------ dirty words
def test_dirty_words_languages_and_boundaries():
    assert dirty_words.dirty_word_matches("Fuck this. Scunthorpe, Essex, bass.", "en") == ["Fuck"]
    assert dirty_words.dirty_word_matches("Das ist Scheiße, du Arschloch!", "de") == ["Scheiße", "Arschloch"]
    assert dirty_words.dirty_word_matches("这部电影是三级片。", "zh") == ["三级片"]   # no spaces
    assert dirty_words.dirty_word_matches("ไอ้เหี้ยนั่น", "th")                       # Thai, no spaces
    # multi-word terms match across any whitespace; en-US and unknown languages use English
    assert dirty_words.dirty_word_matches("2 girls\n1 cup", "en-US") == ["2 girls\n1 cup"]
    assert dirty_words.dirty_word_matches("fuck", "xx") == ["fuck"]
    assert dirty_words.dirty_word_matches("fuck", "xx", fallback_langs=[]) == []
    assert dirty_words.list_files_for("tl", ["en"]) == ["fil"]
    assert len(dirty_words.available_languages()) == 28


def test_dirty_words_real_text_clean_then_planted(corpus):
    for name, lang, bad in (("eng", "en", "bullshit"), ("deu_1996", "de", "Arschloch"),
                            ("cmn_hans", "zh", "王八蛋"), ("rus", "ru", "блядь"), ("jpn", "ja", "セックス")):
        t = udhr(corpus, name)
        n = len(words_of(t))
        clean = dirty_words.dirty_word_signals(t, n, lang)
        # the English declaration says "sex" once ("race, colour, sex"): why C4's any-word rule
        # is too blunt, and why the default is a ratio
        # the Japanese list holds ordinary words (奴隷 slave, 人種 race): counted, below the ratio
        assert clean["dirty_word_count"] == {"en": 1, "ja": 8}.get(lang, 0), name
        assert clean["dirty_word_ratio"] < DEFAULTS["dirty_words"]["max_ratio"]
        planted = t[:500] + f" {bad} " + t[500:]
        s = dirty_words.dirty_word_signals(planted, n, lang)
        assert s["dirty_word_count"] >= 1 and s["dirty_word_ratio"] > 0, name


# ------------------------------------------------------------------ URL lists
def test_url_blocklist():
    b = url_blocklist.get_blocklist()
    assert b.check("https://www.0-casino.info/poker")[0] == ["ut1:gambling"]
    assert b.check("http://m.100-best-dating-sites.com/")[0] == ["ut1:dating"]   # parent domain
    assert b.check("https://0001-5cf.pages.dev/awards")[0] == ["ut1:malware", "ut1:phishing"]
    assert b.check("https://0001-5cf.pages.dev/other")[0] == []                    # prefix only
    assert "fineweb:banned_subword" in b.check("http://example.com/2girls1cup.html")[0]
    hits, soft = b.check("http://example.com/ass-babes")
    assert soft == 2
    assert b.check("https://www.bundesregierung.de/breg-de/aktuelles") == ([], 0)
    assert b.check(None) == ([], 0) and b.check("not a url") == ([], 0)
    s = url_blocklist.url_signals("http://example.com/ass-babes", DEFAULTS["url"]["block_categories"], 2)
    assert s["url_blocked"]


# ------------------------------------------------------------------ token KL
def test_token_kl_outliers():
    normal = ["The weather in the city was mild today, and people walked in the park."] * 20
    ids = token_kl.encode_batch(normal + ["xQ9#zz@@ 0x7f3a9b 0x88ffee base64:QUJDREVGRw== ~~~~"])
    assert all(len(a) > 5 for a in ids)
    counts = token_kl.count_tokens(ids, token_kl.vocab_size())
    assert counts.sum() == sum(len(a) for a in ids)
    log_q = token_kl.corpus_log_probs(counts, alpha=0.01)
    assert np.exp(log_q).sum() == pytest.approx(1.0)
    kls = [token_kl.kl_divergence(a, log_q) for a in ids]
    assert kls[-1] > 2 * kls[0]
    assert token_kl.kl_divergence(np.array([], dtype=np.int64), log_q) is None
    with pytest.raises(ValueError):
        token_kl.corpus_log_probs(counts, alpha=0)


# ------------------------------------------------------------------ batch + decision
def _cfg(**over):
    return merge(DEFAULTS, over)


def test_lang_resolution_order():
    assert normalise_lang("en-US") == "en" and normalise_lang("unknown") is None
    assert normalise_lang("__label__de") == "de" and normalise_lang(None) is None
    pdf = pd.DataFrame({"text": ["Das ist ein deutscher Satz über das Wetter in Berlin heute.",
                                 "Ceci est une phrase française sur le temps qu'il fait à Paris.",
                                 "Ceci est une phrase française sur le temps qu'il fait à Paris.",
                                 "12 34 56 78"],
                        "html_lang": ["en", "de-DE", None, None], "lang": [None, None, "es", "pt"]})
    out = annotate_batch(pdf, _cfg(token_kl={"enabled": False}))
    # the text decides (html lang is never used, a source's `lang` only when the text is unsure)
    assert out["filter_lang"].tolist() == ["de", "fr", "fr", "pt"]
    assert out["filter_lang_source"].tolist() == ["fasttext", "fasttext", "fasttext", "lang"]
    assert out["lid_lang"].tolist()[:3] == ["de", "fr", "fr"] and (out["lid_score"][:3] > 0.65).all()


def test_annotate_and_decide_pandas(corpus):
    code = json.loads(gzip.open(corpus / "code" / "thealgorithms.jsonl.gz", "rt").readline())["content"]
    gsm = json.loads(open(corpus / "math" / "gsm8k" / "test.jsonl").readline())
    pdf = pd.DataFrame({
        "doc_id": ["en", "zh", "code", "math", "spam", "bad"],
        "source": ["crawl", "crawl", "thealgorithms", "gsm8k", "crawl", "crawl"],
        "url": ["https://un.org/udhr", None, None, None, "https://www.0-casino.info/", None],
        "text": [udhr(corpus, "eng"), udhr(corpus, "cmn_hans"), code,
                 gsm["question"] + "\n" + gsm["answer"], "buy cheap pills now\n" * 40, "   "],
    })
    out = annotate_batch(pdf, _cfg())
    assert set(SIGNAL_NAMES) <= set(out.columns)
    assert out["filter_error"].isna().all()
    d = decide_pandas(out, _cfg()).set_index("doc_id")
    assert d.loc["en", "keep"], d.loc["en", "drop_reasons"]
    assert d.loc["zh", "keep"], d.loc["zh", "drop_reasons"]        # word-length rule exempt
    assert d.loc["code", "keep"], d.loc["code", "drop_reasons"]    # prose rules not applied
    assert d.loc["math", "keep"], d.loc["math", "drop_reasons"]    # short, but the math set
    assert "url.block_categories" in d.loc["spam", "drop_reasons"]
    assert "repetition.max_dup_line_frac" in d.loc["spam", "drop_reasons"]
    assert d.loc["bad", "drop_reasons"][0] == "empty_text"
    # the same signals, other thresholds: prose rules for code, stricter word count
    d2 = decide_pandas(out, _cfg(source_rule_sets_map={"default": "prose"},
                                 gopher={"min_words": 100_000})).set_index("doc_id")
    assert "fineweb.min_terminal_punct_line_frac" in d2.loc["code", "drop_reasons"]
    assert not d2["keep"].any()
    # null turns a rule off
    d3 = decide_pandas(out, _cfg(url={"block_categories": []}, repetition={
        k: None for k in DEFAULTS["repetition"]}, fineweb={"max_dup_line_char_frac": None,
                                                          "max_short_line_frac": None}))
    assert "url.block_categories" not in d3.set_index("doc_id").loc["spam", "drop_reasons"]


def test_bad_config_fails():
    from core.config import ConfigError
    with pytest.raises(ConfigError):
        merge(DEFAULTS, {"gopher": {"min_wrods": 3}})
    with pytest.raises(ConfigError):
        decide_pandas(pd.DataFrame({"text": ["x"]}), _cfg(rule_sets_map={"prose": ["nope"]}))
