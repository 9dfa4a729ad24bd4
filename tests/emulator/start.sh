#!/usr/bin/env bash
# Start flamefire's local AWS emulator (moto + Run Command stand-in) in the
# background on 127.0.0.1:${FLAMEFIRE_EMULATOR_PORT:-5055} and wait until it is
# healthy. Idempotent: if an emulator already answers on the port, do nothing.
#
#   FLAMEFIRE_EMULATOR_PORT  front port (default 5055)
#   FLAMEFIRE_EMULATOR_DIR   pid, log and orchestration dirs (default <repo>/target/emulator)
#   FLAMEFIRE_VENV           Python venv to use (default <repo>/.venv, created if missing)
#
# Stop it with tests/emulator/stop.sh. See tests/emulator/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
port="${FLAMEFIRE_EMULATOR_PORT:-5055}"
dir="${FLAMEFIRE_EMULATOR_DIR:-$repo/target/emulator}"
venv="${FLAMEFIRE_VENV:-$repo/.venv}"
health="http://127.0.0.1:$port/_flamefire/health"

healthy() { curl -fsS --max-time 2 "$health" >/dev/null 2>&1; }

if healthy; then
  echo "flamefire emulator already running on 127.0.0.1:$port"
  exit 0
fi

mkdir -p "$dir"
# One starter at a time (parallel test runners may all call this script).
exec 9>"$dir/start.lock"
flock 9
if healthy; then
  echo "flamefire emulator already running on 127.0.0.1:$port"
  exit 0
fi

# The venv: create it if missing, (re)install when requirements.txt changed.
req="$here/requirements.txt"
stamp="$venv/.flamefire-emulator-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing $req into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "port $port is taken by something that is not a healthy flamefire emulator" >&2
  echo "(set FLAMEFIRE_EMULATOR_PORT or stop it)" >&2
  exit 1
fi

log="$dir/emulator.log"
pidfile="$dir/emulator.pid"
# A clean AWS environment: dummy credentials, a region, no metadata lookups.
env -u AWS_PROFILE -u AWS_CONFIG_FILE -u AWS_SHARED_CREDENTIALS_FILE -u AWS_ENDPOINT_URL \
  AWS_EC2_METADATA_DISABLED=true \
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" \
  AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
  AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
  PYTHONUNBUFFERED=1 \
  setsid "$venv/bin/python" "$here/emulator.py" --port "$port" --dir "$dir" \
  </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"

for _ in $(seq 1 300); do
  if healthy; then
    echo "flamefire emulator running on 127.0.0.1:$port (pid $pid, log $log)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
echo "flamefire emulator did not become healthy on 127.0.0.1:$port; last log lines:" >&2
tail -n 30 "$log" >&2 || true
kill "$pid" 2>/dev/null || true
exit 1
