"""Export a trained model to the Hugging Face layout: ``python -m trainer.export --checkpoint DIR --out DIR``.

Writes what ``transformers.LlamaForCausalLM.from_pretrained`` and ``PreTrainedTokenizerFast`` load:
``model.safetensors`` (fp32 by default), ``config.json``, ``generation_config.json``,
``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``. Only ``safetensors`` is
needed to write them (the JSON files are written directly); ``transformers`` only reads them.

RoPE layouts. Our ``apply_rope`` rotates *interleaved pairs* of each head's dimensions,
``(x[2i], x[2i+1])`` by angle ``pos * theta^(-2i/D)``. HF's Llama rotates *half-split* pairs,
``(x[i], x[i + D/2])`` by the same angle (``rotate_half``). Attention scores are dot products
over a head's dimensions, so any permutation applied to both q and k inside every head leaves
them unchanged; moving row ``2i`` of a head to row ``i`` and row ``2i+1`` to row ``D/2 + i``
turns our pairs into HF's. That permutation is applied to the rows of ``wq`` and ``wk``
(per head, query and key heads alike: GQA shares the head size); ``wv``/``wo`` are untouched.

The tokenizer (tiktoken cl100k_base + Llama 3's special tokens, ``core/tokenizer.py``) is written
as a byte-level BPE ``tokenizer.json`` built offline from the tiktoken rank file: the vocabulary
is the ranks with bytes mapped to printable characters (the GPT-2 byte-to-unicode table), and the
merges are every split of a token into two tokens, ordered by the rank of the token they form
(tiktoken merges the adjacent pair whose concatenation has the lowest rank). ``ignore_merges``
makes a pre-token that is itself in the vocabulary one token, as tiktoken does. The exported
tokenizer adds no BOS by itself (``add_bos_token`` false, so its ids equal tiktoken's); the mixer
starts every training document with ``<|begin_of_text|>`` (``bos_token_id``) and ends it with
``<|end_of_text|>``, so prepend ``bos_token_id`` to score text as the model was trained.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainer.loading import Trained, describe, load_weights  # noqa: E402
from trainer.model import ModelConfig  # noqa: E402


def interleaved_to_half(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of a q/k projection (n_heads * D, dim) from interleaved-pair to half-split order."""
    out, dim = w.shape
    d = out // n_heads
    return w.reshape(n_heads, d // 2, 2, dim).transpose(1, 2).reshape(out, dim).contiguous()


def half_to_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    out, dim = w.shape
    d = out // n_heads
    return w.reshape(n_heads, 2, d // 2, dim).transpose(1, 2).reshape(out, dim).contiguous()


def hf_state_dict(sd: dict, cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> dict:
    """Our parameter names and layout -> HF Llama's (tied embeddings: no ``lm_head.weight``)."""
    out = {"model.embed_tokens.weight": sd["tok_embeddings.weight"],
           "model.norm.weight": sd["norm.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["output.weight"]
    for i in range(cfg.n_layers):
        p, q = f"layers.{i}.", f"model.layers.{i}."
        out[q + "input_layernorm.weight"] = sd[p + "attention_norm.weight"]
        out[q + "post_attention_layernorm.weight"] = sd[p + "ffn_norm.weight"]
        out[q + "self_attn.q_proj.weight"] = interleaved_to_half(sd[p + "attention.wq.weight"], cfg.n_heads)
        out[q + "self_attn.k_proj.weight"] = interleaved_to_half(sd[p + "attention.wk.weight"], cfg.n_kv_heads)
        out[q + "self_attn.v_proj.weight"] = sd[p + "attention.wv.weight"]
        out[q + "self_attn.o_proj.weight"] = sd[p + "attention.wo.weight"]
        out[q + "mlp.gate_proj.weight"] = sd[p + "feed_forward.w1.weight"]
        out[q + "mlp.up_proj.weight"] = sd[p + "feed_forward.w3.weight"]
        out[q + "mlp.down_proj.weight"] = sd[p + "feed_forward.w2.weight"]
    return {k: v.detach().to(dtype).contiguous() for k, v in out.items()}


def hf_config(cfg: ModelConfig, bos_id: int, eos_id: int, dtype: str = "float32") -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.dim, "intermediate_size": cfg.ffn_hidden,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim, "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
        # transformers >= 5 reads rope_parameters; 4.x reads rope_theta (+ rope_scaling)
        "rope_theta": cfg.rope_theta, "rope_scaling": None,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "tie_word_embeddings": cfg.tie_embeddings, "attention_bias": False, "mlp_bias": False,
        "attention_dropout": 0.0, "initializer_range": cfg.init_std, "pretraining_tp": 1,
        "bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": None, "use_cache": True,
        "torch_dtype": dtype, "dtype": dtype,
    }


# ---- tokenizer ------------------------------------------------------------------------------
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE: bytes that
    are printable Latin-1 characters map to themselves, the other 68 to U+0100 onwards in order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bpe_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Every split of a multi-byte token into two tokens, ordered by the rank of the result (then
    by the parts' ranks): the order in which tiktoken would merge those pairs."""
    merges = []
    for tok, r in ranks.items():
        for i in range(1, len(tok)):
            a, b = tok[:i], tok[i:]
            ra, rb = ranks.get(a), ranks.get(b)
            if ra is not None and rb is not None:
                merges.append((r, ra, rb, a, b))
    merges.sort()
    return [(a, b) for _, _, _, a, b in merges]


def tokenizer_json(ranks: dict[bytes, int], pattern: str, special: dict[str, int]) -> dict:
    b2u = byte_to_unicode()

    def s(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    vocab = {s(t): r for t, r in ranks.items()}
    if len(vocab) != len(ranks):
        raise ValueError("byte-to-unicode mapping collided (should not happen)")
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in sorted(special.items(), key=lambda kv: kv[1])]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": True, "vocab": vocab,
                  "merges": [[s(a), s(b)] for a, b in bpe_merges(ranks)]},
    }


def hf_pattern(pat: str) -> str:
    """tiktoken's split pattern in the dialect of ``tokenizers``' regex engine (Oniguruma, Ruby
    syntax), where ``X{1,3}+`` is not possessive but a repeated ``X{1,3}`` (so ``\\p{N}{1,3}+``
    would take a whole run of digits); a bounded repeat of one character class needs no
    possessive form. ``?+``, ``++`` and ``*+`` are possessive in both."""
    return re.sub(r"(\{\d+,\d+\})\+", r"\1", pat)


def write_tokenizer(out: Path, tok, max_len: int) -> None:
    enc = tok.encoding
    ranks = enc._mergeable_ranks          # bytes -> rank (tiktoken keeps the rank table it was built from)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(ranks, hf_pattern(enc._pat_str), tok.special),
                                                   ensure_ascii=False))
    inv = {v: k for k, v in tok.special.items()}
    bos, eos = inv[tok.bos_id], inv[tok.eot_id]
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
        "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": max_len, "model_input_names": ["input_ids", "attention_mask"],
        "tiktoken_name": tok.name, "tiktoken_fingerprint": tok.fingerprint}, indent=1))
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": bos, "eos_token": eos}, indent=1))


# ---- the command --------------------------------------------------------------------------
def export(checkpoint: str | Path, out: str | Path, dtype: str = "float32", tokenizer: bool = True) -> dict:
    try:
        from safetensors.torch import save_file
    except ImportError as e:  # pragma: no cover
        raise SystemExit("trainer.export needs `safetensors` (pip install safetensors, or the project's "
                         "`test` extra)") from e

    t: Trained = describe(checkpoint)
    cfg = t.model_config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sd = load_weights(t)
    tdt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    tok_name = (t.tokenizer or {}).get("name", "cl100k_base+llama3")
    from core.tokenizer import DEFAULT_NAME, get_tokenizer
    tok = get_tokenizer(DEFAULT_NAME) if tok_name == DEFAULT_NAME else None
    bos = tok.bos_id if tok else (t.tokenizer or {}).get("bos_id")
    eos = tok.eot_id if tok else (t.tokenizer or {}).get("eot_id")
    save_file(hf_state_dict(sd, cfg, tdt), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf_config(cfg, bos, eos, dtype), indent=1))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": bos, "eos_token_id": eos, "do_sample": False}, indent=1))
    notes = []
    if tokenizer and tok is not None:
        write_tokenizer(out, tok, cfg.max_seq_len)
    elif tokenizer:
        notes.append(f"tokenizer {tok_name!r} is not cl100k_base+llama3: tokenizer files not written")
    src = {"checkpoint": str(t.path), "step": t.step, "model_config": cfg.__dict__,
           "tokenizer": t.tokenizer, "rope": "wq/wk rows permuted per head from interleaved pairs to half-split"}
    (out / "export_info.json").write_text(json.dumps(src, indent=1, default=str))
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir()), "notes": notes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="run directory, its final/, or a checkpoint directory")
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--no-tokenizer", action="store_true", help="weights and config only")
    a = ap.parse_args(argv)
    res = export(a.checkpoint, a.out, a.dtype, tokenizer=not a.no_tokenizer)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
