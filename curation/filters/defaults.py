"""The filter stage's published defaults (configs/filter.yaml shows the same values, commented).

Sources: Gopher = Rae et al. 2021 (appendix A, table A1), values and definitions as datatrove
implements them (src/datatrove/pipeline/filters/gopher_repetition_filter.py and
gopher_quality_filter.py, datatrove 0.10.1); C4 = Raffel et al. 2020 section 2.2, values from its
reference code (tensorflow_datasets text/c4_utils.py); FineWeb = Penedo et al. 2024, values and
definitions from the filter FineWeb ran (datatrove src/datatrove/pipeline/filters/
fineweb_quality_filter.py); Llama 3 = Dubey et al. 2024, section 3.1.1 (no thresholds published for
dirty words, token KL or PII domains: ours are marked "ours"). benchmarks/filter_parity.py checks
the signals and decisions against datatrove itself (docs/BENCHMARKS.md).
"""
from __future__ import annotations

from core.validate import Rule

NO_SPACE_LANGS = ["zh", "ja", "th", "lo", "km", "my", "bo", "wuu", "yue"]

DEFAULTS: dict = {
    "text_column": "text",
    "lang": {
        "detect": True,            # fastText lid.176 on the TEXT (Llama 3); <html lang> is never used
        "min_score": 0.65,         # threshold of a language without its own (CCNet / Llama 3 value)
        "per_language_thresholds": True,  # FineWeb-2: max(0.3, min(0.9, median - std)) per language
        "min_docs_per_language": 50,      # ours: fewer documents keep min_score
        "thresholds": None,        # {lang: threshold}: fixed values (override the computed ones)
    },
    "repetition": {                # Gopher table A1 (datatrove GopherRepetitionFilter defaults)
        "max_dup_line_frac": 0.30, "max_dup_para_frac": 0.30,
        "max_dup_line_char_frac": 0.20, "max_dup_para_char_frac": 0.20,
        "max_top_2gram_char_frac": 0.20, "max_top_3gram_char_frac": 0.18,
        "max_top_4gram_char_frac": 0.16,
        "max_dup_5gram_char_frac": 0.15, "max_dup_6gram_char_frac": 0.14,
        "max_dup_7gram_char_frac": 0.13, "max_dup_8gram_char_frac": 0.12,
        "max_dup_9gram_char_frac": 0.11, "max_dup_10gram_char_frac": 0.10,
        # word n-grams are character n-grams in scripts without spaces: far more repetitive,
        # so the n-gram rules (not the line/paragraph ones) are off for these languages
        "ngram_exempt_langs": NO_SPACE_LANGS,
    },
    "gopher": {                    # Gopher A.1.1 (datatrove GopherQualityFilter defaults)
        "min_words": 50, "max_words": 100_000,
        "min_mean_word_len": 3.0, "max_mean_word_len": 10.0,
        "max_symbol_word_ratio": 0.10,   # '#' per word and ellipses per word, checked separately
        "max_bullet_line_frac": 0.90, "max_ellipsis_line_frac": 0.30,
        "min_alpha_word_frac": 0.80,
        "min_stop_words": 2,     # distinct stop words present
        "stop_word_langs": ["en"],                 # the stop-word list is English
        "word_length_exempt_langs": NO_SPACE_LANGS,  # a "word" is one character there
    },
    "c4": {                         # C4 section 2.2; values from tfds c4_utils.py
        "min_words_per_line": 5,    # C4 (_MIN_WORDS_PER_LINE): a signal parameter (re-annotate to change)
        "drop_lorem_ipsum": True,   # C4
        "drop_curly_brace": True,   # C4 (prose only; never for code)
        "max_boilerplate_lines": None,  # C4 removes javascript/policy lines; null: no document rule
        "min_sentences": None,      # C4: 3 (_MIN_NUM_SENTENCES); ours: off, see docs/stages/filter.md
    },
    "fineweb": {                    # FineWeb: datatrove FineWebQualityFilter defaults (what FineWeb ran)
        "min_terminal_punct_line_frac": 0.12, "max_short_line_frac": 0.67,
        "max_dup_line_char_frac": 0.01,  # over the text without newlines (not Gopher's 0.2 over the text)
        "max_newline_word_ratio": 0.30,
    },
    "dirty_words": {
        "lists_dir": None,           # default: <corpus>/blocklists/ldnoobw
        "fallback_langs": ["en"],    # list used when the language has none (C4 used English)
        "max_count": None,           # C4's rule is max_count: 0 (any listed word drops the page)
        "max_ratio": 0.01,           # ours: more than 1 listed word per 100 words
    },
    "token_kl": {
        "enabled": False,
        "reference": None,           # folder built by python -m curation.filters.token_kl_reference;
                                     # null = models/token_kl (encoding and smoothing are the reference's)
        "max_chars": 200_000,        # tokens of at most this prefix (bounds pathological documents)
        "max_excess": None,          # KL minus the reference's median KL at the document's length
        "min_tokens": 20,            # shorter documents never get the KL rule
    },
    "url": {
        "lists_dir": None,           # default: <corpus>/blocklists
        "block_categories": ["ut1:adult", "ut1:dating", "ut1:gambling", "ut1:malware",
                             "ut1:mixed_adult", "ut1:phishing", "fineweb:banned_word",
                             "fineweb:banned_subword"],
        "soft_banned_threshold": 2,  # FineWeb
    },
    "pii": {
        "redact": True,              # output `text` is the redacted text
        "rule_sets": ["prose"],      # ours: PII is found and redacted in these rule sets only (not code)
        "types": ["EMAIL", "PHONE", "IP_ADDRESS", "CREDIT_CARD", "IBAN", "US_SSN"],
        "max_domain_pii_doc_share": 0.5,  # ours (Llama 3 drops "high-PII" domains, no value given)
        "min_domain_docs": 5,        # the share is only trusted for domains with this many documents
    },
    # Which rule groups apply to which source (or `stream`, when the column exists).
    "rule_sets_map": {
        "prose": ["repetition", "gopher", "c4", "fineweb", "dirty_words", "token_kl", "url", "pii_domain"],
        "code": ["url", "pii_domain"],
        "math": ["url", "dirty_words", "pii_domain"],
        "none": [],
    },
    "source_rule_sets_map": {
        "default": "prose",
        "thealgorithms": "code", "code": "code", "github": "code",
        "gsm8k": "math", "math": "math", "math-hendrycks": "math", "math_oai": "math",
    },
}


def _frac(**kw):
    return Rule(float, ge=0, le=1, **kw)


# every key's type and range (core/validate.py), checked when the config is loaded (jobs/filter.py)
# and by run_filter, before Spark reads anything
SCHEMA = {
    "text_column": Rule(str, nonempty=True),
    "lang.detect": Rule(bool),
    "lang.min_score": _frac(),
    "lang.per_language_thresholds": Rule(bool),
    "lang.min_docs_per_language": Rule(int, ge=1),
    "lang.thresholds": Rule(dict, null=True),
    **{f"repetition.{k}": _frac() for k in DEFAULTS["repetition"] if k.startswith("max_")},
    "repetition.ngram_exempt_langs": Rule(list, items=Rule(str)),
    "gopher.min_words": Rule(int, ge=0),
    "gopher.max_words": Rule(int, ge=1),
    "gopher.min_mean_word_len": Rule(float, ge=0),
    "gopher.max_mean_word_len": Rule(float, gt=0),
    "gopher.max_symbol_word_ratio": Rule(float, ge=0),
    "gopher.max_bullet_line_frac": _frac(),
    "gopher.max_ellipsis_line_frac": _frac(),
    "gopher.min_alpha_word_frac": _frac(),
    "gopher.min_stop_words": Rule(int, ge=0),
    "gopher.stop_word_langs": Rule(list, items=Rule(str)),
    "gopher.word_length_exempt_langs": Rule(list, items=Rule(str)),
    "c4.min_words_per_line": Rule(int, ge=0),
    "c4.drop_lorem_ipsum": Rule(bool),
    "c4.drop_curly_brace": Rule(bool),
    "c4.max_boilerplate_lines": Rule(int, ge=0, null=True),
    "c4.min_sentences": Rule(int, ge=0, null=True),
    "fineweb.min_terminal_punct_line_frac": _frac(),
    "fineweb.max_short_line_frac": _frac(),
    "fineweb.max_dup_line_char_frac": _frac(),
    "fineweb.max_newline_word_ratio": Rule(float, ge=0),
    "dirty_words.lists_dir": Rule(str, null=True),
    "dirty_words.fallback_langs": Rule(list, items=Rule(str)),
    "dirty_words.max_count": Rule(int, ge=0, null=True),
    "dirty_words.max_ratio": _frac(null=True),
    "token_kl.enabled": Rule(bool),
    "token_kl.reference": Rule(str, null=True),
    "token_kl.max_chars": Rule(int, ge=1),
    "token_kl.max_excess": Rule(float, null=True),
    "token_kl.min_tokens": Rule(int, ge=0),
    "url.lists_dir": Rule(str, null=True),
    "url.block_categories": Rule(list, items=Rule(str)),
    "url.soft_banned_threshold": Rule(int, ge=1),
    "pii.redact": Rule(bool),
    "pii.rule_sets": Rule(list, items=Rule(str)),
    "pii.types": Rule(list, items=Rule(str)),
    "pii.max_domain_pii_doc_share": _frac(),
    "pii.min_domain_docs": Rule(int, ge=1),
    "rule_sets_map": Rule(dict),
    "source_rule_sets_map": Rule(dict),
}
