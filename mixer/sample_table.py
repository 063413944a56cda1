"""A small table shaped like the scored table (doc_id, text, stream, quality, source), built
straight from the sample corpus, for tests, benchmarks and demos of the mixer when the real
scored table (jobs/score.py) is not at hand.

GSM8K and MATH -> math, TheAlgorithms -> code, Tatoeba sentences (grouped per language) and UDHR
translations -> multilingual, readability article pages (tags stripped) -> general. `quality` is a
stable pseudo-score from the doc_id hash: a placeholder with the right range, not a real classifier.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
from pathlib import Path

from mixer.order import unit_interval

_TAG = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)


def _strip(h: str) -> str:
    t = html.unescape(_TAG.sub(" ", h))
    return re.sub(r"[ \t]+", " ", re.sub(r"\s*\n\s*", "\n", t)).strip()


def _id(*parts) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()


def sample_documents(corpus: Path, per_stream: int | None = 200) -> list[dict]:
    """Up to `per_stream` documents per stream (None: all of them), in a fixed order."""
    corpus = Path(corpus)
    out: dict[str, list] = {"general": [], "math": [], "code": [], "multilingual": []}

    def add(stream, source, key, text):
        if per_stream is not None and len(out[stream]) >= per_stream:
            return False
        if text and text.strip():
            d = _id(source, key)
            out[stream].append({"doc_id": d, "text": text, "stream": stream, "source": source,
                                "quality": round(unit_interval("quality", d), 4)})
        return True

    for i, line in enumerate(open(corpus / "math/gsm8k/train.jsonl", encoding="utf-8")):
        r = json.loads(line)
        if not add("math", "gsm8k", i, f"Question: {r['question']}\nAnswer: {r['answer']}"):
            break
    for i, line in enumerate(open(corpus / "math/math-hendrycks/math/test.jsonl",
                                  encoding="utf-8")):
        r = json.loads(line)
        if not add("math", "math", i, f"Problem: {r['problem']}\nSolution: {r['solution']}"):
            break
    with gzip.open(corpus / "code/thealgorithms.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if not add("code", "thealgorithms", r["path"], r["content"]):
                break
    tdir = corpus / "multilingual/tatoeba"
    for p in sorted(tdir.glob("tatoeba.*-eng.*")):
        lang = p.name.split(".")[-1]
        if lang == "eng":
            continue
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
        for j in range(0, len(lines), 25):
            if not add("multilingual", "tatoeba", f"{p.name}:{j}", "\n".join(lines[j:j + 25])):
                break
        if per_stream is not None and len(out["multilingual"]) >= per_stream:
            break
    for p in sorted((corpus / "multilingual/udhr/declaration").glob("*.html*")):
        raw = gzip.open(p, "rt", encoding="utf-8", errors="replace").read() \
            if p.suffix == ".gz" else p.read_text(encoding="utf-8", errors="replace")
        if not add("multilingual", "udhr", p.name, _strip(raw)):
            break
    for p in sorted((corpus / "extraction/readability/pages").glob("*/expected.html.gz")):
        raw = gzip.open(p, "rt", encoding="utf-8", errors="replace").read()
        if not add("general", "readability", p.parent.name, _strip(raw)):
            break
    for p in sorted((corpus / "extraction/trafilatura-eval").glob("eval/*.html.gz")):
        raw = gzip.open(p, "rt", encoding="utf-8", errors="replace").read()
        if not add("general", "trafilatura-eval", p.name, _strip(raw)):
            break
    return [d for k in ("general", "math", "code", "multilingual") for d in out[k]]


def write_sample_table(spark, corpus: Path, path: str, per_stream: int | None = 200,
                       partitions: int = 2, copies: int = 1) -> int:
    """Write the sample documents as a Delta table at `path`; `copies` > 1 repeats every
    document under new doc_ids (for throughput benchmarks). Returns the number of rows."""
    import pandas as pd
    from core.tables import write_table
    docs = sample_documents(corpus, per_stream)
    if copies > 1:
        docs = [{**d, "doc_id": _id(d["doc_id"], k) if k else d["doc_id"]}
                for k in range(copies) for d in docs]
    pdf = pd.DataFrame(docs, columns=["doc_id", "text", "stream", "quality", "source"])
    df = spark.createDataFrame(pdf, "doc_id string, text string, stream string, quality double, "
                                    "source string").repartition(partitions)
    write_table(df, path)
    return len(pdf)
