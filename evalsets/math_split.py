"""The MATH training split: the 5,000 problems of Hendrycks MATH's test file minus the 500 of
MATH500 (PRM800K's split, OpenAI "Let's Verify Step by Step"), i.e. the usual 4,500 problems that
may be trained on while MATH500 stays an evaluation set. Problems are matched by their exact
`problem` text (all 500 MATH500 problems occur verbatim in the test file; the function checks
that every one was found, so a changed file fails loudly instead of leaking)."""
from __future__ import annotations

import json
from pathlib import Path

from core.paths import corpus_dir

from .items import EvalItem
from .readers import EvalSetError, read_math, read_math500

MATH_TEST = Path("math/math-hendrycks/math/test.jsonl")
MATH500 = Path("math/math-hendrycks/math_oai/test.jsonl")


def math_train_split(corpus: Path | None = None, math_path: Path | None = None,
                     math500_path: Path | None = None) -> list[EvalItem]:
    """The MATH problems not in MATH500 (benchmark name "math_train"), in file order."""
    base = Path(corpus) if corpus else corpus_dir()
    full = list(read_math(math_path or base / MATH_TEST, benchmark="math_train"))
    held = {it.fields["problem"] for it in read_math500(math500_path or base / MATH500)}
    keep = [it for it in full if it.fields["problem"] not in held]
    found = len(full) - len(keep)
    if found != len(held):
        raise EvalSetError(f"only {found} of the {len(held)} MATH500 problems were found in the "
                           f"MATH file; refusing to build a training split that may contain them")
    return keep


def write_math_train_jsonl(out: Path, corpus: Path | None = None) -> Path:
    """Write the split as JSON lines ({problem, level, type, solution, idx}) to `out`, replacing
    it atomically; returns `out`. Deterministic: the same bytes for the same input."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for it in math_train_split(corpus):
            f.write(json.dumps(it.fields, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(out)
    return out
