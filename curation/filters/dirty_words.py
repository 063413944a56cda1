"""Dirty-word counts against the LDNOOBW lists (the C4 "bad words" lists, 28 languages).

One matcher per language, built once per process: word terms are looked up in a set over the
text's word 1..k-grams (one linear pass; a regex alternation of ~400 terms with look-arounds was 80 %
of the whole filter's time), the rest by one regex. Matching is case-insensitive on word boundaries; a boundary is any character that is not a letter, digit or combining mark, so Devanagari,
Arabic and accented Latin words are not cut in the middle. Terms written in a script without spaces
(Chinese, Japanese, Thai, ...) cannot have word boundaries, so they match as substrings: that is the
only sensible rule there, and it over-counts short Thai or Chinese terms that occur inside longer words
(a known limitation of list-based filtering, noted in docs/stages/filter.md); single-character terms
in those scripts are skipped (Chinese 性 "sex" is also the suffix "-ness": 重要性 "importance"
would count). Multi-word terms match
with any non-word characters between their words.

Languages map to list files through `LANG_TO_LISTS` (fastText codes -> file names: `tl` -> `fil`,
`nb`/`nn` -> `no`, French uses both French lists); a language without a list uses
`fallback_langs` (English by default, as C4 did), or no list when that is empty.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

from curation.filters.text import has_no_space_script
from core.paths import corpus_dir

LANG_TO_LISTS = {"tl": ["fil"], "fil": ["fil"], "nb": ["no"], "nn": ["no"], "no": ["no"],
                 "fr": ["fr", "fr-CA-u-sd-caqc"]}
_WORDCHAR = r"\w\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0dff"
_CACHE: dict[tuple[str, str], "TermMatcher | None"] = {}
_LOCK = threading.Lock()


def default_lists_dir() -> Path:
    return corpus_dir() / "blocklists" / "ldnoobw"


def available_languages(lists_dir: str | Path | None = None) -> list[str]:
    d = Path(lists_dir) if lists_dir else default_lists_dir()
    if not d.is_dir():
        from curation.filters.url_blocklist import ListError
        raise ListError(f"dirty-word lists folder {d} does not exist")
    return sorted({p.name.removesuffix(".gz") for p in d.iterdir()
                   if p.is_file() and p.name not in ("LICENSE", "README.md") and not p.name.startswith(".")})


def load_terms(lang_file: str, lists_dir: str | Path | None = None) -> list[str]:
    """The terms of one list (plain or gzipped). A list that exists but cannot be read or is empty
    raises ListError with its path; a missing one gives []."""
    from curation.filters.url_blocklist import list_file, read_list
    d = Path(lists_dir) if lists_dir else default_lists_dir()
    p = list_file(d, lang_file)
    if p is None:
        return []
    return sorted(set(read_list(p)))


def check_lists(lists_dir: str | Path | None, fallback_langs: list[str]) -> dict[str, int]:
    """Entries per dirty-word list; ListError when the folder is missing or has no list, when a
    fallback language's list is missing, or when any list is unreadable or empty."""
    from curation.filters.url_blocklist import ListError
    d = Path(lists_dir) if lists_dir else default_lists_dir()
    langs = available_languages(d)
    if not langs:
        raise ListError(f"dirty-word lists folder {d} holds no list")
    for f in fallback_langs:
        if f not in langs:
            raise ListError(f"dirty_words.fallback_langs: no list {d / f} (have {', '.join(langs)})")
    return {f"ldnoobw/{f}": len(load_terms(f, d)) for f in langs}


def _term_pattern(term: str) -> str:
    body = r"\s+".join(re.escape(part) for part in term.split())
    if has_no_space_script(term):
        return body
    return f"(?<![{_WORDCHAR}]){body}(?![{_WORDCHAR}])"


MIN_NO_SPACE_TERM_CHARS = 2
_TOKEN = re.compile(f"[{_WORDCHAR}]+")


class TermMatcher:
    """Word terms by set look-up over the text's word n-grams (one pass, O(words)); terms in
    scripts without spaces, or with punctuation inside (`b!tch`, `a$$`), by one regex."""

    def __init__(self, terms: list[str]):
        self.words: set[str] = set()
        self.starts: set[str] = set()   # first words of the word terms: the only places a match starts
        self.max_n = 1
        odd: list[str] = []
        for t in terms:
            if has_no_space_script(t):
                if len(t) >= MIN_NO_SPACE_TERM_CHARS:
                    odd.append(t)
                continue
            parts = t.split()
            if all(_TOKEN.fullmatch(p) for p in parts):
                self.words.add(" ".join(parts))
                self.starts.add(parts[0])
                self.max_n = max(self.max_n, len(parts))
            else:
                odd.append(t)
        ordered = sorted(set(odd), key=lambda t: (-len(t), t))
        self.regex = re.compile("|".join(_term_pattern(t) for t in ordered), re.IGNORECASE) \
            if ordered else None

    def findall(self, text: str) -> list[str]:
        out: list[tuple[int, str]] = []
        if self.words:
            toks = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
            low = text.lower()
            words = [low[a:b] for a, b in toks]
            # a match can only start at a term's first word: test the n-grams there only (left to
            # right, longest first, a match consumes its words, as a scan over every position would)
            starts, terms, max_n, n_words = self.starts, self.words, self.max_n, len(words)
            free = 0
            for i in [j for j, w in enumerate(words) if w in starts]:
                if i < free:
                    continue
                for n in range(min(max_n, n_words - i), 0, -1):
                    if (words[i] if n == 1 else " ".join(words[i:i + n])) in terms:
                        out.append((toks[i][0], text[toks[i][0]:toks[i + n - 1][1]]))
                        free = i + n
                        break
        if self.regex is not None:
            out.extend((m.start(), m.group(0)) for m in self.regex.finditer(text))
        return [m for _, m in sorted(out)]


def compile_terms(terms: list[str]) -> TermMatcher | None:
    terms = [t for t in terms if not (has_no_space_script(t) and len(t) < MIN_NO_SPACE_TERM_CHARS)]
    if not terms:
        return None
    return TermMatcher(terms)


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
                ) -> "TermMatcher | None":
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
    return pat.findall(text)


def dirty_word_signals(text: str, n_words: int, lang: str | None,
                       fallback_langs: list[str] = ("en",), lists_dir: str | Path | None = None
                       ) -> dict[str, float]:
    n = len(dirty_word_matches(text, lang, fallback_langs, lists_dir))
    return {"dirty_word_count": n, "dirty_word_ratio": (n / n_words) if n_words else float(n > 0)}
