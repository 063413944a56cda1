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

import json
import sys
from dataclasses import asdict, dataclass, field

import torch

from trainer.posttrain import (OptimSettings, load_model, load_tokenizer, pack_rows, parse_step_args, save_model,
                               sft_examples, step_parser, to_batch, train_steps)


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
    examples, dropped = sft_examples(tok, dialogs, cfg.seq_len)
    if not examples:
        raise ValueError(f"no SFT example fits in seq_len {cfg.seq_len} ({dropped} dropped)")
    n_rows = len(pack_rows(examples, cfg.seq_len))
    steps = cfg.steps or max(1, round(cfg.epochs * n_rows / cfg.batch_rows))
    res = train_steps(model, examples, steps, cfg.batch_rows, cfg.optim, cfg.seed,
                      lambda rows: (sft_loss(model, to_batch(rows, device)), ""), "sft", cfg.log_every, log,
                      per_epoch=lambda ex: pack_rows(ex, cfg.seq_len))
    return {"steps": steps, "examples": len(examples), "dropped_too_long": dropped, "rows_per_epoch": n_rows,
            **res}


def main(argv=None) -> int:
    from trainer.posttrain_data import read_records
    ap = step_parser("python -m trainer.sft", __doc__)
    ap.add_argument("--init", required=True, help="model directory to start from (pre-trained)")
    ap.add_argument("--data", required=True, help="SFT table: Parquet/JSONL with a `messages` column")
    ap.add_argument("--out", required=True, help="output model directory")
    parsed = parse_step_args(ap, SFTConfig, argv)
    if parsed is None:
        return 2
    a, cfg, dev = parsed
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
