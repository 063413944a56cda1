# Databricks notebook source
# MAGIC %md
# MAGIC # Decontaminate: remove evaluation-set text from the training documents
# MAGIC Calls `curation.decontaminate.stage.run_decontaminate` (same as `spark-submit jobs/decontaminate.py`).
# MAGIC Builds a word n-gram index of every registered evaluation set (`configs/evalsets.yaml`), joins it
# MAGIC against the documents in Spark, removes each matched region (or drops the document) and writes
# MAGIC `<output>_contamination`: one row per (document, benchmark item) match with its overlap.

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("input", "out/notebooks/deduped", "Input documents table (after dedup)")
dbutils.widgets.text("output", "out/notebooks/decontaminated", "Output Delta table")
dbutils.widgets.text("config", "", "YAML config file (empty: defaults, configs/decontaminate.yaml shows them)")
dbutils.widgets.text("ngram", "", "Words per n-gram (default 13; 8 as Llama 3's analysis)")
dbutils.widgets.dropdown("mode", "remove_regions", ["remove_regions", "drop_documents"], "What to do with a match")
dbutils.widgets.text("only", "", "Comma-separated registered sets to check (empty: all)")

# COMMAND ----------

from core.config import load_yaml
from curation.decontaminate.stage import run_decontaminate

inp, output = dbutils.widgets.get("input"), dbutils.widgets.get("output")
config = load_yaml(_opt("config")) if _opt("config") else {}
if _opt("ngram", int) is not None:
    config["ngram"] = _opt("ngram", int)
config["mode"] = dbutils.widgets.get("mode")
if _opt("only"):
    config.setdefault("evalsets", {})["only"] = [s.strip() for s in _opt("only").split(",")]
stats = run_decontaminate(spark, inp, output, config=config or None, stats_path=output + "_stats")

# COMMAND ----------

print(stats.summary())
display(spark.read.format("delta").load(output + "_contamination")
        .select("benchmark", "item_id", "source", "matched_ngrams", "overlap", "action").limit(20))
