"""AdamW with decoupled weight decay on matrices only, fused where the device supports it, and clipping."""
from __future__ import annotations

import torch
import torch.nn as nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on the linear layers' matrices; none on norms (1-D) and embeddings.

    A tied output head shares the embedding matrix, so it is not decayed either.
    """
    emb_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 or id(p) in emb_ids else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1, betas=(0.9, 0.95),
                    eps: float = 1e-8, fused: str | bool = "auto") -> torch.optim.AdamW:
    device = next(model.parameters()).device
    if fused == "auto":
        fused = device.type == "cuda"
    kwargs = {"fused": True} if fused else {"foreach": device.type == "cuda"}
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=tuple(betas), eps=eps, **kwargs)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """Clip the global gradient norm (works on DTensor/FSDP2 parameters too); returns the pre-clip norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm and max_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)
