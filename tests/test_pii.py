"""PII detection and redaction: planted values of every type, look-alikes that must stay, and the
e-mail spans annotated in the Common Crawl fixtures."""
from __future__ import annotations

import gzip
import json

import pytest

from curation.filters.pii import find_pii, iban_ok, luhn_ok, pii_signals, redact

POSITIVES = [
    ("Write to jane.doe+news@example.co.uk today.", "jane.doe+news@example.co.uk", "EMAIL"),
    ("Kontakt: max.mustermann@firma-beispiel.de.", "max.mustermann@firma-beispiel.de", "EMAIL"),
    ("Call +1 415 555 2671 now", "+1 415 555 2671", "PHONE"),
    ("Tel. +49 (0)30 1234567 bitte", "+49 (0)30 1234567", "PHONE"),
    ("Appelez le +33 1 42 68 53 00.", "+33 1 42 68 53 00", "PHONE"),
    ("Office: (212) 555-0187.", "(212) 555-0187", "PHONE"),
    ("or 212-555-0187 after 5pm", "212-555-0187", "PHONE"),
    ("Telefon: 030 1234 5678", "030 1234 5678", "PHONE"),
    ("phone 020 7946 0958 (London)", "020 7946 0958", "PHONE"),
    ("the server at 8.8.4.4 answered", "8.8.4.4", "IP_ADDRESS"),
    ("from 2001:4860:4860::8888 over v6", "2001:4860:4860::8888", "IP_ADDRESS"),
    ("card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111", "CREDIT_CARD"),
    ("Amex 3782-822463-10005.", "3782-822463-10005", "CREDIT_CARD"),
    ("mc 5555555555554444", "5555555555554444", "CREDIT_CARD"),
    ("IBAN: DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00", "IBAN"),
    ("pay GB82WEST12345698765432 by Friday", "GB82WEST12345698765432", "IBAN"),
    ("FR1420041010050500013M02606", "FR1420041010050500013M02606", "IBAN"),
    ("SSN 078-05-1120 on file", "078-05-1120", "US_SSN"),
]
NEGATIVES = [
    "Released as version 2.4.1.0 and v1.2.3.4 last week.",
    "Server is Apache/2.4.41 on Ubuntu 20.04.1 LTS.",
    "Internal hosts 192.168.1.1, 10.0.0.7, 127.0.0.1 and 172.16.5.4 only.",
    "Meeting on 2024-01-15, or 15.01.2024, or 01/15/2024, at 12:30:45.",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2.",
    "9783161484100 is the barcode of the book.",
    "The city has 1,234,567 inhabitants and a budget of 12345678 euros.",
    "pi is 3.14159265358979 and e is 2.718281828.",
    "Card 4111 1111 1111 1112 fails the Luhn check.",
    "IBAN DE89 3704 0044 0532 0130 01 has a wrong checksum.",
    "SSN 000-12-3456 and 666-12-3456 and 900-12-3456 are invalid.",
    "Order number 0123 4567 8901 shipped.",
    "std::vector<int> v; a::b::c; time 10:30",
    "Contact us at our office (no email).",
    "Reference 12-34-5678 and code 123-456.",
]


@pytest.mark.parametrize("text,value,kind", POSITIVES)
def test_planted_values_found(text, value, kind):
    spans = find_pii(text)
    assert [(text[s:e], t) for s, e, t in spans] == [(value, kind)]
    assert redact(text, spans) == text.replace(value, f"<{kind}>")


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_untouched(text):
    assert find_pii(text) == [], [text[s:e] for s, e, _ in find_pii(text)]


def test_counts_and_checksums():
    text = " ".join(t for t, _, _ in POSITIVES) + " " + " ".join(NEGATIVES)
    counts, red = pii_signals(text)
    assert counts["pii_email_count"] == 2 and counts["pii_phone_count"] == 7
    assert counts["pii_ip_count"] == 2 and counts["pii_card_count"] == 3
    assert counts["pii_iban_count"] == 3 and counts["pii_ssn_count"] == 1
    assert counts["pii_total"] == len(POSITIVES)
    assert "jane.doe" not in red and "078-05-1120" not in red and "2.4.1.0" in red
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert iban_ok("NL91 ABNA 0417 1643 00") and not iban_ok("NL91 ABNA 0417 1643 01")
    assert pii_signals("") == ({"pii_email_count": 0, "pii_phone_count": 0, "pii_ip_count": 0,
                                "pii_card_count": 0, "pii_iban_count": 0, "pii_ssn_count": 0,
                                "pii_total": 0}, "")


def test_only_configured_types():
    assert find_pii("mail a@b.org, ip 8.8.8.8", types=("IP_ADDRESS",)) == [(17, 24, "IP_ADDRESS")]


def test_email_spans_of_the_fixtures(corpus):
    """The fixtures' e-mail spans with score >= 0.5 are e-mail addresses (a 0.1 span is a Twitter
    handle): every one must be found at its offsets, nothing else in those documents."""
    d = corpus / "pii-fixtures" / "tests" / "data"
    docs = {json.loads(ln)["id"]: json.loads(ln)["text"]
            for ln in gzip.open(d / "provided" / "documents" / "000.json.gz", "rt")}
    n_true = 0
    for ln in gzip.open(d / "expected" / "email-spans.json.gz", "rt"):
        rec = json.loads(ln)
        text = docs[rec["id"]]
        spans = rec["attributes"].get("pii", {}).get("email", [])
        truth = {(s, e) for s, e, score in spans if score >= 0.5} if isinstance(spans, list) else set()
        found = {(s, e) for s, e, t in find_pii(text) if t == "EMAIL"}
        assert found == truth, rec["id"]
        n_true += len(truth)
    assert n_true == 3


# ------------------------------------------------------------------ issue 16: fidelity fixes
@pytest.mark.parametrize("text,expected", [
    ("from ::ffff:8.8.8.8 now", ["::ffff:8.8.8.8"]),               # IPv4-mapped, public: whole
    ("from ::ffff:192.0.2.128 now", []),                         # documentation range: nothing,
    ("host 2001:4860:4860::8888%eth0 up", ["2001:4860:4860::8888%eth0"]),   # not half of it
    ("fe80::1%eth0 and 2001:db8::1 are local / documentation", []),
])
def test_ipv6_forms_whole(text, expected):
    assert [text[s:e] for s, e, _ in find_pii(text)] == expected


def test_phone_numbers_validated_by_libphonenumber():
    assert find_pii("INT_MAX, call +2147483647 to overflow") == []     # no country's number
    assert [t for _, _, t in find_pii("Call +1 415 555 2671 now")] == ["PHONE"]


@pytest.mark.parametrize("value", ["1234 5678 9012 3452",        # UATP prefix 1, Luhn-valid
                                   "4111-1111 1111 1111",        # mixed separators
                                   "6011 000 0000 00004",        # 4-3-4-5 grouping
                                   "4052739537881"])             # 13 digits, Luhn-valid
def test_cards_a_luhn_pattern_recogniser_flags(value):
    text = f"Payment with {value} was declined."
    assert [(text[s:e], t) for s, e, t in find_pii(text)] == [(value, "CREDIT_CARD")]


def test_span_resolution_is_not_quadratic():
    """A 660 KB page with ~20,000 candidate spans: each candidate is checked against its two
    neighbours among the taken spans (bisect), never against all of them."""
    para = ("Contact anna.schmidt@example.com or +49 30 12345678, server 8.8.4.4, "
            "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 078-05-1120. ")
    text = para * (660_000 // len(para))
    stats: dict = {}
    spans = find_pii(text, stats=stats)
    n = 660_000 // len(para)
    assert len(text) > 640_000 and len(spans) == 6 * n
    assert stats["candidates"] >= 6 * n
    assert stats["comparisons"] <= 2 * stats["candidates"]


def test_span_set_takes_what_a_scan_of_every_taken_span_takes():
    """`comparisons` above is counted by SpanSet itself (two per candidate by construction), so it
    cannot catch a wrong answer: the neighbour-only check must refuse and take exactly the spans a
    check against every taken span does (random spans: nested, touching, overlapping, blocked)."""
    import random
    from curation.filters.pii import SpanSet
    rng = random.Random(16)
    for _ in range(200):
        ss, taken = SpanSet(), []
        for _ in range(rng.randint(1, 60)):
            s = rng.randint(0, 200)
            e = s + rng.randint(1, 25)
            kind = rng.choice(["EMAIL", "PHONE", None])
            free = all(e <= a or s >= b for a, b, _ in taken)
            assert ss.add(s, e, kind) == free, (s, e, taken)
            if free:
                taken.append((s, e, kind))
        assert ss.spans() == sorted((a, b, k) for a, b, k in taken if k is not None)


def _annotate(pdf, **over):
    import pandas as pd  # noqa: F401
    from core.config import merge
    from curation.filters.annotate import annotate_batch
    from curation.filters.defaults import DEFAULTS
    cfg = merge(DEFAULTS, {"token_kl": {"enabled": False}, "lang": {"detect": False}, **over})
    return annotate_batch(pdf, cfg)


def test_code_is_not_scanned_by_default():
    import pandas as pd
    code = "def test_fib():\n    assert fib(62) == 4052739537881  # maintainer: dev@example.org\n"
    pdf = pd.DataFrame({"text": [code, code], "source": ["thealgorithms", "crawl"]})
    out = _annotate(pdf)
    assert out["text"][0] == code and out["pii_total"][0] == 0 and not out["pii_scanned"][0]
    assert out["pii_scanned"][1] and "4052739537881" not in out["text"][1]
    # configurable per rule set
    out = _annotate(pdf, pii={"rule_sets": ["prose", "code"]})
    assert out["pii_scanned"].all() and "dev@example.org" not in out["text"][0]


def test_errors_never_store_unredacted_text(monkeypatch):
    """A failure in any signal keeps the redacted text; a failure of the PII step itself empties the
    text (the document is dropped with reason `error`). Failures are injected."""
    import pandas as pd
    from curation.filters import gopher, pii
    text = "Write to jane.doe@example.com about the weather in Berlin today."
    pdf = pd.DataFrame({"text": [text]})

    def boom(*a, **k):
        raise RuntimeError("injected")
    monkeypatch.setattr(gopher, "gopher_signals", boom)
    out = _annotate(pdf)
    assert out["filter_error"][0] and "jane.doe" not in out["text"][0] and "<EMAIL>" in out["text"][0]
    assert out["pii_email_count"][0] == 1
    monkeypatch.undo()
    monkeypatch.setattr(pii, "find_pii", boom)
    out = _annotate(pdf)
    assert out["filter_error"][0].startswith("pii:") and out["text"][0] == ""
