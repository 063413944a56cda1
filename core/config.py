"""Configuration: YAML files merged over each stage's defaults, and a stable hash of the result.

Every stage keeps its defaults in code (`DEFAULTS` dicts, the published values) and accepts a YAML
file that overrides any subset of keys, nested as in the defaults. Unknown keys are an error, so a
typo never silently falls back to a default. Each stage also declares a `SCHEMA` (dotted key ->
`Rule`: type and range, see core/validate.py), checked when the config is loaded or resolved, so a
bad value (`timeout_s: -1`, `minhash.bands: 0`) is refused before Spark starts.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml


from core.validate import ConfigError, Rule, check_schema

__all__ = ["ConfigError", "Rule", "check_schema", "merge", "load_yaml", "load_config", "config_hash"]


def merge(defaults: dict, overrides: dict | None, where: str = "") -> dict:
    """Deep-merge `overrides` into a copy of `defaults`; unknown keys raise ConfigError."""
    out = copy.deepcopy(defaults)
    for k, v in (overrides or {}).items():
        if k not in out:
            raise ConfigError(f"unknown config key {where + k!r}; known: {sorted(out)}")
        if isinstance(out[k], dict) and isinstance(v, dict) and not k.endswith("_map"):
            out[k] = merge(out[k], v, where=f"{where}{k}.")
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_yaml(path: str | Path | None) -> dict:
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def load_config(defaults: dict, path: str | Path | None = None, section: str | None = None,
                schema: dict[str, Rule] | None = None) -> dict:
    """Defaults, overridden by the YAML at `path` (optionally only its `section` key), every key
    of `schema` checked against its rule (type and range) so a bad value fails here, before any
    work, naming the key, the value and what is allowed."""
    data = load_yaml(path)
    if section is not None:
        data = data.get(section, {}) or {}
    cfg = merge(defaults, data)
    if schema:
        check_schema(cfg, schema)
    return cfg


def config_hash(cfg: Any) -> str:
    """A short, stable fingerprint of a config (key order does not matter)."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
