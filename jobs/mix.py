"""Build training stages' token streams: `spark-submit jobs/mix.py --spec FILE --output DIR`.

Tokenizes the scored documents named by the spec's sources in parallel, samples them in exact token
proportions and writes token shards, index, manifest and mix report (docs/token-shards.md,
docs/stages/mix.md). `--spec A --output X --spec B --output Y` builds several streams (each spec
with the --output that follows it) one after the other in one Spark application: the same streams
as one job per spec, without a second application start.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def main(argv=None) -> int:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--spec", action="append", default=None,
                   help="mix spec YAML (configs/mix/pretrain.yaml, anneal.yaml, eval_candidate.yaml); "
                        "--config is accepted as a synonym; repeat --spec/--output pairs to build "
                        "several streams in one job")
    p.add_argument("--output", action="append", required=True,
                   help="output folder (replaced atomically); one per --spec, in the same order")
    p.add_argument("--input", default=None,
                   help="Delta table for sources that name none (default: the spec's `input`)")
    p.add_argument("--total-tokens", type=int, default=None, help="override the spec's total_tokens")
    p.add_argument("--seed", type=int, default=None, help="override the spec's seed")
    p.add_argument("--work-dir", default=None,
                   help="scratch folder for the token files (default: beside --output); on a "
                        "cluster it must be on a filesystem every worker and the driver share")
    args = p.parse_args(argv)
    spec_files = (args.spec or []) + ([args.config] if args.config else [])
    if not spec_files:
        p.error("--spec FILE is required")
    if len(spec_files) != len(args.output):
        p.error(f"{len(spec_files)} --spec but {len(args.output)} --output: give one --output "
                f"after each --spec")
    if args.stats and len(spec_files) > 1:
        p.error("--stats names one table: leave it out with several --spec (each stream's "
                "statistics go to <output>_stats)")
    if len(set(args.output)) != len(args.output):
        p.error("each --spec needs its own --output")

    from core.config import load_yaml
    from mixer.build import run_mix
    from mixer.plan import InfeasibleMix
    from mixer.spec import SpecError, load_spec
    from pathlib import Path

    specs = []
    for spec_file in spec_files:      # every spec checked before Spark starts
        raw = load_yaml(spec_file)
        for k, v in (("total_tokens", args.total_tokens), ("seed", args.seed)):
            if v is not None:
                raw[k] = v
        if raw.get("base") and not Path(raw["base"]).is_absolute():  # relative to the spec file
            raw["base"] = str(Path(spec_file).resolve().parent / raw["base"])
        try:
            specs.append(load_spec(raw))
        except SpecError as e:
            print(f"mix: bad spec {spec_file}: {e}", file=sys.stderr)
            return 2
    spark = session(args, "mix-" + "+".join(s["stage"] for s in specs))
    for spec, output in zip(specs, args.output):
        try:
            run_mix(spark, args.input, output, config={**spec, "_resolved": True},
                    stats_path=stats_path(args, output), work_dir=args.work_dir,
                    overwrite=args.overwrite)
        except (InfeasibleMix, SpecError) as e:
            print(f"mix: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
