"""Text datasets (JSONL, Parquet, plain text, HTML files) read into the same record shape as WARC
records, so they land in the one `documents` table.

Field mapping (`text_field`): one field name (`content`), a list of fields joined by
`join` (`[question, answer]` -> "question\\n\\nanswer"), or a template with `{field}` placeholders
(`"Problem: {problem}\\n\\nSolution: {solution}"`). `url_field`, `title_field` and `id_field`
optionally name columns for url, title and a stable record key.

Plain text: `lines_per_doc` consecutive non-blank lines form one document (Tatoeba is one sentence
per line; 1 sentence is too short to be a useful document and too many mixes unrelated sentences,
so the default groups 20). Blank lines also end a document.

Every function yields dicts (a document's fields) or `Problem`s (bad JSON line, missing field),
one per input record: nothing is dropped silently.
"""
from __future__ import annotations

import gzip
import json
import re
from contextlib import contextmanager
from string import Formatter

from core import fs
from curation.extract.warc import Problem


@contextmanager
def open_binary(path: str):
    """A byte stream over a file (core/fs), gunzipped while streaming when the name ends in .gz;
    both streams are closed on exit (closing a GzipFile leaves the file it reads open)."""
    with fs.open_input(path) as raw:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                yield fh
        else:
            yield raw


def read_capped(path: str, cap: int) -> tuple[bytes, bool]:
    """The bytes of a file (decompressed while streaming when it ends in `.gz`), at most `cap`
    of them: (data, True) when there was more. A gzip bomb costs `cap` bytes of memory and the
    time to inflate `cap` bytes, never its full size. gzip errors raise (OSError, EOFError)."""
    with open_binary(path) as fh:
        data = fh.read(cap + 1)
    return (data[:cap], True) if len(data) > cap else (data, False)


MAX_LINE_BYTES = 5_000_000


def iter_lines(fh, max_bytes: int = MAX_LINE_BYTES):
    """(line number, text or None, replaced, n_bytes) for every line of a byte stream, never holding
    more than `max_bytes` of one line: a longer line (a one-line gzip bomb) gives text None and
    is skipped to its end in bounded chunks. Invalid UTF-8 is replaced by U+FFFD and counted
    (`replaced`: the number of invalid byte sequences)."""
    i = 0
    while True:
        b = fh.readline(max_bytes + 1)
        if not b:
            return
        n = len(b)
        if n > max_bytes and not b.endswith(b"\n"):
            while True:                      # the rest of the long line, discarded
                more = fh.readline(1 << 20)
                n += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield i, None, 0, n
            i += 1
            continue
        try:
            text, bad = b.decode("utf-8"), 0
        except UnicodeDecodeError:
            text = b.decode("utf-8", "replace")
            bad = text.count("\ufffd") - b.count("\ufffd".encode())
        yield i, text, bad, n
        i += 1


class FieldTypeError(ValueError):
    """A field used as text holds a list, a number, a boolean, ... instead of a string."""


def _as_text(name: str, v):
    if isinstance(v, bytes):
        raise FieldTypeError(f"field {name!r} is bytes, not a string")
    if not isinstance(v, str):
        raise FieldTypeError(f"field {name!r} is a {type(v).__name__} ({str(v)[:40]!r}), not a "
                             f"string")
    return v


def render_text(row: dict, text_field, join: str = "\n\n") -> str | None:
    """The document text of a row under a field mapping (see module doc); None if a field is
    missing; FieldTypeError if a field is not a string (never its Python repr as text)."""
    if isinstance(text_field, (list, tuple)):
        parts = []
        for f in text_field:
            v = row.get(f)
            if v is None:
                return None
            parts.append(_as_text(f, v).strip())
        return join.join(p for p in parts if p)
    if "{" in text_field:
        names = [n for _, n, _, _ in Formatter().parse(text_field) if n]
        if any(row.get(n) is None for n in names):
            return None
        return text_field.format(**{n: _as_text(n, row[n]) for n in names})
    v = row.get(text_field)
    return None if v is None else _as_text(text_field, v)


def parse_text_field(spec: str | list | None) -> str | list:
    """`a,b` on the command line means the list [a, b]; a template keeps its commas."""
    if spec is None:
        return "text"
    if isinstance(spec, str) and "{" not in spec and "," in spec:
        return [s.strip() for s in spec.split(",") if s.strip()]
    return spec


def _doc(path, offset, text, row, cfg):
    return {"file": path, "offset": offset, "text": text,
            "url": row.get(cfg.get("url_field")) if cfg.get("url_field") else None,
            "title": row.get(cfg.get("title_field")) if cfg.get("title_field") else None,
            "key": str(row.get(cfg["id_field"])) if cfg.get("id_field") and row.get(cfg["id_field"]) is not None else None,
            "n_bytes": None}


def iter_jsonl(path: str, cfg: dict):
    """One record per line; input_offset is the line number (0-based). A line longer than
    `max_line_bytes` is rejected without being held; a text field that is not a string is a
    reject with its type; invalid UTF-8 is replaced and counted (`replaced` of the document)."""
    tf = parse_text_field(cfg.get("text_field"))
    cap = int(cfg.get("max_line_bytes") or MAX_LINE_BYTES)
    with open_binary(path) as fh:
        for i, line, bad, nb in iter_lines(fh, cap):
            if line is None:
                yield Problem(path, i, "rejected.too_large", f"line of {nb} bytes > {cap}")
                continue
            if not line.strip():
                yield Problem(path, i, "skipped.blank_line", "")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield Problem(path, i, "rejected.bad_json", str(e)[:200])
                continue
            if not isinstance(row, dict):
                yield Problem(path, i, "rejected.bad_json", "line is not a JSON object")
                continue
            try:
                text = render_text(row, tf, cfg.get("join", "\n\n"))
            except FieldTypeError as e:
                yield Problem(path, i, "rejected.bad_field_type", str(e))
                continue
            if text is None:
                yield Problem(path, i, "rejected.missing_field", f"no {tf!r} in keys {sorted(row)[:10]}")
                continue
            d = _doc(path, i, text, row, cfg)
            d["n_bytes"] = nb
            d["replaced"] = bad
            yield d


def _field_names(tf) -> list[str]:
    if isinstance(tf, (list, tuple)):
        return list(tf)
    if "{" in tf:
        return [n for _, n, _, _ in Formatter().parse(tf) if n]
    return [tf]


def iter_parquet(path: str, cfg: dict):
    """One record per row; input_offset is the row number in the file. A file whose schema lacks
    a text field, or holds it as a non-string type, is one reject naming its columns (not one
    per row)."""
    import pyarrow.parquet as pq
    tf = parse_text_field(cfg.get("text_field"))
    with fs.open_input(path) as f:
        yield from _parquet_rows(path, pq.ParquetFile(f), tf, cfg)


def _parquet_rows(path: str, pf, tf, cfg: dict):
    import pyarrow as pa
    schema = pf.schema_arrow
    cols = {f.name: f.type for f in schema}
    missing = [n for n in _field_names(tf) if n not in cols]
    wrong = [f"{n} ({cols[n]})" for n in _field_names(tf)
             if n in cols and not (pa.types.is_string(cols[n]) or pa.types.is_large_string(cols[n])
                                   or pa.types.is_null(cols[n]))]
    if missing or wrong:
        why = (f"no column {missing}" if missing else f"non-string text column {wrong}")
        yield Problem(path, 0, "rejected.bad_schema",
                      f"{why}; the file's {pf.metadata.num_rows} rows were not read; its columns: "
                      + ", ".join(f"{k} ({v})" for k, v in list(cols.items())[:20]))
        return
    i = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            try:
                text = render_text(row, tf, cfg.get("join", "\n\n"))
            except FieldTypeError as e:
                yield Problem(path, i, "rejected.bad_field_type", str(e))
                i += 1
                continue
            if text is None:
                yield Problem(path, i, "rejected.missing_field", f"no {tf!r}")
            else:
                yield _doc(path, i, text, row, cfg)
            i += 1


def iter_plain(path: str, cfg: dict):
    """Groups of `lines_per_doc` non-blank lines; input_offset is the first line's number. A line
    longer than `max_line_bytes` is rejected without being held; invalid UTF-8 is replaced and
    counted per document (`replaced`)."""
    n = max(1, int(cfg.get("lines_per_doc", 20)))
    cap = int(cfg.get("max_line_bytes") or MAX_LINE_BYTES)
    buf: list[str] = []
    first, replaced = 0, 0

    def doc():
        return {"file": path, "offset": first, "text": "\n".join(buf), "url": None, "title": None,
                "key": None, "n_bytes": sum(len(b) + 1 for b in buf), "replaced": replaced}

    with open_binary(path) as fh:
        for i, line, bad, nb in iter_lines(fh, cap):
            if line is None:
                yield Problem(path, i, "rejected.too_large", f"line of {nb} bytes > {cap}")
                continue
            s = line.rstrip("\r\n")
            if not s.strip():
                if buf:
                    yield doc()
                    buf, replaced = [], 0
                continue
            if not buf:
                first = i
            buf.append(s)
            replaced += bad
            if len(buf) >= n:
                yield doc()
                buf, replaced = [], 0
        if buf:
            yield doc()


def lang_from_path(path: str, pattern: str | None) -> str | None:
    """A language hint from a file name (`pattern`'s first group), e.g. tatoeba.deu-eng.deu -> deu."""
    if not pattern:
        return None
    m = re.search(pattern, path)
    return m.group(1) if m else None


def group_tasks(tasks: list, sizes: list[int], target_bytes: int, min_groups: int = 1,
                max_items: int | None = None) -> list[list]:
    """Pack consecutive tasks into groups of about `target_bytes` of input, one Spark task each.

    Many small files (532 UDHR pages, 108 Tatoeba files) as one task per file spend more time in
    per-task overhead than in reading. Groups keep the tasks' order (the list is sorted by file and
    offset, so the grouping is deterministic), never split a task, and every task lands in exactly
    one group, so every record is still read once and keeps its doc_id (which depends on the file
    and the offset, not on the grouping). The target shrinks to total / `min_groups` so a small
    source is still spread over `min_groups` tasks (the cores); a task larger than the target is a
    group of its own. `max_items` also caps the number of tasks in a group (the job's resume
    batches of files use it).
    """
    if len(tasks) != len(sizes):
        raise ValueError(f"{len(tasks)} tasks but {len(sizes)} sizes")
    if not tasks:
        return []
    total = sum(max(0, int(s)) for s in sizes)
    target = max(1, min(int(target_bytes), -(-total // max(1, int(min_groups)))))
    groups: list[list[tuple]] = []
    cur: list[tuple] = []
    cur_bytes = 0
    for task, size in zip(tasks, sizes):
        size = max(0, int(size))
        if cur and (cur_bytes + size > target or (max_items and len(cur) >= max_items)):
            groups.append(cur)
            cur, cur_bytes = [], 0
        cur.append(task)
        cur_bytes += size
    if cur:
        groups.append(cur)
    return groups
