"""Llama 3 decoder: RMSNorm, SwiGLU, RoPE, grouped-query attention, document-masked attention.

Presets cover a tiny test size through 20M/125M/350M/1B (named by their *non-embedding* parameter
count, as in Kaplan et al.; with a 100K vocabulary the embeddings of a small model are larger than
its body) and the published Llama 3 8B/70B/405B shapes, which build on the ``meta`` device for
parameter and FLOP counts. ``estimate_flops()`` is the one definition of training FLOPs per token
used for MFU, achieved FLOP/s and any scaling-law accounting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trainer.attention import DocMask, attend, build_doc_mask, resolve_backend

# On CPU the loss is computed over chunks of tokens whose logits take at most this many bytes
# (below glibc's 32 MB mmap threshold, so the memory is reused rather than faulted in each step),
# for output layers up to CPU_LOSS_CHUNK_MAX_WEIGHT_BYTES: every chunk's backward allocates a
# weight gradient of that size, and above the threshold those are fresh pages again (measured:
# the 20M preset, 384 x 100,352, was 20% slower chunked; the tiny one, 64 x 100,352, 27% faster).
CPU_LOSS_CHUNK_BYTES = 16 << 20
CPU_LOSS_CHUNK_MAX_WEIGHT_BYTES = 28 << 20


@dataclass
class ModelConfig:
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 100352
    multiple_of: int = 64            # SwiGLU hidden size rounded up to a multiple of this
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    max_seq_len: int = 2048
    tie_embeddings: bool = False
    init_std: float = 0.02

    def __post_init__(self):
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError("head dimension must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_hidden(self) -> int:
        # Llama's rule: 2/3 of 4*dim, times an optional multiplier, rounded up to multiple_of
        hidden = int(2 * (4 * self.dim) / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)


# vocab_size None = taken from the mix manifest (100,352 for the project's cl100k_base+llama3 tokenizer)
PRESETS: dict[str, dict] = {
    "tiny": dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, multiple_of=64, tie_embeddings=True),
    "20M": dict(dim=384, n_layers=12, n_heads=6, n_kv_heads=2, multiple_of=256),
    "125M": dict(dim=768, n_layers=14, n_heads=12, n_kv_heads=4, multiple_of=256),
    "350M": dict(dim=1024, n_layers=24, n_heads=16, n_kv_heads=4, multiple_of=256),
    "1B": dict(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, multiple_of=256, ffn_dim_multiplier=1.5),
    # Llama 3 / 3.1 (Meta's published params.json)
    "llama3-8B": dict(dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, vocab_size=128256,
                      multiple_of=1024, ffn_dim_multiplier=1.3, max_seq_len=8192),
    "llama3-70B": dict(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=128256,
                       multiple_of=4096, ffn_dim_multiplier=1.3, max_seq_len=8192),
    "llama3-405B": dict(dim=16384, n_layers=126, n_heads=128, n_kv_heads=8, vocab_size=128256,
                        multiple_of=4096, ffn_dim_multiplier=1.2, max_seq_len=8192),
}


def preset_config(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    known = {f.name for f in fields(ModelConfig)}
    bad = set(overrides) - known
    if bad:
        raise ValueError(f"unknown model config keys {sorted(bad)}")
    return ModelConfig(**{**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).type_as(x)


def rope_tables(head_dim: int, max_len: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim))
    t = torch.arange(max_len, dtype=torch.float64, device=device)
    ang = torch.outer(t, inv)                       # (T, D/2)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, T, D); cos/sin: (T, D/2) or (B, 1, T, D/2). Rotates interleaved pairs (Llama layout)."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask: DocMask | None, cache: "LayerCache | None" = None):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)
        k = self.wk(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = self.wv(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            y = attend(q, k, v, mask)
        else:   # generation: attend over the cached keys/values plus these, under the cache's mask
            k, v, allowed = cache.update(k, v)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                               enable_gqa=q.shape[1] != k.shape[1])
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.ffn_hidden
        self.w1 = nn.Linear(cfg.dim, h, bias=False)
        self.w3 = nn.Linear(cfg.dim, h, bias=False)
        self.w2 = nn.Linear(h, cfg.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, cos, sin, mask, cache=None):
        x = x + self.attention(self.attention_norm(x), cos, sin, mask, cache)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.attention_backend = "sdpa"       # set by set_attention_backend (trainer options)
        self.activation_checkpointing = False  # set from outside (trainer.parallel)

    # ---- set-up -----------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, seed: int | None = None):
        """Normal(0, init_std) for matrices, output projections scaled by 1/sqrt(2 * n_layers)."""
        gen = torch.Generator(device="cpu")
        if seed is not None:
            gen.manual_seed(seed)
        std = self.cfg.init_std
        for name, p in self.named_parameters():
            if p.ndim == 1:
                p.fill_(1.0)
                continue
            s = std / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("wo.weight", "w2.weight")) else std
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32).mul_(s).to(p.dtype))
        cos, sin = rope_tables(self.cfg.head_dim, self.cfg.max_seq_len, self.cfg.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)
        return self

    def set_attention_backend(self, name: str, device=None):
        self.attention_backend = resolve_backend(name, device or self.output.weight.device)

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                doc_ids: torch.Tensor | None = None, reduction: str = "mean"):
        """idx, targets, doc_ids: (B, T). Without doc_ids every row is one document (causal only).

        Returns the logits (targets None) or the cross-entropy loss (``reduction`` as in F.cross_entropy).
        """
        B, T = idx.shape
        h = self.hidden(idx, doc_ids)
        if targets is None:
            return self.output(h)
        chunk = max(1, CPU_LOSS_CHUNK_BYTES // (4 * self.cfg.vocab_size))
        if h.device.type == "cpu" and B * T > chunk \
                and 4 * self.output.weight.numel() <= CPU_LOSS_CHUNK_MAX_WEIGHT_BYTES:
            return self._chunked_loss(h.reshape(B * T, -1), targets.reshape(-1), chunk, reduction)
        logits = self.output(h)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)

    def hidden(self, idx: torch.Tensor, doc_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The final (normed) hidden states (B, T, dim), before the output layer (a reward model's
        scalar head reads them)."""
        B, T = idx.shape
        if T > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.cfg.max_seq_len}")
        mask = build_doc_mask(doc_ids.to(idx.device), self.attention_backend) if doc_ids is not None else None
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        h = self.tok_embeddings(idx)
        for layer in self.layers:
            if self.activation_checkpointing and self.training:
                h = checkpoint(layer, h, cos, sin, mask, use_reentrant=False)
            else:
                h = layer(h, cos, sin, mask)
        return self.norm(h)

    def _chunked_loss(self, h, targets, chunk: int, reduction: str):
        """The same loss as one cross-entropy over all logits, computed over chunks of tokens
        whose logits stay below CPU_LOSS_CHUNK_BYTES. On CPU the full logits (tokens x vocabulary
        x 4 bytes: 822 MB for 2,048 tokens of a 100K vocabulary) are fresh pages from the OS on
        every step, above glibc's mmap threshold, and faulting them in cost as much system time
        as the step's compute (docs/BENCHMARKS.md); chunks are reused from the heap. Used for
        small output layers only (CPU_LOSS_CHUNK_MAX_WEIGHT_BYTES)."""
        per = "none" if reduction == "none" else "sum"
        parts = [F.cross_entropy(self.output(h[i:i + chunk]).float(), targets[i:i + chunk],
                                 reduction=per) for i in range(0, h.shape[0], chunk)]
        if reduction == "none":
            return torch.cat(parts)
        total = torch.stack(parts).sum()
        if reduction == "sum":
            return total
        return total / (targets != -100).sum()     # mean over counted targets, as F.cross_entropy

    @torch.no_grad()
    def forward_cached(self, idx: torch.Tensor, cache: "KVCache", valid: torch.Tensor | None = None):
        """Inference with a KV cache: append ``idx`` (B, T) to ``cache`` and return its logits (B, T, V).

        ``valid`` (B, T) bool marks real tokens; False marks padding, which no later token attends to
        and which takes no RoPE position (each row's positions count only its valid tokens, so left and
        right padding give the same result as the unpadded row). Training never calls this.
        """
        B, T = idx.shape
        if valid is None:
            valid = torch.ones(B, T, dtype=torch.bool, device=idx.device)
        s = cache.length
        if s + T > cache.max_len:
            raise ValueError(f"KV cache full: {s} + {T} tokens > {cache.max_len} slots")
        v64 = valid.long()
        pos = (cache.next_pos[:, None] + v64.cumsum(1) - v64).clamp(max=self.cfg.max_seq_len - 1)
        cache.valid[:, s:s + T] = valid
        cache.next_pos += v64.sum(1)
        slot_q = torch.arange(s, s + T, device=idx.device)
        slot_k = torch.arange(s + T, device=idx.device)
        allowed = (slot_k[None, :] <= slot_q[:, None])[None] & cache.valid[:, None, :s + T]
        allowed |= (slot_k[None, :] == slot_q[:, None])[None]   # a padding query sees itself (no NaN)
        cache.allowed = allowed[:, None]                         # (B, 1, T, s + T)
        cos, sin = self.rope_cos[pos][:, None], self.rope_sin[pos][:, None]   # (B, 1, T, D/2)
        h = self.tok_embeddings(idx)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, None, cache.layer(i))
        cache.length = s + T
        return self.output(self.norm(h))

    # ---- accounting -------------------------------------------------------------------------
    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())   # tied weights are counted once
        if non_embedding:
            n -= self.tok_embeddings.weight.numel()
            if not self.cfg.tie_embeddings:
                n -= self.output.weight.numel()
        return n

    def estimate_flops(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): 6 * (matmul parameters) + attention.

        Matmul parameters exclude the embedding lookup (not a matmul) but include the output head.
        Attention scores and values add 12 * n_layers * dim * seq_len per token (PaLM appendix B
        convention, counting the full T x T product: document masking and causality make the real
        work smaller, so MFU computed from this is the usual, comparable figure).
        """
        c = self.cfg
        T = seq_len or c.max_seq_len
        n_matmul = sum(p.numel() for p in self.parameters()) - self.tok_embeddings.weight.numel()
        if c.tie_embeddings:
            n_matmul += self.output.weight.numel()
        norms = sum(p.numel() for n, p in self.named_parameters() if p.ndim == 1)
        return 6.0 * (n_matmul - norms) + 12.0 * c.n_layers * c.n_heads * c.head_dim * T


class KVCache:
    """Keys and values of every layer for ``batch`` rows of up to ``max_len`` slots (generation).

    Slots fill left to right for all rows at once; ``valid`` marks which slots hold real tokens
    (padding does not), ``next_pos`` is each row's RoPE position for its next real token.
    """

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32):
        if max_len > cfg.max_seq_len:
            raise ValueError(f"{max_len} slots exceed the model's max_seq_len {cfg.max_seq_len}")
        shape = (batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.valid = torch.zeros(batch, max_len, dtype=torch.bool, device=device)
        self.next_pos = torch.zeros(batch, dtype=torch.long, device=device)
        self.max_len = max_len
        self.length = 0
        self.allowed = None

    def layer(self, i: int) -> "LayerCache":
        return LayerCache(self, i)


class LayerCache:
    def __init__(self, cache: KVCache, i: int):
        self.cache, self.i = cache, i

    def update(self, k: torch.Tensor, v: torch.Tensor):
        c, s, T = self.cache, self.cache.length, k.shape[2]
        c.k[self.i][:, :, s:s + T] = k
        c.v[self.i][:, :, s:s + T] = v
        return c.k[self.i][:, :, :s + T], c.v[self.i][:, :, :s + T], c.allowed


def build_model(cfg: ModelConfig, device: str | torch.device = "cpu", seed: int | None = 0) -> Llama:
    """Build on `device`; on ``meta`` nothing is allocated (parameter and FLOP counts only)."""
    dev = torch.device(device)
    with dev:
        model = Llama(cfg)
    if dev.type != "meta":
        model.init_weights(seed)
    return model
