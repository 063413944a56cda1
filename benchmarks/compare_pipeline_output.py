"""Compare two pipeline work folders (`python -m jobs.pipeline --work-dir DIR`): is the output the same?

For every Delta table under both folders (found by its `_delta_log`):
  * a table with `doc_id` and `text`: the sorted list of (doc_id, sha256(text));
  * any other table but the run statistics: the sorted list of its rows (every column as text;
    an extraction progress log `*_progress` without its run id and its `seq`, the time of each
    event in nanoseconds, which differ from run to run);
  * a statistics table (`*stats`): the counters of its latest run per job, without the timing ones
    (`seconds*`, `*_per_s*`, `*per_second`, `spark_jobs*`), reported but not required to match;
and for every file under the mix folders (`mix/<name>/...`: shards, index.npz, manifests, report)
its sha256. Prints one line per item and exits 1 when a table or a mix file differs.

Run both pipelines with the same absolute work folder (the mix manifests record the input tables'
paths), moving the first one aside before the second run:

    python -m jobs.pipeline --work-dir /tmp/cmp/run --until mix      # on the base commit
    mv /tmp/cmp/run /tmp/cmp/base
    python -m jobs.pipeline --work-dir /tmp/cmp/run --until mix      # on the new commit
    python benchmarks/compare_pipeline_output.py /tmp/cmp/base /tmp/cmp/run
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402

TIMING = ("seconds", "_per_s", "per_second", "spark_jobs")
PER_RUN = {"_progress": ("run_id", "seq")}     # table name ending -> columns that differ per run


def delta_tables(root: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("_delta_log")
                  if p.is_dir())


def mix_files(root: Path) -> list[str]:
    """Files of the mix folders, without the Delta tables kept beside them (their stats tables,
    compared as tables)."""
    mix = root / "mix"
    if not mix.is_dir():
        return []
    tables = [p.parent for p in mix.rglob("_delta_log") if p.is_dir()]
    return sorted(str(p.relative_to(root)) for p in mix.rglob("*")
                  if p.is_file() and not any(t in p.parents for t in tables))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def table_digest(spark, path: str) -> tuple[str, int, str]:
    """(kind, rows, sha256 of the sorted row list) of one table."""
    from pyspark.sql import functions as F
    df = spark.read.format("delta").load(path)
    if Path(path).name.endswith("stats"):
        return "stats", df.count(), ""
    if "doc_id" in df.columns and "text" in df.columns:
        rows = df.select(F.col("doc_id").cast("string"),
                         F.sha2(F.col("text").cast("string"), 256)).collect()
        kind = "doc_id+sha256(text)"
    else:
        per_run = [c for end, cs in PER_RUN.items() if Path(path).name.endswith(end) for c in cs]
        cols = sorted(c for c in df.columns if c not in per_run)
        rows = df.select(*[F.col(c).cast("string") for c in cols]).collect()
        kind = "all columns" + (f" but {', '.join(per_run)}" if per_run else "")
    lines = sorted("\x1f".join("\x00" if v is None else v for v in r) for r in rows)
    return kind, len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def stats_counters(spark, path: str) -> dict:
    """Latest run's counters per job, timing counters left out."""
    from pyspark.sql import functions as F
    from pyspark.sql import Window
    df = spark.read.format("delta").load(path)
    w = Window.partitionBy("job").orderBy(F.col("recorded_at").desc())
    last = df.select("job", "run_id", "recorded_at").distinct() \
        .withColumn("_rk", F.row_number().over(w)).where("_rk = 1").select("run_id")
    out = {}
    for r in df.join(last, "run_id").select("job", "metric", "value").collect():
        if not any(t in r.metric for t in TIMING):
            out[(r.job, r.metric)] = r.value
    return out


def json_diff(a: Path, b: Path) -> str:
    """For two JSON files: the top-level keys whose values differ (or that only one has)."""
    if a.suffix != ".json":
        return ""
    import json
    try:
        ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    except ValueError:
        return ""
    if not (isinstance(ja, dict) and isinstance(jb, dict)):
        return ""
    keys = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k))
    return f"; keys that differ: {', '.join(keys)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", help="work folder of the reference run")
    ap.add_argument("new", help="work folder of the run to check")
    args = ap.parse_args()
    base, new = Path(args.base).resolve(), Path(args.new).resolve()
    from core.spark import get_spark
    spark = get_spark("compare-pipeline-output")
    bad = 0
    tb, tn = delta_tables(base), delta_tables(new)
    for t in sorted(set(tb) | set(tn)):
        if t not in tb or t not in tn:
            print(f"TABLE  {t}: only in {'new' if t in tn else 'base'}")
            bad += 1
            continue
        kb, nb, db = table_digest(spark, str(base / t))
        kn, nn, dn = table_digest(spark, str(new / t))
        if kb == "stats":
            cb, cn = stats_counters(spark, str(base / t)), stats_counters(spark, str(new / t))
            diff = sorted(k for k in set(cb) | set(cn) if cb.get(k) != cn.get(k))
            print(f"STATS  {t}: {len(cb)} counters, {len(diff)} differ (not required)"
                  + (f": {', '.join('.'.join(k) for k in diff[:6])}" if diff else ""))
            continue
        same = (nb, db) == (nn, dn)
        bad += not same
        print(f"TABLE  {t}: {kb}, {nb} rows base, {nn} rows new: "
              f"{'identical' if same else 'DIFFERENT'} ({db[:16]} / {dn[:16]})")
    fb, fn = mix_files(base), mix_files(new)
    n_same = 0
    for f in sorted(set(fb) | set(fn)):
        if f not in fb or f not in fn:
            print(f"FILE   {f}: only in {'new' if f in fn else 'base'}")
            bad += 1
            continue
        hb, hn = sha256_file(base / f), sha256_file(new / f)
        if hb == hn:
            n_same += 1
        else:
            bad += 1
            print(f"FILE   {f}: DIFFERENT ({hb[:16]} / {hn[:16]})" + json_diff(base / f, new / f))
    print(f"MIX    {n_same} of {len(set(fb) | set(fn))} files byte-identical")
    print("RESULT", "identical" if not bad else f"{bad} difference(s)")
    spark.stop()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
