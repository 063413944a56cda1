"""Run a Databricks source-format notebook (`notebooks/*.py`) locally as a script.

Databricks provides `spark`, `dbutils` and `display` to a notebook; here `run_notebook` provides
small stand-ins: `dbutils.widgets` (text / dropdown / combobox / multiselect / get / getAll /
remove / removeAll) whose values come from a dict you pass (else each widget's default), the given
SparkSession (default: `core.spark.get_spark()`), and a `display` that prints a few rows.
Cells (`# COMMAND ----------`) run in order in one namespace, as on Databricks; a cell holding only
`# MAGIC %run ./other` runs that notebook in the same namespace (the notebooks' shared preamble).

    python -m core.notebook notebooks/dedup.py input=out/sample/documents output=/tmp/d
"""
from __future__ import annotations

import sys
from pathlib import Path

from core.paths import PROJECT_ROOT

HEADER = "# Databricks notebook source"
CELL = "# COMMAND ----------"


class Widgets:
    def __init__(self, values: dict | None = None):
        self._given = {k: str(v) for k, v in (values or {}).items()}
        self._defaults: dict[str, str] = {}
        self._choices: dict[str, list[str]] = {}

    def _define(self, name, default, choices=None):
        self._defaults[name] = "" if default is None else str(default)
        if choices is not None:
            self._choices[name] = [str(c) for c in choices]
            v = self._given.get(name)
            if v is not None and v not in self._choices[name] and "," not in v:
                raise ValueError(f"widget {name!r}: {v!r} is not one of {self._choices[name]}")

    def text(self, name, defaultValue="", label=None):
        self._define(name, defaultValue)

    def dropdown(self, name, defaultValue, choices, label=None):
        self._define(name, defaultValue, choices)

    def combobox(self, name, defaultValue, choices, label=None):
        self._define(name, defaultValue)

    def multiselect(self, name, defaultValue, choices, label=None):
        self._define(name, defaultValue, choices)

    def get(self, name):
        if name in self._given:
            return self._given[name]
        if name not in self._defaults:
            raise ValueError(f"no widget named {name!r} (define it before reading it)")
        return self._defaults[name]

    getArgument = get

    def getAll(self):
        return {k: self.get(k) for k in self._defaults}

    def remove(self, name):
        self._defaults.pop(name, None)

    def removeAll(self):
        self._defaults.clear()


class DBUtils:
    def __init__(self, values: dict | None = None):
        self.widgets = Widgets(values)


def display(obj, n: int = 10):
    """Databricks' display(): a Spark or pandas frame's first rows, else the object."""
    if hasattr(obj, "limit") and hasattr(obj, "toPandas"):
        obj.show(n, truncate=60)
    elif hasattr(obj, "head"):
        print(obj.head(n).to_string())
    else:
        print(obj)


def cells(path: str | Path) -> list[str]:
    src = Path(path).read_text(encoding="utf-8")
    if not src.startswith(HEADER):
        raise ValueError(f"{path} is not a Databricks source notebook (first line must be {HEADER!r})")
    return [c for c in src[len(HEADER):].split(CELL) if c.strip()]


def run_notebook(path: str | Path, widgets: dict | None = None, spark=None) -> dict:
    """Execute the notebook's cells in order; returns the notebook's namespace."""
    if spark is None:
        from core.spark import get_spark
        spark = get_spark("notebook")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    ns = {"__name__": "__notebook__", "spark": spark, "dbutils": DBUtils(widgets),
          "display": display, "displayHTML": print}
    _run_cells(Path(path), ns)
    return ns


RUN = "# MAGIC %run "


def _run_cells(path: Path, ns: dict) -> None:
    """Execute a notebook's cells in `ns`. A cell that is only `# MAGIC %run ./other` executes the
    other notebook (relative to this one's folder, `.py` added) in the same namespace, as
    Databricks' `%run` does."""
    for i, cell in enumerate(cells(path), 1):
        line = cell.strip()
        if line.startswith(RUN) and "\n" not in line:
            target = (path.parent / line[len(RUN):].strip())
            _run_cells(target if target.suffix == ".py" else target.with_suffix(".py"), ns)
            continue
        code = compile(cell, f"{path} (cell {i})", "exec")
        exec(code, ns)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(__doc__)
        return 2
    values = dict(a.split("=", 1) for a in argv[1:])
    run_notebook(argv[0], values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
