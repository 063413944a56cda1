"""Declared config values: every key's type and range written once, checked before any work.

A `Rule` says what one key accepts (its type, a numeric range, a set of choices, whether it may be
null). Stage configs (plain dicts merged over their defaults) declare a schema, a mapping from a
dotted key to its rule, and call `check_schema`; the trainer's dataclass configs attach the rule to
each field (`option(...)`) and call `check_dataclass`. Either way a bad value is refused before any
work starts, with one message naming the key, the value and what is allowed:

    minhash.verify_threshold = 1.5: must be a number in (0, 1]

No stage is imported here (the ground floor), and nothing but the standard library.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, dataclass, field
from typing import Any, Iterable, get_type_hints


class ConfigError(ValueError):
    """A config value or key that is not allowed (the message names key, value and rule)."""


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class Rule:
    """What one key accepts. `type` is int, float (ints accepted), str, bool, list, dict, a tuple
    of these (any of them) or None (anything); bounds are inclusive (`ge`, `le`) or exclusive (`gt`, `lt`); `choices` lists the
    accepted values; `null` allows None; `items` is the rule of every item of a list; `length` the
    exact length of a list; `nonempty` refuses "" and []."""
    type: Any = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    null: bool = False
    items: "Rule | None" = None
    length: int | None = None
    nonempty: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            s = "one of " + ", ".join(_show(c) for c in self.choices)
        else:
            if isinstance(self.type, tuple):
                s = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in self.type)
            else:
                s = _TYPE_NAMES.get(self.type, "any value")
            lo = f"[{_num(self.ge)}" if self.ge is not None else (
                f"({_num(self.gt)}" if self.gt is not None else None)
            hi = f"{_num(self.le)}]" if self.le is not None else (
                f"{_num(self.lt)})" if self.lt is not None else None)
            if lo and hi:
                s += f" in {lo}, {hi}"
            elif lo:
                s += (f" >= {_num(self.ge)}" if self.ge is not None else f" > {_num(self.gt)}")
            elif hi:
                s += (f" <= {_num(self.le)}" if self.le is not None else f" < {_num(self.lt)}")
            if self.length is not None:
                s += f" of {self.length} items"
            if self.items is not None:
                s += f" (each {self.items.describe()})"
            if self.nonempty:
                s = "a non-empty " + s.split(" ", 1)[1] if s.startswith(("a ", "an ")) else s
        if self.null:
            s += " or null"
        return s

    def check(self, key: str, value):
        """The value, converted where YAML reads a number as a string (`1e-3`); ConfigError when
        it does not fit."""
        if value is None:
            if self.null:
                return None
            raise ConfigError(f"{key} = null: must be {self.describe()}")
        v = _coerce(value, self.type)
        if isinstance(value, str) and isinstance(v, (int, float)):
            value = v     # show the number YAML meant, not the string it read
        if self.choices is not None:
            if not any(v == c and isinstance(v, bool) == isinstance(c, bool)
                       for c in self.choices):
                raise ConfigError(f"{key} = {_show(value)}: must be {self.describe()}")
            return v
        if self.type is not None and not _is_type(v, self.type):
            raise ConfigError(f"{key} = {_show(value)}: must be {self.describe()}")
        if self.type in (int, float):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key} = {_show(value)}: must be {self.describe()}")
            bad = ((self.ge is not None and v < self.ge) or (self.gt is not None and v <= self.gt)
                   or (self.le is not None and v > self.le) or (self.lt is not None and v >= self.lt))
            if bad:
                raise ConfigError(f"{key} = {_show(value)}: must be {self.describe()}")
        if self.nonempty and not v:
            raise ConfigError(f"{key} = {_show(value)}: must be {self.describe()}")
        if isinstance(v, list):
            if self.length is not None and len(v) != self.length:
                raise ConfigError(f"{key} = {_show(value)}: must be {self.describe()}")
            if self.items is not None:
                v = [self.items.check(f"{key}.{i}", x) for i, x in enumerate(v)]
        return v


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _show(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, str) else str(v)


def _is_type(v, t) -> bool:
    if isinstance(t, tuple):
        return any(_is_type(v, x) for x in t)
    if t is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, t)


def _coerce(v, t):
    """YAML 1.1 reads `1e-3` (no dot) as a string: a string that parses as the declared number
    type is that number; an integral float is accepted for an int key (`1e6` tokens)."""
    if t in (int, float) and isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        if t is int:
            return int(f) if f.is_integer() else v
        return f
    if t is int and isinstance(v, float) and v.is_integer():
        return int(v)
    if t is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


# ------------------------------------------------------------------------- dict configs (stages)

def get_path(cfg: dict, key: str):
    node = cfg
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return MISSING
        node = node[p]
    return node


def _set_path(cfg: dict, key: str, value) -> None:
    parts = key.split(".")
    node = cfg
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value


def check_schema(cfg: dict, schema: dict[str, Rule], where: str = "") -> dict:
    """Check every declared key of `cfg` (a merged stage config) in place; keys absent from `cfg`
    are skipped (a section the stage does not have). Returns `cfg` with numbers converted."""
    for key, rule in schema.items():
        v = get_path(cfg, key)
        if v is MISSING:
            continue
        _set_path(cfg, key, rule.check(where + key, v))
    return cfg


# -------------------------------------------------------------------- dataclass configs (trainer)

def option(default=MISSING, *, factory=MISSING, **rule) -> Any:
    """A dataclass field with its rule: `lr: float = option(3e-4, gt=0)`. The rule's type is the
    field's annotation unless `type=` is given."""
    kw = {"metadata": {"rule": rule}}
    if factory is not MISSING:
        return field(default_factory=factory, **kw)
    return field(default=default, **kw)


def _rule_for(f: dataclasses.Field, hint) -> Rule:
    spec = dict(f.metadata.get("rule", {}))
    if "type" not in spec:
        t, null = _unpack(hint)
        spec["type"] = t
        spec.setdefault("null", null)
    if isinstance(spec.get("items"), dict):
        spec["items"] = Rule(**spec["items"])
    if spec.get("choices") is not None:
        spec["choices"] = tuple(spec["choices"])
    return Rule(**spec)


def _unpack(hint) -> tuple[Any, bool]:
    """(type, nullable) of an annotation such as `int | None`, `float`, `list`, `Any`."""
    args = getattr(hint, "__args__", None)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        t = rest[0] if len(rest) == 1 else None
        return (t if t in _TYPE_NAMES else None), True
    if hint in _TYPE_NAMES:
        return hint, False
    return None, False


def check_dataclass(obj, where: str = "") -> None:
    """Check (and convert in place) every field of a dataclass instance and of the dataclasses it
    holds, including those in lists."""
    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        key = where + f.name
        if dataclasses.is_dataclass(v):
            check_dataclass(v, key + ".")
            continue
        if isinstance(v, list) and v and all(dataclasses.is_dataclass(x) for x in v):
            for i, x in enumerate(v):
                check_dataclass(x, f"{key}.{i}.")
            continue
        setattr(obj, f.name, _rule_for(f, hints[f.name]).check(key, v))


def rules_of(cls, where: str = "") -> Iterable[tuple[str, Rule]]:
    """(key, rule) of every field of a dataclass type: for documentation and tests."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from rules_of(hints[f.name], f"{where}{f.name}.")
        else:
            yield where + f.name, _rule_for(f, hints[f.name])
