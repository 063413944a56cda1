"""The project's own import graph, read from the source with `ast` (imports inside functions
included, since the stages import lazily). The layout test checks it (tests/test_layout.py) and
the pipeline hashes a stage's code as every project file its modules reach
(pipeline/runner.py: code_version), so that an edit to a shared helper in core/ re-runs the
stages that use it."""
from __future__ import annotations

import ast
from pathlib import Path

from core.paths import PROJECT_ROOT


def module_name(path: Path) -> str:
    parts = list(path.resolve().relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_file(name: str) -> Path | None:
    """The file that defines project module `name` (a module or a package's __init__), or None."""
    p = PROJECT_ROOT.joinpath(*name.split("."))
    for f in (p.with_suffix(".py"), p / "__init__.py"):
        if f.is_file():
            return f
    return None


def is_module(name: str) -> bool:
    return module_file(name) is not None


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; `from a import b` names `a.b` when
    that is a module of the project, else `a`; relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((node.lineno, full if is_module(full) else base))
    return out


def reachable_files(files: list[Path]) -> list[Path]:
    """`files` and every project file they import, directly or not (with the packages' __init__
    files that importing runs), sorted; third-party and standard-library imports are left out."""
    seen: set[Path] = set()
    todo = [Path(f).resolve() for f in files]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if f.suffix != ".py" or not f.is_relative_to(PROJECT_ROOT):
            continue
        for _, mod in imports(f):
            parts = mod.split(".")
            for k in range(1, len(parts) + 1):      # a.b.c runs a/__init__, a/b/__init__, a/b/c
                dep = module_file(".".join(parts[:k]))
                if dep is not None and dep.resolve() not in seen:
                    todo.append(dep.resolve())
    return sorted(seen)
