"""End-to-end pipeline: extract -> dedup -> filter -> score -> mix -> train -> report, with
fingerprint-based skipping and resume (see runner.py), driven by configs/pipeline.yaml."""
from __future__ import annotations

import time

from pipeline.config import DEFAULTS, load_pipeline_config, work_path
from pipeline.runner import (MissingStageError, PipelineState, Stage, StageFailed,
                             StageResult, run_stages)

__all__ = ["DEFAULTS", "load_pipeline_config", "run_pipeline", "select", "Stage", "StageResult",
           "MissingStageError", "StageFailed", "PipelineState", "run_stages"]


def select(stages: list[Stage], only=None, until: str | None = None,
           start: str | None = None) -> list[Stage]:
    """A sub-list of stages: `only` names (a prefix such as "extract" matches extract.*), or
    the range from `start` to `until` (inclusive)."""
    def match(s, name):
        return s.name == name or s.name.startswith(name + ".")
    names = [s.name for s in stages]
    for n in list(only or []) + [x for x in (until, start) if x]:
        if not any(match(s, n) for s in stages):
            raise ValueError(f"unknown stage {n!r}; stages: {names}")
    if only:
        return [s for s in stages if any(match(s, n) for n in only)]
    lo = min(i for i, s in enumerate(stages) if match(s, start)) if start else 0
    hi = max(i for i, s in enumerate(stages) if match(s, until)) if until else len(stages) - 1
    return stages[lo:hi + 1]


def run_pipeline(spark, config: dict | None = None, only=None, until: str | None = None,
                 start: str | None = None, force=(), force_all: bool = False,
                 stats_path: str | None = None, log=print,
                 overwrite: bool = False) -> list[StageResult]:
    """Run the curation pipeline described by `config` (a loaded pipeline config; None = the
    defaults). Returns one StageResult per selected stage and records a `pipeline` row set
    (seconds per stage, stages run/skipped) in `<work_dir>/pipeline_stats`."""
    from core.config import config_hash
    from pipeline.stages import build_stages
    from core.stats import RunStats
    cfg = config if config is not None else load_pipeline_config(None)
    from pipeline.stages import check_values
    stages = select(build_stages(cfg), only=only, until=until, start=start)
    check_values(stages)
    stats = RunStats("pipeline", config_hash=config_hash(cfg))
    stats_path = stats_path or work_path(cfg, "pipeline_stats")
    stats.claim(spark, stats_path, overwrite)
    t0 = time.time()
    try:
        results = run_stages(spark, stages, work_path(cfg), force=_expand(stages, force),
                             force_all=force_all, log=log, overwrite=overwrite)
    finally:
        stats.info["work_dir"] = work_path(cfg)
    for r in results:
        stats.set(f"stage.{r.name}.seconds", round(r.seconds, 3))
        stats.add(f"stages.{r.status}")
    stats.set("wall_seconds", round(time.time() - t0, 3))
    stats.record(spark, stats_path)
    return results


def _expand(stages, force):
    out = []
    for f in force or ():
        hits = [s.name for s in stages if s.name == f or s.name.startswith(f + ".")]
        out += hits or [f]
    return out
