"""Run statistics, written once for every job (datatrove's idea: filters only decide; counting,
per-reason statistics and printing belong to shared machinery).

A job collects named counters (`records.response`, `rejected.too_large`, `bytes.in`, ...) in a
`RunStats`, then `record()` appends one row per counter to the stats Delta table (job, run id,
config hash, metric, value, time) and prints a short summary. Counters that come from Spark are
computed with one aggregation (`count_by`), never by collecting documents.

A stats table is owned like a job's output (core/tables.py): it is created with the ownership
marker `curation.job = "stats"` (any job of this project may append its runs to it), and a job
refuses to append to, or replace, a path that holds anything else (another job's table, a Delta
table some other tool made, a folder of other files) unless it was given `overwrite`, which
replaces that table with a new stats table. `claim(spark, path, overwrite)` checks before the
job's work; `record` checks only a path that was not claimed (one inspection per run).
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from dataclasses import dataclass, field

STATS_JOB = "stats"        # the ownership marker (core.tables MARK_JOB) of every stats table


@dataclass
class RunStats:
    job: str
    config_hash: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.time)
    counters: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    claimed: set = field(default_factory=set)       # stats paths `claim` has checked

    def claim(self, spark, stats_path: str | None, overwrite: bool = False) -> None:
        """Check, before the job's work, that its counters may go to `stats_path`: absent, empty
        or a stats table of this project; anything else is refused (core.tables.OutputRefused,
        naming the table and what holds it) unless `overwrite`, in which case `record` replaces
        it. A claimed path is not inspected again by `record`."""
        if not stats_path:
            return
        from core.tables import claim_output
        claim_output(spark, stats_path, STATS_JOB, overwrite)
        self.claimed.add(stats_path)

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
        """Append this run's counters to the stats table (if a path is given) and print them.
        The table is created with the stats marker; a path that is not a stats table of this
        project is refused (before anything is written), unless `claim` was given `overwrite`."""
        self.set("seconds", round(self.seconds, 3))
        if echo:
            print(self.summary(), file=sys.stderr, flush=True)
        if not stats_path:
            return
        from pyspark.sql import types as T

        from core.tables import write_table
        if stats_path not in self.claimed:     # a job that did not claim it first
            self.claim(spark, stats_path)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = [(self.job, self.run_id, self.config_hash, k, float(v), now,
                 json.dumps(self.info, sort_keys=True)) for k, v in sorted(self.counters.items())]
        schema = T.StructType([
            T.StructField("job", T.StringType()), T.StructField("run_id", T.StringType()),
            T.StructField("config_hash", T.StringType()), T.StructField("metric", T.StringType()),
            T.StructField("value", T.DoubleType()), T.StructField("recorded_at", T.TimestampType()),
            T.StructField("info", T.StringType()),
        ])
        write_table(spark.createDataFrame(rows, schema), stats_path, mode="append", job=STATS_JOB,
                    merge_schema=True)


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
