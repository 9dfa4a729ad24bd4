#!/usr/bin/env python3
"""Fleet benchmark: `flamefire ssm --asg` against a naive per-host loop, on the emulator.

Run it through scripts/bench-fleet.sh, which builds the release binary and
starts an emulator of its own. For each fleet size it seeds that many
instances in a fresh autoscaling group (in seeds of at most 1,000, the
emulator's limit per call), tagged so that the emulator's agent stand-in
replays tests/data/captures/sick.perf.gz after waiting for the command's
StartAt + Duration like the real script (`replay-timing=real`), then profiles
the group with the same document, bucket and recording duration:

* flamefire: `flamefire ssm --asg G --duration 10` (release build), with
  throttling off and on (THROTTLE, token buckets for its access key);
* naive: boto3, one SendCommand per host, one GetCommandInvocation per
  unfinished host per round (every POLL_S), one GetObject per file, and
  `flamefire render <host>` per host, one after another; only up to
  NAIVE_MAX_HOSTS (throttled: NAIVE_THROTTLED_MAX_HOSTS), as it is slow.

Each run signs with an access key of its own, so the emulator's
`/_flamefire/stats?access_key_id=…&timeline=1` counts exactly its requests
(the polling calls after its first SendCommand give the rounds), and its
throttle applies to that run only.

Latency (flamefire draws each host as soon as its meta.json is listed):

* window end = StartAt + Duration (from flamefire's "sending … from" line;
  naive: the last SendCommand + Duration, its hosts having no common window);
* first / last flamegraph = the earliest / latest per-host SVG mtime minus
  the window end;
* a host's upload = the end of its invocation in the emulator, which the
  replay stand-in reports as soon as its meta.json (uploaded last) is
  stored (S3's LastModified has whole seconds only); the emulator's own
  time is the window end to the last upload (every host's upload goes
  through one moto process; on AWS each host uploads on its own),
  flamefire's is the rest;
* "first flamegraph after its upload" = the first-drawn host's SVG mtime
  minus that host's upload time.

CPU from /proc/<pid>/stat sampled every SAMPLE_S (per thread too), peak RSS
and total CPU from wait4() rusage. All traffic goes to 127.0.0.1.

Writes tables to stdout, benches/fleet/RESULTS.md and the raw figures to
<work>/results.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
MAX_HOSTS = 2000  # per size: bounds the run time (seeded 1,000 at a time)
SEED_CHUNK = 1000  # the emulator's limit per /_flamefire/seed call
NAIVE_MAX_HOSTS = 500  # the naive loop takes ~2 min at 500 hosts, ~4x that at 2,000
NAIVE_THROTTLED_MAX_HOSTS = 100
# "on": per-action token buckets (RATE/BURST) for the run's access key; see
# RESULTS.md ("Throttling") for why these figures.
THROTTLE = "ssm:*=10/20,ec2:*=20/40,s3:GetObject=200/400,s3:ListObjectsV2=50/100"
POLL_OPS = ("ssm:ListCommands", "s3:ListObjectsV2", "ssm:ListCommandInvocations")
# signed with the run's key (presigned POST) but sent by the hosts, not by the client
HOST_OPS = ("s3:PostObject",)
RUN_TIMEOUT_S = 900  # per measured run
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")


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

    def throttle(self, key: str, limits: str) -> None:
        self.admin("POST", "throttle", {"limits": limits, "access_key_id": key})

    def throttled(self, key: str) -> dict[str, int]:
        return self.admin("GET", f"throttle?access_key_id={key}").get("throttled", {})

    def seed(self, count: int, tags: dict) -> None:
        for done in range(0, count, SEED_CHUNK):
            self.admin("POST", "seed", {"count": min(SEED_CHUNK, count - done), "tags": tags}, timeout=600)

    def uploads(self, run_id: str) -> dict[str, float]:
        """Host id -> epoch s its upload was complete: the invocation's end (ms),
        which the replay stand-in sets as soon as its meta.json POST is answered
        (S3's LastModified has whole seconds only)."""
        return {i["InstanceId"]: iso_to_epoch(i["ExecutionEndDateTime"]) for i in self.invocations_of_run(run_id)
                if i.get("Status") == "Success" and i.get("ExecutionEndDateTime")}

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
    cfg = botocore.config.Config(retries={"max_attempts": 10, "mode": "adaptive"},
                                 s3={"addressing_style": "path"}, signature_version=(
                                     "s3v4" if service == "s3" else None),
                                 connect_timeout=10, read_timeout=120)
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=SECRET,
                                 region_name=REGION).client(service, endpoint_url=endpoint, config=cfg)


def iso_to_epoch(s: str) -> float | None:
    if not s:
        return None
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


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


# --------------------------------------------------------------------------- shared analysis


def calls_after(timeline: list, since: float | None) -> dict[str, int]:
    """Requests by operation from `since` (epoch s) on, the hosts' uploads left out."""
    out: dict[str, int] = {}
    for e in timeline:
        if (since is None or e[0] >= since) and e[1] not in HOST_OPS:
            out[e[1]] = out.get(e[1], 0) + 1
    return out


def get_object_ms(timeline: list) -> list[float]:
    """Median and 90th percentile of the time GetObject spent inside the emulator:
    downloads go through the same moto process as the hosts' uploads."""
    ms = sorted(e[3] for e in timeline if e[1] == "s3:GetObject" and len(e) > 3)
    return [ms[len(ms) // 2], ms[int(len(ms) * 0.9)]] if ms else [None, None]


def latency(out: Path, uploads: dict[str, float], window_end: float | None) -> dict:
    """When each host's flamegraph appeared, from the SVGs' mtimes, relative to
    the window end and to that host's upload."""
    svgs = {p.name.split(".")[0]: p.stat().st_mtime for p in out.glob("i-*.svg")}
    final = {name: out.joinpath(name).stat().st_mtime for name in ("fleet.svg", "report.html")
             if out.joinpath(name).exists()}

    def since_window(t):
        return None if t is None or window_end is None else t - window_end

    first_host = min(svgs, key=svgs.get) if svgs else None
    after_upload = sorted(svgs[h] - uploads[h] for h in svgs if h in uploads)
    last_upload = max(uploads.values()) if uploads else None
    last_svg = max(svgs.values()) if svgs else None
    return {
        "first_svg_s": since_window(min(svgs.values()) if svgs else None),
        "last_svg_s": since_window(last_svg),
        # the emulator's part: every host's upload lands through one moto process
        "last_upload_s": since_window(last_upload),
        # flamefire's part: from the last upload to the last flamegraph
        "last_svg_after_last_upload_s": (last_svg - last_upload) if last_svg and last_upload else None,
        "first_svg_after_its_upload_s": (svgs[first_host] - uploads[first_host])
        if first_host in uploads else None,
        "svg_after_upload_median_s": after_upload[len(after_upload) // 2] if after_upload else None,
        "svg_after_upload_max_s": after_upload[-1] if after_upload else None,
        "fleet_svg_s": since_window(final.get("fleet.svg")),
        "report_html_s": since_window(final.get("report.html")),
        "last_output_wall": max([*final.values(), *(svgs.values())], default=None),
        "last_upload_wall": last_upload,
    }


# --------------------------------------------------------------------------- flamefire


def run_flamefire(emu: Emulator, binary: Path, size: int, group: str, bucket: str, doc: str,
                  out: Path, throttle: str) -> dict:
    key = fresh_key()
    if throttle:
        emu.throttle(key, throttle)
    argv = [str(binary), "ssm", "--asg", group, "--bucket", bucket, "--document", doc,
            "--duration", str(DURATION), "--timeout", "600", "--json", "--out", str(out)]
    lines: list[tuple[float, str]] = []
    stdout: list[bytes] = []
    load = os.getloadavg()
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

    t_send, send_line = next(((t, l) for t, l in lines if l.startswith("run ") and " sending " in l),
                             (None, None))
    start_at = iso_to_epoch(send_line.rsplit(" from ", 1)[1].strip()) if send_line and " from " in send_line \
        else None
    window_end = start_at + DURATION if start_at else None
    report = {}
    try:
        report = json.loads(b"".join(stdout) or b"{}")
    except ValueError:
        pass
    run_id = report.get("run_id", "")
    rendered = sum(1 for h in report.get("hosts", []) if h.get("status") == "rendered")
    uploads = emu.uploads(run_id) if run_id else {}
    lat = latency(out, uploads, window_end)

    stats = emu.stats(key)
    timeline = stats.get("timeline", [])
    first_send = min((e[0] for e in timeline if e[1] == "ssm:SendCommand"), default=None)
    setup_ms: dict[str, float] = {}
    for e in timeline:
        if first_send is None or e[0] < first_send:
            setup_ms[e[1]] = setup_ms.get(e[1], 0.0) + (e[3] if len(e) > 3 else 0.0)
    after = calls_after(timeline, first_send)
    lc, lo, lci = (after.get(op, 0) for op in POLL_OPS)
    own = calls_after(timeline, None)

    # CPU after the window: polls, downloads, collapse, per-host SVGs, fleet.svg, report.html.
    # "drain": from the last upload to the last output, when nothing waits for the emulator.
    a, b = mono(window_end), t_end
    render = cores(sampler, a, b)
    drain = cores(sampler, mono(lat["last_upload_wall"]), mono(lat["last_output_wall"]))
    return {
        "tool": "flamefire", "size": size, "throttle": bool(throttle), "exit": proc.returncode,
        "rendered": rendered, "load_avg": load, "wall_s": t_end - t0,
        "setup_s": (t_send - t0) if t_send else None,
        "setup_emulator_s": sum(setup_ms.values()) / 1000,
        "start_delay_s": (start_at - (wall0 + t_send - t0)) if start_at and t_send else None,
        "exit_after_window_s": (t_end - a) if a else None,
        **lat,
        "poll": {"ListCommands": lc, "ListObjectsV2": lo, "ListCommandInvocations": lci,
                 "calls_per_round": (lc + lo + lci) / lc if lc else None,
                 "calls_per_host": (lc + lo + lci) / size},
        "requests": own, "requests_total": sum(own.values()), "get_object_ms": get_object_ms(timeline),
        "throttled": emu.throttled(key), "errors": stats.get("errors", {}),
        "render": render, "drain": drain,
        "process": {"user_s": usage.ru_utime, "sys_s": usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024},
        "stderr_tail": [l for _, l in lines[-8:]],
    }


# --------------------------------------------------------------------------- naive loop


def run_naive(emu: Emulator, binary: Path, size: int, group: str, bucket: str, doc: str,
              out: Path, throttle: str) -> dict:
    """The loop a script would write: per-host SendCommand, per-host polling."""
    key = fresh_key()
    if throttle:
        emu.throttle(key, throttle)
    ec2, ssm, s3 = (boto(emu.endpoint, key, s) for s in ("ec2", "ssm", "s3"))
    load = os.getloadavg()
    t0 = time.time()
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
    t_resolved = time.time()
    commands = {}
    for iid in ids:
        commands[iid] = ssm.send_command(DocumentName=doc, InstanceIds=[iid], Parameters=params,
                                         TimeoutSeconds=600)["Command"]["CommandId"]
    t_sent = time.time()
    status: dict[str, str] = {}
    rounds = 0
    deadline = t_sent + DURATION + 600
    while len(status) < len(ids) and time.time() < deadline:
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
    t_fetched = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rendered = 0
    for path in fetched:
        r = subprocess.run([str(binary), "render", str(path), "--out", str(out)], env=client_env(
            emu.endpoint, key), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=120)
        rendered += r.returncode == 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_end = time.time()
    render_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    window_end = t_sent + DURATION  # the last host's recording ends (no common window)
    lat = latency(out, emu.uploads(run_id), window_end)
    stats = emu.stats(key)
    timeline = stats.get("timeline", [])
    own = calls_after(timeline, None)
    gci = own.get("ssm:GetCommandInvocation", 0)
    setup_ms = sum(e[3] for e in timeline if e[1] == "ec2:DescribeInstances" and len(e) > 3)
    span = t_end - t_fetched
    return {
        "tool": "naive", "size": size, "throttle": bool(throttle),
        "exit": 0 if rendered == len(ids) else 1, "rendered": rendered, "load_avg": load,
        "wall_s": t_end - t0, "setup_s": t_resolved - t0, "setup_emulator_s": setup_ms / 1000,
        "send_s": t_sent - t_resolved, "start_delay_s": None,
        "exit_after_window_s": t_end - window_end,
        **lat,
        "poll": {"GetCommandInvocation": gci, "rounds": rounds,
                 "calls_per_round": gci / rounds if rounds else None, "calls_per_host": gci / size},
        "requests": own, "requests_total": sum(own.values()), "get_object_ms": get_object_ms(timeline),
        "throttled": emu.throttled(key), "errors": stats.get("errors", {}),
        # one `flamefire render <host>` after another: serial by construction
        "render": {"wall_s": span, "cpu_s": render_cpu, "cores": render_cpu / span if span > 0 else None},
        "drain": None,
        # RUSAGE_CHILDREN's peak would include the flamefire runs before it
        "process": None,
    }


# --------------------------------------------------------------------------- report


def fmt(v, digits=1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def label(r: dict) -> str:
    return r["tool"] + (", throttled" if r["throttle"] else "")


def per_host(r: dict, op: str) -> float:
    return r["requests"].get(op, 0) / r["size"]


ROWS = [  # (label, figure, digits); a figure of None is a heading
    ("hosts rendered", lambda r: f"{r['rendered']} / {r['size']}", 0),
    ("wall time (s)", lambda r: r["wall_s"], 1),
    ("setup before dispatch (s)", lambda r: r["setup_s"], 1),
    ("  of which inside the emulator (s)", lambda r: r["setup_emulator_s"], 1),
    ("naive: SendCommand loop (s)", lambda r: r.get("send_s"), 1),
    ("start delay before StartAt (s)", lambda r: r["start_delay_s"], 1),
    ("**after the window end: first flamegraph (s)**", lambda r: r["first_svg_s"], 2),
    ("**after the window end: last flamegraph (s)**", lambda r: r["last_svg_s"], 2),
    ("  emulator: last upload lands (s)", lambda r: r["last_upload_s"], 2),
    ("  **flamefire: last upload → last flamegraph (s)**", lambda r: r["last_svg_after_last_upload_s"], 2),
    ("**first flamegraph after its upload (s)**", lambda r: r["first_svg_after_its_upload_s"], 2),
    ("flamegraph after its upload, median / max (s)",
     lambda r: f"{fmt(r['svg_after_upload_median_s'], 2)} / {fmt(r['svg_after_upload_max_s'], 2)}", 0),
    ("after the window end: fleet.svg / report.html (s)",
     lambda r: f"{fmt(r['fleet_svg_s'], 2)} / {fmt(r['report_html_s'], 2)}", 0),
    ("after the window end: exit (s)", lambda r: r["exit_after_window_s"], 2),
    ("  GetObject inside the emulator, median / p90 (ms)",
     lambda r: "{} / {}".format(*(fmt(v, 0) for v in r["get_object_ms"])), 0),
    ("**API calls per polling round**", lambda r: r["poll"]["calls_per_round"], 2),
    ("  polling calls per host", lambda r: r["poll"]["calls_per_host"], 2),
    ("  ListCommands (= SSM rounds)", lambda r: r["poll"].get("ListCommands"), 0),
    ("  ListObjectsV2 (S3 list calls)", lambda r: r["poll"].get("ListObjectsV2"), 0),
    ("  ListCommandInvocations", lambda r: r["poll"].get("ListCommandInvocations"), 0),
    ("  naive: GetCommandInvocation / rounds",
     lambda r: f"{r['poll']['GetCommandInvocation']} / {r['poll']['rounds']}" if "rounds" in r["poll"] else None, 0),
    ("API requests per host, all", lambda r: r["requests_total"] / r["size"], 2),
    ("  SendCommand", lambda r: per_host(r, "ssm:SendCommand"), 2),
    ("  GetObject", lambda r: per_host(r, "s3:GetObject"), 2),
    ("  DescribeInstances", lambda r: per_host(r, "ec2:DescribeInstances"), 3),
    ("requests throttled (all operations)", lambda r: sum(r["throttled"].values()), 0),
    ("render CPU after the window (user+sys s)", lambda r: r["render"]["cpu_s"], 2),
    ("**cores used: CPU ÷ wall, window end → exit**", lambda r: r["render"]["cores"], 2),
    ("**cores used: CPU ÷ wall, last upload → last output**",
     lambda r: r["drain"]["cores"] if r["drain"] else None, 2),
    ("**peak RSS (MiB)**", lambda r: r["process"]["max_rss_mb"] if r["process"] else None, 0),
    ("process user+sys (s)",
     lambda r: r["process"]["user_s"] + r["process"]["sys_s"] if r["process"] else None, 2),
    ("load average at start (1 / 5 min)", lambda r: f"{r['load_avg'][0]:.2f} / {r['load_avg'][1]:.2f}", 0),
]


def table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["figure"] + [label(r) for r in runs]
    body = []
    for name, get, digits in ROWS:
        cells = []
        for r in runs:
            try:
                v = get(r)
            except (KeyError, TypeError):
                v = None
            cells.append(fmt(v, digits) if not isinstance(v, str) else v)
        if any(c != "n/a" for c in cells):
            body.append([name] + cells)
    return header, body


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


def by_size(results: list[dict]) -> dict[int, list[dict]]:
    order = {("flamefire", False): 0, ("flamefire", True): 1, ("naive", False): 2, ("naive", True): 3}
    out: dict[int, list[dict]] = {}
    for r in sorted(results, key=lambda r: (r["size"], order[(r["tool"], r["throttle"])])):
        out.setdefault(r["size"], []).append(r)
    return out


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**met**" if ok else "**missed**"


def targets(results: list[dict], sizes: list[int]) -> list[str]:
    """Issue 11's targets, excluding time inside the emulator (the uploads landing)."""
    out = []
    ff = [r for r in results if r["tool"] == "flamefire"]

    def line(size, text, value, limit, unit="s", digits=2):
        runs = [r for r in ff if r["size"] == size]
        if not runs:
            out.append(f"- {size:,} hosts: {text} < {limit} {unit}: not measured (size not run)")
            return
        for r in runs:
            v = value(r)
            out.append(f"- {size:,} hosts, {label(r)}: {text} < {limit} {unit}: "
                       f"{verdict(None if v is None else v < limit)} ({fmt(v, digits)} {unit})")

    line(100, "last flamegraph after the last upload", lambda r: r["last_svg_after_last_upload_s"], 2)
    line(100, "first flamegraph after its upload", lambda r: r["first_svg_after_its_upload_s"], 1)
    line(2000, "last flamegraph after the last upload", lambda r: r["last_svg_after_last_upload_s"], 15)
    line(2000, "peak RSS", lambda r: r["process"]["max_rss_mb"], 1024, "MiB", 0)
    runs = [r for r in ff if r["size"] == 2000]
    if not runs:
        out.append("- 2,000 hosts: API calls per polling round ≤ 5: not measured (size not run)")
    for r in runs:
        v = r["poll"]["calls_per_round"]
        out.append(f"- 2,000 hosts, {label(r)}: API calls per polling round ≤ 5: "
                   f"{verdict(None if v is None else v <= 5)} ({fmt(v, 2)})")
    for r in ff:
        d = r["drain"] or {}
        out.append(
            f"- {r['size']:,} hosts, {label(r)}: render CPU ÷ wall ≥ 1.7: "
            f"{verdict(None if d.get('cores') is None else d['cores'] >= 1.7)} "
            f"({fmt(d.get('cores'), 2)} from the last upload to the last output, "
            f"{fmt(r['render']['cores'], 2)} from the window end to exit; "
            f"load average {r['load_avg'][0]:.2f}, so not an idle machine)")
    return out


def git_describe() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:
        return "unknown"


def naive_note(results: list[dict], sizes: list[int]) -> str:
    naive = {r["size"]: r for r in results if r["tool"] == "naive" and not r["throttle"]}
    skipped = [n for n in sizes if n not in naive]
    if not skipped or not naive:
        return ""
    base = max(naive)
    est = ", ".join(f"{n:,} hosts: not run (would take ~{naive[base]['wall_s'] * n / base / 60:.0f} min, "
                    f"scaled from {base} hosts)" for n in skipped)
    return f"Naive loop: {est}; throttled, only up to {NAIVE_THROTTLED_MAX_HOSTS} hosts.\n"


def write_results(path: Path, results: list[dict], meta: dict) -> None:
    sizes = sorted({r["size"] for r in results})
    tables = "\n\n".join(f"### {n:,} hosts\n\n{md_table(*table(runs))}" for n, runs in by_size(results).items())
    text = f"""# Fleet benchmark: latest figures

Written by `scripts/bench-fleet.sh` ({meta['date']}, {meta['minutes']:.1f} min); do not
edit by hand. Method: `benches/fleet/fleet.py`'s docstring. Emulator on
127.0.0.1 (moto {meta['moto']}), every host a `replay` of
`tests/data/captures/sick.perf.gz` that waits for StartAt + {DURATION} s like the
real script, then uploads by presigned POST; flamefire `{meta['git']}` release
build; naive = boto3 (adaptive retry, 10 attempts), one SendCommand per host,
GetCommandInvocation per host every {POLL_S:.0f} s, `flamefire render` per host.
{meta['cores']} cores, {meta['machine']}, shared with other work and with the
emulator itself (the hosts' uploads run on the same cores): load average
{meta['load_start']} at the start, {meta['load_end']} at the end (1 / 5 / 15 min).
{naive_note(results, meta['sizes'])}
Throttling "on" sets these token buckets (RATE/s, BURST; one bucket per
operation) for the run's access key: `{THROTTLE}`.
EC2's documented bucket for non-mutating actions refills at 20/s (burst 100,
[EC2 throttling](https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html));
SSM does not publish per-operation rates, and 10/s with a burst of 20 is at or
below what accounts commonly get; S3 allows 5,500 GETs a second per prefix,
so 200/s GetObject and 50/s ListObjectsV2 are far stricter than AWS. The
hosts' own uploads are not throttled.

## Targets (issue 11), excluding time inside the emulator

{chr(10).join(targets(results, sizes))}

## Figures

{tables}

## How to read it

- Times "after the window end" are from StartAt + {DURATION} s (naive: the last
  SendCommand + {DURATION} s) to an output file's mtime. "emulator: last upload
  lands" is when the last host's meta.json was stored (its invocation's end): every
  upload goes through one moto process on these {meta['cores']} cores; on AWS
  each host uploads on its own. "flamefire: last upload → last flamegraph"
  is what remains, the figure the targets use.
- "first flamegraph after its upload": the first host drawn, its SVG's mtime
  minus that host's upload time (flamefire lists the bucket every 0.5 s
  after the window, then downloads, collapses and draws that host).
- API calls per polling round = (ListCommands + ListObjectsV2 +
  ListCommandInvocations after the first SendCommand) ÷ ListCommands; the
  naive loop's round is one GetCommandInvocation per unfinished host.
- Render CPU: the flamefire process's CPU from the window end to its exit
  (polls, downloads, collapse, per-host SVGs, fleet.svg, report.html). CPU ÷
  wall over that span mostly measures how fast hosts arrive (the emulator is
  the bottleneck, and shares the cores); from the last upload to the last
  output no upload is pending, but downloads still go through moto, which
  runs on the same two cores. Peak RSS: wait4()'s ru_maxrss of the
  flamefire process.
- The throttled runs hit few limits: flamefire's polls stay under the SSM
  buckets, and moto serves GetObject slower than 200/s.
"""
    path.write_text(text)


def loadavg() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--port", type=int, default=int(os.environ.get("FLAMEFIRE_EMULATOR_PORT", "5057")))
    ap.add_argument("--sizes", default="100,500,2000", help=f"comma-separated fleet sizes (each ≤ {MAX_HOSTS})")
    ap.add_argument("--throttle", default="off,on", help="off, on, or off,on")
    ap.add_argument("--binary", type=Path, default=REPO / "target/release/flamefire")
    ap.add_argument("--work", type=Path, default=REPO / "target/bench-fleet")
    ap.add_argument("--results", type=Path, default=REPO / "benches/fleet/RESULTS.md")
    ap.add_argument("--no-naive", action="store_true", help="measure flamefire only")
    ap.add_argument("--from-json", type=Path, help="only rewrite --results from a results.json")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        write_results(args.results, saved["results"], saved["meta"])
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(not 1 <= n <= MAX_HOSTS for n in sizes):
        sys.exit(f"--sizes: each between 1 and {MAX_HOSTS}")
    modes = [m.strip() for m in args.throttle.split(",") if m.strip()]
    if not modes or any(m not in ("off", "on") for m in modes):
        sys.exit("--throttle: off, on, or off,on")
    if not args.binary.is_file():
        sys.exit(f"{args.binary} is missing: cargo build --release")
    emu = Emulator(args.port)
    emu.check()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    started, load_start = time.monotonic(), loadavg()
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
        emu.seed(n, {"flamefire-test:ssm": "online", "flamefire-test:behaviour": "replay",
                     "flamefire-test:replay-capture": str(CAPTURE), "flamefire-test:replay-timing": "real",
                     "aws:autoscaling:groupName": group, "flamefire": "enabled"})
        print(f"seeded {n} instances in {group} ({time.monotonic() - t:.1f}s)", file=sys.stderr)
        plan = [("flamefire", run_flamefire, m) for m in modes]
        if not args.no_naive:
            plan += [("naive", run_naive, m) for m in modes
                     if n <= (NAIVE_MAX_HOSTS if m == "off" else NAIVE_THROTTLED_MAX_HOSTS)]
        for tool, fn, mode in plan:
            name = f"{tool}-{n}-throttle-{mode}"
            print(f"{name}: load {loadavg()}…", file=sys.stderr)
            r = fn(emu, args.binary, n, group, bucket, document, args.work / name,
                   THROTTLE if mode == "on" else "")
            print(f"{name}: wall {r['wall_s']:.1f}s, rendered {r['rendered']}, last flamegraph "
                  f"{fmt(r['last_svg_s'], 2)}s after the window, {r['requests_total']} requests",
                  file=sys.stderr)
            results.append(r)
            if r["rendered"] != n:
                print(f"warning: {name} rendered {r['rendered']} of {n} hosts: "
                      f"{r.get('stderr_tail', '')}", file=sys.stderr)
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "minutes": (time.monotonic() - started) / 60, "sizes": sizes,
            "load_start": load_start, "load_end": loadavg(),
            "moto": emu.admin("GET", "health").get("moto_version", "?"), "git": git_describe(),
            "cores": os.cpu_count(), "machine": f"{platform.system()} {platform.machine()}"}
    (args.work / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    for n, runs in by_size(results).items():
        print(f"\n{n} hosts\n{plain_table(*table(runs))}")
    print()
    print("\n".join(targets(results, sizes)))
    write_results(args.results, results, meta)
    print(f"\nwrote {args.results} and {args.work / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
