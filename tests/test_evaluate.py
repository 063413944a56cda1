"""Downstream evaluation harness (trainer/harness.py, trainer/evaluate.py).

Parity: a tiny model (full 100,352-token vocabulary, random weights with a large std so that
choices get clearly different scores) is scored by our harness on the first items of the real
benchmark files (PIQA, ARC-Easy, WinoGrande, LAMBADA, GSM8K test, MATH500), a user task with
few-shot examples and the held-out streams; an independent implementation in this file scores the
same requests with Hugging Face transformers on the exported model (its own tokenizer, one request
at a time, full-vocabulary log-softmax, each packed document run on its own) and computes the
metrics itself; every printed number must be equal. Plus the definitions (acc_norm by characters,
GSM8K answer extraction), caching/resume and bad task specs.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import harness as H
from trainer.evaluate import comparison_table, evaluate_checkpoint, fmt_metric
from trainer.model import build_model, preset_config

LIMIT = 4
TASKS = ["piqa", "arc_easy", "winogrande", "lambada", "gsm8k_nll", "math500_nll", "heldout", "gsm8k_em"]


pytestmark = pytest.mark.usefixtures("one_cpu_thread")   # tests/conftest.py


# ---- definitions -------------------------------------------------------------------------------
def test_acc_norm_divides_by_characters_of_the_choice():
    """lm-evaluation-harness: acc_norm = argmax(ll / len(choice)), characters, no delimiter."""
    it = H.MCItem("x", [("q", " aa"), ("q", " bbbbbb")], ["aa", "bbbbbb"], gold=1)
    m = H.mc_metrics([it], [[-4.0, -6.0]])["metrics"]
    assert m["acc"] == 0.0 and m["acc_norm"] == 1.0
    # characters, not bytes: 3 'é' are 3 characters (6 bytes)
    it = H.MCItem("y", [("q", " ééé"), ("q", " abcd")], ["ééé", "abcd"], gold=1)
    m = H.mc_metrics([it], [[-3.3, -4.0]])["metrics"]
    assert m["acc_norm"] == 1.0          # -1.1/char vs -1.0/char (by bytes it would pick 0)
    # and not by the delimiter-including continuation: " a" (2) vs " bbb" (4) would flip this one
    it = H.MCItem("z", [("q", " a"), ("q", " bbb")], ["a", "bbb"], gold=0)
    m = H.mc_metrics([it], [[-1.0, -2.5]])["metrics"]
    assert m["acc_norm"] == 0.0          # -1.0 vs -0.833 per char: picks 1


def test_gsm8k_answer_extraction():
    assert H.extract_strict("so 3 + 4 = 7\n#### 1,234") == "1234"
    assert H.extract_strict("the answer is 7") is None
    assert H.extract_flexible("We get 12 apples, then $1,500.") == "1500"
    assert H.extract_flexible("no digits") is None
    assert H.extract_flexible("it is 5.") == "5"
    assert H.cut_generation(" 7 apples\n#### 7\n\nQuestion: next") == " 7 apples\n#### 7\n\n"


def test_encode_pair_moves_trailing_space(tmp_path):
    from core.tokenizer import get_tokenizer
    tok = get_tokenizer()
    s = H.Scorer(model=None, tokenizer=tok)
    ctx, cont = s.encode_pair("Answer: ", "Paris")
    assert ctx == tok.encode("Answer:") and cont == tok.encode("Answer: Paris")[len(ctx):]
    ctx, cont = s.encode_pair("", "Paris")
    assert ctx == [tok.eot_id] and cont == tok.encode("Paris")


def test_user_spec_errors(tmp_path):
    (tmp_path / "t.jsonl").write_text(json.dumps({"q": "a", "opts": ["x", "y"], "ans": "z"}) + "\n")
    (tmp_path / "s.yaml").write_text("path: t.jsonl\ncontext_field: q\nchoices_field: opts\nanswer_field: ans\n")
    with pytest.raises(ValueError, match="not one of the choices"):
        H.user_mc_items(H.load_user_spec(tmp_path / "s.yaml"))
    (tmp_path / "b.yaml").write_text("path: t.jsonl\ncontext_field: q\nchoices: opts\n")
    with pytest.raises(ValueError, match="unknown task spec key"):
        H.load_user_spec(tmp_path / "b.yaml")


# ---- a model, its export, a mix for held-out streams ---------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory, corpus):
    pytest.importorskip("transformers")
    from core.tokenizer import get_tokenizer
    from trainer.export import export
    from fixtures.demo_mix import load_corpus_docs, write_token_shards
    root = tmp_path_factory.mktemp("evalrun")
    tok = get_tokenizer()
    texts = load_corpus_docs(corpus, per_source=4, max_chars=500)
    cats = list(texts)
    docs = [[tok.encode_document(t) for t in texts[c]] for c in cats]   # the mixer's layout: BOS first
    write_token_shards(root / "mix", [{"name": c, "category": c} for c in cats], docs, 128,
                       heldout_docs_by_source=docs, tokenizer=tok.info(), vocab_size=tok.vocab_size,
                       eot_id=tok.eot_id)
    cfg = preset_config("tiny", vocab_size=tok.vocab_size, max_seq_len=2048, tie_embeddings=False,
                        init_std=0.1, rope_theta=10000.0)
    model = build_model(cfg, seed=11)
    ck = root / "run" / "checkpoints" / "step_00000007"
    ck.mkdir(parents=True)
    torch.save(model.state_dict(), ck / "model.pt")
    (ck / "state.json").write_text(json.dumps({"step": 7, "model_config": asdict(cfg),
                                               "config": {"stages": [{"data": str(root / "mix")}]}}))
    # a user task with few-shot examples from a dev file (real questions: ARC-Easy items' text)
    recs = [json.loads(line) for line in (corpus / "benchmarks/arc-easy/ARC-Easy-Test.jsonl").open()][:8]
    rows = [{"question": r["question"]["stem"], "options": [c["text"] for c in r["question"]["choices"]],
             "label": r["answerKey"]} for r in recs]
    for r in rows:   # the answer by its text
        r["label"] = r["options"][[c["label"] for c in recs[rows.index(r)]["question"]["choices"]].index(r["label"])]
    (root / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[3:]))
    (root / "mytask.yaml").write_text("name: mytask\npath: test.jsonl\ndev: dev.jsonl\nshots: 2\n"
                                      "context_field: question\nchoices_field: options\nanswer_field: label\n"
                                      "template: \"Q: {context}\\nA:\"\n")
    logs = []
    ours = evaluate_checkpoint(root / "run", TASKS, limit=LIMIT, task_specs=[str(root / "mytask.yaml")],
                               corpus=corpus, batch_tokens=1024, gsm8k_shots=1, max_new_tokens=12,
                               log=logs.append)
    export(ck, root / "hf")
    return root, model, tok, ours, logs, corpus


def _hf_ll(hf, hf_tok, eot_id, ctx: str, cont: str) -> tuple[float, bool, int]:
    """The definition, written out: trailing context spaces go to the continuation; the
    continuation's tokens follow the context's tokens in the encoding of the whole string."""
    n = len(ctx) - len(ctx.rstrip(" "))
    if n:
        ctx, cont = ctx[:-n], ctx[-n:] + cont
    enc = lambda s: hf_tok(s, add_special_tokens=False)["input_ids"]   # noqa: E731
    if ctx:
        c = enc(ctx)
        x = enc(ctx + cont)[len(c):]
    else:
        c, x = [eot_id], enc(cont)
    ids = torch.tensor([c + x])
    with torch.no_grad():
        logp = torch.log_softmax(hf(ids).logits[0].double(), -1)
    pos = torch.arange(len(c) - 1, len(c) + len(x) - 1)
    tgt = torch.tensor(x)
    return float(logp[pos, tgt].sum()), bool((logp[pos].argmax(-1) == tgt).all()), len(x)


def test_harness_matches_transformers(setup):
    transformers = pytest.importorskip("transformers")
    from evalsets import load_registry
    from trainer.data import TokenShards
    root, model, tok, ours, logs, corpus = setup
    hf = transformers.LlamaForCausalLM.from_pretrained(str(root / "hf"), dtype=torch.float32).eval()
    hf_tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(root / "hf"))
    reg = load_registry(corpus=corpus)
    ll = lambda c, x: _hf_ll(hf, hf_tok, tok.eot_id, c, x)   # noqa: E731
    theirs: dict[str, dict] = {}

    def mc(items, norm=True):
        acc, accn = [], []
        for it in items:
            s = [ll(c, x)[0] for c, x in it.requests]
            acc.append(int(np.argmax(s)) == it.gold)
            accn.append(int(np.argmax([v / len(ch) for v, ch in zip(s, it.choices)])) == it.gold)
        out = {"acc": float(np.mean(acc))}
        if norm:
            out["acc_norm"] = float(np.mean(accn))
        return out

    theirs["piqa"] = mc(H.mc_items_piqa(reg["piqa"].read()[:LIMIT]))
    theirs["arc_easy"] = mc(H.mc_items_arc(reg["arc_easy"].read()[:LIMIT]))
    theirs["winogrande"] = mc(H.mc_items_winogrande(reg["winogrande"].read()[:LIMIT]), norm=False)
    theirs["mytask"] = mc(H.user_mc_items(H.load_user_spec(root / "mytask.yaml"), LIMIT))
    lam = [ll(it.gen.prompt, " " + it.gen.answer) for it in reg["lambada"].read()[:LIMIT]]
    theirs["lambada"] = {"acc": float(np.mean([g for _, g, _ in lam])),
                         "perplexity": math.exp(-np.mean([v for v, _, _ in lam]))}
    for name, setname in (("gsm8k_nll", "gsm8k_test"), ("math500_nll", "math500")):
        items = reg[setname].read()[:LIMIT]
        tot, chars, nbytes = 0.0, 0, 0
        for it in items:
            cont = " " + it.gen.reference
            tot -= ll("Question: " + it.gen.prompt + "\nAnswer:", cont)[0]
            chars += len(cont)
            nbytes += len(cont.encode())
        theirs[name] = {"nll_per_char": tot / chars, "bpb": tot / nbytes / math.log(2)}
    # held-out bits per byte: every document of a packed row on its own in HF
    sh = TokenShards(root / "mix" / "heldout")
    per: dict[str, list[float]] = {}
    seen: dict[int, int] = {}
    for r in range(sh.n_rows):
        seen[sh.source[r]] = seen.get(sh.source[r], 0) + 1
        if seen[sh.source[r]] > LIMIT:      # --limit: the first LIMIT rows of every stream
            continue
        row = sh.row(r)
        starts = list(sh.row_doc_starts(r)) + [len(row) - 1]
        nll, nb = 0.0, 0
        for a, b in zip(starts[:-1], starts[1:]):
            if b <= a:
                continue
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.from_numpy(row[a:b])[None]).logits[0].double(), -1)
            tgt = torch.tensor(row[a + 1:b + 1])
            nll -= float(logp[torch.arange(b - a), tgt].sum())
            nb += sum(len(tok.encoding.decode_single_token_bytes(int(t))) for t in tgt
                      if int(t) not in tok.special.values())
        acc = per.setdefault(sh.sources[sh.source[r]], [0.0, 0])
        acc[0] += nll
        acc[1] += nb
    theirs["heldout"] = {f"bpb/{k}": v[0] / v[1] / math.log(2) for k, v in per.items()}
    theirs["heldout"]["bpb/all"] = sum(v[0] for v in per.values()) / sum(v[1] for v in per.values()) / math.log(2)
    # GSM8K generation: HF greedy continuation of the same prompts gives the same text
    fs = H.gsm8k_fewshot(corpus, 1)
    cached = json.loads((root / "run/checkpoints/step_00000007/eval/gsm8k_em.json").read_text())["items"]
    for it, mine in zip(reg["gsm8k_test"].read()[:2], cached):
        ids = torch.tensor([tok.encode(H.gsm8k_prompt(fs, it.gen.prompt))])
        g = hf.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=tok.eot_id, pad_token_id=0)
        text = H.cut_generation(tok.decode([t for t in g[0, ids.shape[1]:].tolist() if t != tok.eot_id]))
        assert text == mine["output"]

    compared = 0
    for task, metrics in theirs.items():
        for k, v in metrics.items():
            mine = ours["tasks"][task][k]
            assert fmt_metric(mine) == fmt_metric(v), (task, k, mine, v)
            compared += 1
    assert compared >= 18
    # the scores are not degenerate: every item's choices get different log-likelihoods
    ev = root / "run" / "checkpoints" / "step_00000007" / "eval"
    for t in ("piqa", "arc_easy", "winogrande", "mytask"):
        for it in json.loads((ev / f"{t}.json").read_text())["items"]:
            assert len({round(x, 6) for x in it["ll"]}) == len(it["ll"]), (t, it)


def test_results_json_cache_and_table(setup):
    root, model, tok, ours, logs, corpus = setup
    ck = root / "run" / "checkpoints" / "step_00000007"
    res = json.loads((ck / "eval" / "results.json").read_text())
    assert set(res["tasks"]) == set(TASKS) | {"mytask"}
    assert res["step"] == 7
    again: list[str] = []
    res2 = evaluate_checkpoint(root / "run", TASKS, limit=LIMIT, task_specs=[str(root / "mytask.yaml")],
                               corpus=corpus, batch_tokens=4096, gsm8k_shots=1, max_new_tokens=12,
                               log=again.append)
    assert sum("cached" in line for line in again) == len(TASKS) + 1
    assert res2["tasks"]["piqa"] == ours["tasks"]["piqa"]
    # a different limit is a different result: recomputed, not served from the cache
    more: list[str] = []
    evaluate_checkpoint(ck, ["piqa"], limit=LIMIT + 1, corpus=corpus, log=more.append)
    assert not any("cached" in line for line in more)
    table = comparison_table([res, res])
    assert "| piqa | acc |" in table and table.count("step_00000007") == 2


def test_batching_does_not_change_scores(setup):
    """Right padding in a batch leaves every request's log-likelihood as scored alone."""
    root, model, tok, *_ = setup
    s_big = H.Scorer(model.eval(), tok, batch_tokens=1 << 16)
    s_one = H.Scorer(model.eval(), tok, batch_tokens=1)
    reqs = [("Question: why?\nAnswer:", " because"), ("A much longer context " * 5, " ends here"), ("", "Hi")]
    a, b = s_big.score_strings(reqs), s_one.score_strings(reqs)
    for (x, gx), (y, gy) in zip(a, b):
        assert abs(x - y) < 1e-4 and gx == gy


def test_report_section_lists_evaluated_checkpoints(setup):
    from pipeline.report.build import evaluation
    from pipeline.report.html import _body
    root, *_ = setup
    data = evaluation({"train": str(root / "run")})
    assert data["header"][2] == "run/step_00000007"
    html = _body("evaluation", data, [])
    assert "<table" in html and "piqa" in html and "bpb/all" in html


def test_long_continuations_are_scored_in_windows_that_fit():
    """A continuation longer than the model is scored in pieces: every token exactly once, each
    window within max_seq_len + 1 tokens, and the pieces' log-likelihoods add up."""
    from core.tokenizer import get_tokenizer
    tok = get_tokenizer("cl100k_base@2048+llama3")
    m = build_model(preset_config("tiny", vocab_size=tok.vocab_size, max_seq_len=16), seed=1).eval()
    s = H.Scorer(m, tok)
    ctx, cont = list(range(5, 40)), list(range(100, 150))
    w = s.windows(ctx, cont)
    assert [t for _, piece in w for t in piece] == cont
    assert all(len(c) + len(x) <= 17 and len(c) >= 1 for c, x in w)
    whole = s.loglikelihood([(ctx, cont)])[0][0]
    assert abs(whole - sum(s.loglikelihood([p])[0][0] for p in w)) < 1e-3
    assert s.windows(ctx[:3], cont[:4]) == [(ctx[:3], cont[:4])]


def test_gsm8k_fewshot_count(corpus):
    assert H.gsm8k_fewshot(corpus, 0) == []
    shots = H.gsm8k_fewshot(corpus, 3)
    assert len(shots) == 3 and all("####" in a for _, a in shots)
    assert H.gsm8k_prompt([], "Q?") == "Question: Q?\nAnswer:"


def test_a_damaged_checkpoint_is_neither_evaluated_nor_exported(tmp_path):
    """Evaluation and export load a checkpoint's model.pt only when it matches the manifest: one
    flipped bit inside the tensors (torch would load it) is a CheckpointError."""
    from trainer.checkpoint import CheckpointError, save_checkpoint
    from trainer.export import export
    from trainer.loading import load_model
    cfg = preset_config("tiny", vocab_size=256, max_seq_len=16)
    ck = save_checkpoint(tmp_path / "run", 3, build_model(cfg, seed=0).state_dict(), None,
                         {"model_config": asdict(cfg)})
    load_model(ck)                                   # intact: loads
    b = bytearray((ck / "model.pt").read_bytes())
    b[len(b) // 2] ^= 1
    (ck / "model.pt").write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match="model.pt: sha256"):
        load_model(tmp_path / "run")
    with pytest.raises(CheckpointError, match="model.pt: sha256"):
        export(ck, tmp_path / "hf")
