"""Train the quality and domain classifiers: `python -m classifiers.train quality|domain ...`.

Default models, built from the sample corpus by a recipe (classifiers/recipes.py):

    python -m classifiers.train quality --recipe default --out models/quality
    python -m classifiers.train domain  --recipe default --out models/domain

Your own labelled text (JSONL files with a `text` field, or Delta tables / Parquet folders with a
`text` column):

    python -m classifiers.train quality --positives good.jsonl --negatives web.jsonl --out DIR
    python -m classifiers.train domain --data math=m.jsonl --data code=c.jsonl \\
        --data general=web_delta_table --out DIR

A stable hash of each example's group key (`--group-field`, default the text itself) holds out
`--heldout` of the data; the held-out metrics (quality: ROC-AUC, precision/recall at the chosen
threshold; domain: per-class precision/recall) are printed and saved in the model's metadata.json.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

from classifiers import recipes
from classifiers.evaluation import binary_at, per_class, roc_auc
from classifiers.fasttext_model import DEFAULT_HYPERPARAMETERS, DEFAULT_MAX_CHARS, FastTextModel, train_model
from classifiers.recipes import Example
from core.tables import has_delta_log

QUALITY_LABELS = ("hq", "lq")
DOMAIN_LABELS = ("general", "math", "code")
DEFAULT_QUALITY_THRESHOLD = 0.5


# ---------------------------------------------------------------- core (library) functions

def train_quality(examples: list[Example], out_dir: str | Path, heldout: float = recipes.HELDOUT_FRACTION,
                  threshold: float = DEFAULT_QUALITY_THRESHOLD, hyperparameters: dict | None = None,
                  max_chars: int = DEFAULT_MAX_CHARS, sources: dict | None = None) -> FastTextModel:
    """Train `hq` vs `lq`, evaluate on the held-out groups, save model + metadata."""
    bad = {e.label for e in examples} - set(QUALITY_LABELS)
    if bad:
        raise ValueError(f"quality labels must be {QUALITY_LABELS}, got {sorted(bad)}")
    train, held = recipes.split(examples, heldout)
    _need_both(train, QUALITY_LABELS, "training")
    model = train_model([(e.label, e.text) for e in train], out_dir, "quality", hyperparameters,
                        max_chars=max_chars, positive_label="hq")
    metrics: dict = {}
    if held:
        scores = model.positive_scores([e.text for e in held])
        y = [1 if e.label == "hq" else 0 for e in held]
        metrics = {"heldout_roc_auc": roc_auc(y, scores), "heldout_n": len(held),
                   "heldout_per_label": _count(held),
                   "at_threshold": binary_at(y, scores, threshold),
                   "by_source": _mean_by_source(held, scores)}
    return _finish(model, out_dir, metrics, threshold, train, held, heldout, sources)


def train_domain(examples: list[Example], out_dir: str | Path, heldout: float = recipes.HELDOUT_FRACTION,
                 hyperparameters: dict | None = None, max_chars: int = DEFAULT_MAX_CHARS,
                 sources: dict | None = None, crawl_check: list | None = None) -> FastTextModel:
    """Train a domain router (`general`, `math`, `code` or your own labels); per-class P/R held out."""
    train, held = recipes.split(examples, heldout)
    labels = sorted({e.label for e in examples})
    _need_both(train, labels, "training")
    model = train_model([(e.label, e.text) for e in train], out_dir, "domain", hyperparameters,
                        max_chars=max_chars)
    metrics: dict = {}
    if held:
        pred = [lab for lab, _ in model.predict([e.text for e in held])]
        metrics = {"heldout": per_class([e.label for e in held], pred, model.labels),
                   "heldout_n": len(held)}
    if crawl_check:
        got = model.predict([t for _, _, t in crawl_check])
        rows = [{"url": u, "expected": want, "predicted": lab, "score": round(s, 4)}
                for (u, want, _), (lab, s) in zip(crawl_check, got)]
        metrics["crawl_check"] = {"recognised": sum(r["expected"] == r["predicted"] for r in rows),
                                  "n": len(rows), "pages": rows}
    return _finish(model, out_dir, metrics, None, train, held, heldout, sources)


def _need_both(train: list[Example], labels, what: str) -> None:
    have = {e.label for e in train}
    missing = [lab for lab in labels if lab not in have]
    if missing:
        raise ValueError(f"no {what} examples for label(s) {missing}; give more data "
                         "or a smaller --heldout")


def _count(ex: list[Example]) -> dict:
    out: dict = {}
    for e in ex:
        out[e.label] = out.get(e.label, 0) + 1
    return out


def _mean_by_source(held: list[Example], scores) -> dict:
    acc: dict = {}
    for e, s in zip(held, scores):
        acc.setdefault(e.source, []).append(float(s))
    return {k: {"n": len(v), "mean_score": sum(v) / len(v)} for k, v in sorted(acc.items())}


def _finish(model: FastTextModel, out_dir, metrics, threshold, train, held, heldout, sources):
    """Rewrite metadata.json with metrics, split sizes and data sources (the model file is unchanged)."""
    from classifiers.fasttext_model import load_model
    from classifiers.metadata import write_metadata
    meta = dict(model.meta)
    meta["metrics"] = metrics
    meta["threshold"] = threshold
    td = dict(meta["training_data"])
    td.update({"n_heldout": len(held), "heldout_fraction": heldout,
               "heldout_fingerprint": __import__("classifiers.metadata", fromlist=["x"]).data_fingerprint(
                   [(e.label, e.text) for e in held]),
               "per_source": _count_sources(train + held), "sources": sources or {}})
    meta["training_data"] = td
    for k in ("model_sha256", "model_bytes", "created_at", "code_version"):
        meta.pop(k, None)
    write_metadata(out_dir, meta)
    return load_model(out_dir, kind=meta["kind"])


def _count_sources(ex: list[Example]) -> dict:
    out: dict = {}
    for e in ex:
        out[e.source] = out.get(e.source, 0) + 1
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- reading user data

def read_texts(path: str, text_field: str = "text", group_field: str | None = None,
               limit: int | None = None) -> list[tuple[str, str]]:
    """(group key, text) from a JSONL file (.jsonl / .jsonl.gz / .json), a folder of them, a Delta
    table or a Parquet file/folder. The group key is `group_field` when given, else sha1(text)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"training data {p} does not exist")
    rows: list[tuple[str, str]] = []

    def add(rec: dict, where: str) -> None:
        if text_field not in rec:
            raise ValueError(f"{where}: no {text_field!r} field (use --text-field)")
        t = rec[text_field]
        if not isinstance(t, str) or not t.strip():
            return
        g = str(rec.get(group_field)) if group_field and rec.get(group_field) is not None else \
            hashlib.sha1(t.encode("utf-8", "replace")).hexdigest()
        rows.append((g, t))

    if p.is_dir() and (has_delta_log(str(p)) or any(p.glob("*.parquet"))):
        rows = _read_table(p, text_field, group_field, limit)
    else:
        files = sorted(p.rglob("*.json*")) if p.is_dir() else [p]
        for f in files:
            if f.suffix == ".parquet":
                rows.extend(_read_table(f, text_field, group_field, limit))
                continue
            opener = gzip.open if f.suffix == ".gz" else open
            with opener(f, "rt", encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError as e:
                        raise ValueError(f"{f}:{n}: not JSON: {e}") from e
                    add(rec, f"{f}:{n}")
                    if limit and len(rows) >= limit:
                        return rows
    return rows[:limit] if limit else rows


def _read_table(p: Path, text_field: str, group_field: str | None, limit: int | None):
    """A Delta table or Parquet data through Spark (training itself happens on one machine)."""
    from core.spark import get_spark
    spark = get_spark("classifiers-train")
    fmt = "delta" if has_delta_log(str(p)) else "parquet"
    df = spark.read.format(fmt).load(str(p))
    if text_field not in df.columns:
        raise ValueError(f"{p}: no {text_field!r} column (use --text-field); columns: {df.columns}")
    cols = [text_field] + ([group_field] if group_field else [])
    df = df.select(*cols).where(f"{text_field} IS NOT NULL")
    if limit:
        df = df.limit(limit)
    out = []
    for r in df.toLocalIterator():
        t = r[0]
        if t and t.strip():
            g = str(r[1]) if group_field and r[1] is not None else hashlib.sha1(t.encode()).hexdigest()
            out.append((g, t))
    return out


def examples_from_files(labelled: list[tuple[str, str]], text_field: str, group_field: str | None,
                        limit: int | None) -> tuple[list[Example], dict]:
    ex: list[Example] = []
    sources: dict = {}
    for label, path in labelled:
        rows = read_texts(path, text_field, group_field, limit)
        if not rows:
            raise ValueError(f"{path}: no non-empty {text_field!r} values")
        sources.setdefault(label, []).append({"path": str(path), "n": len(rows)})
        ex += [Example(label, t, f"{label}:{g}", Path(path).name) for g, t in rows]
    return ex, sources


# ---------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m classifiers.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("quality", "domain"))
    p.add_argument("--out", required=True, help="model directory (model.bin + metadata.json)")
    p.add_argument("--recipe", choices=sorted(recipes.RECIPES["quality"]), default=None,
                   help="build the training set from the sample corpus")
    p.add_argument("--corpus", default=None, help="sample corpus folder (default: core.paths)")
    p.add_argument("--limit", type=int, default=None,
                   help="cap pages/examples per source (quick runs; default: all)")
    p.add_argument("--positives", nargs="+", default=[], help="quality: high-quality text files/tables")
    p.add_argument("--negatives", nargs="+", default=[], help="quality: low-quality text files/tables")
    p.add_argument("--data", action="append", default=[], metavar="LABEL=PATH",
                   help="domain: labelled text files/tables (repeat)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--group-field", default=None,
                   help="field keeping related examples on one side of the held-out split")
    p.add_argument("--heldout", type=float, default=recipes.HELDOUT_FRACTION)
    p.add_argument("--threshold", type=float, default=DEFAULT_QUALITY_THRESHOLD,
                   help="quality: the threshold whose precision/recall are reported and saved")
    p.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS)
    for k, v in DEFAULT_HYPERPARAMETERS.items():
        p.add_argument(f"--{k}", type=type(v), default=v, help="fastText hyper-parameter")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    hp = {k: getattr(args, k) for k in DEFAULT_HYPERPARAMETERS}
    t0 = time.time()
    corpus = Path(args.corpus) if args.corpus else None
    if args.recipe:
        if args.positives or args.negatives or args.data:
            print("error: --recipe and --positives/--negatives/--data are exclusive", file=sys.stderr)
            return 2
        print(f"building the {args.kind} training set from recipe {args.recipe!r} ...", file=sys.stderr)
        examples = recipes.RECIPES[args.kind][args.recipe](corpus, limit=args.limit)
        sources = {"recipe": f"{args.kind}/{args.recipe}", "limit": args.limit}
    elif args.kind == "quality":
        if not args.positives or not args.negatives:
            print("error: quality needs --recipe, or both --positives and --negatives", file=sys.stderr)
            return 2
        examples, sources = examples_from_files([("hq", x) for x in args.positives]
                                                + [("lq", x) for x in args.negatives],
                                                args.text_field, args.group_field, args.limit)
    else:
        if not args.data:
            print("error: domain needs --recipe or --data LABEL=PATH (repeat)", file=sys.stderr)
            return 2
        pairs = []
        for d in args.data:
            if "=" not in d:
                print(f"error: --data {d!r} must be LABEL=PATH", file=sys.stderr)
                return 2
            lab, path = d.split("=", 1)
            pairs.append((lab.strip(), path.strip()))
        examples, sources = examples_from_files(pairs, args.text_field, args.group_field, args.limit)
    print(f"{len(examples):,} examples ({_count(examples)}) in {time.time() - t0:.1f} s; training ...",
          file=sys.stderr)
    if args.kind == "quality":
        model = train_quality(examples, args.out, args.heldout, args.threshold, hp, args.max_chars, sources)
    else:
        check = recipes.crawl_check(corpus) if args.recipe == "default" else None
        model = train_domain(examples, args.out, args.heldout, hp, args.max_chars, sources, check)
    print(json.dumps({"out": str(args.out), "labels": model.labels,
                      "training_data": {k: model.meta["training_data"][k]
                                        for k in ("n_train", "n_heldout", "per_label", "fingerprint")},
                      "metrics": model.meta["metrics"]}, indent=2, default=float))
    print(f"saved {args.out}/model.bin + metadata.json in {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
