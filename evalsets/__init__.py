"""Registered evaluation sets (ground floor: imports no stage).

`load_registry()` reads `configs/evalsets.yaml`; each `EvalSetSpec.read()` gives `EvalItem`s with
the upstream fields and a structured view (`mc`: context/choices/gold; `gen`: prompt/answer);
`text_for_contamination(item)` is what decontamination looks for; `math_train_split()` is the
4,500 MATH problems outside MATH500. Used by the decontamination stage and the evaluation
harness alike."""
from .items import (GENERATION, MULTIPLE_CHOICE, EvalItem, Generation, MultipleChoice,
                    text_for_contamination)
from .math_split import math_train_split, write_math_train_jsonl
from .readers import READERS, EvalSetError
from .registry import DEFAULT_CONFIG, EvalSetSpec, load_registry, read_sets, user_set

__all__ = ["EvalItem", "MultipleChoice", "Generation", "MULTIPLE_CHOICE", "GENERATION",
           "text_for_contamination", "math_train_split", "write_math_train_jsonl", "READERS",
           "EvalSetError", "EvalSetSpec", "load_registry", "read_sets", "user_set",
           "DEFAULT_CONFIG"]
