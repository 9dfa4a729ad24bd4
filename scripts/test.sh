#!/usr/bin/env bash
# The whole test suite, from a clean clone on a fresh Debian machine with Rust:
#   1. installs perf, Node.js, curl and a Python venv with the pinned emulator
#      (moto server) and Terraform linters;
#   2. starts the AWS emulator on 127.0.0.1 (tests/emulator/README.md);
#   3. runs rustfmt, clippy, every Rust test (unit, golden, CLI, end to end,
#      the pprof export through `go tool pprof`), the check of the generated
#      pprof types, the offline Terraform/IAM checks and the report in
#      headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

scripts/bootstrap.sh --for-tests

export FLAMEFIRE_VENV="${FLAMEFIRE_VENV:-$REPO/.venv}"
if [[ ! -x $FLAMEFIRE_VENV/bin/python ]]; then
    python3 -m venv "$FLAMEFIRE_VENV"
fi
# The emulator's pins; scripts/lint-terraform.sh keeps checkov and parliament
# apart (their boto3 pin conflicts with moto's).
"$FLAMEFIRE_VENV/bin/pip" install -q --disable-pip-version-check -r tests/emulator/requirements.txt

# Never reach real AWS, never probe instance metadata (169.254.169.254).
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_SESSION_TOKEN
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
export FLAMEFIRE_EMULATOR_PORT="${FLAMEFIRE_EMULATOR_PORT:-5055}"
export AWS_ENDPOINT_URL="http://127.0.0.1:$FLAMEFIRE_EMULATOR_PORT"

tests/emulator/start.sh
stop_emulator() { tests/emulator/stop.sh >/dev/null 2>&1 || true; }
trap stop_emulator EXIT

echo "== emulator strictness (tests/emulator/strict_test.py)" >&2
"$FLAMEFIRE_VENV/bin/python" tests/emulator/strict_test.py
echo "== rustfmt" >&2
cargo fmt --check
echo "== clippy" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "== the document's script: in sync with its source, shellcheck" >&2
scripts/build-document.sh --check
shellcheck ssm-documents/flamefire-record.sh
tests/script/extract-script.sh >"${TMPDIR:-/tmp}/flamefire-record-deployed.sh"
shellcheck "${TMPDIR:-/tmp}/flamefire-record-deployed.sh"
echo "== cargo test (tests/pprof.rs reads the pprof export back with go tool pprof)" >&2
cargo test --locked
echo "== generated pprof types match proto/profile.proto" >&2
scripts/gen-pprof-proto.sh --check
echo "== terraform and IAM checks" >&2
scripts/lint-terraform.sh
echo "== report.html in headless Chromium" >&2
tests/browser/run.sh
