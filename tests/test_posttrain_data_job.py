"""jobs/posttrain_data.py (pipeline/posttrain_data.py): post-training data curated on real Spark into
real Delta tables, read back by the trainer without Spark (core.tables.read_delta). Small fixed
inputs whose right answers are known by hand: which record goes, with which reason, what is kept,
the tables' schema, ownership of the outputs, and the rounds driver reading the Delta tables."""
from __future__ import annotations

import json

import pytest

from core.tables import DeltaReadError, OutputRefused, read_delta
from trainer.posttrain_data import read_records, schemas

U = lambda c: {"role": "user", "content": c}          # noqa: E731
A = lambda c: {"role": "assistant", "content": c}     # noqa: E731
LONG_Q = ("Please explain in detail how the water cycle moves moisture from oceans to clouds and "
          "back to rivers through evaporation condensation and precipitation")
LINES = [
    {"messages": [U("Write to jane.doe@example.com about the picnic"), A("Sure, I will write to her.")]},  # 1 kept, redacted
    {"messages": [U("Write to jane.doe@example.com about the picnic"), A("Sure, I will write to her.")]},  # 2 exact dup of 1
    {"prompt": LONG_Q, "chosen": "Water evaporates.", "rejected": "No idea.", "split": "train"},           # 3 kept
    {"prompt": LONG_Q + " today", "chosen": "It rains.", "rejected": "Dunno.", "split": "train"},          # 4 near dup of 3
    {"messages": [U("hi"), U("hello?"), A("yes")]},                                                        # 5 roles
    {"messages": [U("hi"), A("hello"), U("and then?")]},                                                   # 6 ends with user
    {"prompt": "q7"},                                                                                      # 7 fits no table
    {"prompt": "Sort: 3 1", "answer": "1 3", "checker": "sort", "split": "heldout"},                       # 8 kept, held out
    {"prompt": "Sort: 2 0 1", "answer": "0 1 2", "checker": "sort", "split": "dev"},                       # 9 bad split
    {"messages": [U("Sort: 2 1"), A("1 2")], "score": 1.0},                                                # 10 kept
    {"prompt": "Sort: 9 8", "chosen": "8 9", "rejected": "9 8", "split": "heldout"},                       # 11 kept
]


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    from pipeline.posttrain_data import run_posttrain_data
    d = tmp_path_factory.mktemp("ptjob")
    user = d / "user.jsonl"
    user.write_text("".join(json.dumps(x) + "\n" for x in LINES))
    out = d / "posttrain"
    cfg = {"sources": [], "decontaminate_ngram": 0}
    rdds = lambda: spark.sparkContext._jsc.sc().getRDDStorageInfo()     # noqa: E731
    before = {r.id() for r in rdds()}
    stats = run_posttrain_data(spark, str(out), cfg, str(d / "stats"), user=[str(user)])
    # RDDs the run left with blocks in executor memory or on executor disk (Delta's log cache aside)
    held = [r.name() for r in rdds() if r.id() not in before and "_delta_log" not in (r.name() or "")]
    return {"out": out, "user": user, "stats": stats, "cfg": cfg, "dir": d, "held": held}


def _ids_by_line(user_path):
    from trainer.posttrain_data import convert_user_jsonl
    t, _ = convert_user_jsonl(user_path, source=f"user/{user_path.name}")
    return {k: [r["id"] for r in v] for k, v in t.items()}


def test_tables_hold_what_is_right_by_hand(built):
    out, ids = built["out"], _ids_by_line(built["user"])
    sft = read_records(out / "sft" / "train")
    assert sorted((r["messages"] for r in sft), key=json.dumps) == sorted(
        [[U("Write to <EMAIL> about the picnic"), A("Sure, I will write to her.")], [U("Sort: 2 1"), A("1 2")]],
        key=json.dumps)
    assert {r["id"] for r in sft} == {ids["sft"][0], ids["sft"][4]}          # lines 1 and 10 kept
    prefs = read_records(out / "preferences" / "train")
    assert [(r["prompt"], r["responses"]) for r in prefs] == [([U(LONG_Q)], ["Water evaporates.", "No idea."])]
    assert [r["responses"] for r in read_records(out / "preferences" / "heldout")] == [["8 9", "9 8"]]
    assert [(r["messages"], r["answer"]) for r in read_records(out / "prompts" / "heldout")] == \
        [([U("Sort: 3 1")], "1 3")]
    assert read_records(out / "prompts" / "train") == []


def test_every_drop_has_its_reason(built):
    out, ids = built["out"], _ids_by_line(built["user"])
    rej = {(r["stage"], r["reason"], r["key"]) for r in read_records(out / "rejects")}
    user = str(built["user"])
    assert rej == {
        ("posttrain_data.sft", "dedup: exact duplicate", ids["sft"][1]),
        ("posttrain_data.preferences", "dedup: near duplicate prompt", ids["preferences"][1]),
        ("posttrain_data.sft", "format: roles do not alternate user/assistant", ids["sft"][2]),
        ("posttrain_data.sft", "format: sft dialogue does not end with an assistant reply", ids["sft"][3]),
        ("posttrain_data.convert", "convert: DataError", f"{user}:7"),
        ("posttrain_data.prompts", "format: split must be one of ('train', 'heldout')", ids["prompts"][1]),
    }
    # nothing lost: every input line is kept or rejected once
    kept = sum(len(read_records(p)) for p in [out / "sft/train", out / "preferences/train",
                                               out / "preferences/heldout", out / "prompts/train",
                                               out / "prompts/heldout"])
    assert kept + len(rej) == len(LINES)
    # a rejected record stays findable: the example is the record as converted (PII not yet redacted)
    ex = [json.loads(r["example"]) for r in read_records(out / "rejects") if r["reason"] == "dedup: exact duplicate"]
    assert ex[0]["messages"][0]["content"].startswith("Write to <EMAIL>")
    c = built["stats"].counters
    assert c["dropped.sft.dedup: exact duplicate"] == 1 and c["dropped.convert.convert: DataError"] == 1
    assert c["kept.sft.train"] == 2 and c["in.sft"] == 5 and c["in.preferences"] == 3 and c["kept.prompts.train"] == 0
    st = read_records(built["dir"] / "stats")                               # the stats table
    assert [r["value"] for r in st if r["metric"] == "kept.prompts.heldout"] == [1.0]


def test_delta_schema_and_marker(built):
    from core.tables import delta_snapshot
    out = built["out"]
    for kind, split in [("preferences", "train"), ("prompts", "heldout"), ("sft", "train")]:
        t = read_delta(str(out / kind / split))
        want = schemas()[kind]
        assert t.schema.names == want.names
        assert [str(f.type) for f in t.schema] == [str(f.type).replace("element:", "item:") for f in want]
        _, meta = delta_snapshot(str(out / kind / split))
        assert meta["configuration"]["curation.job"] == f"posttrain_data.{kind}.{split}"
    assert read_delta(str(out / "rejects")).schema.names == ["stage", "reason", "key", "example"]
    # the run's checkpoints (beside the output, as dedup's; the connected components' rounds
    # too) are gone once it ends, and it left no executor-local blocks (no localCheckpoint)
    assert not (out.parent / (out.name + "_checkpoints")).exists()
    assert built["held"] == []
    assert delta_snapshot(str(built["dir"] / "stats"))[1]["configuration"]["curation.job"] == "stats"


def test_own_outputs_are_claimed_and_foreign_ones_refused(built, spark):
    from core.tables import claim_output
    from pipeline.posttrain_data import output_paths, run_posttrain_data
    job, path = next(iter(output_paths(str(built["out"])).items()))   # a re-run may replace its own tables
    assert claim_output(spark, path, job).kind == "delta"
    with pytest.raises(OutputRefused):                             # but not another table of its own
        claim_output(spark, str(built["out"] / "sft" / "train"), "posttrain_data.prompts.train")
    other = built["dir"] / "other"
    spark.range(3).write.format("delta").save(str(other / "sft" / "train"))   # not this job's table
    with pytest.raises(OutputRefused, match="sft/train"):
        run_posttrain_data(spark, str(other), built["cfg"], None, user=[str(built["user"])])
    assert spark.read.format("delta").load(str(other / "sft" / "train")).count() == 3
    assert not (other / "rejects").exists() and not (other / "preferences").exists()   # refused before any work
    # the stats table too: a Delta table another tool made is neither appended to nor replaced
    theirs = built["dir"] / "their_stats"
    spark.range(2).write.format("delta").save(str(theirs))
    fresh = built["dir"] / "fresh"
    with pytest.raises(OutputRefused, match=r"their_stats.*not written by this project"):
        run_posttrain_data(spark, str(fresh), built["cfg"], str(theirs), user=[str(built["user"])])
    assert spark.read.format("delta").load(str(theirs)).columns == ["id"]
    assert not fresh.exists()                                                           # before any work


def test_read_delta_follows_the_log(spark, tmp_path, built):
    """The trainer's reader sees what Spark sees: removed files skipped after overwrites, the state
    from a checkpoint plus later commits, an empty table with its columns."""
    p = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{p}` (id INT, s STRING) USING delta "
              f"TBLPROPERTIES ('delta.checkpointInterval' = '2')")              # version 0
    for i in range(1, 4):   # version 1 (overwrite: removes), 2 (a checkpoint), 3 (after it)
        spark.createDataFrame([(i, str(i)), (10 * i, None)], "id INT, s STRING").coalesce(1).write.format("delta") \
            .mode("overwrite" if i == 1 else "append").save(p)
    assert json.loads((tmp_path / "t" / "_delta_log" / "_last_checkpoint").read_text())["version"] == 2
    want = sorted(tuple(r) for r in spark.read.format("delta").load(p).collect())
    assert sorted(zip(*read_delta(p).to_pydict().values())) == want == \
        [(1, "1"), (2, "2"), (3, "3"), (10, None), (20, None), (30, None)]
    # deletion vectors (rows deleted without rewriting files) are refused, not read wrong
    spark.sql(f"ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{p}` WHERE id = 10")        # one of the two rows of a file
    with pytest.raises(DeltaReadError, match="deletion vectors"):
        read_delta(p)
    # an empty table keeps its columns (the fixture's prompts/train: its only record went)
    t = read_delta(str(built["out"] / "prompts" / "train"))
    assert t.num_rows == 0 and t.schema.names == schemas()["prompts"].names


def test_rounds_reads_the_delta_tables(built, tmp_path, spark):
    import shutil

    from pyspark.sql import functions as F

    from trainer.model import build_model, preset_config
    from trainer.posttrain import CompactTokenizer, save_model
    from trainer.rounds import Rounds, load_config
    out = built["out"]
    tok = CompactTokenizer.from_texts(["Sort: 0 1 2 3 4 5 6 7 8 9", "Write to <EMAIL> about the picnic",
                                       "Sure, I will write to her."])
    init = tmp_path / "init"
    save_model(init, build_model(preset_config("tiny", vocab_size=tok.vocab_size, max_seq_len=64), seed=0),
               {"step": "test"}, tokenizer=tok)
    # a copy of the held-out pairs, replaced once: only the current version may be read (the old
    # version's Parquet file is still in the folder, as Delta keeps it until a VACUUM)
    held = tmp_path / "heldout"
    shutil.copytree(out / "preferences" / "heldout", held)
    cur = spark.read.format("delta").load(str(held))
    again = spark.createDataFrame(cur.withColumn("id", F.lit("replaced")).collect(), cur.schema).coalesce(1)
    again.write.format("delta").mode("overwrite").save(str(held))
    assert len(list(held.glob("*.parquet"))) == 2
    cfg = load_config(None, [f"out_dir={tmp_path / 'run'}", f"init={init}", "device=cpu", "rounds=0",
                             f"data.sft={out / 'sft' / 'train'}", f"data.prompts={out / 'prompts' / 'train'}",
                             f"data.heldout_prompts={out / 'prompts' / 'heldout'}",
                             f"data.preferences={out / 'preferences' / 'train'}",
                             f"data.heldout_preferences={held}",
                             "sft.steps=1", "sft.seq_len=64", "sft.log_every=0", "eval.max_new_tokens=3"])
    r = Rounds(cfg, log=lambda s: None)
    assert sorted(m[0]["content"] for m in r.gold_sft) == ["Sort: 2 1", "Write to <EMAIL> about the picnic"]
    assert r.prompts == [] and [p["answer"] for p in r.heldout_prompts] == ["1 3"]
    assert [(p["id"], p["responses"]) for p in r.heldout_prefs] == [("replaced", ["8 9", "9 8"])]
    rep = r.run()
    assert [s["step"] for s in rep["steps"]] == ["init", "bootstrap_sft"]
    assert rep["steps"][1]["result"]["steps"] == 1


@pytest.mark.parametrize("yaml_text,line", [
    ("heldout_share: 1.5\n", "heldout_share = 1.5: must be a number in [0, 1)"),
    ("sources: [hh, wiki]\n", "sources.1 = 'wiki': must be one of 'hh', 'gsm8k', 'math'"),
])
def test_bad_value_is_refused_before_spark(tmp_path, capsys, yaml_text, line):
    """One line naming the key, exit status 2, before Spark starts (its master does not exist)."""
    from jobs.cli import run
    from jobs.posttrain_data import main
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    assert run(main, ["--config", str(cfg), "--master", "no-such-master://", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(": error: " + line), err
    assert not (tmp_path / "o").exists()
