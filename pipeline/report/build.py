"""Collect the figures the report shows (small Spark aggregations over the pipeline's tables, the
stats tables, the mix reports and the trainer's metrics JSONL), draw them, and write the HTML.

Every section renders only what exists and says "not available" (with the reason) otherwise, so the
report works on a partial run. No table is collected to the driver: counts, histograms and the few
example rows per removal reason are computed in Spark and come back as a handful of rows.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from core.outcomes import as_rejects
from core.tables import has_delta_log
from pipeline.report import plots
from pipeline.report.html import render

SIGNAL_SKIP = {"n_chars", "n_words", "n_bytes_raw", "input_offset", "cluster_id", "lines_removed",
               "lang_score", "quality", "domain_doc_count"}


class NotAvailable(Exception):
    """A section has nothing to show; the message says why."""


def _tables(cfg: dict) -> dict[str, str]:
    from pipeline.config import table_path
    t = {name: table_path(cfg, name) for name in ("documents", "deduped", "filtered", "scored")}
    t["decontaminated"] = table_path(cfg, "decontaminated") if "decontaminated" in cfg["tables"] \
        else None
    t["extracted"] = {s["name"]: table_path(cfg, "extracted", s["name"]) for s in cfg["sources"]}
    t["mix"] = {m: table_path(cfg, "mix", m) for m in cfg["mix"]}
    t["train"] = table_path(cfg, "train")
    return t


def _require(path: str) -> None:
    if not has_delta_log(path) and "://" not in path:
        raise NotAvailable(f"table {path} does not exist yet")


def _delta(spark, path: str):
    from core.tables import read_table
    _require(path)
    return read_table(spark, path)


def _companion(spark, main: str, suffix: str):
    """The companion table (`_rejects`, `_duplicates`) of the run that wrote `main`."""
    from core.tables import read_companion
    _require(main + suffix)
    return read_companion(spark, main, suffix)


def _latest_counters(spark, stats_path: str) -> dict[str, float]:
    """Counters of the latest run in a stats table (one small query)."""
    from pyspark.sql import functions as F
    df = _delta(spark, stats_path)
    last = df.orderBy(F.col("recorded_at").desc()).select("run_id").first()
    if last is None:
        raise NotAvailable(f"stats table {stats_path} is empty")
    return {r.metric: float(r.value) for r in df.where(F.col("run_id") == last[0])
            .select("metric", "value").collect()}


# ----------------------------------------------------------------------------- sections

def flow(spark, t: dict) -> dict:
    """Documents and bytes (UTF-8 of the text) at each stage's output."""
    from pyspark.sql import functions as F
    rows = []

    def add(label, df):
        r = df.agg(F.count(F.lit(1)).alias("n"),
                   F.sum(F.octet_length("text")).alias("b")).first()
        rows.append({"stage": label, "documents": int(r.n), "bytes": int(r.b or 0)})

    ex = [p for p in t["extracted"].values() if has_delta_log(p)]
    if ex:
        from functools import reduce
        dfs = [_delta(spark, p).select("text") for p in ex]
        add("extracted", reduce(lambda a, b: a.unionByName(b), dfs))
    for label, key in (("documents", "documents"), ("deduped", "deduped"),
                       ("decontaminated", "decontaminated"), ("filtered", "filtered"),
                       ("scored", "scored")):
        if not t.get(key):
            continue
        try:
            df = _delta(spark, t[key])
        except NotAvailable:
            continue
        if "keep" in df.columns:
            add(f"{label} (all rows)", df)
            add(f"{label} (kept)", df.where("keep"))
        else:
            add(label, df)
    if not rows:
        raise NotAvailable("no stage has written its table yet")
    return {"rows": rows}


def removals(spark, t: dict, examples: int) -> dict:
    """Removals by reason: extraction rejects, dedup removals, filter drop reasons; each with a few
    example lines (the first line of the text of the examples with the smallest doc_id)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    out: dict = {"groups": []}

    def grouped(rejects, with_examples: bool):
        """One stage's rejects (core.outcomes.REJECT_COLUMNS): counts and example lines per reason."""
        counts = {r[0]: int(r[1]) for r in rejects.groupBy("reason").count().collect()}
        ex: dict[str, list[str]] = {}
        if with_examples:
            w = Window.partitionBy("reason").orderBy("key")
            sample = (rejects.withColumn("_rk", F.row_number().over(w))
                      .where(F.col("_rk") <= examples)
                      .select("reason", F.substring("example", 1, 400).alias("t")).collect())
            for r in sample:
                line = next((ln.strip() for ln in (r.t or "").splitlines() if ln.strip()), "")
                ex.setdefault(r[0], []).append(line[:160])
        return counts, ex

    def add_group(stage, rejects, with_examples):
        counts, ex = grouped(rejects, with_examples)
        out["groups"].append({"stage": stage, "counts": dict(sorted(counts.items(),
                                                                    key=lambda kv: -kv[1])),
                              "examples": ex})

    for name, p in t["extracted"].items():
        try:
            rj = _companion(spark, p, "_rejects")
        except NotAvailable:
            continue
        text = "detail" if "detail" in rj.columns else None
        add_group(f"extract ({name})", as_rejects(rj, "extract", "reason", "input_offset", text),
                  text is not None)
    try:
        dup = _companion(spark, t["deduped"], "_duplicates")
        rc = next((c for c in ("reason", "dup_reason", "kind", "step") if c in dup.columns), None)
        if rc:
            text = "text" if "text" in dup.columns else None
            add_group("dedup", as_rejects(dup, "dedup", rc, "doc_id" if "doc_id" in dup.columns
                                          else rc, text), text is not None)
    except NotAvailable:
        pass
    try:
        st = _latest_counters(spark, t["deduped"] + "_stats")
        rem = {k: v for k, v in st.items() if any(w in k for w in ("removed", "dropped", "duplicate"))}
        if rem:
            out["groups"].append({"stage": "dedup (stats)", "counts": rem, "examples": {}})
    except NotAvailable:
        pass
    try:
        f = _delta(spark, t["filtered"])
        if "drop_reasons" in f.columns:
            add_group("filter", as_rejects(f, "filter", "drop_reasons", "doc_id", "text",
                                           explode=True), True)
    except NotAvailable:
        pass
    if not out["groups"]:
        raise NotAvailable("no rejects, duplicates or filter decisions recorded yet")
    return out


def signal_thresholds(cfg: dict) -> dict[str, list[tuple[float, str]]]:
    """Signal column -> [(threshold, rule)] from the filter stage's own rules and config."""
    try:
        from core.config import merge
        from curation.filters.decide import active_rules
        from curation.filters.stage import DEFAULTS
        from pipeline.config import stage_config
        fc = merge(DEFAULTS, stage_config(cfg, "filter"))
        out: dict[str, list] = {}
        for rule, thr in active_rules(fc):
            if rule.kind in ("max", "min", "atleast") and isinstance(thr, (int, float)):
                out.setdefault(rule.column, []).append((float(thr), f"{rule.kind} {thr:g}"))
        return out
    except Exception:  # the filter stage is not in this checkout: histograms without lines
        return {}


def histograms(spark, df, columns: list[str], bins: int) -> dict[str, dict]:
    """Histograms of numeric columns in two Spark passes (1st/99th percentile range, then one
    grouped count over all columns); values outside the range land in the edge bins."""
    from pyspark.sql import functions as F
    if not columns:
        return {}
    qs = df.agg(*[F.percentile_approx(F.col(c).cast("double"), [0.0, 0.99], 1000).alias(c)
                  for c in columns]).first()
    ranges = {}
    for c in columns:
        q = qs[c]
        if q is None or q[0] is None:
            continue
        lo, hi = float(q[0]), float(q[1])
        ranges[c] = (lo, hi if hi > lo else lo + 1.0)
    if not ranges:
        return {}
    structs = [F.struct(F.lit(c).alias("c"),
                        F.least(F.lit(bins - 1), F.greatest(F.lit(0), F.floor(
                            (F.col(c).cast("double") - lo) / ((hi - lo) / bins)).cast("int"))).alias("b"))
               for c, (lo, hi) in ranges.items()]
    rows = (df.select(F.explode(F.array(*structs)).alias("s")).where(F.col("s.b").isNotNull())
            .groupBy("s.c", "s.b").count().collect())
    out = {c: {"edges": [lo + i * (hi - lo) / bins for i in range(bins + 1)], "counts": [0] * bins}
           for c, (lo, hi) in ranges.items()}
    for r in rows:
        out[r.c]["counts"][int(r.b)] = int(r["count"])
    return out


def signals(spark, t: dict, cfg: dict, bins: int) -> dict:
    from pyspark.sql import types as T
    df = _delta(spark, t["filtered"])
    numeric = (T.IntegerType, T.LongType, T.DoubleType, T.FloatType, T.ShortType)
    cols = [f.name for f in df.schema.fields if isinstance(f.dataType, numeric)
            and f.name not in SIGNAL_SKIP and not f.name.startswith("_")]
    if not cols:
        raise NotAvailable(f"{t['filtered']} has no numeric signal columns")
    thr = signal_thresholds(cfg)
    cols.sort(key=lambda c: (c not in thr, c))
    return {"hists": histograms(spark, df, cols, bins), "thresholds": thr}


def categorical(spark, t: dict) -> dict:
    from pyspark.sql import functions as F
    df = _delta(spark, t["scored"])
    if "keep" in df.columns:
        df = df.where("keep")
    out = {}
    if "lang" in df.columns:
        out["langs"] = [(r[0] or "null", int(r[1])) for r in
                        df.groupBy("lang").count().orderBy(F.desc("count"), "lang").limit(25).collect()]
    if "stream" in df.columns:
        out["streams"] = [(r[0] or "null", int(r[1]), int(r[2] or 0)) for r in
                          df.groupBy("stream").agg(F.count(F.lit(1)), F.sum(F.octet_length("text")))
                          .orderBy("stream").collect()]
    if "quality" in df.columns:
        # a probability: fixed [0, 1] bins, all streams in one grouped count
        bins = 20
        b = F.least(F.lit(bins - 1), F.greatest(F.lit(0), F.floor(F.col("quality") * bins).cast("int")))
        grp = F.col("stream") if "stream" in df.columns else F.lit("all")
        rows = (df.where(F.col("quality").isNotNull()).select(grp.alias("s"), b.alias("b"))
                .groupBy("s", "b").count().collect())
        edges = [i / bins for i in range(bins + 1)]
        by: dict[str, list[int]] = {}
        for r in rows:
            by.setdefault(r.s or "null", [0] * bins)[int(r.b)] += int(r["count"])
        if by:
            out["quality"] = {"edges": edges, "counts": [sum(v[i] for v in by.values())
                                                         for i in range(bins)]}
            out["quality_by_stream"] = {s: {"edges": edges, "counts": v} for s, v in sorted(by.items())}
    if not out:
        raise NotAvailable(f"{t['scored']} has no lang, stream or quality column")
    return out


def mixes(t: dict) -> dict:
    out = {}
    for name, d in t["mix"].items():
        p = Path(d) / "mix_report.json"
        if p.is_file():
            out[name] = json.loads(p.read_text())
    if not out:
        raise NotAvailable("no mix_report.json under " + ", ".join(t["mix"].values()))
    return out


def training(t: dict) -> dict:
    p = Path(t["train"]) / "metrics.jsonl"
    if not p.is_file():
        raise NotAvailable(f"{p} does not exist yet")
    recs = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    train = [r for r in recs if r.get("kind") == "train"]
    evals = [r for r in recs if r.get("kind") != "train" and
             any(k.startswith(("heldout_loss/", "loss/")) or k.endswith("_loss") for k in r)]
    if not train:
        raise NotAvailable(f"{p} holds no training steps")
    return {"train": train, "eval": evals, "path": str(p)}


def evaluation(t: dict) -> dict:
    """Downstream results of the run's evaluated checkpoints (python -m trainer.evaluate) and the
    scaling sweeps under <work_dir>/scaling/ (python -m trainer.scaling)."""
    from trainer.evaluate import comparison_rows, find_results
    res = find_results(t["train"])
    sweeps = sorted(p.parent for p in (Path(t["train"]).parent / "scaling").glob("*/results.jsonl"))
    if not res and not sweeps:
        raise NotAvailable(f"no evaluated checkpoint under {t['train']} (python -m trainer.evaluate --checkpoint "
                 f"{t['train']}) and no scaling sweep")
    out: dict = {"sweeps": [str(s) for s in sweeps]}
    if res:
        out["header"], out["rows"] = comparison_rows(res)
    fits = {}
    for s in sweeps:
        f = s / "fit.json"
        if f.is_file():
            fits[s.name] = json.loads(f.read_text()).get("isoflop", {})
    out["fits"] = fits
    return out


def contamination(spark, t: dict, examples: int) -> dict:
    """Per registered benchmark: items in the index (and those too short for an n-gram),
    contaminated documents and distinct items found (the decontamination stage's latest counters),
    matches by training source (the `_contamination` table), and a few matches with their
    overlap."""
    from pyspark.sql import functions as F
    if not t.get("decontaminated"):
        raise NotAvailable("the pipeline has no decontamination stage")
    st = _latest_counters(spark, t["decontaminated"] + "_stats")
    benches = sorted(k.split(".", 2)[2] for k in st if k.startswith("index.items."))
    rows = [{"benchmark": b, "items": int(st.get(f"index.items.{b}", 0)),
             "unchecked": int(st.get(f"index.unchecked_items.{b}", 0)),
             "docs": int(st.get(f"contaminated_docs.{b}", 0)),
             "items_found": int(st.get(f"items_found.{b}", 0))} for b in benches]
    out = {"rows": rows, "totals": {k: st.get(k, 0) for k in (
        "docs.in", "docs.contaminated", "docs.out", "chars.removed", "dropped.too_many_pieces",
        "dropped.too_short", "dropped.contaminated", "index.ngrams")}, "by_source": [],
        "examples": []}
    try:
        rec = _delta(spark, t["decontaminated"] + "_contamination")
        out["by_source"] = [[r.benchmark, r.source, int(r.n)] for r in rec.groupBy(
            "benchmark", "source").agg(F.countDistinct("doc_id").alias("n"))
            .orderBy("benchmark", "source").collect()]
        out["examples"] = [[r.benchmark, r.item_id, r.source, r.matched_ngrams,
                            round(float(r.overlap), 3), r.action]
                           for r in rec.orderBy(F.col("overlap").desc(), "doc_id")
                           .limit(max(1, examples) * 5).collect()]
    except NotAvailable:
        pass
    return out


# ----------------------------------------------------------------------------- driver

def collect(spark, cfg: dict) -> dict:
    """Every section's data (or the reason it is not available)."""
    t = _tables(cfg)
    rep = cfg.get("report", {})
    sec: dict = {}

    def run(name, fn, *a):
        try:
            sec[name] = fn(*a)
        except NotAvailable as e:
            sec[name] = {"na": str(e)}
        except Exception as e:  # a section must never take the whole report down
            sec[name] = {"na": f"error while reading: {type(e).__name__}: {e}"[:500]}
    run("flow", flow, spark, t)
    run("removals", removals, spark, t, rep.get("examples_per_reason", 3))
    run("contamination", contamination, spark, t, rep.get("examples_per_reason", 3))
    run("signals", signals, spark, t, cfg, rep.get("histogram_bins", 40))
    run("categorical", categorical, spark, t)
    run("mixes", mixes, t)
    run("training", training, t)
    run("evaluation", evaluation, t)
    return sec


def draw(sec: dict, out_dir: str) -> dict[str, list[str]]:
    """PNG files per section (file names relative to out_dir)."""
    os.makedirs(out_dir, exist_ok=True)
    figs: dict[str, list[str]] = {}

    def f(key, name):
        figs.setdefault(key, []).append(name)
        return os.path.join(out_dir, name)

    if "rows" in sec.get("flow", {}):
        rows = sec["flow"]["rows"]
        plots.twin_bars(f("flow", "flow.png"), [r["stage"] for r in rows],
                        [r["documents"] for r in rows], [r["bytes"] / 1e6 for r in rows],
                        "Documents and bytes through the stages", "documents", "MB of text")
    rows = sec.get("contamination", {}).get("rows")
    if rows:
        plots.bars(f("contamination", "contamination.png"), [r["benchmark"] for r in rows],
                   {"contaminated documents": [r["docs"] for r in rows],
                    "items found": [r["items_found"] for r in rows]},
                   "Decontamination per benchmark", "count")
    for i, g in enumerate(sec.get("removals", {}).get("groups", [])):
        items = list(g["counts"].items())[:30]
        if items:
            plots.bars(f("removals", f"removals_{i}.png"), [k for k, _ in items],
                       {"documents": [v for _, v in items]}, f"Removals: {g['stage']}",
                       "count", horizontal=True)
    sig = sec.get("signals", {})
    for c, h in sig.get("hists", {}).items():
        plots.histogram(f("signals", f"signal_{c}.png"), h["edges"], h["counts"], c,
                        sig.get("thresholds", {}).get(c, []))
    cat = sec.get("categorical", {})
    if cat.get("langs"):
        plots.bars(f("langs", "languages.png"), [k for k, _ in cat["langs"]],
                   {"documents": [v for _, v in cat["langs"]]}, "Languages (top 25, kept documents)",
                   "documents", log=True)
    if cat.get("streams"):
        s = cat["streams"]
        plots.twin_bars(f("streams", "streams.png"), [x[0] for x in s], [x[1] for x in s],
                        [x[2] / 1e6 for x in s], "Streams", "documents", "MB of text")
    if cat.get("quality"):
        q = cat["quality"]
        plots.histogram(f("quality", "quality.png"), q["edges"], q["counts"],
                        "Quality score (all streams)", [(0.5, "mix: quality >= 0.5")], "quality")
        for s, h in cat.get("quality_by_stream", {}).items():
            plots.histogram(f("quality", f"quality_{s}.png"), h["edges"], h["counts"],
                            f"Quality: {s}", [(0.5, "0.5")], "quality")
    for name, r in sec.get("mixes", {}).items():
        if isinstance(r, dict) and r.get("categories"):
            cats = sorted(r["categories"])
            plots.bars(f("mixes", f"mix_{name}.png"), cats,
                       {"target": [r["categories"][c]["target_share"] for c in cats],
                        "achieved": [r["categories"][c]["achieved_share"] for c in cats]},
                       f"Mix '{name}': target vs achieved token shares", "share of tokens")
    tr = sec.get("training", {})
    if tr.get("train"):
        tx = [r["step"] for r in tr["train"]]
        xlabel = "step"
        switches = []
        for a, b in zip(tr["train"], tr["train"][1:]):
            if a.get("stage") != b.get("stage"):
                switches.append((b["step"], str(b.get("stage"))))
        series = {"train loss": (tx, [r.get("loss") for r in tr["train"]])}
        for s, (xs, ys) in _eval_series(tr["eval"]).items():
            series[f"held-out {s}"] = (xs, ys)
        plots.lines(f("training", "loss.png"), series, "Training and held-out loss", xlabel,
                    "loss (nats/token)", switches)
        if any("lr" in r for r in tr["train"]):
            plots.lines(f("lr", "lr.png"), {"lr": (tx, [r.get("lr") for r in tr["train"]])},
                        "Learning-rate schedule", xlabel, "learning rate", switches)
    for s in sec.get("evaluation", {}).get("sweeps", []):
        try:
            from trainer.scaling import plot_sweep
            plot_sweep(s, f("evaluation", f"isoflop_{Path(s).name}.png"))
        except Exception as e:  # a bad sweep must not take the report down
            figs["evaluation"].pop()
            print(f"[report] scaling plot of {s} failed: {type(e).__name__}: {e}", flush=True)
    return figs


def _eval_series(evals: list[dict]) -> dict[str, tuple[list, list]]:
    """Held-out loss per stream (and per eval kind other than plain "eval") against the step, from
    the trainer's records {"kind": ..., "step": n, "heldout_loss/<stream>": x}."""
    out: dict[str, tuple[list, list]] = {}
    for r in evals:
        x = r.get("step")
        suffix = "" if r.get("kind") == "eval" else f" ({r.get('kind')})"
        vals = {}
        for k, v in r.items():
            if k.startswith(("heldout_loss/", "loss/")):
                vals[k.split("/", 1)[1] + suffix] = v
            elif k.endswith("_loss") and k != "train_loss":
                vals[k[:-5] + suffix] = v
        for s, v in vals.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                out.setdefault(s, ([], []))
                out[s][0].append(x)
                out[s][1].append(v)
    return out


def build_report(spark, cfg: dict, out_html: str) -> dict:
    """Collect, draw and write the report; returns {"sections": {name: available?}, "path": ...}."""
    out_dir = os.path.dirname(out_html)
    sec = collect(spark, cfg)
    figs = draw(sec, out_dir)
    html = render(sec, figs, cfg)
    tmp = out_html + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.replace(tmp, out_html)
    avail = {k: "na" not in v for k, v in sec.items()}
    print(f"[report] {out_html}: " + ", ".join(f"{k} {'ok' if v else 'n/a'}" for k, v in avail.items()),
          flush=True)
    return {"sections": avail, "path": out_html, "figures": sum(len(v) for v in figs.values())}
