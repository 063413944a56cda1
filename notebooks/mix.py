# Databricks notebook source
# MAGIC %md
# MAGIC # Mix: token streams in exact proportions
# MAGIC Calls `mixer.build.run_mix` (same as `spark-submit jobs/mix.py`): tokenises the scored table and
# MAGIC writes token shards, `manifest.json` and `mix_report.json` (docs/token-shards.md).

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("input", "out/notebooks/scored", "Scored table")
dbutils.widgets.text("spec", "configs/mix/pretrain.yaml", "Mix spec YAML")
dbutils.widgets.text("output", "out/notebooks/mix/pretrain", "Output folder")
dbutils.widgets.text("total_tokens", "", "Total tokens (empty: the spec's)")
dbutils.widgets.text("seq_len", "", "Row length in tokens (empty: the spec's)")

# COMMAND ----------

import json
from mixer.build import run_mix

spec_path = dbutils.widgets.get("spec")
spec_path = spec_path if os.path.isabs(spec_path) or os.path.exists(spec_path) else os.path.join(_root, spec_path)
from core.config import load_yaml
spec = load_yaml(spec_path)
for key in ("total_tokens", "seq_len"):
    if _opt(key, int) is not None:
        spec[key] = _opt(key, int)
output = dbutils.widgets.get("output")
stats = run_mix(spark, dbutils.widgets.get("input"), output, config=spec, stats_path=output + "_stats")

# COMMAND ----------

report = json.load(open(os.path.join(output, "mix_report.json")))
for s in report["sources"]:
    print(f"{s['name']:<16} target {s['target_share']:.4f} achieved {s['achieved_share']:.4f}")
