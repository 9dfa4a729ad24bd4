#!/usr/bin/env bash
# extract-script.sh [DOCUMENT]: print the shell script of the flamefire SSM
# document (the single `runCommand` block scalar of step `record`) to stdout,
# exactly as the SSM agent writes it to _script.sh. Plain awk, no YAML library,
# so it runs wherever bash does.
#
#   tests/script/extract-script.sh > /tmp/record.sh
#   cd "$(mktemp -d)" && SSM_Duration=2 ... sh /tmp/record.sh
set -euo pipefail
doc=${1:-"$(dirname "$0")/../../ssm-documents/flamefire-record.yaml"}
awk '
  # Find "runCommand:", then its "- |" item, then print the block: the indent
  # of its first line is stripped; it ends at the first less-indented line.
  state == 0 && /^[ ]*runCommand:[ ]*$/ { state = 1; next }
  state == 1 && /^[ ]*- \|[ ]*$/ { state = 2; next }
  state == 1 { print "extract-script: runCommand is not a single block scalar (- |)" > "/dev/stderr"; exit 2 }
  state == 2 {
    if ($0 ~ /^[ ]*$/) { blank++; next }
    match($0, /^ */); indent = RLENGTH; state = 3
  }
  state == 3 {
    if ($0 ~ /^[ ]*$/) { blank++; next }
    match($0, /^ */)
    if (RLENGTH < indent) { state = 4; next }
    for (; blank > 0; blank--) print ""
    print substr($0, indent + 1)
  }
  END { if (state < 3) { print "extract-script: no runCommand block found" > "/dev/stderr"; exit 2 } }
' "$doc"
