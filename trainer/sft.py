"""Supervised fine-tuning: ``python -m trainer.sft --init MODEL_DIR --data SFT_TABLE --out DIR``.

Dialogues (``messages`` records of an SFT table, Parquet or JSONL, see docs/stages/posttrain.md)
are rendered in Llama 3's chat format (trainer/chat_format.py); the loss counts only the assistant
messages' tokens and their ``<|eot_id|>`` (the SFT mask). Dialogues are packed into rows of
``seq_len`` tokens with the document mask (a token attends only to its own dialogue, as in
pre-training), shuffled per epoch with the seed. SFT has its own LR schedule (``optim``: warm-up
then cosine/linear/constant over the SFT steps) and starts from a pre-trained model directory
(a pre-training run's ``final/``, a trainer checkpoint or an earlier post-training step).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field

import torch

from trainer.optim import clip_gradients, set_lr
from trainer.posttrain import (OptimSettings, device_of, load_model, load_tokenizer, lr_at, make_optimizer,
                               pack_rows, save_model, seeded, sft_examples, to_batch)


@dataclass
class SFTConfig:
    seq_len: int = 512
    batch_rows: int = 8
    epochs: float = 1.0
    steps: int = 0                   # > 0 overrides epochs
    seed: int = 0
    log_every: int = 50
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=1e-4, warmup_steps=10))


def sft_loss(model, batch) -> torch.Tensor:
    """Mean cross-entropy over the counted (assistant) targets of a packed batch."""
    return model(batch.x, batch.y, doc_ids=batch.doc_ids)


def train_sft(model, tok, dialogs: list[list[dict]], cfg: SFTConfig, device=None, log=print) -> dict:
    """Fine-tune ``model`` in place on ``dialogs``; returns losses and counts."""
    device = device or model.output.weight.device
    rng = seeded(cfg.seed)
    examples, dropped = sft_examples(tok, dialogs, cfg.seq_len)
    if not examples:
        raise ValueError(f"no SFT example fits in seq_len {cfg.seq_len} ({dropped} dropped)")
    n_rows = len(pack_rows(examples, cfg.seq_len))
    steps = cfg.steps or max(1, round(cfg.epochs * n_rows / cfg.batch_rows))
    opt = make_optimizer(model, cfg.optim)
    model.train()
    losses, queue, epoch, t0 = [], [], 0, time.perf_counter()
    for step in range(steps):
        if len(queue) < cfg.batch_rows:
            ex = examples[:]
            rng.shuffle(ex)
            queue.extend(pack_rows(ex, cfg.seq_len))
            epoch += 1
        rows, queue = queue[:cfg.batch_rows], queue[cfg.batch_rows:]
        lr = lr_at(step, steps, cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.schedule, cfg.optim.min_lr_ratio)
        set_lr(opt, lr)
        loss = sft_loss(model, to_batch(rows, device))
        loss.backward()
        clip_gradients(model, cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if cfg.log_every and (step % cfg.log_every == 0 or step == steps - 1):
            log(f"[sft] step {step + 1}/{steps} loss {losses[-1]:.4f} lr {lr:.2e}")
    model.eval()
    return {"steps": steps, "examples": len(examples), "dropped_too_long": dropped, "rows_per_epoch": n_rows,
            "epochs": epoch, "first_loss": losses[0], "last_loss": sum(losses[-10:]) / len(losses[-10:]),
            "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    from core.validate import ConfigError
    from trainer.posttrain import build_config
    from trainer.posttrain_data import read_records
    ap = argparse.ArgumentParser(prog="python -m trainer.sft", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="model directory to start from (pre-trained)")
    ap.add_argument("--data", required=True, help="SFT table: Parquet/JSONL with a `messages` column")
    ap.add_argument("--out", required=True, help="output model directory")
    ap.add_argument("--device", default="auto")
    ap.add_argument("overrides", nargs="*", help="SFTConfig overrides, e.g. optim.lr=3e-4 epochs=2")
    a = ap.parse_args(argv)
    try:
        cfg = build_config(SFTConfig, None, a.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    dev = device_of(a.device)
    model = load_model(a.init, dev)
    tok = load_tokenizer(a.init)
    dialogs = [r["messages"] for r in read_records(a.data)]
    res = train_sft(model, tok, dialogs, cfg, dev)
    save_model(a.out, model, {"step": "sft", "init": a.init, "data": a.data, "config": asdict(cfg), "result": res},
               tokenizer=tok)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
