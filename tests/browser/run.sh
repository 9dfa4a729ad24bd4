#!/usr/bin/env bash
# report.html in a real headless Chromium: installs Debian's chromium (apt)
# and the pinned npm dependencies (npm ci), builds flamefire if needed, and
# runs report.test.js, which prints "N passed, N failed".
#
#   tests/browser/run.sh                      # uses target/debug/flamefire
#   FLAMEFIRE_BIN=target/release/flamefire tests/browser/run.sh
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
REPO=$(cd ../.. && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "tests/browser: node and npm are missing: run scripts/bootstrap.sh (or apt-get install nodejs npm)" >&2
    exit 2
fi
if [[ ! -x /usr/bin/chromium ]]; then
    echo "== installing chromium (apt)" >&2
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/browser: /usr/bin/chromium is missing and we are not root: sudo apt-get install chromium" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

if [[ -z ${FLAMEFIRE_BIN:-} ]]; then
    FLAMEFIRE_BIN=$REPO/target/debug/flamefire
    echo "== cargo build (for $FLAMEFIRE_BIN)" >&2
    if ! (cd "$REPO" && cargo build --quiet --locked); then
        echo "tests/browser: could not build flamefire: fix the build (cargo build) or set FLAMEFIRE_BIN to a built binary" >&2
        exit 2
    fi
fi
if [[ ! -x $FLAMEFIRE_BIN ]]; then
    echo "tests/browser: no flamefire binary at $FLAMEFIRE_BIN: run cargo build, or set FLAMEFIRE_BIN" >&2
    exit 2
fi
export FLAMEFIRE_BIN

echo "== npm ci (playwright-core, pinned by package-lock.json)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2

echo "== report.html in $(/usr/bin/chromium --version 2>/dev/null)" >&2
cd "$HERE"
node report.test.js
