"""Attention masked at document boundaries inside packed rows.

A packed row holds several documents; Llama 3 masks attention so that a token only sees earlier
tokens *of its own document*. Every backend here computes exactly that:

- ``sdpa``   boolean mask (causal AND same document) through ``scaled_dot_product_attention``.
             Correct everywhere (CPU included); O(T^2) mask memory, so it is the CPU/test path.
- ``flex``   ``flex_attention`` with a ``BlockMask`` built from document ids: fully masked blocks
             are skipped. Fast only under ``torch.compile`` on a GPU (eager works but materialises
             the scores; used in the tests to check it against ``sdpa``).
- ``varlen`` ``torch.nn.attention.varlen.varlen_attn`` (Flash/cuDNN) over the batch flattened into
             one sequence per (row, document) segment: no padding, no mask. CUDA + bf16/fp16 only.

``auto`` picks ``flex`` on CUDA and ``sdpa`` elsewhere. Rows that hold a single document use the
plain causal kernel in the ``sdpa`` backend (no mask to build).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "sdpa", "flex", "varlen")


def resolve_backend(name: str, device: torch.device | str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose from {BACKENDS}")
    dev = torch.device(device)
    if name == "auto":
        return "flex" if dev.type == "cuda" else "sdpa"
    if name == "varlen" and dev.type != "cuda":
        raise ValueError("attention backend 'varlen' needs a CUDA device")
    return name


@dataclass
class DocMask:
    """What every attention layer of one forward pass needs to know about document boundaries.

    ``doc_ids``: (B, T) int tensor, the document index of every position within its row (non-
    decreasing along T). Built once per batch by :func:`build_doc_mask`; the layers share it.
    """
    doc_ids: torch.Tensor
    backend: str
    single_doc: bool = False                 # every row is one document: plain causal attention
    dense: Optional[torch.Tensor] = None     # sdpa: (B, 1, T, T) bool, True = may attend
    block_mask: object = None                # flex: BlockMask
    cu_seqlens: Optional[torch.Tensor] = None  # varlen: (n_segments + 1,) int32
    max_seqlen: int = 0


def doc_ids_from_starts(starts: list[int] | torch.Tensor, length: int) -> torch.Tensor:
    """Document index of each of ``length`` positions, given the sorted start positions (first is 0)."""
    ids = torch.zeros(length, dtype=torch.int32)
    for s in starts:
        s = int(s)
        if 0 < s < length:
            ids[s:] += 1
    return ids


def build_doc_mask(doc_ids: torch.Tensor, backend: str) -> DocMask:
    B, T = doc_ids.shape
    single = bool((doc_ids == doc_ids[:, :1]).all())
    m = DocMask(doc_ids=doc_ids, backend=backend, single_doc=single)
    if backend == "sdpa":
        if not single:
            causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
            same = doc_ids[:, :, None] == doc_ids[:, None, :]
            m.dense = (same & causal)[:, None, :, :]
    elif backend == "flex":
        from torch.nn.attention.flex_attention import create_block_mask

        def mask_mod(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & (doc_ids[b, q_idx] == doc_ids[b, kv_idx])

        m.block_mask = create_block_mask(mask_mod, B, None, T, T, device=doc_ids.device)
    elif backend == "varlen":
        # a new segment starts at position 0 of every row and wherever the document id changes
        flat = doc_ids.reshape(-1)
        pos = torch.arange(B * T, device=doc_ids.device)
        change = torch.ones_like(flat, dtype=torch.bool)
        change[1:] = flat[1:] != flat[:-1]
        change |= (pos % T) == 0
        starts = pos[change]
        cu = torch.cat([starts, torch.tensor([B * T], device=doc_ids.device)]).to(torch.int32)
        m.cu_seqlens = cu
        m.max_seqlen = int((cu[1:] - cu[:-1]).max())
    else:
        raise ValueError(f"unresolved attention backend {backend!r}")
    return m


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: DocMask | None) -> torch.Tensor:
    """q: (B, Hq, T, D); k, v: (B, Hkv, T, D). Returns (B, Hq, T, D)."""
    gqa = q.shape[1] != k.shape[1]
    if mask is None or mask.single_doc and mask.backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    if mask.backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.dense, enable_gqa=gqa)
    if mask.backend == "flex":
        from torch.nn.attention.flex_attention import flex_attention
        return _flex(flex_attention, q, k, v, mask.block_mask, gqa)
    if mask.backend == "varlen":
        from torch.nn.attention.varlen import varlen_attn
        B, Hq, T, D = q.shape
        qf = q.transpose(1, 2).reshape(B * T, Hq, D)
        kf = k.transpose(1, 2).reshape(B * T, k.shape[1], D)
        vf = v.transpose(1, 2).reshape(B * T, v.shape[1], D)
        cu = mask.cu_seqlens
        out = varlen_attn(qf, kf, vf, cu, cu, mask.max_seqlen, mask.max_seqlen,
                          window_size=(-1, 0), enable_gqa=gqa)
        return out.reshape(B, T, Hq, D).transpose(1, 2)
    raise ValueError(f"unknown backend {mask.backend!r}")


_compiled_flex = None


def _flex(flex_attention, q, k, v, block_mask, gqa):
    """Compiled flex attention on CUDA (the fused kernel), eager elsewhere (reference semantics)."""
    global _compiled_flex
    if q.is_cuda:
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention, dynamic=False)
        return _compiled_flex(q, k, v, block_mask=block_mask, enable_gqa=gqa)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=gqa)
