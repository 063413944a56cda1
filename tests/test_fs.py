"""The filesystem layer (core/fs.py) on the local disk, a real S3-compatible server (SeaweedFS on
127.0.0.1) and a real HTTP server with byte ranges: listing without opening, per-pattern errors,
ranged reads that fetch no byte past the range, paths.gz listings, writes and folder replacement."""
from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from core import fs
from cluster_fixtures import HttpServer, S3Server, environment


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    srv = S3Server(tmp_path_factory.mktemp("seaweed")).start()
    try:
        with environment(srv.env):
            fs._FS_CACHE.clear()   # a filesystem made before holds no endpoint or keys
            yield srv
    finally:
        fs._FS_CACHE.clear()
        srv.stop()   # its own process group: it would outlive the session


@pytest.fixture(scope="module")
def crawl_files(corpus):
    files = sorted((corpus / "crawl").glob("*.warc.gz"))
    assert len(files) >= 2
    return files


def test_normalize_and_join(tmp_path):
    assert fs.normalize(f"file://{tmp_path}/a") == f"{tmp_path}/a"
    assert fs.normalize("rel/x") == os.path.abspath("rel/x")
    want = "/dbfs/mnt/x" if os.path.isdir("/dbfs") else "dbfs:/mnt/x"
    assert fs.normalize("dbfs:/mnt/x") == want
    assert fs.normalize("/Volumes/cat/sch/vol/f") == "/Volumes/cat/sch/vol/f"
    assert fs.is_local("/Volumes/cat/sch/vol/f") and not fs.is_local("s3://b/k")
    assert fs.join("s3://b/", "x", "/y") == "s3://b/x/y"
    assert fs.parent("s3://b/x/y.bin") == "s3://b/x"
    assert fs.scheme("abfss://c@acct.dfs.core.windows.net/p") == "abfss"


def test_expand_local_each_pattern_must_match(tmp_path):
    (tmp_path / "a").mkdir()
    for n in ("a/1.jsonl", "a/2.jsonl", "b.txt"):
        (tmp_path / n).write_text("x\n")
    got = fs.expand([str(tmp_path / "a" / "*.jsonl"), str(tmp_path / "b.txt")])
    assert [os.path.basename(f.path) for f in got] == ["1.jsonl", "2.jsonl", "b.txt"]
    assert all(f.size == 2 and f.mtime for f in got)
    assert [f.path for f in fs.expand(f"file://{tmp_path}/a")] == [str(tmp_path / "a" / "1.jsonl"),
                                                                   str(tmp_path / "a" / "2.jsonl")]
    bad = str(tmp_path / "nothing" / "*.warc.gz")
    with pytest.raises(fs.InputNotFound, match="nothing/\\*.warc.gz"):
        fs.expand([str(tmp_path / "b.txt"), bad])
    with pytest.raises(fs.InputNotFound, match="missing.jsonl"):
        fs.expand(f"{tmp_path}/a/1.jsonl,{tmp_path}/missing.jsonl")


def test_s3_listing_reading_ranges(s3, crawl_files):
    bucket = s3.make_bucket("fs-test")
    cli = s3.client()
    for f in crawl_files:
        cli.put_file(str(f), f"{bucket}/crawl/{f.name}")
    got = fs.expand(f"s3://{bucket}/crawl/*.warc.gz")
    assert [g.path for g in got] == [f"s3://{bucket}/crawl/{f.name}" for f in crawl_files]
    assert [g.size for g in got] == [f.stat().st_size for f in crawl_files]
    assert all(g.etag and g.mtime for g in got)
    # a folder lists recursively; s3a:// is the same store
    assert [g.path for g in fs.expand(f"s3://{bucket}/crawl")] == [g.path for g in got]
    assert fs.size(f"s3a://{bucket}/crawl/{crawl_files[0].name}") == crawl_files[0].stat().st_size
    with pytest.raises(fs.InputNotFound, match=f"s3://{bucket}/nope/\\*.warc.gz"):
        fs.expand([f"s3://{bucket}/crawl/*.warc.gz", f"s3://{bucket}/nope/*.warc.gz"])

    # a byte range: the same bytes as the local file, and not one byte fetched past its end
    local = crawl_files[0].read_bytes()
    start, end = 1000, 1000 + 300_000
    r = fs.open_input(got[0].path, start, end, block=64 << 10)
    data = r.read()
    assert data == local[start:end]
    raw = r.raw
    assert raw.bytes_fetched == end - start and raw.requests == -(-(end - start) // (64 << 10))
    r.seek(start + 5)
    assert r.read(10) == local[start + 5:start + 15]
    # whole-file streaming through gzip
    with gzip.GzipFile(fileobj=fs.open_input(got[0].path), mode="rb") as g:
        assert g.read(4) == b"WARC"


def test_s3_write_replace_dir_and_cache(s3, tmp_path):
    bucket = s3.make_bucket("fs-write")
    out, tmp = f"s3://{bucket}/mix/out", f"s3://{bucket}/mix/.out.tmp-1"
    fs.write_bytes(f"{out}/old.bin", b"old")
    fs.write_text(f"{out}/manifest.json", "{}")
    fs.write_bytes(f"{tmp}/shard_00000.bin", b"\x01" * 16)
    fs.write_text(f"{tmp}/manifest.json", '{"n": 1}')
    fs.replace_dir(tmp, out, last=("manifest.json",))
    assert fs.listdir(out) == ["manifest.json", "shard_00000.bin"]
    assert fs.read_text(f"{out}/manifest.json") == '{"n": 1}'
    assert fs.find(tmp) == []   # (SeaweedFS may keep the empty folder's name; S3 does not)
    with fs.open(f"{out}/x.bin", "wb") as f:
        f.write(b"abc")
    assert fs.read_bytes(f"{out}/x.bin") == b"abc"
    # the local cache is verified against a hash
    good = hashlib.sha256(b"\x01" * 16).hexdigest()
    p = fs.local_copy(f"{out}/shard_00000.bin", str(tmp_path / "cache"), good)
    assert open(p, "rb").read() == b"\x01" * 16
    with open(p, "wb") as f:   # a corrupted cache entry is fetched again
        f.write(b"bad")
    assert open(fs.local_copy(f"{out}/shard_00000.bin", str(tmp_path / "cache"), good),
                "rb").read() == b"\x01" * 16
    with pytest.raises(IOError, match="does not match"):
        fs.local_copy(f"{out}/x.bin", str(tmp_path / "cache"), good)
    # local folders are replaced by rename
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "f").write_text("new"), (b / "f").write_text("old")
    fs.replace_dir(str(a), str(b))
    assert (b / "f").read_text() == "new" and not a.exists()


def test_http_input_and_paths_listing(tmp_path, crawl_files):
    site = tmp_path / "site"
    (site / "crawl-data").mkdir(parents=True)
    for f in crawl_files:
        os.symlink(f, site / "crawl-data" / f.name)
    listing = tmp_path / "warc.paths.gz"
    with gzip.open(listing, "wt") as g:
        for f in crawl_files:
            g.write(f"crawl-data/{f.name}\n")
    with HttpServer(site, tmp_path / "logs").start() as http:
        url = http.url + f"crawl-data/{crawl_files[0].name}"
        (info,) = fs.expand(url)
        assert info.size == crawl_files[0].stat().st_size
        r = fs.open_input(url, 10, 5000, block=1024)
        assert r.read() == crawl_files[0].read_bytes()[10:5000]
        assert r.raw.bytes_fetched == 4990
        got = fs.expand(str(listing), paths_base=http.url)
        assert [g.path for g in got] == [http.url + f"crawl-data/{f.name}" for f in crawl_files]
        assert all(g.size is None for g in got)   # listed, never opened
        with pytest.raises(ValueError, match="needs a base"):
            fs.expand(str(listing))
        with pytest.raises(fs.InputNotFound, match="nope.warc.gz"):
            fs.expand(http.url + "crawl-data/nope.warc.gz")
    assert fs.listing_base("s3://commoncrawl/crawl-data/CC-MAIN-2024-10/warc.paths.gz",
                           None) == "s3://commoncrawl/"
    assert fs.listing_base("https://data.commoncrawl.org/crawl-data/x/wet.paths.gz",
                           None) == "https://data.commoncrawl.org/"


def test_trainer_reads_a_mix_from_s3_through_a_verified_cache(s3, tmp_path):
    """trainer.data.localize_mix: a mix in the bucket is copied into a local cache, every file
    checked against the manifest's sha256; a damaged cached file is fetched again, a damaged
    remote file is an error naming it."""
    import json

    import numpy as np

    from core.token_shards import ShardWriter
    from trainer.data import ShardFormatError, TokenShards, localize_mix
    mix = tmp_path / "mix"
    w = ShardWriter(mix, seq_len=8, shard_rows=2)
    for r in range(5):
        w.add(r % 2, np.arange(r, r + 8, dtype="<u4").tobytes(), [0, 3])
    shards = w.close()
    (mix / "manifest.json").write_text(json.dumps({
        "format_version": 1, "seq_len": 8, "n_rows": 5, "shards": shards, "dtype": "uint32",
        "index_sha256": w.index_sha256, "fingerprint": "f00d",
        "tokenizer": {"vocab_size": 64, "eot_id": 0},
        "sources": [{"name": "a", "category": "a"}, {"name": "b", "category": "b"}]}))
    bucket = s3.make_bucket("fs-mix")
    s3.client().put(str(mix) + "/", f"{bucket}/mix/", recursive=True)
    cache = tmp_path / "cache"
    local = localize_mix(f"s3://{bucket}/mix", cache)
    assert local.parent == cache and (local / "manifest.json").is_file()
    ts = TokenShards(local)
    assert len(ts) == 5 and list(ts.row(3)) == list(range(3, 11))
    (local / shards[1]["file"]).write_bytes(b"\0" * 64)          # a damaged cache entry
    assert localize_mix(f"s3://{bucket}/mix", cache) == local
    assert list(TokenShards(local).row(2)) == list(range(2, 10))
    s3.client().pipe(f"{bucket}/mix/{shards[0]['file']}", b"\1" * 64)   # a damaged remote shard
    (local / shards[0]["file"]).unlink()
    with pytest.raises(ShardFormatError, match=shards[0]["file"]):
        localize_mix(f"s3://{bucket}/mix", cache)
