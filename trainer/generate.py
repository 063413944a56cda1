"""Batched text generation with a KV cache on the trainer's Llama model: greedy or sampled.

    from trainer.generate import generate
    new_ids = generate(model, [[1, 2, 3], [4, 5]], max_new_tokens=32,
                       temperature=0.0, top_p=1.0, stop_ids=(eot_id,), seed=0, batch_size=16)

- ``prompts``: token-id lists of any lengths. Prompts are sorted by length and cut into batches of
  ``batch_size``; each batch is padded (``padding="left"``, the default, or ``"right"``) into one
  block. Padding is masked out of attention and takes no RoPE position, so a padded prompt gives
  the same tokens as the prompt alone (tested against a full forward pass per step, no cache).
- ``temperature=0`` is greedy (argmax). ``temperature>0`` samples from softmax(logits / T),
  restricted to the smallest set of tokens whose probability reaches ``top_p`` (nucleus sampling;
  ``top_p=1`` keeps all).
- Determinism: every prompt has its own ``torch.Generator`` seeded from ``(seed, prompt index)``,
  so the samples of prompt *i* depend on the seed and on *i*, not on the other prompts (up to the
  float rounding of a different padding). Repeat a prompt K times to draw K different samples.
- ``stop_ids``: a row stops after it emits one of them; the stop token is not returned.
- Returns, per prompt in the input order, the list of new token ids (at most ``max_new_tokens``).

The model must satisfy ``len(prompt) + max_new_tokens <= model.cfg.max_seq_len`` (RoPE table); the
longest prompt of a batch sets that batch's cache size. The model's mode (train/eval) is restored.
"""
from __future__ import annotations

import torch

from trainer.model import KVCache, Llama

PAD_ID = 0   # written into padding slots; never attended to, so its value does not matter


def _seed_for(seed: int, index: int) -> int:
    return (int(seed) * 1_000_003 + int(index)) % (2**63 - 1)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float,
                generators: list[torch.Generator] | None) -> torch.Tensor:
    """Next token per row from ``logits`` (B, V): argmax when temperature is 0, else nucleus sampling."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        before = sp.cumsum(-1) - sp                  # mass of the tokens ranked above each one
        sp = sp.masked_fill(before >= top_p, 0.0)    # the top token always stays
        probs = torch.zeros_like(probs).scatter_(-1, si, sp)
    probs = probs / probs.sum(-1, keepdim=True)
    out = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    for b in range(probs.shape[0]):   # one generator per row: samples independent of the batch
        g = generators[b] if generators is not None else None
        out[b] = torch.multinomial(probs[b].cpu(), 1, generator=g)[0]
    return out


@torch.no_grad()
def _generate_batch(model: Llama, prompts: list[list[int]], indices: list[int], max_new_tokens: int,
                    temperature: float, top_p: float, stop: set[int], seed: int,
                    padding: str) -> list[list[int]]:
    dev = model.output.weight.device
    B = len(prompts)
    P = max(len(p) for p in prompts)
    idx = torch.full((B, P), PAD_ID, dtype=torch.long)
    valid = torch.zeros(B, P, dtype=torch.bool)
    for b, p in enumerate(prompts):
        if padding == "left":
            idx[b, P - len(p):] = torch.tensor(p)
            valid[b, P - len(p):] = True
        else:
            idx[b, :len(p)] = torch.tensor(p)
            valid[b, :len(p)] = True
    last = torch.tensor([P - 1 if padding == "left" else len(p) - 1 for p in prompts])
    cache = KVCache(model.cfg, B, P + max_new_tokens, device=dev, dtype=model.output.weight.dtype)
    gens = None
    if temperature > 0:
        gens = [torch.Generator().manual_seed(_seed_for(seed, i)) for i in indices]
    logits = model.forward_cached(idx.to(dev), cache, valid.to(dev))
    logits = logits[torch.arange(B, device=dev), last.to(dev)]          # each row's last real token
    out: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    for step in range(max_new_tokens):
        nxt = sample_next(logits, temperature, top_p, gens).cpu()
        for b in range(B):
            if done[b]:
                continue
            t = int(nxt[b])
            if t in stop:
                done[b] = True
            else:
                out[b].append(t)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        # finished rows feed padding (masked, no position) so the others go on unchanged
        feed = torch.where(done, torch.full_like(nxt, PAD_ID), nxt)
        logits = model.forward_cached(feed[:, None].to(dev), cache, (~done)[:, None].to(dev))[:, -1]
    return out


def generate(model: Llama, prompts: list[list[int]], max_new_tokens: int, *, temperature: float = 0.0,
             top_p: float = 1.0, stop_ids=(), seed: int = 0, batch_size: int = 16,
             padding: str = "left") -> list[list[int]]:
    """New token ids for every prompt (see the module docstring for the exact semantics)."""
    if padding not in ("left", "right"):
        raise ValueError(f"padding must be 'left' or 'right', not {padding!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty (start it with <|begin_of_text|>)")
        if len(p) + max_new_tokens > model.cfg.max_seq_len:
            raise ValueError(f"prompt {i}: {len(p)} tokens + {max_new_tokens} new exceed the model's "
                             f"max_seq_len {model.cfg.max_seq_len}")
    if max_new_tokens <= 0:
        return [[] for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    results: list[list[int] | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        for a in range(0, len(order), batch_size):
            ids = order[a:a + batch_size]
            outs = _generate_batch(model, [list(map(int, prompts[i])) for i in ids], ids, max_new_tokens,
                                   temperature, top_p, {int(s) for s in stop_ids}, seed, padding)
            for i, o in zip(ids, outs):
                results[i] = o
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


@torch.no_grad()
def generate_nocache(model: Llama, prompt: list[int], max_new_tokens: int, stop_ids=()) -> list[int]:
    """Greedy decoding by a full forward pass over the whole sequence every step (no cache, no
    padding): the reference the cached path is tested against. Slow; for tests."""
    was = model.training
    model.eval()
    seq = list(prompt)
    out = []
    try:
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([seq], device=model.output.weight.device))[0, -1]
            t = int(logits.argmax())
            if t in set(stop_ids):
                break
            out.append(t)
            seq.append(t)
    finally:
        model.train(was)
    return out
