"""Hugging Face export (trainer/export.py): transformers' LlamaForCausalLM loads the export and gives
our logits (fp32, max abs difference <= 1e-4) on single documents and on packed rows (our document
mask vs each document run on its own in HF); the exported tokenizer.json encodes real corpus text
to tiktoken's ids. The model is the tiny preset (GQA: 4 query / 2 KV heads) with the full
100,352-token vocabulary, random weights drawn with a large std so logits differ strongly between
tokens, tied and untied.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from trainer.export import export, half_to_interleaved, interleaved_to_half  # noqa: E402
from trainer.model import build_model, preset_config  # noqa: E402

TOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_cpu_thread")   # tests/conftest.py


def _save_final(root: Path, tie: bool, seed: int):
    cfg = preset_config("tiny", vocab_size=100352, max_seq_len=256, tie_embeddings=tie, init_std=0.15,
                        rope_theta=10000.0)
    model = build_model(cfg, seed=seed).eval()
    d = root / "final"
    d.mkdir(parents=True)
    torch.save(model.state_dict(), d / "model.pt")
    (d / "model_config.json").write_text(json.dumps(asdict(cfg)))
    return model, d


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    model, d = _save_final(root, request.param, seed=7 + request.param)
    out = root / "hf"
    export(root, out, tokenizer=request.param)     # the run dir resolves to final/
    hf = transformers.LlamaForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    return model, hf, out


def test_permutation_round_trips():
    w = torch.arange(4 * 8 * 3, dtype=torch.float32).reshape(32, 3)
    assert torch.equal(half_to_interleaved(interleaved_to_half(w, 4), 4), w)
    # head 0, rows 0..7 interleaved (0,1),(2,3),.. -> half-split: even rows then odd rows
    assert interleaved_to_half(w, 4)[:8, 0].tolist() == [0, 6, 12, 18, 3, 9, 15, 21]


def test_config_matches(exported):
    model, hf, out = exported
    c = hf.config
    m = model.cfg
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads,
            c.intermediate_size, c.vocab_size) == (m.dim, m.n_layers, m.n_heads, m.n_kv_heads,
                                                   m.ffn_hidden, 100352)
    assert c.tie_word_embeddings == m.tie_embeddings
    assert c.rms_norm_eps == m.norm_eps


def test_logits_match_single_documents(exported):
    model, hf, _ = exported
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 100352, (3, 200), generator=g)
    with torch.no_grad():
        ours, theirs = model(x), hf(x).logits
    assert ours.abs().max() > 1.0                      # the logits are not near-constant
    assert (ours - theirs).abs().max().item() <= TOL


def test_logits_match_packed_documents(exported):
    """A packed row with our document mask == every document run separately in HF (positions
    restart at 0 there; RoPE depends only on relative positions within a document)."""
    model, hf, _ = exported
    g = torch.Generator().manual_seed(1)
    lens = [37, 90, 1, 72]
    row = torch.randint(0, 100352, (1, sum(lens)), generator=g)
    doc_ids = torch.cat([torch.full((n,), i, dtype=torch.int32) for i, n in enumerate(lens)])[None]
    with torch.no_grad():
        packed = model(row, doc_ids=doc_ids)
        unmasked = model(row)
        start, worst = 0, 0.0
        for n in lens:
            sep = hf(row[:, start:start + n]).logits
            worst = max(worst, (packed[:, start:start + n] - sep).abs().max().item())
            start += n
    assert worst <= TOL
    # the comparison can fail: without the mask the later documents' logits differ
    assert (unmasked[:, lens[0]:] - packed[:, lens[0]:]).abs().max().item() > 1e-2


def test_unpermuted_rope_would_not_match(exported, tmp_path):
    """The per-head wq/wk permutation is needed: skipping it changes HF's logits."""
    import trainer.export as ex
    model, hf, out = exported
    from safetensors.torch import load_file, save_file
    sd = load_file(str(out / "model.safetensors"))
    for k in list(sd):
        if k.endswith(("q_proj.weight", "k_proj.weight")):
            heads = model.cfg.n_heads if "q_proj" in k else model.cfg.n_kv_heads
            sd[k] = ex.half_to_interleaved(sd[k], heads)       # back to our layout
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("config.json", "generation_config.json"):
        (bad / f).write_text((out / f).read_text())
    save_file(sd, str(bad / "model.safetensors"), metadata={"format": "pt"})
    hf_bad = transformers.LlamaForCausalLM.from_pretrained(str(bad), dtype=torch.float32).eval()
    x = torch.randint(0, 100352, (1, 64), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (model(x) - hf_bad(x).logits).abs().max().item() > 1e-2


def test_exported_tokenizer_matches_tiktoken(exported, corpus):
    _, _, out = exported
    if not (out / "tokenizer.json").is_file():
        pytest.skip("this parametrisation exports weights only")
    from core.tokenizer import get_tokenizer
    from fixtures.demo_mix import load_corpus_docs
    tok = get_tokenizer()
    hf_tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(out))
    texts = [t for v in load_corpus_docs(corpus, per_source=40).values() for t in v]
    texts += ["It's 2024: 1234567 apples, 3.14159 and ünïcödé  \n\n\t tabs", "   leading spaces", ""]
    n = 0
    for t in texts:
        ids = hf_tok(t, add_special_tokens=False)["input_ids"]
        assert ids == tok.encode(t), t[:80]
        assert hf_tok.decode(ids) == t
        n += len(ids)
    assert n > 10000
    assert hf_tok.eos_token_id == tok.eot_id and hf_tok.bos_token_id == tok.bos_id
    assert hf_tok.convert_tokens_to_ids("<|eot_id|>") == tok.special["<|eot_id|>"]
