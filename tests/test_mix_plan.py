"""The mixer's pure parts: spec, integer targets, epoch cap, interleave, packing, shard format."""
from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from mixer.interleave import interleave, prefix_deviation, window_deviation
from mixer.order import is_heldout
from mixer.pack import cut_pieces, fill_rows
from mixer.plan import InfeasibleMix, apportion, make_plan
from core.token_shards import ShardWriter, TokenShards, write_json
from mixer.spec import SpecError, load_spec, source_shares


def _spec(**kw):
    s = {"stage": "t", "total_tokens": 100 * 64, "seq_len": 64,
         "sources": [{"name": n, "category": n, "max_epochs": 2}
                     for n in ("general", "math", "code", "multilingual")]}
    s.update(kw)
    return load_spec(s)


def test_apportion_is_exact_and_proportional():
    for total in (0, 1, 7, 100, 12345):
        shares = [Fraction(1, 2), Fraction(1, 4), Fraction(17, 100), Fraction(8, 100)]
        r = apportion(total, shares)
        assert sum(r) == total
        assert all(abs(x - total * float(s)) < 1 for x, s in zip(r, shares))
    assert apportion(3, [Fraction(1, 3)] * 3) == [1, 1, 1]
    assert apportion(1, [Fraction(1, 2)] * 2) == [1, 0]  # ties go to the earlier source


def test_default_category_weights_and_source_shares():
    s = _spec(sources=[{"name": "g1", "category": "general", "weight": 3},
                       {"name": "g2", "category": "general", "weight": 1},
                       {"name": "m", "category": "math"}, {"name": "c", "category": "code"},
                       {"name": "ml", "category": "multilingual"}])
    assert s["categories"] == {"general": 0.5, "math": 0.25, "code": 0.17, "multilingual": 0.08}
    sh = source_shares(s)
    assert sh == [Fraction(3, 8), Fraction(1, 8), Fraction(1, 4), Fraction(17, 100),
                  Fraction(8, 100)]
    assert sum(sh) == 1


def test_plan_targets_add_up_and_epochs():
    s = _spec()
    p = make_plan(s, source_shares(s), [10_000, 2_000, 5_000, 1_000], [10, 2, 5, 1])
    assert p.n_rows == 100 and sum(x.target_rows for x in p.sources) == 100
    assert [x.target_rows for x in p.sources] == [50, 25, 17, 8]
    assert p.total_tokens == sum(x.target_tokens for x in p.sources) == 6400
    math = p.sources[1]
    assert math.epochs == pytest.approx(1600 / 2000) and math.passes == 1


def test_epoch_cap_failure_names_source_feasible_total_and_epochs():
    s = _spec()
    # math needs 1600 tokens; it has 500 with a cap of 2 epochs
    with pytest.raises(InfeasibleMix) as e:
        make_plan(s, source_shares(s), [10_000, 500, 5_000, 1_000], [10, 2, 5, 1])
    msg = str(e.value)
    assert "'math'" in msg and "3.20 epochs" in msg and "max_epochs is 2" in msg
    # math may fill floor(2*500/64) = 15 rows; at 62 rows its exact share is 15.5 and largest
    # remainder rounding gives it 15 (63 rows would give it 16)
    assert e.value.largest_feasible_tokens == 62 * 64
    assert apportion(63, source_shares(s))[1] == 16
    assert f"{62 * 64:,}" in msg
    assert "'general'" not in msg


def test_rescale_shrinks_to_largest_feasible_total():
    s = _spec(on_infeasible="rescale")
    p = make_plan(s, source_shares(s), [10_000, 500, 5_000, 1_000], [10, 2, 5, 1])
    assert p.rescaled and p.n_rows == 62
    assert all(x.epochs <= x.max_epochs for x in p.sources)
    assert p.sources[1].passes == 2


def test_source_without_documents_is_infeasible():
    s = _spec()
    with pytest.raises(InfeasibleMix, match="has none"):
        make_plan(s, source_shares(s), [10_000, 0, 5_000, 1_000], [10, 0, 5, 1])


def test_spec_validation_errors():
    with pytest.raises(SpecError, match="unknown config key"):
        _spec(totl_tokens=5)
    with pytest.raises(SpecError, match="not one of"):
        _spec(sources=[{"name": "x", "category": "poetry"}])
    with pytest.raises(SpecError, match="no source"):
        _spec(sources=[{"name": "g", "category": "general"}])
    with pytest.raises(SpecError, match="duplicate source"):
        _spec(categories={"general": 1}, sources=[{"name": "g", "category": "general"}] * 2)


def test_eval_candidate_is_30_percent_candidate_70_percent_base():
    s = load_spec({"kind": "eval_candidate", "total_tokens": 6400, "seq_len": 64,
                   "sources": [{"name": n, "category": n} for n in
                               ("general", "math", "code", "multilingual")],
                   "candidate": {"sources": [{"name": "cand", "table": "/x"}]}})
    assert s["categories"]["candidate"] == pytest.approx(0.3)
    assert s["categories"]["general"] == pytest.approx(0.35)
    assert sum(s["categories"].values()) == pytest.approx(1.0)
    assert s["sources"][-1]["category"] == "candidate"


def test_shipped_specs_load():
    from core.paths import PROJECT_ROOT
    for name in ("pretrain", "anneal", "eval_candidate"):
        s = load_spec(PROJECT_ROOT / "configs" / "mix" / f"{name}.yaml")
        assert sum(source_shares(s)) == 1


def test_interleave_every_prefix_within_one_row():
    rng = random.Random(0)
    for _ in range(20):
        rows = [rng.randint(0, 60) for _ in range(rng.randint(1, 6))]
        if not sum(rows):
            continue
        order = interleave(rows)
        assert [int(np.sum(order == s)) for s in range(len(rows))] == rows
        assert prefix_deviation(order, rows) < 1.0
    order = interleave([50, 25, 17, 8])
    dev = window_deviation(order, [50, 25, 17, 8], 20)
    assert max(dev.values()) <= 2 / 20 + 1e-9


def test_heldout_hash_holds_out_the_fraction():
    frac = np.mean([is_heldout(f"x{i}", 0.1) for i in range(5000)])
    assert 0.08 < frac < 0.12
    assert is_heldout("x1", 0.1) == is_heldout("x1", 0.1) and not is_heldout("x1", 0.0)


def _pack(docs, L, eot, take_last=None):
    """Pack `docs` (token arrays) back to back as one source would, via cut_pieces + fill_rows."""
    n = np.array([len(d) for d in docs])
    take = n + 1
    if take_last is not None:
        take[-1] = take_last
    offset = np.concatenate([[0], np.cumsum(take)[:-1]])
    p = cut_pieces(offset, take, n, L)
    flat = np.concatenate(docs).astype("<u4")
    dstart = np.concatenate([[0], np.cumsum(n)[:-1]])

    def copy(i, dst):
        s = dstart[p["occ"][i]] + p["doc_pos"][i]
        dst[:] = flat[s:s + len(dst)]
    return p, copy


def test_pieces_cover_rows_with_boundaries():
    L, eot = 8, 99
    docs = [np.arange(1, 6), np.arange(10, 21), np.array([7])]
    # 6 + 12 + 2 = 20 tokens -> rows 0, 1 full, row 2 partial (4 tokens)
    p, copy = _pack(docs, L, eot)
    assert p["row"].tolist() == [0, 0, 1, 2, 2] and p["pos"].tolist() == [0, 6, 0, 0, 2]
    assert p["eot"].tolist() == [True, False, False, True, True]
    assert p["first"].tolist() == [True, True, False, False, True]
    full = p["row"] < 2
    buf, per_row, starts = fill_rows(2, L, p["row"][full], p["pos"][full], p["ntok"][full],
                                     p["eot"][full], copy, eot)
    assert buf[:8].tolist() == [1, 2, 3, 4, 5, 99, 10, 11]
    assert buf[8:].tolist() == [12, 13, 14, 15, 16, 17, 18, 19]
    assert per_row.tolist() == [2, 1] and starts.tolist() == [0, 6, 0]
    # pieces in any order give the same rows
    o = np.arange(int(full.sum()))[::-1]
    buf2, _, _ = fill_rows(2, L, p["row"][full][o], p["pos"][full][o], p["ntok"][full][o],
                           p["eot"][full][o], lambda i, dst: copy(int(o[i]), dst), eot)
    assert buf2.tolist() == buf.tolist()
    with pytest.raises(ValueError, match="holds 4 tokens"):
        fill_rows(3, L, p["row"], p["pos"], p["ntok"], p["eot"], copy, eot)
    with pytest.raises(ValueError, match="gap or overlap"):
        k = [0, 1, 2, 4]   # row 2 loses its first piece
        fill_rows(3, L, p["row"][k], p["pos"][k], p["ntok"][k], p["eot"][k], copy, eot)
    with pytest.raises(ValueError, match="rows without pieces"):
        fill_rows(3, L, p["row"][full], p["pos"][full], p["ntok"][full], p["eot"][full], copy,
                  eot)
    # a cut occurrence (the end of a source's target) keeps only `take` tokens, without its EOT
    cut = cut_pieces([3], [4], [9], L)
    assert (cut["row"].tolist(), cut["pos"].tolist(), cut["doc_pos"].tolist(),
            cut["ntok"].tolist(), cut["eot"].tolist()) == ([0], [3], [0], [4], [False])
    # a long document spans rows: middle pieces continue it at position 0
    long = cut_pieces([5], [21], [20], L)
    assert long["row"].tolist() == [0, 1, 2, 3] and long["pos"].tolist() == [5, 0, 0, 0]
    assert long["doc_pos"].tolist() == [0, 3, 11, 19] and long["ntok"].tolist() == [3, 8, 8, 1]
    assert long["eot"].tolist() == [False, False, False, True]
    assert cut_pieces([0], [0], [3], L)["row"].size == 0   # nothing taken: no piece


def test_shard_writer_reader_roundtrip(tmp_path):
    L = 4
    w = ShardWriter(tmp_path, L, shard_rows=2)
    rows = [np.arange(i * L, (i + 1) * L, dtype="<u4") for i in range(5)]
    for i, r in enumerate(rows):
        w.add(i % 2, r.tobytes(), [0] if i % 2 else [0, 2])
    shards = w.close()
    assert [s["rows"] for s in shards] == [2, 2, 1]
    write_json(tmp_path / "manifest.json", {"format_version": 1, "seq_len": L, "n_rows": 5,
                                            "shards": shards, "tokenizer": {"vocab_size": 64},
                                            "sources": [{"name": "a"}, {"name": "b"}],
                                            "fingerprint": "roundtrip"})
    rd = TokenShards(tmp_path)
    assert len(rd) == 5
    for i in range(5):
        toks, starts = rd.row(i), rd.row_doc_starts(i)
        assert toks.tolist() == rows[i].tolist()
        assert starts.tolist() == ([0] if i % 2 else [0, 2])
    assert (tmp_path / "shard_00002.bin").stat().st_size == L * 4
    first = (tmp_path / "index.npz").read_bytes()
    w2 = ShardWriter(tmp_path / "again", L, shard_rows=2)
    for i, r in enumerate(rows):
        w2.add(i % 2, r.tobytes(), [0] if i % 2 else [0, 2])
    w2.close()
    assert (tmp_path / "again" / "index.npz").read_bytes() == first  # no timestamps inside


def test_shard_task_writes_rows_from_token_files_and_names_a_missing_file(tmp_path):
    """The per-shard task (mixer.build.write_shard) on its own: pieces of two documents stored in
    a raw token file become one shard file with their document starts and counts."""
    import pyarrow as pa

    from mixer.build import PIECES_COLUMNS, write_shard
    L, eot = 4, 99
    tok_dir, out = tmp_path / "tokens", tmp_path / "out"
    tok_dir.mkdir()
    (out / "heldout").mkdir(parents=True)
    np.array([1, 2, 3, 4, 5, 6, 7], "<u4").tofile(tok_dir / "f.bin")   # doc a = 1..5, b = 6,7
    n, start = np.array([5, 2]), np.array([0, 5])
    p = cut_pieces([0, 6], [6, 2], n, L)            # b is cut after 2 tokens (no EOT)
    occ = p["occ"]
    table = pa.table(dict(zip(PIECES_COLUMNS, [
        np.zeros(len(occ), np.int32), p["row"], p["pos"], ["f.bin"] * len(occ),
        start[occ] + p["doc_pos"], p["ntok"], p["eot"],
        np.where(p["first"], occ, -1).astype(np.int32), np.zeros(len(occ), np.int32),
        np.where(p["first"], n[occ] + 1 - np.array([6, 2])[occ], 0)])))
    fn = write_shard(L, eot, 2, 0, 8, str(tok_dir), str(out), 2)
    res = fn((pa.scalar(0, pa.int32()),), table)
    assert np.fromfile(out / "shard_00000.bin", "<u4").tolist() == [1, 2, 3, 4, 5, 99, 6, 7]
    assert np.frombuffer(res["per_row"][0].as_py(), "<i4").tolist() == [1, 2]
    assert np.frombuffer(res["starts"][0].as_py(), "<i4").tolist() == [0, 0, 2]
    assert np.frombuffer(res["occurrences"][0].as_py(), "<i8").tolist() == [1, 1]
    assert np.frombuffer(res["dropped"][0].as_py(), "<i8").tolist() == [0, 1]
    (tok_dir / "f.bin").unlink()
    with pytest.raises(FileNotFoundError, match="every worker and the driver share"):
        fn((pa.scalar(0, pa.int32()),), table)
    with pytest.raises(RuntimeError, match="shard main/0"):   # a row left short is named
        write_shard(L, eot, 3, 0, 8, str(tok_dir), str(out), 2)((pa.scalar(0, pa.int32()),),
                                                                 table)


def test_tokenize_task_writes_tokens_and_records_every_document(tmp_path):
    """The tokenize task (mixer.build.tokenize_arrow) on its own: statuses for empty text, null
    doc_id, down-sampled and held-out documents; documents cut at max_doc_tokens; the token file
    holds exactly the kept tokens at the recorded positions."""
    import pyarrow as pa

    from mixer.build import tokenize_arrow
    from mixer.order import keep_downsampled
    from core.tokenizer import get_tokenizer
    tok = get_tokenizer()
    ids = [f"d{i}" for i in range(40)] + ["", None, "e1"]
    texts = [f"document number {i} " * (1 + i % 7) for i in range(40)] + ["x", "y", "  \n"]
    src = [i % 2 for i in range(43)]
    rb = pa.RecordBatch.from_arrays(
        [pa.array(src, pa.int32()), pa.array(ids), pa.array(texts), pa.array(range(43), pa.int64())],
        names=["src", "doc_id", "text", "chash"])
    fn = tokenize_arrow(["a", "b"], 3, [1.0, 0.5], 0.2, "cl100k_base+llama3", 8, str(tmp_path))
    out = pa.Table.from_batches(list(fn([rb.slice(0, 20), rb.slice(20)]))).to_pydict()
    st = out["status"]
    assert st[40:] == ["null_doc_id", "null_doc_id", "empty_text"]
    for i in range(40):
        if is_heldout(ids[i], 0.2):
            assert st[i] == "heldout"
        elif src[i] == 1 and not keep_downsampled(3, "b", ids[i], 0.5):
            assert st[i] == "downsampled"
        else:
            assert st[i] == "train"
    assert {"heldout", "downsampled", "train"} <= set(st)
    files = {f for f in out["file"] if f}
    assert len(files) == 1                           # one file per task
    flat = np.fromfile(tmp_path / files.pop(), "<u4")
    assert len(flat) == sum(out["n"])
    for i in range(40):
        full = [tok.bos_id] + tok.encode(texts[i])      # every document starts with <|begin_of_text|>
        if st[i] == "downsampled":
            assert out["n"][i] == 0 and out["file"][i] is None
            continue
        assert out["n_orig"][i] == len(full) and out["n"][i] == min(len(full), 8)
        s = out["start"][i]
        assert flat[s:s + out["n"][i]].tolist() == full[:8]
    assert out["chash"] == list(range(43))           # the JVM's content hash passes through
