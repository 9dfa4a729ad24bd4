#!/usr/bin/env bash
# Installs what flamefire needs on this machine (Debian/Ubuntu): perf, Node.js
# and npm (for the demo and the tests), curl, and Python's venv (for the
# emulator and the Terraform linters). With --for-tests (scripts/test.sh) also
# the tools only the tests use: shellcheck (lints the document's script), Go
# (its `go tool pprof` checks the pprof export, its regexp is the SSM agent's
# pattern engine), protoc (checks the generated pprof types), and busybox and
# mksh (host shells the script must run under), strace (counts the
# processes the script starts) and faketime (a laptop whose clock is off). Idempotent: it installs only what is missing.
set -euo pipefail
for_tests=false
[[ ${1:-} == --for-tests ]] && for_tests=true

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "bootstrap: run as root or install sudo" >&2; exit 2; }
    SUDO="sudo"
fi

need=()
perf --version >/dev/null 2>&1 || need+=(linux-perf)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl)
if $for_tests; then
    # `go tool pprof` reads the exported profiles back in tests/pprof.rs; protoc
    # lets scripts/gen-pprof-proto.sh --check regenerate src/pprof/proto.rs.
    command -v go >/dev/null || need+=(golang-go)
    command -v protoc >/dev/null || need+=(protobuf-compiler)
    command -v shellcheck >/dev/null || need+=(shellcheck)
    # The host shells that may be /bin/sh besides dash and bash
    # (tests/shells.rs runs the document's script under each).
    [[ -x /bin/busybox ]] || need+=(busybox)
    [[ -x /bin/mksh ]] || need+=(mksh)
    # tests/on_fire.rs counts the processes the script starts (strace -f).
    command -v strace >/dev/null || need+=(strace)
    # tests/clock.rs runs flamefire on a clock 15 minutes fast (libfaketime).
    command -v faketime >/dev/null || need+=(faketime)
fi
command -v python3 >/dev/null || need+=(python3)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi

if ((${#need[@]})); then
    echo "bootstrap: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
perf --version >/dev/null 2>&1 || {
    echo "bootstrap: perf is still missing: install linux-perf (Debian) or linux-tools-\$(uname -r) (Ubuntu)" >&2
    exit 2
}
