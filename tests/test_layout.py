"""The package layout reads top-down (docs/ARCHITECTURE.md): ground floor -> stages in flow order ->
roof -> entry points. A library module may import its own layer or a layer below it, never one
above; `fixtures/` is for tests and benchmarks only; the trainer imports neither Spark nor the mixer;
importing the ground floor's package does not start to import Spark.

Imports are read from the source with `ast` (function-level imports included), so a lazy import
inside a function counts like one at the top of the file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.imports import imports, module_name
from core.paths import PROJECT_ROOT

# Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS = [
    ("core", 0), ("evalsets", 0),                                # ground floor
    ("curation.extract", 1), ("curation.dedup", 2), ("curation.filters", 3),
    ("curation.decontaminate", 4), ("curation", 1),              # `curation` itself: its package file
    ("classifiers", 5), ("mixer", 6), ("trainer", 7),
    ("pipeline", 8),                                             # the roof: knows every stage
    ("jobs", 9), ("notebooks", 9),                               # entry points
]
LIBRARY = ("core", "evalsets", "curation", "classifiers", "mixer", "trainer", "pipeline")
ENTRY_POINTS = ("jobs", "notebooks")
PROJECT = LIBRARY + ENTRY_POINTS + ("fixtures",)


def layer(module: str) -> int | None:
    for prefix, level in LAYERS:   # longest prefixes come before their parents in LAYERS
        if module == prefix or module.startswith(prefix + "."):
            return level
    return None


def sources(*tops: str) -> list[Path]:
    files = []
    for top in tops:
        d = PROJECT_ROOT / top
        if d.is_dir():
            files += sorted(p for p in d.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def project_imports(*tops: str):
    for path in sources(*tops):
        for line, mod in imports(path):
            if mod.split(".")[0] in PROJECT:
                yield path, line, mod


def test_the_layer_table_covers_every_package():
    missing = [t for t in LIBRARY + ENTRY_POINTS if layer(t) is None]
    assert not missing
    # and the resolver sees through `from package import module` and relative imports
    assert ("core.paths" in [m for _, m in imports(PROJECT_ROOT / "core" / "spark.py")])


def test_no_library_module_imports_a_layer_above_it():
    upward = []
    for path, line, mod in project_imports(*LIBRARY, *ENTRY_POINTS):
        me = module_name(path)
        if mod.split(".")[0] == "fixtures":
            continue  # its own test below
        mine, theirs = layer(me), layer(mod)
        if theirs is not None and theirs > mine:
            upward.append(f"{path.relative_to(PROJECT_ROOT)}:{line}: {me} (layer {mine}) imports "
                          f"{mod} (layer {theirs})")
    assert not upward, "imports of a layer above:\n" + "\n".join(upward)


def test_fixtures_are_used_only_by_tests_and_benchmarks():
    bad = [f"{p.relative_to(PROJECT_ROOT)}:{line}: {mod}"
           for p, line, mod in project_imports(*LIBRARY, *ENTRY_POINTS)
           if mod.split(".")[0] == "fixtures"]
    assert not bad, "library code imports fixtures:\n" + "\n".join(bad)


def test_trainer_imports_no_spark_and_no_mixer():
    bad = []
    for path in sources("trainer"):
        for line, mod in imports(path):
            if mod.split(".")[0] in ("pyspark", "delta", "mixer", "pipeline", "jobs"):
                bad.append(f"{path.relative_to(PROJECT_ROOT)}:{line}: {mod}")
    assert not bad, "\n".join(bad)


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a mixer module that imports the pipeline is reported."""
    fake = PROJECT_ROOT / "mixer" / "_layout_probe.py"
    assert not fake.exists()
    monkeypatch.setattr(sys.modules[__name__], "sources",
                        lambda *tops: [fake] if "mixer" in tops else [])
    fake.write_text("def f():\n    from pipeline.runner import Stage\n")
    try:
        with pytest.raises(AssertionError, match="mixer._layout_probe .*imports pipeline.runner"):
            test_no_library_module_imports_a_layer_above_it()
    finally:
        fake.unlink()


@pytest.mark.parametrize("module", ["core", "core.paths", "core.config", "core.token_shards",
                                    "trainer.data", "trainer.loop", "trainer.posttrain_data",
                                    "curation.dedup.exact", "curation.filters.repetition"])
def test_importing_the_ground_floor_or_the_trainer_does_not_import_spark(module):
    """The trainer may use the stages' engine-free modules (post-training data reuses the filters
    and dedup), so those must import without Spark too."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'mixer')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]", f"import {module} loads {out}"


@pytest.mark.parametrize("path, function, most", [("curation/dedup/stage.py", "dedup_documents", 60),
                                                  ("mixer/build.py", "build_mix", 90)])
def test_the_carved_stage_functions_stay_carved(path, function, most):
    """The two long functions issue 12 carved into named steps (200 and 237 lines before) stay a
    list of calls: a new step is a function of its own, not a block inlined here."""
    import ast
    tree = ast.parse((PROJECT_ROOT / path).read_text())
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    assert found, f"{path} has no function {function}"
    n_lines = found[0].end_lineno - found[0].lineno + 1
    assert n_lines <= most, f"{path}:{function} is {n_lines} lines (at most {most})"
