"""Trainer throughput on CPU: tokens/s and achieved FLOP/s of a preset, against this machine's own
matmul FLOP/s measured in the same run (before and after the training steps).

Real tokens: a mix written from the sample corpus with cl100k (fixtures.demo_mix.write_demo_mix),
read through the trainer's reader; a real optimizer step (AdamW, clipping) per measured step.

    python benchmarks/trainer_cpu_throughput.py --preset 20M --seq-len 128 --rows 2 --steps 3
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from core.paths import corpus_dir  # noqa: E402
from trainer.data import TokenShards  # noqa: E402
from trainer.flops import measure_matmul_flops  # noqa: E402
from trainer.model import PRESETS, build_model, preset_config  # noqa: E402
from trainer.optim import build_optimizer, clip_gradients  # noqa: E402
from fixtures.demo_mix import write_demo_mix  # noqa: E402


def preset_table():
    print(f"{'preset':<12} {'params':>10} {'non-emb':>10} {'GFLOP/token @2048':>18}")
    for name in PRESETS:
        m = build_model(preset_config(name), "meta")
        print(f"{name:<12} {m.num_params() / 1e6:>9.1f}M {m.num_params(True) / 1e6:>9.1f}M "
              f"{m.estimate_flops(2047) / 1e9:>18.2f}")


def bench(preset: str, shards: TokenShards, seq_len: int, rows: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_model(preset_config(preset, vocab_size=shards.vocab_size, max_seq_len=shards.seq_len), seed=0)
    model.set_attention_backend("sdpa", "cpu")
    opt = build_optimizer(model, 1e-3)
    times = []
    for s in range(steps + 1):                     # step 0 warms up (allocations, first-call costs)
        b = shards.batch(range(s * rows, (s + 1) * rows), seq_len)
        t0 = time.perf_counter()
        loss = model(b.x, b.y, doc_ids=b.doc_ids)
        loss.backward()
        clip_gradients(model, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if s:
            times.append(time.perf_counter() - t0)
    tokens = rows * shards.seq_len                 # tokens consumed per step (as the trainer counts them)
    trained = b.y.numel()                          # positions with a loss
    dt = sorted(times)[len(times) // 2]            # median step
    flops_per_token = model.estimate_flops(seq_len - 1)
    return {"preset": preset, "params_M": model.num_params() / 1e6, "tokens_per_step": tokens,
            "step_s": dt, "tokens_per_s": tokens / dt, "flops_per_s": trained * flops_per_token / dt,
            "flops_per_token": flops_per_token}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="20M")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rows", type=int, default=2, help="rows of 128 tokens per step")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--also", default="tiny", help="a second preset measured in the same run ('' = none)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    preset_table()
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_mix(corpus_dir(), tmp, seq_len=128, per_source=60, heldout_per_source=2)
        shards = TokenShards(os.path.join(tmp, "pretrain"))
        mm0 = measure_matmul_flops(1024, seconds=2.0)
        results = [bench(a.preset, shards, a.seq_len, a.rows, a.steps)]
        if a.also:
            results.append(bench(a.also, shards, a.seq_len, a.rows, a.steps))
        mm1 = measure_matmul_flops(1024, seconds=2.0)
    mm = (mm0 + mm1) / 2
    print(f"\nmatmul fp32 1024^3: {mm0 / 1e9:.1f} GFLOP/s before, {mm1 / 1e9:.1f} GFLOP/s after (mean {mm / 1e9:.1f})")
    for r in results:
        print(f"{r['preset']:>5} ({r['params_M']:.1f}M params): {r['tokens_per_step']} tokens/step, "
              f"median step {r['step_s']:.2f}s, {r['tokens_per_s']:.0f} tokens/s, "
              f"{r['flops_per_token'] / 1e6:.0f} MFLOP/token, achieved {r['flops_per_s'] / 1e9:.2f} GFLOP/s "
              f"= {100 * r['flops_per_s'] / mm:.0f}% of the machine's matmul FLOP/s")


if __name__ == "__main__":
    main()
