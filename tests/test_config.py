import pytest

from core.config import ConfigError, config_hash, merge


def test_merge_overrides_nested_and_rejects_unknown_keys():
    d = {"a": 1, "b": {"c": 2, "d": 3}}
    m = merge(d, {"b": {"c": 5}})
    assert m == {"a": 1, "b": {"c": 5, "d": 3}} and d["b"]["c"] == 2
    with pytest.raises(ConfigError, match="b.x"):
        merge(d, {"b": {"x": 1}})


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


# ---- declared values (core/validate.py): a bad value is refused before any work (issue 19) ------

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# (job, YAML text, the one line the job prints): each value used to be accepted and to empty or
# silently change the output, or to fail only inside Spark tasks after earlier steps ran
BAD_VALUES = [
    ("extract", "timeout_s: -1\n", "timeout_s = -1: must be a number >= 0"),
    ("extract", "max_bytes: 0\n", "max_bytes = 0: must be an integer >= 1"),
    ("extract", "text: {lines_per_doc: 0}\n", "text.lines_per_doc = 0: must be an integer >= 1"),
    ("dedup", "minhash: {verify_threshold: 1.5}\n",
     "minhash.verify_threshold = 1.5: must be a number in (0, 1]"),
    ("dedup", "minhash: {bands: 0}\n", "minhash.bands = 0: must be an integer >= 1"),
    ("dedup", "minhash: {ngram: 0}\n", "minhash.ngram = 0: must be an integer >= 1"),
    ("dedup", "minhash: {verify: exact}\n", "minhash.verify = 'exact': must be one of 'jaccard', 'none'"),
    ("dedup", "lines: {threshold: '6'}\n", "lines.threshold = 6: must be an integer >= 1"),  # accepted
    ("filter", "gopher: {min_words: -1}\n", "gopher.min_words = -1: must be an integer >= 0"),
    ("filter", "repetition: {max_dup_line_frac: 1.3}\n",
     "repetition.max_dup_line_frac = 1.3: must be a number in [0, 1]"),
    ("filter", "lang: {detect: 'no'}\n", "lang.detect = 'no': must be true or false"),
    ("score", "lang_threshold: -0.2\n", "lang_threshold = -0.2: must be a number in [0, 1]"),
    ("score", "lang_max_chars: 0\n", "lang_max_chars = 0: must be an integer >= 1"),
]


@pytest.mark.parametrize("job,yaml_text,line", BAD_VALUES)
def test_bad_stage_value_is_refused_before_spark(tmp_path, capsys, job, yaml_text, line):
    """The job refuses the value with one line naming key, value and range, exit status 2, before
    it starts Spark (a Spark session would fail on the --master given here) or reads the input."""
    import importlib

    from jobs.cli import run
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    argv = ["--config", str(cfg), "--master", "no-such-master://", "--input",
            str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    mod = importlib.import_module(f"jobs.{job}")
    if line.startswith("lines.threshold"):     # a number written as a string is that number
        from core.config import load_config
        from curation.dedup.stage import DEFAULTS, SCHEMA
        assert load_config(DEFAULTS, cfg, schema=SCHEMA)["lines"]["threshold"] == 6
        return
    assert run(mod.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(": error: " + line), err
    assert not (tmp_path / "out").exists()


def test_bad_value_from_the_command_line_is_one_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("minhash: {verify_threshold: 1.5}\n")
    r = subprocess.run([sys.executable, "jobs/dedup.py", "--config", str(cfg), "--input",
                        str(tmp_path / "in"), "--output", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == ("dedup: error: minhash.verify_threshold = 1.5: must be a number "
                                "in (0, 1]")


def test_mix_spec_values_are_declared():
    from mixer.spec import SpecError, load_spec
    with pytest.raises(SpecError, match=r"heldout_fraction = 1: must be a number in \[0, 1\)"):
        load_spec({"heldout_fraction": 1})
    with pytest.raises(SpecError, match=r"shard_rows = 0: must be an integer >= 1"):
        load_spec({"shard_rows": 0})
    with pytest.raises(SpecError, match=r"on_infeasible = 'shrink': must be one of"):
        load_spec({"on_infeasible": "shrink"})


@pytest.mark.parametrize("override,line", [
    ({"stages": {"extract": {"timeout_s": -1}}}, "extract.crawl: timeout_s = -1: must be a number >= 0"),
    ({"stages": {"dedup": {"minhash": {"bands": 0}}}}, "dedup: minhash.bands = 0: must be an integer >= 1"),
    ({"mix": {"pretrain": {"spec": "configs/mix/pretrain.yaml", "overrides": {"seq_len": 1}}}},
     "mix.pretrain: seq_len = 1: must be an integer >= 2"),
    ({"trainer": {"overrides": {"stages.0.min_lr_ratio": -0.1}}},
     "train: stages.0.min_lr_ratio = -0.1: must be a number in [0, 1]"),
])
def test_pipeline_checks_every_stage_value_before_any_stage_runs(override, line):
    from pipeline import load_pipeline_config
    from pipeline.stages import build_stages, check_values
    check_values(build_stages(load_pipeline_config(ROOT / "configs" / "pipeline.yaml")))
    with pytest.raises(ConfigError) as e:
        check_values(build_stages(load_pipeline_config(ROOT / "configs" / "pipeline.yaml", override)))
    assert str(e.value) == line
