#!/usr/bin/env bash
# End-to-end speed of `flamefire render FILE --out DIR` (collapse, SVG,
# .folded, report.html) against the inferno CLI pipeline
# (`inferno-collapse-perf | inferno-flamegraph`) on the same inputs, alternating
# in one run, as median ratios; plus the command's peak memory against the
# largest input. See benches/throughput.rs for the cases and targets.
#
# Usage: scripts/bench.sh            (FLAMEFIRE_BENCH_RUNS=11 for more rounds)
#
# Before/after a change: build the old commit's binary, copy it aside, and
# pass it as FLAMEFIRE_BENCH_BASELINE=/path/to/flamefire; it then takes its
# turn in the same rounds as this build and the inferno CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

# The CLI is compared at the inferno version flamefire links, so that the
# ratio measures flamefire's pipeline and not an inferno upgrade.
inferno_version=$(awk '/^name = "inferno"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
installed=$(cargo install --list | awk '/^inferno v/ { sub(/^v/, "", $2); sub(/:$/, "", $2); print $2 }')
if ! command -v inferno-collapse-perf >/dev/null || [ "$installed" != "$inferno_version" ]; then
  echo "installing the inferno CLI $inferno_version" >&2
  cargo install inferno --locked --version "$inferno_version"
fi

# GNU time measures the CLI's peak memory; flamefire's comes from /proc.
if [ ! -x /usr/bin/time ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq time >/dev/null || echo "no GNU time: the CLI's peak memory is shown as n/a" >&2
fi

exec cargo bench --bench throughput "$@"
