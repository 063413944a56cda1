"""Mixer: tokenize scored documents and write token shards in exact per-source proportions.

tokenizer (cl100k_base + Llama 3 specials) -> spec (YAML mix spec) -> plan (integer targets, epochs,
feasibility) -> order (per-source order as a pure function of seed/source/pass/doc_id) -> pack (rows
with EOT and document boundaries) -> interleave (furthest-behind-target rows) -> shards (writer and
reader of docs/token-shards.md) -> report. `build.build_mix` / `build.run_mix` run it on Spark.
"""
