#!/usr/bin/env bash
# Stop the emulator that tests/emulator/start.sh started (by its pid file).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${FLAMEFIRE_EMULATOR_DIR:-$repo/target/emulator}"
pidfile="$dir/emulator.pid"
if [ ! -f "$pidfile" ]; then
  echo "no $pidfile; nothing to stop"
  exit 0
fi
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  echo "stopped flamefire emulator (pid $pid)"
fi
rm -f "$pidfile"
