"""Writer and reader of the token shard format (docs/token-shards.md).

Shards are little-endian uint32 tokens, rows of exactly `seq_len` back to back; `index.npz` gives
each row's source, shard, offset and document starts; `manifest.json` describes the stream. Files
are written into the target folder by the caller (build.py writes into a temporary folder and
renames it into place). `index.npz` is written with fixed zip timestamps so that identical streams
give identical bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 22), b""):
            h.update(b)
    return h.hexdigest()


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
    return file_sha256(path)


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
    (The Spark build writes its shards in parallel tasks and the index with
    `write_index_from_parts`; this sequential writer serves small streams and tests.)"""

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
            sh["sha256"] = file_sha256(self.dir / sh["file"])
        return self.shards


def write_json(path: str | Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


class ShardReader:
    """Memory-mapped reader: `reader.row(i)` -> (uint32 tokens, document starts)."""

    def __init__(self, d: str | Path):
        self.dir = Path(d)
        self.manifest = json.loads((self.dir / "manifest.json").read_text())
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{d}: unsupported format_version {self.manifest.get('format_version')}")
        self.seq_len = int(self.manifest["seq_len"])
        with np.load(self.dir / "index.npz") as z:
            self.index = {k: z[k] for k in z.files}
        self._maps = [np.memmap(self.dir / s["file"], dtype="<u4", mode="r")
                      if s["rows"] else np.zeros(0, "<u4") for s in self.manifest["shards"]]

    def __len__(self) -> int:
        return len(self.index["source"])

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sh, off = int(self.index["shard"][i]), int(self.index["offset"][i])
        toks = self._maps[sh][off:off + self.seq_len]
        p = self.index["doc_ptr"]
        return toks, self.index["doc_starts"][p[i]:p[i + 1]]

    def documents(self, i: int) -> list[np.ndarray]:
        """The row split at its document boundaries."""
        toks, starts = self.row(i)
        ends = list(starts[1:]) + [self.seq_len]
        return [toks[a:b] for a, b in zip(starts, ends)]

    def source_name(self, i: int) -> str:
        return self.manifest["sources"][int(self.index["source"][i])]["name"]
