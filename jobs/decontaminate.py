"""spark-submit jobs/decontaminate.py --input <deduped delta> --output <delta path> [--config FILE] [--benchmarks SPEC ...]

Removes registered evaluation-set text (configs/evalsets.yaml) from a documents table by word
n-gram overlap (13-grams by default, `--ngram 8` as Llama 3's analysis). Writes the cleaned table
to --output, one row per (document, benchmark item) match to <output>_contamination, and the run's
counters (per benchmark too) to --stats (default <output>_stats).

--benchmarks takes registry YAML files (replacing the default registry) and/or user sets as
PATH:FIELD[,FIELD] (a JSONL or Parquet file and the fields that make up an item's text; the set is
named after the file), added to the registered ones.
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

from core.config import load_config  # noqa: E402
from core.validate import ConfigError  # noqa: E402
from jobs.cli import base_parser, run, session, stats_path  # noqa: E402


def benchmark_overrides(entries: list[str] | None) -> dict:
    """--benchmarks entries -> the `evalsets` part of the config."""
    out: dict = {}
    extra = []
    for e in entries or []:
        if e.endswith((".yaml", ".yml")):
            if "registry" in out:
                raise ConfigError("--benchmarks: give at most one registry YAML")
            out["registry"] = e
            continue
        path, sep, fields = e.rpartition(":")
        if not sep or not path or not fields:
            raise ConfigError(f"--benchmarks {e!r}: expected a registry .yaml or PATH:FIELD[,FIELD]")
        name = os.path.basename(path).split(".")[0]
        extra.append({"name": name, "path": path, "text_fields": fields.split(",")})
    if extra:
        out["extra"] = extra
    return out


def main(argv=None) -> int:
    p = base_parser(__doc__.strip().splitlines()[0])
    p.add_argument("--input", required=True, help="documents Delta table (after dedup)")
    p.add_argument("--output", required=True, help="decontaminated Delta table (replaced)")
    p.add_argument("--benchmarks", nargs="*", default=None,
                   help="registry YAML and/or user sets PATH:FIELD[,FIELD]")
    p.add_argument("--ngram", type=int, default=None, help="words per n-gram (default 13)")
    p.add_argument("--mode", choices=["remove_regions", "drop_documents"], default=None)
    args = p.parse_args(argv)
    from curation.decontaminate.stage import DEFAULTS, resolve_config, run_decontaminate
    cfg = load_config(DEFAULTS, args.config)
    cfg["evalsets"].update(benchmark_overrides(args.benchmarks))
    if args.ngram:
        cfg["ngram"] = args.ngram
    if args.mode:
        cfg["mode"] = args.mode
    resolve_config(cfg)                   # every value checked before Spark starts
    spark = session(args, "decontaminate")
    run_decontaminate(spark, args.input, args.output, cfg, stats_path(args, args.output),
                      overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
