"""Compact Llama 3 trainer over the mixer's token shards (docs/token-shards.md); no Spark inside."""
