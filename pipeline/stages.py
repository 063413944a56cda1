"""The curation pipeline as a list of stages, built from the pipeline config.

[derive.<name>: training files derived from the corpus, e.g. the MATH training split]
extract.<source> (one per source) -> documents (union) -> dedup -> decontaminate -> filter -> score
  -> mix.<name> (one per mix spec: pretrain, anneal) -> train -> report

Each stage calls the SAME library entry point as its job and notebook (`run_<stage>(spark, input,
output, config=..., stats_path=...)`); the only code here is the glue that names the tables.
Until a stage's module exists in the checkout, `run_stages` stops before running anything and names
the missing stage.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import yaml

from pipeline.config import (DERIVED, corpus_path, deep_update, project_path, stage_config,
                             table_path, work_path)
from pipeline.runner import Stage
from core.paths import PROJECT_ROOT
from trainer.config import set_path  # the trainer CLI's own dotted-key setter

# Where each stage's implementation lives ("module:function") and the issue that builds it.
ENTRIES = {
    "extract": ("curation.extract.stage:run_extract", "#2"),
    "documents": ("pipeline.stages:union_documents", ""),
    "dedup": ("curation.dedup.stage:run_dedup", "#3"),
    "decontaminate": ("curation.decontaminate.stage:run_decontaminate", "#15"),
    "filter": ("curation.filters.stage:run_filter", "#4"),
    "models": ("classifiers.train:main", "#5"),
    "score": ("classifiers.stage:run_score", "#5"),
    "mix": ("mixer.build:run_mix", "#6"),
    "train": ("trainer.run:main", "#7"),
    "report": ("pipeline.report:build_report", ""),
}

# The source files whose content is each stage's code version (a change re-runs the stage), with
# every project module they import (pipeline/runner.py: code_version).
CODE = {
    "extract": ["curation/extract"],
    "dedup": ["curation/dedup"],
    "decontaminate": ["curation/decontaminate"],
    "filter": ["curation/filters"],
    "score": ["classifiers"],
}


def stats_of(path: str) -> str:
    return path.rstrip("/") + "_stats"


# ----------------------------------------------------------------------------- glue per stage

def public(config: dict) -> dict:
    """A stage config without the pipeline's own bookkeeping keys (those start with `_`; they
    are part of the fingerprint but not of the stage's config)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _call_extract(ctx, source: dict):
    opts = dict(source.get("options") or {})
    return ctx.entry(ctx.spark, ctx.inputs, ctx.outputs[0], config=public(ctx.config) or None,
                     stats_path=ctx.stage.stats_path, source=source["name"],
                     overwrite=ctx.overwrite, **opts)


def union_documents(spark, inputs: list[str], output: str, stats_path: str | None = None,
                    overwrite: bool = False):
    """The per-source extracted tables as one `documents` table (one overwrite commit)."""
    from core.stats import RunStats, count_by
    from core.tables import check_input_not_in_output, claim_output, read_table, write_table
    check_input_not_in_output(inputs, output)
    claim_output(spark, output, "documents", overwrite)
    stats = RunStats("documents")
    stats.claim(spark, stats_path, overwrite)
    df = None
    for p in inputs:
        t = read_table(spark, p)
        df = t if df is None else df.unionByName(t, allowMissingColumns=True)
    write_table(df, output, job="documents",
                user_metadata={"curation.job": "documents", "run_id": stats.run_id})
    out = read_table(spark, output)
    stats.update(count_by(out, "source"), prefix="documents.source.")
    stats.set("documents.out", sum(v for k, v in stats.counters.items()
                                   if k.startswith("documents.source.")))
    stats.record(spark, stats_path)
    return stats


def _call_documents(ctx):
    return ctx.entry(ctx.spark, ctx.inputs, ctx.outputs[0], stats_path=ctx.stage.stats_path,
                     overwrite=ctx.overwrite)


def _call_derive(ctx):
    """Write one derived training file (e.g. the MATH training split) with its own function."""
    return {"file": str(ctx.entry(ctx.outputs[0], ctx.config.get("_corpus")))}


def _call_decontaminate(ctx):
    return ctx.entry(ctx.spark, ctx.inputs[0], ctx.outputs[0], config=public(ctx.config) or None,
                     stats_path=ctx.stage.stats_path, corpus=ctx.config.get("_corpus"),
                     overwrite=ctx.overwrite)


def _call_table_stage(ctx):
    return ctx.entry(ctx.spark, ctx.inputs[0], ctx.outputs[0], config=public(ctx.config) or None,
                     stats_path=ctx.stage.stats_path, overwrite=ctx.overwrite)


def mix_spec(cfg: dict, name: str) -> dict:
    """The mix spec for one stream: the spec YAML with the pipeline's overrides on top (the
    mixer validates keys). The spec's `input` table is replaced by this run's scored table."""
    m = cfg["mix"][name]
    path = project_path(m["spec"])
    if not os.path.isfile(path):
        return {"_missing_config": m["spec"]}
    spec = deep_update(yaml.safe_load(open(path)) or {}, m.get("overrides"))
    if cfg.get("mix_kept_only", True):
        # the filtered/scored tables keep every row with `keep`: mix only the kept ones
        for src in spec.get("sources") or []:
            f = src.get("filter")
            src["filter"] = f"keep AND ({f})" if f else "keep"
    return spec


def _call_mix(ctx):
    if "_missing_config" in ctx.config:
        raise FileNotFoundError(f"mix spec {ctx.config['_missing_config']} not found "
                                "(set mix.<name>.spec in the pipeline config)")
    return ctx.entry(ctx.spark, ctx.inputs[0], ctx.outputs[0], config=public(ctx.config),
                     stats_path=ctx.stage.stats_path, overwrite=ctx.overwrite)


def trainer_config(cfg: dict, mix_dirs: dict[str, str], out_dir: str) -> dict:
    """The trainer YAML with the pipeline's overrides (nested mappings are merged; dotted keys
    such as `stages.0.tokens` set one value, list indices included) and this run's paths."""
    base = yaml.safe_load(open(project_path(cfg["trainer"]["config"]))) or {}
    over = cfg["trainer"].get("overrides") or {}
    tc = deep_update(base, {k: v for k, v in over.items() if "." not in k})
    for k, v in over.items():
        if "." in k:
            set_path(tc, k, v)
    tc = deep_update(tc, {"out_dir": out_dir})
    for st in tc.get("stages", []) if isinstance(tc.get("stages"), list) else []:
        name = st.get("name")
        if name in mix_dirs:
            st["data"] = mix_dirs[name]
    return tc


def _call_train(ctx):
    """`python -m trainer.run --config FILE` in its own process (the trainer knows nothing of
    Spark); the trainer resumes from its own checkpoints if a previous run was killed."""
    if "_missing_config" in ctx.config:
        raise FileNotFoundError(f"trainer config {ctx.config['_missing_config']} not found "
                                "(set trainer.config in the pipeline config)")
    out_dir = os.path.dirname(ctx.outputs[0])
    cfg_file = os.path.join(out_dir, "pipeline_trainer_config.yaml")
    if not ctx.resuming and os.path.isdir(out_dir):
        # new mix or config: start fresh (the trainer would refuse to resume), but only in a
        # folder this stage made (it holds the config file the stage writes) or an empty one
        if not os.path.isfile(cfg_file) and os.listdir(out_dir) and not ctx.overwrite:
            from core.tables import OutputRefused
            raise OutputRefused(f"refusing to clear {out_dir}: it holds files the pipeline's train "
                                f"stage did not write ({', '.join(sorted(os.listdir(out_dir))[:3])}"
                                f"); choose another tables.train, or pass --overwrite")
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(cfg_file, "w") as f:
        yaml.safe_dump(public(ctx.config), f, sort_keys=False)
    py = ctx.stage.config.get("_python") or sys.executable
    cmd = [py, "-m", "trainer.run", "--config", cfg_file,
           "--resume", "auto" if ctx.resuming else "never"]
    print("[pipeline] " + " ".join(cmd), flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    subprocess.run(cmd, check=True, cwd=str(PROJECT_ROOT), env=env)
    return {"config": cfg_file}


def _call_train_model(ctx, kind: str):
    """`python -m classifiers.train <kind> --recipe default --out DIR`, in this process."""
    out = os.path.dirname(ctx.outputs[0])
    args = [kind, "--recipe", "default", "--out", out]
    if ctx.config.get("corpus"):
        args += ["--corpus", ctx.config["corpus"]]
    rc = ctx.entry(args)
    if rc not in (0, None):
        raise RuntimeError(f"classifiers.train {kind} exited with {rc}")
    return {"model": out}


def _call_report(ctx):
    return ctx.entry(ctx.spark, ctx.stage.config["_pipeline"], ctx.outputs[0])


# ----------------------------------------------------------------------------- the list

def build_stages(cfg: dict) -> list[Stage]:
    stages: list[Stage] = []

    def add(name, key, call, inputs, outputs, config=None, entry=None, **kw):
        entry, issue = (entry, "#15") if entry else ENTRIES[key]
        stages.append(Stage(name=name, entry=entry, call=call, inputs=list(inputs),
                            outputs=list(outputs), config=config or {}, issue=issue, **kw))

    extract_cfg = stage_config(cfg, "extract")
    corpus = corpus_path(cfg, ".") if cfg.get("corpus") else None
    extracted = []
    for src in cfg["sources"]:
        out = table_path(cfg, "extracted", src["name"])
        extracted.append(out)
        if src.get("derived"):
            fn, reads, fname = DERIVED[src["derived"]]
            derived = table_path(cfg, "derived", fname)
            add(f"derive.{src['derived']}", "derive", _call_derive,
                [corpus_path(cfg, p) for p in reads], [derived],
                {"_corpus": corpus}, entry=fn, code=["evalsets"])
            inputs = [derived]
        else:
            inputs = [corpus_path(cfg, p) for p in src["paths"]]
        c = dict(deep_update(extract_cfg, src.get("config")), _source=src)
        add(f"extract.{src['name']}", "extract", functools.partial(_call_extract, source=src),
            inputs, [out], c, stats_path=stats_of(out), code=CODE["extract"])
    docs = table_path(cfg, "documents")
    add("documents", "documents", _call_documents, extracted, [docs], stats_path=stats_of(docs),
        code=["pipeline/stages.py"])
    prev = docs
    models = {}
    for kind in ("quality", "domain"):
        given = cfg["classifiers"].get(kind)
        if given:
            models[kind] = project_path(given)
            continue
        models[kind] = table_path(cfg, "models", kind)
        add(f"models.{kind}", "models", functools.partial(_call_train_model, kind=kind), [],
            [os.path.join(models[kind], "metadata.json")],
            {"recipe": "default", "corpus": corpus_path(cfg, ".") if cfg.get("corpus") else None},
            code=["classifiers"])
    for name, key in (("dedup", "deduped"), ("decontaminate", "decontaminated"),
                      ("filter", "filtered"), ("score", "scored")):
        out = table_path(cfg, key)
        conf = stage_config(cfg, name)
        inputs = [prev]
        call = _call_table_stage
        if name == "score":
            conf = deep_update({"models": dict(models)}, conf)  # the user's score config wins
            inputs += [os.path.join(conf["models"][k], "metadata.json") for k in models]
        if name == "filter":
            # token KL (off by default) reads a built reference: an input, so a rebuilt
            # reference re-runs the filter; its path made absolute for the stage
            from curation.filters.defaults import DEFAULTS as FILTER_DEFAULTS
            tk = (conf.get("token_kl") or {})
            if tk.get("enabled", FILTER_DEFAULTS["token_kl"]["enabled"]):
                ref = project_path(tk.get("reference") or "models/token_kl")
                conf = deep_update(conf, {"token_kl": {"reference": ref}})
                inputs += [os.path.join(ref, "manifest.json"), os.path.join(ref, "counts.npz")]
        if name == "decontaminate":
            from curation.decontaminate.stage import benchmark_files
            inputs += benchmark_files(public(conf), corpus)   # a changed benchmark re-runs it
            conf = dict(conf, _corpus=corpus)
            call = _call_decontaminate
        add(name, name, call, inputs, [out], conf,
            stats_path=stats_of(out), code=CODE[name])
        prev = out
    scored = prev
    mix_dirs = {}
    for mname in cfg["mix"]:
        out = table_path(cfg, "mix", mname)
        mix_dirs[mname] = out
        add(f"mix.{mname}", "mix", _call_mix, [scored], [out], mix_spec(cfg, mname),
            stats_path=stats_of(out), code=["mixer"])
    train_dir = table_path(cfg, "train")
    tcfg = trainer_config(cfg, mix_dirs, train_dir) if os.path.isfile(
        project_path(cfg["trainer"]["config"])) else {"_missing_config": cfg["trainer"]["config"]}
    if cfg["trainer"].get("python"):
        tcfg["_python"] = cfg["trainer"]["python"]
    add("train", "train", _call_train, list(mix_dirs.values()),
        [os.path.join(train_dir, "metrics.jsonl")], tcfg, code=["trainer"])
    if cfg["report"]["enabled"]:
        add("report", "report", _call_report, [], [table_path(cfg, "report", "index.html")],
            {"_pipeline": cfg}, always=True, code=["pipeline/report"])
    return stages


def check_values(stages: list[Stage]) -> None:
    """Every stage's config against its stage's declared schema (types and ranges), the mix specs
    and the trainer config included, so a bad value anywhere fails before Spark starts or any
    stage runs; the error names the stage. Stages whose config file is missing are left to
    `missing_stages`."""
    from core.config import ConfigError, check_schema, merge
    for st in stages:
        key = st.name.split(".")[0]
        conf = public(st.config)
        if "_missing_config" in st.config:
            continue
        try:
            if key == "extract":
                from curation.extract.stage import DEFAULTS, SCHEMA
                check_schema(merge(DEFAULTS, conf), SCHEMA)
            elif key == "dedup":
                from curation.dedup.stage import resolve_config
                resolve_config(conf)
            elif key == "decontaminate":
                from curation.decontaminate.stage import resolve_config
                resolve_config(conf)
            elif key == "filter":
                from curation.filters.defaults import DEFAULTS, SCHEMA
                check_schema(merge(DEFAULTS, conf), SCHEMA)
            elif key == "score":
                from classifiers.stage import DEFAULTS, SCHEMA
                check_schema(merge(DEFAULTS, conf), SCHEMA)
            elif key == "mix":
                from mixer.spec import load_spec
                load_spec(conf)
            elif key == "train":
                from trainer.config import load_dict
                load_dict(conf)
        except ConfigError as e:
            raise ConfigError(f"{st.name}: {e}") from None
