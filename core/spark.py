"""The one place that builds a SparkSession.

* On Databricks or a cluster (`spark-submit` with a master, or a notebook) the session that is
  already there is used as it is: the platform configures Delta and resources.
* Locally it builds a session with Delta Lake enabled from the jars that `setup/install.sh` fetched
  into `.jars/`, so nothing needs the network at run time. Master, driver memory and shuffle
  partitions are configurable by argument or environment (`CURATION_SPARK_MASTER`,
  `CURATION_SPARK_MEMORY`, `CURATION_SHUFFLE_PARTITIONS`).
"""
from __future__ import annotations

import os
import sys

from core.paths import PROJECT_ROOT, jars_dir

DEFAULT_MASTER = "local[*]"
DEFAULT_MEMORY = "4g"
DEFAULT_SHUFFLE_PARTITIONS = 8
LOG4J_CONF = PROJECT_ROOT / "setup" / "log4j2.properties"


def _on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def _local_delta_jars() -> list[str]:
    d = jars_dir()
    jars = sorted(str(p) for p in d.glob("*.jar")) if d.is_dir() else []
    if not any("delta-spark" in j for j in jars):
        raise RuntimeError(
            f"Delta Lake jars not found in {d}. Run `bash setup/install.sh` once (it fetches them "
            "from Maven Central), or set CURATION_JARS to a folder holding delta-spark and "
            "delta-storage jars of the installed delta-spark version.")
    return jars


def get_spark(app_name: str = "curation", master: str | None = None, memory: str | None = None,
              shuffle_partitions: int | None = None, extra_conf: dict | None = None):
    """Return the active SparkSession, or build a local one with Delta Lake enabled."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if os.environ.get("PYSPARK_GATEWAY_PORT") and not _on_databricks():
        return _session_under_spark_submit(app_name, shuffle_partitions)
    # Under spark-submit with a cluster master, or on Databricks, the platform owns the config.
    submitted_master = os.environ.get("SPARK_MASTER") or _submit_arg("--master")
    if _on_databricks() or (submitted_master and not submitted_master.startswith("local")):
        spark = SparkSession.builder.appName(app_name).getOrCreate()
        if shuffle_partitions:
            spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
        return spark

    master = master or os.environ.get("CURATION_SPARK_MASTER") or submitted_master or DEFAULT_MASTER
    memory = memory or os.environ.get("CURATION_SPARK_MEMORY", DEFAULT_MEMORY)
    shuffle_partitions = shuffle_partitions or int(
        os.environ.get("CURATION_SHUFFLE_PARTITIONS", DEFAULT_SHUFFLE_PARTITIONS))
    _expose_project_to_local_workers()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.driver.memory", memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.jars", ",".join(_local_delta_jars()))
        .config("spark.ui.enabled", os.environ.get("CURATION_SPARK_UI", "false"))
        .config("spark.ui.showConsoleProgress", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
        .config("spark.python.worker.reuse", "true")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J_CONF}")
    )
    for k, v in {**DELTA_CONF, **(extra_conf or {})}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("CURATION_SPARK_LOG_LEVEL", "ERROR"))
    return spark


def _expose_project_to_local_workers() -> None:
    """Local Python workers inherit PYTHONPATH: put the project root on it, so they import this
    project's packages from a clone without an install (a cluster ships them with --py-files)."""
    pp = os.environ.get("PYTHONPATH", "")
    if str(PROJECT_ROOT) not in pp.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), pp) if p)


DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def _session_under_spark_submit(app_name: str, shuffle_partitions: int | None):
    """`spark-submit jobs/x.py`: the JVM is already running with spark-submit's settings.

    On a cluster the user passes Delta (`--packages io.delta:...` or the platform has it). Locally,
    a plain `spark-submit jobs/x.py` has no Delta on the class path: the job re-executes itself once
    through spark-submit with the local jars and Delta's settings added, so the documented command
    works as written.
    """
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(app_name).getOrCreate()
    if shuffle_partitions:
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    if _has_delta(spark):
        return spark
    master = spark.sparkContext.master
    if master.startswith("local") and not os.environ.get("CURATION_REEXEC"):
        _expose_project_to_local_workers()  # inherited by the re-executed JVM's Python workers
        import shutil
        jars = _local_delta_jars()
        conf = spark.sparkContext.getConf()
        args = [shutil.which("spark-submit") or "spark-submit", "--master", master,
                "--jars", ",".join(jars)]
        for k, v in DELTA_CONF.items():
            args += ["--conf", f"{k}={v}"]
        args += ["--driver-java-options", f"-Dlog4j2.configurationFile={LOG4J_CONF}"]
        for k, v in conf.getAll():
            if k.startswith(("spark.driver.memory", "spark.executor.memory", "spark.sql.shuffle")):
                args += ["--conf", f"{k}={v}"]
        spark.stop()
        os.environ["CURATION_REEXEC"] = "1"
        os.environ.pop("PYSPARK_GATEWAY_PORT", None)
        os.environ.pop("PYSPARK_GATEWAY_SECRET", None)
        sys.stdout.flush()
        os.execv(args[0], args + [sys.argv[0]] + sys.argv[1:])
    raise RuntimeError(
        "Delta Lake is not on this Spark session's class path. Submit with "
        "`--packages io.delta:delta-spark_<spark major.minor>_2.13:<delta version>` and "
        + " ".join(f"--conf {k}={v}" for k, v in DELTA_CONF.items())
        + " (see README, 'Running on a cluster').")


def _has_delta(spark) -> bool:
    try:
        spark._jvm.java.lang.Thread.currentThread().getContextClassLoader().loadClass(
            "io.delta.sql.DeltaSparkSessionExtension")
        return spark.conf.get("spark.sql.extensions", "") .find("Delta") >= 0
    except Exception:
        return False


def _submit_arg(name: str) -> str | None:
    """spark-submit passes --master to the JVM, visible to Python as spark.master in the conf."""
    v = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    parts = v.split()
    if name in parts:
        i = parts.index(name)
        if i + 1 < len(parts):
            return parts[i + 1]
    return None
