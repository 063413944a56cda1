"""Reliable checkpoints: intermediate Spark frames written to a folder and read back, for every job
that materialises a frame to cut its lineage (dedup's steps and connected components, the
post-training data job).

Why not `localCheckpoint` (or `cache`/`persist` used to cut lineage): its blocks live in the
executors' memory or local disk, stay there until the application ends unless released, and die
with their executor; the lineage being cut, Spark cannot recompute them, so on a cluster one lost
node fails the job. A frame saved here is Parquet on the job's store (shared on a cluster), read
back with its lineage cut; nothing is held in executor memory, and a lost executor costs nothing.

The folder (`<output>_checkpoints` by default, configurable per job) belongs to one run at a time:
- it is created with a marker file (`MARKER`) saying which job made it; `close()` (call it in a
  `finally`, or use the object as a context manager) deletes it, so a run that fails leaves
  nothing behind either;
- a folder that holds the marker is a checkpoint folder a killed run (SIGKILL, a lost driver)
  left behind: the next run removes it and starts afresh. Nothing is resumed from it;
- an empty folder (made by the user) is used as it is, and only what the run wrote in it is
  deleted at the end;
- anything else (a folder with other files, a file) was not made by a job of this project and is
  never deleted or written into: `OutputRefused`, naming the folder and what is there.
"""
from __future__ import annotations

import json
import os
import sys
import time

MARKER = "_curation_checkpoints.json"


class Checkpoints:
    """`save(df, name)` writes the frame as Parquet under the folder and returns it read back;
    `drop(*dfs)` deletes saved frames after their last use; `drop_named(name)` every saved frame
    of that name; `close()` deletes the folder (or, for a folder the user made, what the run wrote
    in it)."""

    def __init__(self, spark, folder: str, job: str):
        from core import fs
        from core.tables import OutputRefused
        self.spark, self.folder, self.fs, self.job = spark, folder.rstrip("/"), fs, job
        self.n = 0
        # id(frame) -> (path, name, frame): the frame is held so that its id is not reused
        self.paths: dict[int, tuple] = {}
        self.created: list[str] = []
        self.owned_folder = True
        if fs.exists(self.folder):
            if fs.isfile(self.folder):
                raise OutputRefused(f"refusing to use {self.folder} as the checkpoint folder: it is a "
                                    f"file; choose another checkpoint folder (the job's checkpoint_dir setting)")
            names = fs.listdir(self.folder)
            if MARKER in names:         # a killed run's leftovers: this project's, removed
                print(f"[{job}] removing the checkpoint folder a previous run left: {self.folder}",
                      file=sys.stderr, flush=True)
                fs.rm(self.folder)
            elif names:
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                raise OutputRefused(
                    f"refusing to use {self.folder} as the checkpoint folder: it holds "
                    f"{len(names)} entries ({shown}) that no job of this project wrote (no {MARKER}); "
                    f"nothing was deleted. Choose another checkpoint folder (the job's checkpoint_dir "
                    f"setting), or empty it")
            else:
                self.owned_folder = False       # an empty folder someone made: kept at the end
        fs.makedirs(self.folder)
        fs.write_text(fs.join(self.folder, MARKER), json.dumps(
            {"job": job, "pid": os.getpid(), "started": time.time()}) + "\n")

    def save(self, df, name: str = "frame"):
        self.n += 1
        path = f"{self.folder}/{self.n:03d}-{name}"
        self.created.append(path)
        df.write.mode("overwrite").parquet(path)
        out = self.spark.read.parquet(path)
        self.paths[id(out)] = (path, name, out)
        return out

    def drop(self, *dfs) -> None:
        for df in dfs:
            hit = self.paths.pop(id(df), None) if df is not None else None
            if hit:
                self.fs.rm(hit[0])

    def drop_named(self, name: str) -> None:
        for key, (path, n, _) in list(self.paths.items()):
            if n == name:
                del self.paths[key]
                self.fs.rm(path)

    def close(self) -> None:
        if self.owned_folder:
            self.paths.clear()
            self.fs.rm(self.folder)
            return
        for path in self.created:       # only what this run wrote in a folder it did not make
            self.fs.rm(path)
        self.paths.clear()
        self.fs.rm(self.fs.join(self.folder, MARKER))

    def __enter__(self) -> "Checkpoints":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def checkpoint_folder(output_path: str, configured: str | None = None) -> str:
    """The checkpoint folder of a job writing `output_path`: the configured one, else beside the
    output (`<output>_checkpoints`)."""
    return configured or output_path.rstrip("/") + "_checkpoints"
