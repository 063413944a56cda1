"""spark-submit jobs/score.py --input <delta> --output <delta path> [--config FILE]
[--quality-model DIR] [--domain-model DIR]

Adds lang, lang_score, quality, content_domain, domain_scores and stream to every document of a
documents/filtered Delta table (+ `<output>_stats`). The models must be trained first:

    python -m classifiers.train quality --recipe default --out models/quality
    python -m classifiers.train domain  --recipe default --out models/domain

See docs/stages/score.md.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from classifiers.stage import DEFAULTS, SCHEMA, run_score  # noqa: E402
from core.config import check_schema, load_yaml, merge  # noqa: E402
from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def main(argv=None):
    p = base_parser("Score documents: language ID, quality, domain and stream.")
    p.add_argument("--input", required=True, help="documents or filtered Delta table")
    p.add_argument("--output", required=True, help="scored Delta table path")
    p.add_argument("--quality-model", default=None,
                   help=f"quality model folder (default {DEFAULTS['models']['quality']})")
    p.add_argument("--domain-model", default=None,
                   help=f"domain model folder (default {DEFAULTS['models']['domain']})")
    args = p.parse_args(argv)
    overrides = load_yaml(args.config)
    models = dict(overrides.get("models") or {})
    if args.quality_model:
        models["quality"] = args.quality_model
    if args.domain_model:
        models["domain"] = args.domain_model
    if models:
        overrides["models"] = models
    check_schema(merge(DEFAULTS, overrides), SCHEMA)   # every value checked before Spark starts
    spark = session(args, "score")
    run_score(spark, args.input, args.output, overrides, stats_path(args, args.output),
              overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(run(main))
