"""Real documents from the sample corpus as `documents` rows, and edits with which tests and
benchmarks inject duplicates of known similarity (there is no labelled near-duplicate corpus).

Used by `tests/test_dedup*.py`, `benchmarks/dedup_*.py` and `benchmarks/generate_documents.py`;
never by the job itself.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

from curation.dedup.exact import normalize_text


def doc_id(source: str, key: str) -> str:
    return hashlib.sha1(f"{source}\x00{key}".encode()).hexdigest()


def make_row(source: str, key: str, text: str, url: str | None = None,
             fetch_time: dt.datetime | None = None, input_file: str = "samples") -> dict:
    """One row of the `documents` schema (core/schema.py)."""
    from curation.extract.urls import canonicalize_url, domain_of
    return {
        "doc_id": doc_id(source, key), "source": source, "url": url,
        "url_canonical": canonicalize_url(url) if url else None,
        "domain": domain_of(url) if url else None, "fetch_time": fetch_time,
        "warc_record_id": None, "title": None, "text": text,
        "content_hash": hashlib.sha1(normalize_text(text).encode()).hexdigest(),
        "n_chars": len(text), "n_words": len(text.split()), "n_bytes_raw": len(text.encode()),
        "input_file": input_file, "input_offset": None, "html_lang": None, "extraction": None,
    }


def gsm8k(corpus: Path, limit: int | None = None) -> list[str]:
    out = []
    with open(Path(corpus) / "math" / "gsm8k" / "train.jsonl") as f:
        for line in f:
            r = json.loads(line)
            out.append(r["question"] + "\n" + r["answer"])
            if limit and len(out) >= limit:
                break
    return out


def math_solutions(corpus: Path, limit: int | None = None) -> list[str]:
    out = []
    with open(Path(corpus) / "math" / "math-hendrycks" / "math" / "test.jsonl") as f:
        for line in f:
            r = json.loads(line)
            out.append(r["problem"] + "\n" + r["solution"])
            if limit and len(out) >= limit:
                break
    return out


def code_files(corpus: Path, limit: int | None = None) -> list[str]:
    out = []
    with gzip.open(Path(corpus) / "code" / "thealgorithms.jsonl.gz", "rt") as f:
        for line in f:
            out.append(json.loads(line)["content"])
            if limit and len(out) >= limit:
                break
    return out


def web_pages(corpus: Path, limit: int = 10, min_chars: int = 800) -> list[tuple[str, str]]:
    """(url, main text) of trafilatura-eval pages, extracted with trafilatura."""
    import trafilatura
    base = Path(corpus) / "extraction" / "trafilatura-eval"
    meta = json.loads((base / "evaldata.json").read_text())
    out = []
    for url, info in sorted(meta.items()):
        if not url.startswith(("http://", "https://")):
            continue
        p = base / "eval" / (info["file"] + ".gz")
        if not p.is_file():
            p = base / "cache" / (info["file"] + ".gz")
        if not p.is_file():
            continue
        html = gzip.open(p, "rb").read().decode("utf-8", "replace")
        text = trafilatura.extract(html) or ""
        if len(text) >= min_chars:
            out.append((url, text))
        if len(out) >= limit:
            break
    return out


def edit_words(text: str, rate: float, rng: np.random.Generator) -> str:
    """Substitute, delete or insert words at about `rate` of the positions (keeps the lines)."""
    out_lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        new = []
        for w in words:
            u = rng.random()
            if u < rate / 3:
                new.append(f"w{rng.integers(1 << 30):x}")          # substitution
            elif u < 2 * rate / 3:
                continue                                             # deletion
            elif u < rate:
                new.extend([w, f"i{rng.integers(1 << 30):x}"])     # insertion
            else:
                new.append(w)
        out_lines.append(" ".join(new))
    return "\n".join(out_lines)


BOILERPLATE_HEAD = ["Home | News | Sport | Contact", "Skip to main content"]
BOILERPLATE_TAIL = ["Share this article on Facebook, Twitter and LinkedIn",
                    "Copyright (c) 2024 Example Media Ltd. All rights reserved."]


def with_boilerplate(text: str, rng: np.random.Generator) -> str:
    """`text` framed by site boilerplate (the year varies; line dedup normalises digits)."""
    tail = [BOILERPLATE_TAIL[0], BOILERPLATE_TAIL[1].replace("2024", str(rng.integers(2000, 2030)))]
    return "\n".join(BOILERPLATE_HEAD + [text] + tail)
