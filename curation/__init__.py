"""Curation stages in flow order, engine-free document logic with the Spark wiring in each
stage's `stage.py`: extract/ (WARC, HTML, sources, URLs), dedup/, filters/ (quality, safety, PII,
language id). The shared plumbing (Spark, Delta, config, stats) is in `core/`."""
