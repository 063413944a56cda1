"""The filesystem layer (core/fs.py) on Google Cloud Storage and Azure Blob Storage, for real: each
test runs against a local emulator that the module starts on 127.0.0.1 (its data under the test's
temporary folder) and stops by its process id (tests/cluster_fixtures.py):

* `gs://` through gcsfs against fake-gcs-server (the Go emulator of the GCS JSON API), reached
  through the standard `STORAGE_EMULATOR_HOST` variable;
* `abfss://container@account.dfs.core.windows.net/...` (the spelling Databricks and Hadoop use),
  `abfs://` and `az://` through adlfs against Azurite's Blob service, reached through the standard
  `AZURE_STORAGE_CONNECTION_STRING`. adlfs speaks the Blob API for all three schemes; Azurite has
  no Data Lake Gen2 (`dfs`) endpoint, so what only that endpoint does (hierarchical namespace,
  atomic folder rename, the Hadoop ABFS connector Spark would use for Delta tables) is not covered.

What is exercised is what the platform does through core/fs: whole-file writes and reads, metadata
(size, mtime, ETag), listing and input expansion (globs, folders, a pattern matching nothing),
ranged reads that fetch no byte past the range, several ranges at once, the mixer's folder
replacement, upload/download, the hash-verified local cache; the trainer's read of a mix from the
store into its verified cache; and one extraction (`run_extract` in the session's local Spark)
whose input is a `*.warc.gz` glob on each store, equal to the same extraction from local files.
Both emulators run for the whole module (a few seconds of start-up each).

Installed by `bash setup/install.sh` into `.tools/` (fake-gcs-server with Go from the Go module
proxy, Azurite with npm); a store whose emulator could not be installed is skipped, saying why.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass

import pytest

from cluster_fixtures import (AzuriteServer, GcsServer, azurite_command, environment,
                              gcs_binary, table_rows)
from core import fs
from warc_fixtures import first_records

ALIASES = {"gs": ["gcs://curation-test"], "az": ["az://curation-test", "abfs://curation-test"]}
CRAWL = (("crawl-2024-01.warc.gz", 4), ("crawl-2024-06.warc.gz", 3))   # file, records taken


@dataclass
class Store:
    kind: str
    server: object
    base: str          # the URI of the bucket / container, in the spelling under test
    env: dict

    def uri(self, *parts: str) -> str:
        return fs.join(self.base, *parts)


def _start(kind: str, root) -> Store:
    if kind == "gs":
        pytest.importorskip("gcsfs", reason="gcsfs (the `gcs` extra) is not installed")
        if gcs_binary() is None:
            pytest.skip("fake-gcs-server is not installed (`bash setup/install.sh` builds it into "
                        ".tools/bin/ with Go from the Go module proxy; it could not here)")
        srv = GcsServer(root).start()
        with _stopped_on_error(srv):
            return Store("gs", srv, f"gs://{srv.make_bucket('curation-test')}", srv.env)
    pytest.importorskip("adlfs", reason="adlfs (the `azure` extra) is not installed")
    if azurite_command() is None:
        pytest.skip("Azurite is not installed (`bash setup/install.sh` installs it into "
                    ".tools/azurite/ with npm; it needs Node.js, which is missing or failed here)")
    srv = AzuriteServer(root).start()
    with _stopped_on_error(srv):
        cont = srv.make_container("curation-test")
        return Store("az", srv, f"abfss://{cont}@{srv.account}.dfs.core.windows.net", srv.env)


@contextlib.contextmanager
def _stopped_on_error(srv):
    try:
        yield
    except BaseException:
        srv.stop(grace=1)
        raise


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Both emulators, started once for the module: kind -> Store, or the reason it is missing."""
    out = {}
    try:
        for kind in ("gs", "az"):
            try:
                out[kind] = _start(kind, tmp_path_factory.mktemp(kind + "-store"))
            except pytest.skip.Exception as e:
                out[kind] = str(e)
        yield out
    finally:
        fs._FS_CACHE.clear()
        for st in out.values():
            if isinstance(st, Store):   # no grace needed (their data is thrown away); Azurite
                st.server.stop(grace=1)  # waits for the clients' idle connections to close


@pytest.fixture(scope="module", params=["gs", "az"])
def store(request, servers):
    st = servers[request.param]
    if not isinstance(st, Store):
        pytest.skip(st)
    with environment(st.env):
        fs._FS_CACHE.clear()   # a filesystem made before holds no emulator settings
        yield st
    fs._FS_CACHE.clear()


@pytest.fixture(scope="module")
def crawl(corpus, tmp_path_factory):
    """A few real records of each sample crawl, as small record-gzipped WARC files."""
    d = tmp_path_factory.mktemp("crawl")
    for name, n in CRAWL:
        (d / name).write_bytes(first_records(corpus / "crawl" / name, n))
    return d


def test_files_metadata_and_listing(store, tmp_path):
    data = os.urandom(300_000)
    u = store.uri("t1", "a", "x.bin")
    t0 = time.time()
    fs.write_bytes(u, data)
    assert fs.read_bytes(u) == data
    assert fs.exists(u) and fs.isfile(u) and not fs.isdir(u)
    assert fs.isdir(store.uri("t1", "a")) and not fs.isfile(store.uri("t1", "a"))
    assert not fs.exists(store.uri("t1", "nothing.bin"))
    for alias in ALIASES[store.kind]:      # the other spellings of the same store
        assert fs.read_bytes(f"{alias}/t1/a/x.bin") == data
    inf = fs.info(u)
    assert inf.path == u and inf.size == len(data) and inf.etag
    assert inf.mtime is not None and abs(inf.mtime - t0) < 120, inf
    fs.write_text(store.uri("t1", "a", "y.bin"), "y")
    fs.write_text(store.uri("t1", "a", "sub", "z.txt"), "z")
    assert fs.listdir(store.uri("t1", "a")) == ["sub", "x.bin", "y.bin"]
    want = [store.uri("t1", "a", "sub", "z.txt"), u, store.uri("t1", "a", "y.bin")]
    assert fs.find(store.uri("t1", "a")) == want        # URIs spelled like the one given
    assert fs.find(store.uri("t1", "none")) == []
    got = fs.expand(store.uri("t1", "a", "*.bin"))
    assert [g.path for g in got] == [u, store.uri("t1", "a", "y.bin")]
    assert [g.size for g in got] == [len(data), 1] and all(g.etag and g.mtime for g in got)
    assert [g.path for g in fs.expand(store.uri("t1", "a"))] == want   # a folder: recursive
    with pytest.raises(fs.InputNotFound, match="nope/\\*.warc.gz"):
        fs.expand([store.uri("t1", "a", "*.bin"), store.uri("t1", "nope", "*.warc.gz")])

    # a range inside the file: its bytes, and not one byte fetched past its end
    start, end, block = 1000, 201_000, 64 << 10
    r = fs.open_input(u, start, end, block=block)
    assert r.read() == data[start:end]
    assert r.raw.bytes_fetched == end - start and r.raw.requests == -(-(end - start) // block)
    r.seek(start + 5)
    assert r.read(10) == data[start + 5:start + 15]
    assert fs.read_ranges(u, [0, 500, 250_000], [10, 9_000, 300_000]) == [
        data[0:10], data[500:9_000], data[250_000:300_000]]

    # upload and download; a folder uploaded twice lands in the same place
    up = tmp_path / "up"
    (up / "d").mkdir(parents=True)
    (up / "one.txt").write_text("1")
    (up / "d" / "two.txt").write_text("22")
    for _ in range(2):
        fs.put(str(up), store.uri("t1", "up"))
        assert fs.find(store.uri("t1", "up")) == [store.uri("t1", "up", "d", "two.txt"),
                                                  store.uri("t1", "up", "one.txt")]
    fs.put(str(up / "one.txt"), store.uri("t1", "single.txt"))
    fs.get(store.uri("t1", "up", "d", "two.txt"), str(tmp_path / "back" / "two.txt"))
    assert (tmp_path / "back" / "two.txt").read_text() == "22"
    assert fs.read_text(store.uri("t1", "single.txt")) == "1"

    # the verified local cache: a good copy, a damaged copy fetched again, a wrong hash refused
    good = hashlib.sha256(data).hexdigest()
    p = fs.local_copy(u, str(tmp_path / "cache"), good)
    assert fs.sha256_file(p) == good
    with open(p, "wb") as f:
        f.write(b"damaged")
    assert fs.sha256_file(fs.local_copy(u, str(tmp_path / "cache"), good)) == good
    with pytest.raises(IOError, match="does not match"):
        fs.local_copy(store.uri("t1", "a", "y.bin"), str(tmp_path / "cache"), good)

    # removal: a file, a folder, something missing
    fs.rm(store.uri("t1", "a", "y.bin"))
    assert not fs.exists(store.uri("t1", "a", "y.bin"))
    fs.rm(store.uri("t1", "a"))
    assert fs.find(store.uri("t1", "a")) == [] and not fs.exists(u)
    fs.rm(store.uri("t1", "never-there"))
    with pytest.raises(FileNotFoundError):
        fs.rm(store.uri("t1", "never-there"), missing_ok=False)


def test_replace_dir_publishes_the_manifests_last(store):
    """The mixer's publication (mixer/build.py `_publish`): the old output goes, every file of the
    temporary folder is copied in place, the manifests after all the others."""
    out, tmp = store.uri("t2", "mix", "out"), store.uri("t2", "mix", ".out.tmp-1")
    last = ("heldout/manifest.json", "manifest.json")
    fs.write_bytes(fs.join(out, "old.bin"), b"old")
    fs.write_text(fs.join(out, "manifest.json"), "{}")
    fs.write_bytes(fs.join(tmp, "shard_00000.bin"), b"\x01" * 16)
    fs.write_bytes(fs.join(tmp, "heldout", "shard_00000.bin"), b"\x02" * 8)
    fs.write_text(fs.join(tmp, "heldout", "manifest.json"), '{"h": 1}')
    fs.write_text(fs.join(tmp, "manifest.json"), '{"n": 1}')
    fs.replace_dir(tmp, out, last=last)
    assert fs.listdir(out) == ["heldout", "manifest.json", "shard_00000.bin"]
    assert fs.read_text(fs.join(out, "manifest.json")) == '{"n": 1}'
    assert fs.read_bytes(fs.join(out, "heldout", "shard_00000.bin")) == b"\x02" * 8
    assert fs.find(tmp) == [] and not fs.exists(fs.join(out, "old.bin"))
    # the manifests were written after every other file, the top one last
    t = {p[len(out) + 1:]: fs.info(p).mtime for p in fs.find(out)}
    assert min(t[n] for n in last) >= max(v for n, v in t.items() if n not in last), t
    assert t["manifest.json"] >= t["heldout/manifest.json"], t


def test_extract_from_the_stores_equals_local(servers, spark, crawl, tmp_path):
    """One extraction whose input is a `*.warc.gz` glob on each store (one crawl file in GCS, the
    other in Azure; both in the one store that is there when the other is missing), in the
    session's local Spark: the same doc_ids and text hashes as the extraction of the local files."""
    from curation.extract.stage import run_extract
    live = [st for st in servers.values() if isinstance(st, Store)]
    if not live:
        pytest.skip("; ".join(servers.values()))
    local = str(tmp_path / "local" / "documents")
    run_extract(spark, str(crawl / "*.warc.gz"), local, source="crawl")
    want = table_rows(spark, local)
    assert len(want) >= 5
    env = {k: v for st in live for k, v in st.env.items()}
    out = str(tmp_path / "stores" / "documents")
    with environment(env, spark):      # the tasks' Python workers see the stores too
        fs._FS_CACHE.clear()
        for i, (name, _) in enumerate(CRAWL):
            fs.put(str(crawl / name), live[i % len(live)].uri("t3", "crawl", name))
        run_extract(spark, [st.uri("t3", "crawl", "*.warc.gz") for st in live], out,
                    source="crawl")
    fs._FS_CACHE.clear()
    assert table_rows(spark, out) == want


def test_trainer_reads_a_mix_from_the_store_through_its_verified_cache(store, corpus, tmp_path):
    from fixtures.demo_mix import write_demo_mix
    from trainer.data import ShardFormatError, TokenShards, localize_mix
    write_demo_mix(corpus, tmp_path / "mix", seq_len=64, per_source=12, heldout_per_source=3)
    src = tmp_path / "mix" / "pretrain"
    uri = store.uri("t4", "mix", "pretrain")
    fs.put(str(src), uri)
    cache = tmp_path / "cache"
    local = localize_mix(uri, cache)
    assert local.parent == cache and (local / "heldout" / "manifest.json").is_file()
    want, got = TokenShards(src), TokenShards(local)
    assert len(got) == len(want) > 0
    assert all((got.row(i) == want.row(i)).all() for i in range(len(want)))
    shard = sorted(p.name for p in src.glob("shard_*.bin"))[0]
    (local / shard).write_bytes(b"\0" * 64)                  # a damaged cache entry: fetched again
    assert localize_mix(uri, cache) == local
    assert (TokenShards(local).row(0) == want.row(0)).all()
    fs.write_bytes(fs.join(uri, shard), b"\1" * 64)          # a damaged remote shard: an error
    (local / shard).unlink()
    with pytest.raises(ShardFormatError, match=shard):
        localize_mix(uri, cache)


def test_an_azure_uri_names_its_storage_account(monkeypatch):
    """`abfss://container@ACCOUNT.dfs.core.windows.net/...` reaches that account (Azurite cannot
    show this: it is reached only through a connection string, which names its own account), and
    a connection string for another account is an error, never a silent switch of account."""
    pytest.importorskip("adlfs", reason="adlfs (the `azure` extra) is not installed")
    import base64
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", base64.b64encode(b"k" * 32).decode())
    fs._FS_CACHE.clear()
    try:
        f, p = fs.get_fs("abfss://data@myacct.dfs.core.windows.net/crawl/x.warc.gz")
        assert p == "data/crawl/x.warc.gz"
        assert f.account_name == "myacct" and f.account_url == "https://myacct.blob.core.windows.net"
        g, _ = fs.get_fs("abfss://data@other.dfs.core.windows.net/x")
        assert g is not f and g.account_name == "other"
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                           "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=eA==")
        fs._FS_CACHE.clear()
        with pytest.raises(ValueError, match="'third'.*'myacct'"):
            fs.get_fs("abfss://data@third.dfs.core.windows.net/x")
        with pytest.raises(ValueError, match="not an Azure storage host"):
            fs.get_fs("abfss://data@example.com/x")
    finally:
        fs._FS_CACHE.clear()
