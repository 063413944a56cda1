"""Learning-rate schedules per stage and batch-size / sequence-length ramps, all in tokens.

Everything is a pure function of the tokens trained so far, so a resumed run recomputes the same
values and a ramp change moves no schedule point.

- ``warmup_cosine`` (pre-training): linear warm-up from 0 to the peak LR over ``warmup_tokens``,
  then cosine decay to ``min_lr_ratio * peak`` at the end of the stage (Llama 3: 1% of peak).
- ``linear_to_zero`` (annealing): linear decay from the LR at the switch to 0 at the end of the stage.
- ``constant``: the peak LR (after the optional warm-up).

Ramps: a list of ``{from_tokens, batch_tokens, seq_len}`` sorted by ``from_tokens`` (tokens over the
whole run); the last one whose threshold has been reached applies (Llama 3: 4M tokens at 4,096 ->
8M at 8,192 after 252M tokens -> 16M after 2.87T).
"""
from __future__ import annotations

import math


def stage_lr(kind: str, tokens: float, stage_tokens: float, peak_lr: float, start_lr: float | None = None,
             warmup_tokens: float = 0, min_lr_ratio: float = 0.01, batch_tokens: float = 0) -> float:
    """LR of the step that starts after ``tokens`` tokens of a stage of ``stage_tokens`` tokens.

    Warm-up counts the step's own tokens (``batch_tokens``) so the first step does not get LR 0.
    """
    start = peak_lr if start_lr is None else start_lr
    if warmup_tokens > 0 and tokens < warmup_tokens and kind != "linear_to_zero":
        return start * min((tokens + batch_tokens) / warmup_tokens, 1.0)
    if kind == "constant":
        return start
    span = max(stage_tokens - warmup_tokens, 1)
    progress = min(max((tokens - warmup_tokens) / span, 0.0), 1.0)
    if kind == "warmup_cosine":
        lo = min_lr_ratio * start
        return lo + 0.5 * (start - lo) * (1 + math.cos(math.pi * progress))
    if kind == "linear_to_zero":
        return start * (1.0 - min(max(tokens / max(stage_tokens, 1), 0.0), 1.0))
    raise ValueError(f"unknown schedule {kind!r}; use warmup_cosine, linear_to_zero or constant")


def ramp_at(ramps: list[dict], tokens_so_far: float) -> dict:
    """The ramp entry in force after ``tokens_so_far`` tokens of the run."""
    if not ramps:
        raise ValueError("at least one ramp entry (batch_tokens, seq_len) is required")
    cur = ramps[0]
    for r in ramps:
        if tokens_so_far >= r["from_tokens"]:
            cur = r
    return cur


def plan_steps(stages: list[dict], ramps: list[dict]) -> list[dict]:
    """Every step of the run in advance: stage, tokens before it, batch tokens and sequence length.

    Used for the progress display / ETA and by the tests of the ramps; the loop itself derives the
    same values step by step (``ramp_at`` on the tokens trained so far).
    """
    steps, total = [], 0
    for si, st in enumerate(stages):
        done = 0
        while done < st["tokens"]:
            r = ramp_at(ramps, total)
            steps.append({"stage": si, "tokens_before": total, "stage_tokens_before": done,
                          "batch_tokens": r["batch_tokens"], "seq_len": r["seq_len"]})
            done += r["batch_tokens"]
            total += r["batch_tokens"]
    return steps
