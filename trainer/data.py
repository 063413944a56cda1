"""Memory-mapped reader of the mixer's token shards (docs/token-shards.md).

No Spark, no pyarrow: ``manifest.json`` (JSON), ``index.npz`` (numpy) and ``shard_*.bin`` (raw
little-endian uint32, read through ``np.memmap``). The index and every shard the run reads are
checked against the manifest's sha256 (a shard on its first read). The trainer addresses the stream by *row*: a
step consumes a whole number of rows starting at the current position, every data-parallel rank
takes its own contiguous slice of those rows, and a row may be split into shorter pieces when the
sequence-length ramp asks for a shorter context. The position (next row to read) is the only
state, so a resumed run reads exactly the rows an uninterrupted run would have read.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FORMAT_VERSION = 1


class ShardFormatError(ValueError):
    """The directory does not hold token shards in the documented format."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 22), b""):
            h.update(b)
    return h.hexdigest()


@dataclass
class Batch:
    x: torch.Tensor        # (B, T-1) int64 inputs
    y: torch.Tensor        # (B, T-1) int64 targets
    doc_ids: torch.Tensor  # (B, T-1) int32 document index of every input position within its row piece
    rows: np.ndarray       # stream row index of every sequence (for debugging / tests)


def cache_root() -> Path:
    """Where mixes read from a URI are cached: $CURATION_CACHE, else ~/.cache/curation."""
    return Path(os.environ.get("CURATION_CACHE") or Path.home() / ".cache" / "curation")


def localize_mix(path: str | Path, cache_dir: str | Path | None = None, log=None) -> Path:
    """A local folder holding the mix at `path`: the folder itself when local, else a cache copy
    of a mix on any URI core/fs reads (s3://, gs://, abfss://, hdfs://, http(s)://, dbfs:/ ...).

    The copy is verified against the manifest: every shard's sha256 (and the index's) when the
    manifest records them, else their sizes. A cached file that fails is fetched again; a fetched
    file that fails is an error naming it. The manifest is written into the cache last, so a
    killed copy never looks complete. `heldout/` comes along when the mix has one."""
    from core import fs
    if fs.is_local(str(path)):
        return Path(fs.normalize(str(path)))
    uri = str(path).rstrip("/")
    root = Path(cache_dir) if cache_dir else cache_root() / "mix"
    dst = root / hashlib.sha256(uri.encode()).hexdigest()[:16]
    _localize_one(fs, uri, dst, log)
    if fs.exists(fs.join(uri, "heldout", "manifest.json")):
        _localize_one(fs, fs.join(uri, "heldout"), dst / "heldout", log)
    return dst


def _localize_one(fs, uri: str, dst: Path, log) -> None:
    raw = fs.read_bytes(fs.join(uri, "manifest.json"))
    try:
        m = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ShardFormatError(f"{uri}/manifest.json: invalid JSON ({e})") from e
    seq_len = int(m.get("seq_len", 0))
    want = [(sh["file"], sh.get("sha256"), int(sh["rows"]) * seq_len * 4)
            for sh in m.get("shards", [])]
    want.append(("index.npz", m.get("index_sha256"), None))
    dst.mkdir(parents=True, exist_ok=True)
    mpath = dst / "manifest.json"
    if mpath.is_file() and mpath.read_bytes() != raw:
        mpath.unlink()       # another mix now lives at this URI: its files are checked anew
    for name, digest, size in want:
        local = dst / name
        if local.is_file() and _matches(local, digest, size):
            continue
        if log:
            log(f"fetching {uri}/{name}")
        fs.get(fs.join(uri, name), str(local))
        if not _matches(local, digest, size):
            local.unlink()
            raise ShardFormatError(f"{uri}/{name}: the fetched copy does not match the manifest "
                                   f"({'sha256 ' + digest if digest else f'{size} bytes'})")
    tmp = dst / f"manifest.json.{os.getpid()}.part"
    tmp.write_bytes(raw)
    os.replace(tmp, mpath)


def _matches(p: Path, digest: str | None, size: int | None) -> bool:
    if digest:
        from core.fs import sha256_file
        return sha256_file(str(p)) == digest
    return size is None or p.stat().st_size == size


class TokenShards:
    """One mix directory (a stage's stream, or its ``heldout/``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.is_file():
            raise ShardFormatError(f"{self.path}: no manifest.json (is this a mix output directory?)")
        try:
            self.manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as e:
            raise ShardFormatError(f"{mpath}: invalid JSON ({e})") from e
        m = self.manifest
        for key in ("format_version", "seq_len", "n_rows", "shards", "tokenizer", "sources", "fingerprint"):
            if key not in m:
                raise ShardFormatError(f"{mpath}: missing key {key!r}")
        if m["format_version"] != FORMAT_VERSION:
            raise ShardFormatError(f"{mpath}: format_version {m['format_version']} is not {FORMAT_VERSION}")
        if m.get("dtype", "uint32") != "uint32":
            raise ShardFormatError(f"{mpath}: dtype {m.get('dtype')!r} is not uint32")
        self.seq_len = int(m["seq_len"])
        self.n_rows = int(m["n_rows"])
        self.fingerprint = str(m["fingerprint"])
        self.vocab_size = int(m["tokenizer"].get("vocab_size", 0))
        self.eot_id = m["tokenizer"].get("eot_id")
        self.sources = [s.get("category") or s.get("name") for s in m["sources"]]
        self.source_names = [s.get("name") or s.get("category") for s in m["sources"]]

        self.shards = []
        for k, sh in enumerate(m["shards"]):
            f = self.path / sh["file"]
            if not f.is_file():
                raise ShardFormatError(f"{self.path}: shard file {sh['file']} is missing")
            want = int(sh["rows"]) * self.seq_len * 4
            if f.stat().st_size != want:
                raise ShardFormatError(f"{f}: {f.stat().st_size} bytes, expected {want} "
                                       f"({sh['rows']} rows x {self.seq_len} tokens x 4 bytes)")
            self.shards.append(np.memmap(f, dtype="<u4", mode="r") if want else np.zeros(0, "<u4"))
        if sum(int(s["rows"]) for s in m["shards"]) != self.n_rows:
            raise ShardFormatError(f"{mpath}: shard rows do not add up to n_rows={self.n_rows}")

        ipath = self.path / "index.npz"
        if not ipath.is_file():
            raise ShardFormatError(f"{self.path}: index.npz is missing")
        # checksums (mixes written since they existed): the index now, each shard the first time
        # a row of it is read, so a flipped bit is an error naming the file, never other tokens
        self._want = [sh.get("sha256") for sh in m["shards"]]
        self._verified = [h is None for h in self._want]
        if "index_sha256" in m:
            if _sha256(ipath) != m["index_sha256"]:
                raise ShardFormatError(f"{ipath}: sha256 differs from the manifest's (damaged mix)")
        elif m["shards"]:
            print(f"[trainer] WARNING: {mpath} lists no checksums (written before they existed): "
                  f"its files are read unverified", file=sys.stderr, flush=True)
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
        if not (len(self.source) == len(self.shard) == len(self.offset) == n and len(self.doc_ptr) == n + 1):
            raise ShardFormatError(f"{ipath}: array lengths do not match n_rows={n}")
        if n and (self.shard.min() < 0 or self.shard.max() >= len(self.shards)):
            raise ShardFormatError(f"{ipath}: shard index out of range")
        if n and (self.source.min() < 0 or self.source.max() >= len(self.sources)):
            raise ShardFormatError(f"{ipath}: source index out of range")
        sizes = np.array([len(s) for s in self.shards], dtype=np.int64)
        if n and ((self.offset < 0).any() or (self.offset + self.seq_len > sizes[self.shard]).any()):
            raise ShardFormatError(f"{ipath}: a row's offset points outside its shard")
        if self.doc_ptr[0] != 0 or self.doc_ptr[-1] != len(self.doc_starts) or (np.diff(self.doc_ptr) < 1).any():
            raise ShardFormatError(f"{ipath}: doc_ptr is not a CSR pointer with >= 1 start per row")
        if n and (self.doc_starts[self.doc_ptr[:-1]] != 0).any():
            raise ShardFormatError(f"{ipath}: the first doc_starts entry of every row must be 0")

    def __len__(self) -> int:
        return self.n_rows

    def verify_shard(self, s: int) -> None:
        """Check shard ``s`` against the manifest's sha256 (once per process)."""
        if self._verified[s]:
            return
        f = self.path / self.manifest["shards"][s]["file"]
        if _sha256(f) != self._want[s]:
            raise ShardFormatError(f"{f}: sha256 differs from the manifest's (damaged mix)")
        self._verified[s] = True

    def row(self, i: int) -> np.ndarray:
        """Tokens of stream row ``i`` (an int64 copy)."""
        s, o = int(self.shard[i]), int(self.offset[i])
        if not self._verified[s]:
            self.verify_shard(s)
        return np.asarray(self.shards[s][o:o + self.seq_len], dtype=np.int64)

    def row_doc_starts(self, i: int) -> np.ndarray:
        return self.doc_starts[self.doc_ptr[i]:self.doc_ptr[i + 1]]

    def row_doc_ids(self, i: int) -> np.ndarray:
        ids = np.zeros(self.seq_len, dtype=np.int32)
        starts = self.row_doc_starts(i)
        for s in starts[1:]:
            if 0 < s < self.seq_len:
                ids[s:] += 1
        return ids

    def rows_of_source(self, source: int) -> np.ndarray:
        return np.nonzero(self.source == source)[0]

    def batch(self, rows, piece_len: int | None = None) -> Batch:
        """Sequences from ``rows`` (stream indices, taken modulo n_rows, i.e. epochs wrap).

        Each row of ``seq_len`` tokens is split into ``seq_len // piece_len`` pieces; a piece of
        ``piece_len`` tokens gives ``x = piece[:-1]``, ``y = piece[1:]`` (the whole row when
        ``piece_len`` is None or equal to ``seq_len``, as the format says).
        """
        L = piece_len or self.seq_len
        if self.seq_len % L:
            raise ValueError(f"sequence length {L} does not divide the rows' length {self.seq_len}")
        if self.n_rows == 0:
            raise ShardFormatError(f"{self.path}: the stream has no rows")
        rows = np.asarray(rows, dtype=np.int64) % self.n_rows
        k = self.seq_len // L
        toks = np.stack([self.row(int(r)) for r in rows]).reshape(len(rows) * k, L)
        ids = np.stack([self.row_doc_ids(int(r)) for r in rows]).reshape(len(rows) * k, L)
        if self.vocab_size and toks.size and toks.max() >= self.vocab_size:
            raise ShardFormatError(f"{self.path}: token id {int(toks.max())} >= vocab_size {self.vocab_size}")
        x = torch.from_numpy(toks[:, :-1].copy())
        y = torch.from_numpy(toks[:, 1:].copy())
        d = torch.from_numpy(ids[:, :-1].copy())
        return Batch(x=x, y=y, doc_ids=d, rows=np.repeat(rows, k))


def rank_rows(position: int, rows_per_step: int, rank: int, world_size: int) -> np.ndarray:
    """The stream rows a data-parallel rank trains on in the step that starts at ``position``.

    The global batch is ``[position, position + rows_per_step)``; rank r takes the r-th contiguous
    slice, so the union over ranks is the global batch in stream order whatever the world size.
    """
    if rows_per_step % world_size:
        raise ValueError(f"{rows_per_step} rows per step do not split over {world_size} ranks")
    per = rows_per_step // world_size
    start = position + rank * per
    return np.arange(start, start + per, dtype=np.int64)
