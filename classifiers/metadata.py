"""The `metadata.json` saved beside every trained model, and the checks made when loading it.

A model directory holds `model.bin` (fastText) and `metadata.json`:

```
{"format": 1, "kind": "quality", "labels": ["hq", "lq"], "positive_label": "hq",
 "model_file": "model.bin", "model_sha256": "...", "model_bytes": 1234,
 "training_data": {"fingerprint": "<sha256 over the sorted (label, text-hash) pairs>",
                   "n_train": ..., "n_heldout": ..., "per_label": {...}, "sources": [...]},
 "hyperparameters": {...}, "preprocessing": {...}, "metrics": {...}, "threshold": 0.5,
 "code_version": "git:<commit>" | "package:<version>", "created_at": "..."}
```

Loading refuses a directory whose metadata is missing, unreadable, of another kind, lacks a
required field, or whose model file does not match the recorded hash and size.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Iterable

from core.fs import sha256_file

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.bin"
FORMAT_VERSION = 1
REQUIRED = ("format", "kind", "labels", "model_file", "model_sha256", "model_bytes",
            "training_data", "hyperparameters", "preprocessing", "metrics", "code_version")


class ModelMetadataError(RuntimeError):
    """A model directory whose metadata is missing or does not match the model."""


def data_fingerprint(examples: Iterable[tuple[str, str]]) -> str:
    """Order-independent fingerprint of labelled training text: sha256 of sorted (label, sha1(text))."""
    items = sorted(f"{lab}\t{hashlib.sha1(text.encode('utf-8', 'replace')).hexdigest()}"
                   for lab, text in examples)
    h = hashlib.sha256()
    for it in items:
        h.update(it.encode())
        h.update(b"\n")
    return h.hexdigest()


def code_version() -> str:
    """`git:<commit>[+dirty]` when run from a git checkout, else `package:<version>`."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "classifiers"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"git:{commit}" + ("+dirty" if dirty else "")
    except Exception:
        pass
    try:
        from importlib.metadata import version
        return f"package:{version('curation')}"
    except Exception:
        return "unknown"


def write_metadata(model_dir: str | Path, meta: dict) -> dict:
    """Complete `meta` with the model file's hash/size, format, code version and time; write it."""
    d = Path(model_dir)
    mf = d / meta.get("model_file", MODEL_FILE)
    if not mf.is_file():
        raise ModelMetadataError(f"model file {mf} does not exist")
    full = {"format": FORMAT_VERSION, "model_file": mf.name, **meta,
            "model_sha256": sha256_file(mf), "model_bytes": mf.stat().st_size,
            "code_version": meta.get("code_version") or code_version(),
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (d / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=True, default=float) + "\n")
    return full


def read_metadata(model_dir: str | Path, kind: str | None = None, verify_hash: bool = True) -> dict:
    """The verified metadata of a model directory; ModelMetadataError when anything is off."""
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelMetadataError(f"model directory {d} does not exist")
    mp = d / METADATA_FILE
    if not mp.is_file():
        raise ModelMetadataError(f"{mp} is missing: a model is only used with the metadata written "
                                 "when it was trained (python -m classifiers.train ...)")
    try:
        meta = json.loads(mp.read_text())
    except (OSError, ValueError) as e:
        raise ModelMetadataError(f"{mp} is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise ModelMetadataError(f"{mp} must hold a JSON object")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ModelMetadataError(f"{mp} lacks required fields {missing}")
    if meta["format"] != FORMAT_VERSION:
        raise ModelMetadataError(f"{mp}: unsupported metadata format {meta['format']!r}")
    if kind is not None and meta["kind"] != kind:
        raise ModelMetadataError(f"{d} holds a {meta['kind']!r} model, expected {kind!r}")
    if not isinstance(meta["labels"], list) or len(meta["labels"]) < 2:
        raise ModelMetadataError(f"{mp}: 'labels' must list at least two labels")
    if meta.get("positive_label") is not None and meta["positive_label"] not in meta["labels"]:
        raise ModelMetadataError(f"{mp}: positive_label {meta['positive_label']!r} not in labels")
    mf = d / meta["model_file"]
    if not mf.is_file():
        raise ModelMetadataError(f"model file {mf} named in {mp} is missing")
    if mf.stat().st_size != meta["model_bytes"]:
        raise ModelMetadataError(f"{mf} has {mf.stat().st_size} bytes, metadata records "
                                 f"{meta['model_bytes']}: the model and its metadata do not match")
    if verify_hash and sha256_file(mf) != meta["model_sha256"]:
        raise ModelMetadataError(f"{mf} sha256 differs from the one in {mp}: the model and its "
                                 "metadata do not match (retrain, or restore the right file)")
    return meta
