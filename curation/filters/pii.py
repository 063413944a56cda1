"""Personally identifiable information: find, count by type, and redact with typed placeholders.

Types and how a candidate is confirmed (a regex proposes, a validator decides):
* EMAIL        local@domain.tld (TLD of letters, 2+); placeholder <EMAIL>
* PHONE        international `+CC ...` (8-15 digits), North American `(NNN) NNN-NNNN` / `NNN-NNN-NNNN`
               / `NNN.NNN.NNNN`, and national numbers with a trunk 0 written in groups
               (`030 1234 5678`, `06-12345678`, `020 7946 0958`); 8-15 digits; <PHONE>
* IP_ADDRESS   IPv4 and IPv6 accepted only when `ipaddress` says the address is global (public):
               private, loopback, link-local, documentation and reserved ranges stay; <IP_ADDRESS>
* CREDIT_CARD  13-19 digits, optionally grouped by spaces or dashes, a known issuer prefix, and a
               valid Luhn checksum; <CREDIT_CARD>
* IBAN         country code + 2 check digits + BBAN, the country's length, and ISO 7064 mod 97 == 1;
               <IBAN>
* US_SSN       NNN-NN-NNNN with a valid area (not 000, 666, 9xx), group (not 00), serial (not 0000);
               <US_SSN>
Left untouched by construction: version numbers (`v1.2.3.4`, `version 2.4.1.0` are refused by
context), dates (`2024-01-15`, `15.01.2024`), ISBNs (a 10/13 digit run with a valid ISBN checksum
after "ISBN" or starting 978/979), and ordinary numbers (no separators, or thousands separators).

Spans of different types never overlap: they are resolved in the order above (an e-mail wins over
a phone number inside it), and replaced from the end so offsets stay valid.
"""
from __future__ import annotations

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
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,6}|[0-9A-Fa-f]{1,4})"
                   r"(?![\w:])|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){1,6}[0-9A-Fa-f]{1,4}(?![\w:])")
_VERSION_CONTEXT = re.compile(r"\b(?:version|release|build|ver\.?|v\.?|firmware|update|patch|"
                              r"kernel|chrome|firefox|windows|os|ios)\s*$", re.I)

_CARD = re.compile(r"(?<![\w\-.])\d(?:[ \-]?\d){12,18}(?![\w\-]|\.\d)")
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
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


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
    s = s.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def isbn_ok(d: str) -> bool:
    if len(d) == 13 and d.isdigit():
        return sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(d)) % 10 == 0
    if len(d) == 10 and (d[:9].isdigit() and (d[9].isdigit() or d[9] in "Xx")):
        return sum((10 - i) * (10 if c in "Xx" else int(c)) for i, c in enumerate(d)) % 11 == 0
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
    return False


def find_pii(text: str, types: tuple[str, ...] = TYPES) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, type) spans, sorted by start."""
    if not text:
        return []
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= ts or s >= te for ts, te in taken)

    def add(s: int, e: int, t: str) -> None:
        if free(s, e):
            found.append((s, e, t))
            taken.append((s, e))

    has_at = "@" in text
    if "EMAIL" in types and has_at:
        for m in _EMAIL.finditer(text):
            add(m.start(), m.end(), "EMAIL")
    # every pattern below needs a decimal digit (\d or [0-9]): one C-level search instead of a
    # Python loop over the characters
    if _ANY_DIGIT.search(text) is None:
        return sorted(found)
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
            s = m.group(0)
            d = re.sub(r"\D", "", s)
            seps = set(re.findall(r"[ \-]", s))
            if len(seps) > 1:
                continue
            if seps:  # printed cards are grouped 4-4-4-4(-3) or 4-6-5 / 4-6-4
                groups = [len(g) for g in re.split(r"[ \-]", s)]
                if not (groups in ([4, 6, 5], [4, 6, 4]) or
                        (all(g == 4 for g in groups[:-1]) and 3 <= groups[-1] <= 4)):
                    continue
            if _card_issuer_ok(d) and luhn_ok(d) and not _is_isbn_like(text, m.start(), d):
                add(m.start(), m.end(), "CREDIT_CARD")
    if "PHONE" in types:
        for rx, needs_context in ((_PHONE_INTL, False), (_PHONE_NANP, False), (_PHONE_NANP_SP, False),
                                  (_PHONE_TRUNK, True)):
            for m in rx.finditer(text):
                s = m.group(0)
                d = re.sub(r"\D", "", s)
                if not 8 <= len(d) <= 15 or _looks_like_date(s):
                    continue
                if _is_isbn_like(text, m.start(), d):
                    continue
                if needs_context:
                    # national numbers: groups of digits are everywhere (prices, IDs); require a
                    # phone cue before them or a leading area code in parentheses
                    before = text[max(0, m.start() - 25):m.start()]
                    if not (s.startswith("(") or _PHONE_CONTEXT.search(before)):
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
        if ":" in text:
            for m in _IPV6.finditer(text):
                s = m.group(0)
                if s.count(":") < 3 and "::" not in s:
                    continue
                try:
                    ip6 = ipaddress.IPv6Address(s)
                except ValueError:
                    continue
                if ip6.is_global and sum(c.isdigit() for c in s) >= 2:
                    add(m.start(), m.end(), "IP_ADDRESS")
    return sorted(found)


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
