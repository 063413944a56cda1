"""Scale of the dedup job: `spark-submit jobs/dedup.py` on generated document sets (see
benchmarks/generate_documents.py), with wall time and the peak resident memory of the driver
(the spark-submit process tree: Python driver + local JVM, whose executor threads live in the same
JVM in local mode; Python workers counted separately), and the time ratio per 10x more data.

    python benchmarks/dedup_scale.py /tmp/gen20k [/tmp/gen200k ...] [--master local[2]]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _tree(pid):
    kids = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(kids.get(x, []))
    return out


def _rss(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0
    except OSError:
        return 0


def _cmd(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def run(inp, out, master, root=ROOT):
    cmd = ["spark-submit", "--master", master, "--driver-memory", "6g",
           str(Path(root) / "jobs" / "dedup.py"), "--input", inp, "--output", out]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"driver": 0, "workers": 0}
    done = threading.Event()

    def poll():
        while not done.is_set():
            drv = wrk = 0
            for p in _tree(proc.pid):
                if "pyspark.daemon" in _cmd(p) or "pyspark/daemon" in _cmd(p):
                    wrk += _rss(p)
                else:
                    drv += _rss(p)
            peak["driver"] = max(peak["driver"], drv)
            peak["workers"] = max(peak["workers"], wrk)
            time.sleep(0.5)
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    log = proc.communicate()[0]
    done.set()
    wall = time.time() - t0
    if proc.returncode != 0:
        print(log[-3000:])
        raise SystemExit(f"job failed on {inp}")
    summary = [ln for ln in log.splitlines() if ln.startswith(("  docs.", "  removed.", "[dedup]"))]
    return wall, peak, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--root", default=str(ROOT),
                    help="project tree whose jobs/dedup.py runs (e.g. an export of an older commit "
                         "for a before/after comparison)")
    args = ap.parse_args()
    results = []
    for inp in args.inputs:
        out = inp.rstrip("/") + "_deduped"
        shutil.rmtree(out, ignore_errors=True)
        wall, peak, summary = run(inp, out, args.master, args.root)
        n = next((int(s.split()[-1].replace(",", "")) for s in summary if "docs.in" in s), 0)
        results.append((inp, n, wall, peak))
        print(f"{inp}: {n:,} docs, wall {wall:.0f} s, peak driver RSS {peak['driver'] / 2**30:.2f} GiB"
              f" (Python workers {peak['workers'] / 2**30:.2f} GiB)")
        for s in summary:
            print("   ", s.strip())
    for (a, na, wa, _), (b, nb, wb, _) in zip(results, results[1:]):
        if na and nb:
            print(f"time ratio {nb / na:.0f}x data: {wb / wa:.2f}x "
                  f"(per 10x: {(wb / wa) ** (1 / __import__('math').log10(nb / na)):.2f}x)")


if __name__ == "__main__":
    main()
