# Databricks notebook source
# MAGIC %md
# MAGIC # Preamble shared by every notebook here (`%run ./common/preamble` in their first cell)
# MAGIC Makes the project importable and defines `_opt(name, cast)`: a widget's value, or None when left
# MAGIC empty. On Databricks `%run` executes this notebook in the caller's namespace; locally
# MAGIC `core/notebook.py` does the same.

# COMMAND ----------

# Make the project importable. On Databricks (a Git folder / Repo) the working directory is the
# calling notebook's folder; run locally through core/notebook.py the root is already on sys.path.
import os, sys
_root = os.path.dirname(os.getcwd()) if os.path.basename(os.getcwd()) == "notebooks" else os.getcwd()
if _root not in sys.path:
    sys.path.insert(0, _root)


def _opt(name, cast=str):
    """A widget value, or None when left empty (the stage default applies)."""
    v = dbutils.widgets.get(name).strip()
    return cast(v) if v else None
