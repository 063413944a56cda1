# Databricks notebook source
# MAGIC %md
# MAGIC # Extract: raw crawls and text datasets -> `documents` Delta table
# MAGIC Calls `curation.extract.stage.run_extract`, the same function as `spark-submit jobs/extract.py`
# MAGIC and the pipeline. WARC/ARC/WET, JSONL, Parquet, plain text and HTML files; see docs/stages/extract.md.

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("input", "../shared/corpus/crawl/*.warc.gz", "Input paths or globs (comma-separated)")
dbutils.widgets.text("output", "out/notebooks/documents", "Output Delta table")
dbutils.widgets.dropdown("format", "auto", ["auto", "warc", "jsonl", "parquet", "text", "html"], "Format")
dbutils.widgets.text("source", "", "Source name (empty: from the format / file name)")
dbutils.widgets.text("text_field", "", "Text field(s) for JSONL/Parquet, e.g. content or question,answer")
dbutils.widgets.text("max_bytes", "", "Payload size cap in bytes (empty: default)")
dbutils.widgets.text("timeout_s", "", "Per-document extraction time limit (empty: default)")

# COMMAND ----------

from curation.extract.stage import DEFAULTS, run_extract

inputs = [p.strip() for p in dbutils.widgets.get("input").split(",") if p.strip()]
output = dbutils.widgets.get("output")
fmt = dbutils.widgets.get("format")
config = {}
if _opt("max_bytes", int) is not None:
    config["max_bytes"] = _opt("max_bytes", int)
if _opt("timeout_s", float) is not None:
    config["timeout_s"] = _opt("timeout_s", float)
stats = run_extract(spark, inputs, output, config=config or None, stats_path=output + "_stats",
                    fmt=None if fmt == "auto" else fmt, source=_opt("source"),
                    text_field=_opt("text_field"))

# COMMAND ----------

docs = spark.read.format("delta").load(output)
display(docs.groupBy("source").count())
display(docs.select("doc_id", "source", "url", "title", "n_chars").limit(10))
