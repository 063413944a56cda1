"""The uniform item of every registered evaluation set, and its structured views.

An `EvalItem` keeps the upstream record as it was (`fields`, plus the label read from a separate
labels file where the format has one) and, where the benchmark has one, a structured view that an
evaluation harness scores directly:

* `MultipleChoice(context, choices, gold, suffix)`: PIQA (goal; sol1/sol2), ARC (stem; choice
  texts), WinoGrande (the sentence up to the blank; the two options; `suffix` = the sentence after
  the blank, the part that is scored under each option, "partial scoring").
* `Generation(prompt, answer, reference)`: GSM8K (question; final number after `####`; the worked
  answer), MATH500 and the MATH training split (problem; the boxed/answer field; the solution),
  LAMBADA (the passage up to its last word; the last word), HumanEval (prompt; canonical solution).

`text_for_contamination(item)` is the text decontamination looks for in training documents: the
whole item as a reader of a web page would see it (question with every choice, question with its
worked answer, the full passage, the prompt with its solution).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MULTIPLE_CHOICE = "multiple_choice"
GENERATION = "generation"


@dataclass(frozen=True)
class MultipleChoice:
    context: str
    choices: tuple[str, ...]
    gold: int                  # index into `choices`
    suffix: str | None = None  # WinoGrande: the text after the blank, scored after each choice

    def scoring_pairs(self, sep: str = " ") -> list[tuple[str, str]]:
        """(conditioning text, scored continuation) per choice, the usual log-likelihood set-up:
        `context + sep + choice` scores the choice; with a `suffix` (WinoGrande) the choice fills
        the blank and the shared suffix is scored."""
        if self.suffix is None:
            return [(self.context, sep + c) for c in self.choices]
        return [(self.context + c, self.suffix) for c in self.choices]


@dataclass(frozen=True)
class Generation:
    prompt: str
    answer: str                 # the short answer a generation is checked against
    reference: str | None = None  # worked solution / canonical code, when the set has one


@dataclass(frozen=True)
class EvalItem:
    benchmark: str              # registered name, e.g. "piqa", "gsm8k_test"
    item_id: str                # stable within the benchmark (upstream id, else line number)
    fields: dict[str, Any]      # the upstream record (plus `label` from a labels file)
    kind: str                   # MULTIPLE_CHOICE | GENERATION | "text"
    mc: MultipleChoice | None = field(default=None, compare=False)
    gen: Generation | None = field(default=None, compare=False)
    contamination_text: str = field(default="", compare=False, repr=False)


_CALC = re.compile(r"<<[^<>]*>>")


def strip_gsm8k_calculator(text: str) -> str:
    """GSM8K answers carry calculator annotations `<<16-3-4=9>>`; a page quoting the solution
    would not, so they are removed before looking for it."""
    return _CALC.sub("", text)


def gsm8k_final_answer(answer: str) -> str:
    """The number after the last `####`, thousands separators removed."""
    if "####" not in answer:
        raise ValueError(f"GSM8K answer without '####': {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}) in a MATH solution, braces balanced."""
    i = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if i < 0:
        return None
    j = text.find("{", i)
    if j < 0:
        return None
    depth = 0
    for k in range(j, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return text[j + 1:k]
    return None


def text_for_contamination(item: EvalItem) -> str:
    """The item's text as it could appear in a training document (see the module docstring)."""
    return item.contamination_text
