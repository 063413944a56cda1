"""Planning cost on the driver: 1,000 input files, before (every file decompressed once to index
its gzip members, ranges of 8 MB collected: the planner of commit 42cd6fd, read from git) and
after (`plan_file` from the listing's sizes; no byte read). Prints seconds, Python heap peak of
the planning (tracemalloc) and the number of ranges; plus the after-planner on a listing of 1,000
Common-Crawl-sized files (1.1 GB each, sizes only: nothing is opened).

    python benchmarks/extract_planning.py [--files 1000] [--old-files 1000]

The files are symbolic links (in a temporary folder) to the two sample crawl WARCs (12.8 and
18.8 MB, record-gzipped), alternately.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import importlib.util
import subprocess
import tempfile
import time
import tracemalloc

from core.paths import corpus_dir
from curation.extract.stage import resolve_split_bytes
from curation.extract.warc import plan_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def old_planner():
    src = subprocess.run(["git", "-C", ROOT, "show", "42cd6fd:curation/extract/warc.py"],
                         capture_output=True, text=True, check=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "old_warc.py")
    open(path, "w").write(src)
    spec = importlib.util.spec_from_file_location("old_warc", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_warc"] = mod      # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod.plan_file


def measure(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return secs, peak, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--old-files", type=int, default=1000, help="files for the old planner")
    args = ap.parse_args()
    crawl = [str(corpus_dir() / "crawl" / n) for n in ("crawl-2024-01.warc.gz", "crawl-2024-06.warc.gz")]
    d = tempfile.mkdtemp(prefix="plan_bench_")
    files = []
    for i in range(args.files):
        p = os.path.join(d, f"part-{i:05d}.warc.gz")
        os.symlink(crawl[i % 2], p)
        files.append(p)
    sizes = {f: os.path.getsize(f) for f in files}           # what the listing gives

    split_new = resolve_split_bytes("auto", sum(sizes.values()), 2)
    s_new, m_new, r_new = measure(lambda: [r for f in files for r in plan_file(f, split_new, size=sizes[f])])
    print(f"after : {len(files)} files, split_bytes auto={split_new}: {s_new:.3f} s, "
          f"heap peak {m_new / 1e6:.2f} MB, {len(r_new)} ranges", flush=True)
    s_8, m_8, r_8 = measure(lambda: [r for f in files for r in plan_file(f, 8_000_000, size=sizes[f])])
    print(f"after : {len(files)} files, split_bytes 8 MB: {s_8:.3f} s, heap peak {m_8 / 1e6:.2f} MB, "
          f"{len(r_8)} ranges", flush=True)
    cc = {f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/x/warc/part-{i:05d}.warc.gz": 1_100_000_000
          for i in range(args.files)}
    split_cc = resolve_split_bytes("auto", sum(cc.values()), 64)
    s_cc, m_cc, r_cc = measure(lambda: [r for f, n in cc.items() for r in plan_file(f, split_cc, size=n)])
    print(f"after : {len(cc)} Common-Crawl-sized files (1.1 GB, listing only), split_bytes auto="
          f"{split_cc}: {s_cc:.3f} s, heap peak {m_cc / 1e6:.2f} MB, {len(r_cc)} ranges", flush=True)

    old = old_planner()
    some = files[:args.old_files]
    s_old, m_old, r_old = measure(lambda: [r for f in some for r in old(f, 8_000_000)])
    print(f"before: {len(some)} files, split_bytes 8 MB (every file decompressed to index members): "
          f"{s_old:.3f} s, heap peak {m_old / 1e6:.2f} MB, {len(r_old)} ranges", flush=True)
    print(f"planning time before/after (8 MB ranges): {s_old / len(some) * len(files) / max(s_8, 1e-9):.0f}x")
    for f in files:
        os.unlink(f)
    os.rmdir(d)


if __name__ == "__main__":
    main()
