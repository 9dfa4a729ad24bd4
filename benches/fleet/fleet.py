#!/usr/bin/env python3
"""Fleet benchmark: `flamefire ssm --asg` against a naive per-host loop, on the emulator.

Run it through scripts/bench-fleet.sh, which builds the release binary and
starts an emulator of its own. For each fleet size it seeds that many
instances in a fresh autoscaling group, tagged so that the emulator's agent
stand-in replays tests/data/captures/sick.perf.gz after waiting for the
command's StartAt + Duration like the real script (`replay-timing=real`),
then profiles the group twice with the same document, bucket and recording
duration:

* flamefire: `flamefire ssm --asg G --duration 10` (release build);
* naive: boto3, one SendCommand per host, one GetCommandInvocation per
  unfinished host per round (every POLL_S), one GetObject per file, and
  `flamefire render <host>` per host, one after another.

Each side signs with an access key of its own, so the emulator's
`/_flamefire/stats?access_key_id=` counts exactly its requests, and its
`timeline` gives the polling rounds. Phases come from flamefire's stderr lines
(stamped as they arrive), the emulator's invocation end times and the output
files' mtimes; CPU from /proc/<pid>/stat sampled every SAMPLE_S and from
wait4() rusage. All traffic goes to 127.0.0.1.

Writes a table to stdout, benches/fleet/RESULTS.md and the raw figures to
<work>/results.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "tests/data/captures/sick.perf.gz"
REGION = "us-east-1"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DURATION = 10  # seconds recorded on every host
POLL_S = 2.0  # the naive loop's fixed polling interval
SAMPLE_S = 0.02  # /proc sampling period for the flamefire process
MAX_HOSTS = 1000  # per size: the emulator's seed limit
RUN_TIMEOUT_S = 900  # per measured run
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")
BATCH = 50  # SendCommand's limit on instance ids, and ListCommandInvocations' page size


def fresh_key() -> str:
    return "AKIA" + "".join(random.choices(string.ascii_uppercase + string.digits, k=16))


class Emulator:
    def __init__(self, port: int):
        self.endpoint = f"http://127.0.0.1:{port}"

    def admin(self, method: str, path: str, body: dict | None = None, timeout: float = 120) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.endpoint}/_flamefire/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def check(self) -> None:
        try:
            self.admin("GET", "health")
            self.admin("GET", "iam")  # per-key stats and replay-timing came with it
        except Exception as e:
            sys.exit(f"the emulator at {self.endpoint} is missing or predates per-key stats ({e}); "
                     "restart it: tests/emulator/stop.sh && tests/emulator/start.sh")

    def stats(self, key: str) -> dict:
        return self.admin("GET", f"stats?access_key_id={key}&timeline=1")

    def invocations_of_run(self, run_id: str) -> list[dict]:
        cmds = self.admin("GET", "invocations")["commands"]
        return [inv for c in cmds if c.get("resolved_parameters", {}).get("RunId") == run_id
                for inv in c["invocations"]]


def client_env(endpoint: str, key: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "FLAMEFIRE_BUCKET"}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
               AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ENDPOINT_URL=endpoint)
    return env


def boto(endpoint: str, key: str, service: str):
    import boto3
    import botocore.config
    cfg = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"},
                                 s3={"addressing_style": "path"}, signature_version=(
                                     "s3v4" if service == "s3" else None),
                                 connect_timeout=10, read_timeout=120)
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=SECRET,
                                 region_name=REGION).client(service, endpoint_url=endpoint, config=cfg)


def iso_to_epoch(s: str) -> float | None:
    if not s:
        return None
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def rounds_of(timeline: list, op: str, gap_s: float = 1.0) -> int:
    """Polling rounds: bursts of `op` separated by more than gap_s."""
    times = sorted(e[0] for e in timeline if e[1] == op)
    if not times:
        return 0
    return 1 + sum(1 for a, b in zip(times, times[1:]) if b - a > gap_s)


def per_op(stats: dict) -> dict[str, int]:
    return {op.split(":", 1)[1] if op.startswith(("ssm:", "ec2:", "s3:", "sts:")) else op: n
            for op, n in stats["operations"].items()}


# --------------------------------------------------------------------------- CPU sampling


def stat_cpu(path: str) -> tuple[str, float] | None:
    """(state, user+sys CPU s) from a /proc/.../stat file."""
    try:
        with open(path) as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return rest[0], (int(rest[11]) + int(rest[12])) / CLK_TCK


class Sampler(threading.Thread):
    """Every SAMPLE_S: (monotonic s, process user+sys CPU s, threads) and the
    CPU of each thread, so that a phase's parallelism can be told apart from
    how much CPU the (shared, loaded) machine gave it."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.threads: list[tuple[float, dict[int, float]]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            got = stat_cpu(f"/proc/{self.pid}/stat")
            if got is None or got[0] == "Z":
                return
            t = time.monotonic()
            per: dict[int, float] = {}
            try:
                tids = os.listdir(f"/proc/{self.pid}/task")
            except OSError:
                return
            for tid in tids:
                one = stat_cpu(f"/proc/{self.pid}/task/{tid}/stat")
                if one:
                    per[int(tid)] = one[1]
            self.samples.append((t, got[1], len(per)))
            self.threads.append((t, per))
            time.sleep(SAMPLE_S)

    def _threads_at(self, t: float) -> dict[int, float]:
        best = None
        for ts, per in self.threads:
            if ts <= t:
                best = per
            else:
                return best if best is not None else per
        return best or {}

    def thread_cpu(self, a: float, b: float) -> list[float]:
        """CPU seconds each thread used between a and b, busiest first. Threads
        that start and exit inside the phase (collapse's workers) count with
        their last sample."""
        start = self._threads_at(a)
        last: dict[int, float] = {}
        for ts, per in self.threads:
            if ts > b:
                break
            if ts >= a:
                last.update(per)
        last.update(self._threads_at(b))
        return sorted((c - start.get(tid, 0.0) for tid, c in last.items()
                       if c - start.get(tid, 0.0) > 0), reverse=True)

    def cpu_at(self, t: float) -> float:
        s = self.samples
        if not s:
            return 0.0
        if t <= s[0][0]:
            return s[0][1]
        for (t0, c0, _), (t1, c1, _) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0)
        return s[-1][1]

    def threads_between(self, a: float, b: float) -> int:
        return max((n for t, _, n in self.samples if a <= t <= b), default=0)


def cores(sampler: Sampler, a: float | None, b: float | None) -> dict:
    """One sub-phase's CPU: `cores` = CPU ÷ wall (what the shared, loaded
    machine gave it); `working` = threads that did at least a fifth of the
    busiest thread's work; `busiest_s` = that thread's CPU, the sub-phase's
    critical path if every thread had a core of its own."""
    if a is None or b is None or b <= a:
        return {"wall_s": None, "cpu_s": None, "cores": None, "working": None, "busiest_s": None}
    cpu = sampler.cpu_at(b) - sampler.cpu_at(a)
    per = sampler.thread_cpu(a, b)
    return {"wall_s": b - a, "cpu_s": cpu, "cores": cpu / (b - a),
            "threads": sampler.threads_between(a, b),
            "thread_cpu_s": [round(c, 3) for c in per[:4]],
            "working": sum(1 for c in per if per[0] > 0 and c >= 0.2 * per[0]),
            "busiest_s": per[0] if per else None}


def achievable(parts: list[dict]) -> float | None:
    """Σ CPU ÷ Σ busiest-thread CPU over sequential sub-phases: the cores the
    phase could keep busy on an idle machine (1 = serial)."""
    cpu = sum(p["cpu_s"] or 0 for p in parts)
    path = sum(p["busiest_s"] or 0 for p in parts)
    return cpu / path if path > 0 else None


# --------------------------------------------------------------------------- flamefire


def render_figures(sampler: Sampler, fetched, first_svg, last_svg, merged, report) -> dict:
    """collapse (all inputs, before the first SVG), per-host SVGs, fleet.svg +
    fleet.folded; then report.html (heat maps per host) on its own."""
    parts = {"collapse": cores(sampler, fetched, first_svg),
             "draw": cores(sampler, first_svg, last_svg),
             "merge": cores(sampler, last_svg, merged)}
    total = cores(sampler, fetched, merged or last_svg)
    total["achievable_cores"] = achievable(list(parts.values()))
    html = cores(sampler, merged or last_svg, report)
    html["achievable_cores"] = achievable([html])
    return {"total": total, **parts, "report": html}


def run_flamefire(emu: Emulator, binary: Path, size: int, group: str, bucket: str, doc: str,
                  out: Path) -> dict:
    key = fresh_key()
    argv = [str(binary), "ssm", "--asg", group, "--bucket", bucket, "--document", doc,
            "--duration", str(DURATION), "--timeout", "300", "--json", "--out", str(out)]
    lines: list[tuple[float, str]] = []
    stdout: list[bytes] = []
    load = os.getloadavg()[0]
    wall0, t0 = time.time(), time.monotonic()
    proc = subprocess.Popen(argv, env=client_env(emu.endpoint, key), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    sampler = Sampler(proc.pid)
    sampler.start()

    def read_err():
        for raw in proc.stderr:
            lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    def read_out():
        stdout.append(proc.stdout.read())

    readers = [threading.Thread(target=read_err, daemon=True), threading.Thread(target=read_out, daemon=True)]
    for r in readers:
        r.start()
    killer = threading.Timer(RUN_TIMEOUT_S, lambda: os.killpg(proc.pid, signal.SIGKILL))
    killer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    t_end = time.monotonic()
    killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop.set()
    for r in readers:
        r.join(10)
    sampler.join(5)

    def mono(wall: float | None) -> float | None:  # wall clock (mtimes, emulator) -> monotonic
        return None if wall is None else t0 + (wall - wall0)

    def first(pred) -> tuple[float, str] | tuple[None, None]:
        return next(((t, l) for t, l in lines if pred(l)), (None, None))

    t_send, send_line = first(lambda l: l.startswith("run ") and " sending " in l)
    t_download, _ = first(lambda l: l.startswith("downloading "))
    start_at = None
    if send_line and " from " in send_line:
        start_at = iso_to_epoch(send_line.rsplit(" from ", 1)[1].strip())
    report = {}
    try:
        report = json.loads(b"".join(stdout) or b"{}")
    except ValueError:
        pass
    run_id = report.get("run_id", "")
    hosts = report.get("hosts", [])
    rendered = sum(1 for h in hosts if h.get("status") == "rendered")

    raws = [p.stat().st_mtime for p in (out / "raw").glob("*.perf")] if (out / "raw").is_dir() else []
    svgs = [p.stat().st_mtime for p in out.glob("i-*.svg")]
    merged = [p.stat().st_mtime for p in (out / "fleet.svg", out / "fleet.folded") if p.exists()]
    t_fetched = mono(max(raws)) if raws else None
    t_first_svg, t_last_svg = (mono(min(svgs)), mono(max(svgs))) if svgs else (None, None)
    t_merged = mono(max(merged)) if merged else None
    html = out / "report.html"
    t_report = mono(html.stat().st_mtime) if html.exists() else None
    invs = emu.invocations_of_run(run_id) if run_id else []
    ends = [iso_to_epoch(i.get("ExecutionEndDateTime", "")) for i in invs]
    ends = [e for e in ends if e]
    t_hosts_done = mono(max(ends)) if ends else None
    t_rec_end = mono(start_at + DURATION) if start_at else None
    t_start_at = mono(start_at) if start_at else None

    def span(a, b):
        return None if a is None or b is None else b - a

    stats = emu.stats(key)
    timeline = stats.get("timeline", [])
    first_send = min((e[0] for e in timeline if e[1] == "ssm:SendCommand"), default=None)
    setup_ms: dict[str, float] = {}
    for e in timeline:
        if first_send is None or e[0] < first_send:
            setup_ms[e[1]] = setup_ms.get(e[1], 0.0) + (e[3] if len(e) > 3 else 0.0)
    batches = math.ceil(size / BATCH)
    rounds = rounds_of(stats.get("timeline", []), "ssm:ListCommandInvocations")
    lci = stats["operations"].get("ssm:ListCommandInvocations", 0)
    render_end = t_merged or t_last_svg
    return {
        "tool": "flamefire", "size": size, "exit": proc.returncode, "rendered": rendered,
        "hosts_succeeded": sum(1 for i in invs if i.get("Status") == "Success"),
        "load_avg_1m": load,
        "wall_s": t_end - t0,
        "phases": {
            "setup": span(t0, t_send),  # resolve targets, check bucket, presign, run.json
            "start_delay": span(t_send, t_start_at),  # StartAt - dispatch: START_DELAY_S + batches
            "recording": DURATION,
            "host_tail": span(t_rec_end, t_hosts_done),  # last upload lands (emulator: curl -> moto)
            "detect_lag": span(t_hosts_done, t_download),  # until a poll sees every host done
            "fetch": span(t_download, t_fetched),
            "render": span(t_fetched, render_end),  # collapse, per-host SVGs, fleet.svg
            "report_html": span(render_end, t_report),  # heat maps + report.html
            "finish": span(t_report or render_end, t_end),  # table, --json, exit
        },
        "render": render_figures(sampler, t_fetched, t_first_svg, t_last_svg, t_merged, t_report),
        "process": {"user_s": usage.ru_utime, "sys_s": usage.ru_stime,
                    "max_rss_mb": usage.ru_maxrss / 1024},
        "requests": per_op(stats), "requests_total": stats["total"],
        "errors": stats.get("errors", {}),
        # time the setup calls spent inside the emulator (moto), by operation
        "setup_emulator_s": {op: round(ms / 1000, 3) for op, ms in setup_ms.items()},
        "batches": batches, "poll_rounds": rounds,
        # per round, per group of up to 50 hosts (ListCommandInvocations' page)
        "list_calls_per_50_hosts_per_round": (lci / rounds / batches) if rounds else None,
        "stderr_tail": [l for _, l in lines[-8:]],
    }


# --------------------------------------------------------------------------- naive loop


def run_naive(emu: Emulator, binary: Path, size: int, group: str, bucket: str, doc: str,
              out: Path) -> dict:
    """The loop a script would write: per-host SendCommand, per-host polling."""
    key = fresh_key()
    ec2, ssm, s3 = (boto(emu.endpoint, key, s) for s in ("ec2", "ssm", "s3"))
    load = os.getloadavg()[0]
    wall0, t0 = time.time(), time.monotonic()
    ids = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": "tag:aws:autoscaling:groupName", "Values": [group]},
            {"Name": "instance-state-name", "Values": ["running"]}]):
        ids += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
    run_id = "naive-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
    prefix = f"flamefire/{run_id}/"
    post = s3.generate_presigned_post(Bucket=bucket, Key=prefix + "${filename}",
                                      Conditions=[["starts-with", "$key", prefix]], ExpiresIn=3600)
    f = post["fields"]
    params = {"Duration": [str(DURATION)], "RunId": [run_id], "StartAt": ["0"],
              "UploadUrl": [f"{emu.endpoint}/{bucket}/"], "UploadKeyPrefix": [prefix],
              "UploadPolicy": [f["policy"]], "UploadCredential": [f["x-amz-credential"]],
              "UploadDate": [f["x-amz-date"]], "UploadSignature": [f["x-amz-signature"]]}
    t_resolved = time.monotonic()
    commands = {}
    for iid in ids:
        commands[iid] = ssm.send_command(DocumentName=doc, InstanceIds=[iid], Parameters=params,
                                         TimeoutSeconds=600)["Command"]["CommandId"]
    t_sent = time.monotonic()
    status: dict[str, str] = {}
    rounds = 0
    deadline = t_sent + DURATION + 300
    while len(status) < len(ids) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        rounds += 1
        for iid in ids:
            if iid in status:
                continue
            try:
                s = ssm.get_command_invocation(CommandId=commands[iid], InstanceId=iid)["Status"]
            except ssm.exceptions.InvocationDoesNotExist:
                continue
            if s in TERMINAL:
                status[iid] = s
    t_waited = time.monotonic()
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    fetched = []
    for iid, s in status.items():
        if s != "Success":
            continue
        for name in ("stacks.gz", "meta.json"):
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}{iid}/{name}")["Body"].read()
            (raw / f"{iid}.{name}").write_bytes(body)
        fetched.append(raw / f"{iid}.stacks.gz")
    t_fetched = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rendered = 0
    for path in fetched:
        r = subprocess.run([str(binary), "render", str(path), "--out", str(out)], env=client_env(
            emu.endpoint, key), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=120)
        rendered += r.returncode == 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_end = time.monotonic()
    render_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def mono(wall):
        return None if wall is None else t0 + (wall - wall0)

    invs = emu.invocations_of_run(run_id)
    ends = [e for e in (iso_to_epoch(i.get("ExecutionEndDateTime", "")) for i in invs) if e]
    t_hosts_done = mono(max(ends)) if ends else None
    stats = emu.stats(key)
    gci = stats["operations"].get("ssm:GetCommandInvocation", 0)
    setup_ms: dict[str, float] = {}
    for e in stats.get("timeline", []):
        if e[1] == "ec2:DescribeInstances":
            setup_ms[e[1]] = setup_ms.get(e[1], 0.0) + (e[3] if len(e) > 3 else 0.0)
    return {
        "tool": "naive", "size": size, "exit": 0 if rendered == len(ids) else 1, "rendered": rendered,
        "hosts_succeeded": sum(1 for s in status.values() if s == "Success"),
        "load_avg_1m": load,
        "wall_s": t_end - t0,
        "phases": {
            "setup": t_resolved - t0,
            "send": t_sent - t_resolved,  # hosts start recording as their command arrives
            "recording": DURATION,
            # from the last SendCommand: its host's recording + upload, and the polling lag
            "host_tail": (t_hosts_done - t_sent - DURATION) if t_hosts_done else None,
            "detect_lag": (t_waited - t_hosts_done) if t_hosts_done else None,
            "fetch": t_fetched - t_waited,
            "render": t_end - t_fetched,
        },
        # one `flamefire render <host>` after another: serial by construction
        "render": {"total": {"wall_s": t_end - t_fetched, "cpu_s": render_cpu,
                             "cores": render_cpu / (t_end - t_fetched) if t_end > t_fetched else None,
                             "threads": None, "achievable_cores": None}},
        "process": None,
        "requests": per_op(stats), "requests_total": stats["total"],
        "errors": stats.get("errors", {}),
        "setup_emulator_s": {op: round(ms / 1000, 3) for op, ms in setup_ms.items()},
        "batches": len(ids), "poll_rounds": rounds,
        "list_calls_per_50_hosts_per_round": (gci / rounds / math.ceil(size / BATCH)) if rounds else None,
    }


# --------------------------------------------------------------------------- report

OPS = ("SendCommand", "ListCommandInvocations", "GetCommandInvocation", "DescribeInstances",
       "DescribeInstanceInformation", "GetObject", "HeadBucket", "PutObject", "GetCallerIdentity")


def fmt(v, digits=1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"


def rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    sizes = sorted({r["size"] for r in results})
    by = {(r["size"], r["tool"]): r for r in results}
    header = ["figure"]
    for n in sizes:
        header += [f"{n} hosts: flamefire", "naive", "flamefire/naive"]
    out: list[list[str]] = []

    def row(label, get, digits=1, show_ratio=True):
        cells = [label]
        for n in sizes:
            f, v = by.get((n, "flamefire")), by.get((n, "naive"))
            a = get(f) if f else None
            b = get(v) if v else None
            cells += [fmt(a, digits), fmt(b, digits), ratio(a, b) if show_ratio else ""]
        out.append(cells)

    def phase(name):
        return lambda r: r["phases"].get(name)

    def per_host(op):
        return lambda r: r["requests"].get(op, 0) / r["size"]

    row("hosts rendered", lambda r: r["rendered"], show_ratio=False)
    row("wall time (s)", lambda r: r["wall_s"])
    row("**overhead = wall − 10 s (s)**", lambda r: r["wall_s"] - DURATION)
    row("  setup: resolve, bucket, presign (s)", phase("setup"))
    row("    of which inside the emulator (s)", lambda r: sum(r["setup_emulator_s"].values()))
    row("  naive: SendCommand loop (s)", phase("send"), show_ratio=False)
    row("  start delay before StartAt (s)", phase("start_delay"), show_ratio=False)
    row("  overhead without start delay (s)",
        lambda r: r["wall_s"] - DURATION - (r["phases"].get("start_delay") or 0))
    row("  last host done after its recording (s)", phase("host_tail"))
    row("  until polling notices (s)", phase("detect_lag"))
    row("  download (s)", phase("fetch"))
    row("  collapse + render (s)", phase("render"))
    row("  heat maps + report.html (s)", phase("report_html"), show_ratio=False)
    row("  summary table, exit (s)", phase("finish"), show_ratio=False)
    row("**API requests per host**", lambda r: r["requests_total"] / r["size"], 2)
    row("  without S3 GetObject (2 per host)",
        lambda r: (r["requests_total"] - r["requests"].get("GetObject", 0)) / r["size"], 2)
    seen = {op for r in results for op in r["requests"]}
    for op in [o for o in OPS if o in seen] + sorted(seen - set(OPS)):
        row(f"  {op}", per_host(op), 2)
    row("polling rounds", lambda r: r["poll_rounds"], show_ratio=False)
    row("poll calls per 50 hosts per round", lambda r: r["list_calls_per_50_hosts_per_round"], 2)
    row("render CPU (user+sys s)", lambda r: r["render"]["total"]["cpu_s"], 2)
    row("**render: cores used (CPU ÷ wall)**", lambda r: r["render"]["total"]["cores"], 2,
        show_ratio=False)
    row("**render: cores it could use (critical path)**",
        lambda r: r["render"]["total"].get("achievable_cores"), 2, show_ratio=False)
    for name, label in (("collapse", "collapse"), ("draw", "per-host SVGs"), ("merge", "fleet.svg merge"),
                        ("report", "report.html heat maps")):
        row(f"  {label}: s / threads working / cores used",
            lambda r, n=name: (None if r["render"].get(n, {}).get("wall_s") is None else
                               f"{r['render'][n]['wall_s']:.2f} / {r['render'][n]['working']} / "
                               f"{r['render'][n]['cores']:.2f}"),
            show_ratio=False)
    row("flamefire process user+sys (s)",
        lambda r: (r["process"]["user_s"] + r["process"]["sys_s"]) if r["process"] else None, 2,
        show_ratio=False)
    row("load average (1 min) at start", lambda r: r["load_avg_1m"], 2, show_ratio=False)
    return header, out


def plain_table(header, body) -> str:
    grid = [header] + [[c.replace("**", "") for c in r] for r in body]
    widths = [max(len(r[i]) for r in grid) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(r)) for r in grid)


def md_table(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    def indent(cell: str) -> str:  # markdown drops leading spaces
        stripped = cell.lstrip(" ")
        return "&nbsp;&nbsp;" * ((len(cell) - len(stripped)) // 2) + stripped

    lines += ["| " + " | ".join([indent(r[0])] + r[1:]) + " |" for r in body]
    return "\n".join(lines)


def verdicts(results: list[dict]) -> list[str]:
    out = []
    f100 = next((r for r in results if r["tool"] == "flamefire" and r["size"] == 100), None)
    if f100:
        over = f100["wall_s"] - DURATION
        delay = f100["phases"].get("start_delay") or 0
        out.append(f"- overhead under 5 s at 100 hosts: **{'met' if over < 5 else 'missed'}** "
                   f"({over:.1f} s, of which {delay:.1f} s is the start delay before StartAt)")
    for r in results:
        if r["tool"] != "flamefire":
            continue
        per = r["list_calls_per_50_hosts_per_round"]
        out.append(f"- {r['size']} hosts, polling: {fmt(per, 2)} ListCommandInvocations per 50 hosts "
                   f"per round over {r['poll_rounds']} rounds (target ≈ 1): "
                   f"**{'met' if per is not None and per <= 1.2 else 'missed'}**")
        rd = r["render"]
        cpu = rd["total"].get("cpu_s") or 0
        share = {k: (rd[k]["cpu_s"] / cpu) if rd[k].get("cpu_s") is not None and cpu else None
                 for k in ("collapse", "draw", "merge")}
        able = rd["total"].get("achievable_cores")
        names = {"collapse": "collapse", "draw": "per-host SVGs", "merge": "fleet.svg"}
        # Sub-phases with 5 % of the render CPU or more: do they run on ≥ 2 threads?
        weighty = [k for k in names if (share[k] or 0) >= 0.05]
        parallel = [k for k in weighty if (rd[k].get("working") or 0) >= 2]
        serial = [names[k] for k in weighty if k not in parallel]
        verdict = ("yes" if weighty and not serial else
                   f"partly: {', '.join(serial)} run on one thread" if parallel else "no")
        out.append(
            f"- {r['size']} hosts, rendering uses both cores: **{verdict}**: it could keep "
            f"{fmt(able, 2)} cores busy (critical path), and got {fmt(rd['total']['cores'], 2)} at "
            f"load {r['load_avg_1m']:.1f}. Threads working / share of render CPU: collapse "
            f"{rd['collapse'].get('working')} / {pct(share['collapse'])}, per-host SVGs "
            f"{rd['draw'].get('working')} / {pct(share['draw'])}, fleet.svg "
            f"{rd['merge'].get('working')} / {pct(share['merge'])}. Then report.html (heat maps): "
            f"{fmt(rd['report'].get('wall_s'), 2)} s, {rd['report'].get('working')} threads working")
    return out


def pct(v) -> str:
    return "n/a" if v is None else f"{v * 100:.0f}%"


def git_describe() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:
        return "unknown"


def write_results(path: Path, results: list[dict], header, body, meta: dict) -> None:
    text = f"""# Fleet benchmark: latest figures

Written by `scripts/bench-fleet.sh` ({meta['date']}); do not edit by hand.
Method: `benches/fleet/fleet.py`'s docstring. Emulator on 127.0.0.1 (moto
{meta['moto']}), every host a `replay` of `tests/data/captures/sick.perf.gz`
that waits for StartAt + {DURATION} s like the real script, then uploads by
presigned POST; flamefire `{meta['git']}` release build; naive = boto3, one
SendCommand per host, GetCommandInvocation per host every {POLL_S:.0f} s,
`flamefire render` per host. {meta['cores']} cores, {meta['machine']}, shared
with other work: see the load average row. CPU ÷ wall shrinks under load; the
thread counts and the critical path do not.

{md_table(header, body)}

Targets:

{chr(10).join(verdicts(results))}

How to read it:

- "start delay": flamefire sets StartAt a few seconds ahead (`START_DELAY_S`
  plus an allowance for the SendCommand batches, src/app.rs), so that every
  host records the same window; measured here from the "sending" line to
  StartAt. Naive hosts start as their own SendCommand arrives (StartAt 0): no
  delay, but no common window either.
- "inside the emulator": time moto spent answering the setup calls (mostly
  serialising DescribeInstances); it would be AWS's time on AWS.
- "last host done after its recording" is the emulator's cost: every host's
  two uploads go through one moto process and its 64 process slots; on AWS
  each host uploads on its own.
- "until polling notices": from the last host finishing to the poll that sees
  it: the wait stage's polling interval.
- Render sub-phases are split by the output files' mtimes: collapse ends when
  the first per-host SVG appears, fleet.svg + fleet.folded come next, then
  report.html (per-host heat maps, read from the raw stacks again); the naive
  side has no fleet.svg and no report. "cores used" is
  CPU ÷ wall, which depends on what else the machine runs (see the load
  average). "threads working" counts threads doing ≥ 1/5 of the busiest
  thread's CPU; "cores it could use" = render CPU ÷ Σ per sub-phase of the
  busiest thread's CPU: the parallelism the code allows on an idle machine.
"""
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("FLAMEFIRE_EMULATOR_PORT", "5057")))
    ap.add_argument("--sizes", default="100,500", help="comma-separated fleet sizes (each ≤ 1000)")
    ap.add_argument("--binary", type=Path, default=REPO / "target/release/flamefire")
    ap.add_argument("--work", type=Path, default=REPO / "target/bench-fleet")
    ap.add_argument("--results", type=Path, default=REPO / "benches/fleet/RESULTS.md")
    ap.add_argument("--no-naive", action="store_true", help="measure flamefire only")
    ap.add_argument("--from-json", type=Path, help="only rewrite --results from a results.json")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        header, body = rows(saved["results"])
        write_results(args.results, saved["results"], header, body, saved["meta"])
        print(plain_table(header, body))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(not 1 <= n <= MAX_HOSTS for n in sizes):
        sys.exit(f"--sizes: each between 1 and {MAX_HOSTS}")
    if not args.binary.is_file():
        sys.exit(f"{args.binary} is missing: cargo build --release")
    emu = Emulator(args.port)
    emu.check()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    run = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + "".join(
        random.choices(string.ascii_lowercase + string.digits, k=4))
    setup_key = fresh_key()
    bucket = f"ffbench-{run}"
    document = f"ffbench-record-{run}"
    boto(emu.endpoint, setup_key, "s3").create_bucket(Bucket=bucket)
    subprocess.run([str(args.binary), "--quiet", "document", "deploy", "--document", document],
                   env=client_env(emu.endpoint, setup_key), check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    results = []
    for n in sizes:
        group = f"ffbench-{run}-{n}"
        t = time.monotonic()
        emu.admin("POST", "seed", {"count": n, "tags": {
            "flamefire-test:ssm": "online", "flamefire-test:behaviour": "replay",
            "flamefire-test:replay-capture": str(CAPTURE), "flamefire-test:replay-timing": "real",
            "aws:autoscaling:groupName": group, "flamefire": "enabled"}}, timeout=600)
        print(f"seeded {n} instances in {group} ({time.monotonic() - t:.1f}s)", file=sys.stderr)
        runners = [("flamefire", run_flamefire)] + ([] if args.no_naive else [("naive", run_naive)])
        for tool, fn in runners:
            print(f"{tool}: {n} hosts…", file=sys.stderr)
            r = fn(emu, args.binary, n, group, bucket, document, args.work / f"{tool}-{n}")
            print(f"{tool}: {n} hosts: wall {r['wall_s']:.1f}s, rendered {r['rendered']}, "
                  f"{r['requests_total']} requests", file=sys.stderr)
            results.append(r)
            if r["rendered"] != n:
                print(f"warning: {tool} rendered {r['rendered']} of {n} hosts: "
                      f"{r.get('stderr_tail', '')}", file=sys.stderr)
    header, body = rows(results)
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "moto": emu.admin("GET", "health").get("moto_version", "?"), "git": git_describe(),
            "cores": os.cpu_count(), "machine": f"{platform.system()} {platform.machine()}"}
    (args.work / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(plain_table(header, body))
    print()
    print("\n".join(verdicts(results)))
    write_results(args.results, results, header, body, meta)
    print(f"\nwrote {args.results} and {args.work / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
