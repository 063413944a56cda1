"""Held-out loss per stream (general, math, code, multilingual) from a mix's ``heldout/`` directory."""
from __future__ import annotations

import math

import torch

from trainer.data import TokenShards


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
