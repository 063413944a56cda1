"""Achieved vs target shares of the two default stages (configs/mix/pretrain.yaml, anneal.yaml).

    python benchmarks/mix_shares.py [--scored PATH]

Uses the real scored table when given (or found at data/scored); otherwise a table built from the
sample corpus by fixtures/scored_table.py (its `quality` is a hash placeholder), and says which.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scored", default=None)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    from core.paths import PROJECT_ROOT, corpus_dir
    from core.spark import get_spark
    from core.tables import is_delta_table
    from mixer.build import build_mix
    from mixer.report import format_report
    from fixtures.scored_table import write_sample_table

    work = Path(args.workdir or tempfile.mkdtemp(prefix="mixshares-"))
    spark = get_spark("mix-shares", master=args.master, shuffle_partitions=8)
    scored = args.scored or str(PROJECT_ROOT / "data" / "scored")
    if is_delta_table(spark, scored):
        print(f"input: real scored table {scored}")
    else:
        scored = str(work / "sample_scored")
        n = write_sample_table(spark, corpus_dir(), scored, per_stream=None, partitions=4)
        print(f"input: NO scored table found; built {n:,} documents from the sample corpus "
              f"(fixtures/scored_table.py; quality is a hash placeholder)")
    for stage in ("pretrain", "anneal"):
        st = build_mix(spark, str(PROJECT_ROOT / "configs" / "mix" / f"{stage}.yaml"),
                       str(work / stage), input_path=scored)
        r = st.report
        print(format_report(r))
        print(json.dumps({"stage": stage, "rows": r["n_rows"],
                          "max_abs_share_error": r["max_abs_share_error"],
                          "max_window_deviation": r["max_window_deviation"],
                          "max_prefix_deviation_rows": r["max_prefix_deviation_rows"],
                          "categories": {k: [round(v["target_share"], 4),
                                             round(v["achieved_share"], 4)]
                                         for k, v in r["categories"].items()}}))
    spark.stop()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
