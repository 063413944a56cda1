"""The registered evaluation sets, read from the real files of the sample corpus."""
from __future__ import annotations

import json

import pytest

import evalsets
from evalsets import EvalSetError, load_registry, math_train_split, text_for_contamination
from evalsets.registry import parse_registry, user_set


@pytest.fixture(scope="module")
def sets(corpus):
    return evalsets.read_sets(load_registry(corpus=corpus))


def test_counts_match_the_releases(sets):
    # Counts from the corpus README / each release; a reader that skips or duplicates fails here.
    assert {k: len(v) for k, v in sets.items()} == {
        "piqa": 1838, "winogrande": 1267, "arc_easy": 2376, "lambada": 5153, "humaneval": 164,
        "gsm8k_test": 1319, "math500": 500}


def test_multiple_choice_views(sets, corpus):
    piqa = sets["piqa"]
    labels = (corpus / "benchmarks/piqa/valid-labels.lst").read_text().split()
    assert [it.mc.gold for it in piqa] == [int(x) for x in labels]
    assert all(len(it.mc.choices) == 2 for it in piqa)
    assert piqa[0].mc.context.startswith("How do I ready a guinea pig cage")
    arc = sets["arc_easy"]
    assert {len(it.mc.choices) for it in arc} <= {3, 4, 5}
    first = arc[0]
    assert first.item_id == "Mercury_417466" and first.mc.gold == 0   # answerKey "A"
    # labels "1".."4" in some ARC items map to the right index too
    for it in arc:
        labs = [c["label"] for c in it.fields["question"]["choices"]]
        assert labs[it.mc.gold] == it.fields["answerKey"]
    wg = sets["winogrande"][0]
    pairs = wg.mc.scoring_pairs()
    assert pairs[wg.mc.gold] == ("Sarah was a much better surgeon than Maria so Maria",
                                 " always got the easier cases.")
    assert "_" not in text_for_contamination(wg)


def test_generation_views(sets):
    g = sets["gsm8k_test"][0]
    assert g.gen.answer == "18" and g.gen.prompt.startswith("Janet")
    assert "<<" not in text_for_contamination(g) and "#### 18" in text_for_contamination(g)
    assert all(it.gen.answer and "," not in it.gen.answer for it in sets["gsm8k_test"])
    lam = sets["lambada"][0]
    assert lam.gen.prompt + " " + lam.gen.answer == lam.fields["text"]
    assert lam.gen.answer == "signs"
    m = sets["math500"][0]
    assert m.item_id == "test/precalculus/807.json"
    assert m.gen.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    h = sets["humaneval"][0]
    assert h.item_id == "HumanEval/0" and h.fields["entry_point"] == "has_close_elements"


def test_math_train_split_excludes_math500(corpus, sets):
    train = math_train_split(corpus)
    assert len(train) == 4500
    held = {it.fields["problem"] for it in sets["math500"]}
    assert not held & {it.fields["problem"] for it in train}
    assert all(it.benchmark == "math_train" for it in train)
    # every MATH500 answer is the boxed answer of the same problem in the full file
    full = {it.fields["problem"]: it for it in evalsets.readers.read_math(
        corpus / "math/math-hendrycks/math/test.jsonl")}
    same = sum(full[it.fields["problem"]].gen.answer == it.gen.answer for it in sets["math500"])
    assert same >= 480, same


def test_math_split_refuses_when_math500_not_found(corpus, tmp_path):
    src = corpus / "math/math-hendrycks/math/test.jsonl"
    lines = src.read_text().splitlines()
    cut = tmp_path / "math.jsonl"
    cut.write_text("\n".join(lines[:1000]) + "\n")   # drops most MATH500 problems
    with pytest.raises(EvalSetError, match="MATH500 problems were found"):
        math_train_split(corpus, math_path=cut)


def test_write_math_train_jsonl_is_deterministic(corpus, tmp_path):
    a = evalsets.write_math_train_jsonl(tmp_path / "a.jsonl", corpus)
    b = evalsets.write_math_train_jsonl(tmp_path / "b.jsonl", corpus)
    assert a.read_bytes() == b.read_bytes()
    rows = [json.loads(x) for x in a.read_text().splitlines()]
    assert len(rows) == 4500 and {"problem", "solution"} <= set(rows[0])


def test_user_sets_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    recs = [{"id": "a", "q": "What is two plus two?", "a": "four"},
            {"id": "b", "q": "Name a colour.", "a": None}]
    j = tmp_path / "mine.jsonl"
    j.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    p = tmp_path / "mine.parquet"
    pq.write_table(pa.Table.from_pylist(recs), p)
    for path in (j, p):
        items = user_set("mine", path, "q,a", id_field="id").read()
        assert [it.item_id for it in items] == ["a", "b"]
        assert text_for_contamination(items[0]) == "What is two plus two?\nfour"
        assert text_for_contamination(items[1]) == "Name a colour."
    with pytest.raises(EvalSetError, match="missing"):
        user_set("mine", j, "question").read()


def test_registry_errors(tmp_path):
    with pytest.raises(EvalSetError, match="unknown key"):
        parse_registry({"sets": {"x": {"reader": "piqa", "path": "p", "paht": 1}}}, tmp_path)
    with pytest.raises(EvalSetError, match="reader"):
        parse_registry({"sets": {"x": {"reader": "nope", "path": "p"}}}, tmp_path)
    with pytest.raises(EvalSetError, match="text_fields"):
        parse_registry({"sets": {"x": {"reader": "jsonl", "path": "p"}}}, tmp_path)
    specs = parse_registry({"sets": {"x": {"reader": "gsm8k", "path": "missing.jsonl"}}}, tmp_path)
    assert specs["x"].path == tmp_path / "missing.jsonl"
    with pytest.raises(EvalSetError, match="not found"):
        specs["x"].read()


def test_bad_input_is_a_clear_error(tmp_path):
    d = tmp_path / "piqa"
    d.mkdir()
    (d / "valid.jsonl").write_text('{"goal": "g", "sol1": "a", "sol2": "b"}\n' * 3)
    (d / "valid-labels.lst").write_text("0\n1\n")
    with pytest.raises(EvalSetError, match="2 labels for 3 items"):
        list(evalsets.readers.read_piqa(d / "valid.jsonl"))
    (d / "valid.jsonl").write_text('{"goal": "g", "sol1": "a"}\n{"goal": \n')
    with pytest.raises(EvalSetError, match="not JSON"):
        list(evalsets.readers.read_jsonl(d / "valid.jsonl"))
