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
"""
from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from core.paths import corpus_dir

UT1_CATEGORIES = ("adult", "dating", "gambling", "malware", "mixed_adult", "phishing")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def default_lists_dir() -> Path:
    return corpus_dir() / "blocklists"


def _read_lines(p: Path) -> list[str]:
    if not p.is_file():
        return []
    out = []
    for ln in p.read_text(encoding="utf-8", errors="replace").splitlines():
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            out.append(ln.lower())
    return out


class UrlBlocklist:
    def __init__(self, lists_dir: str | Path | None = None):
        d = Path(lists_dir) if lists_dir else default_lists_dir()
        self.domains: dict[str, str] = {}
        self.url_prefixes: dict[str, list[tuple[str, str]]] = {}
        self.expressions: list[tuple[str, re.Pattern]] = []
        for cat in UT1_CATEGORIES:
            base = d / "ut1" / cat
            for dom in _read_lines(base / "domains"):
                self.domains.setdefault(_strip_www(dom), cat)
            for u in _read_lines(base / "urls"):
                host, _, path = u.partition("/")
                self.url_prefixes.setdefault(_strip_www(host), []).append(("/" + path, cat))
            for name in ("expressions", "very_restrictive_expression"):
                for expr in _read_lines(base / name):
                    try:
                        self.expressions.append((f"ut1:{cat}_expression", re.compile(expr)))
                    except re.error:
                        continue
        dt = d / "datatrove"
        self.banned_words = set(_read_lines(dt / "banned_words.txt"))
        self.soft_banned_words = set(_read_lines(dt / "soft_banned_words.txt"))
        subs = sorted({_NON_ALNUM.sub("", s) for s in _read_lines(dt / "banned_subwords.txt")} - {""})
        self.banned_subwords = re.compile("|".join(map(re.escape, subs))) if subs else None
        if not (self.domains or self.url_prefixes or self.banned_words):
            raise FileNotFoundError(f"no URL block lists found under {d} (expected ut1/ and datatrove/)")

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


def get_blocklist(lists_dir: str | Path | None = None) -> UrlBlocklist:
    key = str(lists_dir)
    if key not in _INSTANCES:
        with _LOCK:
            if key not in _INSTANCES:
                _INSTANCES[key] = UrlBlocklist(lists_dir)
    return _INSTANCES[key]


def url_signals(url: str | None, block_categories: list[str], soft_threshold: int,
                lists_dir: str | Path | None = None) -> dict:
    hits, soft = get_blocklist(lists_dir).check(url)
    blocked = bool(set(hits) & set(block_categories)) or soft >= soft_threshold
    return {"url_block_hits": hits, "url_soft_banned_count": soft, "url_blocked": blocked}
