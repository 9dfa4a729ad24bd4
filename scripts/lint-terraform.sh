#!/usr/bin/env bash
# Offline checks for terraform/: formatting, checkov, `terraform validate` and
# `terraform test` on the provider-free policy module, parliament on the
# rendered IAM policies, and the policy-intent tests. No provider and no network
# needed (`terraform validate` of the root module needs the AWS provider, which
# cannot be downloaded here; see terraform/README.md).
#
#   scripts/lint-terraform.sh            # from anywhere; paths resolve from the repo root
#   FLAMEFIRE_VENV=/path/to/venv scripts/lint-terraform.sh
#
# Uses the interpreter of the venv at ${FLAMEFIRE_VENV:-<repo>/.venv} (created if
# missing). The pinned linters of terraform/test/requirements.txt go into
# <venv>/flamefire-lint with `pip install --target`, and only the linters run
# with it on PYTHONPATH: checkov pins an old boto3, and the venv's own packages
# (moto and friends) must not be downgraded by a lint run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FLAMEFIRE_VENV:-$REPO/.venv}"
TF_DIR="terraform"
TEST_DIR="$TF_DIR/test"
POLICY_MODULE="$TF_DIR/modules/iam-policies"
cd "$REPO"

# Keep every tool offline and quiet about missing user config:
export CHECKPOINT_DISABLE=1            # terraform: no version/alert check
export TF_CLI_CONFIG_FILE=/dev/null    # terraform: no ~/.terraformrc warning
export TF_IN_AUTOMATION=1
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true # checkov: no PyPI version check
export BC_SKIP_MAPPING=TRUE              # checkov: no download of the Bridgecrew ID mapping
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1          # no __pycache__ in the work tree

step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n==> [%d] %s\n' "$step_no" "$*"
}
die() {
  printf '\nFAILED: %s\n' "$*" >&2
  exit 1
}

for tool in terraform python3; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH (terraform is needed for fmt and console; python3 >= 3.9 for the venv)"
done

step "pinned linters in $VENV/flamefire-lint"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV" || die "could not create the venv at $VENV"
fi
PY="$VENV/bin/python"
LINT_SITE="$VENV/flamefire-lint"
stamp="$("$PY" -c 'import sys; print(sys.version)')
$(cat "$TEST_DIR/requirements.txt")"
# Install once per requirements/interpreter change; later runs need no network.
if [[ ! -f "$LINT_SITE/.installed" || "$(cat "$LINT_SITE/.installed")" != "$stamp" ]]; then
  rm -rf "$LINT_SITE"
  "$PY" -m pip install --quiet --target "$LINT_SITE" -r "$TEST_DIR/requirements.txt" ||
    die "pip could not install $TEST_DIR/requirements.txt into $LINT_SITE"
  printf '%s' "$stamp" >"$LINT_SITE/.installed"
fi
lint_py() { PYTHONPATH="$LINT_SITE${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$@"; }
lint_py -c 'import checkov.version, importlib.metadata as m
print("checkov", checkov.version.version, "/ parliament", m.version("parliament"))' ||
  die "the linters in $LINT_SITE do not import; delete that folder and run again"

step "terraform fmt -check -recursive $TF_DIR"
if ! terraform fmt -check -recursive -diff "$TF_DIR"; then
  die "terraform files are not formatted; fix with: terraform fmt -recursive $TF_DIR"
fi
echo "formatted"

step "checkov on $TF_DIR (offline: --skip-download, no update check, no mapping download)"
lint_py "$LINT_SITE/bin/checkov" \
  --directory "$TF_DIR" \
  --framework terraform \
  --skip-download \
  --quiet \
  --compact ||
  die "checkov reported failed checks; fix them, or add an inline '#checkov:skip=CKV_...:<real reason>' on the resource"

step "terraform validate + terraform test on $POLICY_MODULE (provider-free, offline)"
# The root module needs the AWS provider for `terraform validate`, which cannot
# be downloaded offline; the policy submodule has no provider, so init (local
# files only), validate and test all run here. TF_DATA_DIR keeps .terraform/
# out of the work tree.
tf_data="$(mktemp -d "${TMPDIR:-/tmp}/flamefire-tfdata.XXXXXX")"
rendered="$(mktemp -d "${TMPDIR:-/tmp}/flamefire-policies.XXXXXX")"
trap 'rm -rf "$tf_data" "$rendered"' EXIT
(
  export TF_DATA_DIR="$tf_data"
  terraform -chdir="$POLICY_MODULE" init -backend=false -input=false -no-color >/dev/null &&
    terraform -chdir="$POLICY_MODULE" validate -no-color &&
    terraform -chdir="$POLICY_MODULE" test -no-color
) || die "terraform validate/test failed for $POLICY_MODULE (see above)"

step "parliament on every rendered IAM policy"
# Sample values: account 123456789012, eu-west-1, bucket flamefire-stacks-example,
# prefix flamefire/, document flamefire-record, tag flamefire=enabled,
# principal arn:aws:iam::123456789012:role/oncall (see render_policies.py).
python3 "$TEST_DIR/render_policies.py" --out "$rendered" >/dev/null ||
  die "could not render terraform/policies/*.json.tftpl"
# The same templates through Terraform's own templatefile(): proves they are
# valid template syntax and that the plain replacement above renders them faithfully.
python3 "$TEST_DIR/render_policies.py" --check-terraform ||
  die "templatefile() and the test rendering disagree (see above)"
lint_py "$TEST_DIR/parliament_check.py" "$rendered" ||
  die "parliament reported findings (see above); fix the policy. A proven false positive goes in $TEST_DIR/parliament-ignores.yaml with its reason"

step "policy intent ($TEST_DIR/test_policy_intent.py)"
python3 "$TEST_DIR/test_policy_intent.py" || die "policy intent tests failed (see FAIL lines above)"

printf '\nAll terraform checks passed.\n'
