"""Building a mix on Spark: `build_mix(spark, spec, output_dir)` / `run_mix(...)`.

1. Read every source's Delta table at its current version (recorded), apply its filter.
2. Tokenize in parallel (`mapInArrow` + tiktoken `encode_ordinary_batch`); in the same pass mark
   documents held out (stable doc_id hash), down-sampled, empty. Each task appends the tokens, as
   raw uint32, to its own file in the work folder; a small metadata table (status, content hash,
   token counts, file and position) is the job's output. The text is read once, the tokens
   written once.
3. From the metadata alone (no tokens move): drop duplicate doc_ids (recorded), make the plan
   (exact row targets, epochs, feasibility), and give every document occurrence of every pass its
   offset in its source's stream: a running sum in (xxhash64(seed, source, pass, doc_id), doc_id)
   order, per (source, pass).
4. Cut each occurrence into per-row pieces (still metadata: file, position, length); the
   interleave (computed on the driver from the row counts alone) gives each source row its global
   row, hence its shard. One task per shard copies its pieces out of the memory-mapped token
   files into the shard and writes it straight into a temporary output folder; only the rows'
   document starts and per-source counts come back to the driver.
5. The driver writes the index, manifest and report, and the temporary folder replaces the
   output folder.

The work folder and the output folder are local paths or URIs (s3://, gs://, abfss://, hdfs://,
dbfs:/, /Volumes/...): every task writes and reads them through core/fs, so a cluster needs no
shared mount. On an object store the output is published file by file, the manifest last (the
manifest records every shard's sha256, so a reader can verify what it got).

Everything is a function of the data, the spec and the seed, never of partitioning: the output is
byte-identical however the inputs are partitioned.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import numpy as np

from core import fs
from core.ship import ship
from core.outcomes import Outcomes
from core.stats import RunStats
from core.tables import read_table, table_version
from mixer import order as morder
from mixer.interleave import interleave
from mixer.pack import cut_pieces, fill_rows
from mixer.plan import make_plan
from mixer.report import format_report, mix_report
from core.token_shards import FORMAT_VERSION, write_index_from_parts, write_json
from mixer.spec import DEFAULTS, SpecError, load_spec, source_shares, spec_hash
from core.tokenizer import get_tokenizer

__all__ = ["DEFAULTS", "build_mix", "run_mix"]

TRAIN, HELDOUT = "train", "heldout"


def _log(msg: str) -> None:
    print(f"[mix] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- per-batch functions (workers)

def tokenize_arrow(names, seed, downsample, heldout_fraction, tokenizer, max_doc_tokens,
                   token_dir: str, ranks=None):
    """mapInArrow function: (src, doc_id, text, chash) batches -> one metadata row per document
    (status, content hash, token counts, and where its tokens are). The tokens of every document that
    trains or is held out are appended, as little-endian uint32, to one raw file per task attempt
    under `token_dir` (a local path or a URI, through core/fs); `file` and `start` (in
    tokens) locate them. A failed or speculative attempt leaves an unreferenced file behind,
    removed with the work folder."""
    import pyarrow as pa

    def fn(batches):
        from pyspark import TaskContext
        tc = TaskContext.get()
        fname = (f"p{tc.partitionId() if tc else 0:05d}-a{tc.attemptNumber() if tc else 0}-"
                 f"{uuid.uuid4().hex[:8]}.bin")
        tok = get_tokenizer(tokenizer, ranks.local() if ranks is not None else None)
        f, written = None, 0
        try:
            for rb in batches:
                n = rb.num_rows
                srcs = rb.column(0).to_numpy(zero_copy_only=False)
                ids = rb.column(1).to_pylist()
                texts = rb.column(2).to_pylist()
                status = [TRAIN] * n
                kept = np.zeros(n, dtype=np.int64)
                orig = np.zeros(n, dtype=np.int64)
                start = np.full(n, -1, dtype=np.int64)
                files = [None] * n
                arrays = []
                for i in range(n):
                    d, t = ids[i], texts[i]
                    if d is None or d == "":
                        status[i] = "null_doc_id"
                        continue
                    if t is None or not t.strip():
                        status[i] = "empty_text"
                        continue
                    if morder.is_heldout(d, heldout_fraction):
                        status[i] = HELDOUT
                    elif not morder.keep_downsampled(seed, names[int(srcs[i])], d,
                                                     downsample[int(srcs[i])]):
                        status[i] = "downsampled"
                        continue
                    # every document starts with <|begin_of_text|> (Llama 3's recipe; the
                    # packer appends <|end_of_text|>), so a document's first text token is
                    # predicted from BOS, as at inference
                    a = tok.encode_document(t)
                    orig[i] = len(a)
                    if max_doc_tokens and len(a) > max_doc_tokens:
                        a = a[:max_doc_tokens]
                    kept[i] = len(a)
                    if len(a):
                        start[i] = written
                        files[i] = fname
                        written += len(a)
                        arrays.append(a)
                if arrays:
                    if f is None:
                        f = fs.open(fs.join(token_dir, fname), "wb")
                    f.write(np.concatenate(arrays).astype("<u4", copy=False).data)
                yield pa.RecordBatch.from_arrays(
                    [rb.column(0).cast(pa.int32()), rb.column(1), pa.array(status, pa.string()),
                     rb.column(3), pa.array(kept), pa.array(orig),
                     pa.array(files, pa.string()), pa.array(start)],
                    names=["src", "doc_id", "status", "chash", "n", "n_orig", "file", "start"])
        finally:
            if f is not None:
                f.close()
    return fn


META_SCHEMA = ("src int, doc_id string, status string, chash long, n long, n_orig long, "
               "file string, start long")

PIECES_SCHEMA = ("part int, g long, pos int, file string, fstart long, ntok int, eot boolean, "
                 "occ_u int, occ_pass int, occ_dropped long")


def make_pieces(seq_len: int, row_g: np.ndarray, unit_base: np.ndarray, n_main: int,
                shard_rows: int):
    """mapInArrow function: document occurrences (u, pass, offset, take, n, file, start) -> one
    row per piece (a document's tokens within one row), with its global row `g` (the interleave,
    `row_g[unit_base[u] + row of the unit]`), its shard `part` (main shards first, then held-out
    ones) and where its tokens are. An occurrence's first piece also carries its unit, pass and
    tokens dropped (n + 1 - take), so the shard tasks count occurrences (other pieces: -1)."""
    import pyarrow as pa

    n_main_parts = -(-n_main // shard_rows)

    def fn(batches):
        for rb in batches:
            c = {k: rb.column(k) for k in rb.schema.names}
            u = c["u"].to_numpy(zero_copy_only=False)
            n = c["n"].to_numpy(zero_copy_only=False)
            take = c["take"].to_numpy(zero_copy_only=False)
            p = cut_pieces(c["offset"].to_numpy(zero_copy_only=False), take, n, seq_len)
            occ = p["occ"]
            g = row_g[unit_base[u[occ]] + p["row"]]
            part = np.where(g < n_main, g // shard_rows,
                            n_main_parts + (g - n_main) // shard_rows).astype(np.int32)
            first = p["first"]
            fstart = c["start"].to_numpy(zero_copy_only=False)[occ] + p["doc_pos"]
            yield pa.RecordBatch.from_arrays(
                [pa.array(part), pa.array(g), pa.array(p["pos"]),
                 c["file"].take(pa.array(occ)), pa.array(fstart), pa.array(p["ntok"]),
                 pa.array(p["eot"]), pa.array(np.where(first, u[occ], -1).astype(np.int32)),
                 pa.array(np.where(first, c["pass"].to_numpy(zero_copy_only=False)[occ], 0)
                          .astype(np.int32)),
                 pa.array(np.where(first, n[occ] + 1 - take[occ], 0).astype(np.int64))],
                names=PIECES_COLUMNS)
    return fn


PIECES_COLUMNS = [x.split()[0] for x in PIECES_SCHEMA.split(", ")]

SHARDS_SCHEMA = ("part int, n_rows int, per_row binary, starts binary, occurrences binary, "
                 "documents binary, dropped binary, sha256 string")


def write_shard(seq_len: int, eot_id: int, n_main: int, n_held: int, shard_rows: int,
                token_dir: str, out_dir: str, n_units: int):
    """applyInArrow function: all pieces of one shard -> the shard file, written straight into
    the output folder, and one row with the shard's document starts (per-row counts and
    positions) and its per-unit counts of occurrences, documents and tokens dropped."""
    import pyarrow as pa

    from core.token_shards import shard_name

    n_main_parts = -(-n_main // shard_rows)

    def fn(key, table):
        part = int(key[0].as_py())
        if part < n_main_parts:
            g0, total, sub = part * shard_rows, n_main, ""
            k = part
        else:
            k = part - n_main_parts
            g0, total, sub = n_main + k * shard_rows, n_main + n_held, "heldout"
        n_rows = min(shard_rows, total - g0)
        files = table.column("file").to_pylist()
        fstart = table.column("fstart").to_numpy()
        ntok = table.column("ntok").to_numpy()
        maps = {}
        local = fs.is_local(token_dir)
        if not local:
            # an object store: one call per token file for all of this shard's pieces in it
            # (concurrent ranged GETs), never the whole file
            by_file: dict = {}
            for i, name in enumerate(files):
                by_file.setdefault(name, []).append(i)
            fetched = {}
            for name, idx in by_file.items():
                data = fs.read_ranges(fs.join(token_dir, name), [int(fstart[i]) * 4 for i in idx],
                                      [(int(fstart[i]) + int(ntok[i])) * 4 for i in idx])
                for i, d in zip(idx, data):
                    fetched[i] = np.frombuffer(d, dtype="<u4")

        def copy(i, dst):
            if not local:
                dst[:] = fetched[i][:len(dst)]
                return
            name = files[i]
            m = maps.get(name)
            if m is None:
                path = os.path.join(token_dir, name)
                if not os.path.exists(path):
                    raise FileNotFoundError(
                        f"mix: token file {path} is missing on this worker; a local work folder "
                        f"must be on a filesystem that every worker and the driver share "
                        f"(or give a URI: work_dir=s3://..., dbfs:/..., /Volumes/...)")
                m = maps[name] = np.memmap(path, dtype="<u4", mode="r")
            s = int(fstart[i])
            dst[:] = m[s:s + len(dst)]

        try:
            buf, per_row, starts = fill_rows(
                n_rows, seq_len, table.column("g").to_numpy() - g0, table.column("pos").to_numpy(),
                table.column("ntok").to_numpy(), table.column("eot").to_numpy(zero_copy_only=False),
                copy, eot_id)
        except ValueError as e:
            raise RuntimeError(f"mix: shard {sub or 'main'}/{k} (rows {g0}..): {e}") from None
        path = fs.join(out_dir, sub, shard_name(k)) if sub else fs.join(out_dir, shard_name(k))
        fs.write_bytes(path, buf.data)     # local: temporary name + rename; stores: one PUT
        digest = hashlib.sha256(buf.data).hexdigest()
        ou = table.column("occ_u").to_numpy()
        m = ou >= 0
        first_pass = m & (table.column("occ_pass").to_numpy() == 0)
        dropped = np.bincount(ou[m], weights=table.column("occ_dropped").to_numpy()[m],
                              minlength=n_units).astype(np.int64)
        return pa.table({
            "part": pa.array([part], pa.int32()), "n_rows": pa.array([n_rows], pa.int32()),
            "per_row": [per_row.astype("<i4").tobytes()], "starts": [starts.astype("<i4").tobytes()],
            "occurrences": [np.bincount(ou[m], minlength=n_units).astype("<i8").tobytes()],
            "documents": [np.bincount(ou[first_pass], minlength=n_units).astype("<i8").tobytes()],
            "dropped": [dropped.astype("<i8").tobytes()], "sha256": [digest]})
    return fn


# ---------------------------------------------------------------------------------- the build

def _read_sources(spark, spec, input_path):
    """All sources as one (src, doc_id, text, chash) frame, reading each table once: a document
    matching several sources' filters appears once per source (as a union would give). `chash`
    (xxhash64 of the text, computed in the JVM) picks one document among duplicate doc_ids."""
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
        text = F.col(textc).cast("string")
        body = [F.col(idc).cast("string").alias("doc_id"), text.alias("text"),
                F.xxhash64(text).alias("chash")]
        if len(members) == 1:
            i, cond = members[0]
            frames.append(df.where(cond).select(F.lit(i).cast("int").alias("src"), *body))
            continue
        anyc = members[0][1]
        for _, c in members[1:]:
            anyc = anyc | c
        srcs = F.filter(F.array(*[F.when(c, F.lit(i).cast("int")) for i, c in members]),
                        lambda e: e.isNotNull())
        frames.append(df.where(anyc).select(F.explode(srcs).alias("src"), *body))
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


def claim_mix_output(out: str, overwrite: bool = False) -> None:
    """The mix replaces its output folder as a whole, so it writes only to a path that does not
    exist, an empty folder, or a folder holding a mix (a `manifest.json` of the token-shard
    format); anything else (a folder of other files, a Delta table, a file) is refused before any
    work with the path and what is there, unless `overwrite`."""
    import json as _json

    from core.tables import OutputRefused
    if not fs.exists(out):
        return
    found = None
    if fs.isfile(out):
        found = "a file"
    else:
        names = fs.listdir(out)
        if not names:
            return
        if "manifest.json" in names:
            try:
                m = _json.loads(fs.read_text(fs.join(out, "manifest.json")))
            except (OSError, ValueError):
                m = {}
            if isinstance(m, dict) and m.get("format_version") is not None and "shards" in m:
                return
        found = ("a Delta table" if "_delta_log" in names else "a folder that is not a mix") + \
            f" ({len(names)} entries: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
    if overwrite:
        _log(f"--overwrite: replacing {out}, {found}")
        return
    raise OutputRefused(f"refusing to replace {out}: it holds {found}, not a mix output; choose "
                        f"another path, or pass --overwrite (overwrite=True) to replace it")


def _remove_leftovers(out: str, work_parent: str) -> None:
    """Folders a killed build of the same output left behind (its work folder holds every token
    of the inputs): removed before a new build starts. Two builds of one output at once are not
    supported; the later one would remove the other's folders."""
    import fnmatch
    name, parent = fs.basename(out), fs.parent(out)
    pats = [(parent, f".{name}.work-*"), (parent, f".{name}.tmp-*"),
            (parent, f"{name}.old-*"), (work_parent, f".{name}.work-*")]
    for par, pat in pats:
        try:
            entries = fs.listdir(par) if fs.isdir(par) else []
        except FileNotFoundError:
            entries = []
        for e in entries:
            if fnmatch.fnmatch(e, pat):
                d = fs.join(par, e)
                _log(f"removing {d}, left by an earlier build that did not finish")
                fs.rm(d)


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


@dataclass
class _Counts:
    """Per (source, status): documents, tokens (with EOT) and truncation; per category: the
    distinct held-out documents and their tokens."""
    by_status: dict
    heldout: dict

    def get(self, src: int, status: str, key: str) -> int:
        r = self.by_status.get((src, status))
        return r[key] if r is not None else 0


@dataclass
class _Layout:
    """Where every row goes. Units: train sources 0..S-1, held-out categories S..S+C-1; row r of
    unit u is global row `row_g[unit_base[u] + r]` (held-out rows follow the N main rows)."""
    plan: object
    order: np.ndarray
    h_rows: list
    h_avail: list
    h_order: np.ndarray
    row_g: np.ndarray
    unit_base: np.ndarray
    units: list          # (u, key name, passes, tokens needed, tokens available) with rows > 0

    @property
    def n_main(self) -> int:
        return self.plan.n_rows

    @property
    def n_held(self) -> int:
        return len(self.h_order)


def _tokenize(spark, spec, input_path, names, tok, ranks, work: str, phase) -> tuple[str, list]:
    """Steps 1-2: read every source once and tokenize: token files (raw uint32) + a metadata
    table under `work` (a local path or a URI). Returns the token folder and the Delta versions
    read per source."""
    tok_dir = fs.join(work, "tokens")
    fs.makedirs(tok_dir)
    with phase("tokenize"):
        docs, versions = _read_sources(spark, spec, input_path)
        _log(f"tokenizing {len(names)} sources with {tok.name} ({tok.fingerprint})")
        tokfn = tokenize_arrow(names, spec["seed"], [x["downsample"] for x in spec["sources"]],
                               spec["heldout_fraction"], spec["tokenizer"],
                               spec["max_doc_tokens"], tok_dir, ranks)
        docs.mapInArrow(tokfn, META_SCHEMA).write.mode("overwrite") \
            .parquet(fs.join(work, "meta"))
    return tok_dir, versions


def _mark_duplicates_and_heldout(spark, work: str, src_cat: list):
    """Step 3a: duplicates of a doc_id within a source keep the smallest content hash. Held out:
    one unit per category of distinct documents (`hfirst`: the copy a category keeps). One
    exchange on doc_id serves both windows, (src, doc_id) and (cat, doc_id). Returns the cached
    metadata frame."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    meta = spark.read.parquet(fs.join(work, "meta")).repartition("doc_id")
    live = F.col("status").isin(TRAIN, HELDOUT)
    w = Window.partitionBy("src", "doc_id").orderBy("chash", "file", "start")
    meta = meta.withColumn("_rn", F.when(live, F.row_number().over(w))) \
        .withColumn("status", F.when(F.col("_rn") > 1, F.lit("duplicate_doc_id"))
                    .otherwise(F.col("status"))).drop("_rn") \
        .withColumn("cat", F.element_at(F.array(*[F.lit(k) for k in src_cat]),
                                        F.col("src") + 1))
    wh = Window.partitionBy("cat", "doc_id").orderBy("src", "chash", "file", "start")
    is_held = F.col("status") == HELDOUT
    return meta.withColumn("_h", F.when(is_held, F.row_number().over(wh))) \
        .withColumn("hfirst", F.coalesce(is_held & (F.col("_h") == 1), F.lit(False))) \
        .drop("_h").cache()


def _count(meta, src_cat: list, phase) -> _Counts:
    """One aggregate: per (src, status, hfirst) documents, tokens and truncation."""
    from pyspark.sql import functions as F
    with phase("count"):
        agg = meta.groupBy("src", "status", "hfirst").agg(
            F.count("*").alias("docs"), F.sum(F.col("n") + 1).alias("tokens"),
            F.sum(F.when(F.col("n") < F.col("n_orig"), 1).otherwise(0)).alias("truncated"),
            F.sum(F.col("n_orig") - F.col("n")).alias("tokens_truncated")).collect()
    counts, hagg = {}, {}
    for r in agg:
        key = (r["src"], r["status"])
        prev = counts.get(key, {"docs": 0, "tokens": 0, "truncated": 0, "tokens_truncated": 0})
        counts[key] = {k: prev[k] + int(r[k] or 0) for k in prev}
        if r["hfirst"]:
            k = src_cat[r["src"]]
            docs, tokens = hagg.get(k, (0, 0))
            hagg[k] = (docs + int(r["docs"]), tokens + int(r["tokens"] or 0))
    return _Counts(counts, hagg)


DOCUMENT_OUTCOMES = ("null_doc_id", "empty_text", "downsampled", "duplicate_doc_id", HELDOUT, TRAIN)


def _record_document_outcomes(stats: RunStats, counts: _Counts, names: list) -> None:
    """`documents.<outcome>` and `documents.<outcome>.<source>` counters, `documents.in`."""
    outcomes = Outcomes(stats, "documents")
    for i, nm in enumerate(names):
        for status in DOCUMENT_OUTCOMES:
            outcomes.add(status, counts.get(i, status, "docs"), by=nm)
        stats.add("documents.in", sum(counts.get(i, st, "docs")
                                      for (j, st) in counts.by_status if j == i))


def _lay_out(spec, counts: _Counts, names: list, cats: list) -> tuple[_Layout, list]:
    """Step 3b: the plan (exact row targets, epochs) and the interleave of the main and held-out
    streams, from the counts alone. Returns the layout and the tokens available per source."""
    S, C, L = len(names), len(cats), spec["seq_len"]
    avail = [counts.get(i, TRAIN, "tokens") for i in range(S)]
    ndocs = [counts.get(i, TRAIN, "docs") for i in range(S)]
    plan = make_plan(spec, source_shares(spec), avail, ndocs)
    order = interleave([s.target_rows for s in plan.sources])
    N = plan.n_rows
    _log(f"plan: {N:,} rows of {L} = {plan.total_tokens:,} tokens; epochs "
         + ", ".join(f"{s.name} {s.epochs:.2f}" for s in plan.sources))
    h_avail = [counts.heldout.get(k, (0, 0))[1] for k in range(C)]
    h_rows = [a // L for a in h_avail]
    h_order = interleave(h_rows)
    H = len(h_order)
    unit_rows = [s.target_rows for s in plan.sources] + h_rows
    unit_avail = avail + h_avail
    unit_passes = [s.passes for s in plan.sources] + [1 if r else 0 for r in h_rows]
    unit_key = names + [f"heldout:{k}" for k in cats]
    row_g = np.concatenate(
        [np.flatnonzero(order == u) for u in range(S)]
        + [N + np.flatnonzero(h_order == k) for k in range(C)]).astype(np.int64) \
        if N + H else np.zeros(0, np.int64)
    unit_base = np.concatenate([[0], np.cumsum(unit_rows)[:-1]]).astype(np.int64)
    units = [(u, unit_key[u], unit_passes[u], unit_rows[u] * L, unit_avail[u])
             for u in range(S + C) if unit_rows[u] > 0]
    return _Layout(plan, order, h_rows, h_avail, h_order, row_g, unit_base, units), avail


def _occurrences(spark, meta, layout: _Layout, n_sources: int, seed: int):
    """Step 3c: every occurrence's offset in its unit's stream (metadata only, no tokens move);
    the order within a pass is Spark's xxhash64 of (seed, unit, pass, doc_id), ties by doc_id."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    units = spark.createDataFrame(layout.units,
                                  "u int, keyname string, passes int, need long, avail long")
    cols = ["doc_id", "n", "file", "start"]
    train_occ = meta.where(F.col("status") == TRAIN).select(F.col("src").alias("u"), *cols)
    held_occ = meta.where("hfirst").select((F.col("cat") + n_sources).cast("int").alias("u"),
                                           *cols)
    occ = train_occ.unionByName(held_occ).join(F.broadcast(units), "u") \
        .withColumn("pass", F.explode(F.sequence(F.lit(0), F.col("passes") - 1))) \
        .withColumn("key", morder.order_key_column(seed, "keyname", "pass", "doc_id"))
    wo = Window.partitionBy("u", "pass").orderBy("key", "doc_id") \
        .rowsBetween(Window.unboundedPreceding, -1)
    return occ.withColumn("offset", F.col("pass") * F.col("avail")
                          + F.coalesce(F.sum(F.col("n") + 1).over(wo), F.lit(0))) \
        .where(F.col("offset") < F.col("need")) \
        .withColumn("take", F.least(F.col("n") + 1, F.col("need") - F.col("offset"))) \
        .select("u", "pass", "offset", "take", "n", "file", "start")


def _write_shards(occ, layout: _Layout, spec, eot_id: int, tok_dir: str, tmp: str,
                  n_units: int, phase) -> dict:
    """Step 4: pieces -> shards. Every shard is assembled by one task, straight into the
    temporary output folder, from the token files; only document starts and counts return.
    Returns the shard results by part number."""
    fs.rm(tmp)
    fs.makedirs(fs.join(tmp, "heldout"))
    L, shard_rows = spec["seq_len"], spec["shard_rows"]
    N, H = layout.n_main, layout.n_held
    with phase("shards"):
        pieces = occ.mapInArrow(make_pieces(L, layout.row_g, layout.unit_base, N, shard_rows),
                                PIECES_SCHEMA)
        done = pieces.groupBy("part").applyInArrow(
            write_shard(L, eot_id, N, H, shard_rows, tok_dir, tmp, n_units),
            SHARDS_SCHEMA).collect()
    done = {int(r["part"]): r for r in done}
    n_parts = -(-N // shard_rows) + -(-H // shard_rows)
    missing = sorted(set(range(n_parts)) - set(done))
    if missing:
        raise RuntimeError(f"mix: shards {missing[:5]} received no rows")
    return done


def _write_indexes(done: dict, layout: _Layout, spec, stage_dir: str) -> tuple:
    """Step 5a: index.npz of the main and the held-out stream from the shards' document starts,
    into the local folder `stage_dir`. Returns (shard list, index sha256) of each."""
    L, shard_rows = spec["seq_len"], spec["shard_rows"]
    n_main_parts = -(-layout.n_main // shard_rows)
    n_held_parts = -(-layout.n_held // shard_rows)
    main = write_index_from_parts(
        stage_dir, layout.order, [done[p] for p in range(n_main_parts)], L, shard_rows)
    held = write_index_from_parts(
        os.path.join(stage_dir, "heldout"), layout.h_order,
        [done[n_main_parts + p] for p in range(n_held_parts)], L, shard_rows)
    return main, held


def _unit_totals(done: dict, n_units: int) -> dict:
    """Occurrences, documents (first pass) and tokens dropped per unit, summed over the shards."""
    uocc, udocs, udrop = (np.zeros(n_units, np.int64) for _ in range(3))
    for r in done.values():
        uocc += np.frombuffer(r["occurrences"], "<i8")
        udocs += np.frombuffer(r["documents"], "<i8")
        udrop += np.frombuffer(r["dropped"], "<i8")
    return {u: {"occurrences": int(uocc[u]), "documents": int(udocs[u]),
                "dropped": int(udrop[u])} for u in range(n_units) if uocc[u]}


def _manifests_and_report(spec, sh: str, tinfo: dict, layout: _Layout, counts: _Counts,
                          uagg: dict, versions: list, cats: list, shard_lists, stats: RunStats):
    """Step 5b: the manifest of each stream and the mix report (per-source counters go to
    `stats`). Returns (manifest, held-out manifest, report, fingerprint)."""
    L, seed = spec["seq_len"], spec["seed"]
    plan, N, H = layout.plan, layout.n_main, layout.n_held
    h_rows, h_avail = layout.h_rows, layout.h_avail
    (main_shards, main_index), (held_shards, held_index) = shard_lists
    per_source, src_entries = [], []
    for i, s in enumerate(plan.sources):
        ua = uagg.get(i)
        ps = {"documents": int(ua["documents"]) if ua else 0,
              "occurrences": int(ua["occurrences"]) if ua else 0,
              "documents_truncated": counts.get(i, TRAIN, "truncated"),
              "tokens_truncated": counts.get(i, TRAIN, "tokens_truncated"),
              "tokens_dropped": int(ua["dropped"]) if ua else 0,
              "documents_heldout": counts.get(i, HELDOUT, "docs"),
              "documents_downsampled": counts.get(i, "downsampled", "docs")}
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
    hagg = counts.heldout
    h_entries = [{"name": k, "category": k, "target_tokens": h_rows[j] * L,
                  "tokens": h_rows[j] * L,
                  "documents": hagg.get(j, (0, 0))[0], "epochs": 1.0 if h_rows[j] else 0.0,
                  "tokens_dropped": h_avail[j] - h_rows[j] * L}
                 for j, k in enumerate(cats)]
    heldout_info = {"n_rows": H, "rows": {k: h_rows[j] for j, k in enumerate(cats)},
                    "documents": {k: hagg.get(j, (0, 0))[0] for j, k in enumerate(cats)},
                    "tokens_dropped": sum(h_avail) - H * L}
    report = mix_report(spec["stage"], plan, layout.order, per_source, spec["report_window_rows"],
                        heldout_info)
    base = {"format_version": FORMAT_VERSION, "stage": spec["stage"], "seq_len": L,
            "dtype": "uint32", "tokenizer": tinfo, "spec_hash": sh, "seed": seed,
            "delta_versions": all_versions}
    manifest = {**base, "n_rows": N, "total_tokens": N * L, "shards": main_shards,
                "index_sha256": main_index,
                "sources": src_entries, "categories": spec["categories"],
                "fingerprint": fp, "plan": plan.to_dict(), "spec": spec}
    hfp = hashlib.sha256((fp + ":heldout").encode()).hexdigest()[:16]
    hmanifest = {**base, "stage": spec["stage"] + ":heldout", "n_rows": H,
                 "total_tokens": H * L, "shards": held_shards, "index_sha256": held_index,
                 "sources": h_entries,
                 "categories": {k: (h_rows[j] / H if H else 0.0) for j, k in enumerate(cats)},
                 "heldout_fraction": spec["heldout_fraction"], "fingerprint": hfp}
    return manifest, hmanifest, report, fp


def _publish(tmp: str, stage_dir: str, out: str, manifest, hmanifest, report) -> None:
    """Step 5c: the small files (index, manifests, report), made in the local `stage_dir`, go to
    the temporary output folder (when that is a URI), which then replaces the output, the
    manifests last."""
    write_json(os.path.join(stage_dir, "manifest.json"), manifest)
    write_json(os.path.join(stage_dir, "mix_report.json"), report)
    write_json(os.path.join(stage_dir, "heldout", "manifest.json"), hmanifest)
    if stage_dir != tmp:
        for name in ("index.npz", "mix_report.json", "manifest.json", "heldout/index.npz",
                     "heldout/manifest.json"):
            fs.put(os.path.join(stage_dir, name), fs.join(tmp, name))
    fs.replace_dir(tmp, out, last=("heldout/manifest.json", "manifest.json"))


def build_mix(spark, spec, output_dir: str, input_path: str | None = None,
              stats_path: str | None = None, work_dir: str | None = None,
              overwrite: bool = False) -> RunStats:
    """Build one stage's token stream from `spec` (a resolved dict, a dict of overrides or a
    YAML path) into `output_dir` (replaced atomically). Returns the run statistics; the report
    and manifest are in `stats.info`. The output must be new, empty or a mix (`claim_mix_output`)
    unless `overwrite`, and no input table may be the output or lie inside it. The steps are the
    numbered ones of this module's docstring."""
    spec = resolve_spec(spec)
    if not spec["sources"]:
        raise SpecError("the spec has no sources")
    input_path = input_path or spec["input"]
    sh = spec_hash(spec)
    stats = RunStats("mix", config_hash=sh)
    tok = get_tokenizer(spec["tokenizer"])
    L = spec["seq_len"]
    names = [x["name"] for x in spec["sources"]]
    cats = list(spec["categories"])
    n_units = len(names) + len(cats)
    src_cat = [cats.index(x["category"]) for x in spec["sources"]]
    out = fs.normalize(output_dir)
    oname = fs.basename(out)
    from core.tables import check_input_not_in_output
    check_input_not_in_output([x["table"] or input_path for x in spec["sources"]
                               if x["table"] or input_path], out)
    claim_mix_output(out, overwrite)
    stats.claim(spark, stats_path, overwrite)
    fs.makedirs(fs.parent(out))
    # a folder of this run's own (removed at the end), inside `work_dir` when one is given
    work_parent = fs.normalize(work_dir) if work_dir else fs.parent(out)
    work = fs.join(work_parent, f".{oname}.work-{stats.run_id}")
    tmp = fs.join(fs.parent(out), f".{oname}.tmp-{stats.run_id}")
    _remove_leftovers(out, work_parent)
    # the tokenizer's rank file goes to the executors with the job (addFile on a cluster)
    ranks = ship(spark, tok.ranks_file) if getattr(tok, "ranks_file", None) else None
    t0 = time.time()
    stage_dir = None
    phase = _Phases(spark, stats)
    meta = None
    try:
        tok_dir, versions = _tokenize(spark, spec, input_path, names, tok, ranks, work, phase)
        meta = _mark_duplicates_and_heldout(spark, work, src_cat)
        counts = _count(meta, src_cat, phase)
        _record_document_outcomes(stats, counts, names)
        layout, avail = _lay_out(spec, counts, names, cats)
        occ = _occurrences(spark, meta, layout, len(names), spec["seed"])
        done = _write_shards(occ, layout, spec, tok.eot_id, tok_dir, tmp, n_units, phase)
        stats.set("seconds.spark", round(time.time() - t0, 3))
        t_idx = time.time()
        uagg = _unit_totals(done, n_units)
        # the small files (index, manifests, report) are made in a local folder, then published
        stage_dir = tmp if fs.is_local(tmp) else tempfile.mkdtemp(prefix="mix-stage-")
        os.makedirs(os.path.join(stage_dir, "heldout"), exist_ok=True)
        shard_lists = _write_indexes(done, layout, spec, stage_dir)
        stats.set("seconds.write", round(time.time() - t_idx, 3))
        tinfo = tok.info()
        manifest, hmanifest, report, fp = _manifests_and_report(
            spec, sh, tinfo, layout, counts, uagg, versions, cats, shard_lists, stats)
        _publish(tmp, stage_dir, out, manifest, hmanifest, report)
    finally:
        fs.rm(work)
        fs.rm(tmp)
        if stage_dir is not None and stage_dir != tmp:
            shutil.rmtree(stage_dir, ignore_errors=True)
        if meta is not None:
            meta.unpersist()

    N, H = layout.n_main, layout.n_held
    stats.set("rows", N)
    stats.set("rows.heldout", H)
    stats.set("tokens.out", N * L)
    stats.set("tokens.available", sum(avail))
    stats.set("tokens_per_second", round(sum(avail) / max(time.time() - t0, 1e-9), 1))
    stats.info.update({"output": out, "fingerprint": fp, "spec_hash": sh,
                       "tokenizer": tinfo["fingerprint"]})
    stats.report, stats.manifest = report, manifest  # for callers (benchmarks, notebooks)
    print(format_report(report), file=sys.stderr, flush=True)
    return stats


def run_mix(spark, input_path: str | None, output_path: str, config=None,
            stats_path: str | None = None, spec_path: str | None = None,
            work_dir: str | None = None, overwrite: bool = False) -> RunStats:
    """The stage entry point: `config` is the spec (dict of overrides or YAML path); `input_path`
    is the default table for sources that name none; `work_dir` holds the token files while the
    build runs (default: beside the output)."""
    spec = resolve_spec(spec_path or config)
    stats = build_mix(spark, {**spec, "_resolved": True}, output_path, input_path=input_path,
                      stats_path=stats_path, work_dir=work_dir, overwrite=overwrite)
    stats.record(spark, stats_path, echo=True)
    return stats
