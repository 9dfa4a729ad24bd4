# flamefire-record: the host side of a flamefire run (ssm-documents/flamefire-record.sh has the comments).
# shellcheck shell=bash
#
# This file is the source: scripts/build-document.sh copies it, without its
# comment lines, into the runCommand of flamefire-record.yaml (SSM's 64 KB
# document limit). Edit here, then run that script.
#
# Records on-CPU stacks of Node.js processes with perf and delivers
# stacks.gz (gzip of `perf script --no-inline` text) and meta.json, either
# into the current directory (local mode: UploadUrl empty) or to S3 through a
# presigned POST (upload mode).
#
# Inputs: only the SSM_<Name> environment variables that the SSM agent sets
# for parameters with `interpolationType: ENV_VAR` (agent >= 3.3.2746.0), plus
# AWS_SSM_INSTANCE_ID and AWS_SSM_REGION_NAME. Document parameters are never
# pasted into this text, so no value can become shell code.
#
# Runs under the SSM agent as `sh _script.sh` (dash on Debian/Ubuntu), with
# no argument, and under `flamefire local` as `bash script.sh --out DIR`.
#
# Exit codes: 0 ok | 1 unexpected failure | 2 invalid parameter or agent too
# old | 3 no target process | 4 perf unavailable | 5 not enough disk or
# memory, or no work directory | 6 recording failed | 7 delivery failed |
# 8 another run held the host's lock too long | 128+N signal N.
#
# Test-only knobs (never set by the SSM agent, which passes only SSM_*
# parameters; tests/host_on_fire.rs): FLAMEFIRE_TEST_WORK_BASE replaces
# /var/tmp and /tmp as the work directory's base; FLAMEFIRE_TEST_SCRIPT_S
# replaces perf script's time limit; FLAMEFIRE_TEST_MEMAVAIL_KIB replaces
# MemAvailable; FLAMEFIRE_TEST_OUT is local mode's output directory.

# The agent runs this text as `sh -c _script.sh`. /bin/sh may be dash
# (Debian, Ubuntu) or bash in POSIX mode (Amazon Linux 2, RHEL, SLES), and
# bash before 5.1 refuses bash syntax such as process substitution in POSIX
# mode. So switch to a plain bash before any bash-only syntax is read.
# Everything up to the exec is POSIX sh. FLAMEFIRE_REEXEC stops a loop where
# bash itself starts in POSIX mode (POSIXLY_CORRECT or an exported SHELLOPTS,
# both dropped for the re-exec).
flamefire_posix=no
if [ -z "${BASH_VERSION:-}" ]; then
  flamefire_posix=yes
else
  case ":${SHELLOPTS:-}:" in *:posix:*) flamefire_posix=yes ;; esac
fi
if [ "$flamefire_posix" = yes ] && [ -z "${FLAMEFIRE_REEXEC:-}" ]; then
  if ! command -v bash >/dev/null 2>&1; then
    echo "flamefire: error: bash is required on the host but is not in PATH ($PATH); install bash" >&2
    exit 1
  fi
  if [ ! -f "$0" ]; then
    echo "flamefire: error: cannot re-run under bash: the script path is unknown (\$0='$0'); run it with bash" >&2
    exit 1
  fi
  FLAMEFIRE_REEXEC=1
  export FLAMEFIRE_REEXEC
  exec env -u SHELLOPTS -u POSIXLY_CORRECT bash "$0" "$@"
fi
if [ -z "${BASH_VERSION:-}" ]; then
  echo "flamefire: error: re-running under bash did not give bash (\$BASH_VERSION is empty); install bash" >&2
  exit 1
fi
# Still POSIX mode (bash started that way): leave it, the rest is bash.
set +o posix
unset flamefire_posix FLAMEFIRE_REEXEC

# -E: functions and subshells inherit the ERR trap (set below), so that an
# unexpected failure anywhere is named when the script ends (issue 18 §1: a
# SIGPIPE under pipefail ended it with exit 141 and no word).
set -Eeuo pipefail
umask 077
# fd 3: the script's stderr, for error lines, even where a wait has sent
# stderr to /dev/null (wait_children).
exec 3>&2
# Byte-wise regexes, ranges and messages, whatever the host's locale: [0-9]
# must never match fullwidth digits and friends.
export LC_ALL=C

# --- limits -----------------------------------------------------------------
# The document's timeoutSeconds is 1800; the script keeps its own deadline 60 s
# earlier so that it fails with a message instead of being killed:
# StartAt wait <= 600 + install <= 240 + record <= 320 + perf script <= 300,
# and what is left for the upload.
readonly BUDGET_S=1740
readonly MAX_START_DELAY_S=600
# A new package manager attempt starts only within this budget (one that
# runs is never killed, see try_install).
readonly INSTALL_TIMEOUT_S=240
# Longest life of one package manager run, even past a cancel (try_install).
readonly INSTALL_RUN_S=900
readonly MIN_FREE_MIB=256
readonly BIG_MAP_MIB=256
# Container maps are copied (perf < 4.14 only) up to this size.
readonly MAP_COPY_MIB=512
# One event on every host, so that fleet flamegraphs add up (see record).
readonly EVENT=cpu-clock
readonly CMDLINE_MAX=512
# Bytes per sample in perf.data with -a -g, for the disk estimate before
# recording. Measured (scripts/bench-record.sh, benches/record/RESULTS.md):
# 139-207 for a Node cluster alone, up to 863 when compilers with deep stacks
# shared the host (perf.data holds every process with -a); 1,000 covers that.
# Re-measured for issue 18 §4 (scripts/bench-saturated.sh,
# benches/saturated/RESULTS.md): 210 for a saturated 2-worker Node
# cluster (perf.data bytes / samples perf script read back), in line with
# the 190-250 of issue 18; the deep-stack worst case above sets the figure.
readonly SAMPLE_BYTES=1000
# Post-processing priority, chosen by measurement on a saturated host (a
# burner on every core in the same scheduling group; issue 18 §2,
# scripts/bench-saturated.sh, benches/saturated/RESULTS.md). Against nice 0
# on an idle machine: nice 19 >= 59x, nice 10 20x, nice 5 10.5x (the app
# kept 83% of the CPU), nice 0 4.6x (64%), nice 0 under a 50% quota 4.5x
# (68%). The quota bounds what Node loses to half a CPU whatever the core
# count (0.5% of a 96-vCPU host). So where a cpu cgroup can be made, perf
# script runs at nice 0 under a quota of SCRIPT_QUOTA_PCT% of one CPU, else
# at SCRIPT_NICE.
readonly SCRIPT_QUOTA_PCT=50 SCRIPT_NICE=5
# perf.data bytes perf script gets through a second on a saturated host
# (RESULTS.md: 81 kB/s under the quota, 35 kB/s at nice 5), with a margin:
# sizes its time limit, 60 s + perf.data / SCRIPT_BPS (within the deadline).
readonly SCRIPT_BPS=20000
# perf script's peak RSS: a base plus this many times the bytes of the JIT
# maps it loads (issue 18 §3: a 27.6 MB map raised it from 77 to 156 MB;
# RESULTS.md). It may use half of MemAvailable, and is refused above that.
readonly SCRIPT_BASE_MIB=100 MAP_RSS_X=3
# Recording must leave at least this share of the filesystem free (or half
# of what is free, on a disk already fuller than that: check_disk_budget).
readonly KEEP_FREE_PCT=20
# How long a second run on the same host waits for the first.
readonly LOCK_WAIT_S=360

# --- state (the EXIT trap reads these) --------------------------------------
# WORK: the private work dir, removed on every exit path. CHILD_PIDS: the
# long-running children we are waiting for, if any. CLEANUP_FILES: maps
# copied out of containers, staged outputs. RESTORE_OWNERS:
# "uid:gid:inode:path" of maps chowned to root (old perf only). (Comments
# on lines of their own: build-document.sh leaves those out of the YAML.)
WORK=""
CHILD_PIDS=()
CLEANUP_FILES=()
RESTORE_OWNERS=()
WARNINGS=()
# SAID: an error line has been printed. ERR_AT: the last failed command (the
# ERR trap). INSTALL_PID: a package manager run, never killed (try_install).
SAID="" ERR_AT="" INSTALL_PID=""
# Per-pid warnings are summed up by kind into one line each (the agent keeps
# only the start of the output: 14 per-pid lines would push the error out).
declare -A PW_COUNT=() PW_PIDS=() PW_TEXT=()
PW_KINDS=()

# post-processing cgroups, removed on exit; logs in RAM (make_workdir)
CGS=() LOGS=""
T_PID=() T_CMDLINE=() T_VERSION=() T_NSPID=() T_MAP=() T_MAP_BYTES=()
# Every pid looked at for Pids=all, so that watch_new_targets reads each once.
declare -A SEEN_PIDS=()

# --- messages ---------------------------------------------------------------
# stderr carries progress notes as they happen, and at the end the error line
# FIRST, then warnings summed up in one line: the SSM agent keeps only the
# first ~2,500 characters of the output (iohandler.TruncateOutput), and the
# operator must see the cause.
note() { printf 'flamefire: %s\n' "$*" >&3; }

warn() { WARNINGS+=("$1"); }

# warn_pid KIND PID TEXT: a warning about one target; all pids with the same
# KIND become one warning "N/M pids TEXT (pids ...)".
warn_pid() {
  local kind=$1 pid=$2
  if [[ -z ${PW_COUNT[$kind]+x} ]]; then
    PW_KINDS+=("$kind")
    PW_COUNT[$kind]=0
    PW_PIDS[$kind]=""
    PW_TEXT[$kind]=$3
  fi
  PW_COUNT[$kind]=$((PW_COUNT[$kind] + 1))
  if ((PW_COUNT[$kind] <= 8)); then PW_PIDS[$kind]+="${PW_PIDS[$kind]:+ }$pid"; fi
}

# flush_pid_warnings: the per-kind summaries into WARNINGS (once).
flush_pid_warnings() {
  local kind n more
  for kind in ${PW_KINDS[@]+"${PW_KINDS[@]}"}; do
    n=${PW_COUNT[$kind]}
    more=""
    if ((n > 8)); then more=" ..."; fi
    WARNINGS+=("$n/$TARGETS_FOUND pids ${PW_TEXT[$kind]} (pids ${PW_PIDS[$kind]}$more)")
  done
  PW_KINDS=()
}

# warnings_line: every warning in one line of at most 400 characters.
warnings_line() {
  local w line=""
  for w in ${WARNINGS[@]+"${WARNINGS[@]}"}; do
    line+="${line:+; }$w"
  done
  REPLY=$(printable "$line" 400)
}

# say_error MESSAGE: the error line, then the warnings in one line. SAID
# marks that the operator has been told why the script ends.
say_error() {
  SAID=1
  printf 'flamefire: error: %s\n' "$(printable "$*" 1000)" >&3
  flush_pid_warnings
  if ((${#WARNINGS[@]} > 0)); then
    warnings_line
    printf 'flamefire: %d warning(s): %s\n' "${#WARNINGS[@]}" "$REPLY" >&3
  fi
}

# die CODE MESSAGE: say_error, then exit (the EXIT trap cleans up).
die() {
  local code=$1
  shift
  say_error "$*"
  exit "$code"
}

# printable VALUE [MAX]: a value that may be hostile, made safe to echo:
# non-printable bytes become '?', long values are cut.
printable() {
  local max=${2:-64} s=$1
  s=${s:0:$max}
  s=${s//[^[:print:]]/?}
  printf '%s' "$s"
  if ((${#1} > max)); then printf '...'; fi
}

# --- time -------------------------------------------------------------------
# now_us: microseconds since the epoch into REPLY. Always from date: bash 4.2
# (Amazon Linux 2) has no EPOCHREALTIME (bash-5.0 NEWS b), and there a value
# inherited from the environment would be a stale constant. A few forks a run.
now_us() {
  local t
  t=$(date +%s.%N)
  local sec=${t%%.*} frac=${t#*.}000000
  REPLY=$((sec * 1000000 + 10#${frac:0:6}))
}

# seconds_since START_US: elapsed seconds with 3 decimals, into REPLY.
seconds_since() {
  local start=$1
  now_us
  local d=$((REPLY - start))
  if ((d < 0)); then d=0; fi
  printf -v REPLY '%d.%03d' $((d / 1000000)) $(((d % 1000000) / 1000))
}

remaining_s() { REPLY=$((DEADLINE - $(date +%s))); }

# --- children and cleanup ---------------------------------------------------
# The SSM agent stops a command (CancelCommand, timeout) with SIGKILL to the
# script's process group and nothing else (amazon-ssm-agent
# agent/executers/executers_unix.go, killProcess), so no trap runs then.
# Hence every child stays in our process group: no timeout(1) but with
# --foreground (else it makes its own group and would outlive us), no nohup,
# and setsid only for a package manager, which must outlive a cancel
# (try_install). Time limits are kept by wait_children itself.
#
# start_child CMD... [redirections]: run a command in the background.
# Redirections go on start_child only: on the waiting shell they would
# swallow the trap's own message.
start_child() {
  "$@" &
  CHILD_PIDS+=("$!")
}

is_alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  read -r state 2>/dev/null <"/proc/$1/stat" || return 1
  state=${state##*) }
  [[ ${state:0:1} != Z ]]
}

# wait_children LIMIT_S: wait for every started child, at most LIMIT_S
# seconds; past that, SIGKILL the first (TIMED_OUT=1) and give the others
# 30 s more to finish with what it wrote (write_stacks: perf script, then
# the readers of its output), then SIGKILL them too. The exit status of each
# child goes into CHILD_RCS, in start order. bash runs traps only between
# commands, so the wait polls: INT/TERM/HUP act within 0.2 s.
# wait_children LIMIT_S WATCH: also run the function WATCH about once a second
# while waiting (record uses it to find Node processes that start meanwhile).
wait_children() {
  local limit=$1 watch=${2:-} pid alive end rc ticks=0
  TIMED_OUT=0
  CHILD_RCS=()
  # bash prints "<line>: PID Killed ..." for a child killed by a signal (ours,
  # or the OOM killer's) at whatever command comes next: on stderr, before
  # our error line, in the 2,500 characters the agent keeps. So the whole
  # wait runs with stderr to /dev/null; CHILD_RCS says it (128+N), and an
  # error line goes to fd 3 (say_error), the script's own stderr. The
  # group starts before the first command that forks (date): a child killed
  # while bash waited for it was announced on stderr (seen under load).
  {
  end=$(($(date +%s) + limit))
  while :; do
    if [[ -n $watch ]] && ((ticks++ % 5 == 0)); then "$watch"; fi
    alive=0
    for pid in ${CHILD_PIDS[@]+"${CHILD_PIDS[@]}"}; do
      if is_alive "$pid"; then alive=1; fi
    done
    ((alive)) || break
    if (($(date +%s) >= end)); then
      if ((TIMED_OUT)); then
        for pid in "${CHILD_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
        break
      fi
      TIMED_OUT=1 end=$((end + 30))
      kill -KILL "${CHILD_PIDS[0]}" 2>/dev/null || true
    fi
    sleep 0.2
  done
  for pid in ${CHILD_PIDS[@]+"${CHILD_PIDS[@]}"}; do
    rc=0
    wait "$pid" || rc=$?
    CHILD_RCS+=("$rc")
  done
  } 2>/dev/null
  CHILD_PIDS=()
}

# wait_child LIMIT_S: wait_children for one child; returns its status.
wait_child() {
  wait_children "$1"
  return "${CHILD_RCS[0]:-1}"
}

# stop_children: SIGKILL whatever we started (used on exit), but a package
# manager (try_install). perf.data and partial output die with the work
# directory, so nothing gentler is needed.
stop_children() {
  local pid
  for pid in ${CHILD_PIDS[@]+"${CHILD_PIDS[@]}"}; do
    [[ $pid == "$INSTALL_PID" ]] || kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in ${CHILD_PIDS[@]+"${CHILD_PIDS[@]}"}; do
    [[ $pid == "$INSTALL_PID" ]] || wait "$pid" 2>/dev/null || true
  done
  CHILD_PIDS=()
}

cleanup() {
  local status=$? entry uid gid inode path
  trap - EXIT INT TERM HUP ERR
  set +e
  # No path may end without saying why: an unexpected failure (errexit) is
  # named here, with exit 1 as the header documents.
  if ((status != 0)) && [[ -z $SAID ]]; then
    say_error "unexpected failure: ${ERR_AT:-exit $status}"
    status=1
  fi
  stop_children
  # Give maps back to their owners, but only if they are still the files we
  # chowned (chown -h never follows a symlink swapped in meanwhile).
  for entry in ${RESTORE_OWNERS[@]+"${RESTORE_OWNERS[@]}"}; do
    IFS=: read -r uid gid inode path <<<"$entry"
    if [[ -f $path && ! -L $path && $(stat -c %i -- "$path" 2>/dev/null) == "$inode" ]]; then
      chown -h -- "$uid:$gid" "$path" 2>/dev/null
    fi
  done
  for path in ${CLEANUP_FILES[@]+"${CLEANUP_FILES[@]}"}; do
    rm -f -- "$path"
  done
  rm -rf -- ${WORK:+"$WORK"} ${LOGS:+"$LOGS"}
  rmdir -- ${CGS[@]+"${CGS[@]}"} 2>/dev/null
  exit "$status"
}

# on_err STATUS LINE: remember what failed (BASH_COMMAND is still the failed
# command while a trap runs). LINE counts lines of the deployed script, which
# has no comment lines; the function name finds it in this file.
on_err() {
  ERR_AT="${FUNCNAME[1]:-main} (line $2): '$(printable "$BASH_COMMAND" 120)' exited $1"
}

on_signal() {
  SAID=1
  printf 'flamefire: error: interrupted by SIG%s; stopping perf and removing temporary files\n' "$1" >&3
  exit $((128 + $2))
}

trap cleanup EXIT
trap 'on_err $? $LINENO' ERR
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP

# --- parameters -------------------------------------------------------------
# The allowedPatterns of the document, repeated here: the agent checks them
# first, but an old agent or a caller that bypasses it must not get further.
param_pattern() {
  case $1 in
    Duration) REPLY='^([1-9]|[1-9][0-9]|[12][0-9][0-9]|300)$' ;;
    Frequency) REPLY='^([1-9]|[1-9][0-9]|[1-9][0-9][0-9])$' ;;
    Pids) REPLY='^(all|[1-9][0-9]{0,9}(,[1-9][0-9]{0,9}){0,63})$' ;;
    ProcessName) REPLY='^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$' ;;
    StartAt) REPLY='^(0|[1-9][0-9]{9})$' ;;
    RunId) REPLY='^[A-Za-z0-9][A-Za-z0-9-]{0,63}$' ;;
    UploadUrl) REPLY='^(|https://[a-z0-9][a-z0-9-]{1,61}[a-z0-9]\.s3\.[a-z0-9-]{1,30}\.amazonaws\.com(\.cn)?/|https://s3\.[a-z0-9-]{1,30}\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/|http://127\.0\.0\.1:[0-9]{2,5}/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/)$' ;;
    UploadKeyPrefix) REPLY='^(|([A-Za-z0-9_-][A-Za-z0-9_.-]{0,62}/){1,8})$' ;;
    UploadPolicy) REPLY='^(|[A-Za-z0-9+/]+={0,2})$' ;;
    UploadCredential) REPLY='^(|[A-Z0-9]{16,128}/[0-9]{8}/[a-z0-9-]{1,30}/s3/aws4_request)$' ;;
    UploadDate) REPLY='^(|[0-9]{8}T[0-9]{6}Z)$' ;;
    UploadSignature) REPLY='^(|[0-9a-f]{64})$' ;;
    UploadSecurityToken) REPLY='^(|[A-Za-z0-9+/=]{16,})$' ;;
    NoInstall | Probe) REPLY='^(true|false)$' ;;
    *) die 1 "internal: no pattern for parameter $1" ;;
  esac
}

# The document's maxChars, repeated here. Two allowedPatterns leave the length
# open, because the SSM agent compiles every pattern with Go's regexp (RE2),
# which refuses a repeat count over 1000: `{1,8192}` made every agent refuse
# the whole document (issue 16).
param_max_len() {
  case $1 in
    # 8,192 base64 characters and up to two '='
    UploadPolicy) REPLY=8194 ;;
    # STS session tokens are far shorter
    UploadSecurityToken) REPLY=4096 ;;
    *) REPLY=0 ;;
  esac
}

# param_matches NAME VALUE: VALUE matches NAME's pattern and length bound.
param_matches() {
  local name=$1 value=$2
  param_max_len "$name"
  if ((REPLY > 0 && ${#value} > REPLY)); then return 1; fi
  param_pattern "$name"
  [[ $value =~ $REPLY ]]
}

# param NAME: the value of SSM_<NAME> into REPLY. It must be set (no silent
# defaults: an old agent passes nothing) and match its pattern.
param() {
  local name=$1 var=SSM_$1 value
  if [[ -z ${!var+x} ]]; then
    die 2 "parameter $name did not arrive: $var is not set. The SSM agent must be >= 3.3.2746.0 to pass parameters as environment variables (interpolationType ENV_VAR); update amazon-ssm-agent"
  fi
  value=${!var}
  if ! param_matches "$name" "$value"; then
    param_max_len "$name"
    if ((REPLY > 0 && ${#value} > REPLY)); then
      die 2 "invalid parameter $name: ${#value} characters, more than the $REPLY allowed"
    fi
    param_pattern "$name"
    die 2 "invalid parameter $name: '$(printable "$value")' does not match $REPLY"
  fi
  REPLY=$value
}

read_params() {
  param Duration && P_Duration=$REPLY
  param Frequency && P_Frequency=$REPLY
  param Pids && P_Pids=$REPLY
  param ProcessName && P_ProcessName=$REPLY
  param StartAt && P_StartAt=$REPLY
  param RunId && P_RunId=$REPLY
  param UploadUrl && P_UploadUrl=$REPLY
  param UploadKeyPrefix && P_UploadKeyPrefix=$REPLY
  param UploadPolicy && P_UploadPolicy=$REPLY
  param UploadCredential && P_UploadCredential=$REPLY
  param UploadDate && P_UploadDate=$REPLY
  param UploadSignature && P_UploadSignature=$REPLY
  param UploadSecurityToken && P_UploadSecurityToken=$REPLY
  param NoInstall && P_NoInstall=$REPLY
  param Probe && P_Probe=$REPLY
}

# check_upload_params: upload mode needs the whole presigned POST; local mode
# must not be handed half of one (that is a caller bug, not a preference).
check_upload_params() {
  local name var
  for name in UploadKeyPrefix UploadPolicy UploadCredential UploadDate UploadSignature; do
    var=P_$name
    if [[ -n $P_UploadUrl && -z ${!var} ]]; then
      die 2 "UploadUrl is set but $name is empty: the presigned POST is incomplete"
    fi
    if [[ -z $P_UploadUrl && -n ${!var} ]]; then
      die 2 "$name is set but UploadUrl is empty: pass both for upload mode, neither for local mode"
    fi
  done
  if [[ -z $P_UploadUrl && -n $P_UploadSecurityToken ]]; then
    die 2 "UploadSecurityToken is set but UploadUrl is empty: pass both for upload mode, neither for local mode"
  fi
}

# read_identity: instance id, region and host facts for meta.json.
read_identity() {
  local id=${AWS_SSM_INSTANCE_ID:-} region=${AWS_SSM_REGION_NAME:-}
  local id_re='^(i|mi)-[0-9a-f]{8,17}$' region_re='^[a-z0-9-]{1,30}$'
  INSTANCE_ID=local
  if [[ $id =~ $id_re ]]; then
    INSTANCE_ID=$id
  elif [[ -n $P_UploadUrl ]]; then
    if [[ -z $id ]]; then
      die 2 "AWS_SSM_INSTANCE_ID is not set, so the upload key cannot be built; upload mode runs only under the SSM agent"
    fi
    die 2 "AWS_SSM_INSTANCE_ID '$(printable "$id")' is not an instance id (expected ^(i|mi)-[0-9a-f]{8,17}\$)"
  elif [[ -n $id ]]; then
    warn "AWS_SSM_INSTANCE_ID '$(printable "$id")' is not an instance id; using 'local'"
  fi
  REGION=""
  if [[ $region =~ $region_re ]]; then REGION=$region; fi

  HOST=$(uname -n | sanitize_text)
  KERNEL=$(uname -r | sanitize_text)
  DISTRO=unknown
  if [[ -r /etc/os-release ]]; then
    # Parsed, never sourced: os-release is shell syntax, but we only want text.
    local line
    line=$(grep -m1 '^PRETTY_NAME=' /etc/os-release || true)
    line=${line#PRETTY_NAME=}
    line=${line#[\"\']}
    line=${line%[\"\']}
    if [[ -n $line ]]; then DISTRO=$(printf '%s' "$line" | sanitize_text); fi
  fi
}

os_release_ids() {
  # "ID ID_LIKE" of the distro, lower case, for choosing a perf package.
  local ids=""
  if [[ -r /etc/os-release ]]; then
    ids=$(grep -E '^(ID|ID_LIKE)=' /etc/os-release | cut -d= -f2- | tr -d '"'"'" | tr '\n' ' ' || true)
  fi
  printf '%s' "$ids"
}

# --- text helpers -------------------------------------------------------------
# read_bounded MAX_BYTES FILE: at most MAX_BYTES of FILE on stdout. Every file
# a target controls (its perf map, its binary, its libnode.so, its /proc
# entries) is read only through here. The target may swap the file for a
# FIFO or /dev/zero at any moment, so bounds are kept in one go, with no
# check-then-open race: O_NONBLOCK (dd iflag=nonblock) makes opening a FIFO
# return at once and reading it end; count_bytes bounds the size; timeout
# bounds the time (a FUSE file ignores O_NONBLOCK; /proc/PID/cmdline waits
# for the target's mmap lock) and, with --foreground, stays in our process
# group. It never fails: a reader that stops early (grep -m1) gives dd a
# SIGPIPE, which must not become the pipeline's status under pipefail (issue
# 18 §1: `head -c | head -n` ended the script with exit 141).
read_bounded() {
  timeout --foreground -s KILL 30 dd if="$2" iflag=nonblock,count_bytes bs=1M count="$1" status=none 2>/dev/null || true
}

# sanitize_text: stdin to stdout as valid UTF-8 (invalid bytes dropped), so that
# meta.json stays parseable whatever a cmdline contains.
sanitize_text() {
  if command -v iconv >/dev/null 2>&1; then
    iconv -c -f UTF-8 -t UTF-8 2>/dev/null || true
  else
    tr -d '\200-\377'
  fi
}

# redact: stdin to stdout with credentials in command lines masked: passwords
# in URLs (scheme://user:PASS@), --password=X / token=X style arguments and
# the word after --password / --token. Command lines go into meta.json and
# the SSM output, which more people read than the host's ps.
redact() {
  sed -E \
    -e 's#(://[^:/@ ]*):[^@ ]*@#\1:***@#g' \
    -e 's#((^|[ -])[A-Za-z_-]*(password|passwd|pwd|token|secret|apikey|api_key|api-key|access_key|access-key|credential)[A-Za-z_-]*=)[^ ]*#\1***#Ig' \
    -e 's#(--?[A-Za-z_-]*(password|passwd|token|secret|apikey|api-key)[A-Za-z_-]*) [^ -][^ ]*#\1 ***#Ig'
}

# json_str VALUE: a JSON string literal. Backslash and quote are escaped,
# \t \n \r become escapes, other control characters are dropped.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//[$'\001'-$'\037'$'\177']/}
  printf '"%s"' "$s"
}

# --- preflight ----------------------------------------------------------------
check_tools() {
  local tool missing=()
  for tool in awk cat chown cut date dd df find gzip grep head mkfifo mktemp mv nice readlink rm sed sleep sort stat tail timeout tr uname; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [[ -n $P_UploadUrl ]]; then
    command -v curl >/dev/null 2>&1 || missing+=(curl)
  fi
  if ((${#missing[@]} > 0)); then
    die 1 "required commands not found in PATH: ${missing[*]}"
  fi
}

free_mib() { df -Pk -- "$1" 2>/dev/null | awk 'NR == 2 { print int($4 / 1024) }'; }

# full_fs: when the work directory's filesystem has less than 1 MiB left,
# "; <mount> (<device>) is full ..." into REPLY, for the error of whatever
# failed writing there (perf record's exit 255, gzip's exit 1).
full_fs() {
  REPLY=$(df -Pk -- "$WORK" 2>/dev/null | awk 'NR==2&&$4<1024{printf "; %s (%s) is full",$6,$1}' || true)
}

# mem_avail_kib: MemAvailable (KiB) into REPLY; 2^40 when unknown (no limit).
mem_avail_kib() {
  REPLY=$(awk '$1=="MemAvailable:"{print $2}' /proc/meminfo 2>/dev/null || true)
  REPLY=${FLAMEFIRE_TEST_MEMAVAIL_KIB:-${REPLY:-1099511627776}}
}

# lock_host: one run per host at a time (two on-call engineers at once): the
# second waits for the first, at most LOCK_WAIT_S, then fails saying why.
# The lock is per instance id, which is one per real host (the test
# emulator runs several "hosts" on one machine). It dies with our process
# group, even on SIGKILL.
#
# The lock lives in a directory only we can write: /run/flamefire, 0700,
# made by root (for root; /tmp/flamefire-EUID otherwise). In world-writable
# /run/lock any local user could create and hold it, and make every run wait
# 360 s and fail blaming "another run" (issue 18 §5). A directory that is not
# ours (or a symlink) is not trusted: the run goes on unlocked, with a
# warning, rather than wait for whoever planted it.
lock_host() {
  local dir=/run/flamefire lock
  ((EUID == 0)) || dir=/tmp/flamefire-$EUID
  if ! command -v flock >/dev/null 2>&1; then
    warn "flock (util-linux) is not installed: a second run at the same time is not detected"
    return 0
  fi
  mkdir -m 700 -- "$dir" 2>/dev/null || true
  if [[ -L $dir || ! -d $dir || ! -O $dir ]]; then
    warn "$dir is not this user's directory: runs at the same time are not detected"
    return 0
  fi
  lock=$dir/$INSTANCE_ID.lock
  exec 9>>"$lock" || die 5 "cannot open the lock file $lock"
  if flock -n 9; then return 0; fi
  note "another flamefire run is recording on this host; waiting up to $LOCK_WAIT_S s for it to end"
  start_child flock -w "$LOCK_WAIT_S" 9
  if ! wait_child $((LOCK_WAIT_S + 5)); then
    host_label
    die 8 "another flamefire run was still recording on $REPLY after $LOCK_WAIT_S s (it holds $lock); retry when it has ended"
  fi
}

# make_workdir: a private directory on a filesystem with room for perf.data,
# and LOGS, a small one in RAM (/dev/shm, /run) for the logs that say why
# something failed, which a full disk would lose.
make_workdir() {
  local base free tried=""
  BASES=(/var/tmp /tmp)
  if [[ -n ${FLAMEFIRE_TEST_WORK_BASE:-} ]]; then BASES=("$FLAMEFIRE_TEST_WORK_BASE"); fi
  # A run killed with SIGKILL (the agent's cancel and timeout) before its
  # reaper started (start_reaper), or on a host that crashed, leaves its
  # dirs behind. A run lasts at most the document's 30 min, and each file
  # made in a dir updates its mtime: one untouched for an hour is stale.
  # (This replaces the per-dir `owner` pid files and their sweep.)
  find "${BASES[@]}" /dev/shm /run -maxdepth 1 -type d -name 'flamefire.????????' -uid "$EUID" -mmin +60 -exec rm -rf -- {} + 2>/dev/null || true
  for base in /dev/shm /run; do
    LOGS=$(mktemp -d "$base/flamefire.XXXXXXXX" 2>/dev/null) && break
  done
  for base in "${BASES[@]}"; do
    [[ -d $base && -w $base ]] || continue
    free=$(free_mib "$base")
    if [[ $free =~ ^[0-9]+$ ]] && ((free >= MIN_FREE_MIB)); then
      WORK=$(mktemp -d "$base/flamefire.XXXXXXXX") || die 5 "cannot create a work directory in $base"
      LOGS=${LOGS:-$WORK}
      return 0
    fi
    tried+="${tried:+, }$base has ${free:-?} MiB free"
  done
  die 5 "not enough free disk for the recording: need $MIN_FREE_MIB MiB in ${BASES[*]} (${tried:-none is a writable directory})"
}

# start_reaper: a cancel is a SIGKILL of our process group, after which no
# trap runs, and perf.data (50-285 MB on 96 vCPUs) would stay until a later
# run sweeps it, which may never come. So a small reaper in its own session
# (setsid: the group's SIGKILL spares it) holds the read end of a pipe whose
# write end only we and our children hold: once the last of them is gone,
# whatever the way, it reads EOF and removes the work dirs and cgroups.
# Nothing to poll, no pid to be reused. Its output goes nowhere, and it lets
# go of the lock (fd 9), so neither the agent nor a next run waits for it.
# CGP: this run's post-processing cgroups (make_cgroups): v2, else v1's
# cpu and memory. At the root of the hierarchy: on v2, a cgroup with
# processes (the agent's service) cannot give controllers to children.
start_reaper() {
  local r=/sys/fs/cgroup id=flamefire-${WORK##*.}
  CGP=("$r/$id" "$r/cpu/$id" "$r/memory/$id")
  # shellcheck disable=SC2016 # $1 and $@ are the reaper's own
  exec 8> >(exec setsid sh -c 'cat >/dev/null; sleep 1; rm -rf -- "$1" "$2"; shift 2; rmdir -- "$@"' sh "$WORK" "$LOGS" "${CGP[@]}" >/dev/null 2>&1 9>&-)
}

# check_disk_budget: refuse to record when the worst-case perf.data (every
# CPU busy in the targets for the whole Duration, SAMPLE_BYTES each) would eat
# into the reserve: KEEP_FREE_PCT% of the work directory's filesystem, or half
# of what is free when the disk is already fuller than that. Many production
# disks run above 80% full; a recording of a few MiB must not be refused there,
# but it must never take the second half of what is left.
check_disk_budget() {
  local cpus total free worst reserve
  cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || printf 1)
  [[ $cpus =~ ^[0-9]+$ ]] || cpus=1
  read -r total free <<<"$(df -Pk -- "$WORK" 2>/dev/null | awk 'NR == 2 { print $2, $4 }')"
  [[ $total =~ ^[0-9]+$ && $free =~ ^[0-9]+$ ]] && ((total > 0)) || return 0
  # tmpfs (/tmp on Amazon Linux 2023) is RAM that killing perf does not give
  # back: the kernel would kill Node instead. Count half of MemAvailable as
  # its free space, at most.
  local ram=""
  [[ $(stat -f -c %T -- "$WORK") != tmpfs ]] || { mem_avail_kib; ((free < REPLY / 2)) || free=$((REPLY / 2)) total=$REPLY ram=" (tmpfs)"; }
  worst=$((FREQ * cpus * P_Duration * SAMPLE_BYTES / 1024 + 1))
  reserve=$((total * KEEP_FREE_PCT / 100))
  if ((reserve > free / 2)); then reserve=$((free / 2)); fi
  if ((free - worst < reserve)); then
    die 5 "not enough free disk in ${WORK%/*}$ram: recording $P_Duration s at $FREQ Hz on $cpus CPUs may write up to $((worst / 1024)) MiB of the $((free / 1024)) MiB free, and $((reserve / 1024)) MiB must stay free (${KEEP_FREE_PCT}% of the filesystem, or half of what is free on a fuller disk); free some space, or lower Duration or Frequency"
  fi
}

# --- targets ----------------------------------------------------------------
ppid_of() {
  local stat rest
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  # comm (field 2) may contain spaces and ')': cut after the last ')'.
  rest=${stat##*) }
  read -r _ REPLY _ <<<"$rest"
}

# self_and_ancestors: this script and its parents must never be targets
# (ProcessName=bash would otherwise profile us).
self_and_ancestors() {
  local pid=$$
  SELF_TREE=" $$ $BASHPID "
  while ((pid > 1)) && ppid_of "$pid"; do
    pid=$REPLY
    SELF_TREE+="$pid "
  done
}

# wanted_pids: the pids whose executable is ProcessName (node: or nodejs),
# into the array WANTED, in one pass over /proc: one find, which reads the
# exe links itself. A readlink per process took 15.8 s on a host with 2,079
# processes (issue 18 §5). ProcessName's pattern has no glob character.
wanted_pids() {
  local n=$P_ProcessName pats
  pats=(-lname "*/$n" -o -lname "*/$n (deleted)")
  if [[ $n == node ]]; then pats+=(-o -lname '*/nodejs' -o -lname '*/nodejs (deleted)'); fi
  read -r -a WANTED <<<"$(find /proc -mindepth 2 -maxdepth 2 -name exe \( "${pats[@]}" \) -printf '%h ' 2>/dev/null || true)"
  WANTED=(${WANTED[@]+"${WANTED[@]#/proc/}"})
}

# watch_new_targets: with Pids=all, the processes of ProcessName that started
# since the last look become targets too: a cluster's primary forks a new
# worker when one dies, and that worker has a new pid (issue 8 §3). Called
# about once a second while perf records the whole host (see record), so a
# process that lives less than that may be missed. The pids are listed with
# bash alone; only when one is new does wanted_pids run (one find, whatever
# the number of processes).
watch_new_targets() {
  local pid new=" "
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [[ -n ${SEEN_PIDS[$pid]+x} ]] && continue
    SEEN_PIDS[$pid]=1
    new+="$pid "
  done
  [[ $new != " " ]] || return 0
  wanted_pids
  for pid in ${WANTED[@]+"${WANTED[@]}"}; do
    [[ $new == *" $pid "* && $SELF_TREE != *" $pid "* ]] || continue
    T_PID+=("$pid")
    describe_target $((${#T_PID[@]} - 1))
    TARGETS_FOUND=$((TARGETS_FOUND + 1))
    TARGETS_NEW=$((TARGETS_NEW + 1))
  done
}

host_label() {
  if [[ $INSTANCE_ID == local ]]; then REPLY=$HOST; else REPLY="$HOST ($INSTANCE_ID)"; fi
}

select_targets() {
  local pid names hint
  if [[ $P_Pids == all ]]; then
    names="'$P_ProcessName'" hint="start it, or pass --pid"
    if [[ $P_ProcessName == node ]]; then names="'node' or 'nodejs'" hint="start Node, or pass --pid"; fi
    self_and_ancestors
    for pid in /proc/[0-9]*; do SEEN_PIDS[${pid#/proc/}]=1; done
    wanted_pids
    for pid in ${WANTED[@]+"${WANTED[@]}"}; do
      SEEN_PIDS[$pid]=1
      if [[ $SELF_TREE != *" $pid "* ]]; then T_PID+=("$pid"); fi
    done
    if ((${#T_PID[@]} > 1)); then
      # (no process substitution: see the re-exec at the top)
      read -r -a T_PID <<<"$(printf '%s\n' "${T_PID[@]}" | sort -n | tr '\n' ' ')"
    fi
    if ((${#T_PID[@]} == 0)); then
      host_label
      die 3 "no running process whose executable is $names on $REPLY; $hint"
    fi
  else
    local seen=" " list
    IFS=, read -r -a list <<<"$P_Pids"
    for pid in "${list[@]}"; do
      [[ $seen == *" $pid "* ]] && continue
      seen+="$pid "
      if [[ ! -d /proc/$pid ]] || ! is_alive "$pid"; then
        host_label
        die 3 "process $pid is not running on $REPLY"
      fi
      T_PID+=("$pid")
    done
  fi
}

# node_version PID: the version embedded in the binary, found by reading it,
# never by running it (running a possibly untrusted binary as root would hand
# it root). Node embeds its release tarball URL (process.release) and an
# inspector "node.js/vX.Y.Z" string; distro builds keep them in libnode.so.
grep_version() {
  local hit
  # The file is the target's (its exe, or a libnode.so under its root):
  # read_bounded. tr cuts it into printable runs, so that grep never holds a
  # huge "line" in memory.
  hit=$(read_bounded $((VERSION_READ_MIB * 1048576)) "$1" |
    tr -c '[:print:]' '\n' |
    grep -a -o -m1 -E '/node-v[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-rc\.[0-9]{1,3})?\.tar\.gz|node\.js/v[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}' |
    head -n1 || true)
  case $hit in
    /node-*)
      hit=${hit#/node-}
      REPLY=${hit%.tar.gz}
      ;;
    node.js/*) REPLY=${hit#node.js/} ;;
    *) return 1 ;;
  esac
}

declare -A VERSION_CACHE=()
# Largest prefix of a node binary or libnode.so read for its version: Node
# 20's static binary is ~100 MiB and its release URL string sits well
# inside it.
VERSION_READ_MIB=160

node_version() {
  local pid=$1 key path
  key=$(stat -L -c '%d:%i' -- "/proc/$pid/exe" 2>/dev/null || true)
  if [[ -n $key && -n ${VERSION_CACHE[$key]+x} ]]; then
    REPLY=${VERSION_CACHE[$key]}
    return 0
  fi
  if ! grep_version "/proc/$pid/exe"; then
    REPLY=unknown
    path=$(read_bounded 16777216 "/proc/$pid/maps" | grep -F libnode.so || true)
    while read -r _ _ _ _ _ path; do
      if [[ $path == */libnode.so* ]] && grep_version "/proc/$pid/root$path"; then
        break
      fi
      REPLY=unknown
    done <<<"$path"
  fi
  if [[ -n $key ]]; then VERSION_CACHE[$key]=$REPLY; fi
}

read_cmdline() {
  local text
  text=$(read_bounded "$CMDLINE_MAX" "/proc/$1/cmdline" | tr '\0' ' ' | sanitize_text | redact || true)
  # process.title pads the old argv area with NULs: drop the trailing blanks.
  REPLY=${text%"${text##*[! ]}"}
}

# ns_pid PID: the PID as the process itself sees it (last NSpid value) when it
# lives in another PID namespace (a container); empty otherwise.
ns_pid() {
  local key values
  REPLY=""
  while IFS=$'\t' read -r key values; do
    if [[ $key == NSpid: ]]; then
      values=${values##*[[:space:]]}
      if [[ $values != "$1" ]]; then REPLY=$values; fi
      return 0
    fi
  done 2>/dev/null <"/proc/$1/status" || true
}

describe_target() {
  local i=$1
  read_cmdline "${T_PID[i]}"
  T_CMDLINE[i]=$REPLY
  node_version "${T_PID[i]}"
  T_VERSION[i]=$REPLY
  ns_pid "${T_PID[i]}"
  T_NSPID[i]=$REPLY
  T_MAP[i]=missing
  T_MAP_BYTES[i]=0
}

describe_targets() {
  local i
  TARGETS_FOUND=${#T_PID[@]}
  for i in "${!T_PID[@]}"; do describe_target "$i"; done
}

# --- perf ---------------------------------------------------------------------
# find_perf: a working perf into PERF. First `perf` on PATH; on Ubuntu that is
# a wrapper that exits 2 unless linux-tools-$(uname -r) is installed, which is
# often gone for a host not yet rebooted. Debian's linux-perf-<ver> (buster,
# bullseye) installs /usr/bin/perf_<ver>, and /usr/bin/perf (linux-base)
# fails unless <ver> is the running kernel's (issue 18 §6). A perf built for
# another kernel version records and scripts fine, so take the newest one
# installed.
find_perf() {
  local c found=()
  PERF=""
  if command -v perf >/dev/null 2>&1 && perf --version >/dev/null 2>&1; then
    PERF=$(command -v perf)
    return 0
  fi
  for c in /usr/lib/linux-tools/*/perf /usr/lib/linux-tools-*/perf /usr/bin/perf_[0-9]*; do
    if [[ -f $c && -x $c && ! -L ${c%/perf} ]]; then found+=("$c"); fi
  done
  ((${#found[@]} > 0)) || return 1
  while IFS= read -r c; do
    if "$c" --version >/dev/null 2>&1; then
      PERF=$c
      return 0
    fi
  done <<<"$(printf '%s\n' "${found[@]}" | sort -r -V)"
  return 1
}

perf_works() { find_perf; }

# perf_package: the package that provides perf on this distro, for messages.
perf_package() {
  local ids
  ids=" $(os_release_ids) "
  case $ids in
    *" ubuntu "*) REPLY="linux-tools-$KERNEL (and linux-tools-common)" ;;
    *" debian "*) REPLY="linux-perf" ;;
    *) REPLY="perf" ;;
  esac
}

# try_install LOG CMD...: one package manager attempt, output kept in LOG.
# It is never killed by us: a package manager killed mid-transaction (a
# wedged rpmdb on Amazon Linux 2, dpkg half-configured) is worse than no
# flamegraph. Decided (issue 18 §5): the install outlives a cancel on
# purpose. The agent's cancel and timeout SIGKILL our process group, so the
# install runs in a session of its own (setsid), with no descriptor of ours
# (the agent's output pipes, fd 3 too, and the lock), and ends by itself: `timeout` sends
# it SIGTERM after INSTALL_RUN_S, which rpm and dpkg hold off until their
# transaction is consistent. The package then stays installed; a cancelled
# run never rolls it back. A new attempt starts only while the install
# budget lasts.
try_install() {
  local log=$1 left
  shift
  left=$((INSTALL_DEADLINE - $(date +%s)))
  ((left > 5)) || return 1
  start_child setsid timeout "$INSTALL_RUN_S" "$@" >>"$log" 2>&1 </dev/null 3>&- 9>&-
  INSTALL_PID=$!
  wait_child "$BUDGET_S"
}

# ensure_perf: use perf if it works; otherwise install it with the host's
# package manager, saying so on stderr.
ensure_perf() {
  local why log="$WORK/install.log" pm="" pkgs=() done_with=""
  if perf_works; then return 0; fi
  perf_package
  local wanted=$REPLY
  if command -v perf >/dev/null 2>&1; then
    why="installed but 'perf --version' fails (no perf for kernel $KERNEL?)"
  else
    why="not installed"
  fi
  if [[ $P_NoInstall == true ]]; then
    die 4 "perf is $why and installing it is turned off (NoInstall=true); install $wanted on the host, or run without --no-install"
  fi
  if ((EUID != 0)); then
    die 4 "perf is $why and installing it needs root; install $wanted"
  fi
  # The first package manager found; a probe (doctor --probe) says that a
  # run would install perf with it, and installs nothing.
  for pm in dnf yum apt-get zypper ""; do
    [[ -n $pm ]] && command -v "$pm" >/dev/null 2>&1 && break
  done
  [[ -n $pm ]] || die 4 "perf is $why and no package manager (dnf, yum, apt-get, zypper) was found to install it; install $wanted"
  if [[ $P_Probe == true ]]; then
    warn "perf is $why: a run will install it with $pm"
    PERF=""
    return 0
  fi
  INSTALL_DEADLINE=$(($(date +%s) + INSTALL_TIMEOUT_S))
  export DEBIAN_FRONTEND=noninteractive
  case $pm in
  dnf | yum)
    note "perf is $why; installing package 'perf' with $pm"
    try_install "$log" "$pm" -y -q --setopt=install_weak_deps=False install perf && done_with="$pm install perf"
    ;;
  apt-get)
    # (strings, not arrays: bash < 4.4 treats an empty array as unset)
    local kernel_re='^[A-Za-z0-9._+-]+$' ubuntu_pkgs="" candidates=() c attempt
    if [[ $KERNEL =~ $kernel_re ]]; then ubuntu_pkgs="linux-tools-$KERNEL linux-tools-common"; fi
    case " $(os_release_ids) " in
      *" ubuntu "*) candidates=("$ubuntu_pkgs" linux-perf) ;;
      *) candidates=(linux-perf "$ubuntu_pkgs") ;;
    esac
    note "perf is $why; installing it with apt-get (${candidates[0]}, else ${candidates[1]:-nothing})"
    # First with the package lists as they are; stale lists on fresh images
    # fail with 404s, so update once and try again.
    for attempt in as-is updated; do
      if [[ $attempt == updated ]]; then
        try_install "$log" apt-get -q update || true
      fi
      for c in "${candidates[@]}"; do
        [[ -n $c ]] || continue
        read -r -a pkgs <<<"$c"
        if try_install "$log" apt-get -q -y -o DPkg::Lock::Timeout=60 install --no-install-recommends "${pkgs[@]}" && perf_works; then
          done_with="apt-get install $c"
          break 2
        fi
      done
    done
    ;;
  *)
    note "perf is $why; installing package 'perf' with zypper"
    try_install "$log" zypper --non-interactive install --no-recommends perf && done_with="zypper install perf"
    ;;
  esac
  if [[ -z $done_with ]] || ! perf_works; then
    local last
    last=$(tail -n1 "$log" 2>/dev/null | sanitize_text || true)
    die 4 "perf is $why and installing it with $pm failed${last:+ ($(printable "$last" 160))}; install $wanted"
  fi
  note "installed perf ($done_with): $("$PERF" --version 2>&1 | head -n1)"
  warn "perf was not usable and was installed ($done_with)"
}

# cap_frequency: perf refuses -F above kernel.perf_event_max_sample_rate.
cap_frequency() {
  local max=""
  FREQ=$P_Frequency
  if [[ -r /proc/sys/kernel/perf_event_max_sample_rate ]]; then
    max=$(</proc/sys/kernel/perf_event_max_sample_rate)
  fi
  if [[ $max =~ ^[0-9]+$ ]] && ((max > 0 && FREQ > max)); then
    warn "Frequency $FREQ Hz is above kernel.perf_event_max_sample_rate ($max); recording at $max Hz"
    FREQ=$max
  fi
}

# wait_for_start: StartAt lines hosts up; sleep until it, within reason.
wait_for_start() {
  ((P_StartAt != 0)) || return 0
  local now delay
  now=$(date +%s)
  delay=$((P_StartAt - now))
  if ((delay > MAX_START_DELAY_S)); then
    die 2 "StartAt $P_StartAt is $delay s in the future (more than $MAX_START_DELAY_S s): check this host's clock (skew?) or the StartAt value"
  elif ((delay > 0)); then
    start_child sleep "$delay"
    wait_child $((delay + 5)) || true
  elif ((delay < 0)); then
    warn "StartAt $P_StartAt was $((-delay)) s ago when this host was ready; recording started immediately"
  fi
}

# map_path I: where perf looks for target I's JIT map, into REPLY. A process
# in another mount namespace (a container, or a service with PrivateTmp=yes)
# has its own /tmp, seen through /proc/PID/root, under the PID it sees.
map_path() {
  local pid=${T_PID[$1]} nspid=${T_NSPID[$1]} mine theirs
  mine=$(readlink /proc/self/ns/mnt 2>/dev/null || true)
  theirs=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)
  if [[ -n $theirs && $theirs != "$mine" ]]; then
    REPLY=/proc/$pid/root/tmp/perf-${nspid:-$pid}.map
  else
    REPLY=/tmp/perf-$pid.map
  fi
}

# hostile_map PATH: true when perf must not open PATH: a symlink (it could
# point at /dev/zero or a host file), or something that is not a regular
# file (a FIFO blocks the reader forever).
hostile_map() {
  local dir=${1%/*}
  [[ -L $dir || -L $1 ]] && return 0
  [[ -e $1 && ! -f $1 ]] && return 0
  return 1
}

# screen_targets: installing perf or waiting for StartAt takes time. A
# target that has exited since (an npm script, a worker that crashed) is
# dropped with a warning, whether it was named or found: the host still
# records the others (issue 8 §3). A target whose perf map is a FIFO or a
# symlink is not recorded at all: perf opens the map of every process it has
# samples of, and must never block on a FIFO or read /dev/zero.
screen_targets() {
  local i keep=()
  for i in "${!T_PID[@]}"; do
    if ! is_alive "${T_PID[i]}"; then
      warn_pid exited "${T_PID[i]}" "exited before the recording started; not recorded"
      continue
    fi
    map_path "$i"
    if hostile_map "$REPLY"; then
      warn_pid hostile "${T_PID[i]}" "have a perf map that is a symlink or not a regular file (FIFO?); not recorded"
      continue
    fi
    keep+=("$i")
  done
  if ((${#keep[@]} == 0)); then
    host_label
    flush_pid_warnings
    die 3 "no target process can be recorded on $REPLY"
  fi
  local pids=() cmdlines=() versions=() nspids=()
  for i in "${keep[@]}"; do
    pids+=("${T_PID[i]}") cmdlines+=("${T_CMDLINE[i]}") versions+=("${T_VERSION[i]}") nspids+=("${T_NSPID[i]}")
  done
  T_PID=("${pids[@]}") T_CMDLINE=("${cmdlines[@]}") T_VERSION=("${versions[@]}") T_NSPID=("${nspids[@]}")
  T_MAP=() T_MAP_BYTES=()
  for i in "${!T_PID[@]}"; do
    T_MAP[i]=missing
    T_MAP_BYTES[i]=0
  done
}

# record: perf record in the background for Duration seconds: perf runs
# `sleep Duration` as its workload and stops when it exits, so the window
# starts once perf is set up (which takes seconds on a loaded host). A perf
# that has not stopped 15 s later is killed (its sleep is in our process
# group too, and ends by itself).
#
# The whole host is recorded (-a) and the targets are picked at `perf script`
# time (write_stacks: --pid), chosen by measurement (issue 8 §3,
# scripts/bench-record.sh, benches/record/RESULTS.md). `perf record -p` on a
# cluster fails three ways that -a does not:
# * once any -p target exits, perf 6.1 busy-polls the dead events' fds: a
#   core's worth of CPU until the end (measured: 10 CPU-s in 6 s against
#   0.13 s for -a; the idle rows of RESULTS.md);
# * -p opens threads x CPUs descriptors per event (16 workers x 11 threads x
#   48 vCPUs ~ 17k, above a 4,096 RLIMIT_NOFILE); -a opens one per CPU;
# * a pid that is gone when perf starts fails the whole -p list ("Couldn't
#   create thread/CPU maps: No such process", exit 244), and a worker forked
#   after the start is never recorded.
# With -a, what a node process did before it was known is in perf.data
# already: watch_new_targets only has to name it before `perf script`.
#
# The event is cpu-clock on every host: a host with a PMU would otherwise
# sample `cycles` and one without (most VMs) `cpu-clock`, and a merged fleet
# flamegraph would mix units. --no-buildid skips the pass over every sample
# after recording (it can take longer than the recording on a busy host),
# --no-buildid-cache keeps ~/.debug from growing in the agent's directory.
record() {
  local scope=(-a) watch=""
  if [[ $SCRIPT_PID == yes ]]; then
    RECORD_MODE=system-wide
    if [[ $P_Pids == all ]]; then watch=watch_new_targets; fi
  else
    # A perf whose `perf script` cannot pick pids records the targets only,
    # as before (untested here: perf 6.1 has --pid).
    RECORD_MODE=per-pid
    scope=(-p "$(IFS=,; printf '%s' "${T_PID[*]}")")
  fi
  local rc=0 full
  STARTED_AT=$(date +%s)
  start_child "$PERF" record -e "$EVENT" -F "$FREQ" -g --no-buildid --no-buildid-cache \
    "${scope[@]}" -o "$WORK/perf.data" -- sleep "$P_Duration" >"$LOGS/record.log" 2>&1
  wait_children $((P_Duration + 15)) "$watch"
  rc=${CHILD_RCS[0]:-1}
  if ((TIMED_OUT)); then
    die 6 "perf record did not stop within $((P_Duration + 15)) s and was killed"
  fi
  if ((rc == 143 || rc == 130)); then rc=0; fi
  if ((TARGETS_NEW > 0)); then
    note "$TARGETS_NEW process(es) of $P_ProcessName started during the recording and are recorded too"
  fi
  perf_warnings "$LOGS/record.log"
  # perf 6.1 may exit 0 when a write of perf.data failed (disk full).
  full_fs
  full=$REPLY
  if ((rc != 0)) || [[ ! -s $WORK/perf.data || $full ]]; then
    perf_says "$LOGS/record.log"
    die 6 "perf record failed (exit $rc)${REPLY:+: $(printable "$REPLY" 300)}$full"
  fi
  if grep -q -i 'lost' "$LOGS/record.log"; then
    warn "perf lost some samples: $(grep -i -m1 'lost' "$LOGS/record.log" | sanitize_text | head -c 160)"
  fi
}

# perf_says LOG: what perf said is wrong, into REPLY. perf writes "Error:"
# and then the cause on the next lines; its last lines are advice (a refused
# perf_event_open ends with "in /etc/sysctl.conf (e.g. ...)", issue 18 §6).
# So the two lines after "Error:", else the last line that is not progress.
perf_says() {
  REPLY=$(awk '/^\[ perf record/ || !NF { next } e && e++ < 3 { m = m (m ? " " : "") $0; next } /^Error:/ { e = 1; next } !e { l = $0 } END { print (m ? m : l) }' "$1" 2>/dev/null | sanitize_text || true)
}

# perf_warnings LOG: perf's WARNING paragraphs (kptr_restrict, lockdown: the
# kernel frames will be unresolved) become `flamefire: warning:` lines at
# once and warnings in meta.json; at most two, 200 characters each.
perf_warnings() {
  local w
  while IFS= read -r w; do
    [[ -n $w ]] || continue
    w="perf: $(printable "$w" 200)"
    printf 'flamefire: warning: %s\n' "$w" >&2
    warn "$w"
  done <<<"$(awk '/^WARNING:/ { if (w) print w; w = $0; next } w && NF { w = w " " $0; next } w { print w; w = "" } END { if (w) print w }' "$1" 2>/dev/null | head -n2 | sanitize_text || true)"
}

# --- JIT maps ---------------------------------------------------------------
# Node writes /tmp/perf-<pid>.map when started with --perf-basic-prof(-only-
# functions); perf reads it at `perf script` time. perf ignores a map that
# is not owned by the user running it or root unless given --force, which
# every perf we support has (see perf_script_options); no map is ever
# chowned then. A perf without --force gets the map chowned to root and
# given back afterwards (only if the inode is still ours).
#
# A perf with namespace support (struct nsinfo, tools/perf/util/namespaces.h;
# Krister Johansen's 2017 series, which we date to 4.14 but have NOT checked
# against the kernel tree) enters the target's mount namespace and reads
# /tmp/perf-<nspid>.map there itself; only an older perf needs the map copied
# into the host's /tmp, capped at MAP_COPY_MIB. Only perf 6.1 is tested here.
perf_needs_map_copy() {
  local v major minor
  v=$("$PERF" --version 2>/dev/null | head -n1 || true)
  v=${v#perf version }
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  ((major < 4 || (major == 4 && minor < 14)))
}

copy_container_map() {
  local i=$1 src=$2 dest staged pid
  pid=${T_PID[i]}
  dest=/tmp/perf-$pid.map
  staged=$(mktemp /tmp/flamefire-map.XXXXXXXX)
  CLEANUP_FILES+=("$staged" "$dest")
  start_child read_bounded $((MAP_COPY_MIB * 1048576)) "$src" >"$staged"
  if ! wait_child 30; then
    warn_pid nocopy "$pid" "have a container perf map that could not be copied"
    return 1
  fi
  # rename(2) replaces whatever sits at $dest (even a planted symlink)
  # without following it.
  mv -f -T -- "$staged" "$dest"
  REPLY=$dest
}

check_map_content() {
  local i=$1 map=$2 pid bytes counts total regexp
  pid=${T_PID[i]}
  bytes=$(stat -c %s -- "$map" 2>/dev/null || printf 0)
  T_MAP_BYTES[i]=$bytes
  if ((bytes > BIG_MAP_MIB * 1024 * 1024)); then
    warn_pid bigmap "$pid" "have a perf map over $BIG_MAP_MIB MiB: --perf-basic-prof makes it grow without end, prefer NODE_OPTIONS=--perf-basic-prof-only-functions"
  fi
  # Node 16-20 had a bug where --perf-basic-prof-only-functions wrote almost
  # only RegExp entries, leaving JS functions [unknown]. The first 100,000
  # lines are enough to tell; awk reads the whole bounded prefix (no early
  # exit: see read_bounded).
  counts=$(read_bounded 16777216 "$map" | awk 'NR > 100000 { next } { n++ } $3 ~ /^(JS:)?RegExp:/ { r++ } END { printf "%d %d", n, r }' || true)
  read -r total regexp <<<"$counts"
  if ((total >= 50 && regexp * 10 > total * 9)); then
    warn_pid regexp "$pid" "have a perf map of almost only RegExp entries (the Node 16-20 --perf-basic-prof-only-functions bug, JS frames will be [unknown]; use --perf-basic-prof or upgrade Node)"
  fi
}

# screen_host_maps: `perf script --pid` drops another process's sample only
# after machine__resolve has looked up its leaf symbol
# (tools/perf/util/event.c, machine__resolve; the pid test is
# thread__is_filtered, tools/perf/util/thread.h), and that lookup loads the
# JIT map when the leaf is in anonymous (JIT) memory. So with -a, perf may
# open the map of any process of the host, not only the targets'. perf 6.1
# opens it whoever owns it, --force or not (measured: a FIFO owned by nobody
# as the map of a busy non-target blocks `perf script --pid <target>` in
# fifo_open; dso__load, tools/perf/util/symbol.c in torvalds/linux@005f9294,
# has no owner test for /tmp/perf- maps, only ancient perfs had one). For a
# process in another mount namespace (a root container, a PrivateTmp
# service) perf stats /proc/PID/ns/mnt at `perf script` time (nsinfo__init,
# tools/perf/util/namespaces.c), enters that namespace and opens
# /tmp/perf-NSPID.map there (dso__find_perf_map, nsinfo__mountns_enter):
# a FIFO there blocked perf script until its time limit (issue 18 §5).
#
# So every map perf may open is screened, in one pass: /tmp/perf-PID.map
# (perf opens no other name), and the map of each process in another mount
# namespace (one find lists them; NSpid from /proc/PID/status). Each that is
# a FIFO, a symlink or not a regular file is hidden from perf script, which
# then runs in a mount namespace of its own (unshare, util-linux; the prefix
# MASKS becomes): an empty tmpfs over /proc/PID makes nsinfo__init fail, so
# perf never enters that process's namespace and looks for
# /tmp/perf-PID.map in its own, where for a host map /dev/null is bound over
# it. Both are needed for a host map: perf script in a namespace of its own
# sees every host process as in another one, and would enter the host's to
# open the map (measured: it did, and blocked). Measured with perf 6.1: perf
# script of the same perf.data ends in 2-4 s with the target's stacks, and
# blocks without the masks. The mounts die with perf script's namespace. A
# map swapped for a FIFO after this, or one the screening cannot see (a
# process chrooted inside its namespace: /proc/PID/root is its chroot, while
# setns puts perf at the namespace's root), is caught by script_watch.
screen_host_maps() {
  local map pid m=""
  MASKS=()
  for map in /tmp/perf-[0-9]*.map; do
    pid=${map:10:-4}
    hostile_map "$map" && MASKS+=("$map" "/proc/$pid") m=$map
  done
  # -samefile, not -lname: "mnt:[N]" would be a glob.
  while IFS=/ read -r _ _ pid _; do
    ns_pid "$pid"
    map=/proc/$pid/root/tmp/perf-${REPLY:-$pid}.map
    hostile_map "$map" && MASKS+=("/proc/$pid") m=$map
  done <<<"$(find -L /proc/[0-9]*/ns/mnt -maxdepth 0 ! -samefile /proc/self/ns/mnt 2>/dev/null || true)"
  ((${#MASKS[@]})) || return 0
  warn "kept perf script from non-regular perf map(s), as $m"
  # perf script's prefix: sh makes the mounts in a private mount namespace
  # (made private first: unshare before util-linux 2.27 leaves propagation
  # shared), then execs perf. A mount that fails (the process has exited)
  # leaves nothing to hide, and says so in script.log.
  # shellcheck disable=SC2016
  MASKS=(unshare --mount -- sh -c 'mount --make-rprivate / || exit; while [ "$1" != -- ]; do case $1 in /p*) mount -t tmpfs x "$1";; *) mount --bind /dev/null "$1";; esac; shift; done; shift; exec "$@"' sh "${MASKS[@]}" --)
}

prepare_maps() {
  local i pid map owner uid inode copy=no
  if perf_needs_map_copy; then copy=yes; fi
  screen_host_maps
  for i in "${!T_PID[@]}"; do
    pid=${T_PID[i]}
    map_path "$i"
    map=$REPLY
    if hostile_map "$map"; then
      # Masked by screen_host_maps (every mask it makes names /proc/PID):
      # perf script never opens it. Not masked: it changed since.
      if [[ " ${MASKS[*]} " == *" /proc/$pid "* ]]; then
        warn_pid hostile "$pid" "have a perf map that is a symlink or not a regular file (FIFO?); its JIT frames are [unknown]"
        T_MAP[i]=hostile
        continue
      fi
      die 6 "pid $pid replaced its perf map $map with a symlink or a FIFO during the recording; perf script would block or read the wrong file. Record again"
    fi
    if [[ ! -f $map ]]; then
      # Only Node has something to say here; other executables need no map.
      [[ ${T_VERSION[i]} == unknown ]] && continue
      warn_pid nomap "$pid" "lack a perf map: start node with --perf-basic-prof or --perf-basic-prof-only-functions (NODE_OPTIONS), or JS frames are [unknown]"
      continue
    fi
    if [[ $map == /proc/* && $copy == yes ]]; then
      copy_container_map "$i" "$map" || continue
      T_MAP[i]=copied
      check_map_content "$i" "$REPLY"
      continue
    fi
    read -r owner inode <<<"$(stat -c '%u %i' -- "$map")"
    uid=$(stat -c %u -- "/proc/$pid" 2>/dev/null || printf '%s' "$owner")
    if [[ $owner != 0 && $owner != "$uid" ]]; then
      warn_pid foreignmap "$pid" "have a perf map owned by another user than the process; its names may be wrong"
    fi
    if [[ $SCRIPT_FORCE == no ]] && ((EUID == 0 && owner != 0)); then
      RESTORE_OWNERS+=("$owner:$(stat -c %g -- "$map"):$inode:$map")
      chown -h -- root "$map"
    fi
    T_MAP[i]=ok
    check_map_content "$i" "$map"
  done
}

# --- stacks -------------------------------------------------------------------
# perf_script_options: the `perf script` options this perf has, read from its
# own help (perf 4.14 to current differ): --no-inline (perf has --[no-]inline since 4.16; without
# it perf resolves inlined frames with addr2line, minutes per DSO) and
# --force (read maps owned by another user; no chown needed). What was used
# goes into meta.json.
perf_script_options() {
  local help
  help=$("$PERF" script -h 2>&1 | head -c 65536 || true)
  SCRIPT_OPTS=()
  SCRIPT_FORCE=no
  SCRIPT_PID=no
  # --pid keeps the samples of the given processes and their threads: a
  # sample's thread matches when its pid (thread group) is listed
  # (thread__is_filtered, tools/perf/util/thread.h).
  if [[ $help == *--pid* ]]; then SCRIPT_PID=yes; fi
  if [[ $help == *--inline* ]]; then SCRIPT_OPTS+=(--no-inline); fi
  if [[ $help == *--force* ]]; then
    SCRIPT_OPTS+=(--force)
    SCRIPT_FORCE=yes
  fi
}

# make_cgroups: child cgroups for post-processing with a CPU quota of
# SCRIPT_QUOTA_PCT% of one CPU (CG_cpu=1) and a memory limit of MEM_MIB
# (CG_mem=1), into CGS; cleanup and the reaper remove them. Each entry is
# "CGP index, file, value": v2 where /sys/fs/cgroup is cgroup2 (a file it
# cannot write, as a controller the root does not delegate, is skipped),
# else v1's cpu and memory hierarchies.
make_cgroups() {
  local e i f v
  for e in "0 cpu.max ${SCRIPT_QUOTA_PCT}000 100000" "0 memory.max $((MEM_MIB << 20))" \
    "1 cpu.cfs_quota_us ${SCRIPT_QUOTA_PCT}000" "2 memory.limit_in_bytes $((MEM_MIB << 20))"; do
    read -r i f v <<<"$e"
    e=${CGP[i]}
    [[ -f ${e%/*}/cgroup.procs ]] || continue
    [[ -d $e ]] || { mkdir -- "$e" 2>/dev/null && CGS+=("$e"); } || continue
    if echo "$v" >"$e/$f" 2>/dev/null; then printf -v "CG_${f:0:3}" 1; fi
  done
}

# run_low CMD...: exec CMD (so start it with &) in the post-processing
# cgroups, under `ulimit -v` where no memory cgroup could be made, at LOW
# priority and first in line for the OOM killer (oom_score_adj 1000): a
# host short of memory sacrifices it before a Node worker.
run_low() {
  local c
  for c in ${CGS[@]+"${CGS[@]}"}; do echo "$BASHPID" >"$c/cgroup.procs" 2>/dev/null || true; done
  ((CG_mem)) || ulimit -v $((MEM_MIB << 10)) 2>/dev/null || true
  echo 1000 >/proc/self/oom_score_adj 2>/dev/null || true
  exec "${LOW[@]}" "$@"
}

# check_memory [warn]: perf script loads the JIT map of every process it has
# samples of, target or not (issue 18 §3: a 27.6 MB map raised its RSS from
# 77 to 156 MB, and 141 MB for a non-target). Estimate its peak from the
# live maps; refuse when that exceeds MEM_MIB, half of MemAvailable (the
# limit it then runs under), and warn above a quarter.
check_memory() {
  local m maps=0 need
  for m in /tmp/perf-*.map; do
    [[ ! -f $m || ! -d /proc/${m//[^0-9]/} ]] || maps=$((maps + $(stat -c %s -- "$m" || echo 0)))
  done
  need=$((SCRIPT_BASE_MIB + maps * MAP_RSS_X / 1048576)) maps=$((maps >> 20))
  mem_avail_kib
  MEM_MIB=$((REPLY / 2048))
  if ((need > MEM_MIB)); then
    die 5 "not enough memory for perf script: $need MiB for $maps MiB of JIT maps, over half of MemAvailable ($MEM_MIB MiB)"
  fi
  if [[ ${1-} ]] && ((need > MEM_MIB / 2)); then
    warn "perf script may need $need MiB for $maps MiB of JIT maps; it ran under a $MEM_MIB MiB limit"
  fi
}

# script_watch: perf script asleep in the open or the read of a FIFO makes
# no progress: perf never reads a FIFO but a perf map (perf.data is a file,
# and it writes to our pipe). Not before its stdout is stacks.pipe: until
# awk opens it, the shell that starts perf waits in that FIFO's open (it
# did, and a host FIFO map was named). So at the first sight it is stopped, and
# BLOCKED names the FIFO among the maps in its /tmp (while blocked, its root
# is that of the mount namespace it entered) and that namespace. TIMED_OUT
# keeps the "idle" warning away. wchan says where it sleeps:
# wait_for_partner (open) and pipe_read on 5.x and later (measured on 6.1:
# wait_for_partner, in fifo_open). Before 5.6 read and write both wait in
# pipe_wait, which a write to our own pipe shares: not taken, there the time
# limit stops it (screen_host_maps keeps perf from the maps seen before).
script_watch() {
  local p=${CHILD_PIDS[0]} w="" m=""
  read -r w <"/proc/$p/wchan" || true
  [[ /proc/$p/fd/1 -ef $WORK/stacks.pipe && $w =~ ^(wait_for_partner|pipe_read)$ ]] || return 0
  for w in "/proc/$p/root/tmp/"perf-*.map; do [[ -p $w ]] && m=${w#/proc/"$p"/root}; done
  BLOCKED=", blocked on FIFO perf map $m in $(readlink "/proc/$p/ns/mnt" || true)" TIMED_OUT=1
  kill -9 "$p" || true
}

# write_stacks: `perf script` streamed through awk, which counts the samples
# on the way (a sample starts with an unindented header line; its frames are
# indented), into gzip, through FIFOs: the text (5-10x perf.data) never lands
# on disk, and it is read once. gzip's default level 6: on this machine's
# Node captures -3 gave ~1.5x the bytes, and gzip's CPU is small next to perf
# script's (0.2 s user for 32 MB of text at -6, 0.13 s at -3).
#
# Priority: nice 19 starved it 10-20x on a saturated host, where it shares a
# scheduling group with Node (no autogroup; services in the root cpu
# cgroup): see SCRIPT_QUOTA_PCT. Its time limit grows with perf.data
# (SCRIPT_BPS); when it is reached, perf script is stopped and what it wrote
# is delivered, marked partial, with a warning.
write_stacks() {
  local free need limit bytes last pick=()
  if [[ $RECORD_MODE == system-wide ]]; then pick=(--pid "$(IFS=,; printf '%s' "${T_PID[*]}")"); fi
  bytes=$(stat -c %s -- "$WORK/perf.data")
  free=$(free_mib "$WORK")
  need=$((bytes / 1048576 + 64))
  if [[ $free =~ ^[0-9]+$ ]] && ((free < need)); then
    die 5 "not enough free disk in $WORK for stacks.gz: need about $need MiB, have $free MiB"
  fi
  check_memory warn
  remaining_s
  limit=$((60 + bytes / SCRIPT_BPS))
  ((limit < REPLY - 120)) || limit=$((REPLY - 120))
  ((limit >= 30)) || limit=30
  limit=${FLAMEFIRE_TEST_SCRIPT_S:-$limit}
  make_cgroups
  LOW=(nice -n $((CG_cpu ? 0 : SCRIPT_NICE)))
  if command -v ionice >/dev/null 2>&1; then LOW+=(ionice -c 3); fi

  mkfifo -m 600 -- "$WORK"/{stacks,count}.pipe
  now_us
  local t0=$REPLY
  # Not through start_child: a redirection on a function call is opened by
  # this shell, which would block on the FIFO.
  run_low ${MASKS[@]+"${MASKS[@]}"} "$PERF" script -i "$WORK/perf.data" ${SCRIPT_OPTS[@]+"${SCRIPT_OPTS[@]}"} \
    ${pick[@]+"${pick[@]}"} >"$WORK/stacks.pipe" 2>"$LOGS/script.log" &
  CHILD_PIDS+=("$!")
  run_low awk -v o="$LOGS/samples" '/^[^ \t]/{n++}1;END{print n+0>o}' \
    <"$WORK/stacks.pipe" >"$WORK/count.pipe" &
  CHILD_PIDS+=("$!")
  run_low gzip -6 -n -c <"$WORK/count.pipe" >"$WORK/stacks.gz" 2>"$LOGS/gzip.log" &
  CHILD_PIDS+=("$!")
  wait_children "$limit" script_watch
  # gzip first: when it fails (a full disk), perf script dies of SIGPIPE.
  if ((CHILD_RCS[2] != 0)); then
    full_fs
    last=$(tail -n1 "$LOGS/gzip.log" | sanitize_text || true)
    die $((${#REPLY} ? 5 : 6)) "writing stacks.gz failed (gzip exit ${CHILD_RCS[2]}${last:+: $(printable "$last" 120)})$REPLY"
  fi
  read -r SAMPLES <"$LOGS/samples" || SAMPLES=0
  if ((TIMED_OUT)); then
    # Nothing at all to deliver: an error that says why, not an empty
    # flamegraph whose advice would be "record for longer".
    ((SAMPLES)) || die 6 "perf script was stopped${BLOCKED:- at its time limit of $limit s} before its first sample${BLOCKED:+: remove that FIFO}"
    PARTIAL=true
    warn "perf script was stopped${BLOCKED:- at its time limit of $limit s}: stacks.gz is partial, $SAMPLES samples"
  elif ((CHILD_RCS[0] != 0)); then
    # The OOM killer in our memory cgroup (v2 memory.events, v1
    # memory.oom_control count its kills): perf script hit MEM_MIB. It
    # dies of SIGKILL then, with nothing in its log to say why. (Neither
    # file has another line with "oom_kill ": oom_group_kill, oom_kill_disable.)
    grep -qs 'oom_kill [1-9]' "${CGP[0]}/memory.events" "${CGP[2]}/memory.oom_control" && die 6 "perf script hit its memory limit of $MEM_MIB MiB: free memory or use --perf-basic-prof-only-functions"
    last=$(tail -n1 "$LOGS/script.log" | sanitize_text || true)
    die 6 "perf script failed (exit ${CHILD_RCS[0]}; memory limit $MEM_MIB MiB)${last:+: $(printable "$last" 200)}"
  fi
  seconds_since "$t0"
  SCRIPT_S=$REPLY
  rm -f -- "$WORK"/{perf.data,stacks.pipe,count.pipe}
  STACKS_BYTES=$(stat -c %s -- "$WORK/stacks.gz")
  if ((SAMPLES == 0 && !TIMED_OUT)); then
    warn "perf recorded no samples: the targets were idle for the whole $P_Duration s"
  fi
}

# --- meta.json ----------------------------------------------------------------
write_meta() {
  local i sep="" w perf_version opts="" o
  perf_version=$("$PERF" --version 2>/dev/null | head -n1 | sanitize_text || true)
  for o in ${SCRIPT_OPTS[@]+"${SCRIPT_OPTS[@]}"}; do
    opts+="${opts:+, }$(json_str "$o")"
  done
  flush_pid_warnings
  perf_version=${perf_version#perf version }
  {
    printf '{\n'
    printf '  "schema": 1,\n'
    printf '  "run_id": %s,\n' "$(json_str "$P_RunId")"
    printf '  "instance_id": %s,\n' "$(json_str "$INSTANCE_ID")"
    printf '  "hostname": %s,\n' "$(json_str "$HOST")"
    printf '  "kernel": %s,\n' "$(json_str "$KERNEL")"
    printf '  "distro": %s,\n' "$(json_str "$DISTRO")"
    printf '  "perf_version": %s,\n' "$(json_str "${perf_version:-unknown}")"
    printf '  "perf_path": %s,\n' "$(json_str "$PERF")"
    printf '  "perf_script_options": [%s],\n' "$opts"
    printf '  "event": %s,\n' "$(json_str "$EVENT")"
    printf '  "record_mode": %s,\n' "$(json_str "$RECORD_MODE")"
    printf '  "duration_s": %d,\n' "$P_Duration"
    printf '  "frequency_hz": %d,\n' "$FREQ"
    printf '  "started_at": %d,\n' "$STARTED_AT"
    printf '  "targets": ['
    for i in "${!T_PID[@]}"; do
      printf '%s\n    {"pid": %d, "cmdline": %s, "node_version": %s, "map": %s, "map_bytes": %d}' \
        "$sep" "${T_PID[i]}" "$(json_str "${T_CMDLINE[i]}")" "$(json_str "${T_VERSION[i]}")" \
        "$(json_str "${T_MAP[i]}")" "${T_MAP_BYTES[i]}"
      sep=,
    done
    printf '\n  ],\n'
    printf '  "warnings": ['
    sep=""
    for w in ${WARNINGS[@]+"${WARNINGS[@]}"}; do
      printf '%s\n    %s' "$sep" "$(json_str "$(printf '%s' "$w" | sanitize_text)")"
      sep=,
    done
    if ((${#WARNINGS[@]} > 0)); then printf '\n  '; fi
    printf '],\n'
    printf '  "samples": %d,\n' "$SAMPLES"
    printf '  "partial": %s,\n' "$PARTIAL"
    printf '  "stacks_bytes": %d,\n' "$STACKS_BYTES"
    printf '  "phases": {"install_s": %s, "record_s": %s, "script_s": %s, "compress_s": %s}\n' \
      "$INSTALL_S" "$RECORD_S" "$SCRIPT_S" "$COMPRESS_S"
    printf '}\n'
  } >"$WORK/meta.json"
}

# --- delivery -----------------------------------------------------------------
# deliver_local [--out DIR]: local mode (UploadUrl empty) writes into DIR
# (`flamefire local` passes its own), else into a fixed, root-only (umask
# 077), bounded place, /var/lib/flamefire/runs/<UTC>-<RunId>/, the newest 10
# kept: never the working directory, which under the SSM agent is the
# agent's own (/usr/bin, from the console's "Run command"). Staged next to
# the destination and renamed, so a planted symlink there is replaced, never
# followed.
deliver_local() {
  local name staged out=${FLAMEFIRE_TEST_OUT:-} base=/var/lib/flamefire/runs old
  [[ ${1:-} != --out ]] || out=${2:-}
  if [[ -z $out ]]; then
    { mkdir -p "$base" && chmod 0700 "$base"; } || die 7 "cannot create $base"
    old=("$base"/*/)
    [[ -d ${old[0]} ]] && ((${#old[@]} > 9)) && rm -rf -- "${old[@]:0:${#old[@]}-9}"
    out=$base/$(date -u +%Y%m%dT%H%M%SZ)-$P_RunId
    mkdir -p "$out" || die 7 "cannot create $out"
  fi
  for name in stacks.gz meta.json; do
    staged=$(mktemp "$out/.flamefire-$name.XXXXXXXX") || die 7 "cannot write to the output directory $out"
    CLEANUP_FILES+=("$staged")
    cat -- "$WORK/$name" >"$staged" || die 7 "cannot write $name to $out"
    mv -f -T -- "$staged" "$out/$name" || die 7 "cannot move $name into $out"
  done
  DELIVERED="$out/stacks.gz and $out/meta.json"
}

# upload_file NAME: POST one file with the presigned policy. The policy,
# signature and session token go to curl as a config on its stdin (-K -),
# never as arguments: every user can read /proc/PID/cmdline. In the config,
# form-string is --form-string: '@' or '<' in a value is never read as a
# file. The values were checked against their patterns (no quote, no
# backslash), so they need no escaping. No -q: curl reads ~/.curlrc like any
# curl the host runs. No -L: a redirect is an error.
# upload_file NAME [MAX_TIME [WHEN]]: WHEN prefixes the error line.
upload_file() {
  local name=$1 key bytes max_time left rc=0 args detail cfg f
  key="$P_UploadKeyPrefix$INSTANCE_ID/$name"
  bytes=$(stat -c %s -- "$WORK/$name")
  # At least 1 MiB/s, within what is left of the deadline.
  max_time=${2:-$((60 + bytes / 1048576))}
  remaining_s
  left=$REPLY
  if ((max_time > left / 5)); then max_time=$((left / 5)); fi
  if ((max_time < 10)); then die 7 "no time left to upload $name (deadline reached)"; fi
  cfg=""
  for f in "key=$key" "x-amz-algorithm=AWS4-HMAC-SHA256" "x-amz-credential=$P_UploadCredential" \
    "x-amz-date=$P_UploadDate" ${P_UploadSecurityToken:+"x-amz-security-token=$P_UploadSecurityToken"} \
    "policy=$P_UploadPolicy" "x-amz-signature=$P_UploadSignature"; do
    cfg+="form-string = \"$f\""$'\n'
  done
  # --max-time bounds one attempt only, and --retry 3 made four: a slow
  # upload was killed by wait_child in the middle of a retry (issue 18 §6).
  # No retry starts after max_time (--retry-max-time) and each lasts at
  # most max_time, so curl ends by itself within 2 x max_time.
  args=(--silent --show-error "${CURL_OPTS[@]}" --max-time "$max_time" --retry-max-time "$max_time"
    --retry 3 --retry-delay 2 --proto '=https,http' -o "$WORK/upload-$name.out"
    -K - --form "file=@$WORK/$name" "$P_UploadUrl")
  # Not through start_child: an asynchronous command gets /dev/null as stdin
  # unless the redirection is its own, and curl must read the config.
  curl "${args[@]}" 2>"$WORK/upload-$name.err" <<<"$cfg" &
  CHILD_PIDS+=("$!")
  wait_child $((2 * max_time + 30)) || rc=$?
  if ((rc != 0)); then
    detail=$(grep -o -E '<(Code|Message)>[^<]{0,200}</(Code|Message)>' "$WORK/upload-$name.out" 2>/dev/null | tr '\n' ' ' || true)
    [[ -n $detail ]] || detail=$(tail -n1 "$WORK/upload-$name.err" 2>/dev/null || true)
    die 7 "${3:-}upload of $name to ${P_UploadUrl}$key failed (curl exit $rc)${detail:+: $(printable "$detail" 300)}"
  fi
}

# check_upload_path: one small POST through the same presigned policy before
# anything is installed or recorded (issue 17 §1). The host's path to S3 is
# not the laptop's: a host without one (DNS, route, proxy, TLS: curl exit 5,
# 6, 7, 28, 35, 60), or whose POST a bucket, SCP or endpoint policy refuses
# (s3:authType POST, aws:SourceIp/SourceVpce), fails now, in seconds, with
# curl's or S3's words, rather than after the whole window.
check_upload_path() {
  # Newer curl options only where this curl has them (CentOS 7 has 7.29):
  # keep S3's error body, and retry a refused connection too.
  local help
  help=$(curl --help all 2>/dev/null || true)
  CURL_OPTS=(--fail)
  if [[ $help == *--fail-with-body* ]]; then CURL_OPTS=(--fail-with-body); fi
  if [[ $help == *--retry-connrefused* ]]; then CURL_OPTS+=(--retry-connrefused); fi
  printf 'flamefire upload check\n' >"$WORK/upload-check"
  upload_file upload-check 20 "before recording: "
}

deliver_upload() {
  # meta.json last: its presence marks this host's upload as complete.
  upload_file stacks.gz
  upload_file meta.json
  DELIVERED="${P_UploadUrl}${P_UploadKeyPrefix}$INSTANCE_ID/{stacks.gz,meta.json}"
}

# --- summary --------------------------------------------------------------------
print_summary() {
  local i n=${#T_PID[@]} shown=0 w where
  host_label
  where=$REPLY${REGION:+, $REGION}
  printf 'flamefire: run %s on %s\n' "$P_RunId" "$where"
  printf 'recorded %d process(es) for %d s at %d Hz: %d samples, stacks.gz %d bytes\n' \
    "$n" "$P_Duration" "$FREQ" "$SAMPLES" "$STACKS_BYTES"
  for i in "${!T_PID[@]}"; do
    if ((shown == 10)); then
      printf '  ... and %d more (see meta.json)\n' $((n - shown))
      break
    fi
    printf '  pid %-8s %-10s map %-8s %s\n' "${T_PID[i]}" "$(printable "${T_VERSION[i]}" 16)" \
      "${T_MAP[i]}" "$(printable "${T_CMDLINE[i]}" 60)"
    shown=$((shown + 1))
  done
  if ((${#WARNINGS[@]} > 0)); then
    printf 'warnings: %d\n' "${#WARNINGS[@]}"
    shown=0
    for w in "${WARNINGS[@]}"; do
      if ((shown == 6)); then
        printf '  - ... (see meta.json)\n'
        break
      fi
      printf '  - %s\n' "$(printable "$w" 200)"
      shown=$((shown + 1))
    done
  fi
  printf 'output: %s\n' "$DELIVERED"
}

# --- probe ------------------------------------------------------------------
# probe: `flamefire doctor --probe` (Probe=true). It comes after every check a
# run makes before it records (parameters, tools, targets, free disk, the
# upload path: a real POST through the same presigned policy), finds perf
# but installs nothing, and records the whole host for one second, so that
# the kernel judges it as it would a run's (perf_event_paranoid, lockdown, a
# seccomp filter, an agent that is not root). Nothing is kept. The first
# failure ends it with a run's error line and exit code; else one line on
# stdout says what a run would find, and one more has the warnings.
probe() {
  local i maps=0 rc p='?' lock=none up=ok
  [[ -n $P_UploadUrl ]] || up=none
  for i in "${!T_PID[@]}"; do
    map_path "$i"
    if [[ -f $REPLY ]] && ! hostile_map "$REPLY"; then maps=$((maps + 1)); fi
  done
  ensure_perf
  if [[ -n $PERF ]]; then
    start_child "$PERF" record -e "$EVENT" -F 99 -a -g -o "$WORK/perf.data" -- sleep 1 >"$LOGS/record.log" 2>&1
    wait_children 30
    rc=${CHILD_RCS[0]:-1}
    perf_warnings "$LOGS/record.log"
    if ((rc != 0)); then
      perf_says "$LOGS/record.log"
      die 6 "perf record failed (exit $rc)${REPLY:+: $(printable "$REPLY" 300)}"
    fi
    PERF=$("$PERF" --version 2>&1 | head -n1)
  fi
  [[ ! -r /proc/sys/kernel/perf_event_paranoid ]] || p=$(</proc/sys/kernel/perf_event_paranoid)
  if [[ -r /sys/kernel/security/lockdown ]]; then
    lock=$(</sys/kernel/security/lockdown)
    lock=${lock#*\[}
    lock=${lock%%\]*}
  fi
  printf 'flamefire: probe ok: %s; perf_event_paranoid %s, lockdown %s; %s MiB free in %s; %d %s process(es), %d with a JIT map; upload %s\n' \
    "${PERF:-perf to be installed}" "$p" "$lock" "$(free_mib "$WORK")" "${WORK%/*}" ${#T_PID[@]} "$P_ProcessName" "$maps" "$up"
  flush_pid_warnings
  if ((${#WARNINGS[@]} > 0)); then
    warnings_line
    printf 'flamefire: probe warnings: %s\n' "$REPLY"
  fi
}

# --- main ---------------------------------------------------------------------
main() {
  local t0
  DEADLINE=$(($(date +%s) + BUDGET_S))
  INSTALL_S=0.000 RECORD_S=0.000 SCRIPT_S=0.000 COMPRESS_S=0.000
  SAMPLES=0 PARTIAL=false CG_cpu=0 CG_mem=0 STACKS_BYTES=0 STARTED_AT=0 FREQ=0 DELIVERED="" TARGETS_FOUND=0 PERF=perf
  SCRIPT_OPTS=() SCRIPT_FORCE=no SCRIPT_PID=no RECORD_MODE=system-wide TARGETS_NEW=0

  read_params
  check_upload_params
  check_tools
  read_identity
  # A probe records nothing, and must not wait for a run that does.
  [[ $P_Probe == true ]] || lock_host
  select_targets
  describe_targets
  make_workdir
  [[ -z $P_UploadUrl ]] || check_upload_path
  if [[ $P_Probe == true ]]; then
    probe
    return 0
  fi

  now_us
  t0=$REPLY
  ensure_perf
  seconds_since "$t0"
  INSTALL_S=$REPLY

  perf_script_options
  cap_frequency
  wait_for_start
  screen_targets
  check_disk_budget
  check_memory
  start_reaper

  now_us
  t0=$REPLY
  record
  seconds_since "$t0"
  RECORD_S=$REPLY

  prepare_maps
  write_stacks
  write_meta

  if [[ -z $P_UploadUrl ]]; then deliver_local "$@"; else deliver_upload; fi
  print_summary
}

main "$@"
