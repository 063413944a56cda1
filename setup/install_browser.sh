#!/usr/bin/env bash
# Headless Chromium for the report's browser test (tests/test_report.py), called by setup/install.sh. Idempotent: does nothing
# when a chromium binary is already on PATH. Debian/Ubuntu package `chromium` (/usr/bin/chromium).
# The test skips with a message when no browser is installed, so this step is optional.
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "browser present: $(command -v "$b")"; exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install Chromium with your package manager (the report test will skip)" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1
echo "installed: $(command -v chromium)"
