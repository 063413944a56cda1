"""Several sources in one extraction job: `jobs/extract.py --sources FILE --base DIR_OR_URI`.

A sources file holds the same `sources:` list as the pipeline's config (configs/pipeline.yaml), one
entry per source:

    sources:
      - name: crawl                     # the source name; its run replaces only its own rows
        paths: [crawl/*.warc.gz]        # globs, folders, files, URIs or *.paths.gz listings;
                                        # relative ones are joined to --base
        options: {fmt: warc}            # run_extract's keyword arguments: fmt, text_field, lang,
                                        # paths_base
        config: {text: {lines_per_doc: 5}}   # this source's overrides of the extract config

Each source is extracted in turn into the one documents table, exactly as one `jobs/extract.py
--input ... --source NAME` per source would, but in one Spark application: on a cluster every
application pays the start of its driver and executors (about a minute of CPU each on the test
cluster), so a crawl plus a few text datasets cost one start instead of one per source. Every entry
is checked, and every input listed, before the first source is extracted: a typo in the third
entry fails the job before the first one writes anything.
"""
from __future__ import annotations

from core import fs
from core.config import load_yaml, merge
from core.validate import ConfigError, check_schema

KEYS = {"name", "paths", "options", "config"}
OPTIONS = {"fmt", "text_field", "lang", "paths_base"}


def load_sources(path: str) -> list[dict]:
    """The `sources:` list of a YAML file, checked (see check_sources)."""
    data = load_yaml(path)
    if set(data) != {"sources"}:
        raise ConfigError(f"{path}: a sources file holds one key, `sources` (a list); "
                          f"got {sorted(data)}")
    return check_sources(data["sources"], where=str(path))


def check_sources(entries, where: str = "sources") -> list[dict]:
    """Entries with unique non-empty names, a non-empty `paths` list and only the known keys."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: `sources` must be a non-empty list of mappings")
    names = []
    for i, s in enumerate(entries):
        if not isinstance(s, dict):
            raise ConfigError(f"{where}: source #{i + 1} must be a mapping, got {s!r}")
        name = s.get("name")
        if not name or not isinstance(name, str):
            raise ConfigError(f"{where}: source #{i + 1} needs a `name`")
        extra = set(s) - KEYS
        if extra:
            hint = (" (`derived` sources exist only in the pipeline)" if "derived" in extra else "")
            raise ConfigError(f"{where}: source {name!r}: unknown keys {sorted(extra)}; known: "
                              f"{sorted(KEYS)}{hint}")
        paths = s.get("paths")
        if isinstance(paths, str):
            paths = [paths]
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{where}: source {name!r} needs `paths`, a list of paths or globs")
        opts = s.get("options") or {}
        if not isinstance(opts, dict) or set(opts) - OPTIONS:
            raise ConfigError(f"{where}: source {name!r}: options must be a mapping of "
                              f"{sorted(OPTIONS)}; got {opts!r}")
        if not isinstance(s.get("config") or {}, dict):
            raise ConfigError(f"{where}: source {name!r}: config must be a mapping")
        names.append(name)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: source names must be unique; repeated: {dup}")
    return [dict(s, paths=[s["paths"]] if isinstance(s["paths"], str) else list(s["paths"]))
            for s in entries]


def source_inputs(source: dict, base: str | None) -> list[str]:
    """The entry's paths, relative ones joined to `base` (a folder or URI)."""
    return [p if not base or fs.scheme(p) or p.startswith("/") else fs.join(base, p)
            for p in source["paths"]]


def run_extract_sources(spark, sources: list[dict], output_path: str, config: dict,
                        stats_path: str | None = None, *, base: str | None = None,
                        overwrite: bool = False, allow_shrink: bool = False) -> list:
    """Extract every source of `sources` into `output_path`, one after the other, in this
    session; returns each run's RunStats. Every config is checked and every input listed first."""
    from curation.extract.stage import SCHEMA, run_extract
    plan = []
    for s in sources:
        cfg = merge(config, s.get("config"), where=f"sources.{s['name']}.config.")
        check_schema(cfg, SCHEMA)
        inputs = source_inputs(s, base)
        opts = dict(s.get("options") or {})
        fs.expand(inputs, paths_base=opts.get("paths_base"))   # InputNotFound before any write
        plan.append((s["name"], inputs, cfg, opts))
    out = []
    for i, (name, inputs, cfg, opts) in enumerate(plan):
        print(f"[extract] source {i + 1}/{len(plan)}: {name}", flush=True)
        out.append(run_extract(spark, inputs, output_path, cfg, stats_path, source=name,
                               fmt=opts.get("fmt"), text_field=opts.get("text_field"),
                               lang=opts.get("lang"), paths_base=opts.get("paths_base"),
                               overwrite=overwrite, allow_shrink=allow_shrink))
    return out
