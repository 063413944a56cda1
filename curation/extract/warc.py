"""Reading WARC (1.0, 1.1, 0.18), ARC and WET files: gzipped per record, gzipped whole, or plain.

The reader is warcio (it reads ARC and WARC 0.18, which FastWARC does not; see
`benchmarks/warc_readers.py` for the robustness and speed comparison), wrapped in three things:

1. **Layout and splits** (`plan_file`): a file gzipped per record is indexed once (gzip member
   boundaries, found by decompressing with zlib, no record parsing), and its members are grouped into
   byte ranges of about `split_bytes`; each range becomes one Spark task that seeks to its start and
   reads until its end. A file gzipped whole, or plain, is one task (offsets are then positions in
   the decompressed stream).
2. **Recovery**: when warcio fails inside a file (truncated record, wrong length, bad chunking), the
   failure is reported as a `corrupt.unreadable` problem with its offset, and reading resumes at the
   next record start (the next gzip member, or the next `WARC/x.y` / ARC header line), so one bad
   record never loses the rest of the file.
3. **Accounting**: `iter_records` yields exactly one item per record it sees (a `RawRecord`) or per
   unreadable region (a `Problem`); nothing is dropped silently.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import sys
import zlib
from dataclasses import dataclass

from core import fs

GZIP_MAGIC = b"\x1f\x8b"
_WARC_HEAD = rb"^WARC/[01]\.\d+\r?$"
_ARC_HEAD = rb"^(?:https?|ftp|dns|filedesc|mailto):\S.*? \d{1,3}(?:\.\d{1,3}){3} \d{14} \S+ \d+\r?$"
_RECORD_START = re.compile(_WARC_HEAD + rb"|" + _ARC_HEAD, re.M)


@dataclass
class RawRecord:
    file: str
    offset: int
    rec_type: str                 # response, request, conversion, revisit, ... (ARC -> response)
    url: str | None
    date: str | None              # WARC-Date / ARC date as written
    record_id: str | None
    content_type: str | None      # HTTP Content-Type for responses, WARC Content-Type otherwise
    http_status: int | None
    content_language: str | None
    payload: bytes | None         # HTTP body (de-chunked, de-compressed) or the record block
    payload_len: int              # bytes of the payload (may exceed len(payload) when capped)
    error: str | None = None      # problem reading the payload (record still accounted for)


@dataclass
class Problem:
    file: str
    offset: int
    reason: str
    detail: str


# ---------------------------------------------------------------- layout and splits

def _first_member_end(fh, start: int, limit: int = 1 << 30) -> tuple[int | None, bytes]:
    """Decompress the gzip member at `start`: (compressed end offset or None, first decompressed bytes)."""
    fh.seek(start)
    d = zlib.decompressobj(31)
    head = b""
    pos = start
    while True:
        chunk = fh.read(1 << 16)
        if not chunk:
            return None, head
        try:
            out = d.decompress(chunk)
        except zlib.error:
            return None, head
        if len(head) < 64:
            head += out[:64]
        if d.eof:
            return pos + len(chunk) - len(d.unused_data), head
        pos += len(chunk)
        if pos - start > limit:
            return None, head


def index_members(path: str) -> list[int] | None:
    """Start offsets of the gzip members of a record-gzipped file, or None when the file is not one
    (a single member holding several records, a member not starting with a record header, bad gzip).
    """
    size = fs.size(path)
    starts: list[int] = []
    with fs.open_input(path) as fh:
        d = None
        pos = 0
        buf = b""
        fh.seek(0)
        # stream the file once, restarting a decompressor at each member end
        d = zlib.decompressobj(31)
        member_start = 0
        head = b""
        while True:
            chunk = buf or fh.read(1 << 20)
            buf = b""
            if not chunk:
                break
            try:
                out = d.decompress(chunk)
            except zlib.error:
                return None
            if len(head) < 64:
                head += out[:64 - len(head)]
            if d.eof:
                if not _RECORD_START.match(head.lstrip(b"\r\n")):
                    return None
                starts.append(member_start)
                consumed = len(chunk) - len(d.unused_data)
                member_start = pos + consumed
                pos = member_start
                buf = d.unused_data
                d = zlib.decompressobj(31)
                head = b""
                if buf and not buf.startswith(GZIP_MAGIC):
                    return None
            else:
                pos += len(chunk)
        if member_start < size:  # trailing partial member (truncated file): keep it, reader reports it
            if head and _RECORD_START.match(head.lstrip(b"\r\n")):
                starts.append(member_start)
            elif head:
                return None
    if len(starts) < 2:
        return None
    return starts


def file_layout(path: str) -> str:
    with fs.open_input(path, 0, 2) as fh:
        magic = fh.read(2)
    return "gzip" if magic == GZIP_MAGIC else "plain"


def plan_file(path: str, split_bytes: int) -> list[tuple[str, int, int | None, str]]:
    """Byte ranges (file, start, end, layout) that together cover `path`; layout is
    `members` (seekable gzip members), `gzip` (gzipped whole: one range) or `plain` (one range)."""
    layout = file_layout(path)
    size = fs.size(path)
    if layout == "plain":
        return [(path, 0, None, "plain")]
    starts = index_members(path)
    if starts is None:
        return [(path, 0, None, "gzip")]
    if size <= split_bytes:
        return [(path, 0, None, "members")]
    ranges = []
    cur = 0
    for s in starts[1:]:
        if s - cur >= split_bytes:
            ranges.append((path, cur, s, "members"))
            cur = s
    ranges.append((path, cur, None, "members"))
    return ranges


# ---------------------------------------------------------------- reading

class _RangeFile(io.RawIOBase):
    """A read-only view of bytes [start, end) of a file; tell() is the absolute file offset."""

    def __init__(self, fh, start: int, end: int | None):
        self.fh, self.end = fh, end
        fh.seek(start)

    def readable(self):
        return True

    def read(self, n=-1):
        pos = self.fh.tell()
        if self.end is not None:
            left = self.end - pos
            if left <= 0:
                return b""
            n = left if n is None or n < 0 else min(n, left)
        return self.fh.read(n)

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def tell(self):
        return self.fh.tell()

    def seek(self, pos, whence=0):
        return self.fh.seek(pos, whence)

    def seekable(self):
        return True


def _next_record_start(fh, pos: int, end: int | None, members: list[int] | None) -> int | None:
    """The first record start strictly after `pos` (next gzip member, or next header line)."""
    if members is not None:
        for s in members:
            if s > pos and (end is None or s < end):
                return s
        return None
    fh.seek(pos + 1)
    carry = b""
    base = pos + 1          # file offset of chunk[0]
    while True:
        try:
            chunk = fh.read(1 << 20)
        except (EOFError, OSError, zlib.error):  # truncated gzip: nothing further is readable
            return None
        if not chunk:
            return None
        data = carry + chunk
        m = _RECORD_START.search(data)
        if m:
            at = base - len(carry) + m.start()
            return at if end is None or at < end else None
        carry = data[-512:]
        base += len(chunk)
        if end is not None and base >= end:
            return None


def _header(rec, name: str) -> str | None:
    v = rec.rec_headers.get_header(name)
    return v.strip() if v else None


def is_arc(path: str) -> bool:
    """Whether a file is ARC (its first record header is an ARC header line, not `WARC/x.y`)."""
    try:
        with (gzip.GzipFile(fileobj=fs.open_input(path, 0, 1 << 16), mode="rb")
              if file_layout(path) == "gzip" else fs.open_input(path, 0, 2048)) as fh:
            head = fh.read(2048).lstrip(b"\r\n")
    except (OSError, EOFError, zlib.error):
        return False
    return not head.startswith(b"WARC/") and re.match(_ARC_HEAD, head, re.M) is not None


def _to_raw(rec, path: str, offset: int, max_bytes: int, arc: bool = False) -> RawRecord:
    rt = rec.rec_type or "unknown"
    url = _header(rec, "WARC-Target-URI")
    if url and url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    status = None
    ctype = None
    lang = None
    if rec.http_headers is not None:
        try:
            status = int((rec.http_headers.get_statuscode() or "0")[:3])
        except ValueError:
            status = None
        ctype = rec.http_headers.get_header("Content-Type")
        lang = rec.http_headers.get_header("Content-Language")
    if ctype is None:
        ctype = _header(rec, "Content-Type")
    payload, plen, err = None, 0, None
    try:
        stream = rec.content_stream() if rec.http_headers is not None else rec.raw_stream
        payload = stream.read(max_bytes + 1) if max_bytes else stream.read()
        plen = len(payload)
        if max_bytes and plen > max_bytes:
            while True:  # count the rest without keeping it
                b = stream.read(1 << 20)
                if not b:
                    break
                plen += len(b)
    except Exception as e:  # bad chunking, bad gzip/brotli body
        err = f"{type(e).__name__}: {str(e)[:200]}"
    # warcio invents a random WARC-Record-ID for ARC records: not a stable key, so drop it
    rid = None if arc else _header(rec, "WARC-Record-ID")
    return RawRecord(file=path, offset=offset, rec_type=rt, url=url,
                     date=_header(rec, "WARC-Date"), record_id=rid,
                     content_type=ctype, http_status=status, content_language=lang,
                     payload=payload, payload_len=plen, error=err)


def iter_records(path: str, start: int = 0, end: int | None = None, layout: str | None = None,
                 max_bytes: int = 0, log=None):
    """Yield a RawRecord for every record whose start lies in [start, end), and a Problem for every
    unreadable region. `max_bytes` caps how much of a payload is kept in memory (0 = no cap)."""
    from warcio.archiveiterator import ArchiveIterator

    layout = layout or file_layout(path)
    arc = is_arc(path)
    # through the filesystem layer: a local file, or ranged reads of an object that stop at `end`
    with fs.open_input(path, start if layout != "gzip" else 0,
                       end if layout != "gzip" else None) as raw:
        if layout == "gzip":
            fh = gzip.GzipFile(fileobj=raw, mode="rb")
            members = None
            end = None
        else:
            fh = _RangeFile(raw, start, end)
            members = None  # member starts, indexed only if a member turns out corrupt
        pos = start if layout != "gzip" else 0
        fh.seek(pos)
        last_start = pos - 1   # start of the last record read (resync searches after it)
        stderr = sys.stderr
        while True:
            it = ArchiveIterator(_RangeFile(fh, pos, end) if layout == "gzip" else fh,
                                 arc2warc=True, ensure_http_headers=False)
            failed_at = None
            err = None
            try:
                sys.stderr = io.StringIO()  # warcio prints warnings about lengths; we report them
                for rec in it:
                    offset = it.offset
                    last_start = max(last_start, offset)
                    sys.stderr = stderr
                    yield _to_raw(rec, path, offset, max_bytes, arc)
                    sys.stderr = io.StringIO()
            except Exception as e:  # ArchiveLoadFailed, zlib/gzip errors, EOF inside a record, ...
                failed_at = it.offset
                err = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            finally:
                sys.stderr = stderr
            if failed_at is None:
                return
            if layout == "members" and members is None:
                members = index_members_in_range(path, start, end) or []
            # search after the last good record start, not after the failure point: a wrong
            # length makes warcio overshoot the next header, which is then found again
            floor = max(last_start, pos)
            nxt = _next_record_start(fh, floor, end, members)
            if nxt is not None and nxt <= pos:
                nxt = _next_record_start(fh, pos, end, members)
            yield Problem(path, failed_at, "corrupt.unreadable",
                          err + (f"; resumed at {nxt}" if nxt is not None else "; rest of range unreadable"))
            if nxt is None or nxt <= pos:
                return
            if log:
                log(f"{path}: unreadable at {failed_at}, resuming at {nxt}")
            pos = nxt
            fh.seek(pos)


def index_members_in_range(path: str, start: int, end: int | None) -> list[int] | None:
    """Member starts inside [start, end) (used to resume after a corrupt member)."""
    starts = index_members(path)
    if starts is None:
        return None
    return [s for s in starts if s >= start and (end is None or s < end)]
