"""Profile the filter stage's per-document work on a real table, without Spark.

    python benchmarks/filter_profile.py [--table out/sample/deduped] [--limit N]

Reads the Delta table's Parquet files with pyarrow (the current version's files from the Delta log),
runs `annotate_batch` (token KL against the built reference when the config enables it) in batches of 2,048 rows as the Spark
job does, and prints seconds per signal (annotate_batch's own timings) and per pass.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def delta_files(path: str) -> list[str]:
    """Parquet files of the latest Delta version (replays add/remove actions of the JSON log)."""
    log = os.path.join(path, "_delta_log")
    live: dict[str, bool] = {}
    for name in sorted(f for f in os.listdir(log) if f.endswith(".json")):
        with open(os.path.join(log, name)) as fh:
            for line in fh:
                a = json.loads(line)
                if "add" in a:
                    live[a["add"]["path"]] = True
                elif "remove" in a:
                    live.pop(a["remove"]["path"], None)
    return [os.path.join(path, p) for p in sorted(live)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", default="out/sample/deduped")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch", type=int, default=2048)
    a = ap.parse_args()
    import pyarrow.parquet as pq
    import pyarrow as pa
    from urllib.parse import unquote

    from curation.filters import token_kl
    from curation.filters.annotate import annotate_batch
    from curation.filters.defaults import DEFAULTS
    from core.config import merge

    cfg = merge(DEFAULTS, {})
    tbl = pa.concat_tables([pq.read_table(unquote(f)) for f in delta_files(a.table)])
    if a.limit:
        tbl = tbl.slice(0, a.limit)
    pdf = tbl.to_pandas()
    print(f"{len(pdf)} documents, {pdf['text'].str.len().sum() / 1e6:.1f} M chars")
    # token KL is off by default; with it on, a built reference replaces the old corpus pass
    kl_ref = token_kl.Reference.load(cfg["token_kl"]["reference"] or "models/token_kl") \
        if cfg["token_kl"]["enabled"] else None
    p1 = 0.0
    tm: dict = defaultdict(float)
    t0 = time.perf_counter()
    for s in range(0, len(pdf), a.batch):
        annotate_batch(pdf.iloc[s:s + a.batch].reset_index(drop=True), cfg, kl_ref, timings=tm)
    p2 = time.perf_counter() - t0
    print(f"pass 2 (annotate_batch): {p2:.2f} s")
    for k, v in sorted(tm.items(), key=lambda kv: -kv[1]):
        print(f"  {k:24s} {v:8.2f} s  {100 * v / p2:5.1f}%")
    print(f"  {'(frame assembly etc.)':24s} {p2 - sum(tm.values()):8.2f} s")
    print(f"total per-document work: {p1 + p2:.2f} s")


if __name__ == "__main__":
    main()
