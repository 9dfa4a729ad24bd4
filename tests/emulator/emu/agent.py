"""The SSM agent stand-in: delivery, the docparser's parameter check, the
environment and process of each script, its streams, cancellation, and replay."""

from __future__ import annotations

import glob
import gzip
import json
import os
import platform as pyplatform
import re
import signal
import subprocess
import threading
import traceback
import urllib.parse

import sys

import re2

from .backend import Instance
from .config import (
    CLEAN_PATH, DELIVERY_LATENCY_S, ENV_VAR_AGENT_VERSION, EXIT_WITH_FAILURE,
    EXIT_WITH_SUCCESS, MAX_PLUGIN_OUTPUT, MAX_STDERR, MAX_STDOUT, OFFLINE_POLL_S,
    PLATFORM_NAME_LINUX, PLATFORM_VERSION_LINUX, REBOOT_EXIT_CODE,
    STOPPED_PREEMPTIVELY_EXIT_CODE, TAG_NETWORK, TAG_REPLAY_CAPTURE, TAG_REPLAY_DELAY,
    TAG_SECCOMP, TAG_WITHOUT, log, now,
)
from .model import (
    Command, Document, Invocation, OUTPUT_TRUNCATED_SUFFIX, limit_from, string_prefix,
    truncate_output, version_tuple,
)
from .state import EMU
from .tls import tls_proxy_env


# --------------------------------------------------------------------------- the agent stand-in


def dispatch(cmd: Command) -> None:
    """Send a command's invocations out, honouring MaxConcurrency and MaxErrors."""
    invs = list(cmd.invocations.values())
    slots = threading.BoundedSemaphore(max(1, limit_from(cmd.max_concurrency, len(invs))))
    max_errors = limit_from(cmd.max_errors, len(invs))
    for inv in invs:
        acquired = False
        while not inv.cancel.is_set():
            acquired = slots.acquire(timeout=0.2)
            if acquired:
                break
        if inv.cancel.is_set():
            inv.finish("Cancelled", "Cancelled")
            if acquired:
                slots.release()
            continue
        if cmd.error_count() > max_errors:
            # "When the command fails one more time beyond the value of MaxErrors,
            # the system stops sending the command to additional targets."
            inv.finish("Cancelled", "Terminated")
            slots.release()
            continue
        threading.Thread(target=run_invocation, args=(inv, slots), daemon=True,
                         name=f"inv-{inv.instance_id}").start()


def run_invocation(inv: Invocation, slots: threading.BoundedSemaphore) -> None:
    try:
        deliver_and_run(inv)
    except Exception as e:  # never leave an invocation hanging on an emulator bug
        log.error("invocation %s/%s crashed: %s", inv.command.id, inv.instance_id,
                  traceback.format_exc())
        inv.stderr = f"flamefire emulator error: {e}"
        inv.finish("Failed", "Failed", 1)
    finally:
        slots.release()


def deliver_and_run(inv: Invocation) -> None:
    cmd = inv.command
    inst = inv.instance
    if inv.force_undeliverable or inst is None or not inst.managed \
            or inst.behaviour == "undeliverable":
        inv.finish("Failed", "Undeliverable")
        return
    deadline = cmd.expires
    if inst.delivery_timeout is not None:  # test-only shortcut, see README
        deadline = min(deadline, cmd.requested + inst.delivery_timeout)
    # Wait for the agent to pick the command up.
    while not inst.online:
        remaining = deadline - now()
        if remaining <= 0:
            inv.finish("TimedOut", "DeliveryTimedOut")
            return
        if inv.cancel.wait(min(OFFLINE_POLL_S, remaining)):
            inv.finish("Cancelled", "Cancelled")
            return
        try:
            inst = EMU.moto.instance(cmd.region, inst.id) or inst
            inv.instance = inst
        except Exception as e:  # moto hiccup: keep waiting
            log.warning("re-reading %s failed: %s", inst.id, e)
    if inv.cancel.wait(DELIVERY_LATENCY_S):
        inv.finish("Cancelled", "Cancelled")
        return
    if inst.behaviour == "replay" and inst.replay_timing == "real" \
            and inst.platform in cmd.document.platforms and not replay_wait(inv):
        return
    # The emulator's own cap on concurrent processes; the invocation stays
    # Pending meanwhile, as it would until a real agent starts it.
    while not EMU.proc_slots.acquire(timeout=0.2):
        if inv.cancel.is_set():
            inv.finish("Cancelled", "Cancelled")
            return
        if now() >= deadline:
            inv.finish("TimedOut", "DeliveryTimedOut")
            return
    try:
        if inv.cancel.is_set():
            inv.finish("Cancelled", "Cancelled")
            return
        with EMU.state.lock:
            # (replay-timing=real has been InProgress since its wait began)
            inv.status, inv.details, inv.started = "InProgress", "InProgress", inv.started or now()
        if inst.platform not in cmd.document.platforms:
            inv.stdout = ("Step execution skipped due to incompatible platform. "
                          f"Step name: {cmd.document.step_name}")
            inv.finish("Success", "Success", 0)
            return
        refused = agent_param_errors(cmd.document, cmd.given_params)
        if refused:
            # agent/messageservice/interactor/mdsinteractor/mdsinteractor.go
            # processMessage:496-502: a command the docparser refuses gets one
            # document-level reply, sendDocLevelResponse(Failed, err.Error())
            # (:646-657, messageutil.go PrepareReplyPayloadToUpdateDocumentStatus:
            # 309-320: DocumentTraceOutput = the message, no plugin results), and
            # nothing runs. The reply is where the agent's source ends; the
            # emulator shows the message as the invocation's TraceOutput and as
            # its plugin's Output and StandardErrorContent, with no exit code
            # (-1): see README, "The real agent's contract".
            inv.trace_output = inv.stderr = refused
            inv.finish("Failed", "Failed", -1)
            return
        if inst.behaviour == "replay":
            run_replay(inv)
        else:
            run_script(inv, inst)
    finally:
        EMU.proc_slots.release()


# --- the agent's parameter check (docparser) ---

# RE2's parser errors (re2/re2.cc, RE2::ErrorCodeText) as Go's regexp/syntax
# names them (ErrorCode strings in Go's src/regexp/syntax/parse.go): the agent
# is Go, so its message says Go's words. Checked by hand with `go run` on the
# same patterns.
RE2_TO_GO_ERRORS = (
    ("invalid repetition size", "invalid repeat count"),
    ("bad repetition operator", "invalid nested repetition operator"),
    ("missing argument to repetition operator", "missing argument to repetition operator"),
    ("missing )", "missing closing )"),
    ("missing ]", "missing closing ]"),
    ("unexpected )", "unexpected )"),
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("invalid named capture group", "invalid named capture"),
    ("invalid character class range", "invalid character class range"),
    ("invalid character class", "invalid character class"),
    ("invalid escape sequence", "invalid escape sequence"),
    ("invalid UTF-8", "invalid UTF-8"),
    ("pattern too large", "expression too large"),
)


def go_regexp_error(pattern: str, err: Exception) -> str:
    """Go's `regexp.Compile` error text for a pattern RE2 refuses:
    "error parsing regexp: <code>: `<expr>`" (regexp/syntax Error.Error)."""
    text = err.args[0] if err.args else str(err)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.startswith("trailing \\"):
        return "error parsing regexp: trailing backslash at end of expression: ``"
    for cxx, go in RE2_TO_GO_ERRORS:
        if text.startswith(cxx):
            expr = text[len(cxx):].lstrip(":").strip()
            return f"error parsing regexp: {go}: `{expr or pattern}`"
    return f"error parsing regexp: {text}: `{pattern}`"


def re2_options() -> "re2.Options":
    opts = re2.Options()
    opts.log_errors = False  # the refusal is reported to the caller, not logged by RE2
    return opts


def agent_param_errors(doc: Document, given: dict) -> str | None:
    """The agent's own check of a command's parameters before any step runs,
    or None when they pass.

    agent/messageservice/utils/messageutil.go ParseSendCommandMessage:236 ->
    agent/framework/docparser/docparser.go InitializeDocState:64, ParseDocument:
    106, getValidatedParameters:456-477 -> agent/framework/docparser/
    parameterstore/parameterstore.go ValidateSSMParameters:127-162, which runs
    the mandatory validators (paramvalidator.go GetMandatoryValidators:29-35:
    only AllowedRegexParamValidator) on every document parameter, and joins
    their errors. agent/framework/docparser/paramvalidator/
    allowedregexparamvalidator/allowedregexparamvalidator.go Validate:36-81
    compiles the allowedPattern with Go's regexp (RE2 syntax: a repeat count
    over 1000 is refused) and matches each value with MatchString (a search,
    not anchored). Go iterates the parameter map in random order; this
    emulator keeps the document's order.
    """
    errors = []
    values = doc.agent_values(given)
    for name, spec in doc.parameters.items():
        pattern = (spec or {}).get("allowedPattern") or ""
        if not pattern:
            continue  # Validate:39-41
        err = None
        try:
            compiled = re2.compile(pattern, re2_options())
        except re2.error as e:
            err = ("encountered error while compiling allowed pattern - internal error: "
                   + go_regexp_error(pattern, e))  # Validate:44-47
        else:
            value = values.get(name)
            items = value if isinstance(value, list) else [value]
            if value is None or not all(isinstance(v, str) for v in items):
                err = f"invalid parameter type {(spec or {}).get('type', '')} with parameter " \
                      f"value {value}"  # Validate:77-78
            else:
                for v in items:  # Validate:49-60
                    if not compiled.search(v):
                        err = f"parameter value /{v}/ does not match the allowed pattern /{pattern}/"
                        break
        if err:
            # parameterstore.go:132
            errors.append(f"error thrown in 'AllowedRegexParamValidator' while validating "
                          f"parameter /{name}/: {err}")
    if not errors:
        return None
    return "all errors during param validation errors: " + "\n".join(errors)  # :159


def agent_env(inv: Invocation, inst: Instance) -> dict[str, str]:
    """The script's environment, as agent/executers/executers.go
    prepareEnvironment:465-492 builds it: the agent's whole environment
    (os.Environ()), then the plugin's variables, then AWS_SSM_*.

    The agent runs under systemd (packaging/linux/amazon-ssm-agent.service),
    whose services get no HOME and no LANG, and systemd's default PATH: that
    is the environment modelled here, not this emulator's own.
    """
    cmd = inv.command
    # (A host that lacks commands, TAG_WITHOUT, has a PATH without them.)
    env = {"PATH": without_path(inst) or CLEAN_PATH}
    # The one exception to "the agent's environment only": the hosts' upload
    # URL is an HTTPS S3 name (bucket.s3.<region>.amazonaws.com) that must reach
    # this emulator, with a certificate from the emulator's own CA. On a real
    # host DNS and the system's CA store do this; here a proxy and a CA bundle
    # (see tls_setup) stand in for them. They change where curl connects, not
    # how the script runs.
    env.update(tls_proxy_env())
    # Plugin variables (pluginInput.Environment): ENV_VAR parameters on agents
    # that support them (AWS user guide, "Parameter interpolation"), and
    # agent/plugins/runscript/runscript.go setCommandIdEnvironment:115-123.
    if version_tuple(inst.agent_version) >= ENV_VAR_AGENT_VERSION:
        for name in cmd.document.env_var_params():
            env["SSM_" + name] = cmd.params.get(name, "")
    env["SSM_COMMAND_ID"] = cmd.id
    # executers.go prepareEnvironment:472-487 (constants at :38-44).
    env["AWS_SSM_INSTANCE_ID"] = inst.id
    env["AWS_SSM_REGION_NAME"] = cmd.region
    env["AWS_SSM_PLATFORM_NAME"] = PLATFORM_NAME_LINUX
    env["AWS_SSM_PLATFORM_VERSION"] = PLATFORM_VERSION_LINUX
    return env


# Held while a script file is open for writing and while a child is forked and
# exec'd. Without it, a child forked by another thread (another host's script,
# a replay's curl) inherits the write descriptor until its own exec, and
# `sh -c _script.sh` then fails with ETXTBSY ("Text file busy", execve(2)).
# Go's os/exec takes syscall.ForkLock for the same reason (golang/go#22315).
SPAWN_LOCK = threading.Lock()

# How much of each stream the emulated agent keeps: one byte more than
# StringPrefix needs to decide (len < 24000), so that a script writing
# gigabytes costs this emulator 24 KB per stream. Both reported fields keep
# the START of a stream (TruncateOutput and StringPrefix), so nothing after
# this prefix can ever be reported.
STREAM_KEEP = MAX_STDOUT + 1
STREAM_CHUNK = 65536


class Stream:
    """One of the script's pipes, read to EOF by its own thread (as Go's
    os/exec copies a non-*os.File Stdout/Stderr with a goroutine, and
    cmd.Wait waits for that copy: executers.go ExecuteCommand:277-278, 321)."""

    def __init__(self, pipe, name: str):
        self.data = bytearray()
        self.total = 0
        self.closed = threading.Event()
        self._pipe = pipe
        self._thread = threading.Thread(target=self._read, daemon=True, name=name)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                chunk = self._pipe.read1(STREAM_CHUNK)
                if not chunk:
                    break
                self.total += len(chunk)
                room = STREAM_KEEP - len(self.data)
                if room > 0:
                    self.data += chunk[:room]
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()
            try:
                self._pipe.close()
            except OSError:
                pass

    def append(self, text: str) -> None:
        """iohandler.go AppendError:412-426: the agent's own text goes after
        the script's, through the same writer. out.stderr (the console
        string) is only filled when the writer closes, so no newline is put
        in front: the text follows the script's last byte."""
        room = STREAM_KEEP - len(self.data)
        if room > 0:
            self.data += text.encode()[:room]


def go_signal_name(signum: int) -> str:
    """Go's syscall.Signal.String() on Linux: glibc's description, lower case
    ("killed", "terminated", "segmentation fault")."""
    try:
        return (signal.strsignal(signum) or f"signal {signum}").lower()
    except ValueError:
        return f"signal {signum}"


def run_script(inv: Invocation, inst: Instance) -> None:
    """aws:runShellScript as the agent runs it on Linux; one pass per run of
    the step (a 194 reruns it, see below)."""
    cmd = inv.command
    # agent/plugins/runscript/runscript.go runCommands:168-185: the script
    # lives in <orchestration>/<CommandId>/<step>/_script.sh (the agent's
    # orchestration root is per instance), mode 0700 (pluginutil.go
    # CreateScriptFile:83-92: runCommand lines joined with "\n", plus "\n").
    d = os.path.join(EMU.config.dir, "orchestration", inst.id, cmd.id,
                     re.sub(r"[^A-Za-z0-9_.-]", "_", cmd.document.step_name) or "step")
    os.makedirs(d, exist_ok=True)
    inv.dir = d
    script = os.path.join(d, "_script.sh")
    with SPAWN_LOCK:
        with open(script, "w") as f:
            f.write(cmd.document.script(cmd.params) + "\n")
    os.chmod(script, 0o700)
    while True:
        code = run_step(inv, inst, script)
        # A 194 is SuccessAndReboot (pluginutil_unix.go GetStatus:38-39): the
        # agent reboots the host and, resumed, runs the step again
        # (processor.go:637-640 RequestPendingReboot; runpluginutil.go
        # RunPlugins:143-146 resets a SuccessAndReboot step to InProgress).
        # The emulator cannot reboot this machine; it runs the step again at
        # once, and the invocation stays InProgress meanwhile, as SSM shows it.
        if code != REBOOT_EXIT_CODE or inv.terminal:
            return
        if now() >= cmd.expires or inv.cancel.is_set():
            inv.finish("Cancelled" if inv.cancel.is_set() else "TimedOut",
                       "Cancelled" if inv.cancel.is_set() else "ExecutionTimedOut",
                       STOPPED_PREEMPTIVELY_EXIT_CODE)
            return
        log.info("invocation %s/%s exited 194: running the step again, as after a reboot",
                 cmd.id, inst.id)


HOSTENV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hostenv.py")
# Where a host may have perf besides PATH (the script's find_perf looks there).
PERF_ELSEWHERE = ("/usr/bin/perf_[0-9]*", "/usr/lib/linux-tools-*/perf", "/usr/lib/linux-tools/*/perf")


def host_conditions(inst: Instance, argv: list[str]) -> list[str]:
    """argv under the instance's test-only host conditions (TAG_NETWORK,
    TAG_WITHOUT, TAG_SECCOMP; hostenv.py does the work): namespaces of its
    own, so that this machine and the other "hosts" never see them."""
    network = inst.tags.get(TAG_NETWORK, "").strip().lower() == "none"
    deny_perf = inst.tags.get(TAG_SECCOMP, "").strip().lower() == "deny-perf"
    # Commands found through PATH are left out of without_path's directory;
    # perf is also looked for by absolute path, where it is masked.
    hide = []
    if "perf" in without(inst):
        hide = [p for pattern in PERF_ELSEWHERE for p in glob.glob(pattern)]
    if not (network or hide or deny_perf):
        return argv
    wrapped = ["unshare", "--mount"] + (["--net"] if network else [])
    wrapped += ["--", sys.executable, HOSTENV]
    for path in sorted(set(hide)):
        wrapped += ["--hide", path]
    if deny_perf:
        wrapped.append("--deny-perf")
    return wrapped + ["--"] + argv


def without(inst: Instance) -> list[str]:
    return [c.strip() for c in inst.tags.get(TAG_WITHOUT, "").split(",") if c.strip()]


def without_path(inst: Instance) -> str | None:
    """For TAG_WITHOUT: a directory with a symlink to every command of the
    agent's PATH but the ones the host lacks, in PATH's order of precedence,
    to be the script's whole PATH. (Masking the files themselves would not
    do: bash's `command -v` reports a file that is not executable.)"""
    lacks = set(without(inst))
    if not lacks:
        return None
    d = os.path.join(EMU.config.dir, "hostenv", inst.id, "bin")
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    for directory in CLEAN_PATH.split(":"):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            link = os.path.join(d, name)
            if name not in lacks and not os.path.lexists(link):
                os.symlink(os.path.join(directory, name), link)
    return d


def run_step(inv: Invocation, inst: Instance, script: str) -> int | None:
    """One run of the script; finishes the invocation unless it exits 194.
    Returns the exit code (None when killed on cancel or timeout)."""
    cmd = inv.command
    # agent/plugins/runshellscript/runshellscript.go + pluginutil_unix.go
    # ShellCommand "sh", ShellArgs ["-c"]; runscript.go runCommands:191-192
    # appends the script's absolute path and nothing else ($# is 0).
    argv = host_conditions(inst, ["sh", "-c", script])
    if inst.behaviour == "no-node":
        # A fresh PID namespace with its own /proc: the script genuinely sees no
        # Node process (needs root, as on this test machine).
        argv = ["unshare", "--pid", "--fork", "--mount-proc"] + argv
    with SPAWN_LOCK:
        # executers.go ExecuteCommand:271-301: cwd = the agent's working
        # directory (runscript.go:156-164), stdout/stderr through pipes,
        # stdin /dev/null (os/exec's default), and executers_unix.go
        # prepareProcess:29-33 Setpgid: a new process group in the agent's
        # session, not a new session.
        proc = subprocess.Popen(argv, cwd=EMU.config.agent_cwd, env=agent_env(inv, inst),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, process_group=0)
    # ValidateExecutionTimeout's value, counted from the start of the shell
    # (ExecuteCommand:324-325: time.After right after command.Start).
    exec_deadline = now() + cmd.execution_timeout
    inv.pid = proc.pid
    out = Stream(proc.stdout, f"out-{inst.id}")
    err = Stream(proc.stderr, f"err-{inst.id}")
    outcome = None
    # ExecuteCommand:319-323: `done` is command.Wait(), which returns when the
    # shell has exited AND both copies reached EOF: a background child that
    # keeps stdout open keeps the command InProgress until it exits.
    while True:
        if proc.poll() is not None and out.closed.is_set() and err.closed.is_set():
            break
        if inv.cancel.is_set():
            outcome = "cancel"
        elif now() >= exec_deadline:
            outcome = "timeout"
        if outcome:
            # ExecuteCommand:324-350: on timeout or cancel, kill the group at
            # once (kill_group); what the script writes afterwards is dropped
            # (the cancellableWriter is stopped first, :326-327, :340-341).
            kill_group(proc)
            break
        # Sleep on whatever is still open (at most 0.1 s, to notice a cancel).
        if not out.closed.is_set():
            out.closed.wait(0.1)
        elif not err.closed.is_set():
            err.closed.wait(0.1)
        else:  # both pipes closed (`exec >&- 2>&-`), the shell still runs
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
    rc = proc.wait()
    # Reap the readers: they end when the killed group's pipes close. A child
    # that escaped the group (its own setsid) could hold them: do not wait
    # for it, as the agent does not either after a kill.
    out.closed.wait(2.0 if outcome else None)
    err.closed.wait(2.0 if outcome else None)
    return report_step(inv, out, err, rc, outcome)


def report_step(inv: Invocation, out: Stream, err: Stream, rc: int, outcome: str | None) -> int | None:
    """Status, code and streams as the agent reports them."""
    if outcome == "cancel":
        code, status, details = STOPPED_PREEMPTIVELY_EXIT_CODE, "Cancelled", "Cancelled"
    elif outcome == "timeout":
        code, status, details = STOPPED_PREEMPTIVELY_EXIT_CODE, "TimedOut", "ExecutionTimedOut"
    else:
        # ExecuteCommand:356-376: WaitStatus.ExitStatus() is -1 for a shell
        # killed by a signal, and that is the code reported (only a cancel
        # turns it into 137).
        code = rc if rc >= 0 else -1
        # pluginutil_unix.go GetStatus:34-51.
        if code == 0:
            status = details = "Success"
        elif code == REBOOT_EXIT_CODE:
            return code  # SuccessAndReboot: run_script runs the step again
        elif code == STOPPED_PREEMPTIVELY_EXIT_CODE:
            # A script that exits 137 itself is "TimedOut" to the agent: no
            # cancel flag is set, and GetStatus maps 137 to TimedOut.
            status, details = "TimedOut", "ExecutionTimedOut"
        else:
            status = details = "Failed"
        if code != 0 and status == "Failed":
            # runscript.go runCommands:201-207: output.MarkAsFailed(
            # "failed to run commands: " + err) for any other error, and
            # os/exec's ExitError reads "exit status N" or "signal: <name>".
            reason = f"exit status {rc}" if rc >= 0 else f"signal: {go_signal_name(-rc)}"
            err.append(f"failed to run commands: {reason}")
    stdout, stderr = bytes(out.data), bytes(err.data)
    output_stderr = stderr
    if code == EXIT_WITH_SUCCESS:
        # runpluginutil.go RunPlugins:223-228: 168 is Success; its stderr is
        # dropped, and a note goes after stdout. iohandler.go String:241-248
        # leaves stderr out of Output too.
        status = details = "Success"
        note = ("\nStep exited with code 168. Therefore, marking step as succeeded. "
                "Further document steps will be skipped.").encode()
        stdout, stderr, output_stderr = stdout + note, b"", b""
        output_stdout = bytes(out.data)
    elif code == EXIT_WITH_FAILURE:
        # RunPlugins:229-232: the note goes after both streams (Output keeps
        # the streams as the plugin left them).
        note = ("\nStep exited with code 169. Therefore, marking step as Failed. "
                "Further document steps will be skipped.").encode()
        output_stdout = stdout
        stdout, stderr = stdout + note, stderr + note
    else:
        output_stdout = stdout
    # Output: iohandler.go String -> TruncateOutput (2,500); the Standard*
    # fields: RunPlugins:264-268 StringPrefix(24000, "--output truncated--").
    inv.output = truncate_output(output_stdout, output_stderr, MAX_PLUGIN_OUTPUT) \
        .decode("utf-8", errors="replace")
    inv.stdout = string_prefix(stdout, MAX_STDOUT, OUTPUT_TRUNCATED_SUFFIX) \
        .decode("utf-8", errors="replace")
    inv.stderr = string_prefix(stderr, MAX_STDOUT, OUTPUT_TRUNCATED_SUFFIX) \
        .decode("utf-8", errors="replace")
    inv.finish(status, details, code)
    return None if outcome else code


def kill_group(proc: subprocess.Popen) -> None:
    """agent/executers/executers_unix.go killProcess:42-53: syscall.Kill(-pid,
    SIGKILL) on the group that prepareProcess made the shell lead (Setpgid).
    No SIGTERM first, no grace period: the script's traps never run."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def upload_target(params: dict[str, str]) -> tuple[str, str] | None:
    """(bucket, key prefix incl. instance dir parent) from UploadUrl/UploadKeyPrefix."""
    url = params.get("UploadUrl", "")
    if not url:
        return None
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    if host in ("127.0.0.1", "localhost"):
        bucket = u.path.strip("/").split("/")[0]
    else:
        bucket = host.split(".s3.")[0]
    return bucket, params.get("UploadKeyPrefix", "")


def corrupt_before_meta(key: str) -> None:
    """corrupt-upload: the host's stacks.gz ends up truncated, as a cut
    connection would leave it. Done when its meta.json arrives, which the
    recorder uploads last (deliver_upload), so that no client ever sees the
    intact file: flamefire downloads a host as soon as its meta.json is
    listed, before the agent reports the invocation's end."""
    if not key.endswith("/meta.json"):
        return
    iid = key.split("/")[-2]
    with EMU.state.lock:
        invs = [c.invocations.get(iid) for c in reversed(EMU.state.commands.values())]
    for inv in invs:
        if inv is not None and inv.instance is not None \
                and inv.instance.behaviour == "corrupt-upload" \
                and key.startswith(inv.command.params.get("UploadKeyPrefix", "") or "\0"):
            corrupt_upload(inv)
            return


def corrupt_upload(inv: Invocation) -> None:
    cmd = inv.command
    tgt = upload_target(cmd.params)
    if not tgt:
        inv.note = "corrupt-upload: UploadUrl is empty, nothing to corrupt"
        return
    bucket, prefix = tgt
    key = f"{prefix}{inv.instance_id}/stacks.gz"
    s3 = EMU.moto.client("s3", cmd.region)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        truncated = body[: max(1, len(body) // 2)]
        s3.put_object(Bucket=bucket, Key=key, Body=truncated)
        inv.note = f"corrupt-upload: s3://{bucket}/{key} truncated {len(body)} -> {len(truncated)} bytes"
    except Exception as e:
        inv.note = f"corrupt-upload: could not truncate s3://{bucket}/{key}: {e}"
    log.info("%s", inv.note)




def capture_samples(path: str) -> int:
    """Samples in a gz `perf script` capture: blank-line separated records."""
    mtime = os.path.getmtime(path)
    cached = EMU.capture_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    samples, in_record = 0, False
    with gzip.open(path, "rt", errors="replace") as f:
        for line in f:
            if line.strip():
                if not in_record:
                    samples += 1
                in_record = True
            else:
                in_record = False
    EMU.capture_cache[path] = (mtime, samples)
    return samples


def replay_wait(inv: Invocation) -> bool:
    """replay-timing=real: InProgress until StartAt + Duration, as the real script
    waits for the shared start and records; holds no MAX_PROCS slot meanwhile, as
    each real host waits on its own. False when the invocation ended instead."""
    cmd, p = inv.command, inv.command.params
    with EMU.state.lock:
        inv.status, inv.details, inv.started = "InProgress", "InProgress", now()
    try:
        start_at, duration = int(p.get("StartAt", "0") or 0), int(p.get("Duration", "0") or 0)
    except ValueError:
        start_at, duration = 0, 0
    start = max(inv.started, float(start_at))
    ends, exec_deadline = start + duration, inv.started + cmd.execution_timeout
    if inv.cancel.wait(max(0.0, min(ends, exec_deadline) - now())):
        inv.finish("Cancelled", "Cancelled", STOPPED_PREEMPTIVELY_EXIT_CODE)
        return False
    if ends > exec_deadline:
        inv.finish("TimedOut", "ExecutionTimedOut", STOPPED_PREEMPTIVELY_EXIT_CODE)
        return False
    inv.recorded = (start, duration)
    return True


def run_replay(inv: Invocation) -> None:
    """Upload a recorded capture + synthesized meta.json like the real script would."""
    cmd, p = inv.command, inv.command.params
    capture = (inv.instance.tags.get(TAG_REPLAY_CAPTURE) if inv.instance else None) \
        or os.environ.get("FLAMEFIRE_REPLAY_CAPTURE", "")
    d = os.path.join(EMU.config.dir, "orchestration", cmd.id, inv.instance_id)
    os.makedirs(d, exist_ok=True)
    inv.dir = d
    if not capture or not os.path.isfile(capture):
        inv.stderr = ("replay: set FLAMEFIRE_REPLAY_CAPTURE (in the emulator's environment) or the "
                      f"tag {TAG_REPLAY_CAPTURE} to a gzipped perf script file; got {capture!r}")
        inv.finish("Failed", "Failed", 1)
        return
    if not p.get("UploadUrl"):
        inv.stderr = "replay: UploadUrl is empty; replay only supports upload mode"
        inv.finish("Failed", "Failed", 1)
        return
    sleep_s = float(os.environ.get("FLAMEFIRE_REPLAY_SLEEP_S", "0") or 0)
    try:
        sleep_s += float((inv.instance.tags.get(TAG_REPLAY_DELAY) if inv.instance else None) or 0)
    except ValueError:
        pass
    if sleep_s and inv.cancel.wait(sleep_s):
        inv.finish("Cancelled", "Cancelled", STOPPED_PREEMPTIVELY_EXIT_CODE)
        return
    ip = (inv.instance.raw.get("PrivateIpAddress", "10.0.0.1") if inv.instance else "10.0.0.1")
    stacks_bytes = os.path.getsize(capture)
    meta = {
        "schema": 1,
        "run_id": p.get("RunId", "local"),
        "instance_id": inv.instance_id,
        "hostname": "ip-" + ip.replace(".", "-"),
        "kernel": pyplatform.release(),
        "distro": "Amazon Linux 2023 (flamefire emulator replay)",
        "perf_version": "perf version 6.1 (replay)",
        "duration_s": int(p.get("Duration", "30") or 30),
        "frequency_hz": int(p.get("Frequency", "99") or 99),
        "started_at": int(inv.recorded[0] if inv.recorded else (inv.started or now())),
        "targets": [{"pid": 4242, "cmdline": "node server.js", "node_version": "v20.11.1",
                     "map": "ok", "map_bytes": 0}],
        "warnings": ["replayed capture " + os.path.basename(capture)],
        "samples": capture_samples(capture),
        "stacks_bytes": stacks_bytes,
        "phases": {"install_s": 0.0, "record_s": float(inv.recorded[1] if inv.recorded else 0),
                   "script_s": 0.0, "compress_s": 0.0},
    }
    meta_path = os.path.join(d, "meta.json")
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    prefix = p.get("UploadKeyPrefix", "")
    errors = []
    for name, path in (("stacks.gz", capture), ("meta.json", meta_path)):
        body_path = os.path.join(d, f"upload-{name}.out")
        argv = ["curl", "-sS", "--fail-with-body", "--max-time", "120", "-o", body_path,
                "-w", "%{http_code}",
                "--form-string", f"key={prefix}{inv.instance_id}/{name}",
                "--form-string", "x-amz-algorithm=AWS4-HMAC-SHA256",
                "--form-string", f"x-amz-credential={p.get('UploadCredential', '')}",
                "--form-string", f"x-amz-date={p.get('UploadDate', '')}"]
        if p.get("UploadSecurityToken"):
            argv += ["--form-string", f"x-amz-security-token={p['UploadSecurityToken']}"]
        argv += ["--form-string", f"policy={p.get('UploadPolicy', '')}",
                 "--form-string", f"x-amz-signature={p.get('UploadSignature', '')}",
                 "-F", f"file=@{path}", p["UploadUrl"]]
        with SPAWN_LOCK:
            curl = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env={"PATH": CLEAN_PATH, **tls_proxy_env()})
        stdout, stderr = curl.communicate()
        if curl.returncode != 0:
            # The script's own words (upload_file): S3's <Code> and <Message>,
            # else curl's last line; exit 7, delivery failed.
            try:
                with open(body_path, encoding="utf-8", errors="replace") as f:
                    detail = " ".join(re.findall(r"<(?:Code|Message)>[^<]{0,200}</(?:Code|Message)>", f.read()))
            except OSError:
                detail = ""
            detail = detail or (stderr.strip().splitlines() or [""])[-1]
            errors.append(f"flamefire: error: upload of {name} to {p['UploadUrl']}{prefix}"
                          f"{inv.instance_id}/{name} failed (curl exit {curl.returncode})"
                          + (f": {detail}" if detail else ""))
            break
    if errors:
        inv.stderr = "\n".join(errors)[:MAX_STDERR]
        inv.finish("Failed", "Failed", 7)
        return
    inv.stdout = (f"flamefire: replayed {meta['samples']} samples ({stacks_bytes} bytes) to "
                  f"{prefix}{inv.instance_id}/")
    inv.finish("Success", "Success", 0)
