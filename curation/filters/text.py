"""How a document is cut into lines, paragraphs and words, shared by every signal.

* lines: split on newlines, stripped, empty lines dropped;
* paragraphs: blocks separated by one or more blank lines;
* words: whitespace-separated tokens with leading/trailing punctuation removed; tokens that were
  only punctuation are dropped. In scripts written without spaces (CJK, Thai, Lao, Khmer, Myanmar)
  each such character counts as a word, so word counts stay meaningful there.
"""
from __future__ import annotations

import re
import string
import unicodedata

_PUNCT = "".join(sorted(set(string.punctuation) | set("“”‘’«»„‚‹›…–—·•、。，！？：；（）《》「」『』【】")))
# Characters of scripts written without spaces between words.
NO_SPACE_RANGES = (
    "\u0e00-\u0e7f"      # Thai
    "\u0e80-\u0eff"      # Lao
    "\u1000-\u109f"      # Myanmar
    "\u1780-\u17ff"      # Khmer
    "\u3040-\u30ff"      # Hiragana, Katakana
    "\u3400-\u4dbf"      # CJK extension A
    "\u4e00-\u9fff"      # CJK unified ideographs
    "\uf900-\ufaff"      # CJK compatibility ideographs
)
_NO_SPACE_CHAR = re.compile(f"[{NO_SPACE_RANGES}]")
_SPLIT_NO_SPACE = re.compile(f"([{NO_SPACE_RANGES}])")
_PARA_SPLIT = re.compile(r"\n\s*\n")


def lines_of(text: str) -> list[str]:
    return [ln for ln in (x.strip() for x in text.split("\n")) if ln]


def paragraphs_of(text: str) -> list[str]:
    return [p for p in (x.strip() for x in _PARA_SPLIT.split(text)) if p]


def words_of(text: str) -> list[str]:
    out: list[str] = []
    for tok in text.split():
        w = tok.strip(_PUNCT)
        if not w:
            continue
        if _NO_SPACE_CHAR.search(w):
            out.extend(p for p in _SPLIT_NO_SPACE.split(w) if p and p.strip(_PUNCT))
        else:
            out.append(w)
    return out


def has_no_space_script(s: str) -> bool:
    return _NO_SPACE_CHAR.search(s) is not None


def is_punct_token(tok: str) -> bool:
    return all(unicodedata.category(c).startswith("P") or c in _PUNCT for c in tok)
