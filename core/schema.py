"""The tables that pass between stages: each one is the contract between two jobs.

`documents` (written by jobs/extract.py) is the base; every later stage keeps all of its columns and
adds its own:

* dedup  -> + cluster_id, cluster_size, lines_removed            (tables: deduped, duplicates)
* filter -> + one column per signal, keep (bool), drop_reasons (array<string>)
* score  -> + lang, lang_score, quality, content_domain (general/math/code), domain_scores, stream
  (`domain` stays the web host from extraction)
"""
from __future__ import annotations

from pyspark.sql import types as T

DOCUMENTS = T.StructType([
    T.StructField("doc_id", T.StringType(), False),        # stable: sha1 of (source, record id / input key)
    T.StructField("source", T.StringType(), False),        # e.g. "crawl", "thealgorithms", "gsm8k"
    T.StructField("url", T.StringType(), True),
    T.StructField("url_canonical", T.StringType(), True),
    T.StructField("domain", T.StringType(), True),         # registered host, lower case, no "www."
    T.StructField("fetch_time", T.TimestampType(), True),  # WARC-Date (UTC); null for text datasets
    T.StructField("warc_record_id", T.StringType(), True),
    T.StructField("title", T.StringType(), True),
    T.StructField("text", T.StringType(), False),
    T.StructField("content_hash", T.StringType(), False),  # sha1 hex of the normalised text
    T.StructField("n_chars", T.IntegerType(), False),
    T.StructField("n_words", T.IntegerType(), False),
    T.StructField("n_bytes_raw", T.LongType(), True),      # size of the input record payload
    T.StructField("input_file", T.StringType(), False),
    T.StructField("input_offset", T.LongType(), True),     # byte offset of the record (or line number)
    T.StructField("html_lang", T.StringType(), True),      # <html lang> / Content-Language, if any
    T.StructField("extraction", T.MapType(T.StringType(), T.StringType()), True),  # charset, extractor, ms, ...
])

REJECTS = T.StructType([
    T.StructField("source", T.StringType(), False),
    T.StructField("input_file", T.StringType(), False),
    T.StructField("input_offset", T.LongType(), True),
    T.StructField("record_type", T.StringType(), True),
    T.StructField("url", T.StringType(), True),
    T.StructField("warc_record_id", T.StringType(), True),
    T.StructField("reason", T.StringType(), False),        # e.g. skipped.request, rejected.too_large
    T.StructField("detail", T.StringType(), True),
])


def with_new_text(df, new_text: str = "_new_text"):
    """`df` with `text` replaced by the column `new_text` where that is not null, and `n_chars` and
    `n_words` recomputed for those rows (the other rows keep theirs): the one place a stage that
    rewrites documents (dedup's line removal, decontamination) keeps the documents contract.
    `n_words` is counted as extraction counts it, `len(text.split())`: runs of core.text.WHITESPACE
    (Spark's `trim` strips only U+0020 and Java's `\\s` is ASCII-only)."""
    from pyspark.sql import functions as F

    from core.text import WHITESPACE_JVM
    new = F.col(new_text)
    words = F.size(F.array_remove(F.split(new, WHITESPACE_JVM), ""))
    return (df.withColumn("text", F.coalesce(new, F.col("text")))
              .withColumn("n_chars", F.when(new.isNotNull(), F.length(new).cast("int"))
                          .otherwise(F.col("n_chars")))
              .withColumn("n_words", F.when(new.isNotNull(), words.cast("int"))
                          .otherwise(F.col("n_words"))))
