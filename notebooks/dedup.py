# Databricks notebook source
# MAGIC %md
# MAGIC # Dedup: URL, exact, MinHash near-duplicates, repeated lines
# MAGIC Calls `curation.dedup.stage.run_dedup` (same as `spark-submit jobs/dedup.py`). Writes the
# MAGIC deduplicated table and `<output>_duplicates` (every removed document and its survivor).

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("input", "out/notebooks/documents", "Input documents table")
dbutils.widgets.text("output", "out/notebooks/deduped", "Output Delta table")
dbutils.widgets.text("config", "", "YAML config file (empty: defaults, configs/dedup.yaml shows them)")
dbutils.widgets.text("ngram", "", "MinHash word n-gram (default 5)")
dbutils.widgets.text("bands", "", "LSH bands (default 14)")
dbutils.widgets.text("rows", "", "LSH rows per band (default 8)")
dbutils.widgets.text("line_threshold", "", "Remove lines seen in more than N documents (default 6)")

# COMMAND ----------

from core.config import load_yaml
from curation.dedup.stage import DEFAULTS, run_dedup

inp, output = dbutils.widgets.get("input"), dbutils.widgets.get("output")
config = load_yaml(_opt("config")) if _opt("config") else {}
for key, section, name in (("ngram", "minhash", "ngram"), ("bands", "minhash", "bands"),
                           ("rows", "minhash", "rows"), ("line_threshold", "lines", "threshold")):
    if _opt(key, int) is not None:
        config.setdefault(section, {})[name] = _opt(key, int)
if "bands" in config.get("minhash", {}) or "rows" in config.get("minhash", {}):
    mh = config["minhash"]
    mh.setdefault("num_perm", max(DEFAULTS["minhash"]["num_perm"],
                                  mh.get("bands", 14) * mh.get("rows", 8)))
stats = run_dedup(spark, inp, output, config=config or None, stats_path=output + "_stats")

# COMMAND ----------

print(stats.summary())
display(spark.read.format("delta").load(output).select("doc_id", "source", "url", "n_chars").limit(10))
