"""Dirty-word counts against the LDNOOBW lists (the C4 "bad words" lists, 28 languages).

One compiled regex per language, built once per process. Matching is case-insensitive on word
boundaries; a boundary is any character that is not a letter, digit or combining mark, so Devanagari,
Arabic and accented Latin words are not cut in the middle. Terms written in a script without spaces
(Chinese, Japanese, Thai, ...) cannot have word boundaries, so they match as substrings: that is the
only sensible rule there, and it over-counts short Thai or Chinese terms that occur inside longer words
(a known limitation of list-based filtering, noted in docs/stages/filter.md); single-character terms
in those scripts are skipped (Chinese 性 "sex" is also the suffix "-ness": 重要性 "importance"
would count). Multi-word terms match
with any run of whitespace between their words.

Languages map to list files through `LANG_TO_LISTS` (fastText codes -> file names: `tl` -> `fil`,
`nb`/`nn` -> `no`, French uses both French lists); a language without a list uses
`fallback_langs` (English by default, as C4 did), or no list when that is empty.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

from curation.filters.text import has_no_space_script
from curation.paths import corpus_dir

LANG_TO_LISTS = {"tl": ["fil"], "fil": ["fil"], "nb": ["no"], "nn": ["no"], "no": ["no"],
                 "fr": ["fr", "fr-CA-u-sd-caqc"]}
_WORDCHAR = r"\w\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0dff"
_CACHE: dict[tuple[str, str], re.Pattern | None] = {}
_LOCK = threading.Lock()


def default_lists_dir() -> Path:
    return corpus_dir() / "blocklists" / "ldnoobw"


def available_languages(lists_dir: str | Path | None = None) -> list[str]:
    d = Path(lists_dir) if lists_dir else default_lists_dir()
    return sorted(p.name for p in d.iterdir() if p.is_file() and p.name not in ("LICENSE", "README.md")
                  and not p.name.startswith("."))


def load_terms(lang_file: str, lists_dir: str | Path | None = None) -> list[str]:
    d = Path(lists_dir) if lists_dir else default_lists_dir()
    p = d / lang_file
    if not p.is_file():
        return []
    terms = {t.strip().lower() for t in p.read_text(encoding="utf-8").splitlines()}
    return sorted(t for t in terms if t)


def _term_pattern(term: str) -> str:
    body = r"\s+".join(re.escape(part) for part in term.split())
    if has_no_space_script(term):
        return body
    return f"(?<![{_WORDCHAR}]){body}(?![{_WORDCHAR}])"


MIN_NO_SPACE_TERM_CHARS = 2


def compile_terms(terms: list[str]) -> re.Pattern | None:
    terms = [t for t in terms if not (has_no_space_script(t) and len(t) < MIN_NO_SPACE_TERM_CHARS)]
    if not terms:
        return None
    # longest first so a longer term wins over its prefix at the same position
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    return re.compile("|".join(_term_pattern(t) for t in ordered), re.IGNORECASE)


def list_files_for(lang: str | None, fallback_langs: list[str], lists_dir: str | Path | None = None
                   ) -> list[str]:
    avail = set(available_languages(lists_dir))
    base = (lang or "").lower().replace("_", "-")
    files = LANG_TO_LISTS.get(base) or LANG_TO_LISTS.get(base.split("-")[0]) or [base.split("-")[0]]
    files = [f for f in files if f in avail]
    if not files:
        files = [f for f in fallback_langs if f in avail]
    return files


def pattern_for(lang: str | None, fallback_langs: list[str], lists_dir: str | Path | None = None
                ) -> re.Pattern | None:
    key = (str(lang), ",".join(fallback_langs) + "|" + str(lists_dir))
    if key in _CACHE:
        return _CACHE[key]
    with _LOCK:
        if key not in _CACHE:
            terms: list[str] = []
            for f in list_files_for(lang, fallback_langs, lists_dir):
                terms += load_terms(f, lists_dir)
            _CACHE[key] = compile_terms(terms)
    return _CACHE[key]


def dirty_word_matches(text: str, lang: str | None, fallback_langs: list[str] = ("en",),
                       lists_dir: str | Path | None = None) -> list[str]:
    pat = pattern_for(lang, list(fallback_langs), lists_dir)
    if pat is None or not text:
        return []
    return [m.group(0) for m in pat.finditer(text)]


def dirty_word_signals(text: str, n_words: int, lang: str | None,
                       fallback_langs: list[str] = ("en",), lists_dir: str | Path | None = None
                       ) -> dict[str, float]:
    n = len(dirty_word_matches(text, lang, fallback_langs, lists_dir))
    return {"dirty_word_count": n, "dirty_word_ratio": (n / n_words) if n_words else float(n > 0)}
