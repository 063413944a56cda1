"""Connected components of a large graph in Spark, never collected to the driver.

The algorithm is the alternating large-star / small-star iteration of Kiveris et al., "Connected
Components in MapReduce and Beyond" (SoCC 2014), written as DataFrame joins and aggregations:

* large-star: every node u links each strictly larger neighbour v to m(u), the smallest node of
  u's closed neighbourhood;
* small-star: every node u links itself and each smaller neighbour to the smallest of them.

Both keep the connectivity and only ever move edges towards smaller ids; the loop stops when the
graph is a forest of stars, each around the smallest node of its component. Rounds needed grow like O(log^2 n); the graph is
saved each round to the run's checkpoint folder (`core/checkpoints.py`: Parquet read back, never
`localCheckpoint`, whose blocks die with their executor) so the query plan does not grow; each
round's file replaces the previous one's. Node ids are longs; the result (node, component =
smallest node id of its component) is the same whatever the partitioning, because it depends only
on the set of edges.
"""
from __future__ import annotations

import sys
import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window


def _canonical(edges: DataFrame) -> DataFrame:
    """Undirected edges as (hi, lo) with hi > lo, deduplicated, no self loops."""
    return (edges.select(F.greatest("src", "dst").alias("hi"), F.least("src", "dst").alias("lo"))
            .where(F.col("hi") != F.col("lo")).distinct())


def _large_star(e: DataFrame) -> DataFrame:
    both = e.select(F.col("hi").alias("u"), F.col("lo").alias("v")).unionByName(
        e.select(F.col("lo").alias("u"), F.col("hi").alias("v")))
    w = Window.partitionBy("u")
    out = (both.withColumn("m", F.least(F.col("u"), F.min("v").over(w)))
           .where(F.col("v") > F.col("u"))
           .select(F.greatest("v", "m").alias("hi"), F.least("v", "m").alias("lo"))
           .where(F.col("hi") != F.col("lo")))
    return out     # not deduplicated: small-star's window does not mind, its output is


def _small_star(e: DataFrame) -> DataFrame:
    # every edge oriented from its larger end u=hi to the smaller neighbour v=lo
    j = e.withColumn("m", F.min("lo").over(Window.partitionBy("hi")))
    out = j.select(F.col("lo").alias("src"), F.col("m").alias("dst")).unionByName(
        j.select(F.col("hi").alias("src"), F.col("m").alias("dst")))
    return _canonical(out)


def _is_star_forest(e: DataFrame) -> bool:
    """True when every edge joins a leaf (one edge only) to a root (never a leaf itself)."""
    leaves_with_2 = e.groupBy("hi").count().where(F.col("count") > 1).select("hi")
    roots_as_leaf = e.join(e.select(F.col("hi").alias("lo")), "lo", "left_semi").select(
        F.col("lo").alias("hi"))
    return leaves_with_2.unionByName(roots_as_leaf).limit(1).count() == 0


GRAPH = "components"     # the name of each round's saved graph in the checkpoint folder


def drop_components_graph(checkpoints) -> None:
    """Delete the last round's saved graph (call once the components have been used)."""
    checkpoints.drop_named(GRAPH)


def connected_components(edges: DataFrame, checkpoints, max_rounds: int = 100,
                         verbose: bool = True) -> tuple[DataFrame, int]:
    """(node, component) for every node that has an edge, and the number of rounds used.

    `edges` has long columns `src` and `dst` (direction and duplicates do not matter). The loop
    stops as soon as the graph is a forest of stars (often at once for LSH candidate edges, which
    are built as stars around each bucket's smallest node). The result reads the last round's
    graph, saved in `checkpoints` (a `core.checkpoints.Checkpoints`): `drop_components_graph`
    deletes it once the result has been used (`close()` does at the latest).
    """
    def mat(df, prev=None):
        out = checkpoints.save(df, GRAPH)
        if prev is not None:
            checkpoints.drop(prev)      # the previous round is no longer read
        return out
    e = mat(_canonical(edges))
    rounds = 0
    while not _is_star_forest(e):
        if rounds >= max_rounds:
            raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
        rounds += 1
        t0 = time.time()
        e = mat(_small_star(_large_star(e)), e)
        if verbose:
            print(f"[dedup] components round {rounds} ({time.time() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
    # A forest of stars: each leaf `hi` hangs on its root `lo`, the smallest node of the component.
    return e.select(F.col("hi").alias("node"), F.col("lo").alias("component")).unionByName(
        e.select(F.col("lo").alias("node"), F.col("lo").alias("component")).distinct()), rounds
