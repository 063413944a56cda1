"""Benchmark items planted in real documents, re-formatted but not paraphrased, for the tests and
`benchmarks/decontaminate_recall.py` (there is no labelled contamination corpus). Never used by
the stage itself.

Re-formattings (each keeps every word, as a page quoting a benchmark would):
* `case`: upper case;  * `whitespace`: runs of spaces, tabs and blank lines between words;
* `punctuation`: punctuation around words removed, apostrophes dropped or straightened, and
  commas/full stops/dashes/quotes sprinkled between words (symbols inside a word such as
  `x^2+x-6` are kept: deleting them would merge words, which the normalisation cannot undo);
* `lines`: the item split across lines every few words (a forum post, a PDF copy);
* `markup`: words in markdown emphasis (`**bold**`, `_it_`, `` `code` ``) and list bullets
  (extraction removes HTML tags, so tags are not planted);
* `plain`: as is.
`plant` puts the re-formatted item at a paragraph boundary inside a host document (web text).
"""
from __future__ import annotations

import re

import numpy as np

STYLES = ("plain", "case", "whitespace", "punctuation", "lines", "markup")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


def reformat(text: str, style: str, rng: np.random.Generator) -> str:
    words = text.split()
    if style == "plain":
        return text
    if style == "case":
        return text.upper()
    if style == "whitespace":
        seps = [" ", "  ", "\t", "\n\n", " \n ", "   "]
        return "".join(w + seps[int(rng.integers(len(seps)))] for w in words).strip()
    if style == "punctuation":
        marks = ["", "", "", ",", ".", " -", ";", "'", "\"", " ("]
        out = []
        for w in words:
            w = _EDGE.sub("", w)
            w = w.replace("’", "'" if rng.random() < 0.5 else "")
            if rng.random() < 0.5:
                w = w.replace("'", "")
            out.append(w + marks[int(rng.integers(len(marks)))])
        return " ".join(out)
    if style == "lines":
        out, line = [], []
        for w in words:
            line.append(w)
            if len(line) >= int(rng.integers(3, 8)):
                out.append(" ".join(line))
                line = []
        return "\n".join(out + ([" ".join(line)] if line else []))
    if style == "markup":
        deco = ["`{}`", "**{}**", "{}", "{}", "_{}_", "\n* {}", "\n- {}"]
        return " ".join(deco[int(rng.integers(len(deco)))].format(w) for w in words)
    raise ValueError(f"unknown style {style!r}; known: {STYLES}")


def plant(host: str, item_text: str, rng: np.random.Generator) -> tuple[str, int, int]:
    """`host` with `item_text` inserted at a paragraph boundary; returns (text, start, end) of
    the inserted item in the new text."""
    paras = host.split("\n")
    k = int(rng.integers(0, len(paras) + 1))
    before = "\n".join(paras[:k])
    before = before + "\n" if before else ""
    text = before + item_text + "\n" + "\n".join(paras[k:])
    return text, len(before), len(before) + len(item_text)
