"""Run statistics, written once for every job (datatrove's idea: filters only decide; counting,
per-reason statistics and printing belong to shared machinery).

A job collects named counters (`records.response`, `rejected.too_large`, `bytes.in`, ...) in a
`RunStats`, then `record()` appends one row per counter to the stats Delta table (job, run id,
config hash, metric, value, time) and prints a short summary. Counters that come from Spark are
computed with one aggregation (`count_by`), never by collecting documents.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class RunStats:
    job: str
    config_hash: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.time)
    counters: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)

    def add(self, metric: str, value: float = 1) -> None:
        self.counters[metric] = self.counters.get(metric, 0) + value

    def set(self, metric: str, value: float) -> None:
        self.counters[metric] = value

    def update(self, mapping: dict[str, float], prefix: str = "") -> None:
        for k, v in mapping.items():
            self.add(prefix + str(k), v)

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    def summary(self) -> str:
        lines = [f"== {self.job} run {self.run_id} ({self.seconds:.1f} s) =="]
        width = max((len(k) for k in self.counters), default=10)
        for k in sorted(self.counters):
            v = self.counters[k]
            val = f"{int(v):,}" if float(v).is_integer() else f"{v:,.4f}"
            lines.append(f"  {k:<{width}}  {val:>14}")
        for k, v in sorted(self.info.items()):
            lines.append(f"  {k}: {v}")
        return "\n".join(lines)

    def record(self, spark, stats_path: str | None, echo: bool = True) -> None:
        """Append this run's counters to the stats table (if a path is given) and print them."""
        self.set("seconds", round(self.seconds, 3))
        if echo:
            print(self.summary(), file=sys.stderr, flush=True)
        if not stats_path:
            return
        from pyspark.sql import types as T
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = [(self.job, self.run_id, self.config_hash, k, float(v), now,
                 json.dumps(self.info, sort_keys=True)) for k, v in sorted(self.counters.items())]
        schema = T.StructType([
            T.StructField("job", T.StringType()), T.StructField("run_id", T.StringType()),
            T.StructField("config_hash", T.StringType()), T.StructField("metric", T.StringType()),
            T.StructField("value", T.DoubleType()), T.StructField("recorded_at", T.TimestampType()),
            T.StructField("info", T.StringType()),
        ])
        spark.createDataFrame(rows, schema).write.format("delta").mode("append") \
            .option("mergeSchema", "true").save(stats_path)


def count_by(df, column: str) -> dict[str, int]:
    """Counts per value of `column` (one small aggregation; the result has one row per value)."""
    return {str(r[0]): int(r[1]) for r in df.groupBy(column).count().collect()}


def latest_run(spark, stats_path: str, job: str) -> dict[str, float]:
    """The counters of the most recent run of `job` in a stats table."""
    from pyspark.sql import functions as F
    df = spark.read.format("delta").load(stats_path).where(F.col("job") == job)
    last = df.orderBy(F.col("recorded_at").desc()).select("run_id").first()
    if last is None:
        return {}
    return {r.metric: r.value for r in df.where(F.col("run_id") == last[0]).collect()}
