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


# ---------------------------------------------------------------- reference-style tokens
# The Gopher, FineWeb and C4 implementations that published thresholds were tuned with count words
# with a tokenizer that keeps punctuation marks as tokens of their own (datatrove splits English with
# spaCy's rule-based tokenizer: `Hello, world!` -> Hello , world !; `don't` -> do n't;
# `well-known` -> well - known). Their ratios (symbols per word, alphabetic words, newlines per word,
# repeated n-gram characters) are defined over those tokens, so `tokens_of` approximates them with
# rules of our own: whitespace chunks; URLs and e-mail addresses whole; leading and trailing
# punctuation peeled off one mark at a time (an ellipsis `...` stays one token); English clitics
# ('s, n't, 're, 've, 'll, 'd, 'm) split off; hyphens, slashes and dashes between word characters
# split (and digit-hyphen-digit: dates). Abbreviations keep their final period (`U.S.`, `e.g.`,
# `Dr.`); `@handles`, `/paths` and words cut at a hyphen (`Hoch-`) stay whole. In scripts without spaces
# every character is a token (as in `words_of`). docs/BENCHMARKS.md measures the agreement.
_URLISH = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)\S+$|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$", re.I)
_CLITIC = re.compile(r"(?i)(n't|n’t|'s|’s|'re|’re|'ve|’ve|'ll|’ll|'d|’d|'m|’m)$")
_INFIX = re.compile(r"(?<=[^\W\d_])(--|[/,])(?=[^\W\d_])|(?<=[^\W_])-(?=[^\W\d_])|(?<=\d)-(?=\d)"
                    r"|(?<=[^\W\d_])[–—](?=\w)|(?<=\d)—(?=\w)"
                    r"|(?<=[a-z]{2})(\.)(?=[A-Z])|(\.\.\.|…)")
_KEEP_PREFIX = frozenset("@")        # @handles stay whole
# contractions written without the apostrophe, split as the reference tokenizer splits them
_NO_APOSTROPHE = {"im": 1, "cannot": 3, "dont": 2, "cant": 2, "wont": 2, "isnt": 2, "doesnt": 4,
                  "didnt": 3, "ive": 1, "youre": 3, "thats": 4}
_ABBREV = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "etc", "inc", "jr", "sr", "co", "ltd",
                     "prof", "no", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
                     "oct", "nov", "dec", "mt", "ft", "corp", "gov", "gen", "rev", "sen", "rep"})


def _is_punct_char(c: str) -> bool:
    return not c.isalnum() and not c.isspace() and not unicodedata.category(c).startswith("M")


def _chunk_tokens(chunk: str, out: list[str]) -> None:
    if _URLISH.match(chunk) and chunk[-1] not in ".,;:!?)]}\"'":
        out.append(chunk)
        return
    head: list[str] = []
    i, j = 0, len(chunk)
    while i < j and _is_punct_char(chunk[i]) and chunk[i] not in _KEEP_PREFIX \
            and not (chunk[i] == "/" and i + 1 < j and chunk[i + 1].isalpha()):   # /usr, /www
        if chunk.startswith("...", i):
            head.append("..."); i += 3
        else:
            head.append(chunk[i]); i += 1
    tail: list[str] = []
    while j > i:
        c = chunk[j - 1]
        if chunk.endswith("...", i, j) and j - 3 >= i:
            tail.append("..."); j -= 3
            continue
        if c == "." and j - 1 > i:
            body = chunk[i:j - 1]
            if "." in body or body.lower() in _ABBREV or (len(body) == 1 and body.isalpha()):
                break          # an abbreviation keeps its period
        if (c in "-/" and j - 1 > i and chunk[j - 2].isalpha()) or \
                (c == "+" and j - 1 > i and (chunk[j - 2].isalnum() or chunk[j - 2] == "+")):
            break              # a word cut at a hyphen (`Hoch-` in `Hoch- und Tiefbau`) stays whole
        if _is_punct_char(c):
            tail.append(c); j -= 1
            continue
        m = _CLITIC.search(chunk, i, j)
        if m and m.start() > i:
            tail.append(m.group(0)); j = m.start()
            continue
        break
    out.extend(head)
    body = chunk[i:j]
    if body:
        if _URLISH.match(body):
            out.append(body)
        elif body.lower() in _NO_APOSTROPHE:
            k = _NO_APOSTROPHE[body.lower()]
            out.extend((body[:k], body[k:]))
        else:
            pos = 0
            for m in _INFIX.finditer(body):
                if m.start() > pos:
                    out.append(body[pos:m.start()])
                out.append(m.group(0))
                pos = m.end()
            if pos < len(body):
                out.append(body[pos:])
    out.extend(reversed(tail))


def tokens_of(text: str) -> list[str]:
    """Reference-style word tokens: punctuation marks are tokens (see the comment above)."""
    out: list[str] = []
    for chunk in text.split():
        if _NO_SPACE_CHAR.search(chunk):
            out.extend(p for p in _SPLIT_NO_SPACE.split(chunk) if p and not p.isspace())
            continue
        _chunk_tokens(chunk, out)
    return out


def is_symbol_token(tok: str) -> bool:
    """A token made only of punctuation / symbol characters (not counted as a word by Gopher)."""
    return all(_is_punct_char(c) for c in tok)
