"""Command line: ``python -m trainer.run --config FILE [key=value ...]``.

Trains through every stage of the config (pre-train, then anneal), checkpointing as it goes, and
writes the averaged final model. Under ``torchrun --nproc_per_node N -m trainer.run ...`` each rank
trains on its slice of every global batch (DDP by default, ``parallel=fsdp`` for FSDP2).

Examples:
    python -m trainer.run --config configs/train/tiny.yaml
    python -m trainer.run --config configs/train/tiny.yaml optim.lr=1e-3 stages.0.tokens=200000
    python -m trainer.run --config configs/train/tiny.yaml --resume never     # start over
    python -m trainer.run --config configs/train/tiny.yaml --force            # resume on a changed mix
    python -m trainer.run --config configs/train/tiny.yaml --resume-fallback  # skip a damaged checkpoint

Every config value is checked against its declared type and range before any work (a bad value is
one line naming the key, the value and what is allowed, exit status 2); so are damaged checkpoints
and mixes (one line naming the file).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):   # `python trainer/run.py` from a clone
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainer.config import ConfigError, load  # noqa: E402


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML run config (see configs/train/)")
    ap.add_argument("--out-dir", help="override out_dir")
    ap.add_argument("--resume", help="auto (default: latest checkpoint in out_dir), never, or a checkpoint dir")
    ap.add_argument("--force", action="store_true", help="resume even if a stage's mix fingerprint changed")
    ap.add_argument("--resume-fallback", action="store_true",
                    help="if the latest checkpoint is damaged, set it aside and resume from the newest good one")
    ap.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=1e-3 stages.1.tokens=1000")
    a = ap.parse_args(argv)
    ov = list(a.overrides)
    if a.out_dir:
        ov.append(f"out_dir={a.out_dir}")
    if a.resume:
        ov.append(f"resume={a.resume}")
    if a.force:
        ov.append("force=true")
    if a.resume_fallback:
        ov.append("resume_fallback=true")
    try:
        cfg = load(a.config, ov)
    except ConfigError as e:
        print(f"config error: {one_line(e)}", file=sys.stderr)
        return 2
    from trainer.checkpoint import CheckpointError, MixMismatchError
    from trainer.data import ShardFormatError
    from trainer.loop import Trainer
    try:
        trainer = Trainer(cfg)
        result = trainer.run()
    except (MixMismatchError, ShardFormatError, ConfigError, CheckpointError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    finally:
        from trainer import parallel
        if "trainer" in locals():
            parallel.cleanup(trainer.info)
    if trainer.info.is_main:
        print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
