"""The HTML report on a small work dir of real Delta tables written here (a partial pipeline run:
no deduped table, so that section must say "not available"), rendered in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from pipeline import load_pipeline_config
from core.tables import write_table

TEXTS = ["Cookie policy\nAccept all cookies", "A short page", "Der Bundestag hat heute beschlossen.",
         "def add(a, b):\n    return a + b", "Natalia sold 48 clips in April.", "Click here to win"]


@pytest.fixture(scope="module")
def work(spark, tmp_path_factory):
    """A work dir holding what a partial pipeline run leaves behind, in the real formats: five
    tiny Delta tables (one file each), a mix report and a metrics file, then the report built once."""
    w = tmp_path_factory.mktemp("report_work")
    cfg = load_pipeline_config(None, {"work_dir": str(w), "sources": [
        {"name": "web", "paths": ["crawl/*.warc.gz"]}]})
    ex = str(w / "extracted" / "web")
    docs = spark.createDataFrame([(f"d{i}", "web", t) for i, t in enumerate(TEXTS)],
                                 "doc_id string, source string, text string").coalesce(1)
    write_table(docs, ex)
    write_table(spark.createDataFrame([("web", 10, "rejected.too_large", "payload 9 MB"),
                                       ("web", 20, "skipped.request", None)],
                                      "source string, input_offset long, reason string, detail string")
                .coalesce(1),
                ex + "_rejects")
    write_table(docs, str(w / "documents"))
    filt = spark.createDataFrame(
        [(f"d{i}", "web", t, len(t.split()), 0.05 * i, i > 2, [] if i > 2 else ["gopher.min_words"])
         for i, t in enumerate(TEXTS)],
        "doc_id string, source string, text string, gopher_word_count int, dup_line_frac double, "
        "keep boolean, drop_reasons array<string>")
    write_table(filt.coalesce(1), str(w / "filtered"))
    scored = spark.createDataFrame(
        [("d3", TEXTS[3], True, "en", "code", 0.7), ("d4", TEXTS[4], True, "en", "math", 0.9),
         ("d5", TEXTS[5], True, "de", "multilingual", 0.2)],
        "doc_id string, text string, keep boolean, lang string, stream string, quality double")
    write_table(scored.coalesce(1), str(w / "scored"))
    # what the decontamination stage leaves: its stats (counters per benchmark) and the record
    from core.stats import RunStats
    dst = RunStats("decontaminate")
    dst.update({"docs.in": 6, "docs.contaminated": 1, "docs.out": 6, "index.ngrams": 1000,
                "index.items.gsm8k_test": 1319, "index.unchecked_items.gsm8k_test": 0,
                "contaminated_docs.gsm8k_test": 1, "items_found.gsm8k_test": 1,
                "index.items.piqa": 1838, "index.unchecked_items.piqa": 153,
                "contaminated_docs.piqa": 0, "items_found.piqa": 0})
    dst.record(spark, str(w / "decontaminated_stats"), echo=False)
    from curation.decontaminate.stage import CONTAMINATION
    write_table(spark.createDataFrame([("d4", "web", "gsm8k_test", "1044", 3, 40, 0.075,
                                        "region_removed", None, 120)], CONTAMINATION).coalesce(1),
                str(w / "decontaminated_contamination"))
    mix = w / "mix" / "pretrain"
    mix.mkdir(parents=True)
    cats = {"general": (0.5, 0.49), "math": (0.25, 0.26), "code": (0.17, 0.17), "multilingual": (0.08, 0.08)}
    (mix / "mix_report.json").write_text(json.dumps({
        "stage": "pretrain", "n_rows": 100, "seq_len": 512, "total_tokens": 51200, "rescaled": False,
        "window_rows": 64, "max_abs_share_error": 0.01, "max_window_deviation": 0.02,
        "categories": {c: {"target_share": t, "achieved_share": a, "tokens": 1} for c, (t, a) in cats.items()},
        "sources": [{"name": c, "category": c, "target_share": t, "achieved_share": a, "tokens": 10,
                     "epochs": 1.0, "documents": 3} for c, (t, a) in cats.items()]}))
    tr = w / "train"
    tr.mkdir()
    with open(tr / "metrics.jsonl", "w") as f:
        for s in range(1, 41):
            stage = "pretrain" if s <= 30 else "anneal"
            f.write(json.dumps({"kind": "train", "step": s, "stage": stage, "loss": 10 / s ** 0.3,
                                "lr": 3e-3 * min(1, s / 5), "tokens": s * 2048}) + "\n")
            if s % 10 == 0:
                f.write(json.dumps({"kind": "eval", "step": s, "stage": stage,
                                    "heldout_loss/general": 9 / s ** 0.2,
                                    "heldout_loss/code": 8 / s ** 0.2}) + "\n")
    # an evaluated final model (python -m trainer.evaluate writes final/eval/results.json)
    (tr / "final" / "eval").mkdir(parents=True)
    (tr / "final" / "eval" / "results.json").write_text(json.dumps({
        "checkpoint": str(tr / "final"), "label": "train/final", "step": None,
        "tasks": {"piqa": {"kind": "mc", "n": 100, "acc": 0.55, "acc_norm": 0.57}}}))
    from pipeline.report import build_report
    out = str(w / "report" / "index.html")
    res = build_report(spark, cfg, out)
    return {"dir": w, "html": out, "result": res, "cfg": cfg}


def test_sections_and_figures(work):
    res = work["result"]
    assert res["sections"] == {"flow": True, "removals": True, "contamination": True,
                               "signals": True, "categorical": True, "mixes": True, "training": True,
                               "evaluation": True}
    html = open(work["html"]).read()
    assert ">Decontamination per benchmark</h2>" in html
    assert "<td>gsm8k_test</td><td>1,319</td><td>0</td><td>1</td><td>1</td>" in html
    assert "<td>piqa</td><td>1,838</td><td>153</td><td>0</td><td>0</td>" in html
    assert "<td>1044</td><td>web</td><td>3</td><td>0.0750</td><td>region_removed</td>" in html
    for h in ("Documents and bytes through each stage", "Removals by reason",
              "Filter signals with thresholds", "Languages", "Streams", "Quality-score distribution",
              "Target vs achieved mix", "Training and held-out loss per stream", "Learning-rate schedule",
              "Downstream evaluation and scaling laws"):
        assert f">{h}</h2>" in html
    assert "<td>acc_norm</td><td>0.5700</td>" in html
    # removal reasons with their example lines, from the rejects table and the filter decisions
    assert "rejected.too_large" in html and "payload 9 MB" in html
    assert "gopher.min_words" in html and "Cookie policy" in html
    # every referenced PNG exists and is a real image
    pngs = re.findall(r'<img src="([^"]+)"', html)
    assert len(pngs) >= 9
    for p in pngs:
        b = open(work["dir"] / "report" / p, "rb").read(8)
        assert b == b"\x89PNG\r\n\x1a\n", p
    # the threshold of the filter rule is drawn on its signal (gopher.min_words = 50)
    assert "signal_gopher_word_count.png" in html


def test_documents_flow_counts(work):
    # the flow table of the page built once by the fixture (no second pass over the tables)
    html = open(work["html"]).read()
    sec = html.split(">Documents and bytes through each stage</h2>")[1].split("</section>")[0]
    rows = {m[0]: int(m[1].replace(",", "")) for m in
            re.findall(r"<tr><td>([^<]+)</td><td>([\d,]+)</td><td>[\d,]+</td></tr>", sec)}
    assert rows == {"extracted": 6, "documents": 6, "filtered (all rows)": 6, "filtered (kept)": 3,
                    "scored (all rows)": 3, "scored (kept)": 3}


def test_missing_inputs_say_not_available(spark, tmp_path):
    from pipeline.report import build_report
    cfg = load_pipeline_config(None, {"work_dir": str(tmp_path)})
    res = build_report(spark, cfg, str(tmp_path / "report" / "index.html"))
    assert not any(res["sections"].values())
    html = open(tmp_path / "report" / "index.html").read()
    assert html.count('class="na">not available') == 12  # 11 sections + pipeline state
    assert "<img" not in html


def test_contamination_counters_without_the_record_table(spark, tmp_path):
    """The decontamination stage's counters alone (its `_contamination` table not written, or no
    such stage in the config) give the per-benchmark rows, or say "not available"."""
    from core.stats import RunStats
    from pipeline.report.build import NotAvailable, _tables, contamination
    cfg = load_pipeline_config(None, {"work_dir": str(tmp_path)})
    st = RunStats("decontaminate")
    st.update({"docs.in": 6, "index.items.gsm8k_test": 1319, "contaminated_docs.gsm8k_test": 1,
               "items_found.gsm8k_test": 1})
    st.record(spark, str(tmp_path / "decontaminated_stats"), echo=False)
    t = _tables(cfg)
    sec = contamination(spark, t, 3)
    assert sec["rows"] == [{"benchmark": "gsm8k_test", "items": 1319, "unchecked": 0, "docs": 1,
                            "items_found": 1}]
    assert sec["by_source"] == [] and sec["examples"] == []
    with pytest.raises(NotAvailable, match="no decontamination stage"):
        contamination(spark, dict(t, decontaminated=None), 3)


def _browser():
    for b in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(b):
            return shutil.which(b)
    return None


def test_report_in_headless_chromium(work):
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium on PATH: run `bash setup/install_browser.sh` to enable this test")
    with tempfile.TemporaryDirectory() as prof:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={prof}",
               "--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom",
               "file://" + work["html"]]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom = p.stdout
    assert "<h1>Curation pipeline report</h1>" in dom, p.stderr[-2000:]
    headings = re.findall(r"<h2>([^<]+)</h2>", dom)
    assert "Removals by reason" in headings and "Learning-rate schedule" in headings
    assert len(headings) == 12
    # the page's own script ran after load and saw every plot decoded with a real width
    m = re.search(r'id="plots-status"[^>]*>(\d+) of (\d+) plots loaded', dom)
    assert m, dom[:2000]
    assert m.group(1) == m.group(2) and int(m.group(2)) >= 9
    widths = [int(x) for x in re.findall(r'data-loaded="(\d+)"', dom)]
    assert len(widths) == int(m.group(2)) and min(widths) > 100
    mix_section = dom.split("<h2>Target vs achieved mix</h2>")[1].split("</section>")[0]
    assert "not available" not in mix_section and "pretrain: 100 rows" in mix_section
