"""The stream rule: which training stream (general, math, code, multilingual) a document feeds.

The rule lives in the config (`stream:` section of configs/score.yaml) and is applied in order:

1. `source_stream_map`: a document whose `source` matches a pattern (shell-style, case-insensitive,
   e.g. `"*thealgorithms*": code`) goes to that stream, whatever its text looks like.
2. Code first: when `code_ignores_language` is true and the domain model says `code` with at least
   `domain_min_score.code`, the stream is `code` (language ID is unreliable on source code).
3. Language: text whose `lang` is not in `english_languages` (and not `unknown`) goes to
   `non_english` (default `multilingual`; set it to `domain` to route non-English text by its
   domain like English text). `unknown` language goes to `unknown_language` (default `domain`:
   math or code by the domain model, and what the domain model calls general goes to
   `unknown_general`, default `multilingual`, since lid.176 mostly fails on rare languages).
4. Domain: `math` or `code` when the domain model's top label is that domain with a score of at
   least `domain_min_score[domain]`; otherwise `general`.
"""
from __future__ import annotations

import fnmatch

STREAMS = ("general", "math", "code", "multilingual")
ROUTE_BY_DOMAIN = "domain"

DEFAULT_RULE = {
    "source_stream_map": {"*thealgorithms*": "code", "*gsm8k*": "math", "*math*": "math"},
    "english_languages": ["en"],
    "non_english": "multilingual",
    "unknown_language": ROUTE_BY_DOMAIN,
    "unknown_general": "multilingual",
    "code_ignores_language": True,
    "domain_min_score": {"math": 0.5, "code": 0.5},
}


class StreamRule:
    """A compiled stream rule; `assign(...)` gives the stream of one document."""

    def __init__(self, rule: dict):
        if rule["unknown_general"] not in STREAMS:
            raise ValueError(f"stream.unknown_general must be one of {STREAMS}, "
                             f"got {rule['unknown_general']!r}")
        for k in ("non_english", "unknown_language"):
            if rule[k] not in STREAMS + (ROUTE_BY_DOMAIN,):
                raise ValueError(f"stream.{k} must be one of {STREAMS + (ROUTE_BY_DOMAIN,)}, "
                                 f"got {rule[k]!r}")
        overrides = rule.get("source_stream_map") or {}
        for pat, s in overrides.items():
            if s not in STREAMS:
                raise ValueError(f"stream.source_stream_map[{pat!r}] must be one of {STREAMS}, got {s!r}")
        for d in rule.get("domain_min_score") or {}:
            if d not in STREAMS:
                raise ValueError(f"stream.domain_min_score has unknown domain {d!r}")
        self.overrides = [(str(p).lower(), s) for p, s in overrides.items()]
        self.english = {str(x) for x in rule["english_languages"]}
        self.non_english = rule["non_english"]
        self.unknown = rule["unknown_language"]
        self.unknown_general = rule["unknown_general"]
        self.code_first = bool(rule["code_ignores_language"])
        self.min_score = {str(k): float(v) for k, v in (rule.get("domain_min_score") or {}).items()}
        self._memo: dict[str, str | None] = {}

    def source_stream(self, source: str | None) -> str | None:
        if not source:
            return None
        if source not in self._memo:
            s = source.lower()
            self._memo[source] = next((st for pat, st in self.overrides if fnmatch.fnmatchcase(s, pat)),
                                      None)
        return self._memo[source]

    def by_domain(self, domain: str | None, domain_score: float) -> str:
        if domain in ("math", "code") and domain_score >= self.min_score.get(domain, 0.5):
            return domain
        return "general"

    def assign(self, source: str | None, lang: str, domain: str | None, domain_score: float) -> str:
        s = self.source_stream(source)
        if s is not None:
            return s
        if self.code_first and domain == "code" and domain_score >= self.min_score.get("code", 0.5):
            return "code"
        if lang == "unknown":
            if self.unknown == ROUTE_BY_DOMAIN:
                s = self.by_domain(domain, domain_score)
                return self.unknown_general if s == "general" else s
            route = self.unknown
        elif lang not in self.english:
            route = self.non_english
        else:
            route = ROUTE_BY_DOMAIN
        return self.by_domain(domain, domain_score) if route == ROUTE_BY_DOMAIN else route
