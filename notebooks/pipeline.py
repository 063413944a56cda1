# Databricks notebook source
# MAGIC %md
# MAGIC # The whole pipeline: extract -> dedup -> filter -> score -> mix -> train -> report
# MAGIC Calls `pipeline.run_pipeline` (same as `python -m jobs.pipeline`). Finished stages whose
# MAGIC config, input table versions and code are unchanged are skipped; a killed run resumes.

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("config", "configs/pipeline.yaml", "Pipeline config YAML")
dbutils.widgets.text("work_dir", "", "Work dir (empty: the config's, out/sample)")
dbutils.widgets.text("until", "", "Stop after this stage (empty: run all)")
dbutils.widgets.text("force", "", "Re-run these stages (comma-separated)")

# COMMAND ----------

from pipeline import load_pipeline_config, run_pipeline

cfg_path = dbutils.widgets.get("config")
cfg_path = cfg_path if os.path.isabs(cfg_path) or os.path.exists(cfg_path) else os.path.join(_root, cfg_path)
cfg = load_pipeline_config(cfg_path, {"work_dir": _opt("work_dir")} if _opt("work_dir") else None)
results = run_pipeline(spark, cfg, until=_opt("until"),
                       force=[f.strip() for f in (_opt("force") or "").split(",") if f.strip()])

# COMMAND ----------

for r in results:
    print(f"{r.name:<24} {r.status:<8} {r.seconds:8.1f} s  {r.reason}")
report = os.path.join(cfg["work_dir"], cfg["tables"]["report"], "index.html")
if os.path.exists(report):
    displayHTML(f"Report: {report}")
