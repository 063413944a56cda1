"""Rejection sampling: K replies per prompt from the current model, scored, the best kept.

    python -m trainer.rejection --model MODEL_DIR --prompts PROMPT_TABLE --out OUT_DIR
                                [--reward RM_DIR] [k=8 temperature=0.7 ...]

Replies are sampled with trainer/generate.py (batched, KV cache, temperature and top-p, a seeded
generator per sample: the same seed gives the same samples). Each reply is scored by the answer
checker of its prompt (``checker`` + ``answer`` columns, trainer/checkers.py) or, with a reward
model, by the reward model; with both, the checker decides and the reward breaks ties. The best
reply of every prompt is kept if its score reaches ``min_score`` (e.g. 1.0: only correct answers
for maths). Written:
- ``sft.jsonl``: the kept dialogues (prompt + best reply) with their score: the next SFT data;
- ``samples.jsonl``: every prompt's K replies and scores (the record Llama 3 keeps);
- ``pairs.jsonl``: (best, worst) preference pairs where the two scores differ: fresh DPO data.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.validate import option
from trainer.chat_format import EOT, encode_prompt, special_ids
from trainer.checkers import check
from trainer.generate import generate


@dataclass
class RejectionConfig:
    k: int = option(8, ge=1)
    temperature: float = option(0.7, ge=0)
    top_p: float = option(0.95, gt=0, le=1)
    max_new_tokens: int = option(256, ge=1)
    batch_size: int = option(32, ge=1)
    min_score: float | None = None   # keep a prompt's best reply only if its score >= this
    seed: int = 0


def sample_replies(model, tok, prompts: list[list[dict]], k: int, temperature: float, top_p: float,
                   max_new_tokens: int, batch_size: int, seed: int) -> list[list[str]]:
    """K sampled replies (text) per prompt (a list of messages)."""
    eot = special_ids(tok)[EOT]
    ids = [encode_prompt(tok, p) for p in prompts]
    flat = [x for x in ids for _ in range(k)]
    outs = generate(model, flat, max_new_tokens, temperature=temperature, top_p=top_p, stop_ids=(eot,),
                    seed=seed, batch_size=batch_size)
    texts = [tok.decode(o) for o in outs]
    return [texts[i * k:(i + 1) * k] for i in range(len(prompts))]


def usable(tok, text: str) -> bool:
    """A reply that can be trained on: encodable by ``tok`` (see posttrain.encodable)."""
    from trainer.posttrain import encodable
    return encodable(tok, text)


def greedy_replies(model, tok, prompts: list[list[dict]], max_new_tokens: int, batch_size: int = 32) -> list[str]:
    eot = special_ids(tok)[EOT]
    outs = generate(model, [encode_prompt(tok, p) for p in prompts], max_new_tokens, stop_ids=(eot,),
                    batch_size=batch_size)
    return [tok.decode(o) for o in outs]


def exact_match(model, tok, records: list[dict], max_new_tokens: int, batch_size: int = 32) -> float:
    """Share of prompts whose greedy reply passes the prompt's checker."""
    if not records:
        return float("nan")
    replies = greedy_replies(model, tok, [list(r["messages"]) for r in records], max_new_tokens, batch_size)
    return sum(check(r["checker"], r["answer"], c) for r, c in zip(records, replies)) / len(records)


def score_replies(records: list[dict], replies: list[list[str]], tok=None, reward_model=None) -> list[list[float]]:
    """Checker score (0/1) where the record has a checker; reward-model score otherwise; with both,
    checker + sigmoid(reward) / 2, so the checker decides and the reward only breaks ties."""
    import math
    out = []
    for r, reps in zip(records, replies):
        s = [0.0] * len(reps)
        if r.get("checker"):
            s = [check(r["checker"], r["answer"], c) for c in reps]
        if reward_model is not None:
            ok = [i for i, c in enumerate(reps) if usable(tok, c)]
            rw = [-math.inf] * len(reps)   # a reply the tokenizer cannot encode ranks last
            for i, v in zip(ok, reward_model.score(tok, [list(r["messages"]) + [{"role": "assistant", "content": reps[i]}]
                                                          for i in ok])):
                rw[i] = v
            if r.get("checker"):
                s = [a + 0.5 / (1 + math.exp(-b)) if b > -math.inf else a - 1.0 for a, b in zip(s, rw)]
            else:
                s = rw
        elif not r.get("checker"):
            raise ValueError(f"prompt {r.get('id')}: no checker and no reward model to score it")
        out.append(s)
    return out


def best_and_worst(tok, replies: list[str], scores: list[float]) -> tuple[int, int] | None:
    """Indices of the best (highest score, the earliest on a tie) and the worst (lowest score, the
    earliest on a tie) of the ``usable`` replies; None when no reply is usable."""
    ok = [i for i in range(len(replies)) if usable(tok, replies[i])]
    if not ok:
        return None
    return max(ok, key=lambda i: (scores[i], -i)), min(ok, key=lambda i: (scores[i], i))


def rejection_sample(model, tok, records: list[dict], cfg: RejectionConfig, reward_model=None, log=print) -> dict:
    """Returns {"sft": [...], "samples": [...], "pairs": [...], "stats": {...}} (records as dicts)."""
    t0 = time.perf_counter()
    prompts = [list(r["messages"]) for r in records]
    replies = sample_replies(model, tok, prompts, cfg.k, cfg.temperature, cfg.top_p, cfg.max_new_tokens,
                             cfg.batch_size, cfg.seed)
    scores = score_replies(records, replies, tok, reward_model)
    sft, samples, pairs = [], [], []
    for r, reps, sc in zip(records, replies, scores):
        bw = best_and_worst(tok, reps, sc)
        samples.append({"id": r.get("id"), "messages": r["messages"], "replies": reps, "scores": sc,
                        "best": bw[0] if bw else None})
        if bw is None:
            continue
        best, worst = bw
        if cfg.min_score is None or sc[best] >= cfg.min_score:
            sft.append({"id": r.get("id"), "messages": list(r["messages"]) +
                        [{"role": "assistant", "content": reps[best]}], "score": sc[best], "source": "rejection"})
        if sc[best] > sc[worst]:
            pairs.append({"id": r.get("id"), "prompt": r["messages"], "responses": [reps[best], reps[worst]],
                          "scores": [sc[best], sc[worst]], "source": "rejection"})
    flat = [s for sc in scores for s in sc]
    stats = {"prompts": len(records), "k": cfg.k, "kept": len(sft), "pairs": len(pairs),
             "mean_score": sum(flat) / max(len(flat), 1),
             "best_mean_score": sum(max(s) for s in scores) / max(len(scores), 1),
             "seconds": time.perf_counter() - t0}
    log(f"[rejection] {len(records)} prompts x {cfg.k}: mean score {stats['mean_score']:.3f}, best-of-k "
        f"{stats['best_mean_score']:.3f}, kept {len(sft)}, pairs {len(pairs)}")
    return {"sft": sft, "samples": samples, "pairs": pairs, "stats": stats}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    from trainer.posttrain import load_model, load_tokenizer, parse_step_args, step_parser
    from trainer.posttrain_data import read_records
    from trainer.reward import load_reward_model
    ap = step_parser("python -m trainer.rejection", __doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True, help="prompt table: messages (+ checker, answer)")
    ap.add_argument("--reward", help="reward model directory")
    ap.add_argument("--out", required=True)
    parsed = parse_step_args(ap, RejectionConfig, argv)
    if parsed is None:
        return 2
    a, cfg, dev = parsed
    model = load_model(a.model, dev)
    tok = load_tokenizer(a.model)
    rm = load_reward_model(a.reward, dev) if a.reward else None
    res = rejection_sample(model, tok, read_records(a.prompts), cfg, rm)
    out = Path(a.out)
    for name in ("sft", "samples", "pairs"):
        write_jsonl(out / f"{name}.jsonl", res[name])
    (out / "stats.json").write_text(json.dumps(res["stats"], indent=1))
    print(json.dumps(res["stats"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
