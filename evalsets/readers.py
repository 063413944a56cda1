"""One reader per upstream benchmark format. Each takes the set's path (a file or the folder
holding the release files) and yields `EvalItem`s in file order; the registry (`registry.py`)
names which reader reads which path.

Formats (as released, see each folder's README/LICENSE in the sample corpus):
* `piqa`: `valid.jsonl` {goal, sol1, sol2} + `valid-labels.lst` (0/1 per line, aligned).
* `winogrande`: `dev.jsonl` {qID, sentence with one `_`, option1, option2, answer "1"/"2"}.
* `arc`: ARC-V1 JSON lines {id, question: {stem, choices: [{text, label}]}, answerKey}.
* `lambada`: OpenAI's detokenised LAMBADA test, JSON lines {text} (gzipped); target = last word.
* `humaneval`: {task_id, prompt, canonical_solution, test, entry_point} (gzipped).
* `gsm8k`: {question, answer with `<<calc>>` notes and `#### N`}.
* `math500`: the PRM800K/OpenAI MATH500 file {problem, solution, answer, subject, level, unique_id}.
* `math`: Hendrycks MATH {problem, level, type, solution, idx}; answer = last \\boxed{}.
* `jsonl` / `parquet`: any user file; `text_fields` name the fields that make up an item's text,
  `id_field` (optional) its id.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from core import corpus

from .items import (GENERATION, MULTIPLE_CHOICE, EvalItem, Generation, MultipleChoice,
                    gsm8k_final_answer, last_boxed, strip_gsm8k_calculator)


class EvalSetError(ValueError):
    pass


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(record number from 0, record) for every non-empty line (core.corpus.read_jsonl: gzip by
    suffix); a bad line is an EvalSetError with its file and line number (an evaluation set is
    never read partly)."""
    try:
        yield from enumerate(corpus.read_jsonl(path))
    except ValueError as e:
        raise EvalSetError(str(e)) from None


def _need(rec: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in rec]
    if missing:
        raise EvalSetError(f"{where}: missing field(s) {missing}")


def _file(path: Path, name: str) -> Path:
    p = path / name if path.is_dir() else path
    if not p.is_file():
        raise EvalSetError(f"evaluation set file not found: {p}")
    return p


def _labels(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def read_piqa(path: Path, benchmark: str = "piqa", **_) -> Iterator[EvalItem]:
    data = _file(path, "valid.jsonl")
    labels_file = data.with_name(data.name.replace(".jsonl", "-labels.lst"))
    if not labels_file.is_file():
        raise EvalSetError(f"PIQA labels file not found beside {data}: {labels_file}")
    labels = _labels(labels_file)
    rows = list(read_jsonl(data))
    if len(labels) != len(rows):
        raise EvalSetError(f"{labels_file}: {len(labels)} labels for {len(rows)} items")
    for (i, r), lab in zip(rows, labels):
        _need(r, ("goal", "sol1", "sol2"), f"{data}:{i + 1}")
        if lab not in ("0", "1"):
            raise EvalSetError(f"{labels_file}:{i + 1}: label {lab!r} is not 0 or 1")
        mc = MultipleChoice(r["goal"], (r["sol1"], r["sol2"]), int(lab))
        yield EvalItem(benchmark, str(i), {**r, "label": int(lab)}, MULTIPLE_CHOICE, mc=mc,
                       contamination_text="\n".join([r["goal"], r["sol1"], r["sol2"]]))


def read_winogrande(path: Path, benchmark: str = "winogrande", **_) -> Iterator[EvalItem]:
    data = _file(path, "dev.jsonl")
    for i, r in read_jsonl(data):
        _need(r, ("sentence", "option1", "option2", "answer"), f"{data}:{i + 1}")
        s = r["sentence"]
        if s.count("_") != 1:
            raise EvalSetError(f"{data}:{i + 1}: sentence needs exactly one '_' blank")
        if str(r["answer"]) not in ("1", "2"):
            raise EvalSetError(f"{data}:{i + 1}: answer {r['answer']!r} is not 1 or 2")
        before, after = s.split("_")
        mc = MultipleChoice(before, (r["option1"], r["option2"]), int(r["answer"]) - 1,
                            suffix=after)
        gold_sentence = before + mc.choices[mc.gold] + after
        yield EvalItem(benchmark, str(r.get("qID", i)), r, MULTIPLE_CHOICE, mc=mc,
                       contamination_text=gold_sentence)


def read_arc(path: Path, benchmark: str = "arc_easy", **_) -> Iterator[EvalItem]:
    data = _file(path, "ARC-Easy-Test.jsonl")
    for i, r in read_jsonl(data):
        _need(r, ("question", "answerKey"), f"{data}:{i + 1}")
        q = r["question"]
        choices = q.get("choices") or []
        labels = [c["label"] for c in choices]
        if r["answerKey"] not in labels:
            raise EvalSetError(f"{data}:{i + 1}: answerKey {r['answerKey']!r} not in {labels}")
        texts = tuple(c["text"] for c in choices)
        mc = MultipleChoice(q["stem"], texts, labels.index(r["answerKey"]))
        yield EvalItem(benchmark, str(r.get("id", i)), r, MULTIPLE_CHOICE, mc=mc,
                       contamination_text="\n".join((q["stem"],) + texts))


def read_lambada(path: Path, benchmark: str = "lambada", **_) -> Iterator[EvalItem]:
    data = _file(path, "lambada_test.jsonl.gz")
    for i, r in read_jsonl(data):
        _need(r, ("text",), f"{data}:{i + 1}")
        text = r["text"]
        if " " not in text.strip():
            raise EvalSetError(f"{data}:{i + 1}: passage without a last word")
        context, word = text.rsplit(" ", 1)
        yield EvalItem(benchmark, str(i), r, GENERATION, gen=Generation(context, word),
                       contamination_text=text)


def read_humaneval(path: Path, benchmark: str = "humaneval", **_) -> Iterator[EvalItem]:
    data = _file(path, "HumanEval.jsonl.gz")
    for i, r in read_jsonl(data):
        _need(r, ("task_id", "prompt", "canonical_solution", "test", "entry_point"),
              f"{data}:{i + 1}")
        gen = Generation(r["prompt"], r["canonical_solution"], r["canonical_solution"])
        yield EvalItem(benchmark, r["task_id"], r, GENERATION, gen=gen,
                       contamination_text=r["prompt"] + r["canonical_solution"])


def read_gsm8k(path: Path, benchmark: str = "gsm8k_test", **_) -> Iterator[EvalItem]:
    data = _file(path, "test.jsonl")
    for i, r in read_jsonl(data):
        _need(r, ("question", "answer"), f"{data}:{i + 1}")
        gen = Generation(r["question"], gsm8k_final_answer(r["answer"]), r["answer"])
        yield EvalItem(benchmark, str(i), r, GENERATION, gen=gen,
                       contamination_text=r["question"] + "\n"
                       + strip_gsm8k_calculator(r["answer"]))


def read_math500(path: Path, benchmark: str = "math500", **_) -> Iterator[EvalItem]:
    data = _file(path, "test.jsonl")
    for i, r in read_jsonl(data):
        _need(r, ("problem", "solution", "answer"), f"{data}:{i + 1}")
        gen = Generation(r["problem"], r["answer"], r["solution"])
        yield EvalItem(benchmark, str(r.get("unique_id", i)), r, GENERATION, gen=gen,
                       contamination_text=r["problem"] + "\n" + r["solution"])


def read_math(path: Path, benchmark: str = "math", **_) -> Iterator[EvalItem]:
    """Hendrycks MATH JSON lines (the 5,000-problem test file of the sample corpus)."""
    data = _file(path, "test.jsonl")
    for i, r in read_jsonl(data):
        _need(r, ("problem", "solution"), f"{data}:{i + 1}")
        answer = last_boxed(r["solution"])
        gen = Generation(r["problem"], answer if answer is not None else "", r["solution"])
        yield EvalItem(benchmark, str(r.get("idx", i)), r, GENERATION, gen=gen,
                       contamination_text=r["problem"] + "\n" + r["solution"])


def _user_items(records: Iterator[tuple[int, dict]], where: str, benchmark: str,
                text_fields: list[str] | None, id_field: str | None) -> Iterator[EvalItem]:
    if not text_fields:
        raise EvalSetError(f"{benchmark}: a user evaluation set needs `text_fields`")
    for i, r in records:
        _need(r, tuple(text_fields), f"{where}:{i + 1}")
        parts = [str(r[f]) for f in text_fields if r[f] is not None]
        item_id = str(r[id_field]) if id_field else str(i)
        yield EvalItem(benchmark, item_id, r, "text", contamination_text="\n".join(parts))


def read_user_jsonl(path: Path, benchmark: str = "user", text_fields: list[str] | None = None,
                    id_field: str | None = None, **_) -> Iterator[EvalItem]:
    if not path.is_file():
        raise EvalSetError(f"evaluation set file not found: {path}")
    yield from _user_items(read_jsonl(path), str(path), benchmark, text_fields, id_field)


def read_user_parquet(path: Path, benchmark: str = "user", text_fields: list[str] | None = None,
                      id_field: str | None = None, **_) -> Iterator[EvalItem]:
    import pyarrow.parquet as pq
    if not path.exists():
        raise EvalSetError(f"evaluation set file not found: {path}")
    table = pq.read_table(path)
    missing = [f for f in (text_fields or []) + ([id_field] if id_field else [])
               if f not in table.column_names]
    if missing:
        raise EvalSetError(f"{path}: missing column(s) {missing}; has {table.column_names}")
    yield from _user_items(enumerate(table.to_pylist()), str(path), benchmark, text_fields,
                           id_field)


READERS: dict[str, Callable[..., Iterator[EvalItem]]] = {
    "piqa": read_piqa,
    "winogrande": read_winogrande,
    "arc": read_arc,
    "lambada": read_lambada,
    "humaneval": read_humaneval,
    "gsm8k": read_gsm8k,
    "math500": read_math500,
    "math": read_math,
    "jsonl": read_user_jsonl,
    "parquet": read_user_parquet,
}
