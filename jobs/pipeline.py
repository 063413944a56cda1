"""The whole chain on the sample corpus: extract -> dedup -> filter -> score -> mix -> train ->
report, each stage skipped when its inputs, config and code are unchanged.

    python -m jobs.pipeline [--config configs/pipeline.yaml] [--until score] [--force dedup]
    spark-submit jobs/pipeline.py --config configs/pipeline.yaml
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from jobs.cli import base_parser, run, session  # noqa: E402


def main(argv=None) -> int:
    p = base_parser(__doc__.strip().splitlines()[0])
    p.add_argument("--work-dir", default=None, help="override work_dir of the pipeline config")
    p.add_argument("--only", nargs="+", default=None,
                   help="run only these stages (a prefix such as 'extract' selects extract.*)")
    p.add_argument("--until", default=None, help="stop after this stage")
    p.add_argument("--from", dest="start", default=None, help="start at this stage")
    p.add_argument("--force", nargs="+", default=(), help="re-run these stages even if unchanged")
    p.add_argument("--force-all", action="store_true", help="re-run every stage")
    p.add_argument("--list", action="store_true", help="list the stages and their state, run nothing")
    args = p.parse_args(argv)

    from pipeline import MissingStageError, StageFailed, load_pipeline_config, run_pipeline
    from core.paths import PROJECT_ROOT
    cfg_path = args.config or (PROJECT_ROOT / "configs" / "pipeline.yaml")
    cfg = load_pipeline_config(cfg_path, {"work_dir": args.work_dir} if args.work_dir else None)
    if args.list:
        return _list(cfg)
    # Name every missing stage before starting Spark.
    from pipeline import select
    from pipeline.runner import missing_stages
    from pipeline.stages import build_stages, check_values
    selected = select(build_stages(cfg), only=args.only, until=args.until, start=args.start)
    missing = missing_stages(selected)
    if missing:
        print("error: cannot run the pipeline:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    check_values(selected)   # every stage's values, before Spark starts
    spark = session(args, "pipeline")
    try:
        results = run_pipeline(spark, cfg, only=args.only, until=args.until, start=args.start,
                               force=args.force, force_all=args.force_all, stats_path=args.stats,
                               overwrite=args.overwrite)
    except MissingStageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StageFailed as e:
        print(f"error: {e}\n(fix it and run the same command again: finished stages are skipped)",
              file=sys.stderr)
        return 1
    ran = sum(r.status == "ran" for r in results)
    print(f"pipeline: {ran} stage(s) ran, {len(results) - ran} skipped; "
          f"work dir {cfg['work_dir']}")
    return 0


def _list(cfg) -> int:
    from pipeline.config import work_path
    from pipeline.runner import STATE_FILE, PipelineState, missing_stages
    from pipeline.stages import build_stages
    stages = build_stages(cfg)
    state = PipelineState(work_path(cfg, STATE_FILE))
    missing = {m.split("'")[1] for m in missing_stages(stages)}
    for s in stages:
        st = state.get(s.name)
        flag = "MISSING" if s.name in missing else st.get("status", "-")
        print(f"{s.name:<24} {flag:<8} {st.get('finished_at', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
