"""Curation core: engine-agnostic document processing (WARC reading, extraction, URLs, dedup,
filters, PII) plus the thin Spark and Delta helpers the jobs share."""
