"""Run configuration: dataclasses, filled from one YAML file plus ``key=value`` command-line overrides.

Unknown keys fail (a typo never silently falls back to a default). Overrides address nested keys
with dots and list items with their index: ``optim.lr=1e-3``, ``stages.1.tokens=200000``,
``model.dim=128``. Values are parsed as YAML (``true``, ``1e-3``, ``[1, 2]``).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from core.config import load_yaml
from core.validate import ConfigError, check_dataclass, option

__all__ = ["ConfigError", "TrainConfig", "load", "from_dict", "apply_override", "set_path"]


SCHEDULES = ("warmup_cosine", "linear_to_zero", "constant")


@dataclass
class OptimConfig:
    lr: float = option(3e-4, gt=0)            # peak LR of the pre-training stage
    weight_decay: float = option(0.1, ge=0)   # matrices only; never norms or embeddings
    betas: list = option(factory=lambda: [0.9, 0.95], length=2, items={"type": float, "ge": 0, "lt": 1})
    eps: float = option(1e-8, gt=0)
    grad_clip: float = option(1.0, ge=0)      # max global gradient norm (0 = no clipping)
    fused: Any = option("auto", choices=("auto", True, False))   # auto (fused on CUDA) | true | false


@dataclass
class RampConfig:
    from_tokens: int = option(0, ge=0)        # applies once the run has trained this many tokens
    batch_tokens: int = option(4096, ge=1)    # tokens per optimizer step (global, all ranks)
    seq_len: int | None = option(None, ge=2)  # training sequence length in tokens (None = the rows' length)


@dataclass
class StageConfig:
    name: str = option("pretrain", nonempty=True)
    data: str = option("", nonempty=True)     # mix directory written by jobs/mix.py (manifest.json, shards, heldout/)
    tokens: int = option(0, ge=1)             # tokens to train in this stage
    schedule: str = option("warmup_cosine", choices=SCHEDULES)
    lr: float | None = option(None, gt=0)     # peak/start LR; None = optim.lr (pretrain) or the LR at the switch
    warmup_tokens: int = option(0, ge=0)
    min_lr_ratio: float = option(0.01, ge=0, le=1)   # cosine floor as a fraction of the peak (Llama 3: 1%)
    checkpoint_every_steps: int | None = option(None, ge=1)   # None = checkpoint.every_steps
    average_last: int = option(0, ge=0)       # >0: final model = average of this stage's last K checkpoints


@dataclass
class EvalConfig:
    every_steps: int = option(100, ge=0)      # held-out loss per stream every N steps (0 = only at stage ends)
    rows_per_source: int = option(16, ge=1)   # held-out rows evaluated per stream
    batch_rows: int = option(8, ge=1)


@dataclass
class CheckpointConfig:
    every_steps: int = option(200, ge=1)
    keep_last: int = option(2, ge=0)          # checkpoints kept in stages that are not averaged (0 = all)


@dataclass
class TrainConfig:
    out_dir: str = option("runs/train", nonempty=True)
    seed: int = option(1234, ge=0)
    device: str = option("auto", choices=("auto", "cpu", "cuda"))
    precision: str = option("auto", choices=("auto", "bf16", "fp32"))   # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False            # torch.compile the model (GPU)
    activation_checkpointing: bool = False
    parallel: str = option("auto", choices=("auto", "none", "ddp", "fsdp"))  # auto: ddp when WORLD_SIZE > 1
    attention: str = option("auto", choices=("auto", "sdpa", "flex", "varlen"))  # see trainer/attention.py
    cpu_threads: int | None = option(None, ge=1)   # torch intra-op threads on CPU (None = torch's default)
    micro_batch_tokens: int = option(4096, ge=1)   # tokens per forward/backward per rank; accumulation fills the step
    log_every: int = option(10, ge=1)
    tensorboard: bool = True
    resume: str = option("auto", nonempty=True)    # auto (latest checkpoint in out_dir) | never | <checkpoint dir>
    resume_fallback: bool = False    # a damaged latest checkpoint: resume from the newest good one (else fail)
    force: bool = False              # resume even if a stage's mix fingerprint changed
    stop_after_steps: int | None = option(None, ge=1)  # stop (with a checkpoint) after this many steps here
    model: dict = field(default_factory=lambda: {"preset": "tiny"})   # preset + ModelConfig overrides
    optim: OptimConfig = field(default_factory=OptimConfig)
    ramps: list = field(default_factory=lambda: [RampConfig()])
    stages: list = field(default_factory=list)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


_LISTS = {"ramps": RampConfig, "stages": StageConfig}


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    bad = sorted(set(data) - known)
    if bad:
        raise ConfigError(f"unknown config key(s) {[where + b for b in bad]}; known: {sorted(known)}")
    kwargs = {}
    for k, v in data.items():
        t = hints[k]
        if dataclasses.is_dataclass(t):
            kwargs[k] = _build(t, v or {}, f"{where}{k}.")
        elif k in _LISTS and cls is TrainConfig:
            if not isinstance(v, list):
                raise ConfigError(f"{where}{k} must be a list")
            kwargs[k] = [_build(_LISTS[k], item, f"{where}{k}.{i}.") for i, item in enumerate(v)]
        else:
            kwargs[k] = v
    return cls(**kwargs)


def from_dict(data: dict) -> TrainConfig:
    cfg = _build(TrainConfig, data, "")
    validate(cfg)
    return cfg


def apply_override(data: dict, assignment: str) -> None:
    """`key=value` from the command line: the value is read as YAML, the key is dotted."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not key=value")
    key, raw = assignment.split("=", 1)
    set_path(data, key.strip(), yaml.safe_load(raw) if raw != "" else None)


def set_path(data: dict, key: str, value) -> None:
    """Set `value` at a dotted `key` (`stages.0.tokens`): dots walk mappings (created where
    missing) and list indices (which must exist)."""
    parts = key.split(".")
    node: Any = data
    for i, p in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise ConfigError(f"override {key}: {'.'.join(parts[:i + 1])} is not an item of a "
                                  f"list of {len(node)}")
            node = node[int(p)]
        elif isinstance(node, dict):
            if p not in node or node[p] is None:
                node[p] = {}
            node = node[p]
        else:
            raise ConfigError(f"override {key}: {'.'.join(parts[:i])} is not a mapping or a list")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit():
            raise ConfigError(f"override {key}: {last!r} is not a list index")
        idx = int(last)
        if idx >= len(node):
            raise ConfigError(f"override {key}: index {idx} beyond the list's {len(node)} items")
        node[idx] = value
    else:
        node[last] = value


def load(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides."""
    return load_dict(load_yaml(path), overrides, where=f" in {path}" if path else "")


def load_dict(data: dict | None, overrides: list[str] | None = None, where: str = "") -> TrainConfig:
    """Defaults <- `data` (a YAML file's content) <- overrides, validated."""
    base = TrainConfig().to_dict()
    if data:
        unknown = sorted(set(data) - set(base))
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}{where}; known: {sorted(base)}")
        for k, v in data.items():
            if isinstance(base[k], dict) and isinstance(v, dict) and k != "model":
                base[k].update(v)
            else:
                base[k] = v
    base = copy.deepcopy(base)
    for o in overrides or []:
        apply_override(base, o)
    return from_dict(base)


def validate(cfg: TrainConfig) -> None:
    """Every field against its declared rule (type and range), then what involves several keys."""
    check_dataclass(cfg)
    if not cfg.stages:
        raise ConfigError("at least one stage is required (stages: [{name, data, tokens, ...}])")
    names = [s.name for s in cfg.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stage names must be unique: {names}")
    if not cfg.ramps:
        raise ConfigError("ramps: at least one {from_tokens, batch_tokens, seq_len} entry is required")
    froms = [r.from_tokens for r in cfg.ramps]
    if froms != sorted(froms) or froms[0] != 0:
        raise ConfigError(f"ramps must be sorted by from_tokens and start at 0: {froms}")
    if not isinstance(cfg.model, dict) or "preset" not in cfg.model:
        raise ConfigError("model.preset is required (tiny, 20M, 125M, 350M, 1B, llama3-8B, ...)")
