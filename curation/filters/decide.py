"""Signals + thresholds -> `keep` and `drop_reasons`, with no signal recomputed.

Every rule reads one stored signal column and one config value; a reason is the config path of the
threshold that fired (`gopher.min_words`, `repetition.max_dup_line_frac`, `url.block_categories`,
...), so a rejected document says exactly which setting to change. A threshold set to null turns its
rule off; a null signal never fires. Rule groups (`repetition`, `gopher`, `c4`, `fineweb`,
`dirty_words`, `token_kl`, `url`, `pii_domain`) apply per source through `source_rule_sets_map`
and `rule_sets_map` (a `stream` column, when present, is looked up before `source`). Two reasons
apply to every document: `error` (its signals could not be computed) and `empty_text`.

The same rules are evaluated by `decide_spark` (Spark column expressions, no Python UDF: re-deciding
a large annotated table is one cheap pass) and `decide_pandas` (for tests and notebooks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from curation.filters.repetition import DUP_NS, TOP_NS


@dataclass(frozen=True)
class Rule:
    group: str
    key: str               # config key under `group` holding the threshold
    column: str            # signal column
    kind: str              # "max" (drop if > t), "min" (drop if < t), "flag" (drop if true and t),
    #                        "atleast" (drop if >= t), "overlap" (drop if array shares a value with t)
    cond: tuple = ()       # ("lang_in"|"lang_not_in", cfg key) or ("col_min", column, cfg key)
    cfg_group: str | None = None   # config section when it differs from the rule group

    @property
    def reason(self) -> str:
        return f"{self.cfg_group or self.group}.{self.key}"


RULES: list[Rule] = [
    *[Rule("repetition", f"max_{c}", c, "max") for c in
      ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac")],
    *[Rule("repetition", f"max_top_{n}gram_char_frac", f"top_{n}gram_char_frac", "max",
           ("lang_not_in", "ngram_exempt_langs")) for n in TOP_NS],
    *[Rule("repetition", f"max_dup_{n}gram_char_frac", f"dup_{n}gram_char_frac", "max",
           ("lang_not_in", "ngram_exempt_langs")) for n in DUP_NS],
    Rule("gopher", "min_words", "gopher_word_count", "min"),
    Rule("gopher", "max_words", "gopher_word_count", "max"),
    Rule("gopher", "min_mean_word_len", "gopher_mean_word_len", "min",
         ("lang_not_in", "word_length_exempt_langs")),
    Rule("gopher", "max_mean_word_len", "gopher_mean_word_len", "max",
         ("lang_not_in", "word_length_exempt_langs")),
    # Gopher: "greater than 0.1 for either the hash symbol or the ellipsis": one threshold, two rules
    Rule("gopher", "max_symbol_word_ratio", "gopher_hash_word_ratio", "max"),
    Rule("gopher", "max_symbol_word_ratio", "gopher_ellipsis_word_ratio", "max"),
    Rule("gopher", "max_bullet_line_frac", "gopher_bullet_line_frac", "max"),
    Rule("gopher", "max_ellipsis_line_frac", "gopher_ellipsis_line_frac", "max"),
    Rule("gopher", "min_alpha_word_frac", "gopher_alpha_word_frac", "min"),
    Rule("gopher", "min_stop_words", "gopher_stop_word_count", "min", ("lang_in", "stop_word_langs")),
    Rule("c4", "drop_lorem_ipsum", "c4_lorem_ipsum", "flag"),
    Rule("c4", "drop_curly_brace", "c4_curly_brace", "flag"),
    Rule("c4", "max_boilerplate_lines", "c4_boilerplate_line_count", "max"),
    Rule("c4", "min_sentences", "c4_sentence_count", "min"),
    Rule("fineweb", "min_terminal_punct_line_frac", "fineweb_terminal_punct_line_frac", "min"),
    Rule("fineweb", "max_short_line_frac", "fineweb_short_line_frac", "max"),
    Rule("fineweb", "max_dup_line_char_frac", "fineweb_dup_line_char_frac", "max"),
    Rule("fineweb", "max_newline_word_ratio", "fineweb_newline_word_ratio", "max"),
    Rule("dirty_words", "max_count", "dirty_word_count", "max"),
    Rule("dirty_words", "max_ratio", "dirty_word_ratio", "max"),
    Rule("token_kl", "max_excess", "token_kl_excess", "max", ("col_min", "token_count", "min_tokens")),
    Rule("url", "block_categories", "url_block_hits", "overlap"),
    Rule("url", "soft_banned_threshold", "url_soft_banned_count", "atleast"),
    Rule("pii_domain", "max_domain_pii_doc_share", "domain_pii_doc_share", "max",
         ("col_min", "domain_doc_count", "min_domain_docs"), cfg_group="pii"),
]
GROUPS = sorted({r.group for r in RULES})


def active_rules(cfg: dict) -> list[tuple[Rule, object]]:
    """(rule, threshold) for every rule whose threshold is set."""
    out = []
    for r in RULES:
        t = cfg[r.cfg_group or r.group][r.key]
        if t is None or (r.kind == "flag" and not t) or (r.kind == "overlap" and not t):
            continue
        out.append((r, t))
    return out


def validate_rule_sets(cfg: dict) -> None:
    from core.config import ConfigError
    sets = cfg["rule_sets_map"]
    for name, groups in sets.items():
        bad = set(groups) - set(GROUPS)
        if bad:
            raise ConfigError(f"rule_sets_map.{name}: unknown rule groups {sorted(bad)}; known: {GROUPS}")
    bad = set(cfg.get("pii", {}).get("rule_sets", [])) - set(sets)
    if bad:
        raise ConfigError(f"pii.rule_sets: unknown rule sets {sorted(bad)}; known: {sorted(sets)}")
    if "default" not in cfg["source_rule_sets_map"]:
        raise ConfigError("source_rule_sets_map needs a 'default' entry")
    for src, name in cfg["source_rule_sets_map"].items():
        if name not in sets:
            raise ConfigError(f"source_rule_sets_map.{src} -> {name!r}: no such rule set; known: {sorted(sets)}")


# ---------------------------------------------------------------- Spark
def decide_spark(df, cfg: dict):
    """`df` (an annotated table) with `keep` and `drop_reasons` (re)computed from `cfg`."""
    from pyspark.sql import functions as F

    validate_rule_sets(cfg)
    sets = cfg["rule_sets_map"]
    smap = cfg["source_rule_sets_map"]
    mapping = F.create_map(*[x for k, v in smap.items() for x in (F.lit(k), F.lit(v))])
    keys = [c for c in ("stream", "source") if c in df.columns]
    rs = F.coalesce(*[mapping[F.col(k)] for k in keys], F.lit(smap["default"]))
    lang = F.col("filter_lang")
    conds = []
    for r, t in active_rules(cfg):
        if r.column not in df.columns:
            continue
        c = F.col(r.column)
        if r.kind == "max":
            fire = c > F.lit(t)
        elif r.kind == "min":
            fire = c < F.lit(t)
        elif r.kind == "atleast":
            fire = c >= F.lit(t)
        elif r.kind == "flag":
            fire = c
        else:  # overlap
            fire = F.arrays_overlap(c, F.array(*[F.lit(x) for x in t]))
        section = cfg[r.cfg_group or r.group]
        if r.cond:
            if r.cond[0] == "lang_in":
                fire = fire & lang.isin(list(section[r.cond[1]]))
            elif r.cond[0] == "lang_not_in":
                fire = fire & (lang.isNull() | ~lang.isin(list(section[r.cond[1]])))
            elif r.cond[0] == "col_min" and r.cond[1] in df.columns:
                fire = fire & (F.col(r.cond[1]) >= F.lit(section[r.cond[2]]))
        in_sets = [name for name, groups in sets.items() if r.group in groups]
        if not in_sets:
            continue
        fire = fire & rs.isin(in_sets)
        conds.append(F.when(fire, F.lit(r.reason)))
    tcol = cfg["text_column"]
    conds.insert(0, F.when(F.col("filter_error").isNotNull(), F.lit("error")))
    conds.insert(1, F.when(F.col(tcol).isNull() | (F.trim(F.col(tcol)) == ""), F.lit("empty_text")))
    reasons = F.array_distinct(F.array_compact(F.array(*conds)))
    return (df.drop(*[c for c in ("keep", "drop_reasons") if c in df.columns])
            .withColumn("drop_reasons", reasons)
            .withColumn("keep", F.size("drop_reasons") == 0))


# ---------------------------------------------------------------- pandas
def rule_sets_of(pdf: pd.DataFrame, cfg: dict) -> pd.Series:
    """The rule set of every row: `stream` (when present) or `source` through source_rule_sets_map."""
    smap = cfg["source_rule_sets_map"]
    rs = pd.Series([smap["default"]] * len(pdf), index=pdf.index, dtype=object)
    for k in ("source", "stream"):  # stream, when present, wins over source
        if k in pdf.columns:
            mapped = pdf[k].map(lambda v: smap.get(v) if isinstance(v, str) else None)
            rs = mapped.where(mapped.notna(), rs)
    return rs


def decide_pandas(pdf: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """The same decision over a pandas frame (tests, notebooks, small data)."""
    validate_rule_sets(cfg)
    sets = cfg["rule_sets_map"]
    n = len(pdf)
    rs = rule_sets_of(pdf, cfg)
    lang = pdf["filter_lang"] if "filter_lang" in pdf.columns else pd.Series([None] * n, index=pdf.index)
    reasons: list[list[str]] = [[] for _ in range(n)]
    tcol = cfg["text_column"]
    err = pdf["filter_error"].notna().to_numpy() if "filter_error" in pdf.columns else np.zeros(n, bool)
    empty = pdf[tcol].map(lambda t: not isinstance(t, str) or not t.strip()).to_numpy()
    for i in np.flatnonzero(err):
        reasons[i].append("error")
    for i in np.flatnonzero(empty):
        reasons[i].append("empty_text")
    for r, t in active_rules(cfg):
        if r.column not in pdf.columns:
            continue
        col = pdf[r.column]
        if r.kind == "overlap":
            ts = set(t)
            fire = col.map(lambda v: v is not None and bool(set(v) & ts)).to_numpy()
        else:
            v = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
            with np.errstate(invalid="ignore"):
                if r.kind == "max":
                    fire = v > t
                elif r.kind == "min":
                    fire = v < t
                elif r.kind == "atleast":
                    fire = v >= t
                else:
                    fire = np.nan_to_num(v, nan=0.0) != 0
            fire = fire & ~np.isnan(v)
        section = cfg[r.cfg_group or r.group]
        if r.cond:
            if r.cond[0] == "lang_in":
                fire = fire & lang.isin(list(section[r.cond[1]])).to_numpy()
            elif r.cond[0] == "lang_not_in":
                fire = fire & ~lang.isin(list(section[r.cond[1]])).to_numpy()
            elif r.cond[0] == "col_min" and r.cond[1] in pdf.columns:
                fire = fire & (pd.to_numeric(pdf[r.cond[1]]).fillna(-1).to_numpy() >= section[r.cond[2]])
        in_sets = [name for name, groups in sets.items() if r.group in groups]
        fire = fire & rs.isin(in_sets).to_numpy()
        for i in np.flatnonzero(fire):
            if r.reason not in reasons[i]:   # two rules may share one threshold (Gopher symbols)
                reasons[i].append(r.reason)
    out = pdf.drop(columns=[c for c in ("keep", "drop_reasons") if c in pdf.columns]).copy()
    out["drop_reasons"] = reasons
    out["keep"] = [not r for r in reasons]
    return out
