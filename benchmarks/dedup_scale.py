"""Scale of the dedup job: `spark-submit jobs/dedup.py` on generated document sets (see
benchmarks/generate_documents.py), with wall time and the peak resident memory of the driver
(the spark-submit process tree: Python driver + local JVM, whose executor threads live in the same
JVM in local mode; Python workers counted separately), and the time ratio per 10x more data.

The driver's RSS is mostly the JVM heap filling as far as `--driver-memory` lets it, not what the
run needs; so the JVM also writes a GC log (`-Xlog:gc`, through JDK_JAVA_OPTIONS, which reaches the
JVM that the job's own re-exec with the Delta jars starts) and the script prints the largest heap
left after a collection (an upper bound on the live data) and after a full or remark pause.
Running with a smaller `--driver-memory` (e.g. 2g) shows whether the run fits at all.

`--nmt` also turns on the JVM's Native Memory Tracking and samples `jcmd <pid> VM.native_memory
summary` of the largest JVM as its RSS grows: at that JVM's RSS peak it prints what the JVM itself
accounts for (heap, class metadata, threads, GC, "Other" = direct buffers, ...) and the rest of the
RSS, which is native memory the JVM does not track (malloc by JNI libraries: compression codecs,
Parquet, RocksDB, glibc arenas). The peak RSS of each process of the tree is printed too.

    python benchmarks/dedup_scale.py /tmp/gen20k [/tmp/gen200k ...] [--master local[2]]
        [--driver-memory 6g] [--root <export of an older commit>]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
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


_GC = re.compile(r"GC\(\d+\) (Pause [^(]*?)\s*(?:\(.*\))?\s*(\d+)M->(\d+)M\((\d+)M\)")


def gc_peaks(log_dir):
    """Largest heap after any collection and after a full/remark pause, in MiB, over the GC logs
    of every JVM of the run (the job re-executes spark-submit once)."""
    after_any = after_full = committed = 0
    for f in Path(log_dir).glob("gc_*.log"):
        for line in f.read_text(errors="replace").splitlines():
            m = _GC.search(line)
            if not m:
                continue
            kind, after, total = m.group(1), int(m.group(3)), int(m.group(4))
            after_any = max(after_any, after)
            committed = max(committed, total)
            if "Full" in kind or "Remark" in kind:
                after_full = max(after_full, after)
    return after_any, after_full, committed


_NMT = re.compile(r"^-\s+(.+?) \(reserved=(\d+)KB, committed=(\d+)KB\)", re.M)
_NMT_TOTAL = re.compile(r"^Total: reserved=(\d+)KB, committed=(\d+)KB", re.M)


def nmt_summary(pid):
    """{category: committed MiB} from `jcmd <pid> VM.native_memory summary` (plus 'Total')."""
    try:
        out = subprocess.run(["jcmd", str(pid), "VM.native_memory", "summary"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    cats = {m.group(1).strip(): int(m.group(3)) / 1024 for m in _NMT.finditer(out)}
    t = _NMT_TOTAL.search(out)
    if t:
        cats["Total"] = int(t.group(2)) / 1024
    return cats


def _role(cmd):
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "python worker"
    if cmd.split(" ", 1)[0].endswith("java"):
        # the job's re-exec adds the Delta jars: that JVM does the work; the first one waits
        return "JVM (the job's)" if "delta-spark" in cmd else "JVM (first spark-submit, waiting)"
    return "python driver" if "python" in cmd.split(" ", 1)[0] else cmd[:60]


def run(inp, out, master, root=ROOT, driver_memory="6g", nmt=False):
    cmd = ["spark-submit", "--master", master, "--driver-memory", driver_memory,
           str(Path(root) / "jobs" / "dedup.py"), "--input", inp, "--output", out]
    gc_dir = tempfile.mkdtemp(prefix="dedup_gc_")
    java_opts = f"-Xlog:gc:file={gc_dir}/gc_%p.log"
    if nmt:
        java_opts += " -XX:NativeMemoryTracking=summary"
    env = dict(os.environ, JDK_JAVA_OPTIONS=java_opts)
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = {"driver": 0, "workers": 0, "procs": {}, "nmt": (0, {})}
    done = threading.Event()

    def poll():
        last_nmt = 0.0
        while not done.is_set():
            drv = wrk = 0
            big = (0, None)
            for p in _tree(proc.pid):
                cmd, rss = _cmd(p), _rss(p)
                if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd:
                    wrk += rss
                else:
                    drv += rss
                key = (p, _role(cmd))
                if rss > peak["procs"].get(key, (0, 0))[0]:
                    peak["procs"][key] = (rss, time.time() - t0)   # (peak, when)
                if key[1].startswith("JVM") and rss > big[0]:
                    big = (rss, p)
            peak["driver"] = max(peak["driver"], drv)
            peak["workers"] = max(peak["workers"], wrk)
            # sample the largest JVM's own accounting near its RSS peak (jcmd is itself a JVM
            # start, ~1 CPU s: when its RSS passes the sampled peak by 3%, at most every 10 s,
            # and every 60 s regardless)
            since = time.time() - last_nmt
            if nmt and big[1] and ((big[0] > peak["nmt"][0] * 1.03 and since > 10) or since > 60):
                last_nmt = time.time()
                cats = nmt_summary(big[1])
                rss_now = _rss(big[1])
                if cats and rss_now >= peak["nmt"][0]:
                    peak["nmt"] = (rss_now, cats)
            time.sleep(0.5)
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    lines = []
    for line in proc.stdout:            # each line with the time it arrived: steps vs peaks
        lines.append(line.rstrip("\n"))
        if line.startswith("[dedup]"):
            lines[-1] = f"{line.rstrip()}  [t={time.time() - t0:.0f} s]"
    proc.wait()
    log = "\n".join(lines)
    done.set()
    wall = time.time() - t0
    peak["gc"] = gc_peaks(gc_dir)
    shutil.rmtree(gc_dir, ignore_errors=True)
    if proc.returncode != 0:
        print(log[-3000:])
        print(f"{inp}: job FAILED (exit {proc.returncode}) after {wall:.0f} s with --driver-memory "
              f"{driver_memory}; peak driver RSS {peak['driver'] / 2**30:.2f} GiB, "
              f"heap after GC max {peak['gc'][0]} MiB")
        raise SystemExit(1)
    summary = [ln for ln in log.splitlines() if ln.startswith(("  docs.", "  removed.", "[dedup]"))]
    return wall, peak, summary


def print_memory(peak):
    """Per-process peak RSS and, with --nmt, the largest JVM's native memory at its RSS peak."""
    for (pid, role), (rss, when) in sorted(peak["procs"].items(), key=lambda kv: -kv[1][0]):
        if rss > 50 * 2**20:
            print(f"    peak RSS {rss / 2**30:5.2f} GiB at t={when:4.0f} s  pid {pid:<7} {role}")
    rss, cats = peak["nmt"]
    if cats:
        total = cats.get("Total", 0)
        print(f"    largest JVM at its RSS peak: RSS {rss / 2**20:,.0f} MiB; NMT committed "
              f"{total:,.0f} MiB; not tracked by the JVM (native malloc of JNI libraries, "
              f"glibc arenas): {rss / 2**20 - total:,.0f} MiB")
        for k, v in sorted(cats.items(), key=lambda kv: -kv[1]):
            if k != "Total" and v >= 16:
                print(f"      {k:<28} {v:8,.0f} MiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--root", default=str(ROOT),
                    help="project tree whose jobs/dedup.py runs (e.g. an export of an older commit "
                         "for a before/after comparison)")
    ap.add_argument("--driver-memory", default="6g",
                    help="the local JVM's heap (driver and executor threads in local mode)")
    ap.add_argument("--nmt", action="store_true",
                    help="JVM Native Memory Tracking: where the RSS outside the heap goes")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    results = []
    for inp in args.inputs:
        out = inp.rstrip("/") + "_deduped"
        for suffix in ("", "_duplicates", "_stats", "_checkpoints"):   # a previous run's outputs
            shutil.rmtree(out + suffix, ignore_errors=True)
        wall, peak, summary = run(inp, out, args.master, args.root, args.driver_memory, args.nmt)
        n = next((int(s.split()[-1].replace(",", "")) for s in summary if "docs.in" in s), 0)
        results.append((inp, n, wall, peak))
        print(f"{inp}: {n:,} docs, wall {wall:.0f} s, peak driver RSS {peak['driver'] / 2**30:.2f} GiB"
              f" (Python workers {peak['workers'] / 2**30:.2f} GiB); JVM heap after GC: max "
              f"{peak['gc'][0]:,} MiB, max after full/remark {peak['gc'][1]:,} MiB, committed max "
              f"{peak['gc'][2]:,} MiB (--driver-memory {args.driver_memory}); "
              f"load average {os.getloadavg()}")
        for s in summary:
            print("   ", s.strip())
        print_memory(peak)
    for (a, na, wa, _), (b, nb, wb, _) in zip(results, results[1:]):
        if na and nb:
            print(f"time ratio {nb / na:.0f}x data: {wb / wa:.2f}x "
                  f"(per 10x: {(wb / wa) ** (1 / __import__('math').log10(nb / na)):.2f}x)")


if __name__ == "__main__":
    main()
