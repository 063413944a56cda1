"""Building a mix on Spark: `build_mix(spark, spec, output_dir)` / `run_mix(...)`.

1. Read every source's Delta table at its current version (recorded), apply its filter.
2. Tokenize in parallel (`mapInPandas` + tiktoken `encode_ordinary_batch`); in the same pass mark
   documents held out (stable doc_id hash), down-sampled, empty. Tokens go to a work Parquet table
   as uint32 bytes, once.
3. From the token counts alone (no tokens move): drop duplicate doc_ids (recorded), make the plan
   (exact row targets, epochs, feasibility), and give every document occurrence of every pass its
   offset in its source's stream: a running sum over (seed, source, pass, doc_id) order.
4. Cut each occurrence into per-row pieces; the interleave (computed on the driver from the row
   counts alone) gives each source row its global row number. Pieces are range-partitioned and
   sorted by (row, position) and written once.
5. The driver streams that sorted table and writes the shards, index, manifest and report into a
   temporary folder that then replaces the output folder.

Everything is a function of the data, the spec and the seed, never of partitioning: the output is
byte-identical however the inputs are partitioned.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from curation.stats import RunStats
from curation.tables import read_table, table_version
from mixer import order as morder
from mixer.interleave import interleave
from mixer.pack import assemble_row, doc_pieces
from mixer.plan import make_plan
from mixer.report import format_report, mix_report
from mixer.shards import FORMAT_VERSION, ShardWriter, write_json
from mixer.spec import DEFAULTS, SpecError, load_spec, source_shares, spec_hash
from mixer.tokenizer import get_tokenizer

__all__ = ["DEFAULTS", "build_mix", "run_mix"]

TRAIN, HELDOUT = "train", "heldout"


def _log(msg: str) -> None:
    print(f"[mix] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- per-batch functions (workers)

def tokenize_arrow(names, seed, downsample, heldout_fraction, tokenizer, max_doc_tokens):
    """mapInArrow function: (src, doc_id, text) batches -> status, content hash, token counts and
    the tokens themselves as little-endian uint32 bytes (an Arrow binary column built straight
    from one numpy buffer: no per-token Python objects survive the batch)."""
    import itertools

    import pyarrow as pa

    def fn(batches):
        tok = get_tokenizer(tokenizer)
        enc = tok.encoding
        for rb in batches:
            n = rb.num_rows
            srcs = rb.column(0).to_numpy(zero_copy_only=False)
            ids = rb.column(1).to_pylist()
            texts = rb.column(2).to_pylist()
            status = [TRAIN] * n
            chash = np.zeros(n, dtype=np.int64)
            todo = []
            for i in range(n):
                d, t = ids[i], texts[i]
                if d is None or d == "":
                    status[i] = "null_doc_id"
                elif t is None or not t.strip():
                    status[i] = "empty_text"
                else:
                    chash[i] = int.from_bytes(hashlib.blake2b(
                        t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big",
                        signed=True)
                    s = int(srcs[i])
                    if morder.is_heldout(d, heldout_fraction):
                        status[i] = HELDOUT
                        todo.append(i)
                    elif morder.keep_downsampled(seed, names[s], d, downsample[s]):
                        todo.append(i)
                    else:
                        status[i] = "downsampled"
            kept = np.zeros(n, dtype=np.int64)
            orig = np.zeros(n, dtype=np.int64)
            lists = enc.encode_ordinary_batch([texts[i] for i in todo], num_threads=1) \
                if todo else []
            for i, t in zip(todo, lists):
                orig[i] = len(t)
            if max_doc_tokens:
                kept[:] = np.minimum(orig, max_doc_tokens)
                lists = [t[:max_doc_tokens] if len(t) > max_doc_tokens else t for t in lists]
            else:
                kept[:] = orig
            offsets = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(kept * 4, out=offsets[1:])
            flat = np.fromiter(itertools.chain.from_iterable(lists), dtype="<u4",
                               count=int(kept.sum()))
            tokens = pa.Array.from_buffers(pa.binary(), n,
                                           [None, pa.py_buffer(offsets), pa.py_buffer(flat)])
            yield pa.RecordBatch.from_arrays(
                [rb.column(0).cast(pa.int32()), rb.column(1), pa.array(status, pa.string()),
                 pa.array(chash), pa.array(kept), pa.array(orig), tokens],
                names=["src", "doc_id", "status", "chash", "n", "n_orig", "tokens"])
    return fn


TOKENS_SCHEMA = ("src int, doc_id string, status string, chash long, n long, n_orig long, "
                 "tokens binary")


def order_keys(seed: int):
    """mapInArrow function adding the order key of every (unit, pass, doc_id) occurrence."""
    import pyarrow as pa

    def fn(batches):
        for rb in batches:
            names = rb.schema.names
            keys = np.fromiter(
                (morder.order_key(seed, k, p, d) for k, p, d in
                 zip(rb.column(names.index("keyname")).to_pylist(),
                     rb.column(names.index("pass")).to_pylist(),
                     rb.column(names.index("doc_id")).to_pylist())),
                dtype=np.int64, count=rb.num_rows)
            yield pa.RecordBatch.from_arrays(list(rb.columns) + [pa.array(keys)],
                                             names=names + ["key"])
    return fn


PIECES_SCHEMA = "g long, pos int, piece binary, occ_u int, occ_pass int, occ_dropped long"


def cut_pieces(seq_len: int, eot: int, row_g: dict):
    """mapInArrow function: document occurrences (u, offset, take, tokens, pass, len) -> one
    (g, pos, piece) per row each touches. An occurrence's first piece also carries its unit, pass
    and tokens dropped (len - take), so the driver counts occurrences while it writes the rows
    (other pieces: occ_u = -1)."""
    import pyarrow as pa

    def fn(batches):
        for rb in batches:
            us = rb.column(0).to_numpy(zero_copy_only=False)
            offs = rb.column(1).to_numpy(zero_copy_only=False)
            takes = rb.column(2).to_numpy(zero_copy_only=False)
            col = rb.column(3)
            bo = np.frombuffer(col.buffers()[1], dtype=np.int32)
            bo = bo[col.offset:col.offset + len(col) + 1]  # absolute offsets into the data
            data = col.buffers()[2]
            passes = rb.column(4).to_numpy(zero_copy_only=False)
            lens = rb.column(5).to_numpy(zero_copy_only=False)
            gs, poss, pcs, ou, op, od = [], [], [], [], [], []
            for j in range(rb.num_rows):
                k = int(bo[j + 1] - bo[j]) // 4
                toks = np.frombuffer(data, dtype="<u4", count=k, offset=int(bo[j])) if k \
                    else np.zeros(0, "<u4")
                gmap = row_g[int(us[j])]
                first = True
                for r, pos, piece in doc_pieces(int(offs[j]), int(takes[j]), toks, eot, seq_len):
                    gs.append(int(gmap[r]))
                    poss.append(pos)
                    pcs.append(piece.tobytes())
                    if first:
                        ou.append(int(us[j]))
                        op.append(int(passes[j]))
                        od.append(int(lens[j] - takes[j]))
                        first = False
                    else:
                        ou.append(-1)
                        op.append(0)
                        od.append(0)
            yield pa.RecordBatch.from_arrays(
                [pa.array(gs, pa.int64()), pa.array(poss, pa.int32()), pa.array(pcs, pa.binary()),
                 pa.array(ou, pa.int32()), pa.array(op, pa.int32()), pa.array(od, pa.int64())],
                names=["g", "pos", "piece", "occ_u", "occ_pass", "occ_dropped"])
    return fn


# ---------------------------------------------------------------------------------- the build

def _read_sources(spark, spec, input_path):
    """All sources as one (src, doc_id, text) frame, reading each table once: a document
    matching several sources' filters appears once per source (as a union would give)."""
    from pyspark.sql import functions as F
    from pyspark.errors import AnalysisException
    groups, versions, tables = {}, [], {}
    for i, x in enumerate(spec["sources"]):
        path = x["table"] or input_path
        if not path:
            raise SpecError(f"source {x['name']!r} names no table and no --input was given")
        path = str(path)
        if path not in tables:
            v = table_version(spark, path)
            if v is None:
                raise SpecError(f"source {x['name']!r}: {path} is not a Delta table")
            tables[path] = (v, read_table(spark, path, version=v))
        v, df = tables[path]
        for c in (x["id_column"], x["text_column"]):
            if c not in df.columns:
                raise SpecError(f"source {x['name']!r}: table {path} has no column {c!r} "
                                f"(columns: {df.columns})")
        cond = F.lit(True)
        if x["filter"]:
            try:
                df.where(x["filter"]).schema  # analyse now: a bad filter fails here, naming it
            except AnalysisException as e:
                raise SpecError(f"source {x['name']!r}: bad filter {x['filter']!r}: "
                                f"{str(e).splitlines()[0]}") from None
            cond = F.expr(x["filter"])
        groups.setdefault((path, x["id_column"], x["text_column"]), []).append((i, cond))
        versions.append({path: v})
    frames = []
    for (path, idc, textc), members in groups.items():
        df = tables[path][1]
        if len(members) == 1:
            i, cond = members[0]
            frames.append(df.where(cond).select(
                F.lit(i).cast("int").alias("src"), F.col(idc).cast("string").alias("doc_id"),
                F.col(textc).cast("string").alias("text")))
            continue
        anyc = members[0][1]
        for _, c in members[1:]:
            anyc = anyc | c
        srcs = F.filter(F.array(*[F.when(c, F.lit(i).cast("int")) for i, c in members]),
                        lambda e: e.isNotNull())
        frames.append(df.where(anyc).select(
            F.explode(srcs).alias("src"), F.col(idc).cast("string").alias("doc_id"),
            F.col(textc).cast("string").alias("text")))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out, versions


def resolve_spec(spec) -> dict:
    """A resolved spec from a YAML path, a dict of overrides, or an already resolved dict (marked
    with `_resolved: True`, which is removed)."""
    if isinstance(spec, dict) and spec.get("_resolved"):
        return {k: v for k, v in spec.items() if k != "_resolved"}
    return load_spec(spec)


def _replace_dir(tmp: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(final.name + f".old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Phases:
    """Times each phase of the build and counts the Spark jobs it ran (job group per phase):
    `seconds.<phase>` and `spark_jobs.<phase>` in the run statistics."""

    def __init__(self, spark, stats: RunStats):
        self.sc, self.stats = spark.sparkContext, stats

    def __call__(self, name: str):
        import contextlib

        @contextlib.contextmanager
        def cm():
            group = f"mix-{self.stats.run_id}-{name}"
            prev = self.sc.getLocalProperty("spark.jobGroup.id")
            self.sc.setJobGroup(group, f"mix: {name}")
            t = time.time()
            try:
                yield
            finally:
                self.stats.set(f"seconds.{name}", round(time.time() - t, 3))
                try:
                    n = len(self.sc.statusTracker().getJobIdsForGroup(group))
                except Exception:  # pragma: no cover - tracker unavailable (e.g. Spark Connect)
                    n = -1
                self.stats.set(f"spark_jobs.{name}", n)
                self.sc.setLocalProperty("spark.jobGroup.id", prev)
                _log(f"{name}: {time.time() - t:.1f} s, {n} Spark jobs")
        return cm()


# Occurrence tables up to this many rows are broadcast to the token table, which then is neither
# shuffled for the join nor for the row order (the driver merges the sorted part files).
BROADCAST_MAX_OCCURRENCES = 1_000_000
MERGE_MAX_FILES = 256


def build_mix(spark, spec, output_dir: str, input_path: str | None = None,
              stats_path: str | None = None, work_dir: str | None = None) -> RunStats:
    """Build one stage's token stream from `spec` (a resolved dict, a dict of overrides or a
    YAML path) into `output_dir` (replaced atomically). Returns the run statistics; the report
    and manifest are in `stats.info`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spec = resolve_spec(spec)
    if not spec["sources"]:
        raise SpecError("the spec has no sources")
    input_path = input_path or spec["input"]
    sh = spec_hash(spec)
    stats = RunStats("mix", config_hash=sh)
    tok = get_tokenizer(spec["tokenizer"])
    L, seed = spec["seq_len"], spec["seed"]
    names = [x["name"] for x in spec["sources"]]
    cats = list(spec["categories"])
    S, C = len(names), len(cats)
    src_cat = [cats.index(x["category"]) for x in spec["sources"]]
    out = Path(output_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir or out.parent / f".{out.name}.work-{stats.run_id}")
    tmp = out.with_name(f".{out.name}.tmp-{stats.run_id}")
    t0 = time.time()
    phase = _Phases(spark, stats)
    try:
        # 1-2. read and tokenize once
        with phase("tokenize"):
            docs, versions = _read_sources(spark, spec, input_path)
            _log(f"tokenizing {S} sources with {tok.name} ({tok.fingerprint})")
            tokfn = tokenize_arrow(names, seed, [x["downsample"] for x in spec["sources"]],
                                   spec["heldout_fraction"], spec["tokenizer"],
                                   spec["max_doc_tokens"])
            docs.mapInArrow(tokfn, TOKENS_SCHEMA).write.mode("overwrite") \
                .option("compression", "none").parquet(str(work / "tokens"))
        tokens = spark.read.parquet(str(work / "tokens"))

        # 3a. duplicates of a doc_id within a source: keep the smallest content hash
        # one exchange on doc_id serves both windows below (per (src, doc_id) and (cat, doc_id))
        meta = tokens.select("src", "doc_id", "status", "chash", "n", "n_orig") \
            .repartition("doc_id")
        live = F.col("status").isin(TRAIN, HELDOUT)
        w = Window.partitionBy("src", "doc_id").orderBy("chash")
        meta = meta.withColumn("_rn", F.when(live, F.row_number().over(w))) \
            .withColumn("status", F.when(F.col("_rn") > 1, F.lit("duplicate_doc_id"))
                        .otherwise(F.col("status"))).drop("_rn") \
            .withColumn("cat", F.element_at(F.array(*[F.lit(k) for k in src_cat]),
                                            F.col("src") + 1)).cache()
        # held out: one unit per category, distinct documents, whole rows only
        held = meta.where(F.col("status") == HELDOUT)
        wh = Window.partitionBy("cat", "doc_id").orderBy("src", "chash")
        held = held.withColumn("_rn", F.row_number().over(wh)).where("_rn = 1").drop("_rn")
        with phase("count"):
            # one job: per (src, status) counts, and per category the distinct held-out docs
            per_status = meta.groupBy("src", "status").agg(
                F.count("*").alias("docs"), F.sum(F.col("n") + 1).alias("tokens"),
                F.sum(F.when(F.col("n") < F.col("n_orig"), 1).otherwise(0)).alias("truncated"),
                F.sum(F.col("n_orig") - F.col("n")).alias("tokens_truncated"))
            per_held = held.groupBy("cat").agg(
                F.count("*").alias("docs"), F.sum(F.col("n") + 1).alias("tokens"))
            both = per_status.select(F.lit(0).alias("kind"), "src", "status", "docs", "tokens",
                                     "truncated", "tokens_truncated",
                                     F.lit(None).cast("int").alias("cat")) \
                .unionByName(per_held.select(
                    F.lit(1).alias("kind"), F.lit(None).cast("int").alias("src"),
                    F.lit(None).cast("string").alias("status"), "docs", "tokens",
                    F.lit(None).cast("long").alias("truncated"),
                    F.lit(None).cast("long").alias("tokens_truncated"), "cat")).collect()
        agg = [r for r in both if r["kind"] == 0]
        counts = {(r["src"], r["status"]): r for r in agg}
        exact_dups = any(st == "duplicate_doc_id" for (_, st) in counts)

        def c(i, st, k):
            r = counts.get((i, st))
            return int(r[k] or 0) if r is not None else 0

        for i, nm in enumerate(names):
            for st in ("null_doc_id", "empty_text", "downsampled", "duplicate_doc_id", HELDOUT,
                       TRAIN):
                v = c(i, st, "docs")
                stats.add(f"documents.{st}", v)
                if v:
                    stats.add(f"documents.{st}.{nm}", v)
            stats.add("documents.in", sum(c(i, st, "docs") for (j, st) in counts if j == i))
        # 3b. plan
        avail = [c(i, TRAIN, "tokens") for i in range(S)]
        ndocs = [c(i, TRAIN, "docs") for i in range(S)]
        plan = make_plan(spec, source_shares(spec), avail, ndocs)
        order = interleave([s.target_rows for s in plan.sources])
        N = plan.n_rows
        _log(f"plan: {N:,} rows of {L} = {plan.total_tokens:,} tokens; epochs "
             + ", ".join(f"{s.name} {s.epochs:.2f}" for s in plan.sources))

        hagg = {r["cat"]: (int(r["docs"]), int(r["tokens"] or 0)) for r in both
                if r["kind"] == 1}
        h_avail = [hagg.get(k, (0, 0))[1] for k in range(C)]
        h_rows = [a // L for a in h_avail]
        h_order = interleave(h_rows)
        H = len(h_order)

        # units: train sources 0..S-1, held-out categories S..S+C-1
        unit_rows = [s.target_rows for s in plan.sources] + h_rows
        unit_avail = avail + h_avail
        unit_passes = [s.passes for s in plan.sources] + [1 if r else 0 for r in h_rows]
        unit_key = names + [f"heldout:{k}" for k in cats]
        row_g = {}
        for u in range(S):
            row_g[u] = np.flatnonzero(order == u).astype(np.int64)
        for k in range(C):
            row_g[S + k] = N + np.flatnonzero(h_order == k).astype(np.int64)
        units = spark.createDataFrame(
            [(u, unit_key[u], unit_passes[u], unit_rows[u] * L, unit_avail[u])
             for u in range(S + C) if unit_rows[u] > 0],
            "u int, keyname string, passes int, need long, avail long")

        # 3c. every occurrence's offset in its unit's stream (metadata only, no tokens move)
        train_occ = meta.where(F.col("status") == TRAIN).select(
            F.col("src").alias("u"), "src", "doc_id", "chash", (F.col("n") + 1).alias("len"))
        held_occ = held.select((F.col("cat") + S).cast("int").alias("u"), "src", "doc_id",
                               "chash", (F.col("n") + 1).alias("len"))
        occ = train_occ.unionByName(held_occ).join(F.broadcast(units), "u") \
            .withColumn("pass", F.explode(F.sequence(F.lit(0), F.col("passes") - 1)))
        from pyspark.sql import types as T
        key_schema = T.StructType(list(occ.schema.fields) + [T.StructField("key", T.LongType())])
        occ = occ.mapInArrow(order_keys(seed), key_schema)
        wo = Window.partitionBy("u", "pass").orderBy("key", "doc_id") \
            .rowsBetween(Window.unboundedPreceding, -1)
        occ = occ.withColumn("offset", F.col("pass") * F.col("avail")
                             + F.coalesce(F.sum("len").over(wo), F.lit(0))) \
            .where(F.col("offset") < F.col("need")) \
            .withColumn("take", F.least(F.col("len"), F.col("need") - F.col("offset"))) \
            .select("u", "src", "doc_id", "chash", "pass", "offset", "take", "len")
        # at most this many occurrences (every document in every pass); the exact per-unit
        # figures come back with the pieces, so no Spark job is spent on them here
        n_occ = sum(ndocs[i] * plan.sources[i].passes for i in range(S)) \
            + sum(hagg.get(k, (0, 0))[0] for k in range(C) if h_rows[k])

        # 4. pieces, each (row g, position) once
        with phase("pieces"):
            tok_side = tokens.where(F.col("status").isin(TRAIN, HELDOUT)) \
                .select("src", "doc_id", "chash", "tokens")
            if exact_dups:
                tok_side = tok_side.dropDuplicates(["src", "doc_id", "chash"])
            occ_side = occ.select("u", "src", "doc_id", "chash", "pass", "offset", "take", "len")
            n_files = len(list((work / "tokens").glob("part-*")))
            local_merge = n_occ <= BROADCAST_MAX_OCCURRENCES and not exact_dups \
                and n_files <= MERGE_MAX_FILES
            if local_merge:  # the token table stays where it is: no shuffle of token bytes
                occ_side = F.broadcast(occ_side)
            joined = tok_side.join(occ_side, ["src", "doc_id", "chash"]) \
                .select("u", "offset", "take", "tokens", "pass", "len")
            pieces = joined.mapInArrow(cut_pieces(L, tok.eot_id, row_g), PIECES_SCHEMA)
            if not local_merge:
                nparts = max(1, min(512, (N + H) // 256 + 1))
                pieces = pieces.repartitionByRange(nparts, "g")
            pieces.sortWithinPartitions("g", "pos").write.mode("overwrite") \
                .option("compression", "none").parquet(str(work / "rows"))
        stats.set("seconds.spark", round(time.time() - t0, 3))

        # 5. stream rows to the shards: a k-way merge of the part files, each sorted by (g, pos)
        if tmp.exists():
            shutil.rmtree(tmp)
        with phase("shards"):
            main_w = ShardWriter(tmp, L, spec["shard_rows"])
            held_w = ShardWriter(tmp / "heldout", L, spec["shard_rows"])
            uagg = _write_rows(work / "rows", N, H, order, h_order, L, main_w, held_w, S + C)
            main_shards, held_shards = main_w.close(), held_w.close()
        stats.set("seconds.write", round(time.time() - t0 - stats.counters["seconds.spark"], 3))

        # manifest + report
        tinfo = tok.info()
        per_source, src_entries = [], []
        for i, s in enumerate(plan.sources):
            ua = uagg.get(i)
            ps = {"documents": int(ua["documents"]) if ua else 0,
                  "occurrences": int(ua["occurrences"]) if ua else 0,
                  "documents_truncated": c(i, TRAIN, "truncated"),
                  "tokens_truncated": c(i, TRAIN, "tokens_truncated"),
                  "tokens_dropped": int(ua["dropped"]) if ua else 0,
                  "documents_heldout": c(i, HELDOUT, "docs"),
                  "documents_downsampled": c(i, "downsampled", "docs")}
            per_source.append(ps)
            src_entries.append({"name": s.name, "category": s.category,
                                "target_tokens": s.target_tokens, "tokens": s.target_tokens,
                                "documents": ps["documents"], "epochs": round(s.epochs, 6),
                                "available_tokens": s.available_tokens,
                                "delta_versions": versions[i]})
            stats.add("tokens.dropped", ps["tokens_dropped"])
            stats.add("documents.truncated", ps["documents_truncated"])
            stats.add("tokens.truncated", ps["tokens_truncated"])
        all_versions = {}
        for v in versions:
            all_versions.update(v)
        fp = hashlib.sha256(json.dumps([sh, sorted(all_versions.items()), tinfo["fingerprint"],
                                        seed, L, N]).encode()).hexdigest()[:16]
        h_entries = [{"name": k, "category": k, "target_tokens": h_rows[j] * L,
                      "tokens": h_rows[j] * L,
                      "documents": hagg.get(j, (0, 0))[0], "epochs": 1.0 if h_rows[j] else 0.0,
                      "tokens_dropped": h_avail[j] - h_rows[j] * L}
                     for j, k in enumerate(cats)]
        heldout_info = {"n_rows": H, "rows": {k: h_rows[j] for j, k in enumerate(cats)},
                        "documents": {k: hagg.get(j, (0, 0))[0] for j, k in enumerate(cats)},
                        "tokens_dropped": sum(h_avail) - H * L}
        report = mix_report(spec["stage"], plan, order, per_source, spec["report_window_rows"],
                            heldout_info)
        base = {"format_version": FORMAT_VERSION, "stage": spec["stage"], "seq_len": L,
                "dtype": "uint32", "tokenizer": tinfo, "spec_hash": sh, "seed": seed,
                "delta_versions": all_versions}
        manifest = {**base, "n_rows": N, "total_tokens": N * L, "shards": main_shards,
                    "sources": src_entries, "categories": spec["categories"],
                    "fingerprint": fp, "plan": plan.to_dict(), "spec": spec}
        hfp = hashlib.sha256((fp + ":heldout").encode()).hexdigest()[:16]
        hmanifest = {**base, "stage": spec["stage"] + ":heldout", "n_rows": H,
                     "total_tokens": H * L, "shards": held_shards, "sources": h_entries,
                     "categories": {k: (h_rows[j] / H if H else 0.0) for j, k in enumerate(cats)},
                     "heldout_fraction": spec["heldout_fraction"], "fingerprint": hfp}
        write_json(tmp / "manifest.json", manifest)
        write_json(tmp / "mix_report.json", report)
        write_json(tmp / "heldout" / "manifest.json", hmanifest)
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for name in ("meta",):
            df = locals().get(name)
            if df is not None:
                df.unpersist()

    stats.set("rows", N)
    stats.set("rows.heldout", H)
    stats.set("tokens.out", N * L)
    stats.set("tokens.available", sum(avail))
    stats.set("tokens_per_second", round(sum(avail) / max(time.time() - t0, 1e-9), 1))
    stats.info.update({"output": str(out), "fingerprint": fp, "spec_hash": sh,
                       "tokenizer": tinfo["fingerprint"]})
    stats.report, stats.manifest = report, manifest  # for callers (benchmarks, notebooks)
    print(format_report(report), file=sys.stderr, flush=True)
    return stats


def _write_rows(rows_dir: Path, N: int, H: int, order, h_order, L: int, main_w, held_w,
                n_units: int) -> dict:
    """Merge the pieces part files, each sorted by (g, pos), into the two writers in global row
    order (part files may hold disjoint ranges or interleaved rows alike). Returns per unit the
    occurrences, documents (first-pass occurrences) and tokens dropped, counted on the way."""
    import heapq

    import pyarrow.parquet as pq

    occ = np.zeros(n_units, np.int64)
    docs = np.zeros(n_units, np.int64)
    dropped = np.zeros(n_units, np.int64)

    def pieces(f):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=1024, columns=[
                "g", "pos", "piece", "occ_u", "occ_pass", "occ_dropped"]):
            u = batch.column(3).to_numpy()
            m = u >= 0
            occ[:] += np.bincount(u[m], minlength=n_units)
            docs[:] += np.bincount(u[m & (batch.column(4).to_numpy() == 0)], minlength=n_units)
            dropped[:] += np.bincount(u[m], weights=batch.column(5).to_numpy()[m],
                                      minlength=n_units).astype(np.int64)
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(),
                           batch.column(2).to_pylist())

    files = sorted(rows_dir.glob("part-*.parquet"))
    expect, cur_g, cur = 0, None, []
    total = N + H
    step = max(1, total // 10)

    def flush():
        nonlocal expect
        if cur_g != expect:
            raise RuntimeError(f"mix rows out of order: expected row {expect}, got {cur_g}")
        data, starts = assemble_row(cur, L)
        if cur_g < N:
            main_w.add(int(order[cur_g]), data, starts)
        else:
            held_w.add(int(h_order[cur_g - N]), data, starts)
        expect += 1
        if expect % step == 0:
            _log(f"writing shards: {expect:,}/{total:,} rows")

    for g, p, b in heapq.merge(*(pieces(f) for f in files), key=lambda x: (x[0], x[1])):
        if g != cur_g:
            if cur_g is not None:
                flush()
            cur_g, cur = g, []
        cur.append((p, b))
    if cur_g is not None:
        flush()
    if expect != total:
        raise RuntimeError(f"mix wrote {expect} rows, planned {total}")
    return {u: {"occurrences": int(occ[u]), "documents": int(docs[u]),
                "dropped": int(dropped[u])} for u in range(n_units) if occ[u]}


def run_mix(spark, input_path: str | None, output_path: str, config=None,
            stats_path: str | None = None, spec_path: str | None = None) -> RunStats:
    """The stage entry point: `config` is the spec (dict of overrides or YAML path); `input_path`
    is the default table for sources that name none."""
    spec = resolve_spec(spec_path or config)
    stats = build_mix(spark, {**spec, "_resolved": True}, output_path, input_path=input_path)
    stats.record(spark, stats_path, echo=True)
    return stats
