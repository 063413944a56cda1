"""What executors need, shipped with the job: the project's code, and the files a task reads.

The code: `python -m core.ship` writes `dist/curation.zip`, the project's packages as a zip (byte-
identical for identical sources), for `spark-submit --py-files dist/curation.zip` (a zip on
`--py-files` is put on the executors' `sys.path`; a wheel there is not importable). The Python
dependencies from pyproject.toml come with the cluster's image or a packed environment.

The files (models, block lists, the tokenizer's rank file): a job calls `ship(spark, path)` on the
driver and hands the returned `Resource` to its tasks, which call `resource.local()`:

* local mode: nothing is copied; `local()` is the path itself;
* a cluster, driver-local path: `SparkContext.addFile` for a file; a folder is zipped and sent
  with `addArchive` (Spark refuses `addFile` of a local folder with a non-local master), unpacked
  on each executor; `local()` is `SparkFiles.get(name)` in the executor's work folder, so no task
  reads a path only the driver has;
* a URI (`s3://bucket/models/quality`, ...): nothing is shipped; `local()` copies the file or folder
  through core/fs once per executor process into a local cache.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core import fs
from core.paths import PROJECT_ROOT

PACKAGES = ("core", "evalsets", "curation", "classifiers", "mixer", "trainer", "pipeline", "jobs")
DEFAULT_ZIP = "dist/curation.zip"
_SHIPPED: dict[tuple[int, str], str] = {}   # (id of SparkContext, name) -> path it was added from
_LOCK = threading.Lock()
_CACHE: dict[str, str] = {}


def build_zip(out: str | os.PathLike = DEFAULT_ZIP, root: Path = PROJECT_ROOT) -> str:
    """Zip the project's packages (their .py files and package data, no caches) into `out`."""
    out = Path(out)
    if not out.is_absolute():
        out = Path.cwd() / out
    out.parent.mkdir(parents=True, exist_ok=True)
    files = []
    for pkg in PACKAGES:
        base = root / pkg
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
                files.append(p)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            info = zipfile.ZipInfo(str(p.relative_to(root)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, p.read_bytes())
    os.replace(tmp, out)
    return str(out)


def is_cluster(spark) -> bool:
    """Whether tasks may run on another machine than the driver (any non-local master)."""
    return not spark.sparkContext.master.startswith("local")


@dataclass(frozen=True)
class Resource:
    """A file or folder a task reads: where the driver found it, and the name it was shipped under
    (None when not shipped). Picklable; `local()` works on the driver and in tasks."""
    path: str
    name: str | None = None
    is_dir: bool = False

    def local(self) -> str:
        if self.name:
            try:
                from pyspark import SparkFiles
                p = SparkFiles.get(self.name)
                if os.path.exists(p):
                    return p
            except Exception:   # no SparkContext/SparkFiles here (a test, the driver)
                pass
            if fs.is_local(self.path) and os.path.exists(fs.normalize(self.path)):
                return fs.normalize(self.path)
            raise FileNotFoundError(f"{self.name} was shipped with the job but is not in this "
                                    f"executor's SparkFiles")
        if fs.is_local(self.path):
            return fs.normalize(self.path)
        return _fetch(self.path, self.is_dir)


def _fetch(uri: str, is_dir: bool) -> str:
    """A local copy of a remote file or folder, once per process."""
    with _LOCK:
        hit = _CACHE.get(uri)
        if hit and os.path.exists(hit):
            return hit
        d = tempfile.mkdtemp(prefix="curation-res-")
        if is_dir:
            dst = os.path.join(d, fs.basename(uri))
            for f in fs.find(uri):
                rel = f[len(uri.rstrip("/")) + 1:]
                fs.get(f, os.path.join(dst, rel))
        else:
            dst = os.path.join(d, fs.basename(uri))
            fs.get(uri, dst)
        _CACHE[uri] = dst
        return dst


def ship(spark, path: str | os.PathLike, name: str | None = None, force: bool = False) -> Resource:
    """Make `path` (a file or folder) readable by every task; see the module doc. `force` ships
    a driver-local path in local mode too (tests of the cluster path)."""
    p = fs.normalize(path)
    if not fs.is_local(p):
        return Resource(p, None, fs.isdir(p))
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: not found (needed by the job's tasks)")
    is_dir = os.path.isdir(p)
    if spark is None or not (force or is_cluster(spark)):
        return Resource(p, None, is_dir)
    sc = spark.sparkContext
    nm = name or os.path.basename(p.rstrip("/"))
    key = (id(sc), nm)
    with _LOCK:
        prev = _SHIPPED.get(key)
        if prev is not None and prev != p:
            raise ValueError(f"two different files are shipped under one name {nm!r}: {prev} "
                             f"and {p}; give one of them another name")
        if prev is None:
            if is_dir:
                # Spark refuses addFile of a local folder with a non-local master: a folder goes
                # as a zip through addArchive, unpacked on each executor under the zip's name
                sc.addArchive(_zip_dir(p, nm))
            else:
                sc.addFile(p)
            _SHIPPED[key] = p
    return Resource(p, nm + ".zip" if is_dir else nm, is_dir)


def _zip_dir(path: str, name: str) -> str:
    """A zip of the folder's contents (paths relative to it) named `<name>.zip` in a temp folder."""
    d = tempfile.mkdtemp(prefix="curation-ship-")
    out = os.path.join(d, name + ".zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for root, _, files in os.walk(path):
            for f in sorted(files):
                full = os.path.join(root, f)
                zf.write(full, os.path.relpath(full, path))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build what executors need: the project's packages "
                                             "as a zip for spark-submit --py-files.")
    ap.add_argument("--out", default=DEFAULT_ZIP, help="zip to write")
    args = ap.parse_args(argv)
    out = build_zip(args.out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
