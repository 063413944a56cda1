"""Extraction in killable worker processes: a hard per-page deadline that nothing can catch.

An in-process time limit (SIGALRM raising an exception) is not a limit: the exception is an
ordinary `Exception`, so a broad `except` in trafilatura's fallbacks (readability, justext, the
recall retry) swallows it and the page runs on with no limit; a signal handler never runs while C
code (lxml, a regex) holds the interpreter; and a segfault or an out-of-memory kill in lxml takes
the whole Spark task down (four times, then the job).

`ExtractionSandbox` runs the extraction function in a child process (forked from the warm parent,
so trafilatura is already imported there) that handles one page at a time over a pipe. The parent
waits for the answer with a deadline; past it, the child is SIGKILLed (no handler, no `except`
can stop that) and the page is `rejected.timeout`. A child that dies on its own (a signal such as
SIGSEGV, an abort in C code) gives `rejected.crashed`; one that runs out of its memory budget
(`resource.setrlimit(RLIMIT_AS)`: its address space at start plus `memory_mb`), or that the
kernel's OOM killer SIGKILLs, gives `rejected.oom`. Either way a fresh child is started for the
next page and the task goes on. The design follows datatrove's extractor sandbox (a persistent
child process fed over a pipe, killed and restarted on timeout); the code is our own.

A pool of `workers` children keeps up to that many pages in flight (`imap`, results in input
order); one Spark task uses a pool of its own (one child by default: Spark already runs one task
per core).

    with ExtractionSandbox(timeout_s=10, memory_mb=2048) as sb:
        ex = sb.extract(payload, url=url, http_charset=cs, cfg=hcfg)   # -> html.Extracted
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque

REASON_TIMEOUT = "rejected.timeout"
REASON_CRASHED = "rejected.crashed"
REASON_OOM = "rejected.oom"

def _default_target():
    from curation.extract import html as html_mod
    return html_mod.extract_html


_WARM = set()


def _warm_up(target) -> None:
    """Run the extraction once on a tiny page in this process, so that forked children inherit
    trafilatura imported and its lazy state built (a cold child spends ~0.5 s importing, which a
    tight deadline would count against the first page after every restart)."""
    key = id(target)
    if key in _WARM:
        return
    fn = target if target is not None else _default_target()
    try:
        fn(b"<html><body><article><p>" + b"warm up words " * 30 + b"</p></article></body></html>",
           url=None, http_charset=None, cfg={"timeout_s": 0})
    except Exception:  # noqa: BLE001 - warming is best effort
        pass
    _WARM.add(key)


def _vm_size() -> int | None:
    """This process's current virtual memory size in bytes (Linux), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _limit_memory(memory_mb: int) -> None:
    if not memory_mb:
        return
    try:
        import resource
    except ImportError:  # not on this platform: no limit
        return
    base = _vm_size() or 0
    limit = base + int(memory_mb) * (1 << 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(conn, target, memory_mb: int) -> None:
    """The child: extract one page per message until the pipe closes. Runs no time limit of its
    own (the parent's deadline is the limit); a MemoryError is reported as `oom` and the child
    exits, so the next page starts in a fresh process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when a child ends
    try:
        import faulthandler
        faulthandler.disable()      # a crash is reported by the parent, not dumped to stderr
    except Exception:  # noqa: BLE001
        pass
    _limit_memory(memory_mb)
    fn = target if target is not None else _default_target()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        args, kwargs = msg
        try:
            res = fn(*args, **kwargs)
        except MemoryError:
            res = None
            _send(conn, ("oom", "MemoryError"))
            break
        except BaseException as e:  # noqa: BLE001 - reported to the parent, never lost
            _send(conn, ("error", f"{type(e).__name__}: {str(e)[:200]}"))
            continue
        detail = getattr(res, "detail", None) or ""
        if getattr(res, "reason", None) == "rejected.extraction_error" and detail.startswith("MemoryError"):
            _send(conn, ("oom", detail))    # caught inside the extractor: still out of memory
            break
        if not _send(conn, ("ok", res)):
            break
    conn.close()
    os._exit(0)


def _send(conn, obj) -> bool:
    try:
        conn.send(obj)
        return True
    except MemoryError:
        try:
            conn.send(("oom", "MemoryError while sending the result"))
        except Exception:  # noqa: BLE001
            pass
        return False
    except (OSError, EOFError, ValueError):
        return False


class _Worker:
    def __init__(self, ctx, target, memory_mb: int):
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, target, memory_mb), daemon=True)
        self.proc.start()
        child.close()
        self.busy_since: float | None = None

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.proc.is_alive():
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):
                pass
        self.proc.join(5)

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError, EOFError):
            pass
        self.proc.join(1)
        self.kill()


class ExtractionSandbox:
    """A small pool of extraction processes with a hard per-page deadline (see module doc).

    `target` is the extraction function (default: `curation.extract.html.extract_html`); it is
    called as target(payload, url=..., http_charset=..., cfg=...) and must return an object with
    `text`, `reason`, `detail` (an `Extracted`). The in-child call gets `timeout_s=0` in its cfg:
    the deadline is enforced here."""

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 2048, workers: int = 1,
                 target=None, start_method: str = "fork"):
        self.timeout_s = float(timeout_s or 0)
        self.memory_mb = int(memory_mb or 0)
        self.n_workers = max(1, int(workers))
        self.target = target
        methods = mp.get_all_start_methods()
        self.ctx = mp.get_context(start_method if start_method in methods else methods[0])
        self.workers: list[_Worker | None] = [None] * self.n_workers
        self.counts = {"pages": 0, "timeout": 0, "crashed": 0, "oom": 0, "restarts": 0}
        if self.ctx.get_start_method() == "fork":
            _warm_up(target)    # import and initialise trafilatura before forking: warm children

    # ------------------------------------------------------------ lifecycle
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for i, w in enumerate(self.workers):
            if w is not None:
                w.stop()
                self.workers[i] = None

    def _worker(self, i: int) -> _Worker:
        w = self.workers[i]
        if w is None or not w.alive():
            if w is not None:
                w.kill()
                self.counts["restarts"] += 1
            w = self.workers[i] = _Worker(self.ctx, self.target, self.memory_mb)
        return w

    # ------------------------------------------------------------ one page
    def extract(self, payload, url=None, http_charset=None, cfg=None):
        """Extract one page; always returns an `Extracted` (a reject on timeout/crash/oom)."""
        return next(self.imap([(payload, url, http_charset, cfg)]))

    def imap(self, pages):
        """Extract (payload, url, http_charset, cfg) tuples, up to `workers` at once; yields one
        `Extracted` per page, in input order."""
        pending: deque = deque()          # (worker index, deadline, t0) in submission order
        free = deque(range(self.n_workers))
        it = iter(pages)
        exhausted = False
        while True:
            while free and not exhausted:
                try:
                    page = next(it)
                except StopIteration:
                    exhausted = True
                    break
                i = free.popleft()
                t0 = time.monotonic()
                deadline = t0 + self.timeout_s if self.timeout_s > 0 else None
                res = self._submit(i, page)
                pending.append((i, deadline, t0, res))
            if not pending:
                return
            i, deadline, t0, res = pending.popleft()
            if res is None:
                res = self._wait(i, deadline, t0)
            self.counts["pages"] += 1
            free.append(i)
            yield res

    def _submit(self, i: int, page):
        payload, url, http_charset, cfg = page
        cfg = {**(cfg or {}), "timeout_s": 0}
        w = self._worker(i)
        try:
            w.conn.send(((payload,), {"url": url, "http_charset": http_charset, "cfg": cfg}))
        except (OSError, ValueError, EOFError) as e:   # the child died before taking the page
            return self._failed(i, REASON_CRASHED, f"worker gone before the page: {type(e).__name__}")
        return None

    def _wait(self, i: int, deadline: float | None, t0: float):
        from curation.extract.html import Extracted
        w = self.workers[i]
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready = w.conn.poll(left)
        except (OSError, EOFError):
            ready = True
        if not ready:
            self.counts["timeout"] += 1
            w.kill()
            self.workers[i] = None
            self.counts["restarts"] += 1
            return Extracted(None, reason=REASON_TIMEOUT, detail=f"> {self.timeout_s} s (worker killed)",
                             meta={"extractor": "trafilatura", "sandbox": "killed"})
        try:
            kind, value = w.conn.recv()
        except (EOFError, OSError):
            return self._died(i)
        except MemoryError:
            return self._failed(i, REASON_OOM, "result too large for the parent")
        if kind == "ok":
            return value         # meta["ms"]: the extraction's own time, measured in the worker
        if kind == "oom":
            return self._failed(i, REASON_OOM, value)
        return Extracted(None, reason="rejected.extraction_error", detail=value,
                         meta={"extractor": "trafilatura"})

    def _died(self, i: int):
        """The child closed the pipe without answering: it crashed (a signal, an abort) or was
        killed by the kernel's OOM killer (SIGKILL that we did not send)."""
        w = self.workers[i]
        w.proc.join(5)
        code = w.proc.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            if -code == signal.SIGKILL:
                return self._failed(i, REASON_OOM, f"worker killed by {name} (out of memory)")
            return self._failed(i, REASON_CRASHED, f"worker died of {name}")
        return self._failed(i, REASON_CRASHED, f"worker exited with code {code}")

    def _failed(self, i: int, reason: str, detail: str):
        from curation.extract.html import Extracted
        self.counts[reason.split(".")[-1]] = self.counts.get(reason.split(".")[-1], 0) + 1
        w = self.workers[i]
        if w is not None:
            w.kill()
            self.workers[i] = None
            self.counts["restarts"] += 1
        return Extracted(None, reason=reason, detail=detail, meta={"extractor": "trafilatura"})
