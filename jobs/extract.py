"""spark-submit jobs/extract.py --input <paths or globs> --output <delta path> [--format ...]
[--source NAME] [--text-field F] [--lang L] [--config FILE]
spark-submit jobs/extract.py --sources <sources YAML> [--base <folder or URI>] --output <delta path>

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
    p.add_argument("--input", nargs="+",
                   help="files, folders or globs, local or URIs (s3://, gs://, abfss://, hdfs://, "
                        "http(s)://, dbfs:/, /Volumes/...), or a Common Crawl warc.paths.gz / "
                        "wet.paths.gz listing (see --paths-base)")
    p.add_argument("--paths-base", default=None,
                   help="base joined to the relative paths of a *.paths.gz listing (default: "
                        "s3://commoncrawl/ or https://data.commoncrawl.org/ when the listing "
                        "is read from there)")
    p.add_argument("--sources", default=None,
                   help="instead of --input: a YAML file listing several sources (name, paths, "
                        "options, config; configs/sources.yaml), extracted one after the other in "
                        "this one job (curation/extract/source_list.py)")
    p.add_argument("--base", default=None,
                   help="with --sources: folder or URI the sources' relative paths are joined to")
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
    per_source = {"--input": args.input, "--format": args.format, "--source": args.source,
                  "--text-field": args.text_field, "--lang": args.lang,
                  "--paths-base": args.paths_base}
    if args.sources:
        given = [k for k, v in per_source.items() if v]
        if given:
            p.error(f"--sources names each source's inputs and options; drop {', '.join(given)}")
    elif not args.input:
        p.error("one of --input or --sources is required")
    elif args.base:
        p.error("--base goes with --sources (use --paths-base for a *.paths.gz listing)")
    cfg = load_config(DEFAULTS, args.config)
    if args.lines_per_doc is not None:
        cfg["text"]["lines_per_doc"] = args.lines_per_doc
    check_schema(cfg, SCHEMA)          # every value checked before Spark starts
    if args.sources:
        from curation.extract.source_list import load_sources, run_extract_sources
        sources = load_sources(args.sources)        # checked before Spark starts
        spark = session(args, "extract")
        run_extract_sources(spark, sources, args.output, cfg, stats_path(args, args.output),
                            base=args.base, overwrite=args.overwrite,
                            allow_shrink=args.allow_shrink)
        return
    text_field = args.text_field.encode().decode("unicode_escape") if args.text_field else None
    spark = session(args, "extract")
    run_extract(spark, args.input, args.output, cfg, stats_path(args, args.output), fmt=args.format,
                source=args.source, text_field=text_field, lang=args.lang,
                paths_base=args.paths_base, overwrite=args.overwrite,
                allow_shrink=args.allow_shrink)


if __name__ == "__main__":
    sys.exit(run(main))
