#!/usr/bin/env bash
# record-corpus.sh [OUT_DIR]: re-record the perf layout corpus in
# tests/data/corpus/ on this machine (issue 10).
#
# Every NAME.perf.gz is real `perf script` output of real processes recorded
# here by real perf: Node with --perf-basic-prof, a busy shell loop whose
# command name holds spaces and a digit, Python, and Java. The recordings are
# printed in the layouts that perf's field selection (-F), --ns, --header,
# several events, a tracepoint and recording without call graphs produce.
# tests/data/corpus/README.md lists how each file was made.
#
# The expected folded stacks (expected/NAME.folded) are NOT written here: run
#   FLAMEFIRE_BLESS=1 cargo test --test integration corpus
# which writes them with the test's own reference folder (tests/corpus.rs),
# and read the diff line by line before committing it.
#
# Needs: root, perf, node, python3, java + javac, gzip, tracefs (mounted here
# if missing). Takes about half a minute.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$repo/tests/data/corpus"}
freq=199

die() {
  printf 'record-corpus: %s\n' "$*" >&2
  exit 1
}

((EUID == 0)) || die "run as root (tracepoints and perf maps need it)"
for tool in perf node python3 java javac gzip; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/bootstrap.sh installs perf and node; apt-get install python3 default-jdk-headless)"
done
if [[ ! -e /sys/kernel/tracing/events/sched ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
    die "tracefs is not mounted and cannot be (mount -t tracefs nodev /sys/kernel/tracing)"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
cd "$tmp"

# The workloads: each burns CPU for about a second.
cat >busy.js <<'EOF'
function leaf(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); return s; }
function middle() { return leaf(20000); }
const end = Date.now() + 1000;
let total = 0;
while (Date.now() < end) total += middle();
console.log(total > 0 ? "" : "x");
EOF
cat >busy.py <<'EOF'
import time
def leaf(n):
    return sum(i * i for i in range(n))
def middle():
    return leaf(2000)
end = time.time() + 1.0
while time.time() < end:
    middle()
EOF
cat >Busy.java <<'EOF'
public class Busy {
    static double leaf(int n) { double s = 0; for (int i = 0; i < n; i++) s += Math.sqrt(i); return s; }
    static double middle() { return leaf(20000); }
    public static void main(String[] args) {
        long end = System.currentTimeMillis() + 1500;
        double total = 0;
        while (System.currentTimeMillis() < end) total += middle();
        System.out.println(total > 0 ? "" : "x");
    }
}
EOF
javac Busy.java
# A command name with spaces and a digit: the kernel takes comm from the
# name the program was run by.
ln -s "$(command -v bash)" "busy loop 2"
cat >mixed.sh <<EOF
node --perf-basic-prof busy.js &
"$tmp/busy loop 2" -c 'end=\$((SECONDS + 1)); while ((SECONDS < end)); do :; done' &
python3 busy.py &
wait
EOF

record() { # record NAME PERF-RECORD-ARGS... -- COMMAND...
  local name=$1
  shift
  perf record -q -o "$name.data" "$@" >/dev/null 2>"$name.log" || die "perf record $name failed: $(cat "$name.log")"
}
print_as() { # print_as NAME DATA PERF-SCRIPT-ARGS...
  local name=$1 data=$2
  shift 2
  perf script -i "$data.data" "$@" 2>/dev/null | gzip -n -9 >"$out/$name.perf.gz"
  echo "record-corpus: $name.perf.gz" >&2
}

# Node, a shell loop and Python, with call graphs: one recording, many layouts.
record mixed --sample-cpu -F "$freq" -g -- bash mixed.sh
print_as default mixed --no-inline
print_as header mixed --no-inline --header
print_as ns mixed --no-inline --ns
print_as no-time mixed --no-inline -F comm,pid,tid,cpu,period,event,ip,sym,dso
print_as minimal mixed --no-inline -F comm,pid,event,ip,sym
print_as tid-time-symoff mixed --no-inline -F comm,tid,time,event,ip,sym,dso,symoff
print_as no-comm mixed --no-inline -F pid,time,period,event,ip,sym,dso
print_as ip-dso mixed --no-inline -F comm,pid,time,event,ip,dso
# Frames without indentation: perf always indents them; some tools strip it.
perf script -i mixed.data --no-inline 2>/dev/null | sed 's/^[[:space:]]*//' | gzip -n -9 >"$out/unindented.perf.gz"

# Without call graphs: one-line stacks after the event name, comm padded to 16.
record flat --sample-cpu -F "$freq" -- bash mixed.sh
print_as one-line flat --no-inline

# Two events in one recording, with modifiers.
record two-events -F "$freq" -g -e cpu-clock:u,page-faults -- node --perf-basic-prof busy.js
print_as two-events two-events --no-inline

# A tracepoint (root + tracefs): context switches of a program that sleeps.
record tracepoint -g -e sched:sched_switch -- bash -c 'for _ in {1..40}; do sleep 0.01; done'
print_as tracepoint tracepoint --no-inline

# Java, interpreted and JIT frames without a perf map.
record java -F "$freq" -g -- java -XX:+UseSerialGC Busy
print_as java java --no-inline

ls -l "$out"/*.perf.gz >&2
