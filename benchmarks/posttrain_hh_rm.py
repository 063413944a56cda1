"""Reward model on real preference data: HH-RLHF harmless-base (the sample corpus), tiny model, CPU.

    python benchmarks/posttrain_hh_rm.py [--out runs/bench-hh-rm] [--pretrain-steps 150] [--epochs 1]
        [--tables out/posttrain]

1. The preference table: trainer.posttrain_data.convert_hh + curate (format, PII, repetition,
   exact/near dedup, <= --max-len tokens) on posttrain/hh-rlhf/harmless-base/test.jsonl.gz, split by
   a hash of the prompt into train and held-out (10%). With --tables, the Delta tables
   preferences/train and preferences/heldout written by `jobs/posttrain_data.py` instead (run it
   with --max-tokens equal to --max-len), read without Spark.
2. A pre-trained start: the tiny preset trained with the project's trainer (trainer.loop.Trainer
   on a token-shard mix written by fixtures/demo_mix.py) on the *training* dialogues rendered in the
   chat format, each prompt with both of its replies (no preference label is used). The ids are the
   project tokenizer's renumbered onto those the HH texts use (CompactTokenizer), so the output
   layer is small enough for a loaded CPU. --pretrain-steps 0 starts from random weights.
3. The reward model (tiny LM + scalar head, Bradley-Terry), and its held-out pairwise accuracy next
   to the length-only baseline (direction fitted on the training pairs) and chance (0.5).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench-hh-rm")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pretrain-steps", type=int, default=40)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--max-len", type=int, default=384)
    ap.add_argument("--tables", default=None, help="folder of the posttrain_data job's Delta tables")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from core.paths import corpus_dir
    from core.tokenizer import get_tokenizer
    from fixtures import demo_mix as tt
    from trainer.config import load
    from trainer.loop import Trainer
    from trainer.chat_format import encode_dialog
    from trainer.model import build_model, preset_config
    from trainer.posttrain import CompactTokenizer, OptimSettings, load_model, save_model
    from trainer.posttrain_data import convert_hh, curate, read_records
    from trainer.reward import RewardConfig, RewardModel, evaluate_reward, train_reward
    corpus = Path(a.corpus) if a.corpus else corpus_dir()
    out = Path(a.out)
    t0 = time.perf_counter()
    if a.tables:
        train = [r for r in read_records(Path(a.tables) / "preferences" / "train") if r["source"].startswith("hh-rlhf")]
        held = [r for r in read_records(Path(a.tables) / "preferences" / "heldout") if r["source"].startswith("hh-rlhf")]
        kept, why = train + held, {"from": a.tables}
        print(f"HH-RLHF harmless-base from the Delta tables of {a.tables}: train {len(train)}, held-out {len(held)}")
    else:
        recs, bad = convert_hh(corpus / "posttrain/hh-rlhf/harmless-base/test.jsonl.gz", heldout_share=0.1)
        kept, why = curate(recs, "preferences", get_tokenizer(), max_tokens=a.max_len)
        train = [r for r in kept if r["split"] == "train"]
        held = [r for r in kept if r["split"] == "heldout"]
        t1 = time.perf_counter()
        print(f"HH-RLHF harmless-base: {len(recs)} converted ({sum(bad.values())} unparsable), {len(kept)} after "
              f"curation (dropped: {json.dumps(why)}); train {len(train)}, held-out {len(held)} [{t1 - t0:.0f} s]")

    dialogs = [[*r["prompt"], {"role": "assistant", "content": c}] for r in kept for c in r["responses"]]
    tok = CompactTokenizer.from_texts([m["content"] for d in dialogs for m in d])
    print(f"compact vocabulary: {len(tok.base_ids)} ids of cl100k_base+llama3 (padded to {tok.vocab_size})")
    final = out / "pretrain" / "final"
    if a.pretrain_steps == 0:
        cfg = preset_config("tiny", vocab_size=tok.vocab_size, max_seq_len=a.max_len)
        save_model(final, build_model(cfg, seed=0), {"step": "random init"}, tokenizer=tok)
    elif not (final / "model.pt").is_file():
        docs = [encode_dialog(tok, d).ids for d, r in zip(dialogs, [r for r in kept for _ in r["responses"]])
                if r["split"] == "train"]
        tt.write_token_shards(out / "mix" / "pretrain", [{"name": "hh", "category": "dialogue"}], [docs],
                              seq_len=256, vocab_size=tok.vocab_size, eot_id=tok.eot_id, rows_per_shard=4096)
        steps = a.pretrain_steps
        cfg = load(None, [
            f"out_dir={out / 'pretrain'}", "device=cpu", "precision=fp32", "tensorboard=false", "log_every=50",
            f"cpu_threads={a.threads}", f"model={{preset: tiny, vocab_size: {tok.vocab_size}, max_seq_len: "
            f"{max(a.max_len, 256)}}}", "optim.lr=3e-3", "micro_batch_tokens=4096",
            "ramps=[{from_tokens: 0, batch_tokens: 4096}]",
            f"stages=[{{name: pretrain, data: {out / 'mix' / 'pretrain'}, tokens: {steps * 4096}, "
            f"warmup_tokens: {steps * 4096 // 10}, average_last: 1, checkpoint_every_steps: {steps}}}]",
            "eval.every_steps=0", "checkpoint.every_steps=100000"])
        Trainer(cfg, log=lambda m: None).run()
        tok.save(final / "tokenizer.json")
        losses = [json.loads(x)["loss"] for x in (out / "pretrain" / "metrics.jsonl").read_text().splitlines()
                  if '"kind": "train"' in x]
        print(f"pre-trained tiny on the training dialogues: {steps} steps x 4,096 tokens, loss "
              f"{losses[0]:.3f} -> {losses[-1]:.3f}")
    t2 = time.perf_counter()
    lm = load_model(final)
    rm = RewardModel(lm)
    rc = RewardConfig(batch_records=8, epochs=a.epochs, max_len=a.max_len, log_every=100,
                      optim=OptimSettings(lr=a.lr, warmup_steps=20))
    before = evaluate_reward(rm, tok, held, train, a.max_len)
    res = train_reward(rm, tok, train, rc)
    t3 = time.perf_counter()
    after = evaluate_reward(rm, tok, held, train, a.max_len)
    tr = evaluate_reward(rm, tok, train[:300], train, a.max_len)
    print(f"reward model: {res['steps']} steps, loss {res['first_loss']:.4f} -> {res['last_loss']:.4f} "
          f"[{t3 - t2:.0f} s]")
    print(f"held-out pairs: {after['pairs']}; accuracy {after['accuracy']:.3f} (untrained head "
          f"{before['accuracy']:.3f}, chance 0.500); length baseline ({after['length_baseline_direction']} "
          f"wins) {after['length_baseline_accuracy']:.3f}; first 300 training pairs {tr['accuracy']:.3f}")
    (out / "result.json").write_text(json.dumps({"heldout": after, "train300": tr, "train": res,
                                                 "dropped": why}, indent=1))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
