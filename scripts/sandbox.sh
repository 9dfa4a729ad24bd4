#!/usr/bin/env bash
# The whole `flamefire ssm` flow on this machine, without an AWS account.
#
# Starts the AWS emulator (moto + the stand-in SSM agent, tests/emulator/),
# creates a bucket, deploys the flamefire document, seeds two "instances"
# (an autoscaling group) whose agent runs the real document on this machine,
# starts the demo Node cluster with perf maps on, and prints the commands that
# profile it. Run as root (perf). Stop everything with: scripts/sandbox.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PORT="${FLAMEFIRE_EMULATOR_PORT:-5055}"
STATE="$REPO/target/sandbox"
export FLAMEFIRE_EMULATOR_PORT=$PORT

if [[ ${1:-} == stop ]]; then
    [[ -f $STATE/demo.pid ]] && kill -TERM -- "-$(cat "$STATE/demo.pid")" 2>/dev/null || true
    tests/emulator/stop.sh || true
    rm -rf "$STATE"
    exit 0
fi

scripts/bootstrap.sh
export FLAMEFIRE_VENV="${FLAMEFIRE_VENV:-$REPO/.venv}"
[[ -x $FLAMEFIRE_VENV/bin/python ]] || python3 -m venv "$FLAMEFIRE_VENV"
"$FLAMEFIRE_VENV/bin/pip" install -q --disable-pip-version-check -r tests/emulator/requirements.txt
tests/emulator/start.sh >&2

# The emulator, never real AWS, never instance metadata.
env_lines="export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT FLAMEFIRE_BUCKET=flamefire-sandbox"
eval "$env_lines"
unset AWS_PROFILE AWS_SESSION_TOKEN

cargo build --release -q
FLAMEFIRE="$REPO/target/release/flamefire"
curl -sS -X PUT "$AWS_ENDPOINT_URL/flamefire-sandbox" >/dev/null
"$FLAMEFIRE" document deploy -q >/dev/null
ids=$(curl -sS -X POST -H 'Content-Type: application/json' \
    -d '{"count": 2, "tags": {"flamefire-test:ssm": "online", "Name": "sandbox-web", "aws:autoscaling:groupName": "sandbox-asg", "flamefire": "enabled"}}' \
    "$AWS_ENDPOINT_URL/_flamefire/seed" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["instance_ids"]))')

mkdir -p "$STATE"
if [[ ! -f $STATE/demo.pid ]] || ! kill -0 "$(cat "$STATE/demo.pid")" 2>/dev/null; then
    # In $STATE: Node 20's --perf-basic-prof writes isolate-*-v8.log into its cwd.
    (cd "$STATE" && exec setsid node --perf-basic-prof "$REPO/demo/cluster.js" >"$STATE/demo.log" 2>&1) &
    echo $! >"$STATE/demo.pid"
fi

cat <<MSG
The sandbox is up: emulator on 127.0.0.1:$PORT, instances $ids (ASG sandbox-asg),
and the demo Node cluster (pid $(cat "$STATE/demo.pid")). In your shell:

$env_lines

$FLAMEFIRE ssm $ids --duration 10
$FLAMEFIRE ssm --asg sandbox-asg --duration 10 --json

Stop it with: scripts/sandbox.sh stop
MSG
