"""Personally identifiable information: find, count by type, and redact with typed placeholders.

Types and how a candidate is confirmed (a regex proposes, a validator from a maintained library
decides where one fits):
* EMAIL        local@domain.tld (TLD of letters, 2+); placeholder <EMAIL>
* PHONE        international `+CC ...`, North American `(NNN) NNN-NNNN` / `NNN-NNN-NNNN` /
               `NNN.NNN.NNNN`, and national numbers with a trunk 0 written in groups (`030 1234 5678`,
               `020 7946 0958`) after a phone cue (`Tel:`, `phone`, ...) or with a parenthesised area
               code; every candidate must be a valid number for `phonenumbers` (libphonenumber's
               metadata: `+2147483647` is not a number of any country); <PHONE>
* IP_ADDRESS   IPv4 and IPv6 accepted only when `ipaddress` says the address is global (public);
               IPv6 forms are taken whole (compressed `2001:db8::1`, IPv4-mapped `::ffff:1.2.3.4`
               judged by its IPv4 address, zone ids `fe80::1%eth0`): an IPv6 address that is not
               PII also keeps its IPv4 tail from being matched alone; <IP_ADDRESS>
* CREDIT_CARD  every number a Luhn-checked pattern recogniser flags: 13-17 digits starting with 1, 3,
               4, 5 or 6, written in 4 + 3..4 + 3..4 + 3..5 groups with optional space or dash
               separators (the shape Presidio's CreditCardRecognizer uses), and 13-19 digit numbers of
               a known issuer prefix grouped as printed (4-4-4-4-3, 4-6-5); Luhn via python-stdnum;
               <CREDIT_CARD>
* IBAN         country code + 2 check digits + BBAN: python-stdnum's `iban.is_valid` (country length
               and format, ISO 7064 mod 97); <IBAN>
* US_SSN       NNN-NN-NNNN with a valid area (not 000, 666, 9xx), group (not 00), serial (not 0000);
               <US_SSN>
Left untouched by construction: version numbers (`v1.2.3.4`, `version 2.4.1.0` are refused by
context), dates (`2024-01-15`, `15.01.2024`), ISBNs (a 10/13 digit run with a valid ISBN checksum
after "ISBN" or starting 978/979, python-stdnum), and ordinary numbers (no separators, or
thousands separators). Code is not scanned at all by default (`pii.rule_sets`: prose only): `fib(62)
== 4052739537881` passes Luhn and has a card's shape.

Spans never overlap: types are taken in the order above (an e-mail wins over a phone number inside
it). Overlap is checked against the spans taken so far, kept sorted by start: a new span only needs
its two neighbours (the taken spans never overlap each other), so resolving n candidates costs
O(n log n) comparisons-and-bisections, not the O(n^2) of a scan over every taken span (a 660 KB
page with thousands of candidates took 20.8 s that way). Redaction replaces from the start.
"""
from __future__ import annotations

import bisect
import ipaddress
import re

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "IP_ADDRESS": "<IP_ADDRESS>",
                "CREDIT_CARD": "<CREDIT_CARD>", "IBAN": "<IBAN>", "US_SSN": "<US_SSN>"}
TYPES = tuple(PLACEHOLDERS)
COUNT_COLUMNS = {"EMAIL": "pii_email_count", "PHONE": "pii_phone_count",
                 "IP_ADDRESS": "pii_ip_count", "CREDIT_CARD": "pii_card_count",
                 "IBAN": "pii_iban_count", "US_SSN": "pii_ssn_count"}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")

# digits with separators; the validator counts digits and checks context
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .\-/]?\(?\d{1,5}\)?){2,6}(?![\w])")
_PHONE_NANP = re.compile(r"(?<![\w.\-/])(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}(?![\w\-/]|[.,]\d)")
_PHONE_NANP_SP = re.compile(r"(?<![\w.\-/])\(\d{3}\)\s?\d{3}\s\d{4}(?![\w\-/]|[.,]\d)")
_PHONE_TRUNK = re.compile(r"(?<![\w.\-/+])\(?0\d{1,4}\)?(?:[ /\-]\d{2,8}){1,4}(?![\w\-/]|[.,]\d)")
_PHONE_CONTEXT = re.compile(r"\b(?:tel|phone|fon|fax|mobil|call|ruf|handy|telefon|téléphone|tél|"
                            r"contact|kontakt|whatsapp|rufnummer|hotline)\w*\.?\s*[:.]?\s*$",
                            re.I)

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
# IPv6 candidates: hex groups and colons (at least two colons), an optional dotted IPv4 tail and an
# optional zone id; `ipaddress` decides what is an address
_IPV6 = re.compile(r"(?<![\w:.%])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]*[0-9A-Fa-f:]"
                   r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?:%[A-Za-z0-9_.\-]+)?(?![\w:]|\.\d)")
_VERSION_CONTEXT = re.compile(r"\b(?:version|release|build|ver\.?|v\.?|firmware|update|patch|"
                              r"kernel|chrome|firefox|windows|os|ios)\s*$", re.I)

_CARD = re.compile(r"(?<![\w\-.])\d(?:[ \-]?\d){12,18}(?![\w\-]|\.\d)")
# the recogniser shape: 4 + 3..4 + 3..4 + 3..5 digits, optional single separators (13..17 digits)
_CARD_SHAPE = re.compile(r"[13456]\d{3}[ \-]?\d{3,4}[ \-]?\d{3,4}[ \-]?\d{3,5}")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}(?![\w])")
_SSN = re.compile(r"(?<![\w\-])(\d{3})-(\d{2})-(\d{4})(?![\w\-])")
_ANY_DIGIT = re.compile(r"\d")
_ISBN_CONTEXT = re.compile(r"isbn(?:-1[03])?\s*[:#]?\s*$", re.I)

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    from stdnum import luhn
    return luhn.is_valid(digits)


def _card_issuer_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)                                  # Visa
    p2, p4 = int(d[:2]), int(d[:4])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16                                            # Mastercard
    if p2 in (34, 37):
        return n == 15                                            # American Express
    if d.startswith("6011") or d.startswith("65") or 644 <= int(d[:3]) <= 649:
        return 16 <= n <= 19                                      # Discover
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19                                      # JCB
    if p2 in (36, 38) or 300 <= int(d[:3]) <= 305:
        return 14 <= n <= 19                                      # Diners
    if p2 == 62:
        return 16 <= n <= 19                                      # UnionPay
    if d.startswith(("50", "56", "57", "58", "6")):
        return 12 <= n <= 19                                      # Maestro
    return False


def iban_ok(s: str) -> bool:
    from stdnum import iban
    s = s.replace(" ", "").upper()
    return IBAN_LENGTHS.get(s[:2]) == len(s) and iban.is_valid(s)


def isbn_ok(d: str) -> bool:
    from stdnum import isbn
    return len(d) in (10, 13) and isbn.is_valid(d)


_PHONE_REGIONS = ("DE", "AT", "CH", "GB", "FR", "NL", "BE", "IT", "ES", "PL", "US")


def phone_ok(s: str, national: bool) -> bool:
    """A valid number for libphonenumber: international numbers as written, North American ones in
    the US plan, national ones (trunk 0) in any of `_PHONE_REGIONS`."""
    import phonenumbers
    regions = _PHONE_REGIONS if national else ((None,) if s.lstrip("(").startswith("+") else ("US",))
    for r in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(s, r)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    a = int(area)
    return a != 0 and a != 666 and a < 900 and group != "00" and serial != "0000"


def _is_isbn_like(text: str, start: int, digits: str) -> bool:
    if _ISBN_CONTEXT.search(text[max(0, start - 12):start]):
        return True
    return len(digits) == 13 and digits[:3] in ("978", "979") and isbn_ok(digits)


def _looks_like_date(s: str) -> bool:
    parts = [p for p in re.split(r"[ .\-/]", s.strip("()+ ")) if p]
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        a, b, c = (int(p) for p in parts)
        if len(parts[0]) == 4 and 1 <= b <= 12 and 1 <= c <= 31:
            return True
        if len(parts[2]) == 4 and 1 <= a <= 31 and 1 <= b <= 12:
            return True
        if len(parts[2]) == 4 and 1 <= a <= 12 and 1 <= b <= 31:    # US month/day/year
            return True
    return False


class SpanSet:
    """Non-overlapping spans kept sorted by start; `add` checks a new span against its two
    neighbours only (O(log n) per span). `comparisons` counts neighbour checks (tests pin it)."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.kinds: list[str | None] = []
        self.comparisons = 0

    def free(self, s: int, e: int) -> bool:
        i = bisect.bisect_right(self.starts, s)
        self.comparisons += 2
        if i > 0 and self.ends[i - 1] > s:
            return False
        return not (i < len(self.starts) and self.starts[i] < e)

    def add(self, s: int, e: int, kind: str | None) -> bool:
        """Take [s, e) for `kind` (None: blocked, never reported) if it overlaps nothing taken."""
        if not self.free(s, e):
            return False
        i = bisect.bisect_right(self.starts, s)
        self.starts.insert(i, s)
        self.ends.insert(i, e)
        self.kinds.insert(i, kind)
        return True

    def spans(self) -> list[tuple[int, int, str]]:
        return [(s, e, k) for s, e, k in zip(self.starts, self.ends, self.kinds) if k is not None]


def _ip_is_pii(s: str) -> bool | None:
    """True: a public address; False: an address that is not PII; None: not an address."""
    addr = s.split("%", 1)[0]
    try:
        ip6 = ipaddress.IPv6Address(addr)
    except ValueError:
        return None
    if ip6.ipv4_mapped is not None:
        return ip6.ipv4_mapped.is_global
    return ip6.is_global and not ip6.is_multicast and sum(c.isdigit() for c in addr) >= 2


def find_pii(text: str, types: tuple[str, ...] = TYPES, stats: dict | None = None
             ) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, type) spans, sorted by start. `stats` (a dict), when given,
    receives `candidates` and `comparisons` (the span resolution's work)."""
    if not text:
        return []
    taken = SpanSet()
    n_cand = 0

    def add(s: int, e: int, t: str | None) -> None:
        nonlocal n_cand
        n_cand += 1
        taken.add(s, e, t)

    try:
        _find(text, types, add)
    finally:
        if stats is not None:
            stats["candidates"] = n_cand
            stats["comparisons"] = taken.comparisons
    return taken.spans()


def _card_ok(text: str, m_start: int, s: str) -> bool:
    d = re.sub(r"\D", "", s)
    if not 13 <= len(d) <= 19 or not luhn_ok(d) or _is_isbn_like(text, m_start, d):
        return False
    if _CARD_SHAPE.fullmatch(s):
        return True                      # what a pattern-plus-Luhn recogniser flags
    seps = set(re.findall(r"[ \-]", s))
    if len(seps) > 1:
        return False
    if seps:  # printed cards are grouped 4-4-4-4(-3) or 4-6-5 / 4-6-4
        groups = [len(g) for g in re.split(r"[ \-]", s)]
        if not (groups in ([4, 6, 5], [4, 6, 4]) or
                (all(g == 4 for g in groups[:-1]) and 3 <= groups[-1] <= 4)):
            return False
    return _card_issuer_ok(d)


def _find(text: str, types: tuple[str, ...], add) -> None:
    if "EMAIL" in types and "@" in text:
        for m in _EMAIL.finditer(text):
            add(m.start(), m.end(), "EMAIL")
    # every pattern below needs a decimal digit (\d or [0-9]): one C-level search instead of a
    # Python loop over the characters
    if _ANY_DIGIT.search(text) is None:
        return
    if "IBAN" in types:
        for m in _IBAN.finditer(text):
            s = m.group(0)
            # the regex is greedy: also try the country length from the start
            n = IBAN_LENGTHS.get(s[:2])
            if n is None:
                continue
            compact = s.replace(" ", "")
            if len(compact) >= n:
                # cut the match after n alphanumerics
                k = cnt = 0
                while k < len(s) and cnt < n:
                    if s[k] != " ":
                        cnt += 1
                    k += 1
                if iban_ok(s[:k]):
                    add(m.start(), m.start() + k, "IBAN")
    if "US_SSN" in types:
        for m in _SSN.finditer(text):
            if _ssn_ok(*m.groups()):
                add(m.start(), m.end(), "US_SSN")
    if "CREDIT_CARD" in types:
        for m in _CARD.finditer(text):
            if _card_ok(text, m.start(), m.group(0)):
                add(m.start(), m.end(), "CREDIT_CARD")
    if "IP_ADDRESS" in types and ":" in text:
        # IPv6 before phones and IPv4: an address is taken (or blocked) whole
        for m in _IPV6.finditer(text):
            s = m.group(0)
            if s.count(":") < 2:
                continue
            pii = _ip_is_pii(s)
            if pii is not None:
                add(m.start(), m.end(), "IP_ADDRESS" if pii else None)
    if "PHONE" in types:
        for rx, national in ((_PHONE_INTL, False), (_PHONE_NANP, False), (_PHONE_NANP_SP, False),
                             (_PHONE_TRUNK, True)):
            for m in rx.finditer(text):
                s = m.group(0)
                d = re.sub(r"\D", "", s)
                if not 8 <= len(d) <= 15 or _looks_like_date(s):
                    continue
                if _is_isbn_like(text, m.start(), d):
                    continue
                if national:
                    # national numbers: groups of digits are everywhere (prices, IDs); require a
                    # phone cue before them or a leading area code in parentheses
                    before = text[max(0, m.start() - 25):m.start()]
                    if not (s.startswith("(") or _PHONE_CONTEXT.search(before)):
                        continue
                if not phone_ok(s, national):
                    continue
                add(m.start(), m.end(), "PHONE")
    if "IP_ADDRESS" in types:
        for m in _IPV4.finditer(text):
            s = m.group(0)
            if any(len(p) > 1 and p[0] == "0" for p in s.split(".")):
                continue
            try:
                ip = ipaddress.IPv4Address(s)
            except ValueError:
                continue
            if not ip.is_global:
                continue
            if _VERSION_CONTEXT.search(text[max(0, m.start() - 12):m.start()]):
                continue
            add(m.start(), m.end(), "IP_ADDRESS")


def redact(text: str, spans: list[tuple[int, int, str]]) -> str:
    if not spans:
        return text
    out = []
    pos = 0
    for s, e, t in spans:
        out.append(text[pos:s])
        out.append(PLACEHOLDERS[t])
        pos = e
    out.append(text[pos:])
    return "".join(out)


def pii_signals(text: str, types: tuple[str, ...] = TYPES) -> tuple[dict[str, int], str]:
    """(counts per type column + pii_total, redacted text)."""
    spans = find_pii(text, types)
    counts = {c: 0 for c in COUNT_COLUMNS.values()}
    for _, _, t in spans:
        counts[COUNT_COLUMNS[t]] += 1
    counts["pii_total"] = len(spans)
    return counts, redact(text, spans)
