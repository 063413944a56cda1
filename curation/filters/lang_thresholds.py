"""Per-language language-ID thresholds computed from the corpus, as FineWeb-2 sets them.

FineWeb-2 (Penedo et al. 2025, "FineWeb2: One Pipeline to Scale Them All", arXiv 2506.20920, section
on language identification) keeps a document labelled `l` when its confidence reaches

    tau_l = max(0.3, min(0.9, median(X_l) - std(X_l)))

where X_l are the confidence scores of all documents whose top label is `l`: a language the model
is sure of (median near 1, small spread) gets a high bar, a language whose documents all score lower
(short texts, close relatives: Bosnian/Croatian/Serbian, Malay/Indonesian) a lower one, instead of
one global 0.65 that turns most short sentences of such languages into `unknown`. The bounds are
FineWeb-2's. A language with fewer than `min_docs` documents keeps the fixed `default` (the median
and spread of a handful of scores mean nothing). std is the population standard deviation.

`compute_thresholds` works on arrays (tests, benchmarks); `compute_thresholds_spark` is one
aggregation over a table of `lid_lang`, `lid_score` (the stage's fastText pass before the
signals), nothing but the per-language table reaches the driver. The stage computes them BEFORE
annotating, so annotate decides every document's language once, with them (and every
language-dependent signal uses that language); they are written into the run's stats
(`lang.thresholds`).
"""
from __future__ import annotations

import numpy as np

FLOOR, CAP = 0.3, 0.9


def bounded(median: float, std: float) -> float:
    """FineWeb-2's rule on one language's score median and spread: median - std, kept in
    [FLOOR, CAP]. The one formula both the arrays and the Spark aggregation apply."""
    return float(max(FLOOR, min(CAP, median - std)))


def threshold_of(scores) -> float:
    x = np.asarray(scores, dtype=float)
    return bounded(float(np.median(x)), float(x.std()))


def compute_thresholds(labels, scores, min_docs: int = 50) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for lab, sc in zip(labels, scores):
        if lab and sc is not None and not (isinstance(sc, float) and np.isnan(sc)):
            by.setdefault(lab, []).append(float(sc))
    return {lab: round(threshold_of(v), 6) for lab, v in sorted(by.items()) if len(v) >= min_docs}


def compute_thresholds_spark(df, min_docs: int = 50) -> dict[str, float]:
    from pyspark.sql import functions as F
    rows = (df.where(F.col("lid_lang").isNotNull() & F.col("lid_score").isNotNull())
            .groupBy("lid_lang")
            .agg(F.count(F.lit(1)).alias("n"),
                 F.percentile_approx("lid_score", 0.5, 10000).alias("med"),
                 F.stddev_pop("lid_score").alias("sd"))
            .where(F.col("n") >= min_docs).collect())
    return {r["lid_lang"]: round(bounded(r["med"], r["sd"] or 0.0), 6)
            for r in sorted(rows, key=lambda r: r["lid_lang"])}
