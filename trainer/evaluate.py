"""Evaluation of a trained model.

``heldout_loss`` (used by the training loop): mean next-token loss per held-out stream.

``python -m trainer.evaluate --checkpoint DIR [--checkpoint DIR2 ...] --tasks piqa,arc_easy,...``
runs the downstream harness (``trainer/harness.py``) on each checkpoint: zero-shot multiple choice
(``piqa``, ``arc_easy``, ``winogrande``: acc, acc_norm), ``lambada`` (acc, perplexity),
``gsm8k_nll`` / ``math500_nll`` (NLL of the correct answer per character and byte), ``gsm8k_em``
(k-shot greedy exact match), ``heldout`` (bits per byte of every held-out stream of the run's
mixes) and user tasks (``--task-spec FILE``). Results go to ``<checkpoint>/eval/``: one JSON per
task (reused when the model, the task and its settings are unchanged: a killed evaluation resumes
at the first unfinished task) and ``results.json`` with every task's metrics. With several
checkpoints (or ``--compare``) a table compares them.

Examples:
    python -m trainer.evaluate --checkpoint runs/tiny --tasks piqa,arc_easy,lambada --limit 200
    python -m trainer.evaluate --checkpoint runs/tiny --task-spec my_task.yaml
    python -m trainer.evaluate --compare runs/tiny/final runs/other/final
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainer.data import TokenShards  # noqa: E402


@torch.no_grad()
def heldout_loss(model, shards: TokenShards, device: torch.device, rows_per_source: int = 16,
                 batch_rows: int = 8, seq_len: int | None = None, autocast_dtype=None) -> dict[str, float]:
    """Mean next-token loss on the first ``rows_per_source`` held-out rows of every stream.

    Keys: each stream's category (or name), and ``all`` (token-weighted over the streams). The same
    rows are used every time, so values are comparable across steps and runs.
    """
    was_training = model.training
    model.eval()
    totals: dict[str, list[float]] = {}
    try:
        for si, name in enumerate(shards.sources):
            rows = shards.rows_of_source(si)[:rows_per_source]
            if len(rows) == 0:
                continue
            loss_sum, n_tok = 0.0, 0
            for k in range(0, len(rows), batch_rows):
                b = shards.batch(rows[k:k + batch_rows], seq_len)
                ctx = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else _null()
                with ctx:
                    loss = model(b.x.to(device), b.y.to(device), doc_ids=b.doc_ids.to(device), reduction="sum")
                loss_sum += float(loss)
                n_tok += b.y.numel()
            agg = totals.setdefault(name, [0.0, 0])
            agg[0] += loss_sum
            agg[1] += n_tok
    finally:
        model.train(was_training)
    out = {k: v[0] / v[1] for k, v in totals.items() if v[1]}
    if totals:
        s, n = sum(v[0] for v in totals.values()), sum(v[1] for v in totals.values())
        out["all"] = s / n if n else math.nan
    return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# ---- the downstream harness on a checkpoint ----------------------------------------------------
HARNESS_VERSION = 1
DEFAULT_TASKS = ["piqa", "arc_easy", "winogrande", "lambada", "gsm8k_nll", "math500_nll", "heldout"]
TABLE_METRICS = {"mc": ["acc", "acc_norm"], "lambada": ["acc", "perplexity"],
                 "answer_nll": ["nll_per_char", "bpb"], "gsm8k_em": ["exact_match_flexible", "exact_match_strict"]}


def _model_fingerprint(path: Path) -> str:
    st = (path / "model.pt").stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _key(**kw) -> str:
    return hashlib.sha256(json.dumps(kw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _heldout_dirs(trained) -> list[Path]:
    out = []
    for st in (trained.state.get("config") or {}).get("stages", []):
        hp = Path(st.get("data", "")) / "heldout"
        if (hp / "manifest.json").is_file() and hp not in out:
            out.append(hp)
    return out


def evaluate_checkpoint(checkpoint, tasks: list[str], limit: int | None = None, task_specs: list[str] = (),
                        batch_tokens: int = 8192, device: str = "cpu", corpus=None, gsm8k_shots: int = 5,
                        max_new_tokens: int = 256, force: bool = False, log=print) -> dict:
    """Run ``tasks`` (+ user ``task_specs``) on one checkpoint; returns and writes ``eval/results.json``."""
    from evalsets import load_registry
    from core.tokenizer import DEFAULT_NAME, get_tokenizer
    from trainer import harness as H
    from trainer.loading import load_model
    dev = torch.device(device)
    model, t = load_model(checkpoint, dev)
    tok_name = (t.tokenizer or {}).get("name") or DEFAULT_NAME
    tok = get_tokenizer(tok_name)
    if tok.encoding.n_vocab > model.cfg.vocab_size:
        raise ValueError(f"tokenizer {tok_name} has {tok.encoding.n_vocab} ids, the model {model.cfg.vocab_size}")
    scorer = H.Scorer(model, tok, dev, batch_tokens)
    if corpus is None:
        from core.paths import corpus_dir
        corpus = corpus_dir()
    registry = load_registry(corpus=Path(corpus))
    edir = t.path / "eval"
    edir.mkdir(exist_ok=True)
    fp = _model_fingerprint(t.path)
    results = {"checkpoint": str(t.path), "label": t.label, "step": t.step, "tokenizer": tok_name,
               "model_config": t.model_config.__dict__, "tasks": {}}
    rp = edir / "results.json"
    if rp.is_file():
        old = json.loads(rp.read_text())
        if old.get("model_fingerprint") == fp:
            results["tasks"].update(old.get("tasks", {}))
    results["model_fingerprint"] = fp
    todo = [(name, None) for name in tasks] + [(None, spec) for spec in task_specs]
    for name, spec_path in todo:
        spec = H.load_user_spec(spec_path) if spec_path else None
        tname = spec["name"] if spec else name
        key = _key(v=HARNESS_VERSION, task=tname, limit=limit, fp=fp, tok=tok.fingerprint, spec=spec,
                   shots=gsm8k_shots if tname == "gsm8k_em" else None,
                   mnt=max_new_tokens if tname == "gsm8k_em" else None)
        cache = edir / f"{tname}.json"
        if not force and cache.is_file():
            c = json.loads(cache.read_text())
            if c.get("key") == key:
                results["tasks"][tname] = c["metrics"]
                log(f"[evaluate] {t.label} {tname}: cached")
                continue
        t0 = time.perf_counter()
        if spec:
            res = H.run_mc(scorer, H.user_mc_items(spec, limit))
            res["metrics"]["kind"] = "mc"
        elif name == "heldout":
            dirs = _heldout_dirs(t)
            if not dirs:
                log(f"[evaluate] {t.label} heldout: skipped (the run's mixes are not on disk)")
                continue
            streams = {}
            for d in dirs:
                r = H.heldout_bpb(model, TokenShards(d), tok, dev, rows_per_source=limit)
                streams.update({k if len(dirs) == 1 else f"{d.parent.name}/{k}": v for k, v in r.items()})
            res = {"metrics": {"kind": "heldout", **{f"bpb/{k}": v["bpb"] for k, v in streams.items()},
                               "streams": streams}, "items": []}
        else:
            if name not in H.TASKS:
                raise ValueError(f"unknown task {name!r}; known: {sorted(H.TASKS)} + heldout, or --task-spec")
            td = H.TASKS[name]
            items = registry[td.evalset].read()[:limit]
            if td.kind == "mc":
                res = H.run_mc(scorer, td.build(items), td.norm)
            elif td.kind == "lambada":
                res = H.run_lambada(scorer, items)
            elif td.kind == "answer_nll":
                res = H.run_answer_nll(scorer, items)
            elif td.kind == "gsm8k_em":
                res = H.run_gsm8k_em(scorer, items, Path(corpus), gsm8k_shots, max_new_tokens)
            res["metrics"]["kind"] = td.kind
        res["metrics"]["seconds"] = round(time.perf_counter() - t0, 2)
        cache.write_text(json.dumps({"key": key, "task": tname, "metrics": res["metrics"],
                                     "items": res["items"]}, indent=1))
        results["tasks"][tname] = res["metrics"]
        rp.write_text(json.dumps(results, indent=1, default=str))
        log(f"[evaluate] {t.label} {tname}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in res["metrics"].items() if isinstance(v, float) and k != "seconds"))
    rp.write_text(json.dumps(results, indent=1, default=str))
    return results


def fmt_metric(v: float) -> str:
    """The printed precision: 4 decimals, 4 significant digits from 1,000 on (perplexities)."""
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.4g}"


def comparison_rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison: one row per task metric, one column per checkpoint."""
    labels = [r.get("label") or r["checkpoint"] for r in results]
    rows = []
    tasks = []
    for r in results:
        for tname in r["tasks"]:
            if tname not in tasks:
                tasks.append(tname)
    for tname in tasks:
        kinds = [r["tasks"][tname].get("kind") for r in results if tname in r["tasks"]]
        kind = kinds[0] if kinds else None
        if kind == "heldout":
            keys = sorted({k for r in results for k in r["tasks"].get(tname, {}) if k.startswith("bpb/")})
        else:
            keys = TABLE_METRICS.get(kind, ["acc"])
        for k in keys:
            vals = []
            for r in results:
                v = r["tasks"].get(tname, {}).get(k)
                vals.append("" if v is None else fmt_metric(v))
            if any(vals):
                rows.append([tname, k] + vals)
        n = [r["tasks"].get(tname, {}).get("n") for r in results]
        if any(x is not None for x in n) and kind != "heldout":
            rows.append([tname, "n"] + ["" if x is None else str(x) for x in n])
    return ["task", "metric"] + labels, rows


def comparison_table(results: list[dict]) -> str:
    """The comparison as a markdown table."""
    head, rows = comparison_rows(results)
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | " + " | ".join("---:" for _ in head[2:]) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def find_results(run_dir) -> list[dict]:
    """Every evaluated checkpoint of a run (its checkpoints in step order, then final/)."""
    run = Path(run_dir)
    paths = sorted(run.glob("checkpoints/step_*/eval/results.json")) + sorted(run.glob("final/eval/results.json"))
    return [json.loads(p.read_text()) for p in paths]


def read_results(path) -> dict:
    from trainer.loading import resolve
    p = resolve(path) / "eval" / "results.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: not evaluated yet (python -m trainer.evaluate --checkpoint {path})")
    return json.loads(p.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="run directory, its final/, or a checkpoint directory (repeatable)")
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                    help=f"comma-separated tasks (default {','.join(DEFAULT_TASKS)}; also gsm8k_em)")
    ap.add_argument("--task-spec", action="append", default=[], help="a user task spec (YAML/JSON; repeatable)")
    ap.add_argument("--limit", type=int, default=None, help="first N items of every task (held-out: rows per stream)")
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--corpus", default=None, help="sample corpus (default: $CURATION_CORPUS or ../shared/corpus)")
    ap.add_argument("--gsm8k-shots", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--force", action="store_true", help="recompute cached tasks")
    ap.add_argument("--compare", nargs="+", default=None, help="print the table of already evaluated checkpoints")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.compare:
        print(comparison_table([read_results(c) for c in a.compare]))
        return 0
    if not a.checkpoint:
        ap.error("--checkpoint (or --compare) is required")
    tasks = [x for x in a.tasks.split(",") if x] if a.tasks else []
    all_res = [evaluate_checkpoint(c, tasks, a.limit, a.task_spec, a.batch_tokens, a.device, a.corpus,
                                   a.gsm8k_shots, a.max_new_tokens, a.force) for c in a.checkpoint]
    print(comparison_table(all_res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
