"""What happened to the documents of a run, counted and kept the same way by every stage
(datatrove's idea: a stage only decides; counting per reason and keeping the rejects are written
once).

* `Outcomes(stats, prefix)`: counters per outcome (kept, or the reason a document went) in the
  run's `RunStats`, named `<prefix>.<outcome>`, optionally also per source
  (`<prefix>.<outcome>.<source>`); `count(df, column)` fills them from a Spark frame with one
  aggregation. Extract, dedup, filter and mix count through it.
* `as_rejects(df, ...)`: any stage's removed documents in one shape, `REJECT_COLUMNS`
  (stage, reason, key, example): what the report shows per reason, whatever table the stage keeps
  them in (extraction's rejects table, dedup's duplicates table, the filter's `drop_reasons`).

No pyspark at import time (the functions that take a frame import it themselves).
"""
from __future__ import annotations

from core.stats import RunStats

REJECT_COLUMNS = ("stage", "reason", "key", "example")


class Outcomes:
    """Counters of one family of outcomes in `stats`, under `prefix` (no prefix: the outcome's
    name is the counter's)."""

    def __init__(self, stats: RunStats, prefix: str = ""):
        self.stats, self.prefix = stats, prefix

    def name(self, outcome: str) -> str:
        return f"{self.prefix}.{outcome}" if self.prefix else str(outcome)

    def add(self, outcome: str, n: int = 1, by: str | None = None) -> None:
        """Add `n` to the outcome; with `by` (a source), also to `<outcome>.<by>` when `n` is
        not zero."""
        self.stats.add(self.name(outcome), n)
        if by is not None and n:
            self.stats.add(f"{self.name(outcome)}.{by}", n)

    def set(self, outcome: str, n: float) -> None:
        self.stats.set(self.name(outcome), n)

    def get(self, outcome: str) -> float:
        return self.stats.counters.get(self.name(outcome), 0)

    def total(self, outcomes) -> float:
        return sum(self.get(o) for o in outcomes)

    def count(self, df, column: str, replace: bool = False) -> dict[str, int]:
        """Counts per value of `column` of a Spark frame (one small aggregation), added to (or,
        with `replace`, set as) the outcome counters. Returns the counts."""
        counts = {str(r[0]): int(r[1]) for r in df.groupBy(column).count().collect()}
        for outcome, n in counts.items():
            (self.set if replace else self.add)(outcome, n)
        return counts


def as_rejects(df, stage: str, reason: str, key: str, example: str | None = None,
               explode: bool = False):
    """`df`'s rows as rejects of one shape (REJECT_COLUMNS): `stage` (a literal), `reason` (the
    column `reason`; with `explode`, an array column with one row per element), `key` (the column
    that orders the examples of a reason, its type kept) and `example` (the column holding an
    example text, or null)."""
    from pyspark.sql import functions as F
    # a generator (explode) cannot be nested in a cast: array elements are taken as they are
    r = F.explode(reason) if explode else F.col(reason).cast("string")
    ex = F.col(example).cast("string") if example else F.lit(None).cast("string")
    return df.select(F.lit(stage).alias("stage"), r.alias("reason"),
                     F.col(key).alias("key"), ex.alias("example"))
