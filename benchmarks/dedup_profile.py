"""Profile of the dedup stage in one process: wall time per step (from the stage's own log lines),
and the number of Spark jobs and stages the run launched (a stage past the first of a job reads a
shuffle), from Spark's status tracker.

    python benchmarks/dedup_profile.py /tmp/gen20k [--master local[2]] [--memory 4g]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--output", default=None)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--memory", default="4g")
    args = ap.parse_args()
    from curation.dedup.stage import run_dedup
    from core.spark import get_spark
    spark = get_spark("dedup-profile", master=args.master, memory=args.memory)
    sc = spark.sparkContext
    out = args.output or args.input.rstrip("/") + "_profiled"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out + "_duplicates", ignore_errors=True)
    tracker = sc.statusTracker()
    jobs_before = set(tracker.getJobIdsForGroup(None))
    t0 = time.time()
    st = run_dedup(spark, args.input, out, None, None)
    wall = time.time() - t0
    jobs = sorted(set(tracker.getJobIdsForGroup(None)) - jobs_before)
    stages = set()
    for j in jobs:
        info = tracker.getJobInfo(j)
        if info is not None:
            stages.update(info.stageIds)
    print(f"run_dedup wall {wall:.1f} s (session already started); Spark jobs {len(jobs)}, "
          f"stages {len(stages)} (incl. skipped); docs in {int(st.counters['docs.in']):,}, "
          f"out {int(st.counters['docs.out']):,}")
    spark.stop()


if __name__ == "__main__":
    main()
