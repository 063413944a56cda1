# Databricks notebook source
# MAGIC %md
# MAGIC # Score: language, quality, domain and stream
# MAGIC Calls `classifiers.stage.run_score` (same as `spark-submit jobs/score.py`). The quality and domain
# MAGIC models are trained with `python -m classifiers.train quality|domain --recipe default --out DIR`.

# COMMAND ----------

# Make the project importable. On Databricks (a Git folder / Repo) the working directory is the
# notebook's folder; run locally through core/notebook.py the root is already on sys.path.
import os, sys
_root = os.path.dirname(os.getcwd()) if os.path.basename(os.getcwd()) == "notebooks" else os.getcwd()
if _root not in sys.path:
    sys.path.insert(0, _root)


def _opt(name, cast=str):
    """A widget value, or None when left empty (the stage default applies)."""
    v = dbutils.widgets.get(name).strip()
    return cast(v) if v else None

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
