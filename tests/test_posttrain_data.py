"""trainer/posttrain_data.py: converters (HH-RLHF on the real sample file, GSM8K, MATH train split,
user JSONL), curation (format, PII, repetition, exact and near dedup) and the Parquet schema."""
from __future__ import annotations

import gzip
import json

import pytest

from trainer.posttrain_data import (DataError, convert_gsm8k, convert_hh, convert_user_jsonl, curate,
                                    parse_hh, read_records, split_of, write_table)

HH = "\n\nHuman: hi there\n\nAssistant: Hello!\n\nHuman: how are you?\n\nAssistant: "


def test_parse_hh():
    assert parse_hh(HH + "Fine.") == [
        {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "how are you?"}, {"role": "assistant", "content": "Fine."}]
    with pytest.raises(DataError):
        parse_hh("no turns at all")


def test_convert_hh_small(tmp_path):
    p = tmp_path / "hh.jsonl.gz"
    rows = [{"chosen": HH + "Fine, thanks.", "rejected": HH + "Go away."},
            {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: DIFFERENT\n\nAssistant: c"},
            {"chosen": "garbage", "rejected": "garbage"}]
    with gzip.open(p, "wt") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    recs, bad = convert_hh(p)
    assert len(recs) == 1 and sum(bad.values()) == 2
    r = recs[0]
    assert r["prompt"][-1] == {"role": "user", "content": "how are you?"} and len(r["prompt"]) == 3
    assert r["responses"] == ["Fine, thanks.", "Go away."]
    assert r["split"] in ("train", "heldout")


def test_convert_hh_real(corpus):
    recs, bad = convert_hh(corpus / "posttrain/hh-rlhf/harmless-base/test.jsonl.gz", heldout_share=0.1)
    assert len(recs) + sum(bad.values()) == 2312            # every line accounted for
    held = [r for r in recs if r["split"] == "heldout"]
    assert 0.07 < len(held) / len(recs) < 0.13
    prompts = lambda rs: {json.dumps(r["prompt"]) for r in rs}  # noqa: E731
    assert not prompts(held) & prompts([r for r in recs if r["split"] == "train"])   # no prompt in both
    again, _ = convert_hh(corpus / "posttrain/hh-rlhf/harmless-base/test.jsonl.gz", heldout_share=0.1)
    assert [r["split"] for r in again] == [r["split"] for r in recs]                  # deterministic


def test_split_is_a_pure_function():
    assert split_of("abc", 0.5) == split_of("abc", 0.5)
    shares = [split_of(str(i), 0.2) == "heldout" for i in range(2000)]
    assert 0.17 < sum(shares) / 2000 < 0.23


def test_gsm8k_and_math_prompts(corpus):
    g = convert_gsm8k(corpus / "math/gsm8k/train.jsonl")
    assert len(g) == 7473 and g[0]["answer"] == "72" and g[0]["checker"] == "number"
    assert "<<" not in g[0]["reference"]
    from trainer.posttrain_data import convert_math_train
    m = convert_math_train(corpus)
    assert len(m) == 4500 and all(r["checker"] == "math" and r["answer"] for r in m)


def test_user_jsonl(tmp_path):
    p = tmp_path / "u.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"prompt": "q2", "response": "a2"},
        {"prompt": "q3", "chosen": "good", "rejected": "bad"},
        {"prompt": [{"role": "user", "content": "q4"}], "responses": ["best", "mid", "worst"]},
        {"prompt": "2+2?", "answer": "4", "checker": "number"},
        {"prompt": "q6"},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"prompt": "q8", "answer": "1", "checker": "astrology"},
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    t, bad = convert_user_jsonl(p)
    assert len(t["sft"]) == 2 and len(t["preferences"]) == 2 and len(t["prompts"]) == 1
    assert t["preferences"][1]["responses"] == ["best", "mid", "worst"]
    assert sorted(bad) == ["line 6", "line 7", "line 8"]


def test_curation_rules():
    u = lambda c: [{"role": "user", "content": c}]  # noqa: E731
    long_q = ("Please explain in detail how the water cycle moves moisture from oceans to clouds and "
              "back to rivers through evaporation condensation and precipitation")
    recs = [
        {"id": "1", "prompt": u("Email me at jane.doe@example.com please"), "responses": ["ok", "no"]},
        {"id": "2", "prompt": u("Email me at jane.doe@example.com please"), "responses": ["ok", "no"]},   # exact dup
        {"id": "3", "prompt": u(long_q), "responses": ["a", "b"]},
        {"id": "4", "prompt": u(long_q + " today"), "responses": ["c", "d"]},    # near duplicate prompt
        {"id": "5", "prompt": u("hi"), "responses": ["", "x"]},                 # empty reply
        {"id": "6", "prompt": u("hi"), "responses": ["same", "same"]},          # identical responses
        {"id": "7", "prompt": [{"role": "assistant", "content": "hi"}], "responses": ["a", "b"]},  # order
        {"id": "8", "prompt": u("say it"), "responses": [" ".join(["spam spam spam"] * 20), "fine"]},
    ]
    kept, why = curate(recs, "preferences")
    assert [r["id"] for r in kept] == ["1", "3"]
    assert kept[0]["prompt"][0]["content"] == "Email me at <EMAIL> please" and kept[0]["pii_redactions"] == 1
    assert recs[0]["prompt"][0]["content"].startswith("Email me at jane")     # input untouched
    assert why["dedup: exact duplicate"] == 1 and why["dedup: near duplicate prompt"] == 1
    assert why["format: empty message"] == 1 and why["format: identical responses"] == 1
    assert why["format: roles do not alternate user/assistant"] == 1
    assert sum(v for k, v in why.items() if k.startswith("quality")) == 1
    assert len(kept) + sum(why.values()) == len(recs)


def test_length_rule():
    from core.tokenizer import get_tokenizer
    recs = [{"id": "1", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " ".join(f"w{i}" for i in range(50))}]},
            {"id": "2", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "short"}]}]
    kept, why = curate(recs, "sft", get_tokenizer(), max_tokens=30)
    assert [r["id"] for r in kept] == ["2"] and why == {"length: more than 30 tokens": 1}


def test_parquet_schema_round_trip(tmp_path):
    import pyarrow.parquet as pq
    recs = [{"id": "a", "source": "s", "split": "train", "prompt": [{"role": "user", "content": "q"}],
             "responses": ["x", "y", "z"], "pii_redactions": 0}]
    p = write_table(tmp_path / "t" / "prefs.parquet", recs, "preferences")
    schema = pq.read_schema(p)
    assert schema.names == ["id", "source", "split", "prompt", "responses", "pii_redactions"]
    assert str(schema.field("prompt").type) == "list<element: struct<role: string, content: string>>"
    assert read_records(p) == recs


def test_decontamination_drops_eval_items(corpus):
    from trainer.posttrain_data import decontaminate
    test_q = json.loads((corpus / "math/gsm8k/test.jsonl").read_text().splitlines()[3])["question"]
    train = convert_gsm8k(corpus / "math/gsm8k/train.jsonl")[:3]
    leaked = {"id": "leak", "source": "user", "split": "train",
              "messages": [{"role": "user", "content": "Re-formatted:\n" + test_q.upper()}],
              "answer": "1", "checker": "number", "reference": None}
    pref = {"id": "p", "prompt": [{"role": "user", "content": "hi"}], "responses": ["a " + test_q, "b"]}
    kept, dropped = decontaminate({"prompts": train + [leaked], "preferences": [pref]}, corpus,
                                  only=["gsm8k_test"])
    assert [r["id"] for r in kept["prompts"]] == [r["id"] for r in train]
    assert kept["preferences"] == []
    assert dropped == {"prompts: gsm8k_test": 1, "preferences: gsm8k_test": 1}
