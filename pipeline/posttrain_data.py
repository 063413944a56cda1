"""Post-training data as curated Delta tables, on Spark (`spark-submit jobs/posttrain_data.py`).

The record logic is the trainer's (`trainer/posttrain_data.py`: converters, `check_record`,
`exact_key`, `near_text`, `Contamination`), which reuses the pre-training stages' functions (PII
and repetition from `curation/filters`, `normalized_hash` and MinHash from `curation/dedup`, the
13-gram index of `curation/decontaminate`); this module only wires it to Spark. It lives on the
roof (`pipeline/`) because it is the one layer that may import both Spark and the trainer, which
itself never imports Spark.

Steps (each dropped record is a row of `<out>/rejects` with its reason; counts in the stats table):
1. convert (driver: the sources are a few small files): HH-RLHF preferences split into train /
   held-out by a hash of the prompt, GSM8K-train and MATH-4500 maths prompts, user JSONL; each
   record gets a stable position (`_order`) in the sources' order, the tie-breaker of every step;
2. per record (`mapInPandas`): decontamination against every registered evaluation set, then
   `check_record` (format and role order, the chat-format round trip, PII redaction, repetition,
   length in rendered tokens);
3. a record id seen twice in one table: the later ones dropped (`dedup: duplicate id`);
4. exact dedup: `exact_key` (normalised prompt + replies) per table, the first kept;
5. near dedup of prompts per table with the dedup stage's own distributed pieces
   (`near_duplicate_edges`: MinHash + LSH band buckets; `verify_edges`: exact word-5-gram
   Jaccard >= `near_threshold`; `connected_components`): the first record of a component kept;
6. write: one Delta table per table and split (`<out>/preferences/{train,heldout}`,
   `<out>/prompts/{train,heldout}`, `<out>/sft/train`; every one written on each run, empty if
   need be, so no stale split survives), ordered by `id`, plus `<out>/rejects`.

Ownership (core/tables.py): every output, and the stats table, is claimed before any work; a
table of another job or tool is refused unless `overwrite`. The frames computed once and read by
several steps, and each connected-components round, are saved in a checkpoint folder
(`core/checkpoints.py`; `checkpoint_dir`, default `<output>_checkpoints`), deleted when the run
ends or fails.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.config import config_hash
from core.outcomes import REJECT_COLUMNS, Outcomes, as_rejects
from core.stats import RunStats
from core.tables import check_input_not_in_output, claim_output, write_table
from core.validate import Rule, check_schema
from trainer import posttrain_data as ptd

DEFAULTS = {
    "sources": ["hh", "gsm8k", "math"],
    "heldout_share": 0.1,
    "max_tokens": 2048,
    "decontaminate_ngram": 13,       # 0: off
    "near_threshold": 0.8,           # exact word-5-gram Jaccard of two prompts
    "checkpoint_dir": None,          # intermediate frames are written here (None: <output>_checkpoints)
}

SCHEMA = {
    "sources": Rule(list, items=Rule(choices=("hh", "gsm8k", "math"))),
    "heldout_share": Rule(float, ge=0, lt=1),
    "max_tokens": Rule(int, ge=1),
    "decontaminate_ngram": Rule(int, ge=0),
    "near_threshold": Rule(float, gt=0, le=1),
    "checkpoint_dir": Rule(str, null=True, nonempty=True),
}

JOB = "posttrain_data"


def _log(msg: str) -> None:
    print(f"[posttrain-data] {msg}", file=sys.stderr, flush=True)


def table_names() -> list[tuple[str, str]]:
    """(table, split) of every output table."""
    return [(k, s) for k in ptd.KINDS for s in (ptd.SPLITS if k != "sft" else ("train",))]


def output_paths(out: str) -> dict[str, str]:
    """job marker -> path of every output (the tables, and the rejects)."""
    paths = {f"{JOB}.{k}.{s}": f"{out.rstrip('/')}/{k}/{s}" for k, s in table_names()}
    paths[f"{JOB}.rejects"] = f"{out.rstrip('/')}/rejects"
    return paths


def spark_ddl(t) -> str:
    """The Spark SQL type of an Arrow type of the tables' schemas (`ptd.SCHEMAS`)."""
    import pyarrow as pa
    if pa.types.is_string(t):
        return "STRING"
    if pa.types.is_int32(t):
        return "INT"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_list(t):
        return f"ARRAY<{spark_ddl(t.value_type)}>"
    if pa.types.is_struct(t):
        return "STRUCT<" + ", ".join(f"{f.name}: {spark_ddl(f.type)}" for f in t) + ">"
    raise TypeError(f"no Spark type for {t}")


def _check_fn(max_tokens: int, contamination_bc, ngram: int):
    """mapInPandas: staged rows -> the same rows with the curated record (or the reason it goes),
    the exact-dedup key and the text near dedup compares."""
    import pandas as pd

    def fn(frames):
        from core.tokenizer import get_tokenizer
        tok = get_tokenizer()
        index = None
        if contamination_bc is not None:
            members, first = contamination_bc.value
            index = ptd.Contamination(n=ngram, members=members, first=first)
        for pdf in frames:
            recs, reasons, keys, texts = [], [], [], []
            for kind, rec in zip(pdf["kind"], pdf["rec"]):
                r = json.loads(rec)
                bench = index.benchmark_of(r, kind) if index is not None else None
                if bench:
                    cur, why = None, f"decontamination: {bench}"
                else:
                    cur, why = ptd.check_record(r, kind, tok, max_tokens)
                if why:
                    recs.append(rec), reasons.append(why), keys.append(None), texts.append(None)
                else:
                    recs.append(json.dumps(cur, ensure_ascii=False)), reasons.append(None)
                    keys.append(ptd.exact_key(cur, kind)), texts.append(ptd.near_text(cur, kind))
            yield pd.DataFrame({"kind": pdf["kind"], "_order": pdf["_order"], "id": pdf["id"],
                                "split": pdf["split"], "rec": recs, "reason": reasons,
                                "exact_key": keys, "near_text": texts})
    return fn


def run_posttrain_data(spark, output: str, config: dict | None = None, stats_path: str | None = None,
                       corpus: str | Path | None = None, user: list[str] | None = None,
                       overwrite: bool = False) -> RunStats:
    """Convert and curate the post-training sources into the Delta tables under `output`."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.window import Window

    from core.config import merge
    from core.checkpoints import Checkpoints, checkpoint_folder
    from curation.dedup.components import connected_components, drop_components_graph
    from curation.dedup.stage import near_duplicate_edges, verify_edges
    from curation.dedup.stage import resolve_config as dedup_config

    cfg = check_schema(merge(DEFAULTS, config or {}), SCHEMA)     # before any work
    user = [str(u) for u in (user or [])]
    check_input_not_in_output(user, output)
    paths = output_paths(output)
    for job, path in paths.items():                       # before any work
        claim_output(spark, path, job, overwrite)
    stats = RunStats(JOB, config_hash({**cfg, "user": user}))
    stats.claim(spark, stats_path, overwrite)
    out = Outcomes(stats)

    # reliable checkpoints beside the output (as dedup's), deleted when the run ends or fails
    checkpoints = Checkpoints(spark, checkpoint_folder(output, cfg["checkpoint_dir"]), JOB)
    try:
        # 1. convert
        conv_rejects: list = []
        tables = ptd.convert_sources(corpus, user, float(cfg["heldout_share"]), tuple(cfg["sources"]), conv_rejects)
        rows, order = [], 0
        for kind in ptd.KINDS:
            for r in tables[kind]:
                rows.append((kind, order, str(r["id"]), r.get("split") or "train",
                             json.dumps(r, ensure_ascii=False)))
                order += 1
            out.add(f"in.{kind}", len(tables[kind]))
        out.add("in.unconvertible", len(conv_rejects))
        _log(f"converted {order} records ({', '.join(f'{k} {len(v)}' for k, v in tables.items())}), "
             f"{len(conv_rejects)} unconvertible")
        staged_schema = T.StructType([T.StructField("kind", T.StringType()), T.StructField("_order", T.LongType()),
                                      T.StructField("id", T.StringType()), T.StructField("split", T.StringType()),
                                      T.StructField("rec", T.StringType())])
        parallel = max(1, spark.sparkContext.defaultParallelism)
        staged = spark.createDataFrame(rows, staged_schema).repartition(parallel)

        # 2. per record: decontamination, then check_record
        n = int(cfg["decontaminate_ngram"] or 0)
        bc = None
        if n:
            index = ptd.Contamination(corpus, n)
            bc = spark.sparkContext.broadcast((index.members, index.first))
        checked_schema = T.StructType(staged_schema.fields + [
            T.StructField("reason", T.StringType()), T.StructField("exact_key", T.StringType()),
            T.StructField("near_text", T.StringType())])
        checked = checkpoints.save(                           # computed once, read by every step below
            staged.mapInPandas(_check_fn(int(cfg["max_tokens"]), bc, n), checked_schema), "checked")
        _log(f"checked every record ({stats.seconds:.1f} s)")
        # 3.-4. a repeated id, then exact duplicates: the first (by _order) kept
        dropped = checked.where(F.col("reason").isNotNull())
        alive = checked.where(F.col("reason").isNull())
        for key, reason in (("id", "dedup: duplicate id"), ("exact_key", "dedup: exact duplicate")):
            w = Window.partitionBy("kind", key).orderBy("_order")
            alive = alive.withColumn("reason", F.when(F.row_number().over(w) > 1, F.lit(reason)))
            dropped = dropped.unionByName(alive.where(F.col("reason").isNotNull()))
            alive = alive.where(F.col("reason").isNull())

        # 5. near duplicates of prompts: the dedup stage's MinHash/LSH edges, verified, components
        m = dedup_config(None)["minhash"]
        texts = alive.select(F.col("_order").alias("_node"), F.col("near_text").alias("text"), "kind")
        kinds = texts.select("_node", "kind")
        edges = near_duplicate_edges(texts.select("_node", "text"), m)
        edges = (edges.join(kinds.withColumnRenamed("_node", "src"), "src")
                 .join(kinds.withColumnRenamed("_node", "dst").withColumnRenamed("kind", "kind_b"), "dst")
                 .where(F.col("kind") == F.col("kind_b")).select("src", "dst"))        # within one table
        edges = verify_edges(edges, texts.select("_node", "text"), int(m["ngram"]), float(cfg["near_threshold"]))
        comps, _ = connected_components(edges, checkpoints, verbose=False)
        near = comps.where(F.col("node") != F.col("component")).select(F.col("node").alias("_order"),
                                                                       F.lit(True).alias("_near"))
        alive = (alive.join(near, "_order", "left")
                 .withColumn("reason", F.when(F.col("_near"), F.lit("dedup: near duplicate prompt")))
                 .drop("_near"))
        # every record with its decision, computed once: the writes below all read this
        decided = checkpoints.save(dropped.unionByName(alive), "decided")
        drop_components_graph(checkpoints)
        alive = decided.where(F.col("reason").isNull())
        _log(f"deduplicated ({stats.seconds:.1f} s)")

        # 6. write: rejects first (findable even if the run stops while writing the tables), then tables
        rej = decided.where(F.col("reason").isNotNull())
        parts = [as_rejects(rej.where(F.col("kind") == k), f"{JOB}.{k}", "reason", "id", "rec") for k in ptd.KINDS]
        if conv_rejects:
            cdf = spark.createDataFrame(conv_rejects, "key STRING, reason STRING, example STRING")
            parts.append(as_rejects(cdf, f"{JOB}.convert", "reason", "key", "example"))
        rejects = parts[0]
        for p in parts[1:]:
            rejects = rejects.unionByName(p)
        write_table(rejects.coalesce(1).sortWithinPartitions("stage", "reason", "key"), paths[f"{JOB}.rejects"],
                    job=f"{JOB}.rejects")
        for r in rejects.groupBy("stage", "reason").count().collect():
            out.add(f"dropped.{r['stage'][len(JOB) + 1:]}.{r['reason']}", int(r["count"]))
        kept = {(r["kind"], r["split"]): int(r["count"]) for r in alive.groupBy("kind", "split").count().collect()}
        schemas = ptd.schemas()
        for kind, split in table_names():
            schema = schemas[kind]
            ddl = ", ".join(f"`{f.name}`: {spark_ddl(f.type)}" for f in schema)
            part = alive.where((F.col("kind") == kind) & (F.col("split") == split))
            df = (part.select(F.from_json("rec", f"STRUCT<{ddl}>").alias("r")).select(
                *[F.col(f"r.`{f.name}`").alias(f.name) for f in schema]).coalesce(1).sortWithinPartitions("id"))
            path = paths[f"{JOB}.{kind}.{split}"]
            write_table(df, path, job=f"{JOB}.{kind}.{split}")
            k = kept.get((kind, split), 0)
            out.set(f"kept.{kind}.{split}", k)
            _log(f"{kind}/{split}: {k:,} rows -> {path} ({stats.seconds:.1f} s)")
    finally:
        checkpoints.close()
    stats.info["output"] = output
    stats.record(spark, stats_path)
    return stats


__all__ = ["DEFAULTS", "REJECT_COLUMNS", "output_paths", "run_posttrain_data", "spark_ddl", "table_names"]
