"""Batches from the mixer's token shards (docs/token-shards.md; the format and its validating reader
are core/token_shards.py, shared with the mixer's writer), and a local copy of a mix on a URI.

No Spark, no pyarrow, no mixer: ``manifest.json`` (JSON), ``index.npz`` (numpy) and ``shard_*.bin``
(raw little-endian uint32, read through ``np.memmap``). The index and every shard the run reads are
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.token_shards import ShardFormatError
from core.token_shards import TokenShards as _CheckedShards

__all__ = ["Batch", "ShardFormatError", "TokenShards", "localize_mix", "rank_rows"]


@dataclass
class Batch:
    x: torch.Tensor        # (B, T-1) int64 inputs
    y: torch.Tensor        # (B, T-1) int64 targets
    doc_ids: torch.Tensor  # (B, T-1) int32 document index of every input position within its row piece
    rows: np.ndarray       # stream row index of every sequence (for debugging / tests)


def cache_root() -> Path:
    """Where mixes read from a URI are cached: $CURATION_CACHE, else ~/.cache/curation."""
    return Path(os.environ.get("CURATION_CACHE") or Path.home() / ".cache" / "curation")


def localize_mix(path: str | Path, cache_dir: str | Path | None = None, log=None,
                 fetch: bool = True) -> Path:
    """A local folder holding the mix at `path`: the folder itself when local, else a cache copy
    of a mix on any URI core/fs reads (s3://, gs://, abfss://, hdfs://, http(s)://, dbfs:/ ...).

    The copy is verified against the manifest: every shard's sha256 (and the index's) when the
    manifest records them, else their sizes. A cached file that fails is fetched again; a fetched
    file that fails is an error naming it. The manifest is written into the cache last, so a
    killed copy never looks complete. `heldout/` comes along when the mix has one.
    `fetch=False` only names the cache folder (for the other processes of a machine, once one
    of them has fetched the copy)."""
    from core import fs
    if fs.is_local(str(path)):
        return Path(fs.normalize(str(path)))
    uri = str(path).rstrip("/")
    root = Path(cache_dir) if cache_dir else cache_root() / "mix"
    dst = root / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if not fetch:
        return dst
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


class TokenShards(_CheckedShards):
    """One mix directory (a stage's stream, or its ``heldout/``): the format's validating reader
    (core/token_shards.py: manifest, sizes, index and checksums) plus batches as torch tensors."""

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
