"""Reward model: the language model with a scalar head, trained with a Bradley-Terry loss.

    python -m trainer.reward --init MODEL_DIR --data PREF_TABLE --heldout PREF_TABLE --out DIR

A preference record is a prompt (a list of messages) and ``responses``: assistant replies
ordered best first. Two responses are Llama 2/3's chosen/rejected pair; Llama 3 also had a third,
"edited" response ranked above chosen (edited > chosen > rejected): any ordered list works. The
loss is the Bradley-Terry negative log-likelihood averaged over every ordered pair (i < j) of a
record: ``-log sigmoid(r_i - r_j)``.

The reward of a reply is the head applied to the final hidden state at the reply's closing
``<|eot_id|>`` (the whole dialogue rendered in the chat format is read first). Held-out accuracy
is the share of ordered pairs ranked correctly (ties count one half), reported next to the
length-only baseline: "the longer (or shorter: whichever direction is right more often on the
training pairs) reply is better".
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainer.chat_format import encode_dialog
from trainer.model import Llama
from trainer.posttrain import (OptimSettings, load_model, load_tokenizer, pad_right, parse_step_args,
                               resolve_model_dir, save_model, step_parser, train_steps)


@dataclass
class RewardConfig:
    batch_records: int = 8
    epochs: float = 1.0
    steps: int = 0
    max_len: int = 512               # longer dialogues are dropped (counted)
    seed: int = 0
    log_every: int = 50
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=5e-5, warmup_steps=10))


class RewardModel(nn.Module):
    def __init__(self, lm: Llama):
        super().__init__()
        self.lm = lm
        self.head = nn.Linear(lm.cfg.dim, 1, bias=True, device=lm.output.weight.device)   # fp32, beside the LM
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()

    @property
    def cfg(self):
        return self.lm.cfg

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T) right-padded ids; the reward of row b is read at position lengths[b] - 1."""
        h = self.lm.hidden(x)
        last = h[torch.arange(x.shape[0], device=x.device), lengths - 1]
        return self.head(last.float()).squeeze(-1)

    def score(self, tok, dialogs: list[list[dict]], batch: int = 16) -> list[float]:
        """Reward of the last message of every dialogue."""
        dev = self.head.weight.device
        out = []
        was = self.training
        self.eval()
        with torch.no_grad():
            for a in range(0, len(dialogs), batch):
                seqs = [encode_dialog(tok, d).ids for d in dialogs[a:a + batch]]
                x, n = pad_right(seqs, device=dev)
                out.extend(self(x, n).tolist())
        self.train(was)
        return out


def bt_loss(rewards: torch.Tensor, groups: list[int]) -> torch.Tensor:
    """Bradley-Terry loss for consecutive groups of rewards, each ordered best first: the mean over
    all ordered pairs (i < j) within a group of -log sigmoid(r_i - r_j)."""
    terms, a = [], 0
    for n in groups:
        r = rewards[a:a + n]
        i, j = torch.triu_indices(n, n, offset=1, device=r.device)
        terms.append(-F.logsigmoid(r[i] - r[j]))
        a += n
    return torch.cat(terms).mean()


def _records(tok, records: list[dict], max_len: int) -> tuple[list[list[list[int]]], int]:
    out, dropped = [], 0
    for r in records:
        seqs = [encode_dialog(tok, list(r["prompt"]) + [{"role": "assistant", "content": c}]).ids
                for c in r["responses"]]
        if len(seqs) < 2 or max(map(len, seqs)) > max_len:
            dropped += 1
            continue
        out.append(seqs)
    return out, dropped


def train_reward(rm: RewardModel, tok, records: list[dict], cfg: RewardConfig, log=print) -> dict:
    dev = rm.head.weight.device
    data, dropped = _records(tok, records, cfg.max_len)
    if not data:
        raise ValueError("no preference record to train the reward model on")
    steps = cfg.steps or max(1, round(cfg.epochs * len(data) / cfg.batch_records))

    def step_loss(batch):
        x, n = pad_right([s for rec in batch for s in rec], device=dev)
        return bt_loss(rm(x, n), [len(rec) for rec in batch]), ""
    res = train_steps(rm, data, steps, cfg.batch_records, cfg.optim, cfg.seed, step_loss, "reward",
                      cfg.log_every, log)
    return {"steps": steps, "records": len(data), "dropped": dropped, **res}


def pair_accuracy(scores: list[list[float]]) -> float:
    """Share of ordered pairs (i < j, i better) with s_i > s_j; ties count 1/2."""
    hit = tot = 0.0
    for s in scores:
        for i in range(len(s)):
            for j in range(i + 1, len(s)):
                hit += 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
                tot += 1
    return hit / tot if tot else float("nan")


def length_direction(records: list[dict]) -> int:
    """+1 if the longer reply is better more often on these (training) records, else -1."""
    lengths = [[float(len(c)) for c in r["responses"]] for r in records]
    return 1 if pair_accuracy(lengths) >= 0.5 else -1


def evaluate_reward(rm: RewardModel, tok, heldout: list[dict], train: list[dict] | None = None,
                    max_len: int = 512) -> dict:
    """Held-out pairwise accuracy of the reward model and of the length-only baseline."""
    kept, scores = [], []
    for r in heldout:
        dialogs = [list(r["prompt"]) + [{"role": "assistant", "content": c}] for c in r["responses"]]
        if len(dialogs) < 2 or max(len(encode_dialog(tok, d).ids) for d in dialogs) > max_len:
            continue
        kept.append(r)
        scores.append(rm.score(tok, dialogs))
    sign = length_direction(train or kept)
    length = [[sign * float(len(c)) for c in r["responses"]] for r in kept]
    margins = [s[0] - s[-1] for s in scores]
    return {"pairs": sum(len(s) * (len(s) - 1) // 2 for s in scores), "accuracy": pair_accuracy(scores),
            "length_baseline_accuracy": pair_accuracy(length),
            "length_baseline_direction": "longer" if sign > 0 else "shorter",
            "mean_margin": sum(margins) / max(len(margins), 1)}


def save_reward_model(out, rm: RewardModel, meta: dict, tok=None):
    return save_model(out, rm.lm, {**meta, "kind": "reward"}, tokenizer=tok,
                      extra={"value_head.pt": {k: v.detach().cpu() for k, v in rm.head.state_dict().items()}})


def load_reward_model(path, device="cpu") -> RewardModel:
    p = resolve_model_dir(path)
    rm = RewardModel(load_model(p, device))
    if (p / "value_head.pt").is_file():
        rm.head.load_state_dict(torch.load(p / "value_head.pt", map_location=device, weights_only=True))
    return rm


def main(argv=None) -> int:
    from trainer.posttrain_data import read_records
    ap = step_parser("python -m trainer.reward", __doc__)
    ap.add_argument("--init", required=True, help="model directory the reward model starts from")
    ap.add_argument("--data", required=True, help="preference table (prompt, responses best first)")
    ap.add_argument("--heldout", help="held-out preference table for accuracy")
    ap.add_argument("--out", required=True)
    parsed = parse_step_args(ap, RewardConfig, argv)
    if parsed is None:
        return 2
    a, cfg, dev = parsed
    tok = load_tokenizer(a.init)
    rm = RewardModel(load_model(a.init, dev))
    train = read_records(a.data)
    res = train_reward(rm, tok, train, cfg)
    if a.heldout:
        res["heldout"] = evaluate_reward(rm, tok, read_records(a.heldout), train, cfg.max_len)
    save_reward_model(a.out, rm, {"step": "reward", "init": a.init, "data": a.data, "config": asdict(cfg),
                                  "result": res}, tok)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
