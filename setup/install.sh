#!/usr/bin/env bash
# One-time (and idempotent) set-up of a machine for this project:
#   1. the Python dependencies listed in pyproject.toml, into the machine's Python (no virtualenv:
#      torch is a large install, done once; later runs find everything satisfied in seconds);
#   2. Delta Lake's jars from Maven Central into .jars/, so no Spark job needs the network at run time;
#   3. headless Chromium from the distribution's packages where apt-get exists
#      (setup/install_browser.sh), so the report's browser test runs instead of skipping;
#   4. the object-store emulators of tests/test_fs_stores.py into .tools/ (setup/install_emulators.sh):
#      fake-gcs-server built with Go from the Go module proxy, Azurite from npm.
# Safe to run again; it only fetches what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

deps=$("$PY" - <<'PYEOF'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))
PYEOF
)
# Only call pip when something is missing or at the wrong version (pip's resolver is slow even when
# everything is satisfied).
if ! "$PY" - "$deps" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
from packaging.requirements import Requirement
bad = []
for line in sys.argv[1].splitlines():
    r = Requirement(line)
    try:
        if not r.specifier.contains(version(r.name), prereleases=True):
            bad.append(line)
    except PackageNotFoundError:
        bad.append(line)
if bad:
    print("missing or mismatched:", ", ".join(bad))
    sys.exit(1)
PYEOF
then
  echo "$deps" | xargs -d '\n' "$PY" -m pip install --quiet --disable-pip-version-check
fi

# Delta jars: the delta-spark pip package and the jars must be the same version.
DELTA_VERSION=$("$PY" -c "from importlib.metadata import version; print(version('delta-spark'))")
SPARK_BINARY=$("$PY" -c "import pyspark; print('.'.join(pyspark.__version__.split('.')[:2]))")
HADOOP_VERSION=$("$PY" - <<'PYEOF'
import glob, os, re, pyspark
jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "hadoop-client-api-*.jar"))
print(re.search(r"hadoop-client-api-(.+)\.jar$", jars[0]).group(1))
PYEOF
)
JARS=.jars
if ! ls "$JARS"/delta-spark_*"$DELTA_VERSION".jar >/dev/null 2>&1 \
   || ! ls "$JARS"/s3a/hadoop-aws-"$HADOOP_VERSION".jar >/dev/null 2>&1; then
  echo "fetching Delta Lake $DELTA_VERSION jars for Spark $SPARK_BINARY and hadoop-aws $HADOOP_VERSION from Maven Central into $JARS/"
  rm -rf "$JARS.tmp" && mkdir -p "$JARS.tmp/s3a"
  mvn -B -q -Dstyle.color=never -f setup/pom.xml dependency:copy-dependencies \
      -Ddelta.version="$DELTA_VERSION" -Dspark.binary="$SPARK_BINARY" \
      -Dhadoop.version="$HADOOP_VERSION" \
      -DincludeScope=runtime -DoutputDirectory="$PWD/$JARS.tmp/all"
  # pyspark already ships Hadoop, Parquet, Jackson, Scala and logging jars: take only Delta's own,
  # so that no second copy of a Spark dependency lands on the class path.
  mv "$JARS.tmp"/all/delta-spark_*.jar "$JARS.tmp"/all/delta-storage-*.jar "$JARS.tmp"/
  # the S3A connector and what it needs (AWS SDK v2 bundle, analytics accelerator, wildfly-openssl)
  # in a folder of its own: only sessions that read or write s3a:// put it on the class path
  mv "$JARS.tmp"/all/hadoop-aws-*.jar "$JARS.tmp"/all/bundle-*.jar \
     "$JARS.tmp"/all/analyticsaccelerator-s3-*.jar "$JARS.tmp"/all/wildfly-openssl-*.jar "$JARS.tmp"/s3a/
  rm -rf "$JARS.tmp/all" "$JARS" && mv "$JARS.tmp" "$JARS"
fi
echo "set-up complete: python deps OK, jars in $JARS/: $(ls $JARS $JARS/s3a | tr '\n' ' ')"

# Headless Chromium for the report's browser test: a no-op when one is on PATH; where it cannot be
# installed the set-up goes on and that one test skips, saying why.
if ! bash setup/install_browser.sh; then
  echo "warning: Chromium was not installed; tests/test_report.py's browser test will skip" >&2
fi

# Object-store emulators for tests/test_fs_stores.py (Google Cloud Storage, Azure Blob): where one
# cannot be installed the set-up goes on and the test skips that store, saying why.
if ! bash setup/install_emulators.sh; then
  echo "warning: an object-store emulator was not installed; tests/test_fs_stores.py will skip its store" >&2
fi
