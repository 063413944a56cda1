"""Run the dedup stage of this checkout on a documents table and print a digest of its output, to
check that a change leaves the output byte for byte the same (run it from a checkout of each
commit, e.g. `git worktree add --detach /tmp/old <rev>`, and compare the two JSON lines):

    python benchmarks/dedup_digest.py INPUT OUTPUT [--digest FILE]

The digest: the deduped table's columns; the sha256 of its sorted rows (doc_id, sha256(text),
cluster_id, cluster_size, lines_removed, n_chars, n_words) and of the duplicates table's sorted
rows (every column); the run's counters without the timing ones; whether the checkpoint folder
was left behind. OUTPUT is replaced.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--digest", default=None, help="also write the digest to this file")
    args = ap.parse_args()
    from core.spark import get_spark
    from core.tables import read_table
    from curation.dedup.stage import run_dedup
    spark = get_spark("dedup-digest", master="local[2]", memory="4g")
    stats = run_dedup(spark, args.input, args.output, None, None, overwrite=True)
    out = read_table(spark, args.output)
    rows = sorted((r.doc_id, hashlib.sha256(r.text.encode()).hexdigest(), r.cluster_id,
                   r.cluster_size, r.lines_removed, r.n_chars, r.n_words)
                  for r in out.select("doc_id", "text", "cluster_id", "cluster_size", "lines_removed",
                                      "n_chars", "n_words").collect())
    dups = sorted(tuple(str(x) for x in r)
                  for r in read_table(spark, args.output + "_duplicates").collect())
    digest = json.dumps({
        "columns": out.columns, "rows": len(rows), "duplicates": len(dups),
        "rows_sha256": hashlib.sha256(repr(rows).encode()).hexdigest(),
        "duplicates_sha256": hashlib.sha256(repr(dups).encode()).hexdigest(),
        "counters": {k: v for k, v in sorted(stats.counters.items()) if not k.startswith("seconds")},
        "checkpoints_left": os.path.exists(args.output + "_checkpoints")}, sort_keys=True)
    print(digest, flush=True)
    if args.digest:
        with open(args.digest, "w") as f:
            f.write(digest + "\n")
    os._exit(0)     # delta-rs/JVM teardown at exit is not needed here


if __name__ == "__main__":
    main()
