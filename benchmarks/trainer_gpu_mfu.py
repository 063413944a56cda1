"""MFU of the 125M and 350M presets on a GPU: seq 2,048, bf16 autocast, torch.compile, flex attention
masked at document boundaries. Exits with a message where there is no CUDA device.

    python benchmarks/trainer_gpu_mfu.py --presets 125M 350M --batch-rows 16 --steps 20
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from trainer.flops import gpu_peak_flops  # noqa: E402
from trainer.model import build_model, preset_config  # noqa: E402
from trainer.optim import build_optimizer, clip_gradients  # noqa: E402
from trainer.parallel import maybe_compile  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["125M", "350M"])
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch-rows", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--attention", default="flex")
    ap.add_argument("--docs-per-row", type=int, default=4)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: GPU MFU not measured")
        return
    name = torch.cuda.get_device_name()
    peak = gpu_peak_flops(name)
    print(f"{name}: peak bf16 {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s")
    T = a.seq_len
    for preset in a.presets:
        torch.manual_seed(0)
        model = build_model(preset_config(preset, max_seq_len=T), "cuda", seed=0)
        model.set_attention_backend(a.attention, "cuda")
        maybe_compile(model, True)
        opt = build_optimizer(model, 3e-4)
        x = torch.randint(0, model.cfg.vocab_size, (a.batch_rows, T), device="cuda")
        doc = (torch.arange(T, device="cuda") * a.docs_per_row // T).int().expand(a.batch_rows, T).contiguous()
        times = []
        for s in range(a.steps + 3):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(x, x, doc_ids=doc)
            loss.backward()
            clip_gradients(model, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            if s >= 3:
                times.append(time.perf_counter() - t0)
        dt = sorted(times)[len(times) // 2]
        tok_s = a.batch_rows * T / dt
        fl = tok_s * model.estimate_flops(T)
        print(f"{preset}: {tok_s:,.0f} tokens/s, {fl / 1e12:.1f} TFLOP/s, MFU {100 * fl / peak:.1f}%"
              if peak else f"{preset}: {tok_s:,.0f} tokens/s, {fl / 1e12:.1f} TFLOP/s")
        del model, opt
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
