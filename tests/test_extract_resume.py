"""Per-file resume: a run killed with SIGKILL (driver and JVM, mid-run) and re-run with the same
arguments skips the files it had committed and ends with the same tables as a clean run."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.tables import read_table
from curation.extract.stage import progress_path_of, run_extract
from warc_fixtures import page, write_warc

ROOT = Path(__file__).resolve().parent.parent
CFG = {"resume": {"batch_files": 1}, "split_bytes": 1 << 30}


def _rows(spark, path):
    df = read_table(spark, path)
    out = []
    for r in df.collect():
        d = r.asDict()
        if "extraction" in d and d["extraction"] is not None:
            d["extraction"] = tuple(sorted((k, v) for k, v in d["extraction"].items() if k != "ms"))
        out.append(tuple(sorted(d.items(), key=lambda kv: kv[0])))
    return sorted(out, key=repr)


def test_killed_run_resumes_to_the_same_table(spark, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for f in range(3):
        write_warc(inp / f"part-{f}.warc.gz",
                   [(f"http://site{f}.example/{i}", page(10 * f + i), None) for i in range(3)])
    pattern = str(inp / "*.warc.gz")
    killed = str(tmp_path / "killed" / "documents")
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from core.spark import get_spark
        from curation.extract.stage import run_extract
        spark = get_spark("resume-kill-test", master="local[1]", memory="1g", shuffle_partitions=2)
        run_extract(spark, {pattern!r}, {killed!r}, config={CFG!r}, source="crawl")
        print("RUN FINISHED", file=sys.stderr, flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=str(ROOT))
    seen = []
    try:
        t0 = time.time()
        for line in proc.stderr:
            seen.append(line)
            if "batch 1/3 committed" in line or "RUN FINISHED" in line or time.time() - t0 > 600:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)      # the driver and its JVM, no clean-up
        proc.wait()
    assert any("batch 1/3 committed" in s for s in seen), "".join(seen[-30:])
    assert not any("batch 3/3 committed" in s or "RUN FINISHED" in s for s in seen)
    # the killed run left part of the table and its progress log
    assert read_table(spark, progress_path_of(killed)).where("event = 'file'").count() >= 1

    st = run_extract(spark, pattern, killed, config=CFG, source="crawl")
    assert 1 <= st.counters["files.resumed"] <= 2
    assert st.counters["batches"] == 3 - st.counters["files.resumed"]

    # an uninterrupted run (one batch: batching does not change the result)
    clean = str(tmp_path / "clean" / "documents")
    st_clean = run_extract(spark, pattern, clean, config={"split_bytes": 1 << 30}, source="crawl")
    assert st_clean.counters["files.resumed"] == 0 and st_clean.counters["documents"] == 9
    assert _rows(spark, killed) == _rows(spark, clean)
    assert _rows(spark, killed + "_rejects") == _rows(spark, clean + "_rejects")


def test_progress_table_of_another_tool_is_refused(spark, tmp_path):
    """`<output>_progress` is extract's own like its outputs: a Delta table some other tool made
    there is refused before any work (named, with its owner) and left as it was, unless
    overwrite, which replaces it with extract's progress table (a new run, nothing resumed)."""
    from core.tables import OutputRefused, table_properties
    inp = tmp_path / "in"
    inp.mkdir()
    write_warc(inp / "part-0.warc.gz", [(f"http://site.example/{i}", page(i), None) for i in range(2)])
    out = str(tmp_path / "documents")
    spark.range(4).write.format("delta").save(progress_path_of(out))
    with pytest.raises(OutputRefused, match=r"documents_progress: it holds a Delta table "
                                            r"\(version 0\) not written by this project"):
        run_extract(spark, str(inp / "*.warc.gz"), out, config=CFG, source="crawl")
    assert read_table(spark, progress_path_of(out)).count() == 4
    assert not os.path.exists(out) and not os.path.exists(out + "_rejects")

    st = run_extract(spark, str(inp / "*.warc.gz"), out, config=CFG, source="crawl", overwrite=True)
    assert st.counters["documents"] == 2 and st.counters["files.resumed"] == 0
    assert table_properties(spark, progress_path_of(out))["curation.job"] == "extract.progress"
    assert [r.event for r in read_table(spark, progress_path_of(out)).orderBy("seq").collect()] == \
        ["start", "file", "complete"]
