#!/usr/bin/env python3
"""Manual smoke check of the flamefire emulator, through boto3 like a client.

    .venv/bin/python tests/emulator/smoke.py        # prints PASS or fails loudly

Starts the emulator with tests/emulator/start.sh (a no-op when it already
runs), then exercises: S3 bucket + presigned POST through the front port,
CreateDocument, seeding (admin API and plain EC2 RunInstances),
DescribeInstanceInformation (+ filters, pagination), SendCommand to two ids
(online + offline), eventual consistency of ListCommandInvocations, statuses
until terminal, outputs, GetCommandInvocation, CancelCommand, tag targets with
an unmanaged instance (Undeliverable), the no-node / corrupt-upload / replay
behaviours, the exact error codes, and the stats endpoint.

Each run uses fresh names, so it can run against a long-lived emulator.

    .venv/bin/python tests/emulator/smoke.py --scale 300

instead seeds 300 `replay` instances, sends the upload document to them in
batches of 50 ids, polls ListCommandInvocations (paginated) until all are
terminal, checks every upload and prints the timings.

    .venv/bin/python tests/emulator/smoke.py --record

runs the repository's real document (ssm-documents/flamefire-record.yaml) with
real perf against a Node process started here, on a `record` and a `no-node`
instance, and checks stacks.gz + meta.json in S3.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

os.environ.update(
    AWS_EC2_METADATA_DISABLED="true",
    # An AKID of the real shape: the document's UploadCredential allowedPattern
    # (`[A-Z0-9]{16,128}/…`) rejects moto's usual "testing".
    AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = int(os.environ.get("FLAMEFIRE_EMULATOR_PORT", "5055"))
ENDPOINT = f"http://127.0.0.1:{PORT}"
REGION = "us-east-1"
RUN = uuid.uuid4().hex[:8]
CFG = botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})


def client(service: str, region: str = REGION):
    cfg = CFG
    if service == "s3":  # presigned POST fields in SigV4 form, as flamefire uses them
        cfg = CFG.merge(botocore.config.Config(signature_version="s3v4"))
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=region, config=cfg)


def admin(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{ENDPOINT}/_flamefire/{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def check(cond: bool, what: str) -> None:
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"  ok  {what}")


def expect_error(code: str, fn, *args, **kwargs) -> str:
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        check(got == code, f"{fn.__name__ if hasattr(fn, '__name__') else fn} -> {code} "
                           f"(got {got}: {e.response['Error'].get('Message', '')[:80]})")
        return e.response["Error"].get("Message", "")
    check(False, f"expected {code}")
    return ""


def wait_terminal(ssm, command_id: str, want: int, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        invs = ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
        if len(invs) == want and all(i["Status"] in ("Success", "Failed", "TimedOut", "Cancelled")
                                     for i in invs):
            return {i["InstanceId"]: i for i in invs}
        time.sleep(0.3)
    raise SystemExit(f"FAIL: command {command_id} not terminal after {timeout}s: {invs}")


ECHO_DOC = {
    "schemaVersion": "2.2",
    "description": "flamefire emulator smoke: echo parameters",
    "parameters": {
        "X": {"type": "String", "default": "dflt", "allowedPattern": "^[a-z0-9]{1,16}$",
              "interpolationType": "ENV_VAR", "description": "echoed"},
        "Sleep": {"type": "String", "default": "0", "allowedPattern": "^[0-9]{1,3}$",
                  "interpolationType": "ENV_VAR", "description": "seconds to sleep"},
    },
    "mainSteps": [{
        "action": "aws:runShellScript", "name": "record",
        "inputs": {"timeoutSeconds": 60, "runCommand": [
            'echo "X=$SSM_X id=$AWS_SSM_INSTANCE_ID region=$AWS_SSM_REGION_NAME"',
            'echo "cwd=$(pwd)"',
            'echo "to stderr" >&2',
            'sleep "$SSM_Sleep"',
            'if pgrep -x node >/dev/null; then echo "node=seen"; else echo "node=none"; fi',
        ]},
    }],
}

UPLOAD_PARAMS = ["UploadUrl", "UploadKeyPrefix", "UploadPolicy", "UploadCredential",
                 "UploadDate", "UploadSignature", "UploadSecurityToken", "RunId"]
UPLOAD_DOC = {
    "schemaVersion": "2.2",
    "description": "flamefire emulator smoke: upload two files by presigned POST",
    "parameters": {n: {"type": "String", "default": "", "interpolationType": "ENV_VAR",
                       "allowedPattern": "^[A-Za-z0-9+/=:._-]*$" if n not in (
                           "UploadUrl", "UploadKeyPrefix", "UploadCredential") else "^.*$",
                       "description": n} for n in UPLOAD_PARAMS},
    "mainSteps": [{
        "action": "aws:runShellScript", "name": "record",
        "inputs": {"runCommand": [
            "set -eu",
            "printf 'main;handler 1\\n' | gzip > stacks.gz",
            "echo '{\"schema\": 1}' > meta.json",
            "for f in stacks.gz meta.json; do",
            '  set -- --form-string "key=${SSM_UploadKeyPrefix}${AWS_SSM_INSTANCE_ID}/$f"',
            '  set -- "$@" --form-string "x-amz-algorithm=AWS4-HMAC-SHA256"',
            '  set -- "$@" --form-string "x-amz-credential=$SSM_UploadCredential"',
            '  set -- "$@" --form-string "x-amz-date=$SSM_UploadDate"',
            '  [ -n "$SSM_UploadSecurityToken" ] && set -- "$@" --form-string '
            '"x-amz-security-token=$SSM_UploadSecurityToken"',
            '  set -- "$@" --form-string "policy=$SSM_UploadPolicy"',
            '  set -- "$@" --form-string "x-amz-signature=$SSM_UploadSignature"',
            '  curl -sS --fail "$@" -F "file=@$f" "$SSM_UploadUrl"',
            "done",
            'echo "uploaded"',
        ]},
    }],
}


def main() -> None:
    subprocess.run([os.path.join(HERE, "start.sh")], check=True)
    health = admin("GET", "health")
    check(health["status"] == "ok", f"emulator healthy (moto {health['moto_version']})")
    # Others may share this emulator: measure stats as deltas, never reset them.
    before = admin("GET", "stats")["operations"]

    s3, ssm, ec2 = client("s3"), client("ssm"), client("ec2")
    bucket = f"flamefire-smoke-{RUN}"
    s3.create_bucket(Bucket=bucket)
    check(bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]], "bucket created via proxy")

    echo_doc, upload_doc = f"smoke-echo-{RUN}", f"smoke-upload-{RUN}"
    ssm.create_document(Name=echo_doc, Content=json.dumps(ECHO_DOC), DocumentType="Command",
                        DocumentFormat="JSON")
    import yaml  # moto[server] depends on PyYAML; a YAML document must work too
    ssm.create_document(Name=upload_doc, Content=yaml.safe_dump(UPLOAD_DOC),
                        DocumentType="Command", DocumentFormat="YAML")
    check(True, "documents created (JSON + YAML)")

    role = f"smoke-{RUN}"
    online = admin("POST", "seed", {"count": 1, "tags": {
        "flamefire-test:ssm": "online", "role": role, "Name": "web-1"}})["instance_ids"][0]
    offline = admin("POST", "seed", {"count": 1, "tags": {
        "flamefire-test:ssm": "offline", "flamefire-test:delivery-timeout": "3",
        "role": role}})["instance_ids"][0]
    unmanaged = admin("POST", "seed", {"count": 1, "tags": {
        "flamefire-test:ssm": "unmanaged", "role": role}})["instance_ids"][0]
    untagged = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    check(all(i.startswith("i-") for i in (online, offline, unmanaged, untagged)),
          "seeded online/offline/unmanaged via admin, untagged via RunInstances")

    # ---- DescribeInstanceInformation
    info = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [online, offline, unmanaged, untagged]}])
    by_id = {i["InstanceId"]: i for i in info["InstanceInformationList"]}
    check(set(by_id) == {online, offline}, "DescribeInstanceInformation lists only managed ones")
    check(by_id[online]["PingStatus"] == "Online" and by_id[offline]["PingStatus"] == "ConnectionLost",
          "PingStatus Online / ConnectionLost")
    check(by_id[online]["PlatformType"] == "Linux" and by_id[online]["AgentVersion"] == "3.3.2957.0",
          "PlatformType + default AgentVersion")
    check(hasattr(by_id[online]["LastPingDateTime"], "year"), "LastPingDateTime is a timestamp")
    old = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["ConnectionLost"]}])
    check(offline in [i["InstanceId"] for i in old["InstanceInformationList"]] or "NextToken" in old,
          "InstanceInformationFilterList PingStatus")
    paged_region = "eu-west-1"
    admin("POST", "seed", {"count": 7, "region": paged_region,
                           "tags": {"flamefire-test:ssm": "online",
                                    "flamefire-test:platform": "Windows"}})
    ssm_eu = client("ssm", paged_region)
    p1 = ssm_eu.describe_instance_information(MaxResults=5)
    p2 = ssm_eu.describe_instance_information(MaxResults=5, NextToken=p1["NextToken"])
    check(len(p1["InstanceInformationList"]) == 5 and len(p2["InstanceInformationList"]) >= 2,
          "DescribeInstanceInformation pagination (MaxResults 5 + NextToken)")
    check(p1["InstanceInformationList"][0]["PlatformType"] == "Windows", "Windows platform tag")
    expect_error("InvalidNextToken", ssm_eu.describe_instance_information, NextToken="bogus")

    # ---- errors, exactly as real SSM names them
    expect_error("InvalidDocument", ssm.send_command, DocumentName=f"nope-{RUN}", InstanceIds=[online])
    msg = expect_error("InvalidParameters", ssm.send_command, DocumentName=echo_doc,
                       InstanceIds=[online], Parameters={"X": ["BAD!"]})
    check("allowedPattern" in msg, "InvalidParameters names the allowedPattern")
    expect_error("InvalidParameters", ssm.send_command, DocumentName=echo_doc,
                 InstanceIds=[online], Parameters={"Nope": ["1"]})
    expect_error("ValidationException", ssm.send_command, DocumentName=echo_doc,
                 InstanceIds=[f"i-{n:017x}" for n in range(51)])
    # aws-sdk-rust does not check ranges client-side; botocore does, so turn that off.
    ssm_raw = boto3.client("ssm", endpoint_url=ENDPOINT, region_name=REGION,
                           config=CFG.merge(botocore.config.Config(parameter_validation=False)))
    expect_error("ValidationException", ssm_raw.send_command, DocumentName=echo_doc,
                 InstanceIds=[online], TimeoutSeconds=10)
    msg = expect_error("InvalidInstanceId", ssm.send_command, DocumentName=echo_doc,
                       InstanceIds=[online, unmanaged])
    check("not in a valid state" in msg, "InvalidInstanceId message like real SSM")
    expect_error("InvocationDoesNotExist", ssm.get_command_invocation,
                 CommandId=str(uuid.uuid4()), InstanceId=online)
    expect_error("InvalidCommandId", ssm.cancel_command, CommandId=str(uuid.uuid4()))

    # ---- SendCommand to two ids: online + offline
    sent = ssm.send_command(DocumentName=echo_doc, InstanceIds=[online, offline],
                            Parameters={"X": ["hello"]}, TimeoutSeconds=30, Comment="smoke")
    cmd = sent["Command"]
    cid = cmd["CommandId"]
    check(cmd["Status"] == "Pending" and cmd["TargetCount"] == 2, "SendCommand -> Pending, 2 targets")
    check(hasattr(cmd["RequestedDateTime"], "year"), "RequestedDateTime parses as timestamp")
    early = ssm.list_command_invocations(CommandId=cid)["CommandInvocations"]
    check(early == [], "ListCommandInvocations empty right after send (eventual consistency)")
    expect_error("InvocationDoesNotExist", ssm.get_command_invocation, CommandId=cid, InstanceId=online)
    time.sleep(0.6)
    mid = {i["InstanceId"]: i["Status"]
           for i in ssm.list_command_invocations(CommandId=cid)["CommandInvocations"]}
    check(mid.get(offline) == "Pending", f"offline instance stays Pending ({mid})")
    done = wait_terminal(ssm, cid, 2)
    ok = done[online]
    check(ok["Status"] == "Success", "online invocation Success")
    plugin = ok["CommandPlugins"][0]
    check(plugin["Name"] == "record" and plugin["ResponseCode"] == 0, "CommandPlugins[0] name + code")
    check(f"X=hello id={online} region={REGION}" in plugin["Output"], "Output has $SSM_X + instance id")
    check("----------ERROR-------\nto stderr" in plugin["Output"], "Output has the stderr section")
    check(done[offline]["Status"] == "TimedOut" and done[offline]["StatusDetails"] == "DeliveryTimedOut",
          "offline invocation TimedOut / DeliveryTimedOut")
    got = ssm.get_command_invocation(CommandId=cid, InstanceId=online)
    check(got["StandardOutputContent"].startswith(f"X=hello id={online}"), "StandardOutputContent")
    check(got["StandardErrorContent"] == "to stderr\n", "StandardErrorContent")
    agent_cwd = os.environ.get("FLAMEFIRE_EMULATOR_AGENT_CWD") or "/usr/bin"
    check(f"cwd={agent_cwd}\n" in got["StandardOutputContent"],
          f"script ran in the agent's own working directory ({agent_cwd})")
    check(got["ResponseCode"] == 0 and got["ExecutionElapsedTime"].startswith("PT"),
          "ResponseCode + ExecutionElapsedTime")
    listed = ssm.list_commands(CommandId=cid)["Commands"][0]
    # The aggregate of a mixed command is the least certain part of the model:
    # only assert that it is terminal and the counters add up.
    check(listed["Status"] in ("Success", "Failed", "TimedOut") and listed["CompletedCount"] == 2
          and listed["DeliveryTimedOutCount"] == 1 and listed["ErrorCount"] == 0,
          f"ListCommands aggregate ({listed['Status']}/{listed['StatusDetails']})")

    # ---- Cancel a running script
    sent = ssm.send_command(DocumentName=echo_doc, InstanceIds=[online], Parameters={"Sleep": ["30"]})
    cid2 = sent["Command"]["CommandId"]
    for _ in range(50):
        invs = ssm.list_command_invocations(CommandId=cid2)["CommandInvocations"]
        if invs and invs[0]["Status"] == "InProgress":
            break
        time.sleep(0.1)
    check(invs and invs[0]["Status"] == "InProgress", "long command InProgress")
    t0 = time.time()
    ssm.cancel_command(CommandId=cid2)
    done = wait_terminal(ssm, cid2, 1, timeout=10)
    check(done[online]["Status"] == "Cancelled" and time.time() - t0 < 5, "CancelCommand -> Cancelled")
    check(ssm.list_commands(CommandId=cid2)["Commands"][0]["Status"] == "Cancelled",
          "ListCommands shows Cancelled")

    # ---- Tag targets include the unmanaged instance as Undeliverable
    sent = ssm.send_command(DocumentName=echo_doc, Targets=[{"Key": "tag:role", "Values": [role]}],
                            TimeoutSeconds=30)
    check(sent["Command"]["TargetCount"] == 3, "tag target resolves online+offline+unmanaged")
    done = wait_terminal(ssm, sent["Command"]["CommandId"], 3, timeout=30)
    check(done[unmanaged]["StatusDetails"] == "Undeliverable", "unmanaged -> Undeliverable")
    check(done[online]["Status"] == "Success", "online via tag target -> Success")

    # ---- no-node: the script must not see this machine's node process
    node = subprocess.Popen(["node", "-e", "setTimeout(() => {}, 20000)"])
    try:
        nn = admin("POST", "seed", {"count": 1, "tags": {
            "flamefire-test:ssm": "online", "flamefire-test:behaviour": "no-node"}})["instance_ids"][0]
        sent = ssm.send_command(DocumentName=echo_doc, InstanceIds=[online, nn])
        done = wait_terminal(ssm, sent["Command"]["CommandId"], 2)
        out = {i: ssm.get_command_invocation(CommandId=sent["Command"]["CommandId"], InstanceId=i)[
            "StandardOutputContent"] for i in done}
        check("node=seen" in out[online] and "node=none" in out[nn], "no-node hides node processes")
    finally:
        node.kill()

    # ---- presigned POST uploads: record (real script), corrupt-upload, replay
    params = presigned_params(s3, bucket, f"flamefire/{RUN}/")
    params["RunId"] = [RUN]
    capture = os.path.join(os.environ.get("FLAMEFIRE_EMULATOR_DIR") or os.path.join(
        HERE, "..", "..", "target", "emulator"), f"smoke-capture-{RUN}.gz")
    with gzip.open(capture, "wt") as fh:
        fh.write("node 4242 100.000: 1 cpu-clock:\n\t  aaaa main (/usr/bin/node)\n\n"
                 "node 4242 100.010: 1 cpu-clock:\n\t  bbbb main (/usr/bin/node)\n\n")
    ids = {}
    for beh in ("record", "corrupt-upload", "replay"):
        tags = {"flamefire-test:ssm": "online", "flamefire-test:behaviour": beh}
        if beh == "replay":
            tags["flamefire-test:replay-capture"] = os.path.abspath(capture)
        ids[beh] = admin("POST", "seed", {"count": 1, "tags": tags})["instance_ids"][0]
    sent = ssm.send_command(DocumentName=upload_doc, InstanceIds=list(ids.values()), Parameters=params)
    done = wait_terminal(ssm, sent["Command"]["CommandId"], 3)
    for beh, iid in ids.items():
        check(done[iid]["Status"] == "Success", f"{beh}: invocation Success "
              f"({done[iid]['CommandPlugins'][0]['Output'][:200]!r})")

    def obj(iid: str, name: str) -> bytes:
        return s3.get_object(Bucket=bucket, Key=f"flamefire/{RUN}/{iid}/{name}")["Body"].read()

    check(gzip.decompress(obj(ids["record"], "stacks.gz")) == b"main;handler 1\n",
          "record: stacks.gz uploaded by presigned POST through the proxy")
    try:
        gzip.decompress(obj(ids["corrupt-upload"], "stacks.gz"))
        check(False, "corrupt-upload: stacks.gz should not decompress")
    except (EOFError, OSError):
        check(True, "corrupt-upload: stacks.gz is truncated")
    meta = json.loads(obj(ids["replay"], "meta.json"))
    check(meta["samples"] == 2 and meta["instance_id"] == ids["replay"] and meta["run_id"] == RUN,
          "replay: capture + synthesized meta.json uploaded")

    # ---- stats
    stats = admin("GET", "stats")
    ops = {k: v - before.get(k, 0) for k, v in stats["operations"].items()}
    check(ops.get("ssm:SendCommand", 0) >= 5 and ops.get("ssm:ListCommandInvocations", 0) >= 3
          and ops.get("s3:PostObject", 0) >= 6 and ops.get("ec2:RunInstances", 0) >= 1
          and ops.get("s3:CreateBucket", 0) >= 1,
          f"stats count per operation ({len(stats['operations'])} operations, "
          f"{stats['total']} requests)")
    dbg = admin("GET", f"invocations?command_id={cid}")
    check(len(dbg["commands"][0]["invocations"]) == 2, "/_flamefire/invocations debug view")
    os.unlink(capture)
    print("PASS")


def scale(n: int) -> None:
    subprocess.run([os.path.join(HERE, "start.sh")], check=True)
    s3, ssm = client("s3"), client("ssm")
    bucket = f"flamefire-scale-{RUN}"
    s3.create_bucket(Bucket=bucket)
    doc = f"scale-upload-{RUN}"
    ssm.create_document(Name=doc, Content=json.dumps(UPLOAD_DOC), DocumentType="Command",
                        DocumentFormat="JSON")
    capture = os.path.abspath(os.path.join(
        os.environ.get("FLAMEFIRE_EMULATOR_DIR") or os.path.join(HERE, "..", "..", "target",
                                                                  "emulator"),
        f"scale-capture-{RUN}.gz"))
    with gzip.open(capture, "wt") as fh:
        for k in range(2000):
            fh.write(f"node 4242 {k}.000: 1 cpu-clock:\n\t  aaaa handler{k % 17} (/usr/bin/node)\n"
                     "\t  bbbb main (/usr/bin/node)\n\n")
    t0 = time.time()
    ids = admin("POST", "seed", {"count": n, "tags": {
        "flamefire-test:ssm": "online", "flamefire-test:behaviour": "replay",
        "flamefire-test:replay-capture": capture}})["instance_ids"]
    t_seed = time.time() - t0
    params = presigned_params(s3, bucket, f"flamefire/{RUN}/")
    params["RunId"] = [RUN]
    t0 = time.time()
    cids = [ssm.send_command(DocumentName=doc, InstanceIds=ids[k:k + 50], Parameters=params)[
        "Command"]["CommandId"] for k in range(0, n, 50)]
    t_send = time.time() - t0
    statuses: dict[str, str] = {}
    while time.time() - t0 < 600:
        statuses = {}
        for cid in cids:
            for pg in ssm.get_paginator("list_command_invocations").paginate(CommandId=cid):
                statuses.update({i["InstanceId"]: i["Status"] for i in pg["CommandInvocations"]})
        if len(statuses) == n and all(v in ("Success", "Failed", "TimedOut", "Cancelled")
                                      for v in statuses.values()):
            break
        time.sleep(0.5)
    t_done = time.time() - t0
    ok = sum(1 for v in statuses.values() if v == "Success")
    keys = sum(pg.get("KeyCount", 0) for pg in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"flamefire/{RUN}/"))
    os.unlink(capture)
    print(f"seed {n}: {t_seed:.1f}s; send {len(cids)} commands: {t_send:.1f}s; "
          f"all terminal after {t_done:.1f}s; {ok}/{n} Success; {keys} objects")
    check(ok == n and keys == 2 * n, f"scale {n}: every host uploaded stacks.gz + meta.json")
    print("PASS")


def presigned_params(s3, bucket: str, prefix: str) -> dict:
    post = s3.generate_presigned_post(Bucket=bucket, Key=prefix + "${filename}", ExpiresIn=900)
    f = post["fields"]
    return {"UploadUrl": [post["url"].rstrip("/") + "/"], "UploadKeyPrefix": [prefix],
            "UploadPolicy": [f["policy"]], "UploadCredential": [f["x-amz-credential"]],
            "UploadDate": [f["x-amz-date"]], "UploadSignature": [f["x-amz-signature"]]}


def record() -> None:
    path = os.path.join(HERE, "..", "..", "ssm-documents", "flamefire-record.yaml")
    subprocess.run([os.path.join(HERE, "start.sh")], check=True)
    s3, ssm = client("s3"), client("ssm")
    doc, bucket, prefix = f"flamefire-record-{RUN}", f"flamefire-record-{RUN}", f"flamefire/{RUN}/"
    with open(path) as fh:
        ssm.create_document(Name=doc, Content=fh.read(), DocumentType="Command",
                            DocumentFormat="YAML")
    s3.create_bucket(Bucket=bucket)
    ids = {b: admin("POST", "seed", {"count": 1, "tags": {
        "flamefire-test:ssm": "online", "flamefire-test:behaviour": b}})["instance_ids"][0]
        for b in ("record", "no-node")}
    node = subprocess.Popen(["node", "--perf-basic-prof", "-e",
                             "function spin(){let x=0;for(let i=0;i<1e6;i++)x+=Math.sqrt(i);"
                             "return x}; const t=Date.now(); while(Date.now()-t<30000) spin();"])
    try:
        params = presigned_params(s3, bucket, prefix)
        params.update(Duration=["2"], RunId=[RUN])
        cid = ssm.send_command(DocumentName=doc, InstanceIds=list(ids.values()),
                               Parameters=params)["Command"]["CommandId"]
        done = wait_terminal(ssm, cid, 2, timeout=300)
    finally:
        node.kill()
    rec = ssm.get_command_invocation(CommandId=cid, InstanceId=ids["record"])
    check(done[ids["record"]]["Status"] == "Success",
          f"record: Success ({rec['StandardErrorContent'][-300:]!r})")
    check(done[ids["no-node"]]["Status"] == "Failed", "no-node: Failed (no Node process seen)")
    stacks = gzip.decompress(s3.get_object(
        Bucket=bucket, Key=f"{prefix}{ids['record']}/stacks.gz")["Body"].read()).decode()
    meta = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}{ids['record']}/meta.json")[
        "Body"].read())
    check("cpu-clock" in stacks and meta["instance_id"] == ids["record"] and meta["samples"] > 0,
          f"record: stacks.gz ({len(stacks)} chars) + meta.json ({meta['samples']} samples)")
    print("PASS")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--record":
        record()
    elif len(sys.argv) == 3 and sys.argv[1] == "--scale":
        scale(int(sys.argv[2]))
    else:
        main()
