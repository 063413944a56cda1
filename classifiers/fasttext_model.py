"""fastText supervised classifiers: train, save with metadata, load (verified, cached), predict in batches.

Text is prepared the same way for training and prediction (`prepare`): the first `max_chars`
characters, lower-cased, split into word and punctuation tokens (fastText itself only splits on
whitespace, so `foo(x):` would otherwise be one token; separating `(`, `)`, `:`, `$`, `\\`, `=`
is what lets the domain model see code and LaTeX), joined by single spaces on one line.

A loaded model is cached per process, keyed by its directory and model-file hash, so a Spark
executor's Python worker loads each model once and then scores whole Arrow batches.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from classifiers.metadata import (MODEL_FILE, ModelMetadataError, data_fingerprint,
                                  read_metadata, write_metadata)

LABEL_PREFIX = "__label__"
DEFAULT_MAX_CHARS = 10_000
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

# Small, fast defaults: a few MB per model, training in seconds on one core.
DEFAULT_HYPERPARAMETERS = {
    "lr": 0.5, "epoch": 10, "wordNgrams": 2, "dim": 32, "minCount": 2, "bucket": 200_000,
    "loss": "softmax", "thread": 1,
}


def prepare(text: str | None, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """One line of lower-cased word and punctuation tokens, as the classifiers are trained on."""
    if not text:
        return ""
    return " ".join(_TOKEN.findall(text[:max_chars].lower()))


@dataclass
class FastTextModel:
    """A trained fastText classifier and its verified metadata."""
    model_dir: Path
    meta: dict
    model: object = field(repr=False)

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def threshold(self) -> float | None:
        return self.meta.get("threshold")

    @property
    def max_chars(self) -> int:
        return int(self.meta["preprocessing"].get("max_chars", DEFAULT_MAX_CHARS))

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        """Probabilities (n, len(labels)) in the order of `self.labels`; empty text -> uniform."""
        labels = self.labels
        col = {lab: j for j, lab in enumerate(labels)}
        out = np.full((len(texts), len(labels)), 1.0 / len(labels), dtype=np.float64)
        lines = [prepare(t, self.max_chars) for t in texts]
        idx = [i for i, t in enumerate(lines) if t]
        if not idx:
            return out
        pred_labels, pred_probs = self.model.predict([lines[i] for i in idx], k=len(labels))
        for i, labs, probs in zip(idx, pred_labels, pred_probs):
            row = np.zeros(len(labels))
            for lab, p in zip(labs, probs):
                j = col.get(lab[len(LABEL_PREFIX):])
                if j is not None:
                    row[j] = p
            s = row.sum()
            out[i] = np.clip(row / s if s > 0 else row, 0.0, 1.0)
        return out

    def predict(self, texts: Sequence[str | None]) -> list[tuple[str, float]]:
        """Top label and its probability for each text."""
        p = self.predict_proba(texts)
        labels = self.labels
        return [(labels[int(j)], float(row[j])) for row, j in zip(p, p.argmax(axis=1))]

    def positive_scores(self, texts: Sequence[str | None]) -> np.ndarray:
        """Probability of the positive label (binary models, e.g. quality)."""
        pos = self.meta.get("positive_label")
        if pos is None:
            raise ValueError(f"{self.model_dir} ({self.kind}) has no positive_label")
        return self.predict_proba(texts)[:, self.labels.index(pos)]


_CACHE: dict[tuple[str, str], FastTextModel] = {}
_LOCK = threading.Lock()


def load_model(model_dir: str | os.PathLike, kind: str | None = None,
               verify_hash: bool = True) -> FastTextModel:
    """Load a model directory once per process; its metadata is verified first (ModelMetadataError)."""
    d = Path(model_dir).resolve()
    meta = read_metadata(d, kind=kind, verify_hash=verify_hash)
    key = (str(d), json.dumps(meta, sort_keys=True, default=str))
    m = _CACHE.get(key)
    if m is None:
        with _LOCK:
            m = _CACHE.get(key)
            if m is None:
                import fasttext
                try:
                    ft = fasttext.load_model(str(d / meta["model_file"]))
                except Exception as e:
                    raise ModelMetadataError(f"fastText cannot load {d / meta['model_file']}: {e}") from e
                got = sorted(lab[len(LABEL_PREFIX):] for lab in ft.get_labels())
                if got != sorted(meta["labels"]):
                    raise ModelMetadataError(f"{d}: model labels {got} differ from metadata "
                                             f"labels {sorted(meta['labels'])}")
                m = FastTextModel(d, meta, ft)
                _CACHE[key] = m
    return m


def clear_cache() -> None:
    _CACHE.clear()


_CHILD = """
import json, sys
import fasttext
a = json.loads(sys.argv[1])
try:
    fasttext.train_supervised(input=a["input"], verbose=0, **a["hp"]).save_model(a["out"])
except RuntimeError as e:
    print("FASTTEXT-ERROR:", e, file=sys.stderr)
    sys.exit(3)
"""


def _train_fresh_process(train_file: str, model_path: str, hp: dict) -> dict:
    """Train in a fresh Python process and return the hyper-parameters actually used.

    The fastText build used here leaks state between trainings in one process: a second
    `train_supervised` in the same process often stops with "Encountered NaN" on data that trains
    fine in a fresh one, and its model bytes differ run to run. A child process per training
    (a plain subprocess, so a caller's unguarded script is never re-imported) avoids both; it
    costs about a second. A run that still diverges is retried once as it is, then with half the
    learning rate.
    """
    import json as _json
    import subprocess
    import sys
    hp = dict(hp)
    for attempt in range(4):
        arg = _json.dumps({"input": train_file, "out": model_path, "hp": hp})
        proc = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True)
        if proc.returncode == 0:
            return hp
        err = (proc.stderr or "").strip().splitlines()
        msg = next((ln for ln in reversed(err) if ln.strip()), f"exit code {proc.returncode}")
        if "NaN" not in msg or attempt == 3:
            raise RuntimeError(f"fastText training failed ({msg}); try a lower --lr, "
                               "more --epoch or more data")
        if attempt >= 1:
            hp["lr"] = hp["lr"] / 2
    return hp


def train_model(examples: Sequence[tuple[str, str]], out_dir: str | os.PathLike, kind: str,
                hyperparameters: dict | None = None, max_chars: int = DEFAULT_MAX_CHARS,
                positive_label: str | None = None, extra_meta: dict | None = None) -> FastTextModel:
    """Train a fastText classifier on (label, text) pairs and save it with its metadata.

    `extra_meta` (metrics, threshold, data sources, held-out counts) is merged into the metadata;
    the training data fingerprint and the hyper-parameters are always recorded.
    """
    examples = [(lab, t) for lab, t in examples if t and t.strip()]
    labels = sorted({lab for lab, _ in examples})
    if len(labels) < 2:
        raise ValueError(f"training needs at least two labels with text, got {labels}")
    for lab in labels:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", lab):
            raise ValueError(f"label {lab!r} must be letters, digits, '_' or '-'")
    hp = {**DEFAULT_HYPERPARAMETERS, **(hyperparameters or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Write the training file in a stable order (by text hash), whatever order the examples came
    # in. (fastText training itself is not bit-reproducible; the metadata pins the model's hash.)
    import hashlib
    rows = sorted(((lab, prepare(t, max_chars)) for lab, t in examples),
                  key=lambda r: (hashlib.sha1(r[1].encode()).hexdigest(), r[0]))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for lab, line in rows:
            if line:
                f.write(f"{LABEL_PREFIX}{lab} {line}\n")
        train_file = f.name
    tmp = out / (MODEL_FILE + ".tmp")
    try:
        hp = _train_fresh_process(train_file, str(tmp), hp)
    finally:
        os.unlink(train_file)
    # The model was written under a temporary name: a crash never leaves a half model.
    os.replace(tmp, out / MODEL_FILE)
    per_label = {lab: sum(1 for l, _ in examples if l == lab) for lab in labels}
    meta = {
        "kind": kind, "labels": labels, "positive_label": positive_label, "model_file": MODEL_FILE,
        "hyperparameters": hp,
        "preprocessing": {"max_chars": max_chars, "lowercase": True,
                          "tokens": "words and single punctuation characters"},
        "metrics": {},
        **(extra_meta or {}),
    }
    td = dict(meta.get("training_data") or {})
    td.update({"fingerprint": data_fingerprint(examples), "n_train": len(examples),
               "per_label": per_label})
    meta["training_data"] = td
    write_metadata(out, meta)
    return load_model(out, kind=kind)
