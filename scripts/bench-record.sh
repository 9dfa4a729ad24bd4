#!/usr/bin/env bash
# How to record Node processes that exit, restart or multiply (issue 8 §3):
# a benchmark, not a timed test. Writes benches/record/RESULTS.md.
#
# For each recording strategy, records a 4-worker Node cluster
# (tests/data/restarting-cluster.js) for DURATION seconds while its first
# worker exits a third of the way in and is replaced, once with busy workers
# and once with idle ones, and measures:
#   * CPU-seconds of `perf record` (GNU time; its `sleep` workload is noise);
#   * the descriptors perf holds (ls /proc/<perf>/fd, at half the window);
#   * the size of perf.data and bytes per sample;
#   * CPU-seconds and peak RSS of post-processing (`perf script | gzip -6`,
#     the host script's pipeline; GNU time of the shell, whose children's
#     peak RSS is the largest of perf script and gzip);
#   * whether the replacement worker (secondLifeLoop, its pid) is in the
#     profile.
# Strategies:
#   p          perf record -p <pids at start>     (the script before issue 8 §3)
#   p-thread   perf record -p <pids> --per-thread (no inherit, one fd per thread)
#   a-filter   perf record -a, then perf script --pid <every node pid seen
#              during the window>                 (the script after)
# Not measured: -G <cgroup> (this machine has no perf_event cgroup
# controller; see RESULTS.md).
#
# Usage: scripts/bench-record.sh [DURATION_S]   (default 30; needs root, perf, node)
# shellcheck disable=SC2016 # backticks in printf formats are Markdown, not expansions
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DURATION=${1:-30}
FREQ=99
OUT=$REPO/benches/record/RESULTS.md
TMP=$(mktemp -d /var/tmp/flamefire-bench.XXXXXXXX)
APP_PID=""
cleanup() {
    if [[ -n $APP_PID ]]; then kill -TERM "$APP_PID" 2>/dev/null || true; wait "$APP_PID" 2>/dev/null || true; fi
    rm -rf -- "$TMP"
}
trap cleanup EXIT

for tool in perf node gzip /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-record.sh: $tool is missing (scripts/bootstrap.sh --for-tests installs it)" >&2; exit 2; }
done

# start_app IDLE: the cluster, its pids at start into START_PIDS.
start_app() {
    local idle=$1
    : >"$TMP/app.out"
    FLAMEFIRE_WORKERS=4 FLAMEFIRE_EXIT_AFTER_MS=$((DURATION * 1000 / 3 + 2000)) FLAMEFIRE_IDLE=$idle \
        node --perf-basic-prof "$REPO/tests/data/restarting-cluster.js" >"$TMP/app.out" &
    APP_PID=$!
    local n=0
    while (($(grep -c '^worker' "$TMP/app.out" || true) < 4)); do
        sleep 0.1
        n=$((n + 1))
        ((n < 100)) || { echo "bench-record.sh: the cluster did not start" >&2; exit 1; }
    done
    sleep 1 # let the JIT write its maps
    START_PIDS=$(awk '$1 == "primary" { print $2 } $1 == "worker" { print $2 }' "$TMP/app.out" | paste -sd,)
}

# stop_app: the cluster goes before post-processing (which runs at nice 19,
# as on a host, and would otherwise wait for the busy workers' CPU).
stop_app() {
    kill -TERM "$APP_PID" 2>/dev/null || true
    wait "$APP_PID" 2>/dev/null || true
    APP_PID=""
}

remove_maps() {
    awk '$1 == "primary" || $1 == "worker" { print "/tmp/perf-" $2 ".map" }' "$TMP/app.out" | xargs -r rm -f
}

# run STRATEGY IDLE: one recording and its post-processing; appends a row.
run() {
    local strategy=$1 idle=$2 rec=() script_filter=() perf_pid fds t_rec t_post new_pid all_pids
    start_app "$idle"
    case $strategy in
        p) rec=(-p "$START_PIDS") ;;
        p-thread) rec=(-p "$START_PIDS" --per-thread) ;;
        a-filter) rec=(-a) ;;
    esac
    /usr/bin/time -f '%U %S %M' -o "$TMP/rec.time" \
        perf record -e cpu-clock -F "$FREQ" -g --no-buildid --no-buildid-cache "${rec[@]}" \
        -o "$TMP/perf.data" -- sleep "$DURATION" 2>"$TMP/rec.log" &
    local time_pid=$!
    sleep $((DURATION / 2))
    perf_pid=$(pgrep -P "$time_pid" -x perf | head -n1)
    fds=$(find "/proc/$perf_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    wait "$time_pid" || true
    new_pid=$(awk '$1 == "worker" && $3 == "second" { print $2 }' "$TMP/app.out" | head -n1)
    all_pids=$(awk '$1 == "primary" || $1 == "worker" { print $2 }' "$TMP/app.out" | paste -sd,)
    if [[ $strategy == a-filter ]]; then script_filter=(--pid "$all_pids"); fi
    stop_app
    /usr/bin/time -f '%U %S %M' -o "$TMP/post.time" \
        bash -c 'nice -n 19 perf script -i "$1" --no-inline --force "${@:3}" 2>/dev/null | gzip -6 -n >"$2"' \
        bash "$TMP/perf.data" "$TMP/stacks.gz" ${script_filter[@]+"${script_filter[@]}"}
    t_rec=$(awk '{ printf "%.2f", $1 + $2 }' "$TMP/rec.time")
    t_post=$(awk '{ printf "%.2f", $1 + $2 }' "$TMP/post.time")
    local post_rss_mb data_bytes samples_all samples_kept in_profile
    post_rss_mb=$(awk '{ printf "%.1f", $3 / 1024 }' "$TMP/post.time")
    data_bytes=$(stat -c %s "$TMP/perf.data")
    samples_all=$(perf script -i "$TMP/perf.data" -F pid 2>/dev/null | wc -l)
    samples_kept=$(gzip -dc "$TMP/stacks.gz" | grep -c '^[^[:space:]]' || true)
    in_profile=no
    # (no `gzip | grep -q`: grep's early exit fails the pipe under pipefail)
    gzip -dc "$TMP/stacks.gz" >"$TMP/stacks.txt"
    if [[ -n $new_pid ]] && grep -q "secondLifeLoop" "$TMP/stacks.txt" &&
        grep -E -q "^[^[:space:]].* $new_pid( |/)" "$TMP/stacks.txt"; then
        in_profile=yes
    fi
    rm -f "$TMP/stacks.txt"
    [[ $idle == 1 ]] && in_profile="$in_profile (idle)"
    printf '| %s | %s | %s | %s | %d | %.1f | %d | %s | %s | %s | %s | %s |\n' \
        "$strategy" "$([[ $idle == 1 ]] && echo idle || echo busy)" "$t_rec" \
        "$(awk -v c="$t_rec" -v d="$DURATION" 'BEGIN { printf "%.1f%%", 100 * c / d }')" \
        "$fds" "$(awk -v b="$data_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')" "$samples_all" \
        "$(awk -v b="$data_bytes" -v s="$samples_all" 'BEGIN { if (s > 0) printf "%d", b / s; else printf "-" }')" \
        "$t_post ($(awk -v c="$t_post" -v d="$DURATION" 'BEGIN { printf "%.3f", c / d }')×)" \
        "$post_rss_mb" "$samples_kept" "$in_profile" >>"$TMP/rows"
    printf '%s\n' "$strategy $idle rec=$t_rec fds=$fds data=$data_bytes samples=$samples_all post=$t_post rss=${post_rss_mb}MB kept=$samples_kept restarted=$in_profile" >&2
    rm -f "$TMP/perf.data" "$TMP/stacks.gz"
    remove_maps
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$TMP/rows"
for idle in 0 1; do
    for strategy in p p-thread a-filter; do
        run "$strategy" "$idle"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
    printf '# Recording strategies: a cluster whose worker restarts (issue 8 §3)\n\n'
    printf 'Generated by `scripts/bench-record.sh %s` on %s at commit %s.\n' "$DURATION" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)"
    printf 'Machine: %s CPUs, %s, %s. Load average (1/5/15 min) %s before, %s after:\n' \
        "$(nproc)" "$(uname -r)" "$(perf --version)" "$load_before" "$load_after"
    printf 'the 2 cores are shared with other jobs, so CPU figures are upper bounds.\n\n'
    printf 'A 4-worker cluster (`tests/data/restarting-cluster.js`, `node --perf-basic-prof`, %s) recorded for %s s at %s Hz with `-e cpu-clock -g`; its first worker exits after %s s and the primary forks a replacement (`secondLifeLoop`).\n' \
        "$(node --version)" "$DURATION" "$FREQ" "$((DURATION / 3 + 2))"
    printf 'busy: every worker burns CPU; idle: workers wake once a second.\n\n'
    printf '| strategy | targets | perf record CPU-s | of one core | perf fds | perf.data MiB | samples in perf.data | bytes/sample | post-processing CPU-s (× duration) | post-processing peak RSS MB | samples delivered | restarted worker in profile |\n'
    printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
    cat "$TMP/rows"
    printf '\nTargets: perf record below 2%% of one core with idle targets (no busy-polling); post-processing below 0.1× the duration.\n'
    printf 'Descriptors: `-p` opens threads × CPUs descriptors per event (here %s CPUs), `--per-thread` one per thread, `-a` one per CPU.\n' "$(nproc)"
    printf 'bytes/sample is perf.data over every sample in it (synthesized mmap/comm records of the host included): an upper bound for SAMPLE_BYTES.\n'
    printf '\n`-G <cgroup>` was not measured: this machine has no perf_event cgroup controller (cgroup v1 without perf_event, an empty cgroup2).\n'
} >"$OUT"
echo "wrote $OUT" >&2
