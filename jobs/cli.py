"""Arguments every job shares, and the session it runs in."""
from __future__ import annotations

import argparse


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=None, help="YAML file overriding the stage's defaults")
    p.add_argument("--stats", default=None,
                   help="Delta table for run statistics (default: <output>_stats)")
    p.add_argument("--master", default=None, help="Spark master when run locally (default local[*])")
    p.add_argument("--driver-memory", default=None, help="driver memory when run locally")
    p.add_argument("--shuffle-partitions", type=int, default=None)
    return p


def session(args, app_name: str):
    from core.spark import get_spark
    return get_spark(app_name, master=args.master, memory=args.driver_memory,
                     shuffle_partitions=args.shuffle_partitions)


def stats_path(args, output: str) -> str:
    return args.stats or output.rstrip("/") + "_stats"
