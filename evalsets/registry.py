"""The registry of evaluation sets: one config file (`configs/evalsets.yaml`) names each set, its
reader (`readers.READERS`) and its path, relative to the sample corpus unless absolute. A user set
(any JSONL or Parquet) adds `text_fields` (and optionally `id_field`). Decontamination checks
training data against every registered set; the evaluation harness reads the same items."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.paths import PROJECT_ROOT, corpus_dir

from .items import EvalItem
from .readers import READERS, EvalSetError

DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "evalsets.yaml"


@dataclass(frozen=True)
class EvalSetSpec:
    name: str
    reader: str
    path: Path                     # resolved
    text_fields: tuple[str, ...] = ()
    id_field: str | None = None
    description: str = field(default="", compare=False)

    def read(self) -> list[EvalItem]:
        items = list(READERS[self.reader](self.path, benchmark=self.name,
                                          text_fields=list(self.text_fields) or None,
                                          id_field=self.id_field))
        ids = [it.item_id for it in items]
        if len(set(ids)) != len(ids):
            raise EvalSetError(f"{self.name}: item ids are not unique in {self.path}")
        return items


_KEYS = {"reader", "path", "text_fields", "id_field", "description"}


def parse_registry(data: dict, corpus: Path | None = None, where: str = "config") -> dict[str, EvalSetSpec]:
    """Specs from the mapping `{sets: {name: {reader, path, [text_fields], [id_field]}}}`."""
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise EvalSetError(f"{where}: expected a top-level `sets:` mapping")
    unknown_top = set(data) - {"sets"}
    if unknown_top:
        raise EvalSetError(f"{where}: unknown top-level key(s) {sorted(unknown_top)}")
    base = Path(corpus) if corpus else corpus_dir()
    out: dict[str, EvalSetSpec] = {}
    for name, s in data["sets"].items():
        if not isinstance(s, dict):
            raise EvalSetError(f"{where}: set {name!r} must be a mapping")
        unknown = set(s) - _KEYS
        if unknown:
            raise EvalSetError(f"{where}: set {name!r}: unknown key(s) {sorted(unknown)}; "
                               f"known: {sorted(_KEYS)}")
        if s.get("reader") not in READERS:
            raise EvalSetError(f"{where}: set {name!r}: reader {s.get('reader')!r} is not one of "
                               f"{sorted(READERS)}")
        if not s.get("path"):
            raise EvalSetError(f"{where}: set {name!r} needs a `path`")
        p = Path(str(s["path"]))
        fields = s.get("text_fields") or ()
        if isinstance(fields, str):
            fields = [f.strip() for f in fields.split(",") if f.strip()]
        if s["reader"] in ("jsonl", "parquet") and not fields:
            raise EvalSetError(f"{where}: set {name!r} ({s['reader']}) needs `text_fields`")
        out[str(name)] = EvalSetSpec(str(name), s["reader"], p if p.is_absolute() else base / p,
                                     tuple(fields), s.get("id_field"), s.get("description", ""))
    return out


def load_registry(path: str | Path | None = None, corpus: Path | None = None) -> dict[str, EvalSetSpec]:
    """The registered sets from `path` (default `configs/evalsets.yaml`)."""
    p = Path(path) if path else DEFAULT_CONFIG
    if not p.is_file():
        raise EvalSetError(f"evaluation set registry not found: {p}")
    return parse_registry(yaml.safe_load(p.read_text()) or {}, corpus, where=str(p))


def user_set(name: str, path: str | Path, text_fields: list[str] | str,
             id_field: str | None = None) -> EvalSetSpec:
    """A set named on a command line: JSONL or Parquet by suffix, with its text fields."""
    p = Path(path)
    reader = "parquet" if p.suffix == ".parquet" or p.is_dir() else "jsonl"
    fields = text_fields.split(",") if isinstance(text_fields, str) else list(text_fields)
    if not fields:
        raise EvalSetError(f"{name}: a user evaluation set needs text fields")
    return EvalSetSpec(name, reader, p, tuple(f.strip() for f in fields), id_field)


def read_sets(specs: dict[str, EvalSetSpec] | None = None,
              names: list[str] | None = None) -> dict[str, list[EvalItem]]:
    """Items of the named (default: all) registered sets."""
    specs = specs if specs is not None else load_registry()
    for n in names or []:
        if n not in specs:
            raise EvalSetError(f"unknown evaluation set {n!r}; registered: {sorted(specs)}")
    return {n: specs[n].read() for n in (names or list(specs))}
