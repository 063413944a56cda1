"""The one filesystem layer: every file a job touches (inputs, work folders, token shards, models,
lists, manifests) is opened here, so local disk, object stores and Databricks volumes behave alike.

Built on fsspec (chosen over `pyarrow.fs` by `benchmarks/fs_choice.py`, docs/BENCHMARKS.md: the
same read throughput on the sample WARCs within noise, and fsspec alone covers every scheme the
platform needs, HTTP(S) and Azure included). URIs:

| written as | handled by |
| --- | --- |
| `/abs/path`, `rel/path`, `file:///abs/path` | the local disk (plain `open`, no fsspec in the way) |
| `/Volumes/...` (Databricks Unity Catalog volumes) | a POSIX path on Databricks: the local disk |
| `dbfs:/x` | `/dbfs/x` where the FUSE mount exists (Databricks), else fsspec's `dbfs` |
| `s3://`, `s3a://` | `s3fs` (extra `s3`) |
| `gs://`, `gcs://` | `gcsfs` (extra `gcs`) |
| `abfss://container@ACCOUNT.dfs.core.windows.net/...`, `abfs://`, `az://` | `adlfs` (extra `azure`; the Blob API, for the account the URI names) |
| `hdfs://` | pyarrow's HDFS binding through fsspec (needs libhdfs on the machine) |
| `http://`, `https://` | fsspec's HTTP filesystem, read-only (`aiohttp`) |

Credentials come only from the standard environment of each machine (for S3: `AWS_ACCESS_KEY_ID`
/ `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_PROFILE`, an instance profile;
`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3` for an S3-compatible server; for GCS: Application
Default Credentials, `STORAGE_EMULATOR_HOST` for an emulator, which is then used anonymously; for
Azure: `AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT_KEY` / `AZURE_STORAGE_SAS_TOKEN`
/ a service principal's `AZURE_STORAGE_CLIENT_ID`... for the account the URI names), never from the
project's config files. Nothing here stores a secret.

Tested against real servers on 127.0.0.1 (tests/test_fs.py, tests/test_fs_stores.py): SeaweedFS
(`s3://`), fake-gcs-server (`gs://`), Azurite's Blob service (`abfss://`, `abfs://`, `az://`), an
HTTP server with byte ranges. `hdfs://` and `dbfs:/` (off Databricks) have no server in the tests.

Reading byte ranges (`open_input(uri, start, end)`): on an object store the reader fetches
`block` bytes per ranged GET and never asks for a byte at or past `end`, so a task that processes a
range of a WARC file downloads that range and nothing more.
"""
from __future__ import annotations

import builtins
import gzip
import io
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass

LOCAL_SCHEMES = ("", "file", "local")
#: a scheme fsspec knows under another name
SCHEME_ALIASES = {"abfss": "abfs", "s3a": "s3", "gcs": "gs"}
#: bytes per ranged GET when a task reads a remote file ($CURATION_FS_BLOCK overrides)
DEFAULT_BLOCK = 8 << 20
#: bases of a Common Crawl `*.paths.gz` listing, by where the listing itself lives
COMMONCRAWL_BASES = {"s3://commoncrawl/": "s3://commoncrawl/",
                     "https://data.commoncrawl.org/": "https://data.commoncrawl.org/"}
_FS_CACHE: dict = {}


@dataclass(frozen=True)
class FileInfo:
    """One input file as listed (never opened): its URI, size in bytes (None when a listing gives
    none), modification time (seconds since the epoch, or None) and the store's ETag (or None)."""
    path: str
    size: int | None
    mtime: float | None = None
    etag: str | None = None


# ------------------------------------------------------------------------------------ URIs

def scheme(uri: str) -> str:
    """The URI's scheme in lower case ('' for a plain path); Windows drive letters are not used."""
    uri = str(uri)
    i = uri.find("://")
    if i > 0 and uri[:i].replace("+", "").replace("-", "").replace(".", "").isalnum():
        return uri[:i].lower()
    if uri.startswith("dbfs:"):
        return "dbfs"
    return ""


def normalize(uri) -> str:
    """The canonical spelling of a path: local paths absolute and without `file://`, `dbfs:/x` as
    `/dbfs/x` where that mount exists, every other URI unchanged."""
    uri = os.fspath(uri)
    s = scheme(uri)
    if s in ("file", "local"):
        return os.path.abspath(uri.split("://", 1)[1])
    if s == "dbfs":
        rest = uri[5:].lstrip("/")
        if os.path.isdir("/dbfs"):
            return "/dbfs/" + rest
        return "dbfs:/" + rest
    if s == "":
        return os.path.abspath(uri)
    return uri


def is_local(uri) -> bool:
    return scheme(normalize(uri)) == ""


def join(base: str, *parts: str) -> str:
    """`base/part/...` for a local path or a URI (object stores use `/` whatever the OS)."""
    base = os.fspath(base)
    if is_local(base):
        return os.path.join(base, *parts)
    out = base.rstrip("/")
    for p in parts:
        out = out + "/" + str(p).strip("/")
    return out


def basename(uri: str) -> str:
    return posixpath.basename(str(uri).rstrip("/"))


def parent(uri: str) -> str:
    u = normalize(uri)
    if is_local(u):
        return os.path.dirname(u)
    head, rest = u.split("://", 1)
    return head + "://" + posixpath.dirname(rest.rstrip("/"))


def get_fs(uri):
    """(fsspec filesystem, path inside it) for a URI; one filesystem object per scheme (and Azure
    storage account) and process (it holds connection pools). Local paths give fsspec's local
    filesystem."""
    import fsspec
    u = normalize(uri)
    s = scheme(u)
    if s == "":
        return fsspec.filesystem("file"), u
    proto = SCHEME_ALIASES.get(s, s)
    if s == "abfss":
        u = "abfs://" + u.split("://", 1)[1]
    account = _azure_account(u) if proto in ("abfs", "az") else None
    key = (proto, account, os.getpid())
    fs = _FS_CACHE.get(key)
    if fs is None:
        opts = _storage_options(proto)
        if account:
            opts.update(_azure_account_options(account, uri))
        try:
            if proto == "gs" and _gcs_emulator():
                # an emulator speaks the JSON API only: gcsfs's default class would also ask a
                # gRPC control plane for each bucket's layout, which hangs against an emulator
                from gcsfs.core import GCSFileSystem
                fs = GCSFileSystem(**opts)
            else:
                fs = fsspec.filesystem(proto, **opts)
        except ImportError as e:
            extra = {"s3": "s3", "gs": "gcs", "abfs": "azure", "az": "azure"}.get(proto)
            hint = f" (pip install 'curation[{extra}]')" if extra else ""
            raise ImportError(f"no filesystem for {s}:// paths: {e}{hint}") from e
        _FS_CACHE[key] = fs
    return fs, fs._strip_protocol(u)


def _storage_options(proto: str) -> dict:
    """Options from the standard environment only (credentials are read by the client itself)."""
    if proto == "s3":
        ep = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        opts = {}
        if ep:  # older botocore releases ignore these variables: pass them on explicitly
            opts["client_kwargs"] = {"endpoint_url": ep}
            opts["config_kwargs"] = {"s3": {"addressing_style": "path"}}
        if os.environ.get("AWS_NO_SIGN_REQUEST", "").lower() in ("1", "true", "yes"):
            opts["anon"] = True   # public buckets (Common Crawl) without credentials
        return opts
    if proto == "gs" and _gcs_emulator():
        # an emulator takes no credentials (Google's own client goes anonymous there too);
        # without this gcsfs first probes for credentials, the metadata server included
        return {"token": "anon"}
    if proto in ("http", "https"):
        return {"block_size": 0}   # no whole-file reads behind our back: ranges only
    return {}


def _gcs_emulator() -> bool:
    """`STORAGE_EMULATOR_HOST` names a GCS emulator (the variable gcsfs and Google's clients
    read; `default` or empty means the real service)."""
    return os.environ.get("STORAGE_EMULATOR_HOST", "default") not in ("", "default")


def _azure_authority(uri: str) -> tuple[str, str] | None:
    """(container, host) of `abfss://container@host/...`, None for `abfs://container/...`."""
    if scheme(uri) not in ("abfs", "abfss", "az"):
        return None
    auth = uri.split("://", 1)[1].split("/", 1)[0]
    if "@" not in auth:
        return None
    container, host = auth.split("@", 1)
    return container, host


def _azure_account(uri: str) -> str | None:
    """The storage account an Azure URI names (`container@ACCOUNT.dfs.core.windows.net`)."""
    a = _azure_authority(uri)
    if a is None:
        return None
    host = a[1].lower()
    for suffix in (".dfs.core.windows.net", ".blob.core.windows.net"):
        if host.endswith(suffix):
            return host[:-len(suffix)]
    raise ValueError(f"{uri}: not an Azure storage host ({a[1]}); expected "
                     f"container@ACCOUNT.dfs.core.windows.net")


def _azure_account_options(account: str, uri: str) -> dict:
    """adlfs options for the account a URI names. A connection string in the environment names
    its own account (and endpoint): it must be the same one, never silently another."""
    cs = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if cs:
        parts = dict(p.split("=", 1) for p in cs.split(";") if "=" in p)
        named = parts.get("AccountName", "").lower()
        if named != account:
            raise ValueError(f"{uri} names storage account {account!r}, but "
                             f"AZURE_STORAGE_CONNECTION_STRING is for account {named!r}")
        return {}
    return {"account_name": account}


def _qualify(fs, path: str, like: str) -> str:
    """A path returned by fsspec (protocol stripped) as a URI spelled like `like` (an Azure URI
    keeps its `container@account.dfs.core.windows.net` authority)."""
    s = scheme(like)
    if s == "":
        return path
    if s in ("http", "https"):
        return path if scheme(path) else fs.unstrip_protocol(path)
    if s == "dbfs":
        return fs.unstrip_protocol(path)
    path = path.lstrip("/")
    auth = _azure_authority(like)
    if auth is not None:
        container, _, rest = path.partition("/")
        return f"{s}://{container}@{auth[1]}/{rest}"
    return f"{s}://{path}"


# ------------------------------------------------------------------------------------ metadata

def exists(uri) -> bool:
    u = normalize(uri)
    if is_local(u):
        return os.path.exists(u)
    fs, p = get_fs(u)
    return fs.exists(p)


def isdir(uri) -> bool:
    u = normalize(uri)
    if is_local(u):
        return os.path.isdir(u)
    fs, p = get_fs(u)
    return fs.isdir(p)


def isfile(uri) -> bool:
    u = normalize(uri)
    if is_local(u):
        return os.path.isfile(u)
    fs, p = get_fs(u)
    return fs.isfile(p)


def size(uri) -> int:
    u = normalize(uri)
    if is_local(u):
        return os.path.getsize(u)
    fs, p = get_fs(u)
    return int(fs.size(p))


def info(uri) -> FileInfo:
    u = normalize(uri)
    if is_local(u):
        st = os.stat(u)
        return FileInfo(u, st.st_size, st.st_mtime, None)
    fs, p = get_fs(u)
    return _fileinfo(fs.info(p), u)


def _fileinfo(d: dict, uri: str) -> FileInfo:
    mt = d.get("LastModified") or d.get("mtime") or d.get("updated") or d.get("last_modified")
    if hasattr(mt, "timestamp"):
        mt = mt.timestamp()
    elif isinstance(mt, str):
        mt = None
    etag = d.get("ETag") or d.get("etag") or d.get("md5Hash")
    sz = d.get("size")
    return FileInfo(uri, int(sz) if sz is not None else None,
                    float(mt) if mt is not None else None, etag.strip('"') if etag else None)


def listdir(uri) -> list[str]:
    """Names (not paths) of the entries directly under a folder, sorted."""
    u = normalize(uri)
    if is_local(u):
        return sorted(os.listdir(u))
    fs, p = get_fs(u)
    return sorted(basename(x) for x in fs.ls(p, detail=False))


def find(uri) -> list[str]:
    """Every file under a folder (recursively), as URIs spelled like `uri`, sorted; [] when none."""
    u = normalize(uri)
    if is_local(u):
        out = []
        for d, _, files in os.walk(u):
            out += [os.path.join(d, f) for f in files]
        return sorted(out)
    fs, p = get_fs(u)
    try:
        d = fs.find(p, detail=True)
    except FileNotFoundError:
        return []
    return sorted(_qualify(fs, k, u) for k, v in d.items() if _is_file_entry(k, v))


def _is_file_entry(key: str, d: dict) -> bool:
    """Not a folder, nor a folder marker object (`key/`, empty) that some stores list."""
    return d.get("type") != "directory" and not (str(key).endswith("/") and not d.get("size"))


# ------------------------------------------------------------------------------------ reading

def open(uri, mode: str = "rb", **kw):  # noqa: A001 - the layer's own open
    """A file object for a local path or a URI. Writing to a local path creates its folder."""
    u = normalize(uri)
    if is_local(u):
        if any(c in mode for c in "wax"):
            d = os.path.dirname(u)
            if d:
                os.makedirs(d, exist_ok=True)
        return builtins.open(u, mode, **kw)
    fs, p = get_fs(u)
    return fs.open(p, mode, **kw)


def open_text(uri, encoding: str = "utf-8", errors: str = "replace"):
    """A text stream over a file, gunzipped when its name ends in `.gz`."""
    raw = open_input(uri)
    if str(uri).endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw, mode="rb")
    return io.TextIOWrapper(raw, encoding=encoding, errors=errors)


def read_bytes(uri) -> bytes:
    with open_input(uri) as f:
        return f.read()


def read_text(uri, encoding: str = "utf-8") -> str:
    return read_bytes(uri).decode(encoding)


def open_input(uri, start: int = 0, end: int | None = None, block: int | None = None):
    """A seekable binary reader positioned at `start`. Local files: the plain file. Remote files:
    ranged GETs of `block` bytes that never reach past `end` (None: the end of the file), so a
    reader of [start, end) downloads at most that range (plus nothing: reads stop at `end`)."""
    u = normalize(uri)
    if is_local(u):
        f = builtins.open(u, "rb")
        f.seek(start)
        return f
    fs, p = get_fs(u)
    block = block or int(os.environ.get("CURATION_FS_BLOCK", DEFAULT_BLOCK))
    return io.BufferedReader(_RangedReader(fs, p, start, end, block), buffer_size=block)


class _RangedReader(io.RawIOBase):
    """Raw reads of a remote file by ranged GETs (fs.cat_file), capped at `end`. `requests` and
    `bytes_fetched` count what went over the wire (the benchmarks and tests read them)."""

    def __init__(self, fs, path: str, start: int, end: int | None, block: int):
        self.fs, self.path, self.block = fs, path, max(1, block)
        self._size = None
        self.limit = end
        self.pos = start
        self.requests = 0
        self.bytes_fetched = 0
        self._buf, self._buf_start = b"", 0

    def _file_size(self) -> int:
        if self._size is None:
            self._size = int(self.fs.size(self.path))
        return self._size

    def _stop(self) -> int:
        return self.limit if self.limit is not None else self._file_size()

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, pos, whence=0):
        if whence == 0:
            self.pos = pos
        elif whence == 1:
            self.pos += pos
        else:
            self.pos = self._file_size() + pos
        return self.pos

    def readinto(self, b) -> int:
        n = len(b)
        if n == 0:
            return 0
        off = self.pos - self._buf_start
        if not (0 <= off < len(self._buf)):
            stop = self._stop()
            if self.pos >= stop:
                return 0
            hi = min(stop, self.pos + max(n, self.block))
            self._buf = self.fs.cat_file(self.path, start=self.pos, end=hi)
            self._buf_start = self.pos
            self.requests += 1
            self.bytes_fetched += len(self._buf)
            off = 0
            if not self._buf:
                return 0
        k = min(n, len(self._buf) - off)
        b[:k] = self._buf[off:off + k]
        self.pos += k
        return k


def read_ranges(uri, starts, ends) -> list[bytes]:
    """Several byte ranges of one file (for many small pieces: one call, concurrent requests on
    object stores; adjacent ranges are merged by fsspec)."""
    u = normalize(uri)
    starts, ends = [int(s) for s in starts], [int(e) for e in ends]
    if is_local(u):
        out = []
        with builtins.open(u, "rb") as f:
            for s, e in zip(starts, ends):
                f.seek(s)
                out.append(f.read(e - s))
        return out
    fs, p = get_fs(u)
    return fs.cat_ranges([p] * len(starts), starts, ends)


# ------------------------------------------------------------------------------------ writing

def makedirs(uri) -> None:
    u = normalize(uri)
    if is_local(u):
        os.makedirs(u, exist_ok=True)
        return
    fs, p = get_fs(u)
    try:
        fs.makedirs(p, exist_ok=True)
    except (FileExistsError, NotImplementedError):  # object stores have no folders
        pass


def write_bytes(uri, data: bytes) -> None:
    """Write a whole file; on the local disk through a temporary name and a rename (readers never
    see half a file). Object stores publish a PUT whole."""
    u = normalize(uri)
    if is_local(u):
        os.makedirs(os.path.dirname(u) or ".", exist_ok=True)
        tmp = f"{u}.{uuid.uuid4().hex[:8]}.part"
        with builtins.open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, u)
        return
    fs, p = get_fs(u)
    fs.pipe_file(p, bytes(data))


def write_text(uri, text: str, encoding: str = "utf-8") -> None:
    write_bytes(uri, text.encode(encoding))


def rm(uri, recursive: bool = True, missing_ok: bool = True) -> None:
    u = normalize(uri)
    if is_local(u):
        if os.path.isdir(u) and not os.path.islink(u):
            shutil.rmtree(u, ignore_errors=missing_ok)
        elif os.path.lexists(u):
            os.remove(u)
        elif not missing_ok:
            raise FileNotFoundError(u)
        return
    fs, p = get_fs(u)
    try:
        fs.rm(p, recursive=recursive)
    except FileNotFoundError:
        if not missing_ok:
            raise


def put(local_path: str, uri: str) -> None:
    """Copy a local file to `uri`, or a local folder's contents into the folder `uri`."""
    u = normalize(uri)
    if is_local(u):
        if os.path.isdir(local_path):
            shutil.copytree(local_path, u, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(u) or ".", exist_ok=True)
            shutil.copyfile(local_path, u)
        return
    fs, p = get_fs(u)
    if os.path.isdir(local_path):
        # the folder's contents into `uri`, as on the local disk: without the trailing slash
        # fsspec would nest the folder inside `uri` once `uri` exists (a second upload)
        fs.put(local_path.rstrip("/") + "/", p, recursive=True)
    else:
        fs.put(local_path, p)


def get(uri: str, local_path: str) -> None:
    """Copy a remote file to a local path (through a temporary name)."""
    u = normalize(uri)
    os.makedirs(os.path.dirname(os.path.abspath(local_path)) or ".", exist_ok=True)
    tmp = f"{local_path}.{uuid.uuid4().hex[:8]}.part"
    if is_local(u):
        shutil.copyfile(u, tmp)
    else:
        fs, p = get_fs(u)
        fs.get_file(p, tmp)
    os.replace(tmp, local_path)


def replace_dir(tmp: str, final: str, last: tuple[str, ...] = ()) -> None:
    """Put the folder `tmp` in the place of `final`. Local disk: two renames (the old folder is
    moved aside first), atomic for readers. Object stores have no rename: the old `final` is
    removed, then every file of `tmp` is copied server-side, the names in `last` (the manifest)
    after all the others, so a reader that finds the manifest finds every file it names."""
    t, f = normalize(tmp), normalize(final)
    if is_local(t) and is_local(f):
        old = None
        if os.path.exists(f):
            old = f"{f}.old-{uuid.uuid4().hex[:8]}"
            os.replace(f, old)
        os.replace(t, f)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return
    fs, tp = get_fs(t)
    _, fp = get_fs(f)
    for name in last:       # invalidate the old output first
        if fs.exists(fp.rstrip("/") + "/" + name):
            fs.rm(fp.rstrip("/") + "/" + name)
    if fs.exists(fp):
        fs.rm(fp, recursive=True)
    files = sorted(k for k, v in fs.find(tp, detail=True).items() if _is_file_entry(k, v))
    rel = [x[len(tp.rstrip("/")) + 1:] for x in files]
    late = [r for r in rel if r in last]
    for r in [r for r in rel if r not in last] + sorted(late, key=list(last).index):
        fs.copy(tp.rstrip("/") + "/" + r, fp.rstrip("/") + "/" + r)
    fs.rm(tp, recursive=True)


# ------------------------------------------------------------------------------------ listing

class InputNotFound(FileNotFoundError):
    """An input pattern that names no file (the message names the pattern)."""


def is_paths_listing(uri: str) -> bool:
    """A Common Crawl style listing: `warc.paths.gz`, `wet.paths.gz`, ... (one path per line)."""
    b = basename(uri).lower()
    return b.endswith(".paths.gz") or b.endswith(".paths")


def listing_base(listing: str, base: str | None) -> str:
    """The base a listing's relative paths are joined to: `base` when given, else the Common Crawl
    bucket or web root the listing itself was read from."""
    if base:
        return base if base.endswith("/") else base + "/"
    for prefix, b in COMMONCRAWL_BASES.items():
        if str(listing).startswith(prefix):
            return b
    raise ValueError(f"{listing}: a paths listing needs a base for its relative paths "
                     f"(--paths-base s3://commoncrawl/ or https://data.commoncrawl.org/)")


def read_listing(listing: str, base: str | None = None) -> list[str]:
    """The URIs a `*.paths.gz` listing names, each joined to the base, in the listing's order."""
    b = listing_base(listing, base)
    out = []
    with open_text(listing) as fh:
        for line in fh:
            s = line.strip()
            if s and not s.startswith("#"):
                out.append(s if scheme(s) else b + s.lstrip("/"))
    return out


def _has_magic(p: str) -> bool:
    return any(c in p for c in "*?[")


def expand(inputs, paths_base: str | None = None, recursive_dirs: bool = True) -> list[FileInfo]:
    """Paths, URIs, globs (`**` included), folders and `*.paths.gz` listings -> the files they
    name, sorted by path, each with its size, mtime and ETag where the store gives them. Nothing
    is opened (a listing file is read, the files it names are not). Every pattern must match at
    least one file: a pattern that matches nothing raises `InputNotFound` naming that pattern."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found: dict[str, FileInfo] = {}
    for pat in inputs:
        for part in str(pat).split(","):
            part = part.strip()
            if not part:
                continue
            hits = _expand_one(part, paths_base, recursive_dirs)
            if not hits:
                raise InputNotFound(f"input pattern matches no file: {part}")
            for h in hits:
                found.setdefault(h.path, h)
    return [found[k] for k in sorted(found)]


def _expand_one(part: str, paths_base, recursive_dirs) -> list[FileInfo]:
    if is_paths_listing(part) and not _has_magic(part):
        if not exists(part):
            raise InputNotFound(f"input listing not found: {part}")
        return [FileInfo(u, None) for u in read_listing(part, paths_base)]
    u = normalize(part)
    if is_local(u):
        import glob as _glob
        if os.path.isdir(u) and recursive_dirs:
            u = os.path.join(u, "**", "*")
        if _has_magic(u):
            out = []
            for h in _glob.glob(u, recursive=True):
                if os.path.isfile(h):
                    st = os.stat(h)
                    out.append(FileInfo(os.path.abspath(h), st.st_size, st.st_mtime))
            return out
        if os.path.isfile(u):
            st = os.stat(u)
            return [FileInfo(u, st.st_size, st.st_mtime)]
        return []
    fs, p = get_fs(u)
    s = scheme(u)
    if s in ("http", "https"):
        if _has_magic(u):
            raise ValueError(f"{part}: globs are not supported over HTTP (list the files, or use "
                             f"a paths listing)")
        try:
            return [_fileinfo(fs.info(p), u)]
        except FileNotFoundError:
            return []
    if _has_magic(p):
        d = fs.glob(p, detail=True)
        return [_fileinfo(v, _qualify(fs, k, u)) for k, v in d.items() if _is_file_entry(k, v)]
    try:
        inf = fs.info(p)
    except FileNotFoundError:
        return []
    if inf.get("type") == "directory":
        if not recursive_dirs:
            return []
        d = fs.find(p, detail=True)
        return [_fileinfo(v, _qualify(fs, k, u)) for k, v in d.items() if _is_file_entry(k, v)]
    return [_fileinfo(inf, u)]


# ------------------------------------------------------------------------------------ caching

def local_copy(uri: str, cache_dir: str, expect_sha256: str | None = None) -> str:
    """A local path holding `uri`'s bytes: the path itself when local, else a copy in
    `cache_dir` (kept between runs, re-fetched when its hash differs from `expect_sha256`)."""
    u = normalize(uri)
    if is_local(u):
        return u
    import hashlib
    key = hashlib.sha256(u.encode()).hexdigest()[:16]
    dst = os.path.join(cache_dir, key, basename(u))
    if os.path.isfile(dst) and (expect_sha256 is None or sha256_file(dst) == expect_sha256):
        return dst
    get(u, dst)
    got = sha256_file(dst) if expect_sha256 is not None else None
    if got != expect_sha256:
        os.remove(dst)
        raise IOError(f"{u}: sha256 {got} does not match the manifest's {expect_sha256}")
    return dst


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a local file."""
    import hashlib
    h = hashlib.sha256()
    with builtins.open(path, "rb") as f:
        for b in iter(lambda: f.read(chunk), b""):
            h.update(b)
    return h.hexdigest()
