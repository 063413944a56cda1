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
import io
import json
import re
from string import Formatter

from core import fs
from curation.extract.warc import Problem


def _open_text(path: str):
    """A text stream over a local file or a URI (core/fs), gunzipped when the name ends in .gz."""
    return fs.open_text(path)


def render_text(row: dict, text_field, join: str = "\n\n") -> str | None:
    """The document text of a row under a field mapping (see module doc); None if a field is missing."""
    if isinstance(text_field, (list, tuple)):
        parts = []
        for f in text_field:
            v = row.get(f)
            if v is None:
                return None
            parts.append(str(v).strip())
        return join.join(p for p in parts if p)
    if "{" in text_field:
        names = [n for _, n, _, _ in Formatter().parse(text_field) if n]
        if any(row.get(n) is None for n in names):
            return None
        return text_field.format(**{n: row[n] for n in names})
    v = row.get(text_field)
    return None if v is None else str(v)


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
    """One record per line; input_offset is the line number (0-based)."""
    tf = parse_text_field(cfg.get("text_field"))
    with _open_text(path) as fh:
        for i, line in enumerate(fh):
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
            text = render_text(row, tf, cfg.get("join", "\n\n"))
            if text is None:
                yield Problem(path, i, "rejected.missing_field", f"no {tf!r} in keys {sorted(row)[:10]}")
                continue
            d = _doc(path, i, text, row, cfg)
            d["n_bytes"] = len(line.encode("utf-8"))
            yield d


def iter_parquet(path: str, cfg: dict):
    """One record per row; input_offset is the row number in the file."""
    import pyarrow.parquet as pq
    tf = parse_text_field(cfg.get("text_field"))
    pf = pq.ParquetFile(fs.open_input(path))
    i = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            text = render_text(row, tf, cfg.get("join", "\n\n"))
            if text is None:
                yield Problem(path, i, "rejected.missing_field", f"no {tf!r}")
            else:
                yield _doc(path, i, text, row, cfg)
            i += 1


def iter_plain(path: str, cfg: dict):
    """Groups of `lines_per_doc` non-blank lines; input_offset is the first line's number."""
    n = max(1, int(cfg.get("lines_per_doc", 20)))
    buf: list[str] = []
    first = 0
    with _open_text(path) as fh:
        for i, line in enumerate(fh):
            s = line.rstrip("\r\n")
            if not s.strip():
                if buf:
                    yield {"file": path, "offset": first, "text": "\n".join(buf), "url": None,
                           "title": None, "key": None, "n_bytes": sum(len(b) + 1 for b in buf)}
                    buf = []
                continue
            if not buf:
                first = i
            buf.append(s)
            if len(buf) >= n:
                yield {"file": path, "offset": first, "text": "\n".join(buf), "url": None,
                       "title": None, "key": None, "n_bytes": sum(len(b) + 1 for b in buf)}
                buf = []
        if buf:
            yield {"file": path, "offset": first, "text": "\n".join(buf), "url": None,
                   "title": None, "key": None, "n_bytes": sum(len(b) + 1 for b in buf)}


def lang_from_path(path: str, pattern: str | None) -> str | None:
    """A language hint from a file name (`pattern`'s first group), e.g. tatoeba.deu-eng.deu -> deu."""
    if not pattern:
        return None
    m = re.search(pattern, path)
    return m.group(1) if m else None


def group_tasks(tasks: list[tuple], sizes: list[int], target_bytes: int, min_groups: int = 1
                ) -> list[list[tuple]]:
    """Pack consecutive tasks into groups of about `target_bytes` of input, one Spark task each.

    Many small files (532 UDHR pages, 108 Tatoeba files) as one task per file spend more time in
    per-task overhead than in reading. Groups keep the tasks' order (the list is sorted by file and
    offset, so the grouping is deterministic), never split a task, and every task lands in exactly
    one group, so every record is still read once and keeps its doc_id (which depends on the file
    and the offset, not on the grouping). The target shrinks to total / `min_groups` so a small
    source is still spread over `min_groups` tasks (the cores); a task larger than the target is a
    group of its own.
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
        if cur and cur_bytes + size > target:
            groups.append(cur)
            cur, cur_bytes = [], 0
        cur.append(task)
        cur_bytes += size
    if cur:
        groups.append(cur)
    return groups
