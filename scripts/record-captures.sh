#!/usr/bin/env bash
# record-captures.sh [OUT_DIR]: re-record the real perf captures in
# tests/data/captures/ on this machine.
#
# Each capture is recorded by the SSM document's own script
# (ssm-documents/flamefire-record.yaml, extracted by
# tests/script/extract-script.sh) in local mode, against the demo cluster
# (demo/cluster.js). So a capture is exactly the stacks.gz a host would upload:
# gzip'd `perf script --no-inline` text, default fields (with timestamps),
# symbolized here while the JIT maps exist. The host's meta.json is kept next
# to it as NAME.meta.json.
#
# Needs: root, perf, node (>= 18), gzip. Takes about a minute. Sample counts
# depend on how busy the machine is (perf samples on-CPU time).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$repo/tests/data/captures"}
demo=$repo/demo/cluster.js
warmup_s=3 # let TurboFan optimize the hot functions first

die() {
  printf 'record-captures: %s\n' "$*" >&2
  exit 1
}

((EUID == 0)) || die "run as root (perf -p on other processes, chown of JIT maps)"
command -v perf >/dev/null || die "perf not found: apt-get install linux-perf"
command -v node >/dev/null || die "node not found: apt-get install nodejs"

tmp=$(mktemp -d)
script=$tmp/record.sh
"$repo/tests/script/extract-script.sh" >"$script"

DEMO_PID=""
DEMO_PIDS=() # primary first, then workers

stop_demo() {
  local pid
  [[ -n $DEMO_PID ]] || return 0
  kill -TERM "$DEMO_PID" 2>/dev/null || true
  wait "$DEMO_PID" 2>/dev/null || true
  # Node never deletes its map: remove the ones our demo wrote.
  for pid in ${DEMO_PIDS[@]+"${DEMO_PIDS[@]}"}; do
    rm -f "/tmp/perf-$pid.map"
  done
  DEMO_PID=""
  DEMO_PIDS=()
}
trap 'stop_demo; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# start_demo MODE WORKERS NODE_FLAGS...: start the cluster and wait until all
# workers run and have warmed up.
start_demo() {
  local mode=$1 workers=$2 n
  shift 2
  FLAMEFIRE_DEMO_MODE=$mode FLAMEFIRE_DEMO_WORKERS=$workers node "$@" "$demo" >"$tmp/demo.log" 2>&1 &
  DEMO_PID=$!
  for ((n = 0; n < 100; n++)); do
    mapfile -t DEMO_PIDS < <(pgrep -P "$DEMO_PID" || true)
    ((${#DEMO_PIDS[@]} == workers)) && break
    sleep 0.1
  done
  ((${#DEMO_PIDS[@]} == workers)) || die "demo ($mode) did not start $workers workers: $(cat "$tmp/demo.log")"
  DEMO_PIDS=("$DEMO_PID" "${DEMO_PIDS[@]}")
  sleep "$warmup_s"
}

# capture NAME DURATION FREQUENCY PID...: run the document script on PIDs and
# keep its stacks.gz as NAME.perf.gz and its meta.json as NAME.meta.json.
capture() {
  local name=$1 duration=$2 frequency=$3 pids
  shift 3
  pids=$(IFS=,; printf '%s' "$*")
  rm -rf "$tmp/run" && mkdir "$tmp/run"
  (
    cd "$tmp/run"
    export SSM_Duration=$duration SSM_Frequency=$frequency SSM_Pids=$pids SSM_ProcessName=node
    export SSM_StartAt=0 SSM_RunId="capture-$name" SSM_UploadUrl='' SSM_UploadKeyPrefix=''
    export SSM_UploadPolicy='' SSM_UploadCredential='' SSM_UploadDate='' SSM_UploadSignature=''
    export SSM_UploadSecurityToken=''
    sh "$script" >"$tmp/summary.txt"
  ) || die "the document script failed for $name"
  mv -f "$tmp/run/stacks.gz" "$out/$name.perf.gz"
  mv -f "$tmp/run/meta.json" "$out/$name.meta.json"
  chmod 0644 "$out/$name.perf.gz" "$out/$name.meta.json"
  printf '%-20s %8d bytes  %5s samples  tokenizeHtml in %4s, serveJson in %4s, [unknown] in %4s\n' \
    "$name.perf.gz" "$(stat -c %s "$out/$name.perf.gz")" \
    "$(gzip -dc "$out/$name.perf.gz" | grep -c '^[^[:space:]]' || true)" \
    "$(gzip -dc "$out/$name.perf.gz" | grep -c 'tokenizeHtml' || true)" \
    "$(gzip -dc "$out/$name.perf.gz" | grep -c 'serveJson' || true)" \
    "$(gzip -dc "$out/$name.perf.gz" | grep -c '\[unknown\]' || true)"
}

mkdir -p "$out"

# 1. The whole cluster (primary + 2 workers), full JIT map.
start_demo sick 2 --perf-basic-prof
capture cluster-basic-prof 2 99 "${DEMO_PIDS[@]}"
# 5. Differential pair, "sick" half: the 2 workers only.
capture sick 5 99 "${DEMO_PIDS[@]:1}"
stop_demo

# 2. Functions-only map (what we recommend in production).
start_demo sick 2 --perf-basic-prof-only-functions
capture only-functions 2 99 "${DEMO_PIDS[@]}"
stop_demo

# 3. No perf flags at all: JS frames are [unknown].
start_demo sick 2
capture no-map 2 99 "${DEMO_PIDS[@]}"
stop_demo

# 5. Differential pair, "healthy" half: ~10% busy in serveJson.
start_demo healthy 2 --perf-basic-prof
capture healthy 5 99 "${DEMO_PIDS[@]:1}"
stop_demo

# 6. Bursts: 1 s of tokenizeHtml every 3 s, for time-slice heat maps.
start_demo burst 2 --perf-basic-prof
capture burst 6 99 "${DEMO_PIDS[@]:1}"
stop_demo

echo "record-captures: wrote $out"
