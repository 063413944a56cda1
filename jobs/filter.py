"""spark-submit jobs/filter.py --input <documents delta> --output <annotated delta> [--config FILE]

Annotates every document with quality, safety and PII signals, redacts PII in `text`, and decides
`keep` / `drop_reasons` from the thresholds in the config. `--decide-only` re-applies (new)
thresholds to an already annotated table without recomputing any signal.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def main(argv=None) -> int:
    p = base_parser(__doc__.strip().splitlines()[0])
    p.add_argument("--input", required=True, help="input Delta table (documents, or an annotated table "
                   "with --decide-only)")
    p.add_argument("--output", required=True, help="output Delta table (replaced)")
    p.add_argument("--decide-only", action="store_true",
                   help="read an annotated table and only recompute keep/drop_reasons")
    p.add_argument("--show-rejected", type=int, default=0, metavar="N",
                   help="after the run, print N rejected documents with their reasons")
    args = p.parse_args(argv)

    from core.config import load_config
    from curation.filters.stage import DEFAULTS, SCHEMA, rejected, run_filter

    cfg = load_config(DEFAULTS, args.config, schema=SCHEMA)   # checked before Spark starts
    spark = session(args, "filter")
    run_filter(spark, args.input, args.output, config=cfg, stats_path=stats_path(args, args.output),
               decide_only=args.decide_only, overwrite=args.overwrite)
    if args.show_rejected:
        rejected(spark, args.output).orderBy("doc_id").show(args.show_rejected, truncate=100)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
