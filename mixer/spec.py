"""Mix specifications: one YAML file per training stage, merged over `DEFAULTS` and validated.

A spec names the total tokens, the sequence length, the seed, category weights (shares of tokens),
and the sources of each category: a Delta table (or the job's `--input`), a SQL filter, a weight
within the category, an epoch cap and a down-sampling factor. Unknown keys are errors.

`kind: eval_candidate` builds Llama 3's candidate-evaluation anneal: `candidate.share` (default 30%)
of tokens from `candidate.sources`, the rest from the base mix (`base`, a spec file relative to this
one, or this spec's own `categories`/`sources`) with its category weights scaled down to 70%.
"""
from __future__ import annotations

import copy
from fractions import Fraction
from pathlib import Path

from core.config import ConfigError, Rule, check_schema, config_hash, load_yaml, merge

CATEGORIES = ("general", "math", "code", "multilingual")

DEFAULTS = {
    "stage": "pretrain",
    "kind": "mix",                       # mix | eval_candidate
    "input": None,                       # default Delta table for sources naming none (--input wins)                       # mix | eval_candidate
    "total_tokens": 4_194_304,           # rounded down to whole rows of seq_len
    "seq_len": 2048,
    "seed": 1234,
    "tokenizer": "cl100k_base+llama3",
    "max_doc_tokens": 65536,             # documents cut to this many tokens (0: no cap); counted
    "on_infeasible": "fail",             # fail | rescale (shrink the total to the largest feasible)
    "heldout_fraction": 0.01,            # share of documents (stable doc_id hash) held out per category
    "shard_rows": 16384,                 # rows per shard file (16384 x 2048 x 4 B = 128 MiB)
    "report_window_rows": 64,            # one global batch, in rows, for the windowed deviation
    "categories": {"general": 0.50, "math": 0.25, "code": 0.17, "multilingual": 0.08},
    "sources": [],
    "base": None,                        # eval_candidate: spec file of the default mix
    "candidate": {"share": 0.30, "sources": []},
}

SOURCE_DEFAULTS = {
    "name": None,            # unique, used in the order hash and the manifest
    "category": None,        # one of the spec's categories
    "table": None,           # Delta path; None -> the job's --input, else the spec's `input`
    "filter": None,          # SQL predicate, e.g. "stream = 'math' AND quality >= 0.5"
    "weight": 1.0,           # share of its category's tokens (normalised within the category)
    "max_epochs": 4.0,       # repetition cap; beyond it the build fails (or rescales)
    "downsample": 1.0,       # keep this fraction of documents (stable hash of seed, source, doc_id)
    "text_column": "text",
    "id_column": "doc_id",
}


class SpecError(ConfigError):
    pass


# every top-level key's type and range (core/validate.py); sources are checked by `_source`
SCHEMA = {
    "stage": Rule(str, nonempty=True),
    "kind": Rule(choices=("mix", "eval_candidate")),
    "input": Rule(str, null=True),
    "total_tokens": Rule(int, ge=1),
    "seq_len": Rule(int, ge=2),
    "seed": Rule(int, ge=0),
    "tokenizer": Rule(str, nonempty=True),
    "max_doc_tokens": Rule(int, ge=0),
    "on_infeasible": Rule(choices=("fail", "rescale")),
    "heldout_fraction": Rule(float, ge=0, lt=1),
    "shard_rows": Rule(int, ge=1),
    "report_window_rows": Rule(int, ge=1),
    "sources": Rule(list),
    "base": Rule(str, null=True),
}


def _source(raw: dict, where: str) -> dict:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a source must be a mapping, got {raw!r}")
    try:
        s = merge(SOURCE_DEFAULTS, raw, where=f"{where}.")
    except ConfigError as e:
        raise SpecError(str(e)) from None
    if not s["name"] or not isinstance(s["name"], str):
        raise SpecError(f"{where}: every source needs a `name`")
    for k in ("weight", "max_epochs", "downsample"):
        try:
            s[k] = float(s[k])
        except (TypeError, ValueError):
            raise SpecError(f"{where} ({s['name']}): {k} must be a number, got {s[k]!r}") from None
    if s["weight"] < 0:
        raise SpecError(f"source {s['name']!r}: weight must be >= 0")
    if s["max_epochs"] <= 0:
        raise SpecError(f"source {s['name']!r}: max_epochs must be > 0")
    if not 0 < s["downsample"] <= 1:
        raise SpecError(f"source {s['name']!r}: downsample must be in (0, 1]")
    return s


def load_spec(spec: str | Path | dict | None, base_dir: str | Path | None = None) -> dict:
    """A validated, fully resolved spec from a YAML path or a dict (overrides of DEFAULTS)."""
    if isinstance(spec, (str, Path)):
        base_dir = Path(spec).resolve().parent
        raw = load_yaml(spec)
    else:
        raw = copy.deepcopy(spec or {})
    cats = raw.pop("categories", None)
    cand = raw.pop("candidate", None)
    try:
        s = merge({k: v for k, v in DEFAULTS.items() if k not in ("categories", "candidate")}, raw)
    except SpecError:
        raise
    except ConfigError as e:
        raise SpecError(str(e)) from None
    s["categories"] = dict(cats) if cats is not None else dict(DEFAULTS["categories"])
    s["candidate"] = merge(DEFAULTS["candidate"], cand or {}, where="candidate.")
    try:
        check_schema(s, SCHEMA)
    except ConfigError as e:
        raise SpecError(str(e)) from None
    if s["total_tokens"] < s["seq_len"]:
        raise SpecError(f"total_tokens ({s['total_tokens']}) is less than one row of seq_len "
                        f"({s['seq_len']})")

    if s["kind"] == "eval_candidate":
        if s["base"]:
            bpath = Path(s["base"])
            if not bpath.is_absolute():
                bpath = Path(base_dir or ".") / bpath
            base = load_spec(bpath)
            base_cats, base_sources = base["categories"], base["sources"]
        else:
            base_cats, base_sources = s["categories"], s["sources"]
        share = Fraction(str(s["candidate"]["share"]))
        if not 0 < share < 1:
            raise SpecError("candidate.share must be in (0, 1)")
        if not s["candidate"]["sources"]:
            raise SpecError("eval_candidate: candidate.sources is empty")
        tot = sum(Fraction(str(w)) for w in base_cats.values())
        cats = {c: float((1 - share) * Fraction(str(w)) / tot) for c, w in base_cats.items()}
        if "candidate" in cats:
            raise SpecError("eval_candidate: the base mix may not have a 'candidate' category")
        cats["candidate"] = float(share)
        srcs = list(copy.deepcopy(base_sources))
        for c in s["candidate"]["sources"]:
            c = dict(c)
            c.setdefault("category", "candidate")
            srcs.append(c)
        s["categories"], s["sources"] = cats, srcs
    elif s["kind"] != "mix":
        raise SpecError(f"kind must be 'mix' or 'eval_candidate', got {s['kind']!r}")

    if not s["categories"]:
        raise SpecError("categories is empty")
    for c, w in s["categories"].items():
        if not isinstance(w, (int, float)) or w < 0:
            raise SpecError(f"category {c!r}: weight must be a number >= 0, got {w!r}")
    if sum(s["categories"].values()) <= 0:
        raise SpecError("category weights sum to 0")
    s["sources"] = [_source(r, f"sources[{i}]") for i, r in enumerate(s["sources"])]
    names = [x["name"] for x in s["sources"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"duplicate source names: {dup}")
    for x in s["sources"]:
        if x["category"] not in s["categories"]:
            raise SpecError(f"source {x['name']!r}: category {x['category']!r} is not one of "
                            f"{sorted(s['categories'])}")
    for c, w in s["categories"].items():
        ws = sum(x["weight"] for x in s["sources"] if x["category"] == c)
        if w > 0 and ws <= 0:
            raise SpecError(f"category {c!r} has weight {w} but no source with weight > 0")
    return s


def spec_hash(spec: dict) -> str:
    """Hash of the resolved spec (what determines the stream, besides the data versions)."""
    return config_hash(spec)


def source_shares(spec: dict) -> list[Fraction]:
    """Each source's exact share of all tokens: category share x weight within the category."""
    cats = {c: Fraction(str(w)) for c, w in spec["categories"].items()}
    ctot = sum(cats.values())
    out = []
    for x in spec["sources"]:
        within = sum(Fraction(str(y["weight"])) for y in spec["sources"]
                     if y["category"] == x["category"])
        w = Fraction(str(x["weight"]))
        out.append(cats[x["category"]] / ctot * (w / within) if within else Fraction(0))
    return out
