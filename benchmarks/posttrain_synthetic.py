"""Post-training measured on a synthetic verifiable task, tiny models on CPU.

    python benchmarks/posttrain_synthetic.py [--task sort] [--out runs/bench-posttrain] [--threads 1]

1. Generates the task (trainer/synthetic.py): training prompts, held-out prompts (disjoint), a
   small gold SFT set, and plain-text worked examples for pre-training (held-out questions
   excluded from all of them).
2. Pre-trains a tiny Llama with the project's trainer (trainer.loop.Trainer, a token-shard mix
   written with fixtures/demo_mix.py) on the plain-text examples: the "pre-trained start".
   Ids are the project tokenizer's (cl100k_base+llama3), renumbered onto the ids the task uses
   (trainer.posttrain.CompactTokenizer) so the output layer is small.
3. Runs the post-training rounds (trainer/rounds.py) from configs/posttrain/synthetic_sort.yaml:
   bootstrap SFT -> [collect -> reward model -> rejection sampling -> SFT -> DPO x runs -> average].
4. Prints the figures: exact match after each step, reward-model held-out accuracy vs the length
   baseline, DPO held-out preference accuracy and margin vs the SFT model.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from fixtures import demo_mix as tt  # noqa: E402
from trainer.chat_format import render_text  # noqa: E402
from trainer.posttrain import CompactTokenizer  # noqa: E402
from trainer.posttrain_data import write_table  # noqa: E402
from trainer.synthetic import make_prompts, pretrain_texts, sft_records  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def build_data(task: str, out: Path, n_train: int, n_heldout: int, n_gold: int, n_pretrain: int,
               min_len: int, max_len: int) -> CompactTokenizer:
    held = make_prompts(task, n_heldout, seed=1, min_len=min_len, max_len=max_len)
    for h in held:
        h["split"] = "heldout"
    hq = {h["messages"][0]["content"] for h in held}
    train = make_prompts(task, n_train, seed=2, min_len=min_len, max_len=max_len, exclude=hq)
    gold = sft_records(make_prompts(task, n_gold, seed=3, min_len=min_len, max_len=max_len, exclude=hq))
    pre = pretrain_texts(task, n_pretrain, seed=4, min_len=min_len, max_len=max_len, exclude=hq)
    texts = pre + [render_text(g["messages"]) for g in gold] + [p["messages"][0]["content"] + " " + p["answer"]
                                                                for p in train + held]
    tok = CompactTokenizer.from_texts(texts + [str(d) for d in range(10)] + [" ".join("0123456789")])
    write_table(out / "prompts_train.parquet", train, "prompts")
    write_table(out / "prompts_heldout.parquet", held, "prompts")
    write_table(out / "sft_gold.parquet", gold, "sft")
    (out / "pretrain.txt").write_text("\n\n".join(pre[:5]))
    tt.write_token_shards(out / "mix" / "pretrain", [{"name": task, "category": "math"}],
                          [[tok.encode(t) for t in pre]], seq_len=128, vocab_size=tok.vocab_size,
                          eot_id=tok.eot_id, rows_per_shard=4096)
    return tok


def pretrain(out: Path, mix: Path, tok: CompactTokenizer, tokens: int, threads: int) -> Path:
    from trainer.config import load
    from trainer.loop import Trainer
    cfg = load(None, [
        f"out_dir={out}", "device=cpu", "precision=fp32", "tensorboard=false", "log_every=100",
        f"cpu_threads={threads}", f"model={{preset: tiny, n_layers: 4, vocab_size: {tok.vocab_size}, "
        "max_seq_len: 128, tie_embeddings: false}", "optim.lr=3e-3", "micro_batch_tokens=4096",
        "ramps=[{from_tokens: 0, batch_tokens: 4096}]",
        f"stages=[{{name: pretrain, data: {mix}, tokens: {tokens}, warmup_tokens: {tokens // 20}, "
        f"average_last: 2, checkpoint_every_steps: 1000}}]",
        "eval.every_steps=0", "checkpoint.every_steps=100000", "checkpoint.keep_last=2"])
    # the last two checkpoints of the stage are averaged into final/: checkpoint the last 2 steps
    steps = tokens // 4096
    cfg.stages[0].checkpoint_every_steps = 1 if steps <= 2 else steps - 1
    res = Trainer(cfg, log=lambda m: None).run()
    tok.save(out / "final" / "tokenizer.json")
    return out / "final", res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="sort")
    ap.add_argument("--out", default="runs/bench-posttrain")
    ap.add_argument("--config", default=str(ROOT / "configs/posttrain/synthetic_sort.yaml"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-heldout", type=int, default=300)
    ap.add_argument("--n-gold", type=int, default=150)
    ap.add_argument("--n-pretrain", type=int, default=6000)
    ap.add_argument("--pretrain-tokens", type=int, default=600_000)
    ap.add_argument("--min-len", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=7)
    ap.add_argument("--fresh", action="store_true", help="delete --out first")
    ap.add_argument("overrides", nargs="*", help="rounds config overrides (key=value)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    if a.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tok = build_data(a.task, out / "data", a.n_train, a.n_heldout, a.n_gold, a.n_pretrain, a.min_len, a.max_len)
    t1 = time.perf_counter()
    if (out / "pretrain" / "final" / "model.pt").is_file():
        init = out / "pretrain" / "final"
    else:
        init, _ = pretrain(out / "pretrain", out / "data" / "mix" / "pretrain", tok, a.pretrain_tokens, a.threads)
    t2 = time.perf_counter()
    from trainer.rounds import Rounds, load_config
    d = out / "data"
    cfg = load_config(a.config, [f"out_dir={out / 'rounds'}", f"init={init}", f"cpu_threads={a.threads}",
                                 f"data.sft={d / 'sft_gold.parquet'}", f"data.prompts={d / 'prompts_train.parquet'}",
                                 f"data.heldout_prompts={d / 'prompts_heldout.parquet'}"] + a.overrides)
    rep = Rounds(cfg, log=lambda m: print(m, flush=True) if m.startswith("[rounds]") else None).run()
    t3 = time.perf_counter()
    print(f"\n== {a.task}: vocab {tok.vocab_size} (compact), data {t1 - t0:.0f} s, pre-training {t2 - t1:.0f} s, "
          f"post-training {t3 - t2:.0f} s")
    print(f"{'step':<16}{'round':>6}{'exact match':>13}  other")
    for s in rep["steps"]:
        other = ""
        if s["step"] == "reward" and s.get("heldout"):
            h = s["heldout"]
            other = (f"RM held-out acc {h['accuracy']:.3f} vs length {h['length_baseline_accuracy']:.3f} "
                     f"({h['pairs']} pairs)")
        if s["step"] in ("dpo", "average") and s.get("heldout"):
            h = s["heldout"]
            other = (f"DPO acc {h['dpo_accuracy']:.3f} margin {h['dpo_mean_margin']:+.3f}; logprob acc "
                     f"{h['sft_logprob_accuracy']:.3f} (SFT) -> {h['logprob_accuracy']:.3f} ({h['pairs']} pairs)")
        if s.get("seconds") is not None:
            other += f"  [{s['seconds']:.0f} s]"
        if s["step"] == "collect":
            other = (f"sample acc {s['sample_accuracy']:.3f}, best-of-{s['k']} {s['best_of_k']:.3f}, "
                     f"pairs {s['pairs']}, held-out pairs {s['heldout_pairs']}")
        if s["step"] == "collect_dpo":
            other = f"fresh pairs from the SFT model {s['pairs']}, held-out pairs {s['heldout_pairs']}"
        if s["step"] == "rejection":
            other = f"kept {s['kept']}/{s['of']}"
        em = s.get("exact_match")
        print(f"{s['step']:<16}{s.get('round', ''):>6}{'' if em is None else f'{em:.3f}':>13}  {other}")
    (out / "summary.json").write_text(json.dumps(rep["steps"], indent=1, default=str))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
