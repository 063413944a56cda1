"""What every post-training step shares: model directories, tokenizers, batches of dialogues,
sequence log-probabilities, an optimizer with its own LR schedule, and the step configs.

A *model directory* (what every step reads and writes, and what ``trainer.chat`` opens):
  model.pt            the Llama state dict (tensors only; ``torch.load(weights_only=True)``)
  model_config.json   the ModelConfig
  tokenizer.json      optional: a compact relabelling of the project tokenizer (see CompactTokenizer)
  value_head.pt       reward models only: the scalar head
  meta.json           what wrote it (step, config, parents, metrics)
The pre-training run's ``final/`` directory, a run directory (its ``final/`` or latest checkpoint)
and any trainer checkpoint ``step_XXXXXXXX/`` are accepted as inputs too (trainer/loading.py's
rule; a checkpoint's model config comes from ``state.json``). The evaluation harness
(``python -m trainer.evaluate``) reads these model directories as they are.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from core.validate import option
from trainer.chat_format import encode_dialog
from trainer.model import Llama

IGNORE = -100


# ---- model directories -------------------------------------------------------------------------
def resolve_model_dir(path: str | Path) -> Path:
    """The directory holding ``model.pt`` (trainer/loading.py's rule: the path itself, its
    ``final/``, or a run's latest checkpoint)."""
    from trainer.loading import resolve
    return resolve(path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Llama:
    """The model of any accepted path (trainer/loading.py's reader: fp32, SDPA attention, eval
    mode; the training steps switch it to train mode themselves)."""
    from trainer.loading import load_model as load_trained
    return load_trained(path, device)[0]


def save_model(out: str | Path, model: Llama, meta: dict, tokenizer=None, extra: dict | None = None) -> Path:
    """Write a model directory (atomically: a temporary directory renamed into place)."""
    import os
    import shutil
    out = Path(out)
    tmp = out.with_name(f".tmp_{out.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "model.pt")
    (tmp / "model_config.json").write_text(json.dumps(asdict(model.cfg), indent=1))
    for name, sd in (extra or {}).items():
        torch.save(sd, tmp / name)
    if isinstance(tokenizer, CompactTokenizer):
        tokenizer.save(tmp / "tokenizer.json")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def load_tokenizer(model_dir: str | Path | None = None):
    """The project tokenizer, or the compact relabelling stored with the model."""
    from core.tokenizer import get_tokenizer
    if model_dir is not None:
        for p in (Path(model_dir), Path(model_dir) / "final"):
            if (p / "tokenizer.json").is_file():
                return CompactTokenizer.load(p / "tokenizer.json")
    return get_tokenizer()


class CompactTokenizer:
    """The project tokenizer with its ids renumbered onto the few that a small task uses.

    The token sequences are exactly ``cl100k_base+llama3``'s; only the ids change (a bijection on
    the ids kept), so a tiny model's embedding and output layers are small. Id 0 is reserved for
    padding; then Llama 3's named special tokens; then the ids of ``texts`` in increasing order.
    Encoding text with a token outside the kept set raises.
    """

    def __init__(self, base_ids: list[int], multiple: int = 64):
        from core.tokenizer import get_tokenizer
        self.base = get_tokenizer()
        self.base_ids = [int(i) for i in base_ids]
        self.to_compact = {b: i for i, b in enumerate(self.base_ids)}
        self.vocab_size = -(-len(self.base_ids) // multiple) * multiple
        self.special = {n: self.to_compact[i] for n, i in self.base.special.items() if i in self.to_compact}
        self.eot_id = self.special["<|end_of_text|>"]
        self.bos_id = self.special["<|begin_of_text|>"]
        self.name = "compact:" + self.base.name

    @classmethod
    def from_texts(cls, texts, multiple: int = 64) -> "CompactTokenizer":
        from core.tokenizer import get_tokenizer
        from trainer.chat_format import ROLES, SEP
        base = get_tokenizer()
        texts = list(texts) + list(ROLES) + [SEP]
        named = [i for n, i in sorted(base.special.items(), key=lambda kv: kv[1]) if "reserved" not in n]
        used = sorted({t for s in texts for t in base.encode(s)} - set(named))
        return cls([base.special["<|finetune_right_pad_id|>"]] + [i for i in named if i != base.special[
            "<|finetune_right_pad_id|>"]] + used, multiple)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; a base token outside the kept set is encoded character by character
        (e.g. "589", decoded from "5" "8" "9", is not kept); a character outside raises."""
        out = []
        for t in self.base.encode(text):
            if t in self.to_compact:
                out.append(self.to_compact[t])
                continue
            for ch in self.base.decode([t]):
                ids = self.base.encode(ch)
                if not all(i in self.to_compact for i in ids):
                    raise ValueError(f"{ch!r} in {text[:60]!r} is not in this compact vocabulary")
                out.extend(self.to_compact[i] for i in ids)
        return out

    def decode(self, ids) -> str:
        return self.base.decode([self.base_ids[int(i)] for i in ids if 0 <= int(i) < len(self.base_ids)])

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"base": self.base.name, "fingerprint": self.base.fingerprint,
                                          "base_ids": self.base_ids}))

    @classmethod
    def load(cls, path: Path) -> "CompactTokenizer":
        d = json.loads(Path(path).read_text())
        tok = cls(d["base_ids"])
        if d.get("fingerprint") not in (None, tok.base.fingerprint):
            raise ValueError(f"{path}: written for tokenizer {d['fingerprint']}, this is {tok.base.fingerprint}")
        return tok


def encodable(tok, text: str) -> bool:
    """Whether ``text`` can be encoded (always, for the project tokenizer; a compact one may lack
    characters that a sampled reply spelled out, e.g. a special token's name)."""
    try:
        tok.encode(text)
        return True
    except ValueError:
        return False


# ---- batches ------------------------------------------------------------------------------------
@dataclass
class PackedBatch:
    x: torch.Tensor        # (B, T) inputs
    y: torch.Tensor        # (B, T) targets, IGNORE where the loss does not count
    doc_ids: torch.Tensor  # (B, T) dialogue index within its row (the document mask)


def sft_examples(tok, dialogs: list[list[dict]], max_len: int) -> tuple[list[tuple[list[int], list[int]]], int]:
    """(inputs, targets) per dialogue: targets are the next tokens where the SFT mask is on.
    Dialogues longer than ``max_len + 1`` tokens are dropped; returns the examples and the count
    dropped."""
    out, dropped = [], 0
    for d in dialogs:
        e = encode_dialog(tok, d)
        if len(e.ids) > max_len + 1:
            dropped += 1
            continue
        mask = e.loss_mask("sft")
        out.append((e.ids[:-1], [t if m else IGNORE for t, m in zip(e.ids[1:], mask[1:])]))
    return out, dropped


def pack_rows(examples: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int = 0) -> list[tuple]:
    """First-fit packing of (inputs, targets) pairs, in order, into rows of ``seq_len``: each row is
    (x, y, doc_ids); the padding at a row's end is its own document and has no targets."""
    rows, cur = [], ([], [], [])
    for x, y in examples:
        if len(x) > seq_len:
            raise ValueError(f"example of {len(x)} tokens exceeds seq_len {seq_len}")
        if len(cur[0]) + len(x) > seq_len:
            rows.append(cur)
            cur = ([], [], [])
        d = (cur[2][-1] + 1) if cur[2] else 0
        cur[0].extend(x)
        cur[1].extend(y)
        cur[2].extend([d] * len(x))
    if cur[0]:
        rows.append(cur)
    out = []
    for x, y, d in rows:
        n = seq_len - len(x)
        out.append((x + [pad_id] * n, y + [IGNORE] * n, d + [d[-1] + 1] * n))
    return out


def to_batch(rows: list[tuple], device) -> PackedBatch:
    x, y, d = zip(*rows)
    t = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
    return PackedBatch(t(x), t(y), t(d).to(torch.int32))


def pad_right(seqs: list[list[int]], pad_id: int = 0, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, lengths) with right padding: under causal attention the padding changes nothing
    before it, so no mask is needed for scoring the real tokens."""
    T = max(len(s) for s in seqs)
    x = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return x.to(device), torch.tensor([len(s) for s in seqs], device=device)


def sequence_logprobs(model: Llama, seqs: list[list[int]], masks: list[list[bool]], device,
                      chunk: int = 256) -> torch.Tensor:
    """Sum over the masked target positions of log p(token | prefix), per sequence (B,).
    ``masks[i][t]`` says whether token t of sequence i counts (as a target). The output layer runs
    over ``chunk`` positions at a time under activation checkpointing, so the full (B, T, vocab)
    logits never exist at once (a 128K vocabulary at 2,048 tokens would be 1 GB per sequence)."""
    from torch.utils.checkpoint import checkpoint
    x, _ = pad_right(seqs, device=device)
    m = torch.zeros_like(x, dtype=torch.bool)
    for i, mk in enumerate(masks):
        m[i, :len(mk)] = torch.tensor(mk, dtype=torch.bool)
    h = model.hidden(x[:, :-1])
    tgt = x[:, 1:]

    def piece(hc, tc):
        lp = torch.log_softmax(model.output(hc).float(), -1)
        return lp.gather(-1, tc[..., None])[..., 0]

    parts = []
    for a in range(0, h.shape[1], chunk):
        hc, tc = h[:, a:a + chunk], tgt[:, a:a + chunk]
        parts.append(checkpoint(piece, hc, tc, use_reentrant=False) if torch.is_grad_enabled() else piece(hc, tc))
    lp = torch.cat(parts, dim=1)
    return (lp * m[:, 1:]).sum(-1)


# ---- optimisation -------------------------------------------------------------------------------
def lr_at(step: int, steps: int, lr: float, warmup: int, schedule: str, min_lr_ratio: float) -> float:
    """Post-training's own schedule over steps: linear warm-up, then cosine to ``min_lr_ratio * lr``,
    linear to zero, or constant."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    p = min(max((step - warmup) / max(steps - warmup, 1), 0.0), 1.0)
    if schedule == "cosine":
        lo = min_lr_ratio * lr
        return lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * p))
    if schedule == "linear":
        return lr * (1 - p)
    raise ValueError(f"unknown schedule {schedule!r}: cosine, linear or constant")


@dataclass
class OptimSettings:
    lr: float = option(1e-4, gt=0)
    warmup_steps: int = option(10, ge=0)
    schedule: str = option("cosine", choices=("cosine", "linear", "constant"))
    min_lr_ratio: float = option(0.1, ge=0, le=1)
    weight_decay: float = option(0.0, ge=0)
    grad_clip: float = option(1.0, ge=0)       # 0 = no clipping
    betas: list = field(default_factory=lambda: [0.9, 0.95])


def build_config(cls, data: dict | None = None, overrides: list[str] | None = None):
    """A step config: defaults <- ``data`` (nested mapping) <- ``key=value`` overrides; unknown keys
    fail, every field is checked against its declared type/range (core.validate)."""
    from core.config import merge
    from core.validate import check_dataclass
    from trainer.config import _build, apply_override
    base = merge(asdict(cls()), data)
    for o in overrides or []:
        apply_override(base, o)
    cfg = _build(cls, base, "")
    check_dataclass(cfg)
    return cfg


def make_optimizer(params_model, o: OptimSettings):
    from trainer.optim import build_optimizer
    return build_optimizer(params_model, o.lr, o.weight_decay, o.betas, 1e-8, False)


def train_steps(model, items: list, steps: int, batch: int, o: OptimSettings, seed: int, step_loss,
                tag: str, log_every: int = 0, log=print, per_epoch=None) -> dict:
    """The loop every post-training step runs: ``steps`` optimizer steps of ``batch`` items each,
    the items reshuffled (``seed``) whenever the queue runs short (``per_epoch`` turns a shuffled
    epoch into the queued units, e.g. packed rows), the LR from ``lr_at`` over these steps,
    gradient clipping. ``step_loss(batch) -> (loss, note)``; ``note`` is appended to the log line.
    Leaves ``model`` in eval mode; returns the epochs started, first/last losses and seconds."""
    from trainer.optim import clip_gradients, set_lr
    rng = seeded(seed)
    opt = make_optimizer(model, o)
    model.train()
    losses, queue, epochs, t0 = [], [], 0, time.perf_counter()
    for step in range(steps):
        if len(queue) < batch:
            ex = items[:]
            rng.shuffle(ex)
            queue.extend(per_epoch(ex) if per_epoch else ex)
            epochs += 1
        cur, queue = queue[:batch], queue[batch:]
        lr = lr_at(step, steps, o.lr, o.warmup_steps, o.schedule, o.min_lr_ratio)
        set_lr(opt, lr)
        loss, note = step_loss(cur)
        loss.backward()
        clip_gradients(model, o.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            log(f"[{tag}] step {step + 1}/{steps} loss {losses[-1]:.4f} lr {lr:.2e}{note}")
    model.eval()
    return {"epochs": epochs, "first_loss": losses[0], "last_loss": sum(losses[-10:]) / len(losses[-10:]),
            "seconds": time.perf_counter() - t0}


# ---- command lines ------------------------------------------------------------------------------
def step_parser(prog: str, doc: str):
    import argparse
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def parse_step_args(ap, cls, argv=None):
    """Add ``--device`` and ``key=value`` overrides of ``cls`` to a step's parser and parse ``argv``:
    (args, config, device), or None once a config error has been printed (the command exits 2)."""
    import sys

    from core.validate import ConfigError
    ap.add_argument("--device", default="auto")
    ap.add_argument("overrides", nargs="*", help=f"{cls.__name__} fields as key=value, e.g. seed=1 "
                                                  f"(nested: optim.lr=3e-4)")
    a = ap.parse_args(argv)
    try:
        cfg = build_config(cls, None, a.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return None
    return a, cfg, device_of(a.device)


def seeded(seed: int) -> random.Random:
    torch.manual_seed(seed)
    return random.Random(seed)


def device_of(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
