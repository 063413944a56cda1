"""Delta Lake reads and writes shared by every job, who owns an output, and the one place that
answers "is there a Delta table at this path, and at which version".

A job's output is replaced atomically (one Delta `overwrite` commit, schema replaced too), so a
re-run never appends duplicates and a run killed halfway leaves the previous version readable; the
next run's overwrite ends in the same table as a clean run.

Ownership: a table a job creates carries the table properties `curation.job` (which job and which
of its tables: `dedup`, `dedup.duplicates`, ...) and `curation.schema_version`. Before any work a
job claims each of its outputs (`claim_output`): a path that does not exist (or an empty folder)
is new; a Delta table with the job's own marker is replaced; anything else (another job's table,
a Delta table without the marker, a folder of other files, a file) is refused with the path and
what was found, unless the run was given `overwrite=True` (`--overwrite`). Only "the path holds no
Delta log" means a new table: any other error while reading a table is raised, never taken for
absence.

Two-table results (extract's documents + `_rejects`, dedup's deduped + `_duplicates`): the
companion table is written first, then the main table, whose commit records the companion's
version (`userMetadata` JSON, `companions`). The main table's commit is the run's completion
marker; `read_companion` reads the companion at the version its main table names, so a reader
sees the old pair or the new pair, never a half-written run.
"""
from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from typing import Iterable

MARK_JOB = "curation.job"
MARK_SCHEMA = "curation.schema_version"
SCHEMA_VERSION = "1"


class OutputRefused(RuntimeError):
    """An output path the job may not write (names the path and what is there)."""


@dataclass
class PathState:
    path: str
    kind: str                      # absent | empty | delta | folder | file
    job: str | None = None         # the table's curation.job property (Delta tables)
    schema_version: str | None = None
    version: int | None = None     # the table's latest version (Delta tables)
    properties: dict = field(default_factory=dict)
    detail: str = ""

    def describe(self) -> str:
        if self.kind == "delta":
            who = f"written by the {self.job!r} job" if self.job else \
                f"not written by this project (no {MARK_JOB} property)"
            return f"a Delta table (version {self.version}) {who}"
        return {"folder": "a folder that is not a Delta table", "file": "a file"}.get(
            self.kind, self.kind) + (f" ({self.detail})" if self.detail else "")


def commit_versions(names) -> list[int]:
    """The versions of the JSON commits among the file names of a `_delta_log` folder
    (`00000000000000000012.json` -> 12)."""
    return [int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json") and n[:20].isdigit()]


def _log_commits(log_dir: str) -> list[str]:
    from core import fs
    try:
        names = fs.listdir(log_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in names if n.endswith(".json") and n[:-5].isdigit()
            or n.endswith(".checkpoint.parquet")]


def inspect_path(spark, path: str) -> PathState:
    """What is at `path`: nothing, an empty folder, a Delta table (with its marker), another
    folder or a file. Only a missing path or a folder without a Delta log (no commit) counts as
    no table; an unreadable Delta log raises."""
    from core import fs
    if not fs.exists(path):
        return PathState(path, "absent")
    if fs.isfile(path):
        return PathState(path, "file", detail=f"{fs.size(path)} bytes")
    log = fs.join(path, "_delta_log")
    if _log_commits(log):
        v = _logged_version(spark, path)
        if v is None:
            raise RuntimeError(f"{path}: has a Delta log but no readable table version")
        props = table_properties(spark, path)
        return PathState(path, "delta", job=props.get(MARK_JOB), version=v,
                         schema_version=props.get(MARK_SCHEMA), properties=props)
    others = [n for n in fs.listdir(path) if n != "_delta_log"]
    if not others:
        return PathState(path, "empty")
    shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
    return PathState(path, "folder", detail=f"{len(others)} entries: {shown}")


def claim_output(spark, path: str, job: str, overwrite: bool = False) -> PathState:
    """Check, before any work, that `job` may write `path`; OutputRefused otherwise."""
    st = inspect_path(spark, path)
    if st.kind in ("absent", "empty") or (st.kind == "delta" and st.job == job):
        return st
    if overwrite:
        print(f"[{job.split('.')[0]}] --overwrite: replacing {path}, {st.describe()}",
              flush=True)
        return st
    hint = ""
    if st.kind == "delta" and st.job is None:   # e.g. written before tables carried the marker
        hint = (f" (if it is one, written before tables carried the marker, mark it instead: "
                f"ALTER TABLE {_sql_path(path)} SET TBLPROPERTIES ('{MARK_JOB}' = '{job}'))")
    raise OutputRefused(f"refusing to write {path}: it holds {st.describe()}, not a {job!r} "
                        f"output of this project; choose another path, or pass --overwrite "
                        f"(overwrite=True) to replace it{hint}")


def check_input_not_in_output(inputs, output: str) -> None:
    """An input equal to the output, or inside it, would be replaced by the run: refused."""
    from core import fs
    out = fs.normalize(output).rstrip("/")
    for i in [inputs] if isinstance(inputs, str) else list(inputs or []):
        p = fs.normalize(str(i)).rstrip("/")
        if not fs.scheme(p) and not fs.scheme(out):
            import os
            p, o = os.path.realpath(p), os.path.realpath(out)
        else:
            o = out
        if p == o or p.startswith(o + "/"):
            raise OutputRefused(f"input {i} is {'the output' if p == o else 'inside the output'} "
                                f"{output}: the run would replace what it reads; write elsewhere")


def _sql_path(path: str) -> str:
    return "delta.`" + str(path).replace("`", "``") + "`"


def table_properties(spark, path: str) -> dict:
    from delta.tables import DeltaTable
    row = DeltaTable.forPath(spark, path).detail().select("properties").first()
    return dict(row[0] or {}) if row else {}


def write_table(df, path: str, partition_by: Iterable[str] | None = None, mode: str = "overwrite",
                user_metadata: str | dict | None = None, job: str | None = None,
                replace_where: str | None = None, merge_schema: bool = False) -> None:
    """Write `df` as the Delta table at `path` in one commit, replacing it (default), or only the
    rows matching `replace_where`. With `job`, a table that is not yet the job's own (a new path,
    or one taken over after `claim_output(..., overwrite=True)`) is created or replaced with the
    job's marker in its properties, in that same commit. `user_metadata` (JSON when a dict) is the
    commit's `userMetadata`. `merge_schema` lets an append add columns (the stats table's)."""
    spark = df.sparkSession
    partition_by = list(partition_by or [])
    um = None if user_metadata is None else (
        user_metadata if isinstance(user_metadata, str) else json.dumps(user_metadata, sort_keys=True))
    key = "spark.databricks.delta.commitInfo.userMetadata"
    before = spark.conf.get(key, None)
    if um:
        spark.conf.set(key, um)
    try:
        st = inspect_path(spark, path) if job else None
        if st is not None and not (st.kind == "delta" and st.job == job):
            # CREATE (OR REPLACE) TABLE AS SELECT: data, schema, partitioning and marker at once
            w = df.writeTo(_sql_path(path)).using("delta") \
                .tableProperty(MARK_JOB, job).tableProperty(MARK_SCHEMA, SCHEMA_VERSION)
            if partition_by:
                w = w.partitionedBy(*partition_by)
            if st.kind in ("delta", "folder"):
                w.createOrReplace()
            else:
                w.create()
            return
        w = df.write.format("delta").mode(mode)
        if replace_where:
            w = w.option("replaceWhere", replace_where)
        elif mode == "overwrite":
            w = w.option("overwriteSchema", "true")
        if merge_schema and mode == "append":
            w = w.option("mergeSchema", "true")
        if partition_by:
            w = w.partitionBy(*partition_by)
        w.save(path)
    finally:
        if um:
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def commit_metadata(path: str, version: int) -> dict | None:
    """The JSON `userMetadata` of commit `version` of the table at `path` (read from the Delta
    log file, no Spark job), or None when that commit has none, or none in JSON, or its log file
    was cleaned up."""
    from core import fs
    f = fs.join(path, "_delta_log", f"{version:020d}.json")
    try:
        text = fs.read_text(f)
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if '"commitInfo"' not in line:
            continue
        um = json.loads(line).get("commitInfo", {}).get("userMetadata")
        if not um:
            return None
        try:
            meta = json.loads(um)
        except ValueError:
            return None
        return meta if isinstance(meta, dict) else None
    return None


def find_commit(spark, path: str, match=None, limit: int = 10_000) -> tuple[int, dict] | None:
    """The newest commit of the table whose JSON userMetadata satisfies `match` (all of them
    when None): (version, metadata), or None."""
    v = table_version(spark, path)
    k = 0
    while v is not None and v >= 0 and k < limit:
        meta = commit_metadata(path, v)
        if meta is not None and (match is None or match(meta)):
            return v, meta
        v -= 1
        k += 1
    return None


class CrashPoint(BaseException):
    """Raised at a crash point in `raise` mode (tests that cannot afford a process per kill)."""


def crash_point(name: str) -> None:
    """Where a crash would do the most harm (between the two writes of a two-table result): the
    environment variable CURATION_CRASH_AT=<name> kills this process here with SIGKILL, as a
    machine failure or an operator's kill would; `<name>:raise` raises CrashPoint instead, which
    leaves the same tables behind (used by the tests)."""
    at = os.environ.get("CURATION_CRASH_AT")
    if at == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if at == name + ":raise":
        raise CrashPoint(name)


def companion_path(main_path: str, suffix: str) -> str:
    return main_path.rstrip("/") + suffix


def companion_version(spark, main_path: str, suffix: str) -> int | None:
    """The version of the companion table (`suffix`: `_rejects`, `_duplicates`) that the main
    table's newest run commit names; None when no commit names one (written before this
    protocol)."""
    hit = find_commit(spark, main_path, lambda m: suffix in (m.get("companions") or {}))
    return None if hit is None else int(hit[1]["companions"][suffix])


def read_companion(spark, main_path: str, suffix: str):
    """The companion table (`_rejects`, `_duplicates`) as of the run that last completed the
    main table, so that the pair is consistent even when a later run was killed between its two
    writes (the companion already new, the main table still old). A main table written before
    this protocol gives the companion's latest version."""
    return read_table(spark, companion_path(main_path, suffix),
                      version=companion_version(spark, main_path, suffix))


def read_table(spark, path: str, version: int | None = None):
    r = spark.read.format("delta")
    if version is not None:
        r = r.option("versionAsOf", version)
    return r.load(path)


def has_delta_log(path: str) -> bool:
    """A Delta table on the local file system: `path` holds a `_delta_log` folder (no Spark; a
    URL such as s3://... or dbfs:/... is never answered here, see `table_version`)."""
    path = str(path)
    return "://" not in path and os.path.isdir(os.path.join(path, "_delta_log"))


def is_delta_table(spark, path: str) -> bool:
    """Whether `path` holds a Delta log with at least one commit (no Spark job)."""
    from core import fs
    return bool(_log_commits(fs.join(path, "_delta_log")))


def table_version(spark, path: str) -> int | None:
    """The latest committed version of a Delta table, or None if there is no table at `path`.

    A local table's version is read from the names in its `_delta_log` (what Delta itself does to
    find the latest commit; no JVM call). Elsewhere (s3://, dbfs:/, ...) it is read from the
    table's log snapshot in the JVM (no Spark job: about a second on a cold session against three
    to four for `history(1)`); where that handle is unavailable (Spark Connect, a changed internal
    API) `DeltaTable.history(1)` answers instead. Only a path without a Delta log gives None; a
    log that cannot be read raises."""
    if has_delta_log(path):
        versions = commit_versions(os.listdir(os.path.join(str(path), "_delta_log")))
        if versions:
            return max(versions)
    if not is_delta_table(spark, path):
        return None
    return _logged_version(spark, path)


def _logged_version(spark, path: str) -> int | None:
    """`table_version` of a path already known to hold a Delta log with commits."""
    try:
        jvm = spark._jvm
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(path))
        none = jvm.scala.Option.empty()
        v = int(log.update(False, none, none).version())
        return v if v >= 0 else None
    except Exception:  # noqa: BLE001 - fall back to the public API
        pass
    from delta.tables import DeltaTable
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return int(row[0]) if row else None


# ---- reading a table without Spark (the trainer's side) -----------------------------------------

class DeltaReadError(RuntimeError):
    """A Delta table this small reader does not read (it says what, instead of reading wrong rows)."""


_PRIMITIVE = {"string": "string", "long": "int64", "integer": "int32", "short": "int16",
              "byte": "int8", "double": "float64", "float": "float32", "boolean": "bool",
              "binary": "binary", "date": "date32"}


def arrow_type(t):
    """The Arrow type of a Delta schema type (the JSON of the log's `schemaString`)."""
    import pyarrow as pa
    if isinstance(t, str):
        if t in _PRIMITIVE:
            return pa.type_for_alias(_PRIMITIVE[t])
        if t == "timestamp":
            return pa.timestamp("us", tz="UTC")
        if t == "timestamp_ntz":
            return pa.timestamp("us")
        if t.startswith("decimal("):
            p, s = t[8:-1].split(",")
            return pa.decimal128(int(p), int(s))
        raise DeltaReadError(f"Delta type {t!r} is not read here")
    kind = t.get("type")
    if kind == "array":
        return pa.list_(arrow_type(t["elementType"]))
    if kind == "struct":
        return pa.struct([pa.field(f["name"], arrow_type(f["type"]), f.get("nullable", True))
                          for f in t["fields"]])
    if kind == "map":
        return pa.map_(arrow_type(t["keyType"]), arrow_type(t["valueType"]))
    raise DeltaReadError(f"Delta type {t!r} is not read here")


def _log_actions(path: str):
    """The actions of the table's current snapshot, in log order: the last checkpoint's (named by
    `_last_checkpoint`, else the newest single-file checkpoint listed; single or multi-part
    Parquet) then every JSON commit after it."""
    import pyarrow.parquet as pq
    from core import fs
    log = fs.join(path, "_delta_log")
    names = set(fs.listdir(log)) if fs.exists(log) else set()
    commits = sorted(commit_versions(names))
    if not commits and not any(".checkpoint." in n for n in names):
        raise DeltaReadError(f"{path}: no Delta table here (no commit in {log})")
    start = 0
    lc = json.loads(fs.read_text(fs.join(log, "_last_checkpoint"))) if "_last_checkpoint" in names else None
    if lc is None:      # the hint is optional: the newest single-file checkpoint in the listing
        cps = [int(n[:20]) for n in names if len(n) == 39 and n.endswith(".checkpoint.parquet")]
        lc = {"version": max(cps)} if cps else None
    if lc is None and commits and commits[0] != 0:
        raise DeltaReadError(f"{path}: the log starts at version {commits[0]} and has no checkpoint")
    if lc is not None:
        v, parts = int(lc["version"]), lc.get("parts")
        if "v2Checkpoint" in lc:
            raise DeltaReadError(f"{path}: V2 checkpoints are not read here; read it with Spark")
        files = [f"{v:020d}.checkpoint.parquet"] if not parts else \
            [f"{v:020d}.checkpoint.{i:010d}.{int(parts):010d}.parquet" for i in range(1, int(parts) + 1)]
        for name in files:
            with fs.open(fs.join(log, name)) as fh:
                t = pq.read_table(fh)
            cols = [c for c in ("protocol", "metaData", "add", "remove") if c in t.column_names]
            for row in t.select(cols).to_pylist():
                for c in cols:
                    if row.get(c) is not None:
                        yield {c: row[c]}
        start = v + 1
    for v in commits:
        if v < start:
            continue
        for line in fs.read_text(fs.join(log, f"{v:020d}.json")).splitlines():
            if line.strip():
                yield json.loads(line)


def _as_dict(m) -> dict:
    """A map of the log: a JSON object in a commit, (key, value) pairs in a Parquet checkpoint."""
    return dict(m or {}) if not isinstance(m, list) else {k: v for k, v in m}


def delta_snapshot(path: str) -> tuple[list[dict], dict]:
    """(the live `add` actions, the `metaData` action) of the latest version of the Delta table at
    `path`, read from its log without Spark (the files Delta itself would read)."""
    def key(x):         # a file is (path, deletion vector): a DELETE adds (f, dv) and removes (f, none)
        dv = x.get("deletionVector") or {}
        return x["path"], dv.get("storageType"), dv.get("pathOrInlineDv"), dv.get("offset")

    live: dict[tuple, dict] = {}
    meta, protocol = None, {}
    for a in _log_actions(str(path)):
        if a.get("add"):
            live[key(a["add"])] = a["add"]
        elif a.get("remove"):
            live.pop(key(a["remove"]), None)
        elif a.get("metaData"):
            meta = a["metaData"]
        elif a.get("protocol"):
            protocol = a["protocol"]
    if meta is None:
        raise DeltaReadError(f"{path}: the Delta log has no metaData action")
    meta = dict(meta, configuration=_as_dict(meta.get("configuration")))
    for a in live.values():
        a["partitionValues"] = _as_dict(a.get("partitionValues"))
    conf = meta["configuration"]
    if conf.get("delta.columnMapping.mode", "none") != "none":
        raise DeltaReadError(f"{path}: column mapping ({conf['delta.columnMapping.mode']}) is not "
                             f"read here; read the table with Spark")
    if any(a.get("deletionVector") for a in live.values()):
        raise DeltaReadError(f"{path}: the table has deletion vectors, not read here; read it with "
                             f"Spark or run OPTIMIZE/REORG first")
    meta = dict(meta, _protocol=protocol)
    return [live[k] for k in sorted(live, key=str)], meta


def read_delta(path: str, columns: list[str] | None = None):
    """The latest version of the Delta table at `path` as one pyarrow Table, without Spark (for the
    trainer, which never imports Spark): the Parquet files named by the log's live `add` actions,
    partition values as columns, the table's own schema (an empty table keeps its columns). Refuses
    (DeltaReadError) what it would read wrong: deletion vectors, column mapping, V2 checkpoints,
    partition columns of a type other than string."""
    from urllib.parse import unquote

    import pyarrow as pa
    import pyarrow.parquet as pq
    from core import fs
    adds, meta = delta_snapshot(path)
    schema = pa.schema([pa.field(f["name"], arrow_type(f["type"]), f.get("nullable", True))
                        for f in json.loads(meta["schemaString"])["fields"]])
    parts = list(meta.get("partitionColumns") or [])
    for p in parts:
        if schema.field(p).type != pa.string():
            raise DeltaReadError(f"{path}: partition column {p!r} is {schema.field(p).type}, only "
                                 f"string partition columns are read here")
    tables = []
    for a in adds:
        rel = unquote(a["path"])
        uri = rel if fs.scheme(rel) or rel.startswith("/") else fs.join(str(path), rel)
        with fs.open(uri) as fh:
            t = pq.read_table(fh)
        for p in parts:
            t = t.append_column(p, pa.array([(a.get("partitionValues") or {}).get(p)] * t.num_rows,
                                            pa.string()))
        for f in schema:             # a column added after this file was written: nulls
            if f.name not in t.column_names:
                t = t.append_column(f.name, pa.nulls(t.num_rows, f.type))
        tables.append(t.select(schema.names).cast(schema))
    out = pa.concat_tables(tables) if tables else schema.empty_table()
    return out.select(columns) if columns else out
