"""Answer checkers for prompts with checkable answers: ``check(kind, answer, response) -> 0.0 | 1.0``.

- ``exact``:  the response, whitespace-normalised, equals the answer.
- ``sort`` / ``add``: the synthetic tasks (trainer/synthetic.py): exact, whitespace-normalised.
- ``number``: GSM8K-style: the last number in the response (commas removed, a trailing ``.0``
  ignored) equals the answer's number.
- ``math``: MATH-style: the last ``\\boxed{...}`` of the response (else its last line) equals the
  answer after a light normalisation (spaces, ``\\left``/``\\right``, ``\\dfrac``->``\\frac``,
  a trailing period, ``^\\circ``, ``\\$``). Not a symbolic-equivalence checker: ``0.5`` and
  ``\\frac{1}{2}`` differ.
"""
from __future__ import annotations

import re

from evalsets.items import last_boxed

_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _ws(s: str) -> str:
    return " ".join(s.split())


def last_number(text: str) -> str | None:
    found = _NUM.findall(text)
    if not found:
        return None
    n = found[-1].replace(",", "")
    if "." in n:
        n = n.rstrip("0").rstrip(".")
    return n


def normalize_math(s: str) -> str:
    s = s.strip()
    for a, b in (("\\left", ""), ("\\right", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"),
                 ("^\\circ", ""), ("^{\\circ}", ""), ("\\$", ""), ("\\!", ""), ("\\,", "")):
        s = s.replace(a, b)
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


def check(kind: str, answer: str, response: str) -> float:
    if kind in ("exact", "sort", "add"):
        return float(_ws(response) == _ws(answer))
    if kind == "number":
        got, want = last_number(response), last_number(answer)
        return float(got is not None and got == want)
    if kind == "math":
        got = last_boxed(response)
        if got is None:
            lines = [x for x in response.strip().splitlines() if x.strip()]
            got = lines[-1] if lines else ""
        return float(normalize_math(got) == normalize_math(answer))
    raise ValueError(f"unknown checker {kind!r}: exact, sort, add, number, math")
