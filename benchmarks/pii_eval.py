"""PII detection precision and recall on a planted test set, and on the fixtures' e-mail spans.

The planted set: real sentences (UDHR, English and German) with values inserted at random word
boundaries: valid values of every type, generated here (Luhn-valid cards of several issuers, IBANs
with computed mod-97 check digits, valid SSNs, phones in international / North-American / national
formats, public IPv4/IPv6, e-mails), and look-alikes that must NOT be found (versions, dates, ISBNs,
private IPs, cards failing Luhn, IBANs with a wrong check, invalid SSN areas, plain and grouped
numbers, times, hashes, UUIDs, git ids, big constants and INT_MAX-like numbers from code, IPv6 look-
alikes such as `std::vector` and documentation / link-local / IPv4-mapped private addresses). A
detection counts when type and exact span match. Seeded: the same set each run. Positive IPv6 values
include compressed, IPv4-mapped and zone-id forms; cards include every shape a pattern-plus-Luhn
recogniser flags (4 + 3..4 + 3..4 + 3..5 groups, mixed separators, UATP prefix 1).

    python benchmarks/pii_eval.py [--docs 400] [--seed 7]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import gzip
import json
import random
import time
from collections import Counter

from curation.filters.pii import IBAN_LENGTHS, find_pii, luhn_ok


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


def make_iban(country: str, rng: random.Random, valid: bool = True) -> str:
    n = IBAN_LENGTHS[country]
    digits = lambda k: "".join(rng.choice("0123456789") for _ in range(k))  # noqa: E731
    if country in ("GB", "NL"):      # national formats: a 4-letter bank code first
        bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + digits(n - 8)
    elif country == "BE":            # Belgian account: 10 digits + their mod-97 check
        b = digits(10)
        bban = b + f"{(int(b) % 97) or 97:02d}"
    else:
        bban = digits(n - 4)
    num = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    check = 98 - num % 97
    if not valid:
        check = (check % 97) + 1
    s = f"{country}{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.5 else s


def positive(kind: str, rng: random.Random) -> str:
    r = rng.randint
    if kind == "EMAIL":
        user = rng.choice(["anna.schmidt", "j.doe", "info", "kontakt+web", "m_rossi", "li.wei88"])
        dom = rng.choice(["example.com", "mail.example.de", "uni-beispiel.ac.at", "example.co.uk"])
        return f"{user}@{dom}"
    if kind == "PHONE":
        area = rng.choice([212, 415, 312, 617, 202, 305, 713, 206, 503, 404])   # assigned US area codes
        return rng.choice([
            f"+1 {area} {r(200, 999)} {r(1000, 9999)}", f"+49 30 {r(1000000, 99999999)}",
            f"+44 20 {r(7000, 8999)} {r(1000, 9999)}", f"+33 {r(1, 4)} {r(10, 99)} {r(10, 99)} {r(10, 99)} {r(10, 99)}",
            f"({area}) {r(200, 999)}-{r(1000, 9999)}", f"{area}-{r(200, 999)}-{r(1000, 9999)}",
            f"+49 (0)89 {r(100000, 9999999)}", f"+81 3-{r(1000, 9999)}-{r(1000, 9999)}"])
    if kind == "IP_ADDRESS":
        u = rng.random()
        if u < 0.1:
            return f"2001:4860:{r(4096, 65535):x}::{r(1, 65535):x}"
        if u < 0.15:
            return f"::ffff:{rng.choice([8, 23, 81, 151])}.{r(0, 255)}.{r(0, 255)}.{r(1, 254)}"
        if u < 0.2:
            return f"2a00:1450:{r(4096, 65535):x}:{r(1, 65535):x}::{r(1, 65535):x}%eth{r(0, 3)}"
        while True:
            a = rng.choice([8, 23, 45, 81, 104, 151, 185, 203, 212])
            ip = f"{a}.{r(0, 255)}.{r(0, 255)}.{r(1, 254)}"
            import ipaddress
            if ipaddress.ip_address(ip).is_global:
                return ip
    if kind == "CREDIT_CARD":
        if rng.random() < 0.3:   # shapes a pattern-plus-Luhn recogniser flags beyond printed cards
            g = [4, rng.choice([3, 4]), rng.choice([3, 4]), rng.choice([3, 4, 5])]
            d = luhn_complete(rng.choice("13456"), sum(g), rng)
            parts, k = [], 0
            for x in g:
                parts.append(d[k:k + x]); k += x
            return "".join(p + (rng.choice(["", " ", "-"]) if i < 3 else "") for i, p in enumerate(parts))
        prefix, n = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                ("6011", 16), ("3528", 16)])
        d = luhn_complete(prefix, n, rng)
        sep = rng.choice(["", " ", "-"])
        groups = [d[i:i + 4] for i in range(0, len(d), 4)] if n == 16 else [d[:4], d[4:10], d[10:]]
        return sep.join(groups)
    if kind == "IBAN":
        # countries whose national BBAN rules the generator follows (python-stdnum checks them)
        # (Belgian IBANs are left out: python-stdnum also checks the bank code against the register)
        return make_iban(rng.choice(["DE", "FR", "GB", "NL", "AT", "CH"]), rng)
    if kind == "US_SSN":
        return f"{rng.choice([r(1, 665), r(667, 899)]):03d}-{r(1, 99):02d}-{r(1, 9999):04d}"
    raise ValueError(kind)


def look_alike(rng: random.Random) -> str:
    r = rng.randint
    opts = [
        lambda: f"version {r(1, 9)}.{r(0, 20)}.{r(0, 9)}.{r(0, 99)}", lambda: f"v{r(1, 9)}.{r(0, 9)}.{r(0, 9)}.{r(0, 9)}",
        lambda: f"{r(1990, 2030)}-{r(1, 12):02d}-{r(1, 28):02d}", lambda: f"{r(1, 28):02d}.{r(1, 12):02d}.{r(1990, 2030)}",
        lambda: f"{r(1, 12):02d}/{r(1, 28):02d}/{r(1990, 2030)}", lambda: f"{r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}",
        lambda: "ISBN 978-3-16-148410-0", lambda: "ISBN 0-306-40615-2", lambda: "9780306406157",
        lambda: f"192.168.{r(0, 255)}.{r(1, 254)}", lambda: f"10.{r(0, 255)}.{r(0, 255)}.{r(1, 254)}",
        lambda: f"127.0.0.{r(1, 254)}", lambda: f"{r(1, 999):,}".replace(",", ".") + f".{r(100, 999)}",
        lambda: f"{r(1000, 9999999):,}", lambda: str(r(10**7, 10**11)),
        lambda: (lambda d: d[:-1] + str((int(d[-1]) + 1) % 10))(luhn_complete("4", 16, rng)),
        lambda: make_iban("DE", rng, valid=False), lambda: f"{rng.choice([0, 666, r(900, 999)]):03d}-{r(1, 99):02d}-{r(1, 9999):04d}",
        lambda: f"{r(1, 9)}.{r(10, 99)} EUR", lambda: f"Az. {r(1, 99)} O {r(100, 999)}/{r(10, 24)}",
        lambda: f"Order {r(1000, 9999)} {r(1000, 9999)} {r(1000, 9999)}",
        # hashes, ids and constants as they appear in prose about code
        lambda: "sha256 " + "".join(rng.choice("0123456789abcdef") for _ in range(64)),
        lambda: "commit " + "".join(rng.choice("0123456789abcdef") for _ in range(40)),
        lambda: "md5 " + "".join(rng.choice("0123456789") for _ in range(32)),
        lambda: f"uuid {r(0, 16**8 - 1):08x}-{r(0, 65535):04x}-4{r(0, 4095):03x}-a{r(0, 4095):03x}-{r(0, 16**12 - 1):012x}",
        lambda: rng.choice(["INT_MAX is +2147483647", "-9223372036854775808 is LLONG_MIN",
                            "0x7FFFFFFFFFFFFFFF", "18446744073709551615 = 2^64 - 1", "1e-9 and 6.02214076e23"]),
        lambda: (lambda d: f"the constant {d}")(str(r(10**15, 10**18))),
        lambda: rng.choice(["std::vector<int>", "a::b::c", "::1 (loopback)", "fe80::1%eth0", "2001:db8::42",
                            "::ffff:192.168.1.10", "ff02::1", "12:34:56", "de:ad:be:ef:00:01"]),
        lambda: f"version {r(1, 20)}.{r(0, 20)}.{r(0, 99)}", lambda: f"({r(1, 9)}) {r(100, 999)}",
    ]
    return rng.choice(opts)()


def sentences() -> list[str]:
    import lxml.html
    from core.paths import corpus_dir
    out = []
    for name in ("eng", "deu_1996"):
        html = gzip.open(corpus_dir() / "multilingual" / "udhr" / "declaration" / f"{name}.html.gz").read()
        body = lxml.html.fromstring(html.decode("utf-8")).body.text_content()
        out += [ln.strip() for ln in body.splitlines() if len(ln.split()) >= 8]
    return out


def planted_set(n_docs: int, seed: int):
    rng = random.Random(seed)
    sents = sentences()
    kinds = ["EMAIL", "PHONE", "IP_ADDRESS", "CREDIT_CARD", "IBAN", "US_SSN"]
    docs = []
    for _ in range(n_docs):
        text = ""
        truth = []
        for _ in range(rng.randint(2, 5)):
            words = rng.choice(sents).split()
            k = rng.randint(1, len(words) - 1)
            u = rng.random()
            if u < 0.45:
                kind = rng.choice(kinds)
                val = positive(kind, rng)
                pre = " ".join(words[:k]) + rng.choice([" ", " Tel: " if kind == "PHONE" else " ", ": "])
                start = len(text) + len(pre)
                truth.append((start, start + len(val), kind))
                text += pre + val + " " + " ".join(words[k:]) + "\n"
            elif u < 0.9:
                text += " ".join(words[:k]) + " " + look_alike(rng) + " " + " ".join(words[k:]) + "\n"
            else:
                text += " ".join(words) + "\n"
        docs.append((text, truth))
    return docs


def prf(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    docs = planted_set(args.docs, args.seed)
    tp, fp, fn = Counter(), Counter(), Counter()
    fps, fns = [], []
    t0 = time.perf_counter()
    for text, truth in docs:
        found = set(find_pii(text))
        truth = set(truth)
        for s in found & truth:
            tp[s[2]] += 1
        for s in found - truth:
            fp[s[2]] += 1
            fps.append((s[2], text[s[0]:s[1]]))
        for s in truth - found:
            fn[s[2]] += 1
            fns.append((s[2], text[s[0]:s[1]]))
    dt = time.perf_counter() - t0
    chars = sum(len(t) for t, _ in docs)
    print(f"planted set: {len(docs)} documents, {sum(len(t) for _, t in docs)} planted values, "
          f"seed {args.seed}; find_pii {chars / dt / 1e6:.2f} M chars/s")
    print(f"{'type':<12} {'true':>5} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
    for k in sorted(set(tp) | set(fp) | set(fn)):
        p, r = prf(tp[k], fp[k], fn[k])
        print(f"{k:<12} {tp[k] + fn[k]:>5} {tp[k]:>5} {fp[k]:>4} {fn[k]:>4} {p:>9.3f} {r:>7.3f}")
    p, r = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    print(f"{'all':<12} {sum(tp.values()) + sum(fn.values()):>5} {sum(tp.values()):>5} "
          f"{sum(fp.values()):>4} {sum(fn.values()):>4} {p:>9.3f} {r:>7.3f}")
    for name, lst in (("false positives", fps), ("misses", fns)):
        print(f"{name} (up to 8): {lst[:8]}")

    from core import corpus as corpus_files
    from core.paths import corpus_dir
    d = corpus_dir() / "pii-fixtures" / "tests" / "data"
    texts = {json.loads(ln)["id"]: json.loads(ln)["text"]
             for ln in gzip.open(d / "provided" / "documents" / "000.json.gz", "rt")}
    tp = fp = fn = 0
    for ln in gzip.open(d / "expected" / "email-spans.json.gz", "rt"):
        rec = json.loads(ln)
        spans = rec["attributes"].get("pii", {}).get("email", [])
        truth = {(s, e) for s, e, sc in spans if sc >= 0.5} if isinstance(spans, list) else set()
        found = {(s, e) for s, e, t in find_pii(texts[rec["id"]]) if t == "EMAIL"}
        tp += len(found & truth); fp += len(found - truth); fn += len(truth - found)
    p, r = prf(tp, fp, fn)
    print(f"\npii-fixtures e-mail spans (score >= 0.5 = e-mail): {tp + fn} true, tp {tp} fp {fp} fn {fn}"
          f" -> precision {p:.3f} recall {r:.3f}")
    counts = Counter()
    n = 0
    for f in sorted((d / "multiple_files").glob("*.jsonl")):
        for ln in open(f):
            n += 1
            for s, e, t in find_pii(json.loads(ln)["text"]):
                counts[t] += 1
    print(f"unlabelled fixture documents ({n}): found {dict(counts)}")

    # code: what a scan would flag in TheAlgorithms (4,261 source files). The filter does not scan
    # code by default (pii.rule_sets: [prose]); these are the values that rule keeps out.
    code = Counter()
    examples = []
    files = 0
    for r in corpus_files.thealgorithms():
        files += 1
        t = r["content"]
        for s, e, k in find_pii(t):
            code[k] += 1
            if len(examples) < 6 and k in ("CREDIT_CARD", "PHONE", "IP_ADDRESS"):
                examples.append((k, t[s:e]))
    print(f"TheAlgorithms ({files} files) if it were scanned: {dict(code)}; e.g. {examples}")


if __name__ == "__main__":
    main()
