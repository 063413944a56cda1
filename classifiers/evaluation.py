"""Held-out metrics for the classifiers: ROC-AUC, precision/recall at a threshold, per-class P/R."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def roc_auc(y_true: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan if one class."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_at(y_true: Sequence[int], scores: Sequence[float], threshold: float) -> dict:
    """Precision, recall, F1, accuracy and the share predicted positive at `threshold` (score >= t)."""
    y = np.asarray(y_true, dtype=bool)
    pred = np.asarray(scores, dtype=np.float64) >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return {"threshold": threshold, "precision": p, "recall": r, "f1": f1,
            "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
            "predicted_positive": float(pred.mean()) if len(y) else float("nan")}


def per_class(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Per-class precision/recall/support, overall accuracy and the confusion matrix."""
    yt, yp = list(y_true), list(y_pred)
    out: dict = {"classes": {}, "confusion": {}}
    for lab in labels:
        tp = sum(1 for a, b in zip(yt, yp) if a == lab and b == lab)
        fp = sum(1 for a, b in zip(yt, yp) if a != lab and b == lab)
        fn = sum(1 for a, b in zip(yt, yp) if a == lab and b != lab)
        out["classes"][lab] = {
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "support": tp + fn,
        }
        out["confusion"][lab] = {b: sum(1 for x, y in zip(yt, yp) if x == lab and y == b)
                                 for b in labels}
    out["accuracy"] = sum(1 for a, b in zip(yt, yp) if a == b) / len(yt) if yt else float("nan")
    return out
