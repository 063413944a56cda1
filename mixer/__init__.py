"""Mixer: tokenize scored documents and write token shards in exact per-source proportions.

spec (YAML mix spec) -> plan (integer targets, epochs, feasibility) -> order (per-source order as
a pure function of seed/source/pass/doc_id) -> pack (rows with EOT and document boundaries) ->
interleave (furthest-behind-target rows) -> the shards, written in the format of
core/token_shards.py -> report. The tokenizer is core/tokenizer.py (shared with the trainer).
`build.build_mix` / `build.run_mix` run it on Spark.
"""
