#!/usr/bin/env bash
# run-hostile.sh [SCRIPT] [CORPUS]: run the document script once per
# (parameter, hostile value) pair, the value in SSM_<Name> and valid values in
# the others, under `sh` as the SSM agent does. Each run must exit 2 with one
# line on stderr naming the parameter, write nothing, and run nothing: a
# canary file /tmp/PWNED must never appear. Prints 'N passed, N failed'.
#
# Values with NUL cannot be put in an environment variable and are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script=${1:-}
corpus=${2:-"$here/../data/hostile-values.txt"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z $script ]]; then
  script=$tmp/record.sh
  "$here/extract-script.sh" >"$script"
fi

params=(Duration Frequency Pids ProcessName StartAt RunId UploadUrl UploadKeyPrefix
  UploadPolicy UploadCredential UploadDate UploadSignature UploadSecurityToken NoInstall)

# decode LINE: the corpus escapes (see the corpus header) into REPLY; returns 1
# for values that contain NUL.
decode() {
  local line=$1 count text
  [[ $line == *'\0'* ]] && return 1
  if [[ $line == '@repeat '* ]]; then
    read -r _ count text <<<"$line"
    printf -v text '%b' "$text"
    REPLY=""
    for ((; count > 0; count--)); do REPLY+=$text; done
    return 0
  fi
  [[ $line == '\#'* ]] && line=${line:1}
  printf -v REPLY '%b' "$line"
}

passed=0 failed=0 skipped=0
rm -f /tmp/PWNED
while IFS= read -r line || [[ -n $line ]]; do
  [[ -z $line || $line == '#'* ]] && continue
  if ! decode "$line"; then skipped=$((skipped + 1)); continue; fi
  value=$REPLY
  for name in "${params[@]}"; do
    out=$tmp/out && rm -rf "$out" && mkdir "$out"
    rc=0
    (
      cd "$out"
      export SSM_Duration=1 SSM_Frequency=99 SSM_Pids=all SSM_ProcessName=flamefire-no-such-process
      export SSM_StartAt=0 SSM_RunId=hostile SSM_UploadUrl='' SSM_UploadKeyPrefix='' SSM_UploadPolicy=''
      export SSM_UploadCredential='' SSM_UploadDate='' SSM_UploadSignature='' SSM_UploadSecurityToken=''
      export SSM_NoInstall=false SSM_Probe=false
      export "SSM_$name=$value"
      exec sh "$script" >"$tmp/stdout" 2>"$tmp/stderr"
    ) || rc=$?
    why=""
    if [[ -e /tmp/PWNED ]]; then why="/tmp/PWNED was created"; rm -f /tmp/PWNED
    elif ((rc != 2)); then why="exit $rc, expected 2"
    elif [[ $(wc -l <"$tmp/stderr") -ne 1 ]]; then why="stderr is not one line"
    elif ! grep -q "^flamefire: error: invalid parameter $name: " "$tmp/stderr"; then why="stderr does not name $name"
    elif [[ -n $(ls -A "$out") ]]; then why="files were written"
    fi
    if [[ -n $why ]]; then
      failed=$((failed + 1))
      printf 'FAIL %s=%q: %s\n' "$name" "${value:0:60}" "$why"
      head -c 300 "$tmp/stderr"
    else
      passed=$((passed + 1))
    fi
  done
done <"$corpus"
echo "hostile values: $skipped skipped (NUL)"
echo "$passed passed, $failed failed"
((failed == 0))
