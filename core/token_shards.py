"""The token-shard format (docs/token-shards.md), defined once: the writer the mixer uses and the
validating reader the trainer uses. numpy, the standard library and core/fs's hashing only (no
Spark, no torch).

Shards are little-endian uint32 tokens, rows of exactly `seq_len` back to back; `index.npz` gives
each row's source, shard, offset and document starts; `manifest.json` describes the stream. Files
are written into the target folder by the caller (the mixer writes into a temporary folder and
renames it into place). `index.npz` is written with fixed zip timestamps so that identical streams
give identical bytes.

Writing: `shard_name`, `write_index` / `write_index_from_parts` (the index of a stream whose
shards were written by separate tasks), `ShardWriter` (sequential, small streams), `write_json`.
Reading: `TokenShards(path)` checks the manifest, the shard sizes and the index before anything is
read and raises `ShardFormatError` naming what is wrong.
"""
from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from core.fs import sha256_file

FORMAT_VERSION = 1
MANIFEST_KEYS = ("format_version", "seq_len", "n_rows", "shards", "tokenizer", "sources",
                 "fingerprint")


class ShardFormatError(ValueError):
    """The directory does not hold token shards in the documented format."""


# ------------------------------------------------------------------------------------ writing

def shard_name(i: int) -> str:
    return f"shard_{i:05d}.bin"


def save_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez, but byte-identical for identical arrays (fixed names, order, timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in arrays:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def write_index(out_dir: str | Path, source, shard, offset, doc_ptr, doc_starts) -> str:
    """index.npz of a stream (see docs/token-shards.md), byte-identical for identical arrays.
    Returns its sha256 (`index_sha256` in the manifest)."""
    path = Path(out_dir) / "index.npz"
    save_npz_deterministic(path, {
        "source": np.asarray(source, dtype=np.int32),
        "shard": np.asarray(shard, dtype=np.int32),
        "offset": np.asarray(offset, dtype=np.int64),
        "doc_ptr": np.asarray(doc_ptr, dtype=np.int64),
        "doc_starts": np.asarray(doc_starts, dtype=np.int32),
    })
    return sha256_file(path)


def write_index_from_parts(out_dir: str | Path, order, parts, seq_len: int,
                           shard_rows: int) -> tuple[list[dict], str]:
    """The index of a stream whose shards were written by separate tasks: `order` is the
    source of every row, `parts[k]` the k-th shard's result (`n_rows`, `sha256` of its bytes, and
    `per_row` / `starts`: int32 bytes of the document starts per row and their positions).
    Returns the shard list (file, rows, sha256) and the index's sha256."""
    n = len(order)
    rows = np.arange(n, dtype=np.int64)
    per_row = [np.frombuffer(p["per_row"], "<i4") for p in parts]
    starts = [np.frombuffer(p["starts"], "<i4") for p in parts]
    counts = np.concatenate(per_row) if per_row else np.zeros(0, np.int32)
    if len(counts) != n or sum(int(p["n_rows"]) for p in parts) != n:
        raise RuntimeError(f"shards hold {len(counts)} rows, the stream has {n}")
    doc_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=doc_ptr[1:])
    ih = write_index(out_dir, order, rows // shard_rows, (rows % shard_rows) * seq_len, doc_ptr,
                     np.concatenate(starts) if starts else np.zeros(0, np.int32))
    return [{"file": shard_name(k), "rows": int(p["n_rows"]), "sha256": p["sha256"]}
            for k, p in enumerate(parts)], ih


class ShardWriter:
    """Append rows in stream order; `close()` writes index.npz and returns the shard list.
    (The mixer writes its shards in parallel tasks and the index with `write_index_from_parts`;
    this sequential writer serves small streams.)"""

    def __init__(self, out_dir: str | Path, seq_len: int, shard_rows: int):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.seq_len, self.shard_rows = seq_len, shard_rows
        self.row_bytes = seq_len * 4
        self._f = None
        self._shard = -1
        self._in_shard = 0
        self.shards: list[dict] = []
        self.source: list[int] = []
        self.shard: list[int] = []
        self.offset: list[int] = []
        self.doc_ptr: list[int] = [0]
        self.doc_starts: list[int] = []

    def add(self, source: int, row: bytes, doc_starts: list[int]) -> None:
        if len(row) != self.row_bytes:
            raise ValueError(f"row has {len(row)} bytes, expected {self.row_bytes}")
        if not doc_starts or doc_starts[0] != 0:
            raise ValueError("a row's first document start must be 0")
        if self._f is None or self._in_shard == self.shard_rows:
            self._next_shard()
        self._f.write(row)
        self.source.append(source)
        self.shard.append(self._shard)
        self.offset.append(self._in_shard * self.seq_len)
        self.doc_starts.extend(doc_starts)
        self.doc_ptr.append(len(self.doc_starts))
        self._in_shard += 1
        self.shards[-1]["rows"] += 1

    def _next_shard(self) -> None:
        if self._f is not None:
            self._f.close()
        self._shard += 1
        self._in_shard = 0
        name = shard_name(self._shard)
        self._f = open(self.dir / name, "wb")
        self.shards.append({"file": name, "rows": 0})

    @property
    def n_rows(self) -> int:
        return len(self.source)

    def close(self) -> list[dict]:
        """Writes index.npz; returns the shard list (file, rows, sha256). The index's sha256 is
        then `self.index_sha256`."""
        if self._f is not None:
            self._f.close()
            self._f = None
        self.index_sha256 = write_index(self.dir, self.source, self.shard, self.offset,
                                        self.doc_ptr, self.doc_starts)
        for sh in self.shards:
            sh["sha256"] = sha256_file(self.dir / sh["file"])
        return self.shards


def write_json(path: str | Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------ reading

class TokenShards:
    """One mix directory (a stage's stream, or its `heldout/`), memory-mapped and checked: the
    manifest's keys and version, every shard's size, and the index (sha256, lengths, ranges, CSR
    pointer, first document start of every row) before anything is read; each shard against its
    sha256 the first time a row of it is read, so a flipped bit is an error naming the file,
    never other tokens."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = _read_manifest(self.path)
        m = self.manifest
        self.seq_len = int(m["seq_len"])
        self.n_rows = int(m["n_rows"])
        self.fingerprint = str(m["fingerprint"])
        self.vocab_size = int(m["tokenizer"].get("vocab_size", 0))
        self.eot_id = m["tokenizer"].get("eot_id")
        self.sources = [s.get("category") or s.get("name") for s in m["sources"]]
        self.source_names = [s.get("name") or s.get("category") for s in m["sources"]]
        self.shards = self._map_shards()
        self._read_index()

    def _map_shards(self) -> list[np.ndarray]:
        maps = []
        for sh in self.manifest["shards"]:
            f = self.path / sh["file"]
            if not f.is_file():
                raise ShardFormatError(f"{self.path}: shard file {sh['file']} is missing")
            want = int(sh["rows"]) * self.seq_len * 4
            if f.stat().st_size != want:
                raise ShardFormatError(f"{f}: {f.stat().st_size} bytes, expected {want} "
                                       f"({sh['rows']} rows x {self.seq_len} tokens x 4 bytes)")
            maps.append(np.memmap(f, dtype="<u4", mode="r") if want else np.zeros(0, "<u4"))
        if sum(int(s["rows"]) for s in self.manifest["shards"]) != self.n_rows:
            raise ShardFormatError(f"{self.path / 'manifest.json'}: shard rows do not add up to "
                                   f"n_rows={self.n_rows}")
        return maps

    def _read_index(self) -> None:
        ipath = self.path / "index.npz"
        if not ipath.is_file():
            raise ShardFormatError(f"{self.path}: index.npz is missing")
        m = self.manifest
        self._want = [sh.get("sha256") for sh in m["shards"]]
        self._verified = [h is None for h in self._want]
        if "index_sha256" in m:
            if sha256_file(ipath) != m["index_sha256"]:
                raise ShardFormatError(f"{ipath}: sha256 differs from the manifest's (damaged mix)")
        elif m["shards"]:
            print(f"[token_shards] WARNING: {self.path / 'manifest.json'} lists no checksums "
                  f"(written before they existed): its files are read unverified",
                  file=sys.stderr, flush=True)
        with np.load(ipath, allow_pickle=False) as z:
            try:
                self.source = z["source"].astype(np.int64)
                self.shard = z["shard"].astype(np.int64)
                self.offset = z["offset"].astype(np.int64)
                self.doc_ptr = z["doc_ptr"].astype(np.int64)
                self.doc_starts = z["doc_starts"].astype(np.int64)
            except KeyError as e:
                raise ShardFormatError(f"{ipath}: missing array {e}") from e
        n = self.n_rows
        if not (len(self.source) == len(self.shard) == len(self.offset) == n
                and len(self.doc_ptr) == n + 1):
            raise ShardFormatError(f"{ipath}: array lengths do not match n_rows={n}")
        if n and (self.shard.min() < 0 or self.shard.max() >= len(self.shards)):
            raise ShardFormatError(f"{ipath}: shard index out of range")
        if n and (self.source.min() < 0 or self.source.max() >= len(self.sources)):
            raise ShardFormatError(f"{ipath}: source index out of range")
        sizes = np.array([len(s) for s in self.shards], dtype=np.int64)
        if n and ((self.offset < 0).any() or (self.offset + self.seq_len > sizes[self.shard]).any()):
            raise ShardFormatError(f"{ipath}: a row's offset points outside its shard")
        if (self.doc_ptr[0] != 0 or self.doc_ptr[-1] != len(self.doc_starts)
                or (np.diff(self.doc_ptr) < 1).any()):
            raise ShardFormatError(f"{ipath}: doc_ptr is not a CSR pointer with >= 1 start per row")
        if n and (self.doc_starts[self.doc_ptr[:-1]] != 0).any():
            raise ShardFormatError(f"{ipath}: the first doc_starts entry of every row must be 0")

    def __len__(self) -> int:
        return self.n_rows

    def verify_shard(self, s: int) -> None:
        """Check shard `s` against the manifest's sha256 (once per process)."""
        if self._verified[s]:
            return
        f = self.path / self.manifest["shards"][s]["file"]
        if sha256_file(f) != self._want[s]:
            raise ShardFormatError(f"{f}: sha256 differs from the manifest's (damaged mix)")
        self._verified[s] = True

    def row(self, i: int) -> np.ndarray:
        """Tokens of stream row `i` (an int64 copy)."""
        s, o = int(self.shard[i]), int(self.offset[i])
        if not self._verified[s]:
            self.verify_shard(s)
        return np.asarray(self.shards[s][o:o + self.seq_len], dtype=np.int64)

    def row_doc_starts(self, i: int) -> np.ndarray:
        return self.doc_starts[self.doc_ptr[i]:self.doc_ptr[i + 1]]

    def row_doc_ids(self, i: int) -> np.ndarray:
        """The document index (0, 1, ...) of every position of row `i`."""
        ids = np.zeros(self.seq_len, dtype=np.int32)
        for s in self.row_doc_starts(i)[1:]:
            if 0 < s < self.seq_len:
                ids[s:] += 1
        return ids

    def documents(self, i: int) -> list[np.ndarray]:
        """Row `i` split at its document boundaries."""
        toks, starts = self.row(i), self.row_doc_starts(i)
        ends = list(starts[1:]) + [self.seq_len]
        return [toks[a:b] for a, b in zip(starts, ends)]

    def rows_of_source(self, source: int) -> np.ndarray:
        return np.nonzero(self.source == source)[0]

    def source_name(self, i: int) -> str:
        return self.source_names[int(self.source[i])]


def _read_manifest(path: Path) -> dict:
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise ShardFormatError(f"{path}: no manifest.json (is this a mix output directory?)")
    try:
        m = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise ShardFormatError(f"{mpath}: invalid JSON ({e})") from e
    for key in MANIFEST_KEYS:
        if key not in m:
            raise ShardFormatError(f"{mpath}: missing key {key!r}")
    if m["format_version"] != FORMAT_VERSION:
        raise ShardFormatError(f"{mpath}: format_version {m['format_version']} is not {FORMAT_VERSION}")
    if m.get("dtype", "uint32") != "uint32":
        raise ShardFormatError(f"{mpath}: dtype {m.get('dtype')!r} is not uint32")
    return m
