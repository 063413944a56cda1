# Databricks notebook source
# MAGIC %md
# MAGIC # Filter: annotate every signal, then decide from thresholds
# MAGIC Calls `curation.filters.stage.run_filter` (same as `spark-submit jobs/filter.py`). Every row is
# MAGIC kept with `keep` and `drop_reasons`; with *decide only* an annotated table is re-decided from
# MAGIC new thresholds without recomputing signals.

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("input", "out/notebooks/deduped", "Input table")
dbutils.widgets.text("output", "out/notebooks/filtered", "Output Delta table")
dbutils.widgets.text("config", "", "YAML config file (empty: defaults, see configs/filter.yaml)")
dbutils.widgets.text("min_words", "", "gopher.min_words (default 50)")
dbutils.widgets.text("max_dup_line_frac", "", "repetition.max_dup_line_frac (default 0.30)")
dbutils.widgets.text("dirty_max_ratio", "", "dirty_words.max_ratio (default 0.01)")
dbutils.widgets.dropdown("decide_only", "false", ["false", "true"], "Re-decide an annotated table only")

# COMMAND ----------

from core.config import load_yaml
from curation.filters.stage import DEFAULTS, run_filter

inp, output = dbutils.widgets.get("input"), dbutils.widgets.get("output")
config = load_yaml(_opt("config")) if _opt("config") else {}
for key, section, name, cast in (("min_words", "gopher", "min_words", int),
                                 ("max_dup_line_frac", "repetition", "max_dup_line_frac", float),
                                 ("dirty_max_ratio", "dirty_words", "max_ratio", float)):
    if _opt(key, cast) is not None:
        config.setdefault(section, {})[name] = _opt(key, cast)
stats = run_filter(spark, inp, output, config=config or None, stats_path=output + "_stats",
                   decide_only=dbutils.widgets.get("decide_only") == "true")

# COMMAND ----------

from pyspark.sql import functions as F
out = spark.read.format("delta").load(output)
display(out.groupBy("keep").count())
display(out.select(F.explode("drop_reasons").alias("reason")).groupBy("reason").count()
        .orderBy(F.desc("count")))
