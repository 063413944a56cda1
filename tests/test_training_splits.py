"""Training splits only: no configured training source and no classifier recipe may contain an
item of a registered evaluation set (configs/evalsets.yaml).

A text "contains" an item when it holds at least CONTAINED of the item's 13-grams (after the
decontamination stage's normalisation). Lower overlaps exist between honest training splits and
their test sets (MATH's templated problems share phrasing: up to 0.75 between the 4,500-problem
split and MATH500; GSM8K train/test up to 0.23) and are what the decontamination stage removes
from the documents; a source that holds the evaluation items themselves (MATH's full test file
holds every MATH500 problem) fails here. Web crawls (WARC) are not scanned here: what they quote
is the decontamination stage's job, checked by tests/test_decontaminate.py.
"""
from __future__ import annotations

import glob
import gzip
import json
from pathlib import Path

import pytest

import evalsets
from curation.decontaminate import ngrams

CONTAINED = 0.9
_SCANS: dict[str, list] = {}


@pytest.fixture(scope="module")
def index(corpus):
    sets = evalsets.read_sets(evalsets.load_registry(corpus=corpus))
    return ngrams.build_index([(b, it.item_id, evalsets.text_for_contamination(it))
                               for b, items in sets.items() for it in items], 13)


def _texts(path: str, fmt: str, text_field: str | None) -> list[str]:
    if fmt == "jsonl":
        op = gzip.open if path.endswith(".gz") else open
        fields = (text_field or "text").split(",")
        with op(path, "rt", encoding="utf-8") as f:
            return ["\n".join(str(r.get(k) or "") for k in fields) for r in map(json.loads, f)]
    raw = Path(path).read_bytes()
    return [raw.decode("utf-8", "replace")]


def contained(texts: list[str], index) -> list[tuple]:
    """(text number, benchmark, item, overlap) of every item a text contains. Results are cached
    per text: the recipes read some of the sources' files again."""
    todo = [t for t in dict.fromkeys(texts) if t not in _SCANS]
    found = ngrams.item_overlaps(todo, index)
    for t in todo:
        _SCANS[t] = []
    for (k, b, i), o in found.items():
        _SCANS[todo[k]].append((b, i, o))
    return sorted((k, b, i, round(o, 3)) for k, t in enumerate(texts) for b, i, o in _SCANS[t]
                  if o >= CONTAINED)


def source_violations(cfg: dict, index, tmp: Path) -> dict[str, list]:
    """Per configured source: the evaluation items its files contain."""
    from pipeline.config import DERIVED, corpus_path
    out = {}
    for src in cfg["sources"]:
        opts = src.get("options") or {}
        fmt = opts.get("fmt", "jsonl")
        if fmt in ("warc", "arc", "wet"):
            continue
        if src.get("derived"):
            fn, _, fname = DERIVED[src["derived"]]
            mod, _, name = fn.partition(":")
            import importlib
            paths = [str(getattr(importlib.import_module(mod), name)(tmp / fname))]
        else:
            paths = sorted(p for pat in src["paths"] for p in glob.glob(corpus_path(cfg, pat)))
        assert paths, f"source {src['name']}: no files"
        bad = []
        for p in paths:
            bad += [(p, *v) for v in contained(_texts(p, fmt, opts.get("text_field")), index)]
        out[src["name"]] = bad
    return out


def test_configured_training_sources_contain_no_evaluation_item(index, tmp_path):
    from pipeline.config import load_pipeline_config
    from core.paths import PROJECT_ROOT
    for cfg in (load_pipeline_config(None),                                   # in-code defaults
                load_pipeline_config(PROJECT_ROOT / "configs" / "pipeline.yaml")):
        bad = source_violations(cfg, index, tmp_path)
        assert not any(bad.values()), {k: v[:3] for k, v in bad.items() if v}


def test_the_check_fails_on_the_old_math_source(index, tmp_path):
    """The pipeline config before this change read MATH's whole test file: the check must fail
    on it, naming MATH500 items (a test that cannot fail proves nothing)."""
    from pipeline.config import load_pipeline_config
    cfg = load_pipeline_config(None, {"sources": [
        {"name": "math", "paths": ["math/math-hendrycks/math/test.jsonl"],
         "options": {"fmt": "jsonl", "text_field": "problem,solution"}}]})
    bad = source_violations(cfg, index, tmp_path)["math"]
    assert len({(x[2], x[3]) for x in bad}) >= 490          # (benchmark, item)
    assert {x[2] for x in bad} == {"math500"}


def test_classifier_recipes_read_training_splits_only(index, corpus):
    from classifiers import recipes
    math = recipes.math_problems(corpus, problems_alone=True)
    texts = [e.text for e in math]
    assert contained(texts, index) == []
    # the MATH part is the training split: 4,500 problems, none of MATH500's
    held = {it.fields["problem"] for it in
            evalsets.read_sets(evalsets.load_registry(corpus=corpus), ["math500"])["math500"]}
    probs = {e.text for e in math if e.source == "math-problem"}
    assert len(probs) == 4500 and not probs & held
    code = [e.text for e in recipes.code_files(corpus)]
    assert contained(code, index) == []
    assert contained(recipes.udhr_english(corpus), index) == []
