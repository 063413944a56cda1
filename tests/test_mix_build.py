"""The Spark mix build on real corpus text: exact shares, repetition and its cap, document
boundaries, held-out documents, and byte-identical output whatever the partitioning.

The epoch-cap failure and its message are tested on the plan (tests/test_mix_plan.py): the build
raises the same InfeasibleMix before writing anything, and a third Spark build would cost the
shared suite another ~20 s."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mixer.build import build_mix
from mixer.order import is_heldout
from mixer.plan import apportion
from fixtures.scored_table import sample_documents, write_sample_table
from core.token_shards import TokenShards
from mixer.spec import load_spec, source_shares
from core.tokenizer import get_tokenizer

PER_STREAM = 40
L = 128
SMALL_MATH = "stream = 'math' AND source = 'gsm8k' AND substr(doc_id, 1, 1) IN ('0','1','2','3','4')"


def spec(**kw):
    s = {"stage": "test", "total_tokens": 96 * L, "seq_len": L, "seed": 7,
         "heldout_fraction": 0.1, "shard_rows": 40, "report_window_rows": 16,
         "sources": [
             {"name": "general", "category": "general", "filter": "stream = 'general'"},
             {"name": "math_small", "category": "math", "filter": SMALL_MATH, "max_epochs": 6},
             {"name": "code", "category": "code", "filter": "stream = 'code'"},
             {"name": "multilingual", "category": "multilingual",
              "filter": "stream = 'multilingual'"}]}
    s.update(kw)
    return s


@pytest.fixture(scope="module")
def built(spark, corpus, tmp_path_factory):
    d = tmp_path_factory.mktemp("mix")
    a, b = str(d / "table_a"), str(d / "table_b")
    write_sample_table(spark, corpus, a, per_stream=PER_STREAM, partitions=1)
    write_sample_table(spark, corpus, b, per_stream=PER_STREAM, partitions=7)
    stale = d / ".out_a.work-killedrun" / "tokens"   # what a killed build leaves behind
    stale.mkdir(parents=True)
    (stale / "p00000-a0-x.bin").write_bytes(b"\0" * 64)
    st_a = build_mix(spark, spec(), str(d / "out_a"), input_path=a)
    assert not stale.parent.exists()
    old = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    try:
        st_b = build_mix(spark, spec(), str(d / "out_b"), input_path=b)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    return {"dir": d, "a": a, "out_a": d / "out_a", "out_b": d / "out_b", "stats": st_a,
            "stats_b": st_b, "docs": sample_documents(corpus, PER_STREAM)}


def _source_docs(docs, name):
    if name == "math_small":
        return [x for x in docs if x["stream"] == "math" and x["source"] == "gsm8k"
                and x["doc_id"][0] in "01234"]
    return [x for x in docs if x["stream"] == name]


def test_exact_integer_shares(built):
    rd = TokenShards(built["out_a"])
    m = rd.manifest
    s = load_spec(spec())
    want = apportion(96, source_shares(s))
    got = [int(np.sum(rd.source == i)) for i in range(4)]
    assert got == want == [src["tokens"] // L for src in m["sources"]]
    assert m["n_rows"] == 96 and m["total_tokens"] == 96 * L == sum(x["tokens"] for x in m["sources"])
    assert [s["rows"] for s in m["shards"]] == [40, 40, 16]
    for i, sh in enumerate(m["shards"]):
        assert (built["out_a"] / sh["file"]).stat().st_size == sh["rows"] * L * 4
    r = built["stats"].report
    assert r["max_prefix_deviation_rows"] < 1.0
    assert r["max_abs_share_error"] < 1 / 96
    assert m["tokenizer"]["fingerprint"] == get_tokenizer().fingerprint
    assert m["fingerprint"] and m["spec_hash"] and list(m["delta_versions"].values()) == [0]


def test_document_boundaries_are_recorded_after_every_eot(built):
    rd = TokenShards(built["out_a"])
    eot, bos = rd.manifest["tokenizer"]["eot_id"], rd.manifest["tokenizer"]["bos_id"]
    assert len(rd) == 96
    n_docs = 0
    for i in range(len(rd)):
        toks, starts = rd.row(i), rd.row_doc_starts(i)
        after = [p + 1 for p in np.flatnonzero(toks == eot) if p + 1 < L]
        expect = [0] + after
        assert starts.tolist() == expect, f"row {i}"
        # every document starts with <|begin_of_text|> (Llama 3's recipe), and BOS appears
        # nowhere else
        assert all(toks[p] == bos for p in after), f"row {i}"
        assert set(np.flatnonzero(toks == bos).tolist()) - set(after) <= {0}, f"row {i}"
        n_docs += len(after)
    assert n_docs > 10                              # 26 in this fixture


def _enc(tok, text):
    """A document as the mixer writes it: <|begin_of_text|> then the text's tokens."""
    return (tok.bos_id,) + tuple(tok.encode(text))


def _stream_docs(rd, src):
    """The complete documents of one source, in stream order (rows of that source concatenated)."""
    eot = rd.manifest["tokenizer"]["eot_id"]
    rows = [rd.row(i) for i in range(len(rd)) if rd.source[i] == src]
    toks = np.concatenate(rows).tolist() if rows else []
    out, cur = [], []
    for t in toks:
        if t == eot:
            out.append(tuple(cur))
            cur = []
        else:
            cur.append(t)
    return out  # the trailing, cut document is not included


def test_documents_are_whole_and_repetition_reshuffles_passes(built):
    rd = TokenShards(built["out_a"])
    tok = get_tokenizer()
    src = rd.manifest["sources"][1]
    assert src["name"] == "math_small" and 1.5 < src["epochs"] <= 6
    train = [x for x in _source_docs(built["docs"], "math_small") if not is_heldout(x["doc_id"], 0.1)]
    known = {_enc(tok, x["text"]) for x in train}
    assert len(known) == len(train) == src["documents"]
    seen = _stream_docs(rd, 1)
    assert set(seen) <= known                       # every document is whole and from its source
    n = len(known)
    full = int(src["epochs"])
    c = Counter(seen)
    assert all(c[k] >= full for k in known)         # each full pass holds every document once
    assert max(c.values()) <= full + 1
    assert seen[:n] != seen[n:2 * n]                # the second pass is reshuffled
    assert set(seen[:n]) == known                   # the first pass is a permutation
    for i, s in enumerate(rd.manifest["sources"]):  # other sources: whole documents too
        if i != 1:
            allowed = {_enc(tok, x["text"]) for x in _source_docs(built["docs"], s["name"])}
            assert set(_stream_docs(rd, i)) <= allowed


def test_heldout_documents_never_train(built):
    rd = TokenShards(built["out_a"])
    hd = TokenShards(built["out_a"] / "heldout")
    assert [s["name"] for s in hd.manifest["sources"]] == ["general", "math", "code", "multilingual"]
    assert len(hd) > 0 and hd.manifest["tokenizer"] == rd.manifest["tokenizer"]
    tok = get_tokenizer()
    held = {_enc(tok, x["text"]) for x in built["docs"] if is_heldout(x["doc_id"], 0.1)}
    train = set()
    for i in range(4):
        train |= set(_stream_docs(rd, i))
    held_seen = set()
    for i in range(4):
        held_seen |= set(_stream_docs(hd, i))
    assert held_seen and held_seen <= held
    assert not (train & held)


def test_byte_identical_whatever_the_partitioning(built):
    a, b = built["out_a"], built["out_b"]
    # nothing left beside the outputs: work folders (token files) and temporary folders are gone
    assert sorted(p.name for p in built["dir"].iterdir() if p.name.startswith(".")) == []
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and
                   (p.suffix in (".bin", ".npz")))
    assert len(files) >= 5
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    ra = (a / "mix_report.json").read_text()
    assert ra == (b / "mix_report.json").read_text()


def test_manifest_checksums_are_verified_by_the_trainer(built, tmp_path):
    """The mixer records each shard's and the index's sha256; the trainer's reader checks the index
    when it opens the mix and each shard when it first reads from it (issue 19)."""
    import hashlib
    import shutil

    from trainer.data import ShardFormatError, TokenShards
    src = built["out_a"]
    m = TokenShards(src).manifest
    for sh in m["shards"]:
        assert sh["sha256"] == hashlib.sha256((src / sh["file"]).read_bytes()).hexdigest()
    assert m["index_sha256"] == hashlib.sha256((src / "index.npz").read_bytes()).hexdigest()
    held = TokenShards(src / "heldout").manifest
    assert all(len(sh["sha256"]) == 64 for sh in held["shards"]) and held["index_sha256"]
    mix = tmp_path / "mix"
    shutil.copytree(src, mix)
    shard = mix / m["shards"][1]["file"]
    b = bytearray(shard.read_bytes())
    b[100] ^= 0x01                                     # one flipped bit in the second shard
    shard.write_bytes(bytes(b))
    ts = TokenShards(mix)
    assert ts.row(0).shape == (L,)                     # the first shard is intact
    with pytest.raises(ShardFormatError, match=r"shard_00001\.bin: sha256 differs"):
        ts.row(40)
    idx = bytearray((mix / "index.npz").read_bytes())
    idx[len(idx) // 2] ^= 0x10
    (mix / "index.npz").write_bytes(bytes(idx))
    with pytest.raises(ShardFormatError, match=r"index\.npz: sha256 differs"):
        TokenShards(mix)


def test_several_specs_in_one_job_equal_one_job_each(built, tmp_path):
    """`jobs/mix.py --spec A --output X --spec B --output Y`: each stream is byte-identical to its
    own single-spec build (the second built after the first in the same session), each spec with
    the --output after it."""
    import json

    import yaml
    from jobs.mix import main
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump(spec()))
    b.write_text(yaml.safe_dump(spec(stage="second")))
    x, y = tmp_path / "x", tmp_path / "y"
    assert main(["--input", built["a"], "--spec", str(a), "--output", str(x),
                 "--spec", str(b), "--output", str(y)]) == 0
    ref = built["out_a"]
    shards = sorted(p.name for p in ref.glob("shard_*"))
    assert shards
    for out, stage in ((x, "test"), (y, "second")):
        assert json.loads((out / "manifest.json").read_text())["stage"] == stage
        for name in shards:
            assert (out / name).read_bytes() == (ref / name).read_bytes(), (out, name)
    with pytest.raises(SystemExit):       # one --output per --spec
        main(["--input", built["a"], "--spec", str(a), "--spec", str(b), "--output", str(x)])
