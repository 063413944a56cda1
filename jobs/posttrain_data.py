"""spark-submit jobs/posttrain_data.py --output <folder> [--corpus DIR] [--user FILE.jsonl ...]

Post-training data (HH-RLHF preferences split train/held-out, GSM8K-train and MATH-4500 maths
prompts, user JSONL) converted and curated like pre-training data (decontamination, format and
chat-format round trip, PII redaction, repetition, length, exact and MinHash near dedup) into Delta
tables under --output: preferences/{train,heldout}, prompts/{train,heldout}, sft/train, and every
dropped record with its reason in rejects; counters in --stats (default <output>_stats). See
docs/stages/posttrain.md.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def main(argv=None) -> int:
    p = base_parser(__doc__.strip().splitlines()[0])
    p.add_argument("--output", required=True, help="folder of the post-training Delta tables")
    p.add_argument("--corpus", default=None, help="sample corpus (default ../shared/corpus)")
    p.add_argument("--user", action="append", default=[], help="user JSONL file (repeatable)")
    p.add_argument("--sources", default=None,
                   help="comma list of hh, gsm8k, math ('' = none; default all)")
    p.add_argument("--heldout-share", type=float, default=None)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--decontaminate-ngram", type=int, default=None, help="0 = off (default 13)")
    p.add_argument("--near-threshold", type=float, default=None)
    args = p.parse_args(argv)
    from core.config import load_config
    from core.validate import check_schema
    from pipeline.posttrain_data import DEFAULTS, SCHEMA, run_posttrain_data
    cfg = load_config(DEFAULTS, args.config)
    for key in ("heldout_share", "max_tokens", "decontaminate_ngram", "near_threshold"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.sources is not None:
        cfg["sources"] = [s for s in args.sources.split(",") if s]
    check_schema(cfg, SCHEMA)                       # every value checked before Spark starts
    spark = session(args, "posttrain_data")
    run_posttrain_data(spark, args.output, cfg, stats_path(args, args.output), corpus=args.corpus,
                       user=args.user, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
