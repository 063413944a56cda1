"""The deduplication stage: `documents` -> `deduped` (+ `<output>_duplicates`), in four steps, each
switchable in the config, in this order:

1. url:   one document per canonical URL (the most recent fetch);
2. exact: one document per normalised-text hash;
3. near:  MinHash signatures (vectorised, `minhash.py`) -> LSH band buckets (`lsh.py`) -> star
          edges from each bucket's smallest node -> optional exact Jaccard check -> connected
          components in Spark (`components.py`) -> one document per component;
4. lines: lines repeated in more than `threshold` documents of a bucket are removed (`lines.py`);
          documents left shorter than `min_chars` are dropped.

Survivor rule in every step: the most recent `fetch_time` (nulls last), then the smallest
`doc_id`; a pure function of the rows, so the same whatever the partitioning. Every removed
document is in the duplicates table with its reason and the survivor it folded into (resolved
through all steps); `lines_too_short` documents have no survivor. Survivors carry `cluster_id` (the
survivor's own doc_id) and `cluster_size` (itself plus every document folded into it).

Only small columns (ids, keys, times) are shuffled for steps 1-3; text is read where it is needed
and nothing is collected to the driver.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from core.checkpoints import Checkpoints, checkpoint_folder
from core.config import ConfigError, config_hash, merge
from core.outcomes import Outcomes
from core.schema import with_new_text
from core.validate import Rule, check_schema
from curation.dedup import lines as line_dedup
from curation.dedup import lsh, minhash
from curation.dedup.components import connected_components, drop_components_graph
from curation.dedup.exact import normalized_hash_col
from core.stats import RunStats
from core.tables import (check_input_not_in_output, claim_output, companion_path, crash_point,
                         read_table, table_version, write_table)

DEFAULTS: dict = {
    "spark": {
        "shuffle_partitions": None,  # None: one per `partition_bytes` of input, at least the cores
        "partition_bytes": 64 * 2**20,
        "checkpoint_dir": None,      # intermediate frames are written here (None: <output>_checkpoints)
    },
    "url": {
        "enabled": True,
        "recompute": False,          # True: recompute url_canonical from url with canonicalize_url
    },
    "exact": {
        "enabled": True,
    },
    "minhash": {
        "enabled": True,
        "ngram": 5,                  # word n-gram shingles
        "num_perm": 112,             # signature length (>= bands * rows)
        "bands": 14,                 # FineWeb: 14 x 8, threshold ~0.72
        "rows": 8,
        "target_threshold": None,    # e.g. 0.8: choose bands x rows for this Jaccard instead
        "seed": 1,                   # seed of the permutations
        "verify": "jaccard",         # "jaccard" | "none": check candidate edges by exact Jaccard
        "verify_threshold": 0.7,
        "max_rounds": 100,           # connected-components rounds before giving up
    },
    "lines": {
        "enabled": True,
        "threshold": 6,              # remove a line seen in more than 6 documents of a bucket
        "bucket_size": 30_000_000,   # documents per bucket (Llama 3: 30M)
        "min_chars": 100,            # drop a document left shorter than this after removal
        "skip_sources": ["thealgorithms"],   # code shares lines like "}" legitimately
    },
}

# every key's type and range (core/validate.py), checked by jobs/dedup.py when the config is loaded
# and by resolve_config, before Spark reads anything
SCHEMA = {
    "spark.shuffle_partitions": Rule(int, ge=1, null=True),
    "spark.partition_bytes": Rule(int, ge=1),
    "spark.checkpoint_dir": Rule(str, null=True, nonempty=True),
    "url.enabled": Rule(bool), "url.recompute": Rule(bool),
    "exact.enabled": Rule(bool),
    "minhash.enabled": Rule(bool),
    "minhash.ngram": Rule(int, ge=1),
    "minhash.num_perm": Rule(int, ge=1),
    "minhash.bands": Rule(int, ge=1),
    "minhash.rows": Rule(int, ge=1),
    "minhash.target_threshold": Rule(float, gt=0, lt=1, null=True),
    "minhash.seed": Rule(int),
    "minhash.verify": Rule(choices=("jaccard", "none")),
    "minhash.verify_threshold": Rule(float, gt=0, le=1),
    "minhash.max_rounds": Rule(int, ge=1),
    "lines.enabled": Rule(bool),
    "lines.threshold": Rule(int, ge=1),
    "lines.bucket_size": Rule(int, ge=1),
    "lines.min_chars": Rule(int, ge=0),
    "lines.skip_sources": Rule(list, items=Rule(str)),
}

DUPLICATES = T.StructType([
    T.StructField("doc_id", T.StringType(), False),
    T.StructField("duplicate_of", T.StringType(), True),   # the survivor; null for lines_too_short
    T.StructField("reason", T.StringType(), False),        # url | exact | near | lines_too_short
    T.StructField("source", T.StringType(), True),
    T.StructField("url", T.StringType(), True),
    T.StructField("fetch_time", T.TimestampType(), True),
])
REASONS = ("url", "exact", "near", "lines_too_short")
REQUIRED = ("doc_id", "text", "fetch_time", "url", "url_canonical", "source")


def _log(msg: str) -> None:
    print(f"[dedup] {msg}", file=sys.stderr, flush=True)


def resolve_config(config: dict | None) -> dict:
    cfg = check_schema(merge(DEFAULTS, config), SCHEMA)
    m = cfg["minhash"]
    if m["target_threshold"] is not None:
        m["bands"], m["rows"] = lsh.choose_bands(float(m["target_threshold"]), int(m["num_perm"]))
    if m["bands"] * m["rows"] > m["num_perm"]:
        raise ConfigError(f"minhash.bands x rows = {m['bands'] * m['rows']} exceeds "
                          f"minhash.num_perm = {m['num_perm']}")
    return cfg


def _survivor_order():
    """The stable survivor rule: most recent fetch first (nulls last), then the smallest doc_id."""
    return [F.col("fetch_time").desc_nulls_last(), F.col("doc_id").asc()]


def keep_one_per_key(alive: DataFrame, key: str, reason: str) -> tuple[DataFrame, DataFrame]:
    """Keep one row per non-null `key`; returns (alive after, removed(doc_id, rep, reason))."""
    w = Window.partitionBy(key).orderBy(*_survivor_order())
    ranked = (alive.withColumn("_rn", F.row_number().over(w))
              .withColumn("_rep", F.first("doc_id").over(w)))
    dup = F.col(key).isNotNull() & (F.col("_rn") > 1)
    removed = ranked.where(dup).select("doc_id", F.col("_rep").alias("rep"),
                                       F.lit(reason).alias("reason"))
    kept = ranked.where(~dup).drop("_rn", "_rep")
    return kept, removed


# ---- near duplicates ---------------------------------------------------------------------------

BAND_SCHEMA = T.StructType([T.StructField("band", T.IntegerType(), False),
                            T.StructField("bucket", T.LongType(), False),
                            T.StructField("_node", T.LongType(), False)])


BATCH_TEXT_BYTES = 4 << 20   # text per vectorised step in a Python worker (see text_slices)


def text_slices(batches, max_bytes: int = BATCH_TEXT_BYTES):
    """Arrow record batches cut into slices of at most `max_bytes` of `text` (a longer single
    text is a slice of its own; empty batches are dropped). The vectorised MinHash and line
    hashing hold several arrays of the batch's text size at once (bytes, masks, 8-byte prefix
    sums and powers): bounded by the slice, not by Spark's Arrow batch (10,000 rows by default
    under spark-submit: ~36 MB of text and ~3 GiB per Python worker on the generated 200k set).
    Slicing changes no result: every hash is computed per document."""
    import pyarrow.compute as pc
    for rb in batches:
        n = rb.num_rows
        if n == 0:
            continue
        cum = np.cumsum(pc.binary_length(rb.column("text")).fill_null(0).to_numpy(
            zero_copy_only=False).astype(np.int64))
        if cum[-1] <= max_bytes:
            yield rb
            continue
        start = 0
        while start < n:
            base = cum[start - 1] if start else 0
            end = max(start + 1, int(np.searchsorted(cum, base + max_bytes, side="right")))
            yield rb.slice(start, end - start)
            start = end


def band_rows_fn(num_perm: int, ngram: int, bands: int, rows: int, seed: int,
                 max_bytes: int = BATCH_TEXT_BYTES):
    """mapInArrow function: (_node, text) batches -> one (band, bucket, _node) row per band."""
    def fn(batches):
        perms = minhash.permutations(num_perm, seed)
        for rb in text_slices(batches, max_bytes):
            nodes = rb.column("_node").to_numpy(zero_copy_only=False)
            hashes, counts = minhash.shingle_hashes(rb.column("text"), ngram)
            sig = minhash.signatures_from_shingles(hashes, counts, *perms)
            keep = counts > 0                 # no shingles: never a candidate
            bh = lsh.band_hashes(sig[keep], bands, rows)
            k = int(keep.sum())
            yield pa.RecordBatch.from_arrays([
                pa.array(np.tile(np.arange(bands, dtype=np.int32), k)),
                pa.array(bh.reshape(-1)),
                pa.array(np.repeat(nodes[keep].astype(np.int64), bands)),
            ], schema=pa.schema([("band", pa.int32()), ("bucket", pa.int64()),
                                 ("_node", pa.int64())]))
    return fn


def near_duplicate_edges(texts: DataFrame, m: dict) -> DataFrame:
    """Candidate edges (src, dst): each band bucket's members linked to its smallest node."""
    bands = texts.mapInArrow(
        band_rows_fn(int(m["num_perm"]), int(m["ngram"]), int(m["bands"]), int(m["rows"]),
                     int(m["seed"])), BAND_SCHEMA)
    w = Window.partitionBy("band", "bucket")
    return (bands.withColumn("_min", F.min("_node").over(w))
            .where(F.col("_node") != F.col("_min"))
            .select(F.col("_node").alias("src"), F.col("_min").alias("dst")).distinct())


def verify_edges(edges: DataFrame, texts: DataFrame, ngram: int, threshold: float) -> DataFrame:
    """Keep the candidate edges whose two documents have exact shingle Jaccard >= threshold."""
    a = texts.select(F.col("_node").alias("src"), F.col("text").alias("text_a"))
    b = texts.select(F.col("_node").alias("dst"), F.col("text").alias("text_b"))
    pairs = edges.join(a, "src").join(b, "dst")

    @F.pandas_udf(T.DoubleType())
    def jac(ta: pd.Series, tb: pd.Series) -> pd.Series:
        return pd.Series([minhash.jaccard(x, y, ngram) for x, y in zip(ta, tb)], dtype=float)

    return (pairs.withColumn("_j", jac("text_a", "text_b")).where(F.col("_j") >= threshold)
            .select("src", "dst"))


# ---- line dedup ----------------------------------------------------------------------------------

LINE_SCHEMA = T.StructType([T.StructField("_node", T.LongType(), False),
                            T.StructField("_bucket", T.IntegerType(), False),
                            T.StructField("_line", T.LongType(), False)])


def _line_rows(batches):
    for rb in text_slices(batches, BATCH_TEXT_BYTES):   # looked up at call time
        texts = rb.column("text").to_pylist()
        idx, h = line_dedup.distinct_line_hashes(texts)
        yield pa.RecordBatch.from_arrays([
            pa.array(rb.column("_node").to_numpy(zero_copy_only=False)[idx].astype(np.int64)),
            pa.array(rb.column("_bucket").to_numpy(zero_copy_only=False)[idx].astype(np.int32)),
            pa.array(h)], names=["_node", "_bucket", "_line"])


LINE_RESULT = T.StructType([T.StructField("text", T.StringType()),
                            T.StructField("lines_removed", T.IntegerType())])


@F.pandas_udf(LINE_RESULT)
def _remove_lines_udf(text: pd.Series, bad: pd.Series) -> pd.DataFrame:
    out_t, out_n = line_dedup.remove_lines_batch(text.tolist(), bad.tolist())
    return pd.DataFrame({"text": out_t, "lines_removed": out_n.astype("int32")})


# ---- the stage -----------------------------------------------------------------------------------

def shuffle_partitions(spark, input_path: str, sc_cfg: dict) -> int:
    """Shuffle partitions for this input: `spark.shuffle_partitions` if set, else one per
    `partition_bytes` of the input table (Delta metadata, no scan), at least the default
    parallelism. Spark's default of 200 makes a small run pay for thousands of empty tasks; a
    fixed 8 makes a large one spill."""
    if sc_cfg["shuffle_partitions"]:
        return int(sc_cfg["shuffle_partitions"])
    from delta.tables import DeltaTable
    size = DeltaTable.forPath(spark, input_path).detail().select("sizeInBytes").first()[0] or 0
    return max(spark.sparkContext.defaultParallelism,
               math.ceil(int(size) / int(sc_cfg["partition_bytes"])))


def run_dedup(spark, input_path: str, output_path: str, config: dict | None = None,
              stats_path: str | None = None, overwrite: bool = False) -> RunStats:
    """Deduplicate the `documents` table at `input_path` into `output_path` (Delta, replaced) and
    `<output_path>_duplicates`; returns the run's statistics (also appended to `stats_path`).

    Both outputs must be new or dedup's own tables (core/tables.py `claim_output`), unless
    `overwrite`; `_duplicates` is written first and the deduped table's commit names its version,
    so readers (`read_companion`) see the old pair or the new pair, never a mix.
    The session's `spark.sql.shuffle.partitions` is set for the run (see `shuffle_partitions`)
    and restored afterwards."""
    cfg = resolve_config(config)
    check_input_not_in_output(input_path, output_path)
    claim_output(spark, output_path, "dedup", overwrite)
    claim_output(spark, companion_path(output_path, "_duplicates"), "dedup.duplicates", overwrite)
    stats = RunStats("dedup", config_hash(cfg))
    stats.claim(spark, stats_path, overwrite)
    parts = shuffle_partitions(spark, input_path, cfg["spark"])
    checkpoints = Checkpoints(spark, checkpoint_folder(output_path, cfg["spark"]["checkpoint_dir"]),
                              "dedup")
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    try:      # the checkpoint folder goes whether the run ends or fails
        dedup_documents(spark, input_path, output_path, cfg, stats, stats_path, checkpoints)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
        checkpoints.close()
    return stats


def dedup_documents(spark, input_path: str, output_path: str, cfg: dict, stats: RunStats,
                    stats_path: str | None, checkpoints: Checkpoints) -> RunStats:
    """The stage's steps in order: read and check the documents, then url, exact, near (each
    folding documents into survivors), resolve every removal to its final survivor, lines, write
    the two output tables, check the accounting (documents in - removed = documents out)."""
    stats.info.update(input=input_path, output=output_path,
                      shuffle_partitions=spark.conf.get("spark.sql.shuffle.partitions"))
    t_start = time.time()
    docs = read_documents(spark, input_path)
    metadata = checkpoints.save(metadata_columns(docs, cfg["url"]["recompute"]))
    n_in = count_documents(metadata, input_path)
    stats.set("docs.in", n_in)
    _log(f"{n_in:,} documents in ({time.time() - t_start:.1f} s)")

    folding = Folding(alive=metadata, count=n_in)
    removals = Outcomes(stats, "removed")          # removed.<reason>, one counter per REASONS
    for step, key in (("url", "_url_key"), ("exact", "_text_hash")):
        removals.set(step, fold_same_key(folding, key, step, checkpoints)
                     if cfg[step]["enabled"] else 0)
    removals.set("near", fold_near_duplicates(folding, docs, cfg["minhash"], checkpoints, stats)
                 if cfg["minhash"]["enabled"] else 0)
    removed = resolve_survivors(spark, folding, checkpoints)
    survivors = checkpoints.save(survivor_keys(folding.alive, removed))

    changed = None
    if cfg["lines"]["enabled"] and folding.count:
        changed = remove_repeated_lines(docs, survivors, folding.count, cfg["lines"], checkpoints,
                                        stats)
    else:
        removals.set("lines_too_short", 0)
        stats.set("lines.removed", 0)

    out, dups = output_frames(spark, docs, metadata, survivors, changed, removed)
    write_outputs(spark, out, dups, output_path, stats)
    check_accounting(spark, output_path, n_in, stats)
    stats.info.update(bands=str(cfg["minhash"]["bands"]), rows=str(cfg["minhash"]["rows"]))
    stats.record(spark, stats_path)
    return stats


# ---- the steps, in the order dedup_documents runs them ------------------------------------------

def read_documents(spark, input_path: str) -> DataFrame:
    """The `documents` table with `_node`, a 64-bit id of doc_id that every later join uses."""
    docs = read_table(spark, input_path)
    missing = [c for c in REQUIRED if c not in docs.columns]
    if missing:
        raise ValueError(f"{input_path} is not a documents table: missing columns {missing}")
    return docs.withColumn("_node", F.xxhash64("doc_id"))


def metadata_columns(docs: DataFrame, recompute_url: bool) -> DataFrame:
    """The small per-document columns steps url, exact and near shuffle (no text): the URL key
    (`url_canonical`, or recomputed from `url`) and the normalised-text hash."""
    url_key = F.col("url_canonical")
    if recompute_url:
        from curation.extract.urls import canonicalize_url

        @F.pandas_udf(T.StringType())
        def canon(u: pd.Series) -> pd.Series:
            return u.map(lambda x: canonicalize_url(x) if x is not None else None)
        url_key = canon("url")
    return docs.select("doc_id", "_node", "source", "url", "fetch_time", url_key.alias("_url_key"),
                       normalized_hash_col("text").alias("_text_hash"))


def count_documents(metadata: DataFrame, input_path: str) -> int:
    """The number of documents, after checking that doc_id is set and unique and that no two
    doc_ids share a node id."""
    counts = metadata.agg(F.count(F.lit(1)).alias("n"), F.count("doc_id").alias("n_id"),
                          F.countDistinct("doc_id").alias("d_id"),
                          F.countDistinct("_node").alias("d_node")).first()
    n_in = int(counts["n"])
    if counts["n_id"] != n_in:
        raise ValueError(f"{input_path}: {n_in - counts['n_id']} documents have a null doc_id")
    if counts["d_id"] != n_in:
        raise ValueError(f"{input_path}: doc_id is not unique ({n_in - counts['d_id']} repeated "
                         "rows); was the documents table appended to twice?")
    if counts["d_node"] != n_in:
        raise RuntimeError("64-bit node id collision between two doc_ids; cannot continue")
    return n_in


@dataclass
class Folding:
    """What steps url, exact and near leave: the survivors' metadata (`alive`, a saved frame) and
    their number, each step's removals (doc_id, rep, reason) with `rep` the survivor in that
    step, and the saved frames those removals read (deleted once they are resolved)."""
    alive: DataFrame
    count: int
    removals: list[DataFrame] = field(default_factory=list)
    read_by_removals: list[DataFrame] = field(default_factory=list)

    def advance(self, alive: DataFrame, removals: DataFrame, reason: str, t0: float,
                note: str = "") -> int:
        """The step's survivors become `alive`; returns the number it removed."""
        n_alive = alive.count()
        n_removed = self.count - n_alive
        self.alive, self.count = alive, n_alive
        self.removals.append(removals)
        _log(f"{reason}: {n_removed:,} removed{note} ({time.time() - t0:.1f} s)")
        return n_removed


def fold_same_key(folding: Folding, key: str, reason: str, checkpoints: Checkpoints) -> int:
    """Steps url and exact: one survivor per non-null `key`; returns the number removed."""
    t0 = time.time()
    alive, removals = keep_one_per_key(folding.alive, key, reason)
    alive = checkpoints.save(alive, f"alive-{reason}")
    folding.read_by_removals.append(alive)
    return folding.advance(alive, removals, reason, t0)


def fold_near_duplicates(folding: Folding, docs: DataFrame, minhash_cfg: dict,
                         checkpoints: Checkpoints, stats: RunStats) -> int:
    """Step near: MinHash LSH candidate edges (verified by Jaccard if configured), connected
    components, one survivor per component; returns the number removed."""
    t0 = time.time()
    texts = docs.join(folding.alive.select("_node"), "_node", "left_semi").select("_node", "text")
    edges = near_edges(texts, minhash_cfg, checkpoints, stats)
    _log(f"near: {stats.counters['near.candidate_edges']:,} candidate edges "
         f"({time.time() - t0:.1f} s)")
    components, rounds = connected_components(edges, checkpoints,
                                              max_rounds=int(minhash_cfg["max_rounds"]))
    stats.set("near.components_rounds", rounds)
    removals = checkpoints.save(component_removals(folding.alive, components), "near-map")
    checkpoints.drop(edges)
    drop_components_graph(checkpoints)
    alive = checkpoints.save(folding.alive.join(removals.select("doc_id"), "doc_id", "left_anti"),
                             "alive-near")
    folding.read_by_removals.append(removals)
    return folding.advance(alive, removals, "near", t0, f" in {rounds} component rounds")


def near_edges(texts: DataFrame, minhash_cfg: dict, checkpoints: Checkpoints,
               stats: RunStats) -> DataFrame:
    """The saved near-duplicate edges: LSH candidates, kept only if their exact shingle Jaccard
    reaches `verify_threshold` when `verify` is "jaccard"."""
    edges = checkpoints.save(near_duplicate_edges(texts, minhash_cfg), "edges")
    n_candidates = edges.count()
    stats.set("near.candidate_edges", n_candidates)
    if minhash_cfg["verify"] == "jaccard":
        candidates = edges
        edges = checkpoints.save(verify_edges(candidates, texts, int(minhash_cfg["ngram"]),
                                              float(minhash_cfg["verify_threshold"])),
                                 "edges-verified")
        checkpoints.drop(candidates)
        stats.set("near.edges_rejected_by_jaccard", n_candidates - edges.count())
    return edges


def component_removals(alive: DataFrame, components: DataFrame) -> DataFrame:
    """(doc_id, rep, "near") for every member of a component but its survivor `rep`."""
    members = alive.join(components.withColumnRenamed("node", "_node"), "_node")
    w = Window.partitionBy("component").orderBy(*_survivor_order())
    ranked = members.withColumn("_rn", F.row_number().over(w)).withColumn(
        "_rep", F.first("doc_id").over(w))
    return ranked.where(F.col("_rn") > 1).select(
        "doc_id", F.col("_rep").alias("rep"), F.lit("near").alias("reason"))


def resolve_survivors(spark, folding: Folding, checkpoints: Checkpoints) -> DataFrame:
    """Every removed document with its final survivor (url -> exact -> near): a document folded
    by url into a survivor that exact or near folded later points at the later survivor. Saved;
    the frames the per-step removals read are deleted once it is (but the current survivors)."""
    if not folding.removals:
        return spark.createDataFrame([], "doc_id string, rep string, reason string")
    removed = folding.removals[0]
    for part in folding.removals[1:]:
        removed = removed.unionByName(part)
    for part in folding.removals[1:]:
        later = part.select(F.col("doc_id").alias("rep"), F.col("rep").alias("_rep2"))
        removed = removed.join(later, "rep", "left").select(
            "doc_id", F.coalesce("_rep2", "rep").alias("rep"), "reason")
    removed = checkpoints.save(removed, "removed")
    checkpoints.drop(*[f for f in folding.read_by_removals if f is not folding.alive])
    return removed


def survivor_keys(alive: DataFrame, removed: DataFrame) -> DataFrame:
    """The survivors' keys, one small table (_node, source, cluster_size): every later join with
    the text is on _node, so the documents are shuffled at most once per step."""
    sizes = removed.groupBy(F.col("rep").alias("doc_id")).agg(
        (F.count(F.lit(1)) + 1).cast("long").alias("cluster_size"))
    return (alive.select("_node", "doc_id", "source").join(sizes, "doc_id", "left")
            .select("_node", "source",
                    F.coalesce("cluster_size", F.lit(1)).cast("long").alias("cluster_size")))


def remove_repeated_lines(docs: DataFrame, survivors: DataFrame, n_survivors: int,
                          line_cfg: dict, checkpoints: Checkpoints, stats: RunStats) -> DataFrame:
    """Step lines: the saved rewritten texts (_node, _new_text, lines_removed, _short) of the
    survivors that hold lines repeated in more than `threshold` documents of their bucket;
    `_short` marks a text left shorter than `min_chars` (that document is dropped)."""
    t0 = time.time()
    n_buckets = max(1, math.ceil(n_survivors / int(line_cfg["bucket_size"])))
    repeated = checkpoints.save(repeated_lines(docs, survivors, n_buckets, line_cfg), "bad-lines")
    # the rewritten texts are written to the checkpoint folder, not cached in memory
    changed = checkpoints.save(rewritten_texts(docs, repeated, int(line_cfg["min_chars"])),
                               "changed-texts")
    checkpoints.drop(repeated)
    totals = changed.agg(F.count(F.lit(1)).alias("docs"), F.sum("lines_removed").alias("lines"),
                         F.sum(F.col("_short").cast("int")).alias("short")).first()
    n_docs, n_lines, n_short = (int(totals[k] or 0) for k in ("docs", "lines", "short"))
    stats.set("lines.docs_changed", n_docs)
    stats.set("lines.removed", n_lines)
    stats.set("lines.buckets", n_buckets)
    Outcomes(stats, "removed").set("lines_too_short", n_short)
    _log(f"lines: {n_lines:,} lines removed from {n_docs:,} documents, {n_short:,} dropped "
         f"({time.time() - t0:.1f} s)")
    return changed


def repeated_lines(docs: DataFrame, survivors: DataFrame, n_buckets: int,
                   line_cfg: dict) -> DataFrame:
    """(_node, _bad: the hashes of the document's lines seen in more than `threshold` documents of
    its bucket), for the survivors not in `skip_sources`: the distinct lines of each are hashed
    (vectorised per batch), one window counts documents per (bucket, line)."""
    eligible = survivors.where(~F.col("source").isin(list(line_cfg["skip_sources"]))) \
        if line_cfg["skip_sources"] else survivors
    lines = (docs.select("_node", "doc_id", "text").join(eligible.select("_node"), "_node",
                                                          "left_semi")
             .select("_node", "text",
                     F.pmod(F.xxhash64("doc_id", F.lit("lines")), F.lit(n_buckets)).cast("int")
                     .alias("_bucket"))
             .mapInArrow(_line_rows, LINE_SCHEMA))
    w = Window.partitionBy("_bucket", "_line")
    return (lines.withColumn("_n", F.count(F.lit(1)).over(w))
            .where(F.col("_n") > int(line_cfg["threshold"]))
            .groupBy("_node").agg(F.collect_list("_line").alias("_bad")))


def rewritten_texts(docs: DataFrame, repeated: DataFrame, min_chars: int) -> DataFrame:
    """(_node, _new_text, lines_removed, _short) for the documents that have repeated lines."""
    return (docs.select("_node", "text").join(repeated, "_node")
            .select("_node", _remove_lines_udf("text", "_bad").alias("r"))
            .select("_node", F.col("r.text").alias("_new_text"),
                    F.col("r.lines_removed").alias("lines_removed"),
                    (F.length("r.text") < min_chars).alias("_short")))


def output_frames(spark, docs: DataFrame, metadata: DataFrame, survivors: DataFrame,
                  changed: DataFrame | None, removed: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(deduped, duplicates): the documents x survivor keys (x rewritten texts), all joined on
    _node; the removals with their survivor, and the documents too short after line removal."""
    kept = (docs.join(survivors.drop("source"), "_node")
            .withColumn("cluster_id", F.col("doc_id")))
    if changed is not None:
        kept = (with_new_text(kept.join(changed, "_node", "left")
                              .where(F.col("_short").isNull() | ~F.col("_short")))
                .withColumn("lines_removed", F.coalesce("lines_removed", F.lit(0)).cast("int"))
                .drop("_new_text", "_short"))
        too_short = changed.where(F.col("_short")).select("_node")
    else:
        kept = kept.withColumn("lines_removed", F.lit(0).cast("int"))
        too_short = spark.createDataFrame([], "_node long")

    base_cols = [c for c in docs.columns if c != "_node"]
    out = kept.select(*base_cols, "cluster_id", "cluster_size", "lines_removed")
    dups = (removed.select("doc_id", F.col("rep").alias("duplicate_of"), "reason")
            .unionByName(too_short.join(metadata, "_node").select(
                "doc_id", F.lit(None).cast("string").alias("duplicate_of"),
                F.lit("lines_too_short").alias("reason")).drop("_node"))
            .join(metadata.select("doc_id", "source", "url", "fetch_time"), "doc_id", "left"))
    return out, dups


def write_outputs(spark, out: DataFrame, dups: DataFrame, output_path: str,
                  stats: RunStats) -> None:
    """The companion first; the deduped table's commit (naming the companion's version) completes
    the run, so a run killed between the two writes leaves the previous pair readable as it was."""
    dup_path = companion_path(output_path, "_duplicates")
    meta_info = {"curation.job": "dedup", "run_id": stats.run_id, "config_hash": stats.config_hash}
    write_table(dups.select(*[F.col(f.name).cast(f.dataType) for f in DUPLICATES.fields]),
                dup_path, job="dedup.duplicates",
                user_metadata={**meta_info, "curation.job": "dedup.duplicates"})
    crash_point("dedup.between_writes")
    write_table(out, output_path, job="dedup",
                user_metadata={**meta_info, "companions": {"_duplicates": table_version(spark, dup_path)}})


def check_accounting(spark, output_path: str, n_in: int, stats: RunStats) -> None:
    """Documents in - removed (every reason) must equal the documents written."""
    n_out = read_table(spark, output_path).count()
    stats.set("docs.out", n_out)
    removed_total = Outcomes(stats, "removed").total(REASONS)
    if n_in - removed_total != n_out:
        raise RuntimeError(f"dedup accounting mismatch: {n_in} in - {removed_total} removed "
                           f"!= {n_out} out")
