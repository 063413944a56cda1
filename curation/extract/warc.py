"""Reading WARC (1.0, 1.1, 0.18), ARC and WET files: gzipped per record, gzipped whole, or plain.

The reader is warcio (it reads ARC and WARC 0.18, which FastWARC does not; see
`benchmarks/warc_readers.py` for the robustness and speed comparison), wrapped in three things:

1. **Layout and splits** (`plan_file`): planned from the file's size and name alone (no byte is
   read): a gzipped file larger than `split_bytes` is cut into byte ranges of that size, each one
   Spark task that resynchronises to the first gzip member at or after its start (`next_member`)
   and reads the records whose member starts before its end. Anything else is one task; a file
   gzipped whole is read by the range at 0 alone (offsets are then positions in the decompressed
   stream).
2. **Recovery**: when warcio fails inside a file (truncated record, wrong length, bad chunking), the
   failure is reported as a `corrupt.unreadable` problem with its offset, and reading resumes at the
   next record start (the next gzip member, or the next `WARC/x.y` / ARC header line), so one bad
   record never loses the rest of the file.
3. **Accounting**: `iter_records` yields exactly one `RawRecord` per record it reads and one
   `Problem` (reason `corrupt.unreadable`, with `end`) per byte range it had to skip; a resync that
   skips no bytes (warcio overshooting a wrong `Content-Length` into the next header, as in
   ClueWeb09's WARC 0.18 files and ARC files with wrong header lengths) is no problem at all, only
   a `resyncs` count. The reader keeps its own tally (records, corrupt ranges and bytes, resyncs)
   in the `tally` dict a caller passes, which the job checks against the rows it wrote.
"""
from __future__ import annotations

import gzip
import io
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
    end: int | None = None        # corrupt byte range [offset, end); None: to the end of the range


def new_tally() -> dict:
    """The reader's own counts for one range: records read, corrupt ranges and bytes, resyncs."""
    return {"records": 0, "corrupt_ranges": 0, "corrupt_bytes": 0, "resyncs": 0}


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


def file_layout(path: str) -> str:
    with fs.open_input(path, 0, 2) as fh:
        magic = fh.read(2)
    return "gzip" if magic == GZIP_MAGIC else "plain"


def plan_file(path: str, split_bytes: int, size: int | None = None
              ) -> list[tuple[str, int, int | None, str]]:
    """Byte ranges (file, start, end, layout) that together cover `path`, from metadata only: the
    file's size (from the listing; asked of the filesystem only when not given) and its name. No
    byte of the file is read here. A gzipped file larger than `split_bytes` is cut into ranges of
    `split_bytes` (layout `split`): each reader resynchronises to the first gzip member at or after
    its start and reads the records whose member starts before its end (see `iter_records`), as
    splittable Hadoop readers do. Anything else is one range (layout `auto`: the reader tells a
    record-gzipped, a whole-gzipped and a plain file apart from their first bytes)."""
    if size is None:
        size = fs.size(path)
    if not split_bytes or size <= split_bytes or not path.lower().endswith(".gz"):
        return [(path, 0, None, "auto")]
    starts = list(range(0, size, int(split_bytes)))
    return [(path, s, (starts[i + 1] if i + 1 < len(starts) else None), "split")
            for i, s in enumerate(starts)]


def _valid_member_at(fh, at: int) -> bool:
    """Whether a gzip member that starts with a WARC/ARC record header begins at `at`."""
    fh.seek(at)
    head = fh.read(1 << 14)
    if not head.startswith(GZIP_MAGIC + b"\x08"):
        return False
    d = zlib.decompressobj(31)
    try:
        out = d.decompress(head, 256)
    except zlib.error:
        return False
    return bool(_RECORD_START.match(out.lstrip(b"\r\n")))


def next_member(fh, pos: int, end: int | None) -> int | None:
    """The first gzip member start at or after `pos` (and before `end`) whose content begins with
    a record header: found by scanning for the gzip magic and checking the candidate, with no
    decompression of anything else."""
    at = pos
    carry = b""
    while True:
        fh.seek(at)
        chunk = fh.read(1 << 20)
        if not chunk:
            return None
        data = carry + chunk
        base = at - len(carry)
        i = 0
        while True:
            j = data.find(GZIP_MAGIC + b"\x08", i)
            if j < 0:
                break
            cand = base + j
            if cand >= pos:
                if end is not None and cand >= end:
                    return None
                if _valid_member_at(fh, cand):
                    return cand
            i = j + 1
        carry = data[-2:]
        at += len(chunk)
        if end is not None and at - 2 >= end:
            return None


def _first_member_is_whole(fh, size: int | None, probe: int = 64 << 20) -> bool:
    """Whether the gzip member at 0 runs to the end of the file (a file gzipped whole): its end is
    found by decompressing it, up to `probe` compressed bytes (a record is far smaller)."""
    end, _ = _first_member_end(fh, 0, probe)
    if end is None:
        # no end within the probe: whole-file gzip; a corrupt first member is read as members
        fh.seek(0)
        try:
            zlib.decompressobj(31).decompress(fh.read(1 << 16))
        except zlib.error:
            return False
        return True
    return size is not None and end >= size


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


def _next_record_start(fh, pos: int, end: int | None) -> int | None:
    """The first record header line strictly after `pos` (and before `end`)."""
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


def read_payload(stream, max_bytes: int | None) -> tuple[bytes, int]:
    """A record's payload, kept up to `max_bytes + 1` bytes (all of it when `max_bytes` is 0 or
    None), and its length. Past the cap the rest is counted without being kept, up to a bound: a
    decompression bomb (a few KB of gzip that inflate to GBs) is not inflated to the end, and the
    length is then a floor."""
    payload = stream.read(max_bytes + 1) if max_bytes else stream.read()
    plen = len(payload)
    if max_bytes and plen > max_bytes:
        bound = max(4 * max_bytes, 64 << 20)
        while plen < bound:
            b = stream.read(1 << 20)
            if not b:
                break
            plen += len(b)
    return payload, plen


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
        payload, plen = read_payload(stream, max_bytes)
    except Exception as e:  # bad chunking, bad gzip/brotli body
        err = f"{type(e).__name__}: {str(e)[:200]}"
    # warcio invents a random WARC-Record-ID for ARC records: not a stable key, so drop it
    rid = None if arc else _header(rec, "WARC-Record-ID")
    return RawRecord(file=path, offset=offset, rec_type=rt, url=url,
                     date=_header(rec, "WARC-Date"), record_id=rid,
                     content_type=ctype, http_status=status, content_language=lang,
                     payload=payload, payload_len=plen, error=err)


def _resolve(raw, path: str, start: int, end: int | None, layout: str):
    """(kind, first record position) of a range: kind is `members` (one gzip member per record),
    `gzip` (gzipped whole: read by the range that starts at 0), `plain`, or None (no record
    starts in this range)."""
    if layout in ("members", "gzip", "plain"):
        return layout, start
    if start == 0:
        raw.seek(0)
        if raw.read(2) != GZIP_MAGIC:
            return "plain", 0
        size = None
        try:
            size = fs.size(path)
        except Exception:  # noqa: BLE001 - unknown size: decided by the probe alone
            pass
        return ("gzip" if _first_member_is_whole(raw, size) else "members"), 0
    at = next_member(raw, start, end)
    return ("members", at) if at is not None else (None, None)


def iter_records(path: str, start: int = 0, end: int | None = None, layout: str | None = None,
                 max_bytes: int = 0, log=None, tally: dict | None = None):
    """Yield a RawRecord for every record that starts in [start, end), and a Problem for every
    byte range that could not be read. `max_bytes` caps how much of a payload is kept in memory
    (0 = no cap). `tally` (a dict from `new_tally()`), when given, receives the reader's counts.

    Layout `auto` (one range per file) or `split` (a byte range of a gzipped file): a range that
    starts inside the file first resynchronises to the first gzip member at or after `start`;
    records are read on past `end` to the end of the last record that starts before it. A file
    gzipped whole is read by the range at 0 alone. `members`, `gzip`, `plain` force a layout."""
    from warcio.archiveiterator import ArchiveIterator

    if tally is None:
        tally = new_tally()
    for k, v in new_tally().items():
        tally.setdefault(k, v)
    layout = layout or "auto"
    arc = is_arc(path)
    # through the filesystem layer: a local file, or ranged reads of an object (read on past
    # `end`: the last record of a range ends after it)
    with fs.open_input(path, start if layout == "members" else 0, None) as raw:
        kind, pos = _resolve(raw, path, start, end, layout)
        if kind is None:
            return
        if kind == "gzip":
            raw.seek(0)
            fh = gzip.GzipFile(fileobj=raw, mode="rb")
            end = None
            pos = 0
        elif kind == "plain":
            fh = _RangeFile(raw, pos, end if layout == "plain" else None)
            end = end if layout == "plain" else None
        else:
            fh = _RangeFile(raw, pos, None)
        check = fs.open_input(path, 0, None) if kind == "members" and end is not None else None
        fh.seek(pos)
        last_start = pos - 1   # start of the last record read (resync searches after it)
        stderr = sys.stderr
        try:
            while True:
                it = ArchiveIterator(_RangeFile(fh, pos, None) if kind == "gzip" else fh,
                                     arc2warc=True, ensure_http_headers=False)
                failed_at = None
                err = None
                try:
                    sys.stderr = io.StringIO()  # warcio prints warnings about lengths; we report them
                    for rec in it:
                        offset = it.offset
                        if end is not None and offset >= end and \
                                (check is None or _is_member_start(check, offset)):
                            return           # this record belongs to the next range
                        last_start = max(last_start, offset)
                        sys.stderr = stderr
                        raw_rec = _to_raw(rec, path, offset, max_bytes, arc)
                        tally["records"] += 1
                        yield raw_rec
                        sys.stderr = io.StringIO()
                except Exception as e:  # ArchiveLoadFailed, zlib/gzip errors, EOF inside a record, ...
                    failed_at = it.offset
                    err = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
                finally:
                    sys.stderr = stderr
                if failed_at is None:
                    return
                if end is not None and failed_at >= end and kind == "members" and \
                        _is_member_start(check, failed_at):
                    return               # the failure is in the next range's first record
                # search after the last good record start, not after the failure point: a wrong
                # length makes warcio overshoot the next header, which is then found again
                floor = max(last_start, pos)
                nxt = _next_start(fh, floor, end, kind)
                if nxt is not None and nxt <= pos:
                    nxt = _next_start(fh, pos, end, kind)
                if nxt is not None and nxt > pos and nxt <= failed_at:
                    # warcio overshot a wrong length into the next record, which is found again:
                    # no byte is lost, so this is no corrupt range
                    tally["resyncs"] += 1
                else:
                    stop = nxt if nxt is not None and nxt > pos else end
                    tally["corrupt_ranges"] += 1
                    if stop is not None:
                        tally["corrupt_bytes"] += max(0, stop - failed_at)
                    yield Problem(path, failed_at, "corrupt.unreadable",
                                  f"bytes [{failed_at}, {'' if stop is None else stop}): " + err +
                                  (f"; resumed at {nxt}" if nxt is not None and nxt > pos
                                   else "; rest of range unreadable"), end=stop)
                if nxt is None or nxt <= pos:
                    return
                if log:
                    log(f"{path}: unreadable at {failed_at}, resuming at {nxt}")
                pos = nxt
                fh.seek(pos)
        finally:
            if check is not None:
                check.close()


def _is_member_start(fh, offset: int) -> bool:
    fh.seek(offset)
    return fh.read(2) == GZIP_MAGIC


def _next_start(fh, pos: int, end: int | None, kind: str) -> int | None:
    """The first record start strictly after `pos` and before `end`: the next valid gzip member
    (record-gzipped files) or the next record header line (plain, or inside a whole gzip)."""
    if kind == "members":
        try:
            return next_member(fh, pos + 1, end)
        except (OSError, EOFError):
            return None
    return _next_record_start(fh, pos, end)
