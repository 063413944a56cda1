"""Post-training (trainer/sft.py, reward.py, dpo.py, rejection.py, rounds.py, chat.py, checkers.py,
posttrain.py): losses, masks and formats on small fixed inputs whose right answers are known by hand,
and one tiny end-to-end round. Tiny models on CPU; the tokenizer is the project's, renumbered onto the
ids the test texts use (CompactTokenizer)."""
from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F

from trainer.chat_format import encode_dialog
from trainer.checkers import check, last_number
from trainer.dpo import dpo_loss, evaluate_preferences, frozen_copy, make_pairs, train_dpo, DPOConfig
from trainer.model import build_model, preset_config
from trainer.posttrain import (IGNORE, CompactTokenizer, OptimSettings, load_model, lr_at, pack_rows,
                               save_model, sequence_logprobs, sft_examples, to_batch)
from trainer.rejection import RejectionConfig, rejection_sample, score_replies
from trainer.reward import (RewardConfig, RewardModel, bt_loss, evaluate_reward, length_direction,
                            load_reward_model, pair_accuracy, save_reward_model, train_reward)
from trainer.sft import SFTConfig, sft_loss, train_sft
from trainer.synthetic import make_prompts, sft_records


pytestmark = pytest.mark.usefixtures("one_cpu_thread")   # tests/conftest.py


@pytest.fixture(scope="module")
def tok():
    return CompactTokenizer.from_texts(["Sort: 0 1 2 3 4 5 6 7 8 9", "Add: 12 + 3", "Hi", "hello", "x"] +
                                       [str(d) for d in range(10)])


def tiny(tok, seed=0, **kw):
    cfg = preset_config("tiny", vocab_size=tok.vocab_size, max_seq_len=128, tie_embeddings=False, **kw)
    m = build_model(cfg, seed=seed)
    m.set_attention_backend("sdpa")
    return m


D1 = [{"role": "user", "content": "Sort: 3 1"}, {"role": "assistant", "content": "1 3"}]
D2 = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "hello"},
      {"role": "user", "content": "Sort: 2 0"}, {"role": "assistant", "content": "0 2"}]


# ---- tokenizer, packing, masks ----------------------------------------------------------------------
def test_compact_tokenizer(tok, tmp_path):
    from core.tokenizer import get_tokenizer
    base = get_tokenizer()
    text = "Sort: 3 1 4"
    assert [tok.base_ids[i] for i in tok.encode(text)] == base.encode(text)   # same tokens, renumbered
    assert tok.decode(tok.encode(text)) == text
    assert tok.special["<|finetune_right_pad_id|>"] == 0                     # padding id
    assert tok.vocab_size % 64 == 0 and tok.vocab_size >= len(tok.base_ids)
    # "589" is one cl100k token, not kept: encoded digit by digit
    assert tok.decode(tok.encode("589")) == "589" and len(tok.encode("589")) == 3
    with pytest.raises(ValueError, match="compact vocabulary"):
        tok.encode("Ω")
    tok.save(tmp_path / "t.json")
    assert CompactTokenizer.load(tmp_path / "t.json").base_ids == tok.base_ids


def test_sft_examples_and_packing(tok):
    ex, dropped = sft_examples(tok, [D1, D2], max_len=64)
    assert dropped == 0
    e1 = encode_dialog(tok, D1)
    x1, y1 = ex[0]
    assert x1 == e1.ids[:-1]
    # targets: only the reply "1 3" and its <|eot_id|>, at the positions that predict them
    counted = [t for t in y1 if t != IGNORE]
    assert counted == tok.encode("1 3") + [tok.special["<|eot_id|>"]]
    assert y1[-1] == tok.special["<|eot_id|>"] and y1[0] == IGNORE
    x2, y2 = ex[1]
    assert [t for t in y2 if t != IGNORE] == (tok.encode("hello") + [tok.special["<|eot_id|>"]] +
                                             tok.encode("0 2") + [tok.special["<|eot_id|>"]])
    rows = pack_rows(ex, seq_len=len(x1) + len(x2) + 3)
    assert len(rows) == 1
    x, y, d = rows[0]
    assert x == x1 + x2 + [0, 0, 0] and y == y1 + y2 + [IGNORE] * 3
    assert d == [0] * len(x1) + [1] * len(x2) + [2] * 3
    rows = pack_rows(ex, seq_len=len(x2))          # do not fit together: two rows
    assert len(rows) == 2 and rows[0][2][-1] == 1 and rows[1][2] == [0] * len(x2)
    _, dropped = sft_examples(tok, [D1, D2], max_len=len(x1))
    assert dropped == 1


def test_sft_loss_is_masked_and_document_local(tok):
    """Packed loss == the mean over assistant targets of each dialogue run on its own."""
    m = tiny(tok, seed=1)
    ex, _ = sft_examples(tok, [D1, D2], 64)
    b = to_batch(pack_rows(ex, 64), "cpu")
    got = sft_loss(m, b)
    nll, n = 0.0, 0
    for x, y in ex:
        logits = m(torch.tensor([x]))[0]
        yt = torch.tensor(y)
        nll += F.cross_entropy(logits, yt, ignore_index=IGNORE, reduction="sum").item()
        n += int((yt != IGNORE).sum())
    assert got.item() == pytest.approx(nll / n, rel=1e-5)


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_at(55, 100, 1.0, 10, "linear", 0.1) == pytest.approx(0.5)
    assert lr_at(55, 100, 1.0, 0, "constant", 0.1) == 1.0


# ---- reward model ---------------------------------------------------------------------------------
def test_bradley_terry_by_hand():
    sp = lambda z: math.log1p(math.exp(-z))   # -log sigmoid(z)  # noqa: E731
    assert bt_loss(torch.tensor([2.0, 1.0]), [2]).item() == pytest.approx(sp(1.0))
    # ordered list best first (edited > chosen > rejected): all three ordered pairs
    assert bt_loss(torch.tensor([3.0, 2.0, 0.0]), [3]).item() == pytest.approx((sp(1) + sp(3) + sp(2)) / 3)
    # two records: pairs pooled
    got = bt_loss(torch.tensor([0.0, 0.0, 1.0, -1.0]), [2, 2]).item()
    assert got == pytest.approx((math.log(2) + sp(2)) / 2)


def test_pair_accuracy_and_length_baseline():
    assert pair_accuracy([[2, 1], [1, 2], [3, 3]]) == pytest.approx(0.5)
    assert pair_accuracy([[3, 2, 1]]) == 1.0
    recs = [{"responses": ["a longer one", "short"]}, {"responses": ["longer again", "tiny"]},
            {"responses": ["s", "long one"]}]
    assert length_direction(recs) == 1      # the longer reply wins 2 of 3


def test_reward_model_learns_and_round_trips(tok, tmp_path):
    recs = [{"prompt": [{"role": "user", "content": "Sort: 3 1"}], "responses": ["1 3", "3 1"]},
            {"prompt": [{"role": "user", "content": "Sort: 2 0 1"}], "responses": ["0 1 2", "2 0 1"]}] * 4
    rm = RewardModel(tiny(tok, seed=2))
    before = evaluate_reward(rm, tok, recs)
    assert before["accuracy"] == 0.5            # zero head: every reward equal, ties count 1/2
    res = train_reward(rm, tok, recs, RewardConfig(batch_records=4, steps=30, log_every=0,
                                                   optim=OptimSettings(lr=3e-3, warmup_steps=2)))
    assert res["last_loss"] < res["first_loss"]
    after = evaluate_reward(rm, tok, recs)
    assert after["accuracy"] == 1.0 and after["mean_margin"] > 0
    save_reward_model(tmp_path / "rm", rm, {"step": "test"}, tok)
    rm2 = load_reward_model(tmp_path / "rm")
    d = [recs[0]["prompt"] + [{"role": "assistant", "content": "1 3"}]]
    assert rm2.score(tok, d) == pytest.approx(rm.score(tok, d), abs=1e-6)


def test_reward_head_sits_on_the_model_device(tok):
    """The head is built where the LM is (a loaded reward model is not moved afterwards: on a GPU a
    CPU head met CUDA hidden states). ``meta`` stands in for a second device."""
    lm = build_model(preset_config("tiny", vocab_size=tok.vocab_size, max_seq_len=128), "meta", seed=None)
    assert RewardModel(lm).head.weight.device == torch.device("meta")


# ---- DPO ------------------------------------------------------------------------------------------
def test_dpo_masks_and_loss_by_hand(tok):
    recs = [{"prompt": [{"role": "user", "content": "Sort: 3 1"}], "responses": ["1 3", "3 1 1"]}]
    pairs, _ = make_pairs(tok, recs)
    p = pairs[0]
    # only the final reply's content tokens count: no header, no <|eot_id|>
    assert [t for t, m in zip(p.chosen, p.chosen_mask) if m] == tok.encode("1 3")
    assert [t for t, m in zip(p.rejected, p.rejected_mask) if m] == tok.encode("3 1 1")
    # a model with zero output weights predicts uniformly: log p = -log V per counted token
    m = tiny(tok, seed=3)
    with torch.no_grad():
        m.output.weight.zero_()
    V = tok.vocab_size
    lp = sequence_logprobs(m, [p.chosen, p.rejected], [p.chosen_mask, p.rejected_mask], "cpu")
    assert lp.tolist() == pytest.approx([-3 * math.log(V), -5 * math.log(V)], rel=1e-5)
    loss, t = dpo_loss(m, frozen_copy(m), pairs, beta=0.1, alpha=0.2, device="cpu")
    # policy == reference: margin 0, -log sigmoid(0) = log 2; NLL per chosen token = log V
    assert t["margin"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss.item() == pytest.approx(math.log(2) + 0.2 * math.log(V), rel=1e-5)


def test_dpo_raises_margin_on_training_pairs(tok):
    recs = [{"prompt": [{"role": "user", "content": "Sort: 3 1"}], "responses": ["1 3", "3 1"]},
            {"prompt": [{"role": "user", "content": "Sort: 2 0 1"}], "responses": ["0 1 2", "2 0 1"]}]
    pol = tiny(tok, seed=4)
    ref = frozen_copy(pol)
    res = train_dpo(pol, tok, recs, DPOConfig(batch_pairs=2, steps=15, log_every=0,
                                              optim=OptimSettings(lr=3e-3, warmup_steps=1)), ref)
    assert res["last_loss"] < res["first_loss"]
    ev = evaluate_preferences(pol, ref, tok, recs)
    assert ev["accuracy"] == 1.0 and ev["mean_margin"] > 0
    for a, b in zip(ref.parameters(), tiny(tok, seed=4).parameters()):
        assert torch.equal(a, b)                 # the reference stayed frozen


# ---- checkers, rejection sampling -----------------------------------------------------------------
def test_checkers():
    assert check("sort", "1 2 3", " 1  2 3 ") == 1.0 and check("sort", "1 2 3", "1 3 2") == 0.0
    assert check("number", "1200", "so the total is $1,200.") == 1.0
    assert check("number", "72", "72 clips, then 5 more") == 0.0
    assert last_number("x = 3.50") == "3.5"
    assert check("math", "\\frac{1}{2}", "thus $\\boxed{\\dfrac{1}{2}}$.") == 1.0
    assert check("math", "5", "the answer is\n5") == 1.0
    with pytest.raises(ValueError):
        check("nope", "1", "1")


def test_rejection_sampling_keeps_best(tok):
    prompts = make_prompts("sort", 6, seed=0, min_len=2, max_len=3)
    m = tiny(tok, seed=5)
    cfg = RejectionConfig(k=3, temperature=1.0, max_new_tokens=6, batch_size=8, seed=1)
    a = rejection_sample(m, tok, prompts, cfg, log=lambda s: None)
    b = rejection_sample(m, tok, prompts, cfg, log=lambda s: None)
    assert [s["replies"] for s in a["samples"]] == [s["replies"] for s in b["samples"]]   # seeded
    for s, p in zip(a["samples"], prompts):
        assert len(s["replies"]) == 3
        assert s["scores"] == [check("sort", p["answer"], r) for r in s["replies"]]
    assert len(a["sft"]) == 6                      # min_score None: every prompt keeps its best
    # a scored list where the checker decides: the correct reply is kept
    replies = [["9 9", prompts[0]["answer"], "x"]]
    sc = score_replies(prompts[:1], replies)
    assert sc == [[0.0, 1.0, 0.0]]


# ---- end to end: rounds, model directories, chat --------------------------------------------------
def test_rounds_end_to_end(tok, tmp_path):
    from trainer.posttrain_data import write_table
    from trainer.rounds import Rounds, load_config
    init = tmp_path / "init"
    save_model(init, tiny(tok, seed=6), {"step": "test"}, tokenizer=tok)
    train = make_prompts("sort", 12, seed=0, min_len=2, max_len=3)
    held = make_prompts("sort", 6, seed=1, min_len=2, max_len=3)
    gold = sft_records(make_prompts("sort", 12, seed=2, min_len=2, max_len=3))
    write_table(tmp_path / "p.parquet", train, "prompts")
    write_table(tmp_path / "h.parquet", held, "prompts")
    write_table(tmp_path / "g.parquet", gold, "sft")
    hp = [{"id": "x", "source": "t", "split": "train", "prompt": [{"role": "user", "content": "Sort: 3 1"}],
           "responses": ["1 3", "3 1"]}]
    write_table(tmp_path / "hp.parquet", hp, "preferences")
    ov = [f"out_dir={tmp_path / 'out'}", f"init={init}", "device=cpu", "rounds=1",
          f"data.sft={tmp_path / 'g.parquet'}", f"data.prompts={tmp_path / 'p.parquet'}",
          f"data.heldout_prompts={tmp_path / 'h.parquet'}", f"data.preferences={tmp_path / 'hp.parquet'}",
          f"data.heldout_preferences={tmp_path / 'hp.parquet'}",
          "sft.steps=3", "sft.seq_len=64", "sft.log_every=0", "reward.steps=2", "reward.log_every=0",
          "dpo.steps=2", "dpo.log_every=0", "rejection.k=2", "rejection.max_new_tokens=6",
          "eval.max_new_tokens=6", "eval.heldout_pairs_k=2", "average.runs=2"]
    cfg = load_config(None, ov)
    rep = Rounds(cfg, log=lambda s: None).run()
    steps = [s["step"] for s in rep["steps"]]
    assert steps == ["init", "bootstrap_sft", "collect", "reward", "rejection", "sft", "collect_dpo",
                     "dpo", "dpo", "average"]
    out = tmp_path / "out"
    final = load_model(out / "round_1" / "final")
    # the final model is the exact average of the two DPO runs
    d0, d1 = load_model(out / "round_1" / "dpo_0"), load_model(out / "round_1" / "dpo_1")
    w = final.state_dict()["layers.0.attention.wq.weight"]
    avg = (d0.state_dict()["layers.0.attention.wq.weight"].double() +
           d1.state_dict()["layers.0.attention.wq.weight"].double()) / 2
    assert torch.equal(w, avg.float())
    assert json.loads((out / "report.json").read_text())["final_model"] == str(out / "round_1" / "final")
    # resume: every step's directory is complete, so a second run trains nothing and agrees
    # (equal figures alone would not show it: a retrained step is seeded and gives the same ones)
    trained = {p: p.stat().st_mtime_ns for p in out.glob("round_*/*/model.pt") if p.parent.name != "final"}
    assert {p.parent.name for p in trained} == {"sft", "reward", "dpo_0", "dpo_1"}
    rep2 = Rounds(load_config(None, ov), log=lambda s: None).run()
    assert {p: p.stat().st_mtime_ns for p in trained} == trained
    assert [s.get("exact_match") for s in rep2["steps"]] == [s.get("exact_match") for s in rep["steps"]]
    # the chat command on the result
    from trainer.chat import main as chat_main
    buf = io.StringIO()
    assert chat_main(["--checkpoint", str(out / "round_1" / "final"), "--device", "cpu",
                      "--max-new-tokens", "5"], stdin=io.StringIO("Sort: 2 1\n/reset\nSort: 1 0\n/quit\n"),
                     stdout=buf) == 0
    lines = buf.getvalue().splitlines()
    assert sum(line.startswith("assistant> ") for line in lines) == 2 and "(new dialogue)" in lines


def test_sft_command(tok, tmp_path):
    from trainer.posttrain_data import write_table
    from trainer.sft import main
    init = tmp_path / "init"
    save_model(init, tiny(tok, seed=7), {"step": "test"}, tokenizer=tok)
    write_table(tmp_path / "g.parquet", sft_records(make_prompts("sort", 8, seed=2, min_len=2, max_len=3)), "sft")
    assert main(["--init", str(init), "--data", str(tmp_path / "g.parquet"), "--out", str(tmp_path / "o"),
                 "--device", "cpu", "steps=2", "seq_len=64", "log_every=0"]) == 0
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["step"] == "sft" and meta["result"]["steps"] == 2
    assert (tmp_path / "o" / "tokenizer.json").is_file()
    assert main(["--init", str(init), "--data", "x", "--out", "y", "bogus=1"]) == 2
    assert main(["--init", str(init), "--data", "x", "--out", "y", "optim.lr=-1"]) == 2


def test_posttrain_configs_load():
    from pathlib import Path

    from core.validate import ConfigError
    from trainer.rounds import load_config
    root = Path(__file__).resolve().parent.parent / "configs" / "posttrain"
    files = sorted(root.glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        cfg = load_config(str(f), ["init=somewhere"])
        assert cfg.rounds >= 1 and cfg.dpo.beta > 0
    with pytest.raises(ConfigError, match="init"):
        load_config(str(files[0]), [])
    with pytest.raises(ConfigError, match="rejection.top_p"):
        load_config(str(files[0]), ["init=x", "rejection.top_p=0"])


def test_sequence_logprobs_chunked_equals_full(tok):
    """The chunked, checkpointed log-probabilities (and their gradients) equal the plain ones."""
    m = tiny(tok, seed=8)
    seqs = [encode_dialog(tok, D1).ids, encode_dialog(tok, D2).ids]
    masks = [encode_dialog(tok, D1).loss_mask("dpo"), encode_dialog(tok, D2).loss_mask("dpo")]
    a = sequence_logprobs(m, seqs, masks, "cpu", chunk=5)
    a.sum().backward()
    ga = m.output.weight.grad.clone()
    m.zero_grad()
    x = torch.zeros(2, max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
    lp = torch.log_softmax(m(x[:, :-1]), -1).gather(-1, x[:, 1:, None])[..., 0]
    mk = torch.zeros_like(x, dtype=torch.bool)
    for i, k in enumerate(masks):
        mk[i, :len(k)] = torch.tensor(k)
    b = (lp * mk[:, 1:]).sum(-1)
    b.sum().backward()
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(ga, m.output.weight.grad, atol=1e-5)
