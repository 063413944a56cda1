"""spark-submit jobs/extract.py --input <paths or globs> --output <delta path> [--format ...]
[--source NAME] [--text-field F] [--lang L] [--config FILE]

Raw crawls (WARC/ARC/WET) or text datasets (jsonl, parquet, text, html files) -> the `documents`
Delta table (+ `<output>_rejects`, `<output>_stats`). See docs/stages/extract.md.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from core.config import load_config  # noqa: E402
from core.validate import check_schema  # noqa: E402
from curation.extract.stage import DEFAULTS, FORMATS, SCHEMA, run_extract  # noqa: E402
from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def main(argv=None):
    p = base_parser("Extract documents from WARC/ARC/WET files or text datasets into Delta.")
    p.add_argument("--input", required=True, nargs="+",
                   help="files, folders or globs, local or URIs (s3://, gs://, abfss://, hdfs://, "
                        "http(s)://, dbfs:/, /Volumes/...), or a Common Crawl warc.paths.gz / "
                        "wet.paths.gz listing (see --paths-base)")
    p.add_argument("--paths-base", default=None,
                   help="base joined to the relative paths of a *.paths.gz listing (default: "
                        "s3://commoncrawl/ or https://data.commoncrawl.org/ when the listing "
                        "is read from there)")
    p.add_argument("--output", required=True, help="documents Delta table path")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="input format (default: from the file extension)")
    p.add_argument("--source", default=None,
                   help="source name; a run replaces only this source's rows (default: crawl for "
                        "WARC, else the first file's stem)")
    p.add_argument("--text-field", default=None,
                   help="text datasets: a field, 'a,b' (fields joined by a blank line) or a "
                        "template such as 'Q: {question}\\nA: {answer}'")
    p.add_argument("--lang", default=None, help="language hint stored in html_lang")
    p.add_argument("--lines-per-doc", type=int, default=None, help="plain text: lines per document")
    p.add_argument("--allow-shrink", action="store_true",
                   help="let a re-run of a source with fewer input files than its last run "
                        "replace the source's rows (refused otherwise, naming both counts)")
    args = p.parse_args(argv)
    cfg = load_config(DEFAULTS, args.config)
    if args.lines_per_doc is not None:
        cfg["text"]["lines_per_doc"] = args.lines_per_doc
    check_schema(cfg, SCHEMA)          # every value checked before Spark starts
    text_field = args.text_field.encode().decode("unicode_escape") if args.text_field else None
    spark = session(args, "extract")
    run_extract(spark, args.input, args.output, cfg, stats_path(args, args.output), fmt=args.format,
                source=args.source, text_field=text_field, lang=args.lang,
                paths_base=args.paths_base, overwrite=args.overwrite,
                allow_shrink=args.allow_shrink)


if __name__ == "__main__":
    sys.exit(run(main))
