"""Unsafe URLs and domains: UT1 lists and FineWeb's URL word rules.

Signals:
* url_block_hits (array<string>): every list the URL hits, e.g. `ut1:gambling`, `ut1:malware`,
  `fineweb:banned_word`, `fineweb:banned_subword`, `ut1:adult_expression`;
* url_soft_banned_count: distinct FineWeb soft-banned words among the URL's words (FineWeb drops a
  URL with 2 or more);
* url_blocked: at least one hit among the categories configured at annotation time.

UT1 `domains` files match the URL's host and any parent domain (`a.b.casino.com` hits
`casino.com`); `urls` files match as a prefix of host+path (host without `www.`); `expressions`
files are regular expressions over host+path+query (the adult one is very broad, it hits `/teen/` and
`/gay/`, so it is off by default). FineWeb's rules split the lower-cased URL into alphanumeric words:
a banned word drops the URL, banned subwords match anywhere in the URL with non-alphanumerics
removed. Lines starting with `#` in the word lists are comments.

Lists fail loudly: every list a configured category needs (`url.block_categories`) must exist, be
readable and hold at least one entry, or the job stops at start with the path (`ListError`). UT1
category folders hold `domains`, `urls`, `expressions` and/or `very_restrictive_expression`, plain or
gzipped (`domains.gz`: the full UT1 adult list is shipped gzipped); a category needs at least one of
them (the sample corpus' `ut1/adult` has `urls` and an expression file, no `domains`). Invalid
regular expressions are counted per file (`invalid_patterns`) and reported, never silently dropped;
`entries` holds how many entries each file contributed (the run's stats show both).
"""
from __future__ import annotations

import gzip
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from core.paths import corpus_dir

UT1_CATEGORIES = ("adult", "dating", "gambling", "malware", "mixed_adult", "phishing")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def default_lists_dir() -> Path:
    return corpus_dir() / "blocklists"


class ListError(ValueError):
    """A configured list is missing, unreadable or empty (the message names the path)."""


def list_file(base: Path, name: str) -> Path | None:
    """`base/name`, else `base/name.gz`, else None."""
    for p in (base / name, base / f"{name}.gz"):
        if p.is_file():
            return p
    return None


def read_list(p: Path, lower: bool = True) -> list[str]:
    """Entries of a list file (plain or gzip; blank lines and `#` comments skipped). A file that
    cannot be read or holds no entry raises ListError with its path."""
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8", errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ListError(f"list file {p} cannot be read: {type(e).__name__}: {e}") from e
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            out.append(ln.lower() if lower else ln)
    if not out:
        raise ListError(f"list file {p} is empty (no entries)")
    return out


def _read_lines(p: Path | None) -> list[str]:
    return read_list(p) if p is not None else []


UT1_KINDS = ("domains", "urls", "expressions", "very_restrictive_expression")
FINEWEB_FILES = {"fineweb:banned_word": "banned_words.txt", "fineweb:banned_subword": "banned_subwords.txt"}


class UrlBlocklist:
    def __init__(self, lists_dir: str | Path | None = None, required: tuple[str, ...] = (),
                 need_soft: bool = False):
        """Load every list under `lists_dir`. `required` are the configured categories
        (`ut1:gambling`, `ut1:adult_expression`, `fineweb:banned_word`, ...): each must have its
        lists (ListError otherwise); `need_soft`: the soft-banned word list must exist."""
        d = Path(lists_dir) if lists_dir else default_lists_dir()
        if not d.is_dir():
            raise ListError(f"URL block lists folder {d} does not exist")
        self.dir = d
        self.entries: dict[str, int] = {}
        self.invalid_patterns: dict[str, int] = {}
        self.invalid_examples: dict[str, list[str]] = {}
        self.domains: dict[str, str] = {}
        self.url_prefixes: dict[str, list[tuple[str, str]]] = {}
        self.expressions: list[tuple[str, re.Pattern]] = []
        req = set(required)
        for cat in UT1_CATEGORIES:
            base = d / "ut1" / cat
            files = {k: list_file(base, k) for k in UT1_KINDS}
            if f"ut1:{cat}" in req and not any(files.values()):
                raise ListError(f"block category ut1:{cat}: no list in {base} (expected one of "
                                f"{', '.join(UT1_KINDS)}, plain or .gz)")
            if f"ut1:{cat}_expression" in req and not (files["expressions"] or files["very_restrictive_expression"]):
                raise ListError(f"block category ut1:{cat}_expression: no expressions file in {base}")
            for dom in self._load(files["domains"]):
                self.domains.setdefault(_strip_www(dom), cat)
            for u in self._load(files["urls"]):
                host, _, path = u.partition("/")
                self.url_prefixes.setdefault(_strip_www(host), []).append(("/" + path, cat))
            for name in ("expressions", "very_restrictive_expression"):
                p = files[name]
                for expr in self._load(p):
                    try:
                        self.expressions.append((f"ut1:{cat}_expression", re.compile(expr)))
                    except re.error:
                        key = self._key(p)
                        self.invalid_patterns[key] = self.invalid_patterns.get(key, 0) + 1
                        self.invalid_examples.setdefault(key, []).append(expr[:80])
        dt = d / "datatrove"
        for cat, fname in FINEWEB_FILES.items():
            if cat in req and not (dt / fname).is_file():
                raise ListError(f"block category {cat}: list file {dt / fname} does not exist")
        if need_soft and not (dt / "soft_banned_words.txt").is_file():
            raise ListError(f"url.soft_banned_threshold is set: list file {dt / 'soft_banned_words.txt'} "
                            "does not exist")
        self.banned_words = set(self._load(list_file(dt, "banned_words.txt")))
        self.soft_banned_words = set(self._load(list_file(dt, "soft_banned_words.txt")))
        subs = sorted({_NON_ALNUM.sub("", s) for s in self._load(list_file(dt, "banned_subwords.txt"))} - {""})
        self.banned_subwords = re.compile("|".join(map(re.escape, subs))) if subs else None
        if not (self.domains or self.url_prefixes or self.banned_words):
            raise ListError(f"no URL block lists found under {d} (expected ut1/ and datatrove/)")

    def _key(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.dir))
        except ValueError:
            return str(p)

    def _load(self, p: Path | None) -> list[str]:
        if p is None:
            return []
        out = read_list(p)
        self.entries[self._key(p)] = len(out)
        return out

    def check(self, url: str | None) -> tuple[list[str], int]:
        """(sorted list of hit categories, soft-banned word count) for one URL."""
        if not url:
            return [], 0
        try:
            parts = urlsplit(url.strip().lower())
        except ValueError:
            return [], 0
        host = _strip_www((parts.hostname or "").rstrip("."))
        path = parts.path or "/"
        hits: set[str] = set()
        labels = host.split(".")
        for i in range(len(labels) - 1):
            cat = self.domains.get(".".join(labels[i:]))
            if cat:
                hits.add(f"ut1:{cat}")
        for i in range(len(labels) - 1):
            for prefix, cat in self.url_prefixes.get(".".join(labels[i:]), ()):
                if path.startswith(prefix) or (prefix.endswith("/") and path == prefix[:-1]):
                    hits.add(f"ut1:{cat}")
        target = host + path + (("?" + parts.query) if parts.query else "")
        for name, rx in self.expressions:
            if rx.search(target):
                hits.add(name)
        words = set(w for w in _NON_ALNUM.split(url.lower()) if w)
        if words & self.banned_words:
            hits.add("fineweb:banned_word")
        if self.banned_subwords is not None and self.banned_subwords.search(_NON_ALNUM.sub("", url.lower())):
            hits.add("fineweb:banned_subword")
        soft = len(words & self.soft_banned_words)
        return sorted(hits), soft


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


_INSTANCES: dict[str, UrlBlocklist] = {}
_LOCK = threading.Lock()


def get_blocklist(lists_dir: str | Path | None = None, required: tuple[str, ...] = (),
                  need_soft: bool = False) -> UrlBlocklist:
    key = f"{lists_dir}|{','.join(sorted(required))}|{need_soft}"
    if key not in _INSTANCES:
        with _LOCK:
            if key not in _INSTANCES:
                _INSTANCES[key] = UrlBlocklist(lists_dir, tuple(required), need_soft)
    return _INSTANCES[key]


def url_signals(url: str | None, block_categories: list[str], soft_threshold: int,
                lists_dir: str | Path | None = None) -> dict:
    bl = get_blocklist(lists_dir, tuple(block_categories), soft_threshold is not None)
    hits, soft = bl.check(url)
    blocked = bool(set(hits) & set(block_categories)) or (soft_threshold is not None and soft >= soft_threshold)
    return {"url_block_hits": hits, "url_soft_banned_count": soft, "url_blocked": blocked}
