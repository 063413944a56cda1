"""Post-training data as tables: converters, per-record curation, the tables' schema, and the
trainer's reader (Delta without Spark, Parquet, JSONL).

    spark-submit jobs/posttrain_data.py --output out/posttrain [--corpus ../shared/corpus] [--user FILE.jsonl]

The job (pipeline/posttrain_data.py: the Spark wiring) converts the sources with the functions here,
curates them (``check_record`` per record, ``exact_key`` and MinHash near dedup of ``near_text``,
``Contamination``) and writes one Delta table per table and split; the trainer's steps read them
with ``read_records`` (a Delta table's current files found through its log by
``core.tables.read_delta``: the trainer never imports Spark). Schemas in ``schemas()``, documented
in docs/stages/posttrain.md:

- ``preferences``: ``id, source, split, prompt (messages), responses (list, best first),
  pii_redactions``. From HH-RLHF (``posttrain/hh-rlhf/harmless-base/test.jsonl.gz``): both sides
  are whole dialogues ``\\n\\nHuman: ...\\n\\nAssistant: ...`` that differ in the last assistant
  turn; the shared turns become the prompt, the two last turns the responses (chosen first).
  Split into ``train`` and ``heldout`` by a hash of the prompt (deterministic; one prompt never
  lands in both).
- ``prompts``: ``id, source, split, messages, answer, checker, reference``: maths prompts with
  checkable answers: GSM8K train (checker ``number``, the number after ``####``) and the 4,500-
  problem MATH training split (``evalsets.math_split.math_train_split``: MATH test minus MATH500;
  checker ``math``, the last ``\\boxed{}``). The evaluation splits (GSM8K test, MATH500) are never
  read here.
- ``sft``: ``id, source, messages, score``: dialogues ending with an assistant reply.

User JSONL: one record per line, any of ``{"messages": [...]}`` (SFT), ``{"prompt", "response"}``
(SFT), ``{"prompt", "chosen", "rejected"}`` or ``{"prompt", "responses": [...]}`` (preferences),
``{"prompt", "answer", "checker"}`` (prompts); ``prompt`` is a string (one user message) or a
message list; ``split`` (``train`` | ``heldout``) optional. A record that fits none is kept out
with its line number and reason.

Curation, the same kinds of step as pre-training, reusing the pre-training functions:
1. decontamination: a record sharing a 13-word n-gram with any registered evaluation set
   (``configs/evalsets.yaml``; the decontamination stage's normalisation and hashing,
   ``curation/decontaminate/ngrams.py``) is dropped;
2. format: roles and order (chat_format.check_dialog; user/assistant alternate after an optional
   system message; an SFT dialogue ends with the assistant), non-empty messages, distinct
   responses, a known split; every dialogue renders and parses back unchanged
   (chat_format.encode_dialog / parse_dialog);
3. PII: emails, phone numbers, IPs, ... redacted with ``curation.filters.pii`` (counted per record);
4. quality: Gopher repetition rules (``curation.filters.repetition``, the thresholds of
   ``curation/filters/defaults.py``) on every reply of at least 30 words;
5. length: at most ``max_tokens`` tokens rendered;
6. exact dedup: ``curation.dedup.exact.normalized_hash`` of the record's prompt and replies;
7. near dedup of prompts: MinHash + LSH (``curation.dedup``; in the job, the dedup stage's own
   distributed edges, exact-Jaccard verification and connected components).
``curate`` runs 2-7 in process (tests, benchmarks); the job records every drop with its reason.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

def schemas():
    """The Arrow schema of every table (the Delta tables have the same columns and types)."""
    import pyarrow as pa
    msg = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return {
        "preferences": pa.schema([("id", pa.string()), ("source", pa.string()), ("split", pa.string()),
                                  ("prompt", msg), ("responses", pa.list_(pa.string())),
                                  ("pii_redactions", pa.int32())]),
        "prompts": pa.schema([("id", pa.string()), ("source", pa.string()), ("split", pa.string()),
                              ("messages", msg), ("answer", pa.string()), ("checker", pa.string()),
                              ("reference", pa.string())]),
        "sft": pa.schema([("id", pa.string()), ("source", pa.string()), ("messages", msg),
                          ("score", pa.float64())]),
    }


class DataError(ValueError):
    pass


SPLITS = ("train", "heldout")
KINDS = ("preferences", "prompts", "sft")


# ---- reading and writing ------------------------------------------------------------------------
def read_records(path: str | Path) -> list[dict]:
    """Records of a Delta table (the latest version, read from its log without Spark by
    ``core.tables.read_delta``; ordered by ``id``), a Parquet file/directory or a JSONL (.gz) file."""
    from core.tables import has_delta_log, is_delta_table
    p = str(path)
    if has_delta_log(p) or ("://" in p and is_delta_table(None, p)):
        from core.tables import read_delta
        t = read_delta(p)
        recs = t.to_pylist()
        return sorted(recs, key=lambda r: str(r["id"])) if "id" in t.column_names else recs
    p = Path(path)
    if p.suffix == ".parquet" or p.is_dir():
        import pyarrow.parquet as pq
        return pq.read_table(p).to_pylist()
    opener = gzip.open if p.suffix == ".gz" else open
    out = []
    with opener(p, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{p}:{n}: not JSON ({e})") from None
    return out


def write_table(path: str | Path, records: list[dict], kind: str) -> Path:
    """Write ``records`` as Parquet with the ``kind`` schema (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = schemas()[kind]
    rows = [{f.name: r.get(f.name) for f in schema} for r in records]
    table = pa.Table.from_pylist(rows, schema=schema)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(p)
    return p


def _id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def split_of(prompt_text: str, heldout_share: float, salt: str = "posttrain") -> str:
    """``heldout`` for a deterministic share of prompts (by hash), else ``train``."""
    h = int(hashlib.sha256(f"{salt}:{prompt_text}".encode("utf-8")).hexdigest()[:8], 16)
    return "heldout" if h / 2**32 < heldout_share else "train"


def dialog_text(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


# ---- converters ---------------------------------------------------------------------------------
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def parse_hh(text: str) -> list[dict]:
    """HH-RLHF's ``\\n\\nHuman: ...\\n\\nAssistant: ...`` as chat messages (user/assistant)."""
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise DataError(f"text before the first turn: {parts[0][:60]!r}")
    out = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        out.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    if not out:
        raise DataError("no Human/Assistant turn")
    return out


def convert_hh(path: str | Path, heldout_share: float = 0.1, source: str = "hh-rlhf/harmless-base",
               rejects: list | None = None) -> tuple[list[dict], dict]:
    """Preference records from an HH-RLHF file; returns (records, rejected reasons counts). With
    ``rejects``, each line left out is appended as (``<file>:<line>``, reason, the line's JSON)."""
    recs, reasons = [], {}

    def bad(n, why, r):
        reasons[why] = reasons.get(why, 0) + 1
        if rejects is not None:
            rejects.append((f"{path}:{n + 1}", f"convert: {why}", json.dumps(r, ensure_ascii=False)))

    for n, r in enumerate(read_records(path)):
        try:
            c, j = parse_hh(r["chosen"]), parse_hh(r["rejected"])
        except (KeyError, TypeError, DataError) as e:
            bad(n, f"unparsable: {type(e).__name__}", r)
            continue
        if c[:-1] != j[:-1] or c[-1]["role"] != "assistant" or j[-1]["role"] != "assistant":
            bad(n, "chosen and rejected differ before the last assistant turn", r)
            continue
        prompt = c[:-1]
        recs.append({"id": _id(source, str(n)), "source": source,
                     "split": split_of(dialog_text(prompt), heldout_share),
                     "prompt": prompt, "responses": [c[-1]["content"], j[-1]["content"]]})
    return recs, reasons


def convert_gsm8k(path: str | Path, source: str = "gsm8k/train") -> list[dict]:
    from evalsets.items import gsm8k_final_answer, strip_gsm8k_calculator
    out = []
    for n, r in enumerate(read_records(path)):
        out.append({"id": _id(source, str(n)), "source": source, "split": "train",
                    "messages": [{"role": "user", "content": r["question"].strip()}],
                    "answer": gsm8k_final_answer(r["answer"]), "checker": "number",
                    "reference": strip_gsm8k_calculator(r["answer"]).strip()})
    return out


def convert_math_train(corpus: str | Path | None = None, source: str = "math/train4500") -> list[dict]:
    from evalsets.math_split import math_train_split
    out = []
    for it in math_train_split(Path(corpus) if corpus else None):
        out.append({"id": _id(source, it.item_id), "source": source, "split": "train",
                    "messages": [{"role": "user", "content": it.gen.prompt.strip()}],
                    "answer": it.gen.answer, "checker": "math", "reference": it.gen.reference})
    return out


def _as_messages(prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return [dict(m) for m in prompt]
    raise DataError("prompt must be a string or a list of messages")


def convert_user_jsonl(path: str | Path, heldout_share: float = 0.1, source: str = "user") -> tuple[dict, dict]:
    """{"sft": [...], "preferences": [...], "prompts": [...]} and reasons (line: reason) for the rest."""
    from trainer.chat_format import ChatFormatError, check_dialog
    tables: dict = {"sft": [], "preferences": [], "prompts": []}
    bad: dict = {}
    for n, r in enumerate(read_records(path), 1):
        try:
            if not isinstance(r, dict):
                raise DataError("not a JSON object")
            rid = str(r.get("id", _id(source, str(n))))
            if "messages" in r and "prompt" not in r:
                check_dialog(r["messages"])
                tables["sft"].append({"id": rid, "source": source, "messages": r["messages"],
                                      "score": r.get("score")})
            elif "prompt" in r and ("chosen" in r or "responses" in r):
                msgs = _as_messages(r["prompt"])
                resp = r["responses"] if "responses" in r else [r["chosen"], r["rejected"]]
                if len(resp) < 2 or not all(isinstance(x, str) for x in resp):
                    raise DataError("responses must be >= 2 strings, best first")
                check_dialog(msgs)
                tables["preferences"].append({"id": rid, "source": source,
                                              "split": r.get("split") or split_of(dialog_text(msgs), heldout_share),
                                              "prompt": msgs, "responses": list(resp)})
            elif "prompt" in r and "response" in r:
                msgs = _as_messages(r["prompt"]) + [{"role": "assistant", "content": r["response"]}]
                check_dialog(msgs)
                tables["sft"].append({"id": rid, "source": source, "messages": msgs, "score": r.get("score")})
            elif "prompt" in r and "answer" in r:
                msgs = _as_messages(r["prompt"])
                check_dialog(msgs)
                from trainer.checkers import check
                kind = r.get("checker", "exact")
                check(kind, str(r["answer"]), "")       # raises on an unknown checker
                tables["prompts"].append({"id": rid, "source": source, "split": r.get("split", "train"),
                                          "messages": msgs, "answer": str(r["answer"]), "checker": kind,
                                          "reference": r.get("reference")})
            else:
                raise DataError("fits no table (messages | prompt+response | prompt+chosen+rejected | "
                                "prompt+responses | prompt+answer)")
        except (DataError, ChatFormatError, ValueError, TypeError, KeyError) as e:
            bad[f"line {n}"] = f"{type(e).__name__}: {e}"
    return tables, bad


# ---- curation -----------------------------------------------------------------------------------
def _order_ok(messages: list[dict]) -> bool:
    roles = [m["role"] for m in messages if m["role"] != "system"]
    roles = [r if r != "ipython" else "user" for r in roles]
    return all(a != b for a, b in zip(roles, roles[1:])) and (not roles or roles[0] == "user")


def _repetitive(text: str) -> str | None:
    from curation.filters.defaults import DEFAULTS as D
    from curation.filters.repetition import line_signals, ngram_signals
    from curation.filters.text import tokens_of, words_of
    if len(words_of(text)) < 30:
        return None
    sig = {**line_signals(text), **ngram_signals(tokens_of(text), len(text))}
    g = D["repetition"]
    for k, v in sig.items():
        lim = g.get(f"max_{k}")
        if lim is not None and v > lim:
            return k
    return None


def _texts(rec: dict, kind: str) -> tuple[list[dict], list[str]]:
    """(prompt messages, replies) of a record of any table."""
    if kind == "preferences":
        return rec["prompt"], list(rec["responses"])
    if kind == "prompts":
        return rec["messages"], []
    return rec["messages"][:-1], [rec["messages"][-1]["content"]]


def _dialogues(rec: dict, kind: str) -> list[list[dict]]:
    """The whole dialogues a record stands for: the prompt with each reply (preferences), the
    prompt (prompts), the dialogue (sft)."""
    prompt, replies = _texts(rec, kind)
    if kind == "prompts":
        return [list(prompt)]
    return [list(prompt) + [{"role": "assistant", "content": c}] for c in replies]


def check_record(r: dict, kind: str, tok=None, max_tokens: int = 2048) -> tuple[dict | None, str | None]:
    """The per-record curation steps of a record of table ``kind``: format, PII redaction, quality,
    and (with ``tok``) the chat-format round trip and the length. Returns (a curated copy, None) or
    (None, the reason it is dropped). The input is not changed."""
    from curation.filters.pii import find_pii, redact
    from trainer.chat_format import ChatFormatError, check_dialog, encode_dialog, parse_dialog
    r = json.loads(json.dumps(r))      # a deep copy; the input stays as it was
    try:
        prompt, replies = _texts(r, kind)
        check_dialog(list(prompt) + ([{"role": "assistant", "content": "x"}] if kind != "sft" else []))
    except (ChatFormatError, KeyError, IndexError, TypeError):
        return None, "format: bad messages"
    if kind == "sft" and r["messages"][-1]["role"] != "assistant":
        return None, "format: sft dialogue does not end with an assistant reply"
    full = r["messages"] if kind == "sft" else list(prompt) + [{"role": "assistant", "content": ""}]
    if not _order_ok(full):
        return None, "format: roles do not alternate user/assistant"
    if any(not isinstance(c, str) or not c.strip() for c in replies) or \
            any(not m["content"].strip() for m in prompt):
        return None, "format: empty message"
    if kind == "preferences" and (len(replies) < 2 or len(set(replies)) < len(replies)):
        return None, "format: identical responses" if len(replies) >= 2 else "format: fewer than 2 responses"
    if kind != "sft" and r.get("split", "train") not in SPLITS:
        return None, f"format: split must be one of {SPLITS}"
    # PII: redact in every message and reply
    n_pii = 0
    for m in prompt:
        spans = find_pii(m["content"])
        n_pii += len(spans)
        m["content"] = redact(m["content"], spans) if spans else m["content"]
    new_replies = []
    for c in replies:
        spans = find_pii(c)
        n_pii += len(spans)
        new_replies.append(redact(c, spans) if spans else c)
    if kind == "preferences":
        r["responses"] = new_replies
        r["pii_redactions"] = n_pii
    elif kind == "sft":
        r["messages"][-1]["content"] = new_replies[0]
    rep = next((x for x in map(_repetitive, new_replies) if x), None)
    if rep:
        return None, f"quality: repetitive reply ({rep})"
    if tok is not None:
        longest = 0
        for d in _dialogues(r, kind):
            ids = encode_dialog(tok, d).ids
            back = [{"role": m["role"], "content": m["content"]} for m in parse_dialog(tok, ids)]
            if back != [{"role": m["role"], "content": m["content"]} for m in d]:
                return None, "format: does not round-trip through the chat format"
            longest = max(longest, len(ids))
        if longest > max_tokens:
            return None, f"length: more than {max_tokens} tokens"
    return r, None


def exact_key(r: dict, kind: str) -> str:
    """The exact-dedup key: ``normalized_hash`` of the record's prompt and replies."""
    from curation.dedup.exact import normalized_hash
    prompt, replies = _texts(r, kind)
    return normalized_hash(dialog_text(prompt) + "\n" + "\n".join(replies))


def near_text(r: dict, kind: str) -> str:
    """The text near dedup compares: the prompt's messages."""
    return dialog_text(_texts(r, kind)[0])


def curate(records: list[dict], kind: str, tok=None, max_tokens: int = 2048, near_threshold: float = 0.8
           ) -> tuple[list[dict], dict]:
    """Curated copies of ``records`` (a table of ``kind``) and the count dropped per reason, in
    process (the Spark job, pipeline/posttrain_data.py, runs the same per-record steps and the
    dedup stage's distributed near dedup)."""
    import numpy as np

    from curation.dedup.lsh import band_hashes
    from curation.dedup.minhash import estimate_jaccard, signatures
    reasons: dict[str, int] = {}

    def drop(why):
        reasons[why] = reasons.get(why, 0) + 1

    kept = []
    for r in records:
        c, why = check_record(r, kind, tok, max_tokens)
        if why:
            drop(why)
        else:
            kept.append(c)
    # exact dedup on the whole record, then near dedup on the prompt
    seen, exact = set(), []
    for r in kept:
        key = exact_key(r, kind)
        if key in seen:
            drop("dedup: exact duplicate")
            continue
        seen.add(key)
        exact.append(r)
    texts = [near_text(r, kind) for r in exact]
    if len(texts) > 1:
        sig, has = signatures(texts, num_perm=112, ngram=5)
        bands = band_hashes(sig, 14, 8)
        first: dict[tuple[int, int], int] = {}
        dup = np.zeros(len(texts), dtype=bool)
        for i in range(len(texts)):
            if not has[i]:
                continue
            for b in range(bands.shape[1]):
                j = first.setdefault((b, int(bands[i, b])), i)
                if j != i and not dup[j] and estimate_jaccard(sig[i], sig[j]) >= near_threshold:
                    dup[i] = True
                    break
        out = []
        for i, r in enumerate(exact):
            if dup[i]:
                drop("dedup: near duplicate prompt")
            else:
                out.append(r)
        exact = out
    return exact, reasons


class Contamination:
    """The n-gram index of every registered evaluation set (configs/evalsets.yaml: GSM8K test,
    MATH500, PIQA, ...; ``only`` limits the sets), with the decontamination stage's own
    normalisation and hashing (curation/decontaminate/ngrams.py). ``members`` (sorted int64) and
    ``first`` (hash -> benchmark) are plain data, so a Spark job can broadcast them."""

    def __init__(self, corpus: str | Path | None = None, n: int = 13, only: list[str] | None = None,
                 members=None, first: dict | None = None):
        self.n = n
        if members is None:
            from curation.decontaminate import ngrams
            from curation.decontaminate.stage import eval_items, resolve_config
            cfg = resolve_config({"ngram": n, **({"evalsets": {"only": list(only)}} if only else {})})
            index = ngrams.build_index(eval_items(cfg, corpus), n)
            members = index.distinct_hashes()
            first = {}
            for h, b in zip(index.hashes.tolist(), index.benchmark.tolist()):
                first.setdefault(h, b)
        self.members, self.first = members, first
        self._hasher = None

    def benchmark_of(self, r: dict, kind: str) -> str | None:
        """The evaluation set a record shares an n-gram with (its prompt, replies, reference
        solution), or None."""
        import numpy as np

        from curation.decontaminate import ngrams
        if self._hasher is None:
            self._hasher = ngrams.WordHasher()
        prompt, replies = _texts(r, kind)
        text = dialog_text(prompt) + "\n" + "\n".join(replies)
        if kind == "prompts" and r.get("reference"):
            text += "\n" + r["reference"]
        _, hits = ngrams.member_positions(text, self.n, self.members, self._hasher)
        return self.first[int(np.asarray(hits)[0])] if len(hits) else None


def decontaminate(tables: dict[str, list[dict]], corpus: str | Path | None = None, n: int = 13,
                  only: list[str] | None = None) -> tuple[dict[str, list[dict]], dict]:
    """Drop every record that shares an ``n``-word n-gram with an item of a registered evaluation
    set (``Contamination``). Returns the kept tables and the count dropped per (table, benchmark)."""
    index = Contamination(corpus, n, only)
    out, dropped = {}, {}
    for kind, recs in tables.items():
        keep = []
        for r in recs:
            b = index.benchmark_of(r, kind)
            if b:
                key = f"{kind}: {b}"
                dropped[key] = dropped.get(key, 0) + 1
            else:
                keep.append(r)
        out[kind] = keep
    return out, dropped


# ---- the sources ---------------------------------------------------------------------------------
HH_FILE = "posttrain/hh-rlhf/harmless-base/test.jsonl.gz"


def convert_sources(corpus: str | Path | None = None, user: list[str] | None = None,
                    heldout_share: float = 0.1, sources=("hh", "gsm8k", "math"),
                    rejects: list | None = None) -> dict[str, list[dict]]:
    """Every source converted: {"preferences": [...], "prompts": [...], "sft": [...]}. A record
    that cannot be converted is appended to ``rejects`` as (key, reason, example): key
    ``<file>:<line>``."""
    from core.paths import corpus_dir
    corpus = Path(corpus) if corpus else corpus_dir()
    rejects = rejects if rejects is not None else []
    tables: dict[str, list[dict]] = {k: [] for k in KINDS}
    if "hh" in sources:
        recs, _ = convert_hh(corpus / HH_FILE, heldout_share, rejects=rejects)
        tables["preferences"] += recs
    if "gsm8k" in sources:
        tables["prompts"] += convert_gsm8k(corpus / "math/gsm8k/train.jsonl")
    if "math" in sources:
        tables["prompts"] += convert_math_train(corpus)
    for u in user or []:
        t, bad = convert_user_jsonl(u, heldout_share, source=f"user/{Path(u).name}")
        for k, v in t.items():
            tables[k] += v
        for line, why in bad.items():
            rejects.append((f"{u}:{line.split()[-1]}", f"convert: {why.split(':')[0]}", why))
    return tables
