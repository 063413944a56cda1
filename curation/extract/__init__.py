"""Extraction: raw sources (WARC, JSONL, Parquet, plain text) -> the `documents` table.

  warc.py      WARC reading: byte-range planning and record iteration, engine-free
  html.py      HTML -> main text (trafilatura), charset detection, per-page time limit
  sources.py   non-WARC sources (JSONL, Parquet, plain text) and grouping of small files into tasks
  urls.py      URL canonicalization and domains (also used by dedup and the filters)
  stage.py     the Spark wiring: run_extract(spark, inputs, output, config, stats_path)
"""
