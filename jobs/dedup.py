"""spark-submit jobs/dedup.py --input <documents delta> --output <delta path> [--config FILE]

URL, exact, MinHash near-duplicate and line deduplication of a `documents` table. Writes the
survivors to --output, every removed document with its reason and survivor to
<output>_duplicates, and the run's counters to --stats (default <output>_stats).
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from core.config import load_config  # noqa: E402
from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def main(argv=None) -> int:
    p = base_parser(__doc__.strip().splitlines()[0])
    p.add_argument("--input", required=True, help="documents Delta table")
    p.add_argument("--output", required=True, help="deduplicated Delta table (replaced)")
    args = p.parse_args(argv)
    from curation.dedup.stage import DEFAULTS, resolve_config, run_dedup
    cfg = load_config(DEFAULTS, args.config)
    if args.shuffle_partitions:           # an explicit --shuffle-partitions wins over the auto count
        cfg["spark"]["shuffle_partitions"] = args.shuffle_partitions
    resolve_config(cfg)                   # every value checked before Spark starts
    spark = session(args, "dedup")
    run_dedup(spark, args.input, args.output, cfg, stats_path(args, args.output),
              overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
