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


class ConfigError(ValueError):
    pass


@dataclass
class OptimConfig:
    lr: float = 3e-4                 # peak LR of the pre-training stage
    weight_decay: float = 0.1        # matrices only; never norms or embeddings
    betas: list = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float = 1.0           # max global gradient norm (0 = no clipping)
    fused: Any = "auto"              # auto (fused on CUDA) | true | false


@dataclass
class RampConfig:
    from_tokens: int = 0             # applies once the run has trained this many tokens
    batch_tokens: int = 4096         # tokens per optimizer step (global, all ranks)
    seq_len: int | None = None       # training sequence length in tokens (None = the rows' length)


@dataclass
class StageConfig:
    name: str = "pretrain"
    data: str = ""                   # mix directory written by jobs/mix.py (manifest.json, shards, heldout/)
    tokens: int = 0                  # tokens to train in this stage
    schedule: str = "warmup_cosine"  # warmup_cosine | linear_to_zero | constant
    lr: float | None = None          # peak/start LR; None = optim.lr (pretrain) or the LR at the switch
    warmup_tokens: int = 0
    min_lr_ratio: float = 0.01       # cosine floor as a fraction of the peak (Llama 3: 1%)
    checkpoint_every_steps: int | None = None   # None = checkpoint.every_steps
    average_last: int = 0            # >0: final model = average of this stage's last K checkpoints


@dataclass
class EvalConfig:
    every_steps: int = 100           # held-out loss per stream every N steps (0 = only at stage ends)
    rows_per_source: int = 16        # held-out rows evaluated per stream
    batch_rows: int = 8


@dataclass
class CheckpointConfig:
    every_steps: int = 200
    keep_last: int = 2               # checkpoints kept in stages that are not averaged


@dataclass
class TrainConfig:
    out_dir: str = "runs/train"
    seed: int = 1234
    device: str = "auto"             # auto | cpu | cuda
    precision: str = "auto"          # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False            # torch.compile the model (GPU)
    activation_checkpointing: bool = False
    parallel: str = "auto"           # auto (ddp when WORLD_SIZE > 1) | none | ddp | fsdp
    attention: str = "auto"          # auto | sdpa | flex | varlen  (see trainer/attention.py)
    cpu_threads: int | None = None   # torch intra-op threads on CPU (None = torch's default)
    micro_batch_tokens: int = 4096   # tokens per forward/backward per rank; accumulation fills the step
    log_every: int = 10
    tensorboard: bool = True
    resume: str = "auto"             # auto (latest checkpoint in out_dir) | never | <checkpoint dir>
    force: bool = False              # resume even if a stage's mix fingerprint changed
    stop_after_steps: int | None = None  # stop (with a checkpoint) after this many steps in this process
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
            kwargs[k] = _coerce(v, t, where + k)
    return cls(**kwargs)


def _coerce(v, t, where: str):
    """YAML reads `1e-3` as a string (YAML 1.1 floats need a dot): convert numbers by the field type."""
    ts = str(t)
    if isinstance(v, str) and ("float" in ts or "int" in ts) and "str" not in ts:
        try:
            f = float(v)
            if "int" in ts and "float" not in ts:
                if not f.is_integer():
                    raise ValueError
                return int(f)
            return f
        except ValueError:
            raise ConfigError(f"{where}: {v!r} is not a number") from None
    if isinstance(v, int) and not isinstance(v, bool) and "float" in ts and "int" not in ts:
        return float(v)
    return v


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
    for p in parts[:-1]:
        if isinstance(node, list):
            node = node[int(p)]
        else:
            if p not in node or node[p] is None:
                node[p] = {}
            node = node[p]
    last = parts[-1]
    if isinstance(node, list):
        idx = int(last)
        if idx >= len(node):
            raise ConfigError(f"override {key}: index {idx} beyond the list's {len(node)} items")
        node[idx] = value
    else:
        node[last] = value


def load(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides."""
    base = TrainConfig().to_dict()
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p} must hold a mapping at the top level")
        unknown = sorted(set(data) - set(base))
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown} in {p}; known: {sorted(base)}")
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
    if not cfg.stages:
        raise ConfigError("at least one stage is required (stages: [{name, data, tokens, ...}])")
    names = [s.name for s in cfg.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stage names must be unique: {names}")
    for s in cfg.stages:
        if not s.data:
            raise ConfigError(f"stage {s.name!r}: data (a mix directory) is required")
        if s.tokens <= 0:
            raise ConfigError(f"stage {s.name!r}: tokens must be > 0")
        if s.schedule not in ("warmup_cosine", "linear_to_zero", "constant"):
            raise ConfigError(f"stage {s.name!r}: unknown schedule {s.schedule!r}")
        if s.average_last < 0:
            raise ConfigError(f"stage {s.name!r}: average_last must be >= 0")
    if not cfg.ramps:
        raise ConfigError("ramps: at least one {from_tokens, batch_tokens, seq_len} entry is required")
    froms = [r.from_tokens for r in cfg.ramps]
    if froms != sorted(froms) or froms[0] != 0:
        raise ConfigError(f"ramps must be sorted by from_tokens and start at 0: {froms}")
    for r in cfg.ramps:
        if r.batch_tokens <= 0:
            raise ConfigError("ramp batch_tokens must be > 0")
    if cfg.precision not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"precision must be auto, bf16 or fp32, not {cfg.precision!r}")
    if cfg.parallel not in ("auto", "none", "ddp", "fsdp"):
        raise ConfigError(f"parallel must be auto, none, ddp or fsdp, not {cfg.parallel!r}")
    if "preset" not in cfg.model:
        raise ConfigError("model.preset is required (tiny, 20M, 125M, 350M, 1B, llama3-8B, ...)")
