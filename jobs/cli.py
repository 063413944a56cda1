"""Arguments every job shares, the session it runs in, and how a refused run is reported."""
from __future__ import annotations

import argparse
import os
import sys


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=None, help="YAML file overriding the stage's defaults")
    p.add_argument("--stats", default=None,
                   help="Delta table for run statistics (default: <output>_stats)")
    p.add_argument("--master", default=None, help="Spark master when run locally (default local[*])")
    p.add_argument("--driver-memory", default=None, help="driver memory when run locally")
    p.add_argument("--shuffle-partitions", type=int, default=None)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output that this job did not write (another job's table, a "
                        "Delta table of another tool, a folder of other files); without it such "
                        "an output is refused before any work")
    return p


def session(args, app_name: str):
    from core.spark import get_spark
    return get_spark(app_name, master=args.master, memory=args.driver_memory,
                     shuffle_partitions=args.shuffle_partitions)


def stats_path(args, output: str) -> str:
    return args.stats or output.rstrip("/") + "_stats"


def user_errors() -> tuple[type, ...]:
    """Errors that mean "the request cannot be done as asked" (a bad config value, an output the
    job may not replace, an input that matches nothing): reported as one line, not a traceback."""
    from core.fs import InputNotFound
    from core.tables import OutputRefused
    from core.validate import ConfigError
    return (ConfigError, OutputRefused, InputNotFound)


def run(main, argv=None) -> int:
    """Run a job's `main`; a refused request is one line `<job>: error: ...` on stderr, status 2."""
    try:
        return main(argv) or 0
    except user_errors() as e:
        job = os.path.splitext(os.path.basename(sys.argv[0] or "job"))[0]
        print(f"{job}: error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        return 2
