#!/usr/bin/env bash
# build-document.sh [--check]: writes the host script ssm-documents/flamefire-record.sh
# into the runCommand of ssm-documents/flamefire-record.yaml, with its comment
# lines left out: SSM's 64 KB limit on a document counts every byte, runtime
# parameter values included, and the commented script alone is ~50 KB.
#
# The .sh file is the source to read and edit; the YAML is what is deployed
# (by `flamefire document deploy` and Terraform). With --check it changes
# nothing and fails if the YAML is not what this script would write (the test
# suite runs that; tests/script.rs checks the same from Rust).
set -euo pipefail
cd "$(dirname "$0")/.."
sh_file=ssm-documents/flamefire-record.sh
yaml=ssm-documents/flamefire-record.yaml
marker='   - |'

# The YAML up to and including the runCommand block's "- |" line...
head=$(awk -v m="$marker" '{ print } $0 == m { exit }' "$yaml")
grep -qx -- "$marker" <<<"$head" || { echo "build-document: no '$marker' line in $yaml" >&2; exit 2; }
# ...then the script: comment-only lines dropped (except the first two, which
# say what this is and keep ShellCheck's shell directive; ShellCheck's disable
# directives stay too, without their reasons, since the deployed text is
# linted as well) and every line's own
# indentation dropped (the script has no heredoc and no multi-line string, so
# bash parses the same program: tests/shells.rs compares `declare -f` of
# both), then indented 4, the least YAML allows under "   - |" (the step's keys at
# column 3, one more than "inputs:", which is all YAML asks).
new=$(
    printf '%s\n' "$head"
    awk '
        NR <= 2 { print; next }
        /^[[:space:]]*# shellcheck disable=/ { sub(/^[[:space:]]+/, ""); sub(/ #.*/, ""); print; next }
        /^[[:space:]]*#/ { next }
        { sub(/^[[:space:]]+/, ""); print }
    ' "$sh_file" | sed -e 's/^\(.\)/    \1/'
)
if [[ ${1:-} == --check ]]; then
    if [[ $new != "$(cat "$yaml")" ]]; then
        echo "build-document: $yaml is out of date with $sh_file; run scripts/build-document.sh" >&2
        exit 1
    fi
    exit 0
fi
printf '%s\n' "$new" >"$yaml"
