"""Pages per second per core: the job's extraction function vs a bare `trafilatura.extract` call on
the same pages, interleaved in one process (so machine load hits both alike).

    python benchmarks/extract_throughput.py [--limit N] [--rounds R]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import time

import trafilatura

from extract_quality import load_pages  # same folder
from curation.extract.html import extract_html


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pages = load_pages(args.limit)
    job = bare = 0.0
    for r in range(args.rounds):
        for url, html, _ in pages:   # alternate per page: same cache and load conditions
            t = time.process_time()
            extract_html(html, url=url)
            job += time.process_time() - t
            t = time.process_time()
            trafilatura.extract(html, url=url)
            bare += time.process_time() - t
    n = len(pages) * args.rounds
    print(f"pages={len(pages)} rounds={args.rounds} (CPU time per process, 1 core)")
    print(f"job extraction:   {n / job:.1f} pages/s/core")
    print(f"bare trafilatura: {n / bare:.1f} pages/s/core")
    print(f"overhead: {100 * (job / bare - 1):+.1f}%")


if __name__ == "__main__":
    main()
