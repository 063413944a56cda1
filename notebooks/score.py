# Databricks notebook source
# MAGIC %md
# MAGIC # Score: language, quality, domain and stream
# MAGIC Calls `classifiers.stage.run_score` (same as `spark-submit jobs/score.py`). The quality and domain
# MAGIC models are trained with `python -m classifiers.train quality|domain --recipe default --out DIR`.

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("input", "out/notebooks/filtered", "Input table")
dbutils.widgets.text("output", "out/notebooks/scored", "Output Delta table")
dbutils.widgets.text("config", "", "YAML config file (empty: defaults, see configs/score.yaml)")
dbutils.widgets.text("quality_model", "", "Quality model folder (default models/quality)")
dbutils.widgets.text("domain_model", "", "Domain model folder (default models/domain)")
dbutils.widgets.text("lang_threshold", "", "Language score below which lang is unknown (default 0.65)")

# COMMAND ----------

from core.config import load_yaml
from classifiers.stage import DEFAULTS, run_score

inp, output = dbutils.widgets.get("input"), dbutils.widgets.get("output")
config = load_yaml(_opt("config")) if _opt("config") else {}
for key, name in (("quality_model", "quality"), ("domain_model", "domain")):
    if _opt(key):
        config.setdefault("models", {})[name] = _opt(key)
if _opt("lang_threshold", float) is not None:
    config["lang_threshold"] = _opt("lang_threshold", float)
stats = run_score(spark, inp, output, config=config or None, stats_path=output + "_stats")

# COMMAND ----------

scored = spark.read.format("delta").load(output)
display(scored.groupBy("stream").count())
display(scored.groupBy("lang").count().orderBy("count", ascending=False).limit(20))
