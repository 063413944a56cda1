"""Direct preference optimisation as Llama 3 used it (section 4.1.4).

    python -m trainer.dpo --init MODEL_DIR --data PREF_TABLE --heldout PREF_TABLE --out DIR

Loss per pair (chosen c, rejected r, prompt x), policy pi, frozen reference pi_ref:

    margin = beta * [(log pi(c|x) - log pi_ref(c|x)) - (log pi(r|x) - log pi_ref(r|x))]
    loss   = -log sigmoid(margin) + alpha * NLL(c) / |c|

- the log-probabilities sum over the *content* tokens of the final assistant message only: the
  special formatting tokens (headers, ``<|eot_id|>``) are masked out of both chosen and rejected,
  as Llama 3 did, because the same tokens in both replies push the loss in opposite directions;
- ``alpha`` (Llama 3: 0.2) weighs the NLL of the chosen reply, per token (Pang et al. 2024);
- Llama 3 used beta 0.1 and a learning rate of 1e-5.

An ordered list of responses gives the pairs (best, each other). The reference is a frozen copy
of the starting model. Reported on held-out pairs: preference accuracy (margin > 0) and the mean
implicit reward margin.
"""
from __future__ import annotations

import copy
import json
import sys
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from core.validate import option
from trainer.chat_format import encode_dialog
from trainer.posttrain import (OptimSettings, load_model, load_tokenizer, parse_step_args, save_model,
                               sequence_logprobs, step_parser, train_steps)


@dataclass
class DPOConfig:
    beta: float = option(0.1, gt=0)
    nll_alpha: float = option(0.2, ge=0)
    batch_pairs: int = 8
    epochs: float = 1.0
    steps: int = 0
    max_len: int = 512
    seed: int = 0
    log_every: int = 50
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=1e-5, warmup_steps=5))


@dataclass
class Pair:
    chosen: list[int]
    chosen_mask: list[bool]      # True at the counted (content) tokens of the final reply
    rejected: list[int]
    rejected_mask: list[bool]


def make_pairs(tok, records: list[dict], max_len: int = 512) -> tuple[list[Pair], int]:
    out, dropped = [], 0
    for r in records:
        enc = [encode_dialog(tok, list(r["prompt"]) + [{"role": "assistant", "content": c}])
               for c in r["responses"]]
        if len(enc) < 2 or max(len(e.ids) for e in enc) > max_len:
            dropped += 1
            continue
        best = enc[0]
        for other in enc[1:]:
            out.append(Pair(best.ids, best.loss_mask("dpo", "last"), other.ids, other.loss_mask("dpo", "last")))
    return out, dropped


def dpo_terms(policy, reference, pairs: list[Pair], beta: float, device) -> dict:
    """Per-pair log-probabilities, margins and the two loss terms (tensors, (B,))."""
    seqs = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    masks = [p.chosen_mask for p in pairs] + [p.rejected_mask for p in pairs]
    lp = sequence_logprobs(policy, seqs, masks, device)
    with torch.no_grad():
        ref = sequence_logprobs(reference, seqs, masks, device)
    B = len(pairs)
    pc, pr, rc, rr = lp[:B], lp[B:], ref[:B], ref[B:]
    margin = beta * ((pc - rc) - (pr - rr))
    n_c = torch.tensor([max(sum(p.chosen_mask), 1) for p in pairs], device=device, dtype=lp.dtype)
    return {"margin": margin, "pref": -F.logsigmoid(margin), "nll": -pc / n_c,
            "chosen_reward": beta * (pc - rc), "rejected_reward": beta * (pr - rr),
            "logprob_win": pc > pr}


def dpo_loss(policy, reference, pairs: list[Pair], beta: float, alpha: float, device) -> tuple[torch.Tensor, dict]:
    t = dpo_terms(policy, reference, pairs, beta, device)
    loss = (t["pref"] + alpha * t["nll"]).mean()
    return loss, t


def frozen_copy(model):
    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def train_dpo(policy, tok, records: list[dict], cfg: DPOConfig, reference=None, log=print) -> dict:
    dev = policy.output.weight.device
    reference = reference if reference is not None else frozen_copy(policy)
    pairs, dropped = make_pairs(tok, records, cfg.max_len)
    if not pairs:
        raise ValueError("no preference pair for DPO")
    steps = cfg.steps or max(1, round(cfg.epochs * len(pairs) / cfg.batch_pairs))

    def step_loss(batch):
        loss, t = dpo_loss(policy, reference, batch, cfg.beta, cfg.nll_alpha, dev)
        return loss, f" train acc {float((t['margin'] > 0).float().mean()):.2f}"
    res = train_steps(policy, pairs, steps, cfg.batch_pairs, cfg.optim, cfg.seed, step_loss, "dpo",
                      cfg.log_every, log)
    return {"steps": steps, "pairs": len(pairs), "dropped": dropped, **res}


@torch.no_grad()
def evaluate_preferences(policy, reference, tok, records: list[dict], beta: float = 0.1,
                         max_len: int = 512, batch: int = 16) -> dict:
    """Held-out DPO accuracy (implicit reward margin > 0) and mean margin of ``policy`` against
    ``reference``; also the plain log-likelihood accuracy of ``policy`` (log pi(c) > log pi(r))."""
    dev = policy.output.weight.device
    pairs, _ = make_pairs(tok, records, max_len)
    margins, lp_wins = [], []
    for a in range(0, len(pairs), batch):
        t = dpo_terms(policy, reference, pairs[a:a + batch], beta, dev)
        margins.extend(t["margin"].tolist())
        lp_wins.extend(t["logprob_win"].float().tolist())
    n = max(len(margins), 1)
    return {"pairs": len(margins), "accuracy": sum(m > 0 for m in margins) / n,
            "mean_margin": sum(margins) / n, "logprob_accuracy": sum(lp_wins) / n}


def main(argv=None) -> int:
    from trainer.posttrain_data import read_records
    ap = step_parser("python -m trainer.dpo", __doc__)
    ap.add_argument("--init", required=True, help="policy start (and frozen reference) model directory")
    ap.add_argument("--data", required=True, help="preference table (prompt, responses best first)")
    ap.add_argument("--heldout", help="held-out preference table")
    ap.add_argument("--out", required=True)
    parsed = parse_step_args(ap, DPOConfig, argv)
    if parsed is None:
        return 2
    a, cfg, dev = parsed
    tok = load_tokenizer(a.init)
    policy = load_model(a.init, dev)
    reference = frozen_copy(policy)
    res = train_dpo(policy, tok, read_records(a.data), cfg, reference)
    if a.heldout:
        res["heldout"] = evaluate_preferences(policy, reference, tok, read_records(a.heldout), cfg.beta, cfg.max_len)
    save_model(a.out, policy, {"step": "dpo", "init": a.init, "data": a.data, "config": asdict(cfg), "result": res},
               tokenizer=tok)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
