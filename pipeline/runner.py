"""The orchestrator's engine: an ordered list of stages, each skipped when nothing it depends on
changed, and a state file that lets a killed run resume at the first unfinished stage.

A stage's *fingerprint* is a hash of
  * its config (the resolved dict, so editing a YAML it was read from counts),
  * the versions of its inputs (a Delta table's latest commit version; for plain files and folders,
    their sizes and modification times, or a folder's `manifest.json` content),
  * its code version (a hash of the source files that implement it).
A stage is skipped when the state file holds the same fingerprint with status `done` AND every one
of its outputs still exists at the version recorded when the stage finished. Anything else (first
run, a changed config, an upstream table rewritten, an output deleted or rewritten by hand, a run
killed in the middle: status `running`) runs the stage again. Re-running is safe because every stage
replaces its outputs atomically (Delta overwrite), so a half-finished run leaves nothing behind that
the next run would duplicate.

This module knows nothing about the curation stages themselves: `pipeline/stages.py` builds
the concrete list, and a test can register a trivial stage of its own.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import hashlib
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from core.config import config_hash
from core.imports import reachable_files
from core.paths import PROJECT_ROOT
from core.tables import has_delta_log, table_version

STATE_FILE = "_pipeline_state.json"


class MissingStageError(RuntimeError):
    """A stage's implementation is not in this checkout (its module or function is missing)."""


class StageFailed(RuntimeError):
    pass


@dataclass
class Stage:
    """One step of the pipeline.

    `entry` names the implementation as "package.module:function"; it is imported before anything
    runs (a missing one is a clear `MissingStageError`, never a silent skip) and handed to `call`.
    `call(ctx)` does the work (`ctx.entry` is the imported function) and may return a RunStats, a
    dict of figures, or None. `inputs`/`outputs` are paths (Delta tables, files, folders, globs).
    """
    name: str
    entry: str | Callable
    call: Callable[["StageContext"], Any]
    inputs: Sequence[str] = ()
    outputs: Sequence[str] = ()
    config: dict = field(default_factory=dict)
    code: Sequence[str] = ()            # files/folders (relative to the project root) = code version
    code_version: str | None = None     # explicit code version (overrides `code`)
    issue: str = ""                     # where the stage is being built, for the missing message
    always: bool = False                # run every time (cheap derived outputs such as the report)
    stats_path: str | None = None       # the stage's stats Delta table, for the report


@dataclass
class StageContext:
    spark: Any
    stage: Stage
    entry: Callable
    work_dir: str
    reason: str = ""     # why the stage runs: "never ran", "last run did not finish ...", ...
    overwrite: bool = False   # --overwrite: stages may replace outputs they did not write

    @property
    def resuming(self) -> bool:
        """True when a previous run of this stage with the same fingerprint was cut short."""
        return self.reason.startswith("last run did not finish")

    @property
    def config(self) -> dict:
        return self.stage.config

    @property
    def inputs(self) -> list[str]:
        return list(self.stage.inputs)

    @property
    def outputs(self) -> list[str]:
        return list(self.stage.outputs)


@dataclass
class StageResult:
    name: str
    status: str          # "ran" | "skipped" | "failed"
    seconds: float
    reason: str          # why it ran (or was skipped)
    fingerprint: str
    result: Any = None


# ----------------------------------------------------------------------------- resolving entries

def resolve_entry(stage: Stage) -> Callable:
    if callable(stage.entry):
        return stage.entry
    mod_name, _, attr = stage.entry.partition(":")
    where = f" (being built in issue {stage.issue})" if stage.issue else ""
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise MissingStageError(
                f"stage {stage.name!r} is not available: module {mod_name!r} does not exist in this "
                f"checkout{where}") from None
        raise
    fn = getattr(mod, attr, None)
    if fn is None:
        raise MissingStageError(
            f"stage {stage.name!r} is not available: {mod_name!r} has no {attr!r}{where}")
    return fn


def missing_stages(stages: Sequence[Stage]) -> list[str]:
    """Messages for every stage whose implementation cannot be imported."""
    out = []
    for s in stages:
        try:
            resolve_entry(s)
        except MissingStageError as e:
            out.append(str(e))
    return out


# ----------------------------------------------------------------------------- versions

def artifact_version(spark, path: str) -> Any:
    """A JSON-able version of one input/output, or None if it does not exist.

    Delta table -> its latest commit version; a folder with manifest.json -> the manifest's hash;
    a file -> (size, mtime); a folder -> the sorted listing of its files with sizes and mtimes;
    a glob -> the versions of every match.
    """
    if any(c in path for c in "*?["):
        matches = sorted(glob.glob(path))
        if not matches:
            return None
        return {m: artifact_version(spark, m) for m in matches}
    if has_delta_log(path) or "://" in path:
        v = table_version(spark, path)
        return None if v is None else {"delta": v}
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if p.is_dir():
        manifest = p / "manifest.json"
        if manifest.is_file():
            return {"manifest": hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]}
        listing = []
        for f in sorted(p.rglob("*")):
            if f.is_file():
                st = f.stat()
                listing.append((str(f.relative_to(p)), st.st_size, st.st_mtime_ns))
        if not listing:
            return None
        return {"files": hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]}
    return None


def code_version(stage: Stage) -> str:
    """Hash of the source files that implement the stage: its `code` paths (else its module) and
    every project file their Python modules import, directly or not (core/imports.py), so an edit
    to a shared helper (core/schema.py, core/tokenizer.py, ...) re-runs the stages that use it."""
    if stage.code_version is not None:
        return stage.code_version
    paths = list(stage.code)
    if not paths and isinstance(stage.entry, str):
        mod = stage.entry.partition(":")[0]
        parts = mod.split(".")
        # a module inside a sub-package: the whole sub-package; a top-level module: that file
        cand = PROJECT_ROOT.joinpath(*parts[:-1]) if len(parts) > 2 else None
        paths = [str(cand)] if cand is not None and cand.is_dir() else [
            str(PROJECT_ROOT.joinpath(*parts)) + ".py"]
    files = []
    for p in paths:
        p = Path(p) if os.path.isabs(p) else PROJECT_ROOT / p
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in reachable_files([f for f in files if f.is_file()]):
        h.update(str(f.relative_to(PROJECT_ROOT) if f.is_relative_to(PROJECT_ROOT) else f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(spark, stage: Stage) -> tuple[str, dict]:
    parts = {
        "config": config_hash(stage.config),
        "inputs": {p: artifact_version(spark, p) for p in stage.inputs},
        "code": code_version(stage),
    }
    return config_hash(parts), parts


# ----------------------------------------------------------------------------- state file

class PipelineState:
    """The JSON state file under the work dir: one entry per stage, written atomically."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.data: dict = {"stages": {}}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                print(f"[pipeline] state file {self.path} is unreadable; every stage will run",
                      file=sys.stderr)
                self.data = {"stages": {}}
        self.data.setdefault("stages", {})

    def get(self, name: str) -> dict:
        return self.data["stages"].get(name, {})

    def put(self, name: str, entry: dict) -> None:
        self.data["stages"][name] = entry
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True, default=str))
        os.replace(tmp, self.path)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def why_run(spark, stage: Stage, state: PipelineState, fp: str, force: bool) -> str | None:
    """None if the stage can be skipped, else the reason it must run."""
    if force:
        return "forced"
    if stage.always:
        return "always runs"
    prev = state.get(stage.name)
    if not prev:
        return "never ran"
    if prev.get("status") != "done":
        return f"last run did not finish (status {prev.get('status')!r})"
    if prev.get("fingerprint") != fp:
        return "fingerprint changed"
    for out in stage.outputs:
        now = artifact_version(spark, out)
        if now is None:
            return f"output {out} is missing"
        if prev.get("outputs", {}).get(out) != now:
            return f"output {out} changed since the stage finished"
    return None


# ----------------------------------------------------------------------------- the runner

def run_stages(spark, stages: Sequence[Stage], work_dir: str, force: Sequence[str] = (),
               force_all: bool = False, log=print, overwrite: bool = False) -> list[StageResult]:
    """Run `stages` in order, skipping unchanged ones. Raises MissingStageError before running
    anything if any stage's implementation is missing, StageFailed if a stage raises."""
    missing = missing_stages(stages)
    if missing:
        raise MissingStageError("cannot run the pipeline:\n  " + "\n  ".join(missing))
    names = [s.name for s in stages]
    unknown = [f for f in force if f not in names]
    if unknown:
        raise ValueError(f"--force names unknown stage(s) {unknown}; stages: {names}")
    state = PipelineState(os.path.join(work_dir, STATE_FILE))
    results: list[StageResult] = []
    total = len(stages)
    for i, stage in enumerate(stages, 1):
        fp, parts = fingerprint(spark, stage)
        reason = why_run(spark, stage, state, fp, force_all or stage.name in force)
        if reason and reason.startswith("last run did not finish") and \
                state.get(stage.name).get("fingerprint") != fp:
            reason = "changed since the unfinished run"
        if reason is None:
            log(f"[pipeline {i}/{total}] {stage.name}: up to date, skipped")
            results.append(StageResult(stage.name, "skipped", 0.0, "up to date", fp))
            continue
        if reason == "fingerprint changed":
            old = state.get(stage.name).get("parts", {})
            changed = [k for k in ("config", "inputs", "code") if old.get(k) != parts.get(k)]
            reason = "changed: " + ", ".join(changed or ["fingerprint"])
        log(f"[pipeline {i}/{total}] {stage.name}: running ({reason})")
        state.put(stage.name, {"status": "running", "fingerprint": fp, "parts": parts,
                               "started_at": _now()})
        t0 = time.time()
        ctx = StageContext(spark, stage, resolve_entry(stage), work_dir, reason, overwrite)
        try:
            result = stage.call(ctx)
        except Exception as e:
            state.put(stage.name, {"status": "failed", "fingerprint": fp, "parts": parts,
                                   "error": f"{type(e).__name__}: {e}"[:2000], "failed_at": _now()})
            raise StageFailed(f"stage {stage.name!r} failed: {type(e).__name__}: {e}") from e
        secs = time.time() - t0
        outputs = {o: artifact_version(spark, o) for o in stage.outputs}
        missing_out = [o for o, v in outputs.items() if v is None]
        if missing_out:
            state.put(stage.name, {"status": "failed", "fingerprint": fp, "parts": parts,
                                   "error": f"outputs not written: {missing_out}", "failed_at": _now()})
            raise StageFailed(f"stage {stage.name!r} finished but did not write {missing_out}")
        state.put(stage.name, {"status": "done", "fingerprint": fp, "parts": parts,
                               "outputs": outputs, "seconds": round(secs, 3),
                               "finished_at": _now(), "summary": _summarise(result)})
        log(f"[pipeline {i}/{total}] {stage.name}: done in {secs:.1f} s")
        results.append(StageResult(stage.name, "ran", secs, reason, fp, result))
    return results


def _summarise(result: Any) -> Any:
    """A small JSON-able view of what a stage returned (RunStats counters or a dict)."""
    counters = getattr(result, "counters", None)
    if isinstance(counters, dict):
        return {k: float(v) for k, v in counters.items()}
    if isinstance(result, dict):
        try:
            json.dumps(result)
            return result
        except TypeError:
            return {k: str(v) for k, v in result.items()}
    return None
