"""The filter stage: annotate every document with signal columns, then decide `keep`/`drop_reasons`.

    run_filter(spark, input_path, output_path, config=None, stats_path=None, decide_only=False)

Full run (nothing collected but a per-language table of language-ID scores):
 1. token KL reference (when token_kl.enabled): per-language cl100k unigram distributions and their
    length calibration curves, built beforehand from the sample corpus
    (curation/filters/token_kl_reference.py), loaded on the driver and broadcast;
 2. language thresholds (lang.per_language_thresholds): fastText's top label and score for every
    text (`lid_scores`), FineWeb-2's per-language rule over them (one aggregation,
    lang_thresholds.py; recorded in the run's stats as `lang.thresholds`), BEFORE the signals;
 3. annotation: `annotate_batch` per Arrow batch (mapInPandas) decides each document's language
    once, from its text with those thresholds, adds every signal column (the dirty-word list and
    the language-conditioned rules use that language) and replaces `text` with its PII-redacted
    version; the result is persisted (memory and disk) so step 4's aggregation and join both read
    it (without that the annotation ran twice);
 4. per-domain PII share: documents with any PII / documents, per `domain` (one aggregation, joined
    back as `domain_doc_count`, `domain_pii_doc_share`); then `decide_spark` adds `keep` and
    `drop_reasons`, and the table is written with one Delta overwrite.
`decide_only=True` reads an annotated table and only re-runs step 4's decision with a new config.
Every row is kept in the output; the kept documents are `where keep`, the rejected ones `where not
keep` with their reasons (`rejected()`).
"""
from __future__ import annotations

import sys
import time

from core.config import check_schema, config_hash, merge
from curation.filters.annotate import SIGNAL_COLUMNS, SIGNAL_NAMES, annotate_batch
from curation.filters.decide import decide_spark, validate_rule_sets
from curation.filters.defaults import DEFAULTS, SCHEMA
from core.outcomes import Outcomes
from core.stats import RunStats
from core.tables import check_input_not_in_output, claim_output, read_table, write_table

__all__ = ["DEFAULTS", "SCHEMA", "run_filter", "rejected", "load_kl_reference"]
DERIVED = ["domain_doc_count", "domain_pii_doc_share", "keep", "drop_reasons"]


def _log(msg: str) -> None:
    print(f"[filter] {msg}", file=sys.stderr, flush=True)


def load_kl_reference(cfg: dict):
    """The token-KL reference the config names (token_kl.reference; null = models/token_kl under
    the project root), loaded on the driver: a clear error naming the build command when missing."""
    from pathlib import Path

    from core.paths import PROJECT_ROOT
    from curation.filters.token_kl import Reference
    path = cfg["token_kl"]["reference"] or "models/token_kl"
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (PROJECT_ROOT / p).exists():
        p = PROJECT_ROOT / p
    return Reference.load(p), str(p)


def lid_scores(df, cfg: dict):
    """(lid_lang, lid_score) of every document: fastText's top label on the text, as annotate's
    resolve_languages computes it (the input of the per-language thresholds)."""
    from curation.filters.annotate import normalise_lang
    tcol = cfg["text_column"]

    def fn(pdfs):
        import pandas as pd

        from curation.filters.langid import detect_languages
        for pdf in pdfs:
            texts = [t if isinstance(t, str) else "" for t in pdf["t"].tolist()]
            res = detect_languages(texts, threshold=0.0)
            yield pd.DataFrame({"lid_lang": [normalise_lang(lg) if sc > 0 else None for lg, sc in res],
                                "lid_score": [float(sc) for _, sc in res]})

    return df.select(df[tcol].alias("t")).mapInPandas(fn, "lid_lang string, lid_score double")


def _annotated_schema(df):
    from pyspark.sql import types as T
    base = [f for f in df.schema.fields if f.name not in SIGNAL_NAMES and f.name not in DERIVED]
    ddl = ", ".join(f"`{c}` {t}" for c, t in SIGNAL_COLUMNS)
    sig = T._parse_datatype_string(ddl)
    return T.StructType(base + list(sig.fields))


def _ship_lists(spark, cfg: dict) -> dict:
    """`cfg` with both lists folders as core.ship Resources (shipped when they exist)."""
    from core import fs
    from core.ship import Resource, ship
    from curation.filters import dirty_words, url_blocklist
    out = dict(cfg)
    for key, default in (("dirty_words", dirty_words.default_lists_dir),
                         ("url", url_blocklist.default_lists_dir)):
        path = str(cfg[key]["lists_dir"] or default())
        res = ship(spark, path) if fs.exists(path) else Resource(path)
        out[key] = {**cfg[key], "lists_dir": res}
    return out


def annotate(spark, df, cfg: dict, stats: RunStats | None = None, persisted: list | None = None):
    """Steps 1-3 without the decision: `df` plus signal columns and the per-domain PII share.

    With `persisted` (a list), the annotated rows are persisted before the per-domain join (so the
    annotation runs once) and the persisted frame is appended to it: the caller unpersists it."""
    persist = persisted is not None
    from pyspark.sql import functions as F

    ref_bc = None
    if cfg["token_kl"]["enabled"]:
        ref, ref_path = load_kl_reference(cfg)
        if stats is not None:
            stats.info["token_kl.reference"] = ref_path
            stats.info["token_kl.reference_languages"] = ref.languages
        _log(f"token KL reference {ref_path}: {len(ref.languages)} languages")
        ref_bc = spark.sparkContext.broadcast(ref)

    if cfg["lang"]["detect"] and cfg["lang"]["per_language_thresholds"]:
        # FineWeb-2's per-language thresholds from this corpus' score distribution, BEFORE the
        # signals: every language-dependent signal (the dirty-word list, the stop-word and
        # word-length rules' language) then uses the final language. (They were computed after
        # the annotation and only `filter_lang` re-decided: a document whose language changed
        # kept the dirty-word count of the other list.) Costs one extra fastText pass.
        from curation.filters.lang_thresholds import compute_thresholds_spark
        th = compute_thresholds_spark(lid_scores(df, cfg), cfg["lang"]["min_docs_per_language"])
        th.update(cfg["lang"].get("thresholds") or {})
        if stats is not None:
            stats.info["lang.thresholds"] = th
            stats.info["lang.default_threshold"] = cfg["lang"]["min_score"]
        _log(f"language thresholds (FineWeb-2 rule) for {len(th)} languages: {th}")
        cfg = {**cfg, "lang": {**cfg["lang"], "thresholds": th}}

    schema = _annotated_schema(df)
    names = schema.fieldNames()
    keep_in = [c for c in df.columns if c not in SIGNAL_NAMES and c not in DERIVED]

    # the block lists go to the executors with the job (addFile on a cluster): tasks never read
    # a path only the driver has
    tcfg = _ship_lists(spark, cfg)

    def fn(pdfs):
        kl_ref = ref_bc.value if ref_bc is not None else None
        c = {**tcfg, "dirty_words": {**tcfg["dirty_words"],
                                     "lists_dir": tcfg["dirty_words"]["lists_dir"].local()},
             "url": {**tcfg["url"], "lists_dir": tcfg["url"]["lists_dir"].local()}}
        for pdf in pdfs:
            yield annotate_batch(pdf, c, kl_ref)[names]

    _log("signals per document")
    annotated = df.select(*keep_in).mapInPandas(fn, schema)
    if persist:
        # the per-domain aggregation and the join both read the signals: without this the
        # (expensive) annotation runs twice, once per side of the join
        from pyspark import StorageLevel
        annotated = annotated.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(annotated)
    if "domain" in annotated.columns:
        per_domain = (annotated.groupBy("domain").agg(
            F.count(F.lit(1)).cast("int").alias("domain_doc_count"),
            (F.sum((F.col("pii_total") > 0).cast("int")) / F.count(F.lit(1))).alias("domain_pii_doc_share"))
            .where(F.col("domain").isNotNull()))
        annotated = annotated.join(per_domain, on="domain", how="left")
        annotated = annotated.select(*names, "domain_doc_count", "domain_pii_doc_share")
    else:
        annotated = (annotated.withColumn("domain_doc_count", F.lit(None).cast("int"))
                     .withColumn("domain_pii_doc_share", F.lit(None).cast("double")))
    return annotated


def _check_lists(cfg: dict, stats: RunStats) -> None:
    """Every configured list exists, is readable and non-empty, before any Spark work (ListError
    with the path otherwise); entries per list and invalid patterns go into the run's stats."""
    from curation.filters import dirty_words, url_blocklist
    from curation.filters.decide import active_rules
    groups = {r.group for r, _ in active_rules(cfg)}
    used = {g for gs in cfg["rule_sets_map"].values() for g in gs}
    entries: dict[str, int] = {}
    for key, default in (("url", url_blocklist.default_lists_dir),
                         ("dirty_words", dirty_words.default_lists_dir)):
        path = str(cfg[key]["lists_dir"] or default())
        if "://" in path:      # remote lists: checked by the loader in the first task
            continue
        if key == "url" and "url" in groups and "url" in used:
            bl = url_blocklist.UrlBlocklist(path, tuple(cfg["url"]["block_categories"]),
                                            cfg["url"]["soft_banned_threshold"] is not None)
            entries.update({f"url/{k}": v for k, v in bl.entries.items()})
            for k, v in bl.invalid_patterns.items():
                stats.set(f"lists.invalid_patterns.url/{k}", v)
                _log(f"{v} invalid pattern(s) in {bl.dir / k} (skipped), e.g. {bl.invalid_examples[k][:2]}")
        if key == "dirty_words" and "dirty_words" in groups and "dirty_words" in used:
            entries.update(dirty_words.check_lists(path, cfg["dirty_words"]["fallback_langs"]))
    for k, v in sorted(entries.items()):
        stats.set(f"lists.entries.{k}", v)
    _log(f"lists: {len(entries)} files, {sum(entries.values())} entries")


def run_filter(spark, input_path: str, output_path: str, config: dict | None = None,
               stats_path: str | None = None, decide_only: bool = False,
               overwrite: bool = False) -> RunStats:
    """Annotate and decide (or, with decide_only, re-decide an annotated table); returns its stats.
    The output must be new or a table the filter wrote (unless `overwrite`)."""
    cfg = check_schema(merge(DEFAULTS, config), SCHEMA)
    validate_rule_sets(cfg)
    check_input_not_in_output(input_path, output_path)
    claim_output(spark, output_path, "filter", overwrite)
    stats = RunStats("filter", config_hash=config_hash(cfg))
    stats.claim(spark, stats_path, overwrite)
    stats.info["mode"] = "decide_only" if decide_only else "annotate+decide"
    stats.info["input"] = input_path
    df = read_table(spark, input_path)
    tcol = cfg["text_column"]
    if tcol not in df.columns:
        raise ValueError(f"{input_path}: no text column {tcol!r} (columns: {df.columns})")
    persisted: list = []
    if not decide_only:
        _check_lists(cfg, stats)
    if decide_only:
        missing = [c for c in SIGNAL_NAMES + ["domain_pii_doc_share"] if c not in df.columns]
        if missing:
            raise ValueError(f"--decide-only needs an annotated table; {input_path} lacks {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''} (run the full filter first)")
        annotated = df
        _log("decide only: thresholds over stored signals")
    else:
        if df.rdd.getNumPartitions() < spark.sparkContext.defaultParallelism:
            df = df.repartition(spark.sparkContext.defaultParallelism)
        annotated = annotate(spark, df, cfg, stats, persisted=persisted)
    decided = decide_spark(annotated, cfg)
    _log("decide and write" if not decide_only else "writing")
    try:
        write_table(decided, output_path, job="filter",
                    user_metadata={"curation.job": "filter", "run_id": stats.run_id,
                                   "config_hash": stats.config_hash})
    finally:            # the cached signals are released also when the write fails
        for p in reversed(persisted):
            p.unpersist()
    _record_counts(spark, output_path, stats)
    stats.record(spark, stats_path)
    return stats


def _record_counts(spark, output_path: str, stats: RunStats) -> None:
    """Per-reason and per-PII-type counters from the written table (two small aggregations)."""
    from pyspark.sql import functions as F
    from curation.filters.pii import COUNT_COLUMNS

    out = read_table(spark, output_path)
    pii_cols = [c for c in list(COUNT_COLUMNS.values()) + ["pii_total"] if c in out.columns]
    row = out.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("keep").cast("int")).alias("kept"),
                  F.sum(F.length(F.col("text"))).alias("chars"),
                  F.sum(F.when(F.col("keep"), F.length(F.col("text")))).alias("chars_kept"),
                  F.sum((F.col("pii_total") > 0).cast("int")).alias("docs_pii"),
                  *[F.sum(c).alias(c) for c in pii_cols]).first()
    stats.set("documents.in", row["n"])
    stats.set("documents.kept", row["kept"] or 0)
    stats.set("documents.dropped", row["n"] - (row["kept"] or 0))
    stats.set("chars.in", row["chars"] or 0)
    stats.set("chars.kept", row["chars_kept"] or 0)
    stats.set("pii.documents_with_pii", row["docs_pii"] or 0)
    for c in pii_cols:
        stats.set(f"pii.{c.replace('pii_', '').replace('_count', '')}", row[c] or 0)
    dropped = out.where(~F.col("keep"))
    Outcomes(stats, "dropped.reason").count(
        dropped.select(F.explode("drop_reasons").alias("r")), "r", replace=True)
    # the first reason of each rejected document: counts that sum to documents.dropped
    Outcomes(stats, "dropped.first_reason").count(
        dropped.select(F.col("drop_reasons")[0].alias("r")), "r", replace=True)


def rejected(spark, annotated_path: str, reason: str | None = None):
    """The rejected documents of a filter output, with their reasons (optionally one reason only)."""
    from pyspark.sql import functions as F
    df = read_table(spark, annotated_path).where(~F.col("keep"))
    if reason:
        df = df.where(F.array_contains("drop_reasons", reason))
    cols = [c for c in ("doc_id", "source", "url", "drop_reasons") if c in df.columns]
    return df.select(*cols, F.substring(F.col("text"), 1, 200).alias("text_head"))
