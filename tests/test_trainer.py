"""Trainer tests (CPU, tiny preset): shard reading, document mask, loss, resume, averaging, ramps, refusal.

Shards are written by the test itself in the documented format (fixtures/demo_mix.py) from real text
of the sample corpus tokenised with tiktoken's cl100k_base (offline copy). For speed the mechanics
tests renumber the token ids onto the few thousand that occur (a bijection: the token sequences are
unchanged), so a 64-dim model's output layer is small; the reader and mask tests use the real ids.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import demo_mix as tt
from trainer.average import average_checkpoints, average_state_dicts, stage_checkpoints
from trainer.checkpoint import MixMismatchError, list_checkpoints, load_tensors, read_state
from trainer.config import ConfigError, load
from trainer.data import ShardFormatError, TokenShards, rank_rows
from trainer.loop import Trainer
from trainer.metrics import read_metrics
from trainer.model import build_model, preset_config
from trainer.optim import param_groups
from trainer.schedule import plan_steps, ramp_at, stage_lr

CATS = ["general", "math", "code", "multilingual"]
SOURCES = [{"name": c, "category": c} for c in CATS]
ROW = 64


pytestmark = pytest.mark.usefixtures("one_cpu_thread")   # tests/conftest.py


@pytest.fixture(scope="module")
def real_tokens(corpus):
    enc = tt.cl100k()
    texts = tt.load_corpus_docs(corpus, per_source=36, max_chars=1200)
    docs = [[enc.encode_ordinary(t) for t in texts[c]] for c in CATS]
    return enc, texts, docs


@pytest.fixture(scope="module")
def mixes(tmp_path_factory, real_tokens):
    """pretrain/ and anneal/ mix directories (compact ids) with heldout/ sets."""
    _, _, docs = real_tokens
    small, vocab, eot = tt.relabel_compact(docs)
    train = [d[:-6] for d in small]
    held = [d[-6:] for d in small]
    root = tmp_path_factory.mktemp("mix")
    kw = dict(seq_len=ROW, vocab_size=vocab, eot_id=eot, rows_per_shard=40)
    tt.write_token_shards(root / "pretrain", SOURCES, train, stage="pretrain", heldout_docs_by_source=held, **kw)
    anneal = [train[0][:10], train[1], train[2], train[3][:10]]
    tt.write_token_shards(root / "anneal", SOURCES, anneal, stage="anneal", heldout_docs_by_source=held, **kw)
    return root, vocab


def _cfg(root: Path, out: Path, *extra: str):
    base = [
        f"out_dir={out}", "device=cpu", "precision=fp32", "tensorboard=false", "log_every=1000",
        "model={preset: tiny}", "optim.lr=0.01", "micro_batch_tokens=256",
        "ramps=[{from_tokens: 0, batch_tokens: 512, seq_len: 32}, {from_tokens: 2048, batch_tokens: 1024, seq_len: 64}]",
        f"stages=[{{name: pretrain, data: {root}/pretrain, tokens: 3072, warmup_tokens: 1024}},"
        f" {{name: anneal, data: {root}/anneal, tokens: 3072, schedule: linear_to_zero,"
        f" checkpoint_every_steps: 1, average_last: 3}}]",
        "eval.every_steps=0", "eval.rows_per_source=4", "checkpoint.every_steps=3", "checkpoint.keep_last=1",
    ]
    return load(None, base + list(extra))


@pytest.fixture(scope="module")
def full_run(mixes, tmp_path_factory):
    root, _ = mixes
    out = tmp_path_factory.mktemp("run_full")
    res = Trainer(_cfg(root, out)).run()
    return out, res


# ---- format and reader ------------------------------------------------------------------------

def test_reader_returns_real_tokens_and_boundaries(tmp_path, real_tokens):
    enc, texts, docs = real_tokens
    math_docs = docs[1][:5]
    tt.write_token_shards(tmp_path / "m", [SOURCES[1]], [math_docs], seq_len=ROW)
    sh = TokenShards(tmp_path / "m")
    assert sh.seq_len == ROW and sh.vocab_size == tt.CL100K_LLAMA3_VOCAB
    stream = np.concatenate([sh.row(i) for i in range(len(sh))])
    want = np.concatenate([np.array(d + [tt.EOT_ID]) for d in math_docs])[:len(stream)]
    assert np.array_equal(stream, want)
    # the first document decodes back to the corpus text
    first = stream[:np.argmax(stream == tt.EOT_ID)]
    assert enc.decode(first.tolist()) == texts["math"][0]
    # a new document starts right after every EOT (within a row), and at 0
    for i in range(len(sh)):
        row, starts = sh.row(i), set(sh.row_doc_starts(i).tolist())
        assert 0 in starts
        after_eot = {p + 1 for p in np.nonzero(row == tt.EOT_ID)[0] if p + 1 < ROW}
        assert after_eot <= starts and starts - {0} <= after_eot
    b = sh.batch([0, 1], piece_len=32)
    assert b.x.shape == (4, 31) and torch.equal(b.x[0, 1:], b.y[0, :-1])


def test_reader_rejects_bad_shards(tmp_path, real_tokens):
    _, _, docs = real_tokens
    tt.write_token_shards(tmp_path / "m", SOURCES[:1], [docs[0][:8]], seq_len=ROW)
    shard = tmp_path / "m" / "shard_00000.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ShardFormatError, match="bytes, expected"):
        TokenShards(tmp_path / "m")
    with pytest.raises(ShardFormatError, match="no manifest"):
        TokenShards(tmp_path / "nowhere")


def test_rank_slices_cover_the_global_batch():
    rows = [rank_rows(10, 8, r, 4) for r in range(4)]
    assert np.array_equal(np.concatenate(rows), np.arange(10, 18))
    with pytest.raises(ValueError):
        rank_rows(0, 6, 0, 4)


# ---- model ------------------------------------------------------------------------------------

def test_document_mask_isolates_documents(real_tokens):
    """Changing one document's tokens leaves the other documents' logits unchanged (real cl100k ids)."""
    _, _, docs = real_tokens
    torch.manual_seed(0)
    model = build_model(preset_config("tiny", max_seq_len=128), seed=0).eval()
    a, b, c = docs[1][0][:20], docs[2][0][:25], docs[0][0][:18]
    row = torch.tensor([a + [tt.EOT_ID] + b + [tt.EOT_ID] + c])
    ids = torch.tensor([[0] * 21 + [1] * 26 + [2] * 18])
    changed = row.clone()
    changed[0, 25:40] = torch.tensor(docs[3][1][:15])       # rewrite the middle of document 1
    with torch.no_grad():
        l0 = model(row, doc_ids=ids)
        l1 = model(changed, doc_ids=ids)
        u0, u1 = model(row), model(changed)                  # no document mask: plain causal
    other = torch.cat([torch.arange(0, 21), torch.arange(47, 65)])
    assert torch.allclose(l0[0, other], l1[0, other], atol=1e-5)
    assert not torch.allclose(l0[0, 40:47], l1[0, 40:47], atol=1e-3)  # the changed document does change
    assert not torch.allclose(u0[0, 47:], u1[0, 47:], atol=1e-3)      # and without the mask, c would too
    # flex attention (eager reference on CPU) computes the same masked attention as SDPA
    model.set_attention_backend("flex", "cpu")
    with torch.no_grad():
        lf = model(row, doc_ids=ids)
    assert torch.allclose(lf, l0, atol=1e-4)


@pytest.mark.parametrize("name,billions", [("llama3-8B", 8.03), ("llama3-70B", 70.55), ("llama3-405B", 405.85)])
def test_llama3_shapes_on_meta(name, billions):
    m = build_model(preset_config(name), "meta")
    assert abs(m.num_params() / 1e9 - billions) < 0.01
    assert m.estimate_flops(8192) > 6 * m.num_params(non_embedding=True)


def test_presets_grow_and_optimizer_groups():
    sizes = [build_model(preset_config(p), "meta").num_params(True) for p in ("20M", "125M", "350M", "1B")]
    assert sizes == sorted(sizes) and 15e6 < sizes[0] < 25e6 and 0.9e9 < sizes[-1] < 1.1e9
    m = build_model(preset_config("tiny", vocab_size=256, max_seq_len=32))
    decay, no_decay = param_groups(m, 0.1)
    assert all(p.ndim == 2 for p in decay["params"])
    assert m.tok_embeddings.weight in no_decay["params"]
    assert not any(p is m.tok_embeddings.weight for p in decay["params"])
    assert any(p.ndim == 1 for p in no_decay["params"])


def test_activation_checkpointing_gives_same_gradients():
    m = build_model(preset_config("tiny", vocab_size=256, max_seq_len=32), seed=1)
    x = torch.randint(0, 256, (2, 16))
    ids = torch.tensor([[0] * 7 + [1] * 9, [0] * 16])
    m(x, x, doc_ids=ids).backward()
    g0 = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m.activation_checkpointing = True
    m(x, x, doc_ids=ids).backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(g0, m.parameters()))


def test_chunked_cpu_loss_equals_the_full_loss(monkeypatch):
    """On CPU the loss goes over chunks of tokens (trainer/model.py); it must give the loss and
    gradients of one cross-entropy over all logits, for every reduction and with ignored targets."""
    import torch.nn.functional as F

    import trainer.model as tm
    m = build_model(preset_config("tiny", vocab_size=256, max_seq_len=32), seed=1)
    x = torch.randint(0, 256, (2, 16))
    y = torch.randint(0, 256, (2, 16))
    y[0, :3] = -100
    ids = torch.tensor([[0] * 7 + [1] * 9, [0] * 16])

    def reference(reduction):   # the full logits, as on a GPU
        return F.cross_entropy(m(x, doc_ids=ids).float().view(-1, 256), y.reshape(-1),
                               reduction=reduction)

    monkeypatch.setattr(tm, "CPU_LOSS_CHUNK_BYTES", 5 * 4 * 256)   # 5 tokens per chunk: 7 chunks
    for red in ("mean", "sum", "none"):
        a, b = m(x, y, doc_ids=ids, reduction=red), reference(red)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5), red
    m(x, y, doc_ids=ids).backward()
    g0 = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    reference("mean").backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(g0, m.parameters()))


# ---- schedule and config ----------------------------------------------------------------------

def test_lr_schedule_shapes():
    assert stage_lr("warmup_cosine", 0, 1000, 1.0, warmup_tokens=100, batch_tokens=10) == pytest.approx(0.1)
    assert stage_lr("warmup_cosine", 100, 1000, 1.0, warmup_tokens=100) == pytest.approx(1.0)
    assert stage_lr("warmup_cosine", 1000, 1000, 1.0, warmup_tokens=100) == pytest.approx(0.01)
    assert stage_lr("linear_to_zero", 0, 1000, 1.0, start_lr=0.01) == pytest.approx(0.01)
    assert stage_lr("linear_to_zero", 500, 1000, 1.0, start_lr=0.01) == pytest.approx(0.005)
    assert stage_lr("linear_to_zero", 1000, 1000, 1.0, start_lr=0.01) == 0.0


def test_config_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("stages: [{name: a, data: x, tokens: 1e6}]\noptim: {lr: 1e-3}\n")
    c = load(p, ["optim.weight_decay=0.05", "stages.0.tokens=2000"])
    assert c.optim.lr == 0.001 and c.optim.weight_decay == 0.05 and c.stages[0].tokens == 2000
    with pytest.raises(ConfigError, match="unknown"):
        load(p, ["optim.lr_peak=1"])
    with pytest.raises(ConfigError, match="sorted"):
        load(p, ["ramps=[{from_tokens: 10, batch_tokens: 8}]"])


# ---- training runs ----------------------------------------------------------------------------

def test_loss_falls_on_real_tokens(mixes, tmp_path):
    root, _ = mixes
    cfg = load(None, [
        f"out_dir={tmp_path}", "device=cpu", "precision=fp32", "tensorboard=false", "log_every=1000",
        "optim.lr=0.01", "micro_batch_tokens=512", "ramps=[{from_tokens: 0, batch_tokens: 512}]",
        f"stages=[{{name: pretrain, data: {root}/pretrain, tokens: 12800, warmup_tokens: 1024}}]",
        "eval.every_steps=0", "eval.rows_per_source=4", "checkpoint.every_steps=1000"])
    tr = Trainer(cfg)
    before = tr.evaluate(0)
    tr.run()
    train = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl", "train")]
    after = [r for r in read_metrics(tmp_path / "metrics.jsonl", "eval")][-1]
    assert len(train) == 25
    assert np.mean(train[-5:]) < np.mean(train[:3]) - 0.5      # from ~ln(vocab) = 8.07
    assert after["heldout_loss/all"] < before["all"] - 0.4
    assert after["heldout_loss/math"] < before["math"] - 0.5
    assert set(before) == set(CATS) | {"all"}


def test_ramps_follow_config(full_run):
    out, _ = full_run
    recs = read_metrics(out / "metrics.jsonl", "train")
    ramps = [{"from_tokens": 0, "batch_tokens": 512, "seq_len": 32},
             {"from_tokens": 2048, "batch_tokens": 1024, "seq_len": 64}]
    plan = plan_steps([{"tokens": 3072}, {"tokens": 3072}], ramps)
    assert len(plan) == 8
    assert [(r["batch_tokens"], r["seq_len"]) for r in recs] == [(p["batch_tokens"], p["seq_len"]) for p in plan]
    assert [r["batch_tokens"] for r in recs[:5]] == [512, 512, 512, 512, 1024]
    # accumulation derived from tokens per step: 512/256 = 2 micro-batches, then 1024/256 = 4
    assert [r["grad_accum"] for r in recs[:5]] == [2, 2, 2, 2, 4]
    assert ramp_at(ramps, 2047)["seq_len"] == 32 and ramp_at(ramps, 2048)["seq_len"] == 64
    # anneal decays linearly to 0 from the LR the pre-training stage ended at
    ann = [r for r in recs if r["stage"] == "anneal"]
    assert ann[0]["lr"] == pytest.approx(0.01 * 0.01) and ann[-1]["lr"] < ann[0]["lr"]


def test_resume_equals_uninterrupted(full_run, mixes, tmp_path):
    out_full, res_full = full_run
    root, _ = mixes
    r1 = Trainer(_cfg(root, tmp_path, "stop_after_steps=3")).run()      # interrupted mid pre-training
    assert r1["stopped"] and r1["step"] == 3
    r2 = Trainer(_cfg(root, tmp_path, "stop_after_steps=3")).run()      # interrupted again mid anneal
    assert r2["stopped"] and r2["step"] == 6
    res = Trainer(_cfg(root, tmp_path)).run()
    assert res["step"] == res_full["step"]
    full = {r["step"]: r["loss"] for r in read_metrics(out_full / "metrics.jsonl", "train")}
    resumed = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl", "train")}
    assert resumed == pytest.approx(full, rel=1e-6, abs=1e-6)
    a, b = load_tensors(out_full / "final" / "model.pt"), load_tensors(tmp_path / "final" / "model.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)


def test_final_model_is_exact_average(full_run):
    out, res = full_run
    cks = stage_checkpoints(out, "anneal")
    assert len(cks) >= 3 and [str(c) for c in cks[-3:]] == res["averaged"]
    states = [load_tensors(c / "model.pt") for c in cks[-3:]]
    final = load_tensors(out / "final" / "model.pt")
    for k, v in final.items():
        want = (sum(s[k].double() for s in states) / 3).float()
        assert torch.equal(v, want), k
    assert not torch.equal(final["norm.weight"], states[-1]["norm.weight"]) or \
        not torch.equal(final["layers.0.attention.wq.weight"], states[-1]["layers.0.attention.wq.weight"])
    assert set(res["final_eval"]) == set(CATS) | {"all"}
    # exactness on values whose mean is known
    s = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([2.0, 4.0])}, {"w": torch.tensor([3.0, 9.0])}]
    assert torch.equal(average_state_dicts(s)["w"], torch.tensor([2.0, 5.0]))
    assert torch.equal(average_checkpoints(cks[-3:])["output.weight"], final["output.weight"])
    # the pre-training stage's old checkpoints were pruned, the annealing ones kept
    pre = [c for c in list_checkpoints(out) if read_state(c)["stage_name"] == "pretrain"]
    assert len(pre) <= 1


def test_resume_on_a_different_mix_is_refused(mixes, tmp_path, real_tokens):
    root, vocab = mixes
    mix = tmp_path / "mix"
    shutil.copytree(root, mix)
    out = tmp_path / "run"
    assert Trainer(_cfg(mix, out, "stop_after_steps=2")).run()["step"] == 2
    # the mixer re-ran with other documents: same directory, different token stream and fingerprint
    _, _, docs = real_tokens
    small, _, eot = tt.relabel_compact(docs)
    shutil.rmtree(mix / "pretrain")
    tt.write_token_shards(mix / "pretrain", SOURCES, [d[::-1] for d in small], seq_len=ROW, vocab_size=vocab,
                          eot_id=eot, seed=99)
    with pytest.raises(MixMismatchError, match="--force"):
        Trainer(_cfg(mix, out)).run()
    res = Trainer(_cfg(mix, out, "force=true", "stop_after_steps=1")).run()
    assert res["step"] == 3


def test_ddp_two_ranks_match_one_process(full_run, mixes, tmp_path):
    """torchrun with 2 CPU ranks (Gloo): each rank reads its slice of every global batch, and the
    per-step losses equal the single-process run's (same global batch, same order)."""
    import os
    import subprocess
    import sys
    out_full, _ = full_run
    root, _ = mixes
    cfg = _cfg(root, tmp_path / "ddp", "stop_after_steps=3", "parallel=ddp")
    import yaml
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "trainer.run", "--config", str(tmp_path / "c.yaml")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "world 2 (ddp)" in r.stdout
    full = {x["step"]: x["loss"] for x in read_metrics(out_full / "metrics.jsonl", "train")}
    ddp = {x["step"]: x["loss"] for x in read_metrics(tmp_path / "ddp" / "metrics.jsonl", "train")}
    assert sorted(ddp) == [1, 2, 3]
    assert ddp == pytest.approx({k: full[k] for k in ddp}, rel=1e-5)


def test_shipped_recipes_parse():
    for p in sorted(Path(__file__).resolve().parent.parent.glob("configs/train/*.yaml")):
        cfg = load(p)
        assert cfg.stages and cfg.ramps, p
        build_model(preset_config(cfg.model["preset"]), "meta")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["flex", "varlen"])
def test_gpu_attention_backends_match_sdpa(backend):
    torch.manual_seed(0)
    m = build_model(preset_config("tiny", vocab_size=512, max_seq_len=256), "cuda", seed=0).eval()
    x = torch.randint(0, 512, (2, 256), device="cuda")
    ids = torch.zeros(2, 256, dtype=torch.int32, device="cuda")
    ids[0, 100:] = 1
    ids[0, 180:] = 2
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        m.set_attention_backend("sdpa")
        ref = m(x, doc_ids=ids).float()
        m.set_attention_backend(backend)
        got = m(x, doc_ids=ids).float()
    assert torch.allclose(ref, got, atol=5e-2, rtol=5e-2)


# ---- nothing lost: config values, damaged checkpoints (issue 19) ------------------------------

@pytest.mark.parametrize("override,message", [
    ("stages.0.min_lr_ratio=-0.1", r"stages\.0\.min_lr_ratio = -0\.1: must be a number in \[0, 1\]"),
    ("checkpoint.every_steps=0", r"checkpoint\.every_steps = 0: must be an integer >= 1"),
    ("optim.lr=-1e-3", r"optim\.lr = -0\.001: must be a number > 0"),
    ("optim.betas=[0.9, 1.5]", r"optim\.betas\.1 = 1\.5: must be a number in \[0, 1\)"),
    ("eval.rows_per_source=0", r"eval\.rows_per_source = 0: must be an integer >= 1"),
    ("ramps.0.batch_tokens=0", r"ramps\.0\.batch_tokens = 0: must be an integer >= 1"),
    ("stages.1.warmup_tokens=-5", r"stages\.1\.warmup_tokens = -5: must be an integer >= 0"),
    ("stages.0.tokens=1.5", r"stages\.0\.tokens = 1\.5: must be an integer >= 1"),
    ("log_every=0", r"log_every = 0: must be an integer >= 1"),
    ("precision=fp16", r"precision = 'fp16': must be one of 'auto', 'bf16', 'fp32'"),
    ("compile=yes please", r"compile = 'yes please': must be true or false"),
    ("stages.7.tokens=10", r"stages\.7 is not an item of a list of 2"),
])
def test_bad_trainer_values_are_refused_at_load(tmp_path, override, message):
    """Each value is checked against its declared rule when the config loads (file or override),
    with a message naming the key, the value and the allowed range."""
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, tmp_path / "out", override)


def test_bad_trainer_value_is_one_line_from_the_cli(tmp_path):
    import subprocess
    import sys
    p = tmp_path / "c.yaml"
    p.write_text("stages: [{name: a, data: nowhere, tokens: 1000, min_lr_ratio: -0.5}]\n")
    r = subprocess.run([sys.executable, "-m", "trainer.run", "--config", str(p)], capture_output=True,
                       text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "config error: stages.0.min_lr_ratio = -0.5: must be a number in [0, 1]"


def _flip(path: Path, at: int, n: int = 4096) -> None:
    b = bytearray(path.read_bytes())
    for i in range(at, min(at + n, len(b))):
        b[i] ^= 0xFF
    path.write_bytes(bytes(b))


def test_damaged_checkpoint_is_refused_and_fallback_resumes(mixes, tmp_path):
    from trainer.checkpoint import CheckpointError
    root, _ = mixes
    out = tmp_path / "run"
    more = ("stop_after_steps=4", "checkpoint.keep_last=2")
    assert Trainer(_cfg(root, out, *more)).run()["step"] == 4         # checkpoints at steps 3 and 4
    cks = list_checkpoints(out)
    assert [c.name for c in cks] == ["step_00000003", "step_00000004"]
    assert set(read_state(cks[-1])) and (cks[-1] / "manifest.json").is_file()
    model = cks[-1] / "model.pt"
    pristine = model.read_bytes()
    _flip(model, len(pristine) // 2)                                   # 4 KiB of bit flips
    with pytest.raises(CheckpointError, match=r"step_00000004/model\.pt: sha256 differs.*--resume-fallback"):
        Trainer(_cfg(root, out)).run()
    model.write_bytes(pristine[:-100])                                 # truncated
    with pytest.raises(CheckpointError, match=r"step_00000004/model\.pt: \d+ bytes, the manifest says"):
        Trainer(_cfg(root, out)).run()
    model.write_bytes(pristine)
    state = cks[-1] / "state.json"
    good_state = state.read_text()
    state.write_text(good_state[:len(good_state) // 2])
    with pytest.raises(CheckpointError, match=r"step_00000004/state\.json"):
        Trainer(_cfg(root, out)).run()
    # asked to, the run sets the damaged checkpoint aside and resumes from the previous good one
    tr = Trainer(_cfg(root, out, "resume_fallback=true", "stop_after_steps=1"))
    assert tr.resume() and tr.step == 3
    assert (out / "checkpoints" / "bad_step_00000004" / "state.json").read_text() != good_state
    assert [c.name for c in list_checkpoints(out)] == ["step_00000003"]


def test_damaged_checkpoint_is_not_averaged(full_run, tmp_path):
    from trainer.checkpoint import CheckpointError
    out, _ = full_run
    cks = []
    for c in stage_checkpoints(out, "anneal")[-3:]:
        shutil.copytree(c, tmp_path / c.name)
        cks.append(tmp_path / c.name)
    assert torch.equal(average_checkpoints(cks)["output.weight"],
                       load_tensors(out / "final" / "model.pt")["output.weight"])
    _flip(cks[1] / "model.pt", 2000, 64)
    with pytest.raises(CheckpointError, match=rf"{cks[1].name}/model\.pt: sha256 differs"):
        average_checkpoints(cks)


def test_damaged_checkpoint_is_one_line_from_the_cli(mixes, tmp_path):
    import subprocess
    import sys

    import yaml
    root, _ = mixes
    out = tmp_path / "run"
    cfg = _cfg(root, out, "stop_after_steps=1")
    assert Trainer(cfg).run()["step"] == 1
    (list_checkpoints(out)[-1] / "state.json").write_text("{\"step\": ")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    r = subprocess.run([sys.executable, "-m", "trainer.run", "--config", str(tmp_path / "c.yaml")],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot resume: ") and "step_00000001/state.json" in last


def test_a_stage_past_the_end_of_its_mix_is_refused(mixes, tmp_path):
    """Reading a mix past its last row would repeat every source beyond the epochs the mixer
    planned within their max_epochs caps: refused before any step, naming the rows."""
    root, _ = mixes
    n = TokenShards(root / "anneal").n_rows
    fit = n * ROW // 1024 * 1024                    # annealing steps read 1024 tokens (ramps)
    Trainer(_cfg(root, tmp_path / "a", f"stages.1.tokens={fit}"))   # within the mix: fine
    over = _cfg(root, tmp_path / "b", f"stages.1.tokens={fit + 1}")  # one step more: past it
    with pytest.raises(ConfigError, match=rf"stage 'anneal' needs \d+ rows of {ROW} tokens .* has {n}"):
        Trainer(over)
