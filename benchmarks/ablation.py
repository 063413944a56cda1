"""Curated vs raw: the same small model, the same token budget, two training mixes (issue #8).

    python benchmarks/ablation.py                       # out/ablation/, ~20-25 min on the loaded 2-core machine
    python benchmarks/ablation.py --tokens 262144 --plot docs/img/ablation.png

Arms (identical trainer recipe `configs/ablation/train.yaml`, identical token budgets per stage):
  raw      the pipeline's `documents` table (every extracted document of every source: no dedup,
           no filters, no scoring), passed through the same decontamination as the curated arm
           (the decontamination stage's library, `run_decontaminate`, with the pipeline's config:
           13-grams of every registered evaluation set, regions removed), then sampled uniformly
           by document, i.e. in natural proportions (`configs/ablation/raw.yaml`), for the
           pre-training stage and, with another seed, for the annealing stage;
  curated  the pipeline's `scored` table (documents -> dedup -> decontaminate -> filter -> score),
           kept rows only, through the default mix specs (`configs/mix/pretrain.yaml` then
           `configs/mix/anneal.yaml`), as the pipeline does.
So both arms are decontaminated the same way and the comparison measures curation, not leakage.
The decontamination counts of both arms (per benchmark: documents matched, items found,
documents dropped) are printed and go to results.json.

Evaluation text neither arm saw, tokenized with the same tokenizer (cl100k_base+llama3), written
as one shard directory in the trainer's format (`out/ablation/eval/`, one source per set):
  gsm8k_test   GSM8K test (question + answer); registered evaluation set, removed from both arms
               by decontamination; the pipeline trains on GSM8K train only
  math500      MATH500 (problem + solution); registered evaluation set, removed from both arms by
               decontamination; the pipeline's math source is the MATH training split
  code         a stable-hash slice (default 5%) of TheAlgorithms files, removed from both arms
               (not a registered evaluation set: removed by the check below)
  articles     main text of the English readability test pages (expected.html.gz; not in the crawl)
After decontamination, a check removes by document: a document whose whitespace-normalised text
starts with an evaluation key (a GSM8K question, a MATH500 problem, the first 2,000 characters of
a held-out code file or of an article) is dropped from copies of both arms' tables
(out/ablation/tables/), counted per reason (for GSM8K and MATH500 it should remove nothing).

Each arm's final (averaged) model is evaluated with the trainer's own `heldout_loss` (per-token
next-token loss, document-masked attention, pieces of the last training sequence length) on the
same rows of every set, and (`--harness-tasks`, default piqa,arc_easy) with the downstream
harness (`trainer.evaluate.evaluate_checkpoint`). Results: out/ablation/results.json, a printed
table, and a plot.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import copy  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from core.paths import PROJECT_ROOT, corpus_dir  # noqa: E402

EVAL_SETS = ("gsm8k_test", "math500", "code", "articles")
KEY_CHARS = 2000      # evaluation keys (code files, articles) are their first 2,000 normalised chars
MIN_KEY_CHARS = 20    # shorter keys would match too much; they are skipped (counted)


def log(msg: str) -> None:
    print(f"[ablation] {msg}", flush=True)


def norm(text: str) -> str:
    """Whitespace-normalised text: what extraction may change (line ends, indentation runs,
    leading/trailing space) does not decide whether a document is an evaluation text."""
    return " ".join((text or "").split())


def stable_fraction(*parts: str) -> float:
    h = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0 ** 64


# ------------------------------------------------------------------------ evaluation texts

def html_main_text(html: str) -> str:
    """Plain text of an already-extracted main-content HTML fragment, one block per line."""
    import lxml.html
    root = lxml.html.fromstring(html)
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    blocks = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "br", "tr",
              "blockquote", "section", "article", "ul", "ol", "table", "figure", "dd", "dt"}
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() in blocks:
            el.tail = "\u2029" + (el.tail or "")
            el.text = "\u2029" + (el.text or "")
    lines = [" ".join(x.split()) for x in root.text_content().split("\u2029")]
    return "\n".join(x for x in lines if x)


def eval_texts(corpus: Path, code_fraction: float) -> dict:
    """{set: [(order_key, text, exclusion_key)]}, each list in a stable hash order."""
    out = {k: [] for k in EVAL_SETS}
    with open(corpus / "math" / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out["gsm8k_test"].append((stable_fraction("gsm8k", r["question"]),
                                      r["question"] + "\n\n" + r["answer"], norm(r["question"])))
    with open(corpus / "math" / "math-hendrycks" / "math_oai" / "test.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out["math500"].append((stable_fraction("math500", r["problem"]),
                                   r["problem"] + "\n\n" + r["solution"], norm(r["problem"])))
    with gzip.open(corpus / "code" / "thealgorithms.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            h = stable_fraction("ablation-code", r["repo"], r["path"])
            if h < code_fraction and r["content"].strip():
                out["code"].append((h, r["content"], norm(r["content"])[:KEY_CHARS]))
    for page in sorted((corpus / "extraction" / "readability" / "pages").iterdir()):
        meta_p, exp_p = page / "expected-metadata.json", page / "expected.html.gz"
        if not exp_p.exists():
            continue
        meta = json.loads(meta_p.read_text(encoding="utf-8")) if meta_p.exists() else {}
        if not str(meta.get("lang") or "").lower().startswith("en"):
            continue
        text = html_main_text(gzip.open(exp_p, "rt", encoding="utf-8", errors="replace").read())
        if len(text) >= 200:
            out["articles"].append((stable_fraction("articles", page.name), text,
                                    norm(text)[:KEY_CHARS]))
    for k in out:
        out[k].sort(key=lambda t: t[0])
    return out


def write_eval_shards(texts: dict, out_dir: Path, seq_len: int, rows: int, max_doc_tokens: int) -> dict:
    """One shard directory, one source per set, at least `rows` rows each where the set has them;
    every text cut to its first `max_doc_tokens` tokens, so a set is many texts, not a few long ones."""
    from core.tokenizer import get_tokenizer
    from fixtures.demo_mix import write_token_shards
    tok = get_tokenizer("cl100k_base+llama3")
    docs, info = [], {}
    for name in EVAL_SETS:
        ds, n = [], 0
        for _, text, _ in texts[name]:
            ids = tok.encode_document(text)[:max_doc_tokens]   # as the mixer lays documents out
            ds.append(ids)
            n += len(ids) + 1
            if n >= (rows + 1) * seq_len:
                break
        docs.append(ds)
        info[name] = {"documents": len(ds), "available_documents": len(texts[name])}
    m = write_token_shards(out_dir, [{"name": n, "category": n} for n in EVAL_SETS], docs, seq_len,
                           stage="ablation_eval", rows_per_shard=4096,
                           vocab_size=tok.info()["vocab_size"], eot_id=tok.eot_id)
    for s in m["sources"]:
        info[s["name"]]["rows"] = min(rows, s["tokens"] // seq_len)
    return info


# ------------------------------------------------------------------ tables without eval text

def exclusion_fn(keys: dict):
    """mapInArrow function: (doc_id, text) batches -> (doc_id, reason) of the documents that start
    with an evaluation key (whitespace-normalised). `keys`: reason -> list of normalised keys."""
    def fn(batches):
        import pyarrow as pa
        index = {}
        for reason, ks in keys.items():
            for k in ks:
                index.setdefault(k[:MIN_KEY_CHARS], []).append((k, reason))
        for rb in batches:
            ids, reasons = [], []
            for d, t in zip(rb.column(0).to_pylist(), rb.column(1).to_pylist()):
                n = norm(t)
                for k, reason in index.get(n[:MIN_KEY_CHARS], ()):
                    if n.startswith(k):
                        ids.append(d)
                        reasons.append(reason)
                        break
            yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(reasons, pa.string())],
                                             names=["doc_id", "reason"])
    return fn


def contamination_counts(spark, contamination_path: str) -> dict:
    """Per benchmark, from a decontamination run's `_contamination` table (one row per (document,
    benchmark, item) match): documents matched, items found, documents dropped."""
    from pyspark.sql import functions as F
    from core.tables import read_table
    rows = (read_table(spark, contamination_path).groupBy("benchmark")
            .agg(F.countDistinct("doc_id").alias("docs"), F.countDistinct("item_id").alias("items"),
                 F.countDistinct(F.when(F.col("action") == "document_dropped", F.col("doc_id")))
                 .alias("dropped")).collect())
    return {r["benchmark"]: {"docs": int(r["docs"]), "items": int(r["items"]),
                             "dropped": int(r["dropped"])} for r in rows}


def decontaminate_raw(spark, documents: str, out: Path, cfg: dict | None, corpus, stats,
                      curated_table: str | None = None) -> tuple[str, dict]:
    """The raw arm's table through the decontamination stage's library, as the curated arm's went
    through the pipeline's stage. Returns (path, info); `info` says whether the config is the one
    the pipeline's `decontaminated` table was written with (its commit's config hash)."""
    from core.config import config_hash
    from core.tables import find_commit
    from curation.decontaminate.stage import resolve_config, run_decontaminate
    p = str(out / "raw_decontaminated")
    st = run_decontaminate(spark, documents, p, config=cfg, corpus=corpus)
    for k, v in st.counters.items():
        stats.set(f"raw.decontaminate.{k}", v)
    info = {"config_hash": config_hash(resolve_config(cfg)), "pipeline_config_hash": None}
    if curated_table:
        hit = find_commit(spark, curated_table, lambda m: m.get("curation.job") == "decontaminate")
        info["pipeline_config_hash"] = hit[1].get("config_hash") if hit else None
    info["same_config"] = info["config_hash"] == info["pipeline_config_hash"]
    return p, info


def clean_tables(spark, documents: str, scored: str, texts: dict, out: Path, stats,
                 original: str | None = None) -> dict:
    """Copies of both arms' tables without the documents that start with an evaluation key.
    `documents` is the raw arm's table (already decontaminated), `original` the table it came from
    (the pipeline's `documents`): a document matched in any of the three (by doc_id, which neither
    decontamination nor filtering changes) leaves both arms. Counts per table and reason."""
    from pyspark.sql import functions as F
    from core.tables import read_table, table_version, write_table
    keys, short = {}, 0
    for name in EVAL_SETS:
        ks = [k for _, _, k in texts[name] if len(k) >= MIN_KEY_CHARS]
        short += len(texts[name]) - len(ks)
        keys[f"eval.{name}"] = ks
    stats.set("eval_keys.too_short", short)
    fn = exclusion_fn(keys)
    checked = [("raw", documents), ("curated", scored)] + ([("original", original)] if original else [])
    excluded = None
    for label, src in checked:
        df = read_table(spark, src, version=table_version(spark, src))
        excl = df.select("doc_id", "text").mapInArrow(fn, "doc_id string, reason string")
        excl_path = str(out / f"excluded_{label}")
        write_table(excl.join(df.select("doc_id", "source"), "doc_id"), excl_path)
        excl = read_table(spark, excl_path)
        for reason in keys:
            stats.set(f"excluded.{label}.{reason}", 0)
        for r in excl.groupBy("reason", "source").count().collect():
            stats.add(f"excluded.{label}.{r['reason']}.{r['source']}", r["count"])
            stats.add(f"excluded.{label}.{r['reason']}", r["count"])
        ids = excl.select("doc_id")
        excluded = ids if excluded is None else excluded.union(ids)
    excluded = excluded.distinct()
    paths = {}
    for name, src in (("documents", documents), ("scored", scored)):
        df = read_table(spark, src, version=table_version(spark, src))
        kept = df.join(F.broadcast(excluded), "doc_id", "left_anti")
        p = str(out / name)
        write_table(kept, p)
        paths[name] = p
    # natural proportions of the raw table (characters per source; one small aggregation)
    for r in read_table(spark, paths["documents"]).groupBy("source").agg(
            F.count("*").alias("docs"), F.sum("n_chars").alias("chars")).collect():
        stats.set(f"raw.docs.{r['source']}", r["docs"])
        stats.set(f"raw.chars.{r['source']}", r["chars"])
    for r in read_table(spark, paths["scored"]).where("keep").groupBy("stream").count().collect():
        stats.set(f"curated.kept_docs.{r['stream']}", r["count"])
    return paths


def prepare_tables(spark, args, texts: dict, out: Path, stats) -> tuple[dict, dict]:
    """Both arms' tables: raw decontaminated like the curated arm, then both without the
    evaluation texts. Returns (paths, decontamination report of both arms)."""
    from core.config import load_config
    from core.tables import companion_path
    from curation.decontaminate.stage import DEFAULTS
    cfg = load_config(DEFAULTS, args.decontaminate_config) if args.decontaminate_config else None
    curated_table = args.decontaminated or str(Path(args.scored).parent / "decontaminated")
    raw_path, info = decontaminate_raw(spark, args.documents, out, cfg, args.corpus, stats,
                                       curated_table)
    if not info["same_config"]:
        log(f"WARNING: the raw arm's decontamination config ({info['config_hash']}) is not the one "
            f"of {curated_table} ({info['pipeline_config_hash']})")
    report = {"config": info,
              "raw": contamination_counts(spark, companion_path(raw_path, "_contamination")),
              "curated": contamination_counts(spark, companion_path(curated_table, "_contamination"))}
    paths = clean_tables(spark, raw_path, args.scored, texts, out, stats, original=args.documents)
    report["excluded"] = {k: v for k, v in stats.counters.items() if k.startswith("excluded.")}
    return paths, report


# ------------------------------------------------------------------------------ the mixes

def mix_specs(args, tables: dict) -> dict:
    from mixer.spec import load_spec
    pre = args.tokens - args.anneal_tokens
    raw = yaml.safe_load(open(PROJECT_ROOT / "configs" / "ablation" / "raw.yaml"))
    specs = {}
    for stage, seed, n in (("pretrain", 1234, pre), ("anneal", 4321, args.anneal_tokens)):
        s = copy.deepcopy(raw)
        s.update(stage=f"raw_{stage}", seed=seed, total_tokens=n, seq_len=args.seq_len,
                 input=tables["documents"])
        specs[("raw", stage)] = load_spec(s)
        c = yaml.safe_load(open(PROJECT_ROOT / "configs" / "mix" / f"{stage}.yaml"))
        c.update(total_tokens=n, seq_len=args.seq_len, input=tables["scored"],
                 on_infeasible="fail")
        for src in c["sources"]:   # the pipeline's mix_kept_only
            src["filter"] = f"keep AND ({src['filter']})" if src.get("filter") else "keep"
        specs[("curated", stage)] = load_spec(c)
    return specs


def build_mixes(spark, specs: dict, out: Path, reuse: bool) -> dict:
    from mixer.build import build_mix
    dirs, reports = {}, {}
    for (arm, stage), spec in specs.items():
        d = out / "mix" / arm / stage
        dirs[(arm, stage)] = d
        if reuse and (d / "manifest.json").exists():
            log(f"reusing {d}")
        else:
            log(f"mix {arm}/{stage}: {spec['total_tokens']:,} tokens")
            build_mix(spark, {**spec, "_resolved": True}, str(d))
        m = json.loads((d / "manifest.json").read_text())
        reports[f"{arm}/{stage}"] = {
            "tokens": m["total_tokens"], "rows": m["n_rows"],
            "sources": {s["name"]: {"tokens": s["tokens"], "epochs": s["epochs"]}
                        for s in m["sources"]}}
    return dirs, reports


# ---------------------------------------------------------------------------- training

def train_arms(args, dirs: dict, out: Path) -> dict:
    """Both arms at once, one torch thread each (the 2-core machine's best use)."""
    pre = args.tokens - args.anneal_tokens
    procs, logs = {}, {}
    for arm in ("raw", "curated"):
        od = out / "train" / arm
        if args.reuse and (od / "final" / "model.pt").exists():
            log(f"reusing {od}")
            continue
        cmd = [sys.executable, "-m", "trainer.run", "--config", str(args.recipe),
               "--out-dir", str(od), "--resume", "never",
               f"stages.0.data={dirs[(arm, 'pretrain')]}", f"stages.1.data={dirs[(arm, 'anneal')]}",
               f"stages.0.tokens={pre}", f"stages.1.tokens={args.anneal_tokens}"]
        od.mkdir(parents=True, exist_ok=True)
        logs[arm] = od / "train.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        log(f"train {arm}: {' '.join(cmd[1:])}  (log {logs[arm]})")
        procs[arm] = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=open(logs[arm], "w"),
                                      stderr=subprocess.STDOUT)
    t0, last = time.time(), {}
    while procs and any(p.poll() is None for p in procs.values()):
        time.sleep(15)
        for arm, p in procs.items():
            lines = [x for x in logs[arm].read_text(errors="replace").splitlines() if x.startswith("step ")]
            if lines and lines[-1] != last.get(arm):   # progress: each new step line once
                last[arm] = lines[-1]
                log(f"{arm}: {lines[-1]}  [{time.time() - t0:.0f} s]")
    for arm, p in procs.items():
        if p.returncode != 0:
            raise SystemExit(f"training {arm} failed (rc {p.returncode}); see {logs[arm]}")
    return {arm: time.time() - t0 for arm in procs}


def evaluate_arms(eval_dir: Path, eval_info: dict, out: Path, seq: int) -> dict:
    import torch
    from trainer.data import TokenShards
    from trainer.evaluate import heldout_loss
    from trainer.model import ModelConfig, build_model
    torch.set_num_threads(1)
    shards = TokenShards(eval_dir)
    rows = max(v["rows"] for v in eval_info.values())
    res = {}
    for arm in ("raw", "curated"):
        final = out / "train" / arm / "final"
        cfg = ModelConfig(**json.loads((final / "model_config.json").read_text()))
        if cfg.vocab_size != shards.vocab_size:
            raise SystemExit(f"{arm}: model vocab {cfg.vocab_size} != eval vocab {shards.vocab_size}")
        model = build_model(cfg, "cpu", seed=None)
        model.load_state_dict(torch.load(final / "model.pt", map_location="cpu", weights_only=True))
        model.set_attention_backend("sdpa")
        t = time.time()
        res[arm] = heldout_loss(model, shards, torch.device("cpu"), rows_per_source=rows,
                                batch_rows=4, seq_len=seq)
        log(f"eval {arm} ({time.time() - t:.0f} s): " + ", ".join(f"{k} {v:.4f}" for k, v in res[arm].items()))
    return res


def evaluate_harness(args, out: Path) -> dict:
    """Downstream tasks on both arms' final models, one after the other (trainer.evaluate)."""
    tasks = [t for t in (args.harness_tasks or "").split(",") if t]
    if not tasks:
        return {}
    import torch
    from trainer.evaluate import evaluate_checkpoint
    torch.set_num_threads(1)
    res = {}
    for arm in ("raw", "curated"):
        r = evaluate_checkpoint(out / "train" / arm, tasks, limit=args.harness_limit,
                                corpus=args.corpus, log=log)
        res[arm] = {t: {k: v for k, v in r["tasks"][t].items() if isinstance(v, (int, float))}
                    for t in tasks}
    return res


def plot(results: dict, path: Path, budget: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sets = list(EVAL_SETS) + ["all"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    w = 0.38
    for i, (arm, color) in enumerate((("raw", "#b0b0b0"), ("curated", "#2b6cb0"))):
        vals = [results[arm].get(s, float("nan")) for s in sets]
        bars = ax.bar([x + (i - 0.5) * w for x in range(len(sets))], vals, w, label=arm, color=color)
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v + 0.05, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(sets)), sets)
    ax.set_ylabel("held-out loss (nats/token)")
    lo = min(min(results[a].values()) for a in ("raw", "curated"))
    ax.set_ylim(max(0.0, lo - 1.0), None)
    ax.set_title(f"Curated vs raw: tiny model, {budget:,} training tokens per arm", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(PROJECT_ROOT / "out" / "ablation"))
    ap.add_argument("--documents", default=str(PROJECT_ROOT / "out" / "sample" / "documents"))
    ap.add_argument("--scored", default=str(PROJECT_ROOT / "out" / "sample" / "scored"))
    ap.add_argument("--decontaminated", default=None,
                    help="the pipeline's decontaminated table (default: beside --scored); its "
                         "_contamination table gives the curated arm's counts")
    ap.add_argument("--decontaminate-config", default=None,
                    help="decontamination config YAML for the raw arm (default: the stage's defaults, "
                         "as configs/pipeline.yaml's `decontaminate: null`)")
    ap.add_argument("--harness-tasks", default="piqa,arc_easy",
                    help="downstream tasks for both arms' final models ('' for none)")
    ap.add_argument("--harness-limit", type=int, default=300, help="first N items of every harness task")
    ap.add_argument("--corpus", default=str(corpus_dir()))
    ap.add_argument("--tokens", type=int, default=131072, help="training tokens per arm (both stages)")
    ap.add_argument("--anneal-tokens", type=int, default=32768, help="of which in the annealing stage")
    ap.add_argument("--seq-len", type=int, default=512, help="mix row length")
    ap.add_argument("--eval-seq", type=int, default=128, help="evaluation piece length (the last ramp's)")
    ap.add_argument("--eval-rows", type=int, default=20, help="rows of --seq-len tokens per evaluation set")
    ap.add_argument("--eval-doc-tokens", type=int, default=512, help="evaluation texts cut to this many tokens")
    ap.add_argument("--code-heldout", type=float, default=0.05, help="share of TheAlgorithms files held out")
    ap.add_argument("--recipe", default=str(PROJECT_ROOT / "configs" / "ablation" / "train.yaml"))
    ap.add_argument("--plot", default=None, help="PNG path for the plot (e.g. docs/img/ablation.png)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--reuse", action="store_true", help="keep mixes and trained models already in --work")
    args = ap.parse_args()
    out = Path(args.work).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    timing = {}

    from core.stats import RunStats
    stats = RunStats("ablation")
    texts = eval_texts(Path(args.corpus), args.code_heldout)
    eval_dir = out / "eval"
    eval_info = write_eval_shards(texts, eval_dir, args.seq_len, args.eval_rows, args.eval_doc_tokens)
    log("evaluation sets: " + ", ".join(f"{k} {v['rows']} rows ({v['documents']} of "
                                        f"{v['available_documents']} texts)" for k, v in eval_info.items()))
    timing["eval_sets_s"] = round(time.time() - t0, 1)

    from core.spark import get_spark
    spark = get_spark("ablation", master=args.master, shuffle_partitions=4)
    t = time.time()
    tables_dir = out / "tables"
    if args.reuse and (tables_dir / "scored" / "_delta_log").exists() \
            and (out / "decontamination.json").is_file():
        tables = {"documents": str(tables_dir / "documents"), "scored": str(tables_dir / "scored")}
        decon = json.loads((out / "decontamination.json").read_text())
        log("reusing the cleaned tables")
    else:
        tables, decon = prepare_tables(spark, args, texts, tables_dir, stats)
        (out / "decontamination.json").write_text(json.dumps(decon, indent=1))
    log("decontamination (documents matched / items found / documents dropped): " + "; ".join(
        f"{arm}: " + ", ".join(f"{b} {v['docs']}/{v['items']}/{v['dropped']}"
                               for b, v in sorted(decon[arm].items()))
        for arm in ("raw", "curated")))
    timing["clean_tables_s"] = round(time.time() - t, 1)
    t = time.time()
    dirs, mixes = build_mixes(spark, mix_specs(args, tables), out, args.reuse)
    timing["mixes_s"] = round(time.time() - t, 1)
    stats.record(spark, None)
    spark.stop()

    t = time.time()
    train_arms(args, dirs, out)
    timing["train_s"] = round(time.time() - t, 1)
    t = time.time()
    res = evaluate_arms(eval_dir, eval_info, out, args.eval_seq)
    timing["eval_s"] = round(time.time() - t, 1)
    t = time.time()
    harness = evaluate_harness(args, out)
    timing["harness_s"] = round(time.time() - t, 1)
    timing["total_s"] = round(time.time() - t0, 1)

    sets = list(EVAL_SETS) + ["all"]
    print("\n| eval set | tokens | raw | curated | curated - raw |\n| --- | --- | --- | --- | --- |")
    for s in sets:
        n = (eval_info[s]["rows"] * args.seq_len if s in eval_info
             else sum(v["rows"] for v in eval_info.values()) * args.seq_len)
        r, c = res["raw"].get(s), res["curated"].get(s)
        print(f"| {s} | {n:,} | {r:.4f} | {c:.4f} | {c - r:+.4f} |")
    if harness:
        print("\n| task | metric | raw | curated |\n| --- | --- | --- | --- |")
        for task in harness["raw"]:
            for m in ("acc", "acc_norm"):
                if m in harness["raw"][task]:
                    r, c = harness["raw"][task], harness["curated"][task]
                    print(f"| {task} | {m} | {r[m]:.4f} ± {r.get(m + '_stderr', float('nan')):.4f} "
                          f"| {c[m]:.4f} ± {c.get(m + '_stderr', float('nan')):.4f} |")
    print("\n" + json.dumps({"timing": timing, "mixes": mixes, "decontamination": decon}, indent=1))
    result = {"results": res, "harness": harness, "decontamination": decon, "eval_sets": eval_info, "timing": timing, "mixes": mixes,
              "counters": stats.counters, "tokens_per_arm": args.tokens,
              "anneal_tokens": args.anneal_tokens, "eval_seq": args.eval_seq, "seq_len": args.seq_len}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    if args.plot:
        plot(res, Path(args.plot), args.tokens)
        log(f"plot: {args.plot}")
    log(f"done in {timing['total_s']:.0f} s; results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
