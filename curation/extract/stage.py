"""The extraction stage: raw crawls and text datasets in, the `documents` Delta table out.

    run_extract(spark, input_path, output_path, config=None, stats_path=None, *, fmt=None,
                source=None, text_field=None, lang=None) -> RunStats

Data flow: the input globs are expanded on the driver (file names and sizes only); the driver
plans each file's byte ranges from its listed size (`curation.extract.warc.plan_file`: gzipped WARCs
larger than `split_bytes` are cut into ranges of that size; no byte is read); the ranges are packed,
in order, into groups of about `split_bytes` (`curation.extract.sources.group_tasks`: many small
files share a task) and spread one group per partition;
each task reads its range and turns every record into exactly one output row, a document or a
reject (`process_task`). The rows are persisted once; documents go to `output_path`, rejects to
`<output_path>_rejects`, counters to the stats table.

Several sources share one table: a run writes only the rows of its `source` (Delta `replaceWhere`
on the `source` partition), so crawl, code, math and multilingual runs into the same path build the
full table, and re-running a source replaces its rows instead of appending.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import time
import unicodedata

from core import fs
from core.outcomes import Outcomes
from core.validate import Rule, check_schema
from curation.extract import html as html_mod
from curation.extract.sources import (group_tasks, iter_jsonl, iter_parquet, iter_plain, lang_from_path,
                                      parse_text_field, read_capped)
from curation.extract.urls import canonicalize_url, domain_of
from curation.extract.warc import Problem, RawRecord, iter_records, new_tally, plan_file

DEFAULTS = {
    "split_bytes": "auto",          # gzipped WARCs are cut into byte ranges of this size ("auto":
                                    # total / (2 x cores) in [8 MB, 1 GB]; see resolve_split_bytes)
    "max_bytes": 5_000_000,         # payload size cap (HTML and WET text): rejected.too_large
    "timeout_s": 10.0,              # per-document extraction time limit: rejected.timeout
    "min_chars": 1,                 # shorter extracted text: rejected.empty
    "html": {                       # trafilatura options (see curation/extract/html.py)
        "favor_precision": False,
        "favor_recall": False,
        "include_tables": True,
        "include_comments": False,
        "keep_math_images": True,
        "strip_markdown": True,
    },
    "sandbox": {                    # extraction in killable worker processes (curation/extract/sandbox.py)
        "enabled": True,            # False: in the task's own process, SIGALRM limit only
        "workers": 1,               # worker processes per Spark task
        "memory_mb": 2048,          # address space a worker may add to what it inherited
        "start_method": "fork",
    },
    "resume": {                     # per-file resume: files are committed in batches
        "batch_files": 64,          # at most this many files per batch (one commit per table)
        "batch_bytes": 4_000_000_000,  # and at most about this many input bytes
    },
    "html_content_types": ["text/html", "application/xhtml+xml", "application/xml", "text/xml"],
    "text": {                       # text datasets (jsonl, parquet, text)
        "text_field": "text",       # a field, a list of fields, or a "{a}\n{b}" template
        "join": "\n\n",             # separator when text_field is a list
        "url_field": None,
        "title_field": None,
        "id_field": None,
        "lines_per_doc": 20,        # plain text: consecutive lines per document
        "lang": None,               # a language hint stored in html_lang
        "lang_pattern": None,       # regex whose group 1 in the file path is the language hint
    },
}

# every key's type and range (core/validate.py), checked when the config is loaded (jobs/extract.py)
# and again by run_extract, before any file is listed or Spark job runs
SCHEMA = {
    "split_bytes": Rule((int, str), nonempty=True),   # bytes >= 1, or "auto" (resolve_split_bytes)
    "resume.batch_files": Rule(int, ge=1),
    "resume.batch_bytes": Rule(int, ge=1),
    "sandbox.enabled": Rule(bool),
    "sandbox.workers": Rule(int, ge=1, le=64),
    "sandbox.memory_mb": Rule(int, ge=0),         # 0 = no memory limit
    "sandbox.start_method": Rule(str, choices=("fork", "spawn", "forkserver")),
    "max_bytes": Rule(int, ge=1),
    "timeout_s": Rule(float, ge=0),              # 0 = no time limit
    "min_chars": Rule(int, ge=0),
    **{f"html.{k}": Rule(bool) for k in DEFAULTS["html"]},
    "html_content_types": Rule(list, items=Rule(str, nonempty=True)),
    "text.text_field": Rule((str, list), nonempty=True),
    "text.join": Rule(str),
    "text.url_field": Rule(str, null=True),
    "text.title_field": Rule(str, null=True),
    "text.id_field": Rule(str, null=True),
    "text.lines_per_doc": Rule(int, ge=1),
    "text.lang": Rule(str, null=True),
    "text.lang_pattern": Rule(str, null=True),
}

FORMATS = ("warc", "jsonl", "parquet", "text", "html")
SKIP_TYPES = ("warcinfo", "request", "metadata", "revisit", "continuation", "unknown")


# ---------------------------------------------------------------- per-record logic (engine-free)

def sha1(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_for_hash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def make_doc_id(source: str, key: str) -> str:
    return sha1(f"{source}\x00{key}")


def parse_warc_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    v = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S%z",
                "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            d = dt.datetime.strptime(v, fmt)
        except ValueError:
            continue
        if d.tzinfo is not None:
            d = d.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if 1990 <= d.year <= 2100:
            return d
        return None
    return None


def _doc_row(source, file, offset, key, text, *, url=None, title=None, fetch=None, record_id=None,
             n_bytes=None, html_lang=None, extraction=None, record_type=None) -> dict:
    return {
        "_kind": "doc", "doc_id": make_doc_id(source, key), "source": source, "url": url,
        "url_canonical": canonicalize_url(url), "domain": domain_of(url), "fetch_time": fetch,
        "warc_record_id": record_id, "title": title, "text": text,
        "content_hash": sha1(normalise_for_hash(text)), "n_chars": len(text),
        "n_words": len(text.split()), "n_bytes_raw": n_bytes, "input_file": file,
        "input_offset": offset, "html_lang": html_lang, "extraction": extraction or {},
        "record_type": record_type, "reason": None, "detail": None,
    }


def _reject_row(source, file, offset, record_type, reason, detail=None, url=None, record_id=None,
                n_bytes=None) -> dict:
    return {"_kind": "reject", "source": source, "input_file": file, "input_offset": offset,
            "record_type": record_type, "url": url, "warc_record_id": record_id, "reason": reason,
            "detail": detail, "n_bytes_raw": n_bytes}


def _is_html(rec: RawRecord, html_types) -> bool:
    ct = (rec.content_type or "").split(";")[0].strip().lower()
    if ct:
        return ct in html_types
    head = (rec.payload or b"")[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _html_cfg(cfg: dict) -> dict:
    """The extractor's options (curation/extract/html.py) from the stage's config."""
    return {**cfg["html"], "max_bytes": cfg["max_bytes"], "timeout_s": cfg["timeout_s"],
            "min_chars": cfg["min_chars"]}


def _in_process(payload, url=None, http_charset=None, cfg=None):
    return html_mod.extract_html(payload, url=url, http_charset=http_charset, cfg=cfg)


CORRUPT_RANGE = "corrupt_range"   # record_type of a skipped byte range: a reject row, not a record


def _corrupt_row(source, p: Problem) -> dict:
    return _reject_row(source, p.file, p.offset, CORRUPT_RANGE, p.reason, p.detail)


def warc_record_to_row(rec: RawRecord | Problem, source: str, cfg: dict, extract=None) -> dict:
    """One output row (document or reject) for one WARC/ARC/WET record or unreadable region.
    `extract(payload, url=, http_charset=, cfg=)` extracts HTML (default: in this process; the
    job passes an `ExtractionSandbox.extract`)."""
    file_key = os.path.basename(rec.file)
    if isinstance(rec, Problem):
        return _corrupt_row(source, rec)
    rt = rec.rec_type
    common = dict(url=rec.url, record_id=rec.record_id, n_bytes=rec.payload_len)
    if rt in SKIP_TYPES or rt not in ("response", "resource", "conversion"):
        return _reject_row(source, rec.file, rec.offset, rt, f"skipped.{rt if rt in SKIP_TYPES else 'other_type'}",
                           None, **common)
    if rec.error:
        return _reject_row(source, rec.file, rec.offset, rt, "rejected.payload_error", rec.error, **common)
    if cfg["max_bytes"] and rec.payload_len > cfg["max_bytes"]:
        return _reject_row(source, rec.file, rec.offset, rt, "rejected.too_large",
                           f"{rec.payload_len} bytes > {cfg['max_bytes']}", **common)
    # the same record can sit in two files (copied WARCs): the file name keeps doc_id unique
    key = f"{file_key}\x00{rec.record_id}" if rec.record_id else \
        f"{file_key}\x00{rec.offset}\x00{rec.url or ''}"
    fetch = parse_warc_date(rec.date)
    if rt == "conversion":  # WET: the text is already extracted
        text = (rec.payload or b"").decode("utf-8", "replace").strip()
        if len(text) < max(1, cfg["min_chars"]):
            return _reject_row(source, rec.file, rec.offset, rt, "rejected.empty", None, **common)
        return _doc_row(source, rec.file, rec.offset, key, text, url=rec.url, fetch=fetch,
                        record_id=rec.record_id, n_bytes=rec.payload_len,
                        extraction={"extractor": "wet"}, record_type=rt)
    if rec.http_status is not None and rec.http_status and not 200 <= rec.http_status < 300:
        return _reject_row(source, rec.file, rec.offset, rt, "skipped.http_status",
                           str(rec.http_status), **common)
    if not _is_html(rec, cfg["html_content_types"]):
        return _reject_row(source, rec.file, rec.offset, rt, "skipped.non_html",
                           (rec.content_type or "")[:100], **common)
    ex = (extract or _in_process)(rec.payload or b"", url=rec.url,
                                  http_charset=html_mod.charset_from_content_type(rec.content_type),
                                  cfg=_html_cfg(cfg))
    if ex.text is None:
        return _reject_row(source, rec.file, rec.offset, rt, ex.reason, ex.detail, **common)
    lang = ex.html_lang or (rec.content_language.split(",")[0].strip()[:35] if rec.content_language else None)
    meta = dict(ex.meta)
    if rec.date and fetch is None:
        meta["bad_date"] = rec.date[:64]
    return _doc_row(source, rec.file, rec.offset, key, ex.text, url=rec.url, title=ex.title,
                    fetch=fetch, record_id=rec.record_id, n_bytes=rec.payload_len,
                    html_lang=lang, extraction=meta, record_type=rt)


def html_file_to_row(path: str, source: str, cfg: dict, lang_hint: str | None, extract=None) -> dict:
    cap = int(cfg["max_bytes"])
    try:
        data, more = read_capped(path, cap)
    except (OSError, EOFError) as e:
        return _reject_row(source, path, 0, "file", "rejected.bad_gzip", str(e)[:200])
    if more:
        return _reject_row(source, path, 0, "file", "rejected.too_large",
                           f"more than {cap} bytes{' after decompression' if path.endswith('.gz') else ''}"
                           f" (reading stopped at the cap)", n_bytes=cap + 1)
    ex = (extract or _in_process)(data, cfg=_html_cfg(cfg))
    if ex.text is None:
        return _reject_row(source, path, 0, "file", ex.reason, ex.detail, n_bytes=len(data))
    return _doc_row(source, path, 0, os.path.basename(path), ex.text, title=ex.title,
                    n_bytes=len(data), html_lang=ex.html_lang or lang_hint, extraction=ex.meta,
                    record_type="file")


def make_sandbox(cfg: dict):
    """The extraction sandbox `cfg['sandbox']` asks for, or None (in-process extraction)."""
    scfg = cfg.get("sandbox") or {}
    if not scfg.get("enabled", False):
        return None
    from curation.extract.sandbox import ExtractionSandbox
    return ExtractionSandbox(timeout_s=cfg["timeout_s"], memory_mb=scfg.get("memory_mb", 2048),
                             workers=scfg.get("workers", 1),
                             start_method=scfg.get("start_method", "fork"))


def process_task(task: tuple, source: str, cfg: dict, log=None, sandbox=None):
    """All output rows of one task: (file, start, end, layout, fmt). HTML is extracted in
    `sandbox` (an ExtractionSandbox), else in one made for this task from `cfg['sandbox']`."""
    path, start, end, layout, fmt = task
    own = None
    if sandbox is None and fmt in ("warc", "html"):
        sandbox = own = make_sandbox(cfg)
    try:
        yield from _process_task(task, source, cfg, log, sandbox.extract if sandbox else None)
    finally:
        if own is not None:
            own.close()


def _tally_row(source, path, start, tally: dict) -> dict:
    """The reader's own count for one task, checked by the job against the rows written."""
    return {"_kind": "tally", "source": source, "input_file": path, "input_offset": start,
            "n_bytes_raw": int(tally["records"]), "n_chars": int(tally.get("corrupt_ranges", 0)),
            "detail": f"resyncs={tally.get('resyncs', 0)} corrupt_bytes={tally.get('corrupt_bytes', 0)}"}


def _process_task(task: tuple, source: str, cfg: dict, log, extract):
    """Rows of one task: one per record read (a document or a reject), one per corrupt byte range
    (a reject with record_type `corrupt_range`, not a record), and last one `tally` row with the
    reader's own record count. A failure turning one record into a row rejects that record
    (`rejected.row_error`) and the task goes on; a failure of the reader itself ends the task's
    range with one corrupt range from the last record read."""
    path, start, end, layout, fmt = task
    t0 = time.time()
    tally = new_tally()
    last = start
    tcfg = cfg["text"]
    lang_hint = tcfg.get("lang") or lang_from_path(path, tcfg.get("lang_pattern"))

    def row_error(offset, rtype, e, url=None):
        return _reject_row(source, path, offset, rtype, "rejected.row_error",
                           f"{type(e).__name__}: {str(e)[:300]}", url=url)

    try:
        if fmt == "warc":
            for rec in iter_records(path, start, end, layout, max_bytes=cfg["max_bytes"], log=log,
                                    tally=tally):
                if isinstance(rec, Problem):
                    yield _corrupt_row(source, rec)
                    continue
                last = rec.offset
                try:
                    row = warc_record_to_row(rec, source, cfg, extract)
                except Exception as e:  # noqa: BLE001 - this record only
                    row = row_error(rec.offset, rec.rec_type, e, rec.url)
                yield row
        elif fmt == "html":
            tally["records"] += 1
            try:
                row = html_file_to_row(path, source, cfg, lang_hint, extract)
            except Exception as e:  # noqa: BLE001
                row = row_error(0, "file", e)
            yield row
        else:
            it = {"jsonl": iter_jsonl, "parquet": iter_parquet, "text": iter_plain}[fmt](
                path, {**tcfg, "max_line_bytes": cfg["max_bytes"]})
            base = os.path.basename(path)
            for d in it:
                tally["records"] += 1
                if isinstance(d, Problem):
                    last = d.offset
                    yield _reject_row(source, d.file, d.offset, "line", d.reason, d.detail)
                    continue
                last = d["offset"]
                try:
                    text = d["text"].strip()
                    if len(text) < max(1, cfg["min_chars"]):
                        yield _reject_row(source, path, d["offset"], "line", "rejected.empty")
                        continue
                    key = d["key"] or f"{base}\x00{d['offset']}"
                    ext = {"extractor": fmt}
                    if d.get("replaced"):      # invalid UTF-8 sequences replaced by U+FFFD
                        ext["replaced_chars"] = str(d["replaced"])
                    row = _doc_row(source, path, d["offset"], key, text, url=d["url"],
                                   title=d["title"], n_bytes=d["n_bytes"], html_lang=lang_hint,
                                   extraction=ext, record_type="line")
                except Exception as e:  # noqa: BLE001 - this record only
                    row = row_error(d["offset"], "line", e)
                yield row
    except Exception as e:  # the reader failed: the rest of the range is one corrupt range
        tally["corrupt_ranges"] += 1
        yield _corrupt_row(source, Problem(
            path, last, "corrupt.unreadable_file",
            f"bytes [{last}, {'' if end is None else end}): {type(e).__name__}: {str(e)[:300]}", end))
    yield _tally_row(source, path, start, tally)
    if log:
        log(f"[extract] {os.path.basename(path)} [{start}:{'' if end is None else end}] "
            f"{tally['records']} records, {tally['corrupt_ranges']} corrupt ranges in "
            f"{time.time() - t0:.1f}s")


# ---------------------------------------------------------------- Spark wiring

def guess_format(path: str) -> str:
    p = path.lower()
    if p.endswith(".gz"):
        p = p[:-3]
    if p.endswith((".warc", ".arc", ".wet", ".wat")) or ".warc" in p or p.endswith(".arc"):
        return "warc"
    if p.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if p.endswith(".parquet"):
        return "parquet"
    if p.endswith((".html", ".htm", ".xhtml")):
        return "html"
    return "text"


SPLIT_MIN, SPLIT_MAX = 8_000_000, 1_000_000_000


def resolve_split_bytes(setting, total_bytes: int, cores: int) -> int:
    """`split_bytes` = "auto": cut gzipped WARCs only as far as needed to give every core two
    tasks (total / (2 x cores), clamped to [8 MB, 1 GB]). A crawl of many ~1 GB files then runs one
    task per file (the driver holds one tuple per file), while two 20 MB sample files on two cores
    are cut into ~8 MB ranges so that both cores stay busy. A number is used as it is."""
    if setting in (None, "auto"):
        per = int(total_bytes) // max(1, 2 * int(cores))
        return max(SPLIT_MIN, min(SPLIT_MAX, per))
    if isinstance(setting, str) or int(setting) < 1:
        from core.validate import ConfigError
        raise ConfigError(f"split_bytes = {setting!r}: must be an integer >= 1 or 'auto'")
    return int(setting)


def _unified_schema():
    from pyspark.sql import types as T
    from core.schema import DOCUMENTS
    fields = [T.StructField("_kind", T.StringType(), False)]
    fields += [T.StructField(f.name, f.dataType, True) for f in DOCUMENTS.fields]
    fields += [T.StructField("record_type", T.StringType(), True),
               T.StructField("reason", T.StringType(), True),
               T.StructField("detail", T.StringType(), True)]
    return T.StructType(fields)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class AccountingError(RuntimeError):
    """Records read by the reader != documents + rejects written, for some file."""


def per_file_counts(rows_df) -> list:
    """Per input file: records the reader read (its tally), documents and record rejects among the
    rows (corrupt byte ranges are not records). One aggregation; O(files) rows to the driver."""
    from pyspark.sql import functions as F
    kind = F.col("_kind")
    is_rec_reject = (kind == "reject") & (F.coalesce(F.col("record_type"), F.lit("")) != CORRUPT_RANGE)
    return rows_df.groupBy("input_file").agg(
        F.sum(F.when(kind == "tally", F.col("n_bytes_raw")).otherwise(F.lit(0))).alias("read"),
        F.sum(F.when(kind == "doc", F.lit(1)).otherwise(F.lit(0))).alias("documents"),
        F.sum(F.when(is_rec_reject, F.lit(1)).otherwise(F.lit(0))).alias("rejects")).collect()


def check_accounting(rows_df) -> list:
    """per_file_counts, or AccountingError naming the files where records read != documents +
    rejects (the job calls it before writing a batch)."""
    per_file = per_file_counts(rows_df)
    bad = [r for r in per_file if r["read"] != r["documents"] + r["rejects"]]
    if bad:
        lines = [f"  {r['input_file']}: read {r['read']} records, wrote {r['documents']} documents "
                 f"+ {r['rejects']} rejects" for r in bad[:20]]
        raise AccountingError("records read != documents + rejects for these files (nothing "
                              "written):\n" + "\n".join(lines))
    return per_file


def _progress_schema():
    from pyspark.sql import types as T
    return T.StructType([
        T.StructField("source", T.StringType(), False),
        T.StructField("run_key", T.StringType(), False),     # config + format + source + inputs
        T.StructField("run_id", T.StringType(), False),
        T.StructField("event", T.StringType(), False),       # start | file | complete
        T.StructField("seq", T.LongType(), False),           # order of events (ns since epoch)
        T.StructField("input_file", T.StringType(), True),
        T.StructField("size", T.LongType(), True),
        T.StructField("mtime", T.DoubleType(), True),
        T.StructField("etag", T.StringType(), True),
        T.StructField("batch", T.IntegerType(), True),
        T.StructField("records", T.LongType(), True),
        T.StructField("documents", T.LongType(), True),
        T.StructField("rejects", T.LongType(), True),
    ])


def progress_path_of(output_path: str) -> str:
    return output_path.rstrip("/") + "_progress"


PROGRESS_JOB = "extract.progress"     # the progress table's ownership marker (core/tables.py)


def _progress_append(spark, path: str, rows: list[dict]) -> None:
    """Append events to the progress table; a new table (or one claimed with overwrite) is created
    with extract's progress marker in the same commit."""
    from core.tables import write_table
    names = [f.name for f in _progress_schema().fields]
    df = spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], _progress_schema())
    write_table(df.coalesce(1), path, mode="append", job=PROGRESS_JOB)


def unfinished_run(spark, progress_path: str, source: str, run_key: str, state):
    """(run_id, {file: (size, mtime, etag)} done, cleared) of the last run with this key when it
    did not complete, else (None, {}, False). `state` is what `claim_output` found at the path: a
    path that is not extract's progress table (absent, or claimed with overwrite) holds no run;
    otherwise one small read of the table."""
    from core.tables import read_table
    from pyspark.sql import functions as F
    if not (state.kind == "delta" and state.job == PROGRESS_JOB):
        return None, {}, False
    df = read_table(spark, progress_path).where(
        (F.col("source") == source) & (F.col("run_key") == run_key))
    last = df.where(F.col("event").isin("start", "complete")).orderBy(F.col("seq").desc()).first()
    if last is None or last["event"] == "complete":
        return None, {}, False
    done = {r["input_file"]: (r["size"], r["mtime"], r["etag"])
            for r in df.where((F.col("event") == "file") & (F.col("run_id") == last["run_id"]))
            .select("input_file", "size", "mtime", "etag").collect()}
    return last["run_id"], done, bool(done)


def _sql_str(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _write_batch(df, path: str, source: str, batch_files: list | None, job: str,
                 user_metadata: dict) -> None:
    """Replace, in one Delta commit, the rows of `source` (batch_files None: the whole source, for
    a fresh run's first batch) or of `source` and these files (a later or resumed batch). A new
    table is created with `job`'s ownership marker (core/tables.py) in that commit."""
    from core.tables import write_table
    cond = f"source = {_sql_str(source)}"
    if batch_files is not None:
        cond += " AND input_file IN (" + ", ".join(_sql_str(f) for f in batch_files) + ")"
    write_table(df, path, partition_by=["source"], job=job, user_metadata=user_metadata,
                replace_where=cond)


def check_shrink(spark, output_path: str, source: str, n_files: int, allow_shrink: bool) -> None:
    """A re-run of `source` listing fewer input files than its last run (a mistyped glob, a
    missing mount) would replace the source's rows with fewer: refused with both counts unless
    `allow_shrink`, then a warning."""
    from core.tables import OutputRefused, find_commit, is_delta_table
    if not is_delta_table(spark, output_path):
        return
    hit = find_commit(spark, output_path, lambda m: m.get("source") == source and "files" in m)
    if hit is None or n_files >= int(hit[1]["files"]):
        return
    msg = (f"source {source!r}: this run lists {n_files} input files, its last run (version "
           f"{hit[0]} of {output_path}) listed {hit[1]['files']}; its rows would be replaced "
           f"by fewer")
    if not allow_shrink:
        raise OutputRefused(msg + " (pass --allow-shrink if that is intended)")
    _log(f"[extract] WARNING: {msg} (--allow-shrink)")


def run_extract(spark, input_path, output_path: str, config: dict | None = None,
                stats_path: str | None = None, *, fmt: str | None = None, source: str | None = None,
                text_field=None, lang: str | None = None, paths_base: str | None = None,
                overwrite: bool = False, allow_shrink: bool = False):
    """Extract `input_path` (paths, URIs, globs, folders or `*.paths.gz` listings joined to
    `paths_base`; str or list) into the documents table at `output_path`.

    Files are processed and committed in batches (`resume.batch_files` / `batch_bytes`): each
    batch's rows are checked (records read = documents + rejects per file), written to the
    documents and rejects tables (Delta `replaceWhere` on the source and the batch's files: one
    commit per table) and then logged as done in `<output>_progress` (path, size, mtime, ETag).
    A run that was killed, re-run with the same arguments, skips the files logged as done and
    ends with the same tables as an uninterrupted run.

    The documents table, `<output_path>_rejects`, `<output_path>_progress` and the stats table
    must be new or extract's own (unless `overwrite`); no input may lie inside the output; a source re-run with fewer input files than
    its last run is refused unless `allow_shrink`. The rejects are written first and the
    documents commit names their version (core/tables.py `read_companion`)."""
    import uuid

    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from core.config import config_hash, merge
    from core.schema import DOCUMENTS, REJECTS
    from core.stats import RunStats

    cfg = check_schema(merge(DEFAULTS, config or {}), SCHEMA)
    if text_field is not None:
        cfg["text"]["text_field"] = parse_text_field(text_field)
    if lang is not None:
        cfg["text"]["lang"] = lang
    listed = fs.expand(input_path, paths_base=paths_base)   # listed on the driver, never opened
    files = [f.path for f in listed]
    known_size = {f.path: f.size for f in listed}
    meta_of = {f.path: (f.size, f.mtime, f.etag) for f in listed}
    fmt = fmt or guess_format(files[0])
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    if fmt == "text" and all(guess_format(f) == "warc" for f in files):
        fmt = "warc"
    source = source or ("crawl" if fmt == "warc" else
                        os.path.basename(files[0]).split(".")[0])
    from core.tables import (check_input_not_in_output, claim_output, companion_path, crash_point,
                             table_version)
    rejects_path = companion_path(output_path, "_rejects")
    for f in files:
        check_input_not_in_output(f, output_path)
        check_input_not_in_output(f, rejects_path)
    claim_output(spark, output_path, "extract", overwrite)
    claim_output(spark, rejects_path, "extract.rejects", overwrite)
    progress = progress_path_of(output_path)
    progress_state = claim_output(spark, progress, PROGRESS_JOB, overwrite)
    check_shrink(spark, output_path, source, len(files), allow_shrink)
    stats = RunStats("extract", config_hash=config_hash({**cfg, "format": fmt, "source": source}))
    stats.claim(spark, stats_path, overwrite)
    stats.info.update({"source": source, "format": fmt, "output": output_path})
    stats.set("files", len(files))
    stats.set("bytes.in", sum(f.size or 0 for f in listed))   # a paths listing gives no sizes
    _log(f"[extract] source={source} format={fmt}: {len(files)} files, "
         f"{stats.counters['bytes.in'] / 1e6:.1f} MB -> {output_path}")

    sc = spark.sparkContext
    split = resolve_split_bytes(cfg["split_bytes"], stats.counters["bytes.in"], sc.defaultParallelism)
    stats.set("split_bytes", split)

    # ---- resume: the files an unfinished run with the same arguments already committed
    inputs = sorted(input_path) if isinstance(input_path, (list, tuple)) else [str(input_path)]
    run_key = config_hash({"config": stats.config_hash, "inputs": inputs, "paths_base": paths_base})
    run_id, done, cleared = unfinished_run(spark, progress, source, run_key, progress_state)
    # progress events go out with the next batch's commit: a fresh run's `start` with its first
    # batch, `complete` with its last (a run killed before its first batch's progress commit
    # left no file logged, so its re-run starts afresh and replaces the source: the same table)
    pending = []
    if run_id is None:
        run_id = uuid.uuid4().hex[:12]
        pending.append({"source": source, "run_key": run_key, "run_id": run_id,
                        "event": "start", "seq": time.time_ns()})
    skip = {f for f in files if f in done and tuple(done[f]) == tuple(meta_of[f])}
    todo = [f for f in files if f not in skip]
    stats.set("files.resumed", len(skip))
    if skip:
        _log(f"[extract] resuming run {run_id}: {len(skip)} of {len(files)} files already done")
    batches = group_tasks(todo, [known_size.get(f) or 0 for f in todo], cfg["resume"]["batch_bytes"],
                          max_items=cfg["resume"]["batch_files"])
    stats.set("batches", len(batches))

    bcfg = sc.broadcast(cfg)
    src = source

    def run_partition(it):
        c = bcfg.value
        sandbox = make_sandbox(c) if fmt in ("warc", "html") else None   # one pool per Spark task
        try:
            for group in it:
                for task in group:
                    for row in process_task(task, src, c, log=_log, sandbox=sandbox):
                        yield row
        finally:
            if sandbox is not None:
                sandbox.close()

    names = [f.name for f in _unified_schema().fields]
    n_tasks = n_groups = 0
    bytes_total = sum((known_size.get(f) or 0) for f in todo)
    bytes_done = 0
    t_start = time.time()
    for bi, batch in enumerate(batches):
        if fmt == "warc":
            # planned on the driver from the listing's sizes alone: no byte of any file is read
            tasks = [(p, s, e, lay, "warc") for f in batch
                     for (p, s, e, lay) in plan_file(f, split, size=known_size.get(f))]
        else:
            tasks = [(f, 0, None, "whole", fmt) for f in batch]
        tasks.sort(key=lambda t: (t[0], t[1]))
        # small files are packed into groups (one Spark task each) of about split_bytes
        # (a file of unknown size, named by a paths listing, counts as one whole group)
        sizes = [(t[2] - t[1]) if t[2] is not None else
                 max(0, (known_size.get(t[0]) if known_size.get(t[0]) is not None else split) - t[1])
                 for t in tasks]
        groups = group_tasks(tasks, sizes, split, min_groups=2 * sc.defaultParallelism)
        n_tasks += len(tasks)
        n_groups += len(groups)
        rows = sc.parallelize(groups, max(1, len(groups))).mapPartitions(run_partition) \
            .map(lambda d: tuple(d.get(n) for n in names))
        out = spark.createDataFrame(rows, _unified_schema()).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            per_file = check_accounting(out)   # one aggregation; raises before anything is written
            docs = out.where(F.col("_kind") == "doc").select(
                *[F.col(f.name).cast(f.dataType) for f in DOCUMENTS.fields])
            rejects = out.where(F.col("_kind") == "reject").select(
                *[F.col(f.name).cast(f.dataType) for f in REJECTS.fields])
            scope = batch if cleared else None      # a fresh run's first batch replaces the source
            # the rejects first; the documents commit names the rejects' version (a reader of
            # the pair, core.tables.read_companion, never sees one batch's rejects without its
            # documents) and the run's input file count (the next run's shrink check)
            info = {"curation.job": "extract", "run_id": run_id, "source": source, "batch": bi,
                    "config_hash": stats.config_hash}
            _write_batch(rejects, rejects_path, source, scope, "extract.rejects",
                         {**info, "curation.job": "extract.rejects"})
            crash_point("extract.between_writes")
            _write_batch(docs, output_path, source, scope, "extract",
                         {**info, "files": len(files),
                          "companions": {"_rejects": table_version(spark, rejects_path)}})
            agg = out.groupBy("_kind", "record_type", "reason").agg(
                F.count("*").alias("n"), F.sum("n_bytes_raw").alias("b"),
                F.sum("n_chars").alias("c"),
                F.sum(F.col("extraction")["replaced_chars"].cast("long")).alias("r")).collect()
        finally:
            out.unpersist()
        counts = {r["input_file"]: r for r in per_file}
        now = time.time_ns()
        events = pending + [
            {"source": source, "run_key": run_key, "run_id": run_id, "event": "file", "seq": now,
             "input_file": f, "size": meta_of[f][0], "mtime": meta_of[f][1], "etag": meta_of[f][2],
             "batch": bi, "records": int(counts[f]["read"]) if f in counts else 0,
             "documents": int(counts[f]["documents"]) if f in counts else 0,
             "rejects": int(counts[f]["rejects"]) if f in counts else 0} for f in batch]
        if bi == len(batches) - 1:
            events.append({"source": source, "run_key": run_key, "run_id": run_id,
                           "event": "complete", "seq": now + 1})
        _progress_append(spark, progress, events)     # one commit per batch
        pending = []
        cleared = True
        _add_counts(stats, agg)
        bytes_done += sum((known_size.get(f) or 0) for f in batch)
        el = max(time.time() - t_start, 1e-9)
        rate = bytes_done / el
        eta = (bytes_total - bytes_done) / rate if rate > 0 else float("nan")
        _log(f"[extract] batch {bi + 1}/{len(batches)} committed: files "
             f"{len(skip) + sum(len(b) for b in batches[:bi + 1])}/{len(files)} done, "
             f"{int(stats.counters.get('documents', 0))} documents, "
             f"{stats.counters.get('documents', 0) / el:.1f} documents/s, ETA {eta:.0f} s")
    if not batches:     # every file was done already: the resumed run only completes
        _progress_append(spark, progress, pending + [
            {"source": source, "run_key": run_key, "run_id": run_id, "event": "complete",
             "seq": time.time_ns()}])
    stats.set("tasks", n_tasks)
    stats.set("spark_tasks", n_groups)
    for k in ("documents", "rejects", "records.seen", "corrupt.ranges"):
        stats.counters.setdefault(k, 0)
    secs = max(stats.seconds, 1e-9)
    stats.set("documents_per_s", round(stats.counters["documents"] / secs, 3))
    stats.record(spark, stats_path)
    return stats


def _add_counts(stats, agg) -> None:
    records, rejected = Outcomes(stats, "records"), Outcomes(stats)  # reasons: counters by name
    for r in agg:
        n = int(r["n"])
        if r["_kind"] == "tally":       # the reader's own counts
            records.add("seen", int(r["b"] or 0))
            continue
        if r["record_type"] == CORRUPT_RANGE:
            stats.add("corrupt.ranges", n)
            rejected.add(r["reason"], n)
            continue
        if r["_kind"] == "doc":
            stats.add("documents", n)
            stats.add("chars.out", int(r["c"] or 0))
            if r.asDict().get("r"):
                stats.add("text.replaced_chars", int(r["r"]))   # invalid UTF-8, as U+FFFD
        else:
            rejected.add(r["reason"], n)
            stats.add("rejects", n)
        records.add(r["record_type"] or "unknown", n)
        stats.add("bytes.payload", int(r["b"] or 0))
