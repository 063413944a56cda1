"""Synthetic verifiable chat tasks, to measure post-training with models small enough for a CPU.

- ``sort``: "Sort: 7 2 9 2" -> "2 2 7 9" (single digits, a list of ``min_len``..``max_len``).
- ``add``:  "Add: 58 + 347" -> "405" (numbers of ``min_len``..``max_len`` digits).

Every prompt record has ``messages`` (one user message), ``answer`` and ``checker`` (exact match
after whitespace normalisation, trainer/checkers.py), like the maths prompt tables. Prompts are
drawn by a seeded generator; ``split_records`` keeps held-out prompts disjoint from training ones.
``pretrain_texts`` gives plain-text (not chat-formatted) worked examples for a pre-training mix.
"""
from __future__ import annotations

import random


def _sort_item(rng: random.Random, min_len: int, max_len: int) -> tuple[str, str]:
    xs = [rng.randrange(10) for _ in range(rng.randint(min_len, max_len))]
    return "Sort: " + " ".join(map(str, xs)), " ".join(map(str, sorted(xs)))


def _add_item(rng: random.Random, min_len: int, max_len: int) -> tuple[str, str]:
    a = rng.randrange(10 ** (rng.randint(min_len, max_len) - 1), 10 ** max_len)
    b = rng.randrange(10 ** (rng.randint(min_len, max_len) - 1), 10 ** max_len)
    return f"Add: {a} + {b}", str(a + b)


TASKS = {"sort": _sort_item, "add": _add_item}


def make_prompts(task: str, n: int, seed: int, min_len: int = 3, max_len: int = 6,
                 exclude: set[str] | None = None) -> list[dict]:
    """``n`` distinct prompt records of ``task`` (none whose question is in ``exclude``)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: {sorted(TASKS)}")
    rng = random.Random(f"{task}:{seed}")
    seen = set(exclude or ())
    out = []
    tries = 0
    while len(out) < n:
        q, a = TASKS[task](rng, min_len, max_len)
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct {task} prompts of length {min_len}..{max_len}")
        if q in seen:
            continue
        seen.add(q)
        out.append({"id": f"{task}-{seed}-{len(out)}", "source": f"synthetic/{task}", "split": "train",
                    "messages": [{"role": "user", "content": q}], "answer": a, "checker": task,
                    "reference": a})
    return out


def sft_records(prompts: list[dict]) -> list[dict]:
    """Gold demonstrations: each prompt with its correct answer as the assistant reply."""
    return [{"id": p["id"], "source": p["source"], "messages": list(p["messages"]) +
             [{"role": "assistant", "content": p["answer"]}], "score": 1.0} for p in prompts]


def pretrain_texts(task: str, n: int, seed: int, min_len: int = 3, max_len: int = 6,
                   exclude: set[str] | None = None) -> list[str]:
    """Plain-text worked examples ("Sort: 3 1 2\\nAnswer: 1 2 3"), no chat format."""
    return [f"{p['messages'][0]['content']}\nAnswer: {p['answer']}"
            for p in make_prompts(task, n, seed, min_len, max_len, exclude)]
