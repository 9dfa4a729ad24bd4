#!/usr/bin/env bash
# Fleet benchmark: `flamefire ssm --asg … --duration 10` on 100, 500 and 2,000
# emulated hosts, with the emulator's throttling off and on, against a naive
# per-host boto3 loop (up to 500 hosts), in one run; the method and the
# figures are in benches/fleet/fleet.py, the latest results in
# benches/fleet/RESULTS.md (rewritten by every run).
#
# Usage: scripts/bench-fleet.sh [--sizes 100,500,2000] [--throttle off,on] [--no-naive]
#
# It builds the release binary, then starts an emulator of its own on
# 127.0.0.1:${FLAMEFIRE_BENCH_PORT:-5057} (stopped again at the end), so that
# hundreds of benchmark instances neither slow down nor mix with the shared
# test emulator on 5055. Nothing leaves 127.0.0.1. Bounded: each size ≤ 2000
# hosts, each measured run ≤ 15 min, the whole script ≤ 1 h.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

cargo build --release --locked

export FLAMEFIRE_VENV="${FLAMEFIRE_VENV:-$repo/.venv}"
port="${FLAMEFIRE_BENCH_PORT:-5057}"
# Never reach real AWS, never probe instance metadata.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_SESSION_TOKEN
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export FLAMEFIRE_EMULATOR_PORT="$port" FLAMEFIRE_EMULATOR_DIR="$repo/target/bench-fleet-emulator"

started=0
if ! curl -fsS --max-time 2 "http://127.0.0.1:$port/_flamefire/health" >/dev/null 2>&1; then
  tests/emulator/start.sh >&2   # also creates the venv with boto3 if missing
  started=1
fi
stop_emulator() { if [ "$started" = 1 ]; then tests/emulator/stop.sh >/dev/null 2>&1 || true; fi; }
trap stop_emulator EXIT

timeout --foreground 3600 "$FLAMEFIRE_VENV/bin/python" benches/fleet/fleet.py --port "$port" "$@"
