# Databricks notebook source
# MAGIC %md
# MAGIC # Train: the compact Llama 3 trainer on the mixed token streams
# MAGIC Calls `trainer.run.main` (same as `python -m trainer.run --config FILE`). No Spark here: the
# MAGIC trainer reads token shards only. On a GPU cluster set `device` to cuda.

# COMMAND ----------

# MAGIC %run ./common/preamble

# COMMAND ----------

dbutils.widgets.text("config", "configs/train/tiny.yaml", "Trainer config YAML")
dbutils.widgets.text("out_dir", "out/notebooks/train", "Output folder (checkpoints, metrics.jsonl)")
dbutils.widgets.text("pretrain_data", "out/notebooks/mix/pretrain", "Pre-training mix folder")
dbutils.widgets.text("anneal_data", "", "Annealing mix folder (empty: the config's)")
dbutils.widgets.text("pretrain_tokens", "", "Pre-training tokens (empty: the config's)")
dbutils.widgets.text("anneal_tokens", "", "Annealing tokens (empty: the config's)")
dbutils.widgets.dropdown("device", "auto", ["auto", "cpu", "cuda"], "Device")
dbutils.widgets.text("overrides", "", "More key=value overrides, space-separated (e.g. optim.lr=1e-3)")

# COMMAND ----------

from trainer.run import main as train_main

cfg_path = dbutils.widgets.get("config")
cfg_path = cfg_path if os.path.isabs(cfg_path) or os.path.exists(cfg_path) else os.path.join(_root, cfg_path)
overrides = [f"out_dir={dbutils.widgets.get('out_dir')}"]
for key, ov in (("pretrain_data", "stages.0.data"), ("anneal_data", "stages.1.data"),
                ("pretrain_tokens", "stages.0.tokens"), ("anneal_tokens", "stages.1.tokens")):
    if _opt(key):
        overrides.append(f"{ov}={_opt(key)}")
overrides += (_opt("overrides") or "").split()
if dbutils.widgets.get("device") != "auto":
    overrides.append(f"device={dbutils.widgets.get('device')}")
rc = train_main(["--config", cfg_path, "--resume", "never", *overrides])
assert rc == 0, f"trainer exited with {rc}"

# COMMAND ----------

from trainer.metrics import read_metrics
m = read_metrics(os.path.join(dbutils.widgets.get("out_dir"), "metrics.jsonl"), kind="train")
print(f"{len(m)} steps; first loss {m[0]['loss']:.3f}, last loss {m[-1]['loss']:.3f}")
