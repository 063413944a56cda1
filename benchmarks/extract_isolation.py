"""Overhead of process isolation: the extraction of the sample crawl through `process_task` (the
per-task code the Spark job runs) with pages extracted in-process (SIGALRM limit) and in the
sandbox's worker process (curation/extract/sandbox.py), run alternately in one process so that
the machine's load hits both alike. Prints seconds per pass, documents/s and the ratio.

    python benchmarks/extract_isolation.py [--files crawl-2024-06.warc.gz] [--rounds 2]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import logging
import time

from core.config import merge
from core.paths import corpus_dir
from curation.extract.stage import DEFAULTS, process_task
from curation.extract.warc import plan_file


def one_pass(files, sandbox: bool):
    cfg = merge(DEFAULTS, {"sandbox": {"enabled": sandbox}})
    t = time.perf_counter()
    docs = rows = 0
    for f in files:
        for task in plan_file(f, 1 << 40):
            for r in process_task((*task, "warc"), "crawl", cfg):
                rows += 1
                docs += r["_kind"] == "doc"
    return time.perf_counter() - t, docs, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", nargs="*", default=["crawl-2024-01.warc.gz", "crawl-2024-06.warc.gz"])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    logging.disable(logging.WARNING)   # trafilatura's warnings
    files = [str(corpus_dir() / "crawl" / f) for f in args.files]
    one_pass(files[:1], True)          # warm both paths (imports, caches)
    tot = {False: 0.0, True: 0.0}
    for r in range(args.rounds):
        for sb in ((False, True) if r % 2 == 0 else (True, False)):
            secs, docs, rows = one_pass(files, sb)
            tot[sb] += secs
            print(f"round {r} {'sandbox ' if sb else 'in-process'}: {secs:.1f} s, {docs} documents "
                  f"of {rows} rows, {docs / secs:.1f} documents/s", flush=True)
    print(f"sandbox / in-process time: {tot[True] / tot[False]:.3f} "
          f"(overhead {100 * (tot[True] / tot[False] - 1):+.1f}%)")


if __name__ == "__main__":
    main()
