#!/usr/bin/env bash
# Object-store emulators for tests/test_fs_stores.py, called by setup/install.sh, into .tools/ of
# the clone (ignored by git). Idempotent: each is fetched only when missing or at another version.
#   - fake-gcs-server (Google Cloud Storage JSON API), built with Go from the Go module proxy
#     into .tools/bin/fake-gcs-server;
#   - Azurite (Azure Blob Storage), with npm into .tools/azurite/.
# Each is optional: one that cannot be installed (no Go, no Node.js, no network) is reported, the
# other is still installed, and the test skips that store saying why. Exit status 1 when either
# failed (setup/install.sh warns and goes on).
set -uo pipefail
cd "$(dirname "$0")/.."
TOOLS=$PWD/.tools
FAKE_GCS_VERSION=v1.56.1   # github.com/fsouza/fake-gcs-server
AZURITE_VERSION=3.35.0     # the last Azurite release that runs on Node.js 20 (3.36 needs 21+)
failed=0

# ---- fake-gcs-server
stamp=$TOOLS/bin/fake-gcs-server.version
if [ -x "$TOOLS/bin/fake-gcs-server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$FAKE_GCS_VERSION" ]; then
  echo "fake-gcs-server $FAKE_GCS_VERSION present in $TOOLS/bin/"
else
  GO=$(command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; })
  if [ -z "$GO" ]; then
    echo "warning: Go not found: fake-gcs-server not built (tests/test_fs_stores.py skips gs://)" >&2
    failed=1
  else
    echo "building fake-gcs-server $FAKE_GCS_VERSION with $("$GO" version) into $TOOLS/bin/"
    mkdir -p "$TOOLS/bin"
    # module and build caches in the clone, writable so that they can be removed afterwards
    if GOBIN="$TOOLS/bin" GOMODCACHE="$TOOLS/go/mod" GOCACHE="$TOOLS/go/cache" GOFLAGS=-modcacherw \
       GOTOOLCHAIN=local CGO_ENABLED=0 \
       "$GO" install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"; then
      echo "$FAKE_GCS_VERSION" > "$stamp"
      rm -rf "$TOOLS/go"
    else
      echo "warning: fake-gcs-server $FAKE_GCS_VERSION could not be built (tests/test_fs_stores.py skips gs://)" >&2
      rm -f "$TOOLS/bin/fake-gcs-server" "$stamp"
      failed=1
    fi
  fi
fi

# ---- Azurite
have=$(node -p "require('$TOOLS/azurite/node_modules/azurite/package.json').version" 2>/dev/null || true)
if [ "$have" = "$AZURITE_VERSION" ]; then
  echo "Azurite $AZURITE_VERSION present in $TOOLS/azurite/"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "warning: Node.js/npm not found: Azurite not installed (tests/test_fs_stores.py skips abfss://)" >&2
  failed=1
else
  echo "installing Azurite $AZURITE_VERSION with npm $(npm --version) (Node.js $(node --version)) into $TOOLS/azurite/"
  mkdir -p "$TOOLS/azurite"
  if ! npm install --prefix "$TOOLS/azurite" --save-exact --no-audit --no-fund --loglevel=error \
       "azurite@$AZURITE_VERSION"; then
    echo "warning: Azurite $AZURITE_VERSION could not be installed (tests/test_fs_stores.py skips abfss://)" >&2
    failed=1
  fi
fi
exit $failed
