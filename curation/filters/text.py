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

from core.text import NO_SPACE_CLASS

_PUNCT = "".join(sorted(set(string.punctuation) | set("“”‘’«»„‚‹›…–—·•、。，！？：；（）《》「」『』【】")))
# Characters of scripts written without spaces between words (core/text.py: the same set for the
# MinHash shingles and the decontamination n-grams).
NO_SPACE_RANGES = NO_SPACE_CLASS
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
# with a tokenizer that keeps punctuation marks as tokens of their own: datatrove's
# `split_into_words` (src/datatrove/utils/text.py, word_tokenizers.py) runs spaCy's rule-based
# English tokenizer (`spacy.blank("en")`) on every text. Its ratios (alphabetic words, symbols per
# word, newlines per word, repeated n-gram characters) are defined over those tokens, so `tokens_of`
# follows the same procedure, with rules written here from that tokenizer's documented design
# (spaCy "Tokenization" docs: prefixes, suffixes, infixes, special cases) and checked against it by
# benchmarks/filter_parity.py:
#  1. whitespace chunks; a URL or e-mail address is one token (a final mark split off);
#  2. from each chunk, repeatedly: stop if what is left is a special case; split ONE prefix mark;
#     stop if the rest is a special case; split ONE suffix (the longest that matches);
#  3. keep what is left whole if it is a host name without a scheme (`feiler-artinger.at`,
#     `docker-compose.yml`, `kath.net/as`: labels, a lower-case top-level label, a path), else split
#     it at its infixes;
#  4. adjacent pieces that form a special case are joined again (`):`, `a.`).
# Prefixes: quotes, brackets and the other punctuation below, currency and other symbols
# (Unicode Sc / So), `US$ C$ A$`, `''`, `§ % = — –`, `+` before a non-digit, runs of dots. NOT prefixes: `.`, `-`,
# `/`, `@`, `→` and other math symbols (`.x`, `-verteidiger`, `/usr`, `@handle`, `→Kommentaren` stay
# whole). Suffixes: the same marks (a currency sign only after a digit: `R$` stays whole), `''`,
# `'s`, units and currency after a digit (`20.32g` -> `20.32 g`),
# and `.` after a lower-case or caseless (Arabic, ...) letter, a digit, a mark or two capitals
# (`30.11.` -> `30.11 .`, `u.a.` -> `u.a .`, `AB.` -> `AB .`, but `WissaT.` and `A.` stay whole). Infixes: dots and symbols
# (Unicode So), `- – — -- ~` between a letter or digit and a letter, `: < > = /` likewise, `,`
# between letters, `+ - * ^` between digits, `.` between a lower-case and an upper-case letter.
# Special cases: a few abbreviations (`Mr.`, `e.g.`, `U.S.`, months, US states: `Fla.`, `Tenn.`, ...),
# single letters with a period, emoticons (`8)`, `(=`, `):`), `''`, and an hour with am/pm split in
# two (`9am` -> `9 am`, 1..12 only). Infix symbols are Unicode So only (`x$y` stays whole). English clitics ('s, n't, 're, 've, 'll, 'd, 'm) are split off the end as the
# reference's exceptions split them, also when written without the apostrophe (`dont`). In scripts
# without spaces every character is a token (as in `words_of`). docs/BENCHMARKS.md measures the
# agreement with datatrove, and names the cases that still differ.
_URLISH = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)\S+$|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$", re.I)
_CLITIC = re.compile(r"(?i)(n't|n’t|'re|’re|'ve|’ve|'ll|’ll|'d|’d|'m|’m)$")
# contractions written without the apostrophe, split as the reference tokenizer splits them
_NO_APOSTROPHE = {"im": 1, "cannot": 3, "dont": 2, "cant": 2, "wont": 2, "isnt": 2, "doesnt": 4,
                  "didnt": 3, "ive": 1, "youre": 3, "thats": 4}
_PUNCT_MARKS = frozenset("…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪")
_QUOTES = frozenset("'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉⟦⟧")
_PREFIX_EXTRA = frozenset("§%=—–")
_SUFFIX_EXTRA = frozenset("—–")
_PERIOD_AFTER = frozenset("%²-+")
# unit and currency symbols split off a number (a number's unit is a token of its own)
_UNITS = sorted({"km", "km²", "km³", "m", "m²", "m³", "dm", "dm²", "dm³", "cm", "cm²", "cm³", "mm",
                 "mm²", "mm³", "ha", "µm", "nm", "yd", "in", "ft", "kg", "g", "mg", "µg", "t", "lb",
                 "oz", "m/s", "km/h", "kmh", "mph", "hPa", "Pa", "mbar", "mb", "MB", "kb", "KB",
                 "gb", "GB", "tb", "TB", "T", "G", "M", "K", "%"}, key=len, reverse=True)
_SPECIAL = frozenset(
    {"Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Inc.", "Jr.", "Co.", "Ltd.", "Prof.", "Mt.", "Corp.",
     "Gov.", "Gen.", "Rev.", "Sen.", "Rep.", "vs.", "e.g.", "i.e.", "E.g.", "I.e.", "a.m.", "p.m.",
     "U.S.", "U.K.", "U.S.A.", "Ph.D.", "and/or", "Jan.", "Feb.", "Mar.", "Apr.", "Jun.", "Jul.",
     "Aug.", "Sep.", "Sept.", "Oct.", "Nov.", "Dec.", ":)", ":(", "):", "(:", ";)", ";(", ":P", ":p", ":D", ":/",
     ":-)", ":-(", ";-)", "<3", "^_^", "o.O", "O.o", "8)", "(=", "=)", ":-D", "''",
     # US state and other abbreviations the reference keeps with their period
     "Ala.", "Ariz.", "Ark.", "Calif.", "Colo.", "Conn.", "Del.", "D.C.", "Fla.", "Ga.", "Ill.", "Ind.",
     "Kan.", "Kans.", "Ky.", "La.", "Md.", "Mass.", "Mich.", "Minn.", "Miss.", "Mo.", "Mont.", "Neb.",
     "Nebr.", "Nev.", "N.H.", "N.J.", "N.M.", "N.Y.", "N.C.", "N.D.", "Okla.", "Ore.", "Pa.", "R.I.",
     "S.C.", "S.D.", "Tenn.", "Va.", "Wash.", "Wis.", "Messrs.", "Bros.", "Adm."}
    | {c + "." for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"})
_HYPHENS = ("---", "——", "--", "-", "–", "—", "~")
# special cases that are split into fixed pieces: a clock hour and am/pm (`9am` -> `9 am`)
_SPLIT_SPECIAL = {f"{h}{x}": (str(h), x) for h in range(1, 13) for x in ("am", "pm", "a.m.", "p.m.")}
# currency prefixes of more than one character (a single currency sign is a prefix anyway)
_CURRENCY_PREFIX = ("US$", "C$", "A$")
# a host name without a scheme (`feiler-artinger.at`, `docker-compose.yml`, `kath.net/as`): labels of
# letters, digits, `_` and `-`, a top-level label of 2+ lower-case letters (`Haarfarbe.❤️` is no
# host: a symbol is no letter), an optional port and path;
# tried on what is left after the affixes, before the infix split
_HOST_CH = "A-Za-z0-9\u00a1-\uffff"
_HOST = re.compile(rf"(?:(?:[{_HOST_CH}][{_HOST_CH}_-]{{0,62}})?[{_HOST_CH}]\.)+[^\W\d_A-Z]{{2,63}}"
                   r"(?::\d{2,5})?(?:[/?#]\S*)?")


def _is_punct_char(c: str) -> bool:
    return not c.isalnum() and not c.isspace() and not unicodedata.category(c).startswith("M")


def _is_symbol(c: str) -> bool:
    return unicodedata.category(c) in ("So", "Sc")


def _prefix_len(s: str) -> int:
    c = s[0]
    if c == "'" and s.startswith("''"):
        return 2
    if c in "UCA" and s.startswith(_CURRENCY_PREFIX):
        return 3 if c == "U" else 2
    if c == "." or c == "…":
        n = len(s) - len(s.lstrip("."))
        return 1 if c == "…" else (n if n >= 2 else 0)
    if c in _PUNCT_MARKS or c in _QUOTES or c in _PREFIX_EXTRA or _is_symbol(c):
        return 1
    if c == "+" and not (len(s) > 1 and s[1].isdigit()):
        return 1
    return 0


def _suffix_len(s: str) -> int:
    """Length of the longest suffix of `s` the reference splits off (0: none)."""
    if len(s) < 2:
        return 0
    c = s[-1]
    if c == ".":
        n = len(s) - len(s.rstrip("."))
        if n >= 2:
            return n if n < len(s) else 0
        p = s[-2]
        if p.isdigit() or (p.isalpha() and not p.isupper()) or p in _PERIOD_AFTER or p in _PUNCT_MARKS or p in _QUOTES \
                or (p.isupper() and len(s) > 2 and s[-3].isupper()) or (p in "FfCcKk" and s[-3:-2] == "°"):
            return 1
        return 0
    if c == "'" and s.endswith("''") and len(s) > 2:
        return 2
    for cl in ("'s", "'S", "’s", "’S"):
        if s.endswith(cl) and len(s) > 2:
            return 2
    m = _CLITIC.search(s)
    if m and m.start() > 0:
        return len(m.group(0))
    if c == "…" or c in _PUNCT_MARKS or c in _QUOTES or c in _SUFFIX_EXTRA:
        return 1
    cat = unicodedata.category(c)
    if cat == "So":
        return 1
    if cat == "Sc" or c == "+":           # a currency sign or `+` is a suffix only after a digit
        if s[-2].isdigit():
            return 1
        if c == "$" and s[-2] in "UCA":   # `5US$`
            for cur in _CURRENCY_PREFIX:
                if s.endswith(cur) and len(s) > len(cur) and s[-len(cur) - 1].isdigit():
                    return len(cur)
        return 0
    for u in _UNITS:                      # a unit after a number: `20.32g`, `500M`, `5%`
        if s.endswith(u) and len(s) > len(u) and s[-len(u) - 1].isdigit():
            return len(u)
    return 0


def _is_letter(c: str) -> bool:
    return c.isalpha()


def _infix_split(body: str, out: list[str]) -> None:
    pieces, start, i, n = [], 0, 0, len(body)
    while i < n:
        c = body[i]
        prev = body[i - 1] if i > 0 else ""
        nxt = body[i + 1] if i + 1 < n else ""
        k = 0
        if c == "." and body.startswith("..", i):
            k = len(body[i:]) - len(body[i:].lstrip("."))
        elif c == "…" or unicodedata.category(c) == "So":
            k = 1
        elif i > 0 and c in "+-*^" and prev.isdigit() and (nxt.isdigit() or nxt == "-"):
            k = 1
        elif i > 0 and c == "." and prev.islower() and nxt.isupper():
            k = 1
        elif i > 0 and c == "," and _is_letter(prev) and _is_letter(nxt):
            k = 1
        elif i > 0 and c in ":<>=/" and (_is_letter(prev) or prev.isdigit()) and _is_letter(nxt):
            k = 1
        elif i > 0 and (_is_letter(prev) or prev.isdigit()):
            for h in _HYPHENS:
                if body.startswith(h, i) and i + len(h) < n and _is_letter(body[i + len(h)]):
                    k = len(h)
                    break
        if k:
            if i > start:
                pieces.append(body[start:i])
            pieces.append(body[i:i + k])
            i += k
            start = i
        else:
            i += 1
    if start < n:
        pieces.append(body[start:])
    out.extend(pieces)


def _chunk_tokens(chunk: str, out: list[str]) -> None:
    if chunk.isalpha():                   # most chunks: a plain word has no affix, infix or unit
        k = _NO_APOSTROPHE.get(chunk.lower())
        if k is None:
            out.append(chunk)
        else:
            out.extend((chunk[:k], chunk[k:]))
        return
    if _URLISH.match(chunk):
        if chunk[-1] in ".,;:!?)]}\"'":
            out.extend((chunk[:-1], chunk[-1]))
        else:
            out.append(chunk)
        return
    head: list[str] = []
    tail: list[str] = []
    s = chunk
    while s:
        if s in _SPECIAL or s in _SPLIT_SPECIAL or _URLISH.match(s):
            break
        n = _prefix_len(s)
        if n:
            head.append(s[:n])
            s = s[n:]
            if not s or s in _SPECIAL or s in _SPLIT_SPECIAL:
                break
        m = _suffix_len(s)
        if m:
            tail.append(s[-m:])
            s = s[:-m]
        if not n and not m:
            break
    pieces = head
    if s:
        if s in _SPECIAL or _URLISH.match(s) or ("." in s and _HOST.fullmatch(s)):
            pieces.append(s)
        elif s in _SPLIT_SPECIAL:
            pieces.extend(_SPLIT_SPECIAL[s])
        elif s.lower() in _NO_APOSTROPHE:
            k = _NO_APOSTROPHE[s.lower()]
            pieces.extend((s[:k], s[k:]))
        else:
            _infix_split(s, pieces)
    pieces.extend(reversed(tail))
    # special cases spanning split pieces are joined again: `ok):` -> ok ):, `a.B` -> a. B
    i = 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] + pieces[i + 1] in _SPECIAL:
            out.append(pieces[i] + pieces[i + 1])
            i += 2
        else:
            out.append(pieces[i])
            i += 1


def tokens_of(text: str) -> list[str]:
    """Reference-style word tokens: punctuation marks are tokens (see the comment above)."""
    out: list[str] = []
    for chunk in text.split():
        if _NO_SPACE_CHAR.search(chunk):
            out.extend(p for p in _SPLIT_NO_SPACE.split(chunk) if p and not p.isspace())
            continue
        _chunk_tokens(chunk, out)
    return out


# What is NOT a word character for Gopher's word count and mean word length: the reference
# (datatrove gopher_quality_filter.py: a word has a character outside utils/text.py's
# PUNCTUATION_SET) counts ASCII punctuation, control characters and a fixed set of prose marks
# (sentence-ending marks, CJK full-width marks, dashes, the closing single quote and double quotes)
# as punctuation, and every other mark or symbol as a word: `€`, `•`, `‘`, `¿`, `§`, `·`, `×`, `♥`
# standing alone are words there. The set below is written from that definition (the marks of it
# that occur in ordinary text; the reference also lists sentence-ending marks of rarer scripts).
_NON_WORD_CHARS = frozenset(
    string.punctuation + "".join(chr(i) for i in range(32) if i not in (9, 10)) + "\x7f"
    + "–—«»“”’„´…‼‽⁇⁈⁉∶～━►"
    + "、。！，：；？（）《》「」【】〈〉％．｡１"
    + "։؝؞؟۔।॥၊။።፧፨។៕")


def is_symbol_token(tok: str) -> bool:
    """A token with no word character (not counted as a word by Gopher, see _NON_WORD_CHARS)."""
    return all(c in _NON_WORD_CHARS for c in tok)
