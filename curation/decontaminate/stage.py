"""The decontamination stage: `deduped` -> `decontaminated` (+ `<output>_contamination`).

1. Index (driver, from the benchmarks only): every registered evaluation set (evalsets/, or the
   sets given) is read, each item's `text_for_contamination` normalised and cut into word n-grams
   (n = 13 by default, GPT-3 / NeMo Curator; 8 as in Llama 3's contamination analysis), hashed to
   64 bits. The index (hash, benchmark, item_id, item_ngrams) becomes a DataFrame; its sorted
   distinct hashes (a few MB for every set here) are broadcast once.
2. Document n-grams (executors, `mapInArrow`): each document's n-gram hashes are computed and
   looked up in the broadcast hash set; only the hits leave the task, as (doc_id, position, hash).
   With `prefilter: false` every n-gram leaves the task and the join alone decides (same result,
   more shuffle; kept to check the prefilter and for sets too large to broadcast).
3. Join (Spark): hits x index on the hash -> per (document, benchmark, item): matched n-grams and
   overlap = matched / the item's n-grams. A document is contaminated by an item when it shares at
   least `min_matched_ngrams` n-grams with it.
4. Removal (executors, pandas UDF on the contaminated documents only): `mode: remove_regions` cuts
   each matched n-gram's characters plus `margin_chars` on each side and drops the document when
   more than `max_pieces` pieces or fewer than `min_doc_chars` characters are left;
   `mode: drop_documents` drops every contaminated document.
5. Output: every other document unchanged, changed ones with the new text (`n_chars`, `n_words`
   updated) and `contaminated_chars` (0 for clean documents); `<output>_contamination` has one row
   per (document, benchmark, item) match with the overlap and what happened to the document;
   counters (per benchmark too) go to the stats table.

Nothing per document is collected to the driver; the driver holds only the benchmark index.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.config import config_hash, merge
from core.schema import with_new_text
from core.validate import ConfigError, Rule, check_schema
from curation.decontaminate import ngrams
from core.stats import RunStats
from core.tables import (check_input_not_in_output, claim_output, companion_path, read_table,
                         table_version, write_table)

DEFAULTS: dict = {
    "ngram": 13,                   # words per n-gram (GPT-3, NeMo Curator); 8: Llama 3's analysis
    "evalsets": {
        "registry": None,          # registry YAML (None: configs/evalsets.yaml)
        "only": None,              # list of registered names to use (None: all)
        "extra": [],               # user sets: [{name, path, text_fields, id_field}]
    },
    "min_matched_ngrams": 1,       # n-grams a document must share with an item to count
    "mode": "remove_regions",      # remove_regions | drop_documents
    "margin_chars": 200,           # removed on each side of a matched region (NeMo Curator: 200)
    "min_piece_chars": 200,        # pieces shorter than this after removal go too
    "max_pieces": 10,              # more pieces left than this: drop the document
    "min_doc_chars": 200,          # less text left than this: drop the document
    "prefilter": True,             # look n-grams up in a broadcast hash set inside the task
    "skip_sources": [],            # sources not checked (e.g. a benchmark's own training split)
}

SCHEMA = {
    "ngram": Rule(int, ge=1, le=ngrams.MAX_N),
    "evalsets.registry": Rule(str, null=True),
    "evalsets.only": Rule(list, items=Rule(str), null=True),
    "evalsets.extra": Rule(list, items=Rule(dict)),
    "min_matched_ngrams": Rule(int, ge=1),
    "mode": Rule(choices=("remove_regions", "drop_documents")),
    "margin_chars": Rule(int, ge=0),
    "min_piece_chars": Rule(int, ge=0),
    "max_pieces": Rule(int, ge=1),
    "min_doc_chars": Rule(int, ge=0),
    "prefilter": Rule(bool),
    "skip_sources": Rule(list, items=Rule(str)),
}

CONTAMINATION = T.StructType([
    T.StructField("doc_id", T.StringType(), False),
    T.StructField("source", T.StringType(), True),
    T.StructField("benchmark", T.StringType(), False),
    T.StructField("item_id", T.StringType(), False),
    T.StructField("matched_ngrams", T.IntegerType(), False),
    T.StructField("item_ngrams", T.IntegerType(), False),
    T.StructField("overlap", T.DoubleType(), False),          # matched / item n-grams
    T.StructField("action", T.StringType(), False),           # region_removed | document_dropped
    T.StructField("drop_reason", T.StringType(), True),       # too_many_pieces | too_short | contaminated
    T.StructField("doc_chars_removed", T.IntegerType(), False),
])
HIT_SCHEMA = pa.schema([("doc_id", pa.string()), ("pos", pa.int32()), ("hash", pa.int64())])
HIT_SPARK = T.StructType([T.StructField("doc_id", T.StringType()),
                          T.StructField("pos", T.IntegerType()),
                          T.StructField("hash", T.LongType())])
MODES = ("remove_regions", "drop_documents")


def _log(msg: str) -> None:
    print(f"[decontaminate] {msg}", file=sys.stderr, flush=True)


def resolve_config(config: dict | None) -> dict:
    cfg = check_schema(merge(DEFAULTS, config), SCHEMA)
    for i, x in enumerate(cfg["evalsets"]["extra"] or []):
        missing = [k for k in ("name", "path", "text_fields") if not x.get(k)]
        unknown = set(x) - {"name", "path", "text_fields", "id_field"}
        if missing or unknown:
            raise ConfigError(f"evalsets.extra[{i}]: needs name, path, text_fields (optional "
                              f"id_field); missing {missing}, unknown {sorted(unknown)}")
    return cfg


def eval_specs(cfg: dict, corpus: str | Path | None = None) -> dict:
    """name -> EvalSetSpec of every set the config names (the registry's, plus extras)."""
    from evalsets import load_registry, user_set
    e = cfg["evalsets"]
    specs = load_registry(e["registry"], corpus=Path(corpus) if corpus else None)
    if e["only"]:
        unknown = [n for n in e["only"] if n not in specs]
        if unknown:
            raise ValueError(f"evalsets.only names unknown sets {unknown}; registered: "
                             f"{sorted(specs)}")
        specs = {n: specs[n] for n in e["only"]}
    for x in e["extra"] or []:
        if x["name"] in specs:
            raise ValueError(f"extra evaluation set {x['name']!r} is already registered")
        specs[x["name"]] = user_set(x["name"], x["path"], x["text_fields"], x.get("id_field"))
    return specs


def benchmark_files(config: dict | None, corpus: str | Path | None = None) -> list[str]:
    """The files the index is built from (each named set's file, and the registry YAML): inputs
    of the pipeline stage, so a changed benchmark file re-runs decontamination."""
    from evalsets.registry import DEFAULT_CONFIG
    cfg = resolve_config(config)
    reg = cfg["evalsets"]["registry"] or DEFAULT_CONFIG
    return [str(reg)] + sorted(str(s.path) for s in eval_specs(cfg, corpus).values())


def eval_items(cfg: dict, corpus: str | Path | None = None) -> list[tuple[str, str, str]]:
    """(benchmark, item_id, text) of every set the config names (the registry's, plus extras)."""
    from evalsets import text_for_contamination
    out = []
    for name, spec in eval_specs(cfg, corpus).items():
        out += [(name, it.item_id, text_for_contamination(it)) for it in spec.read()]
    return out


def hits_fn(n: int, members_bc):
    """mapInArrow: (doc_id, text) -> (doc_id, pos, hash) for every n-gram in the hash set (or every
    n-gram when `members_bc` is None)."""
    def fn(batches):
        members = members_bc.value if members_bc is not None else None
        hasher = ngrams.WordHasher()
        for rb in batches:
            ids = rb.column("doc_id").to_pylist()
            texts = rb.column("text").to_pylist()
            out_id, out_pos, out_h = [], [], []
            for d, t in zip(ids, texts):
                pos, h = ngrams.member_positions(t, n, members, hasher)
                if len(pos):
                    out_id.append(np.full(len(pos), d, dtype=object))
                    out_pos.append(pos)
                    out_h.append(h)
            if out_pos:
                yield pa.RecordBatch.from_arrays(
                    [pa.array(np.concatenate(out_id), pa.string()),
                     pa.array(np.concatenate(out_pos), pa.int32()),
                     pa.array(np.concatenate(out_h), pa.int64())], schema=HIT_SCHEMA)
    return fn


REMOVAL = T.StructType([T.StructField("text", T.StringType()),
                        T.StructField("chars_removed", T.IntegerType()),
                        T.StructField("drop_reason", T.StringType())])


def removal_udf(cfg: dict):
    n, mode = int(cfg["ngram"]), cfg["mode"]
    kw = dict(margin_chars=int(cfg["margin_chars"]), min_piece_chars=int(cfg["min_piece_chars"]),
              max_pieces=int(cfg["max_pieces"]), min_doc_chars=int(cfg["min_doc_chars"]))

    @F.pandas_udf(REMOVAL)
    def remove(text: pd.Series, positions: pd.Series) -> pd.DataFrame:
        out_t, out_r, out_d = [], [], []
        for t, p in zip(text.tolist(), positions.tolist()):
            if mode == "drop_documents":
                out_t.append(None), out_r.append(len(t)), out_d.append("contaminated")
                continue
            r = ngrams.remove_regions(t, list(p), n, **kw)
            out_t.append(r.text), out_r.append(int(r.chars_removed)), out_d.append(r.drop_reason)
        return pd.DataFrame({"text": out_t, "chars_removed": pd.Series(out_r, dtype="int32"),
                             "drop_reason": out_d})
    return remove


def run_decontaminate(spark, input_path: str, output_path: str, config: dict | None = None,
                      stats_path: str | None = None, corpus: str | Path | None = None,
                      overwrite: bool = False) -> RunStats:
    """Decontaminate the documents table at `input_path` into `output_path` (Delta, replaced) and
    `<output_path>_contamination`; returns the run's statistics (also appended to `stats_path`).
    Both outputs must be new or this stage's own tables (core/tables.py `claim_output`) unless
    `overwrite`."""
    cfg = resolve_config(config)
    rec_path = companion_path(output_path, "_contamination")
    check_input_not_in_output(input_path, output_path)
    claim_output(spark, output_path, "decontaminate", overwrite)
    claim_output(spark, rec_path, "decontaminate.contamination", overwrite)
    n = int(cfg["ngram"])
    stats = RunStats("decontaminate", config_hash(cfg))
    stats.claim(spark, stats_path, overwrite)
    stats.info.update(input=input_path, output=output_path, ngram=str(n), mode=cfg["mode"])
    t0 = time.time()

    # 1. the index, from the benchmarks alone
    index = ngrams.build_index(eval_items(cfg, corpus), n)
    for b, k in index.items.items():
        stats.set(f"index.items.{b}", k)
        stats.set(f"index.unchecked_items.{b}", index.unchecked[b])
    stats.set("index.ngrams", len(index.hashes))
    _log(f"index: {sum(index.items.values()):,} items of {len(index.items)} sets, "
         f"{len(index.hashes):,} {n}-grams ({time.time() - t0:.1f} s)")
    index_df = spark.createDataFrame(pd.DataFrame({
        "hash": index.hashes, "benchmark": index.benchmark.astype(str),
        "item_id": index.item_id.astype(str), "item_ngrams": index.item_ngrams}))

    docs = read_table(spark, input_path)
    missing = [c for c in ("doc_id", "text", "source", "n_chars", "n_words") if c not in docs.columns]
    if missing:
        raise ValueError(f"{input_path} is not a documents table: missing columns {missing}")
    n_in = docs.count()
    stats.set("docs.in", n_in)
    checked = docs.where(~F.col("source").isin(list(cfg["skip_sources"]))) \
        if cfg["skip_sources"] else docs

    # 2-3. document n-grams that hit the index, joined with it on the hash
    members = spark.sparkContext.broadcast(index.distinct_hashes()) if cfg["prefilter"] else None
    per_item = changed = None       # cached (recomputable, not lineage cuts); released in finally
    try:
        hits = checked.select("doc_id", "text").mapInArrow(hits_fn(n, members), HIT_SPARK)
        matched = hits.join(index_df, "hash")
        per_item = (matched.groupBy("doc_id", "benchmark", "item_id")
                    .agg(F.countDistinct("hash").cast("int").alias("matched_ngrams"),
                         F.first("item_ngrams").cast("int").alias("item_ngrams"),
                         F.collect_set("pos").alias("_pos"))
                    .where(F.col("matched_ngrams") >= int(cfg["min_matched_ngrams"]))
                    .withColumn("overlap", F.col("matched_ngrams") / F.col("item_ngrams")))
        per_item = per_item.persist()
        per_doc = (per_item.groupBy("doc_id")
                   .agg(F.array_sort(F.array_distinct(F.flatten(F.collect_list("_pos"))))
                        .alias("_pos")))
        # 4. removal on the contaminated documents only
        changed = (docs.select("doc_id", "text").join(per_doc, "doc_id")
                   .select("doc_id", removal_udf(cfg)("text", "_pos").alias("r"))
                   .select("doc_id", F.col("r.text").alias("_new_text"),
                           F.col("r.chars_removed").alias("_removed"),
                           F.col("r.drop_reason").alias("_drop"))).persist()
        agg = changed.agg(F.count(F.lit(1)).alias("docs"),
                          F.sum("_removed").alias("chars"),
                          F.sum(F.col("_drop").isNotNull().cast("int")).alias("dropped")).first()
        n_changed = int(agg["docs"] or 0)
        stats.set("docs.contaminated", n_changed)
        stats.set("chars.removed", int(agg["chars"] or 0))
        for reason, k in changed.where(F.col("_drop").isNotNull()).groupBy("_drop").count() \
                .collect():
            stats.set(f"dropped.{reason}", int(k))
        for r in ("too_many_pieces", "too_short", "contaminated"):
            stats.counters.setdefault(f"dropped.{r}", 0)
        for b in index.items:
            stats.set(f"contaminated_docs.{b}", 0)
            stats.set(f"items_found.{b}", 0)
        for row in per_item.groupBy("benchmark").agg(
                F.countDistinct("doc_id").alias("docs"),
                F.countDistinct("item_id").alias("items")).collect():
            stats.set(f"contaminated_docs.{row['benchmark']}", int(row["docs"]))
            stats.set(f"items_found.{row['benchmark']}", int(row["items"]))
        _log(f"{n_changed:,} contaminated documents, {int(agg['dropped'] or 0):,} dropped "
             f"({time.time() - t0:.1f} s)")

        # 5. output and the record of every removal
        out = (with_new_text(docs.join(changed, "doc_id", "left").where(F.col("_drop").isNull()))
               .withColumn("contaminated_chars", F.coalesce("_removed", F.lit(0)).cast("int")))
        cols = [c for c in docs.columns if c != "contaminated_chars"]
        record = (per_item.join(changed, "doc_id")
                  .join(docs.select("doc_id", "source"), "doc_id")
                  .select("doc_id", "source", "benchmark", "item_id", "matched_ngrams",
                          "item_ngrams", "overlap",
                          F.when(F.col("_drop").isNull(), F.lit("region_removed"))
                          .otherwise(F.lit("document_dropped")).alias("action"),
                          F.col("_drop").alias("drop_reason"),
                          F.col("_removed").alias("doc_chars_removed")))
        # the record first; the main table's commit (naming the record's version) ends the run
        meta = {"curation.job": "decontaminate", "run_id": stats.run_id,
                "config_hash": stats.config_hash}
        write_table(record.select(*[F.col(f.name).cast(f.dataType) for f in CONTAMINATION.fields]),
                    rec_path, job="decontaminate.contamination",
                    user_metadata={**meta, "curation.job": "decontaminate.contamination"})
        write_table(out.select(*cols, "contaminated_chars"), output_path, job="decontaminate",
                    user_metadata={**meta, "companions": {
                        "_contamination": table_version(spark, rec_path)}})
    finally:
        for cached in (per_item, changed):      # also when the run fails
            if cached is not None:
                cached.unpersist()
        if members is not None:
            members.destroy()

    n_out = read_table(spark, output_path).count()
    stats.set("docs.out", n_out)
    n_dropped = sum(v for k, v in stats.counters.items() if k.startswith("dropped."))
    if n_in - n_dropped != n_out:
        raise RuntimeError(f"decontamination accounting mismatch: {n_in} in - {n_dropped} "
                           f"dropped != {n_out} out")
    stats.record(spark, stats_path)
    return stats
