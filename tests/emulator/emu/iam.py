"""IAM: access keys, request contexts, SigV4 checks, bucket policies and the
policy evaluation every request goes through."""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import re
import time
import urllib.parse

import botocore.exceptions

import awsauth

from .backend import Instance
from .config import ACCOUNT_ID, now
from .state import EMU


# --------------------------------------------------------------------------- IAM, credentials, STS
#
# Identities are access keys the emulator knows (tests/emulator/README.md, "IAM"):
# - users, registered with POST /_flamefire/iam: a long-term key, its secret, an
#   identity policy, and optionally an MFA device;
# - sessions, issued by the emulator's own sts:AssumeRole of a role registered
#   with POST /_flamefire/roles: an ASIA key, a secret, a session token and an
#   expiry, bound to the role's policy.
# Every request signed with a known key is authorised against that key's policy
# (default deny, explicit deny wins), with the action, resources and condition
# keys the real request carries (awsauth.py). A key the emulator was never told
# about is an unrestricted test identity: its requests are not authorised, and
# its POST signatures cannot be checked (no secret), though POST policies are.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html

ACCESS_KEY_RE = re.compile(r"Credential=([A-Za-z0-9]+)/")
POLICY_DIR_HELPER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "terraform", "test")


def access_key_of(headers, query: dict) -> str:
    """The access key id a request is signed with (SigV4 header or presigned query)."""
    m = ACCESS_KEY_RE.search(headers.get("Authorization", ""))
    if m:
        return m.group(1)
    cred = (query.get("X-Amz-Credential") or [""])[0]
    return cred.split("/")[0] if "/" in cred else ""


def identity(key: str) -> dict | None:
    with EMU.state.lock:
        return EMU.state.iam.get(key)


def partition_of(region: str) -> str:
    return awsauth.partition_of(region)


def document_tags(name: str, region: str) -> dict[str, str]:
    if name.startswith("arn:") or awsauth.document_arn(name, region, ACCOUNT_ID).split(":")[4] == "":
        return {}
    try:
        raw = EMU.moto.client("ssm", region).list_tags_for_resource(ResourceType="Document", ResourceId=name)
        return {t["Key"]: t["Value"] for t in raw.get("TagList", [])}
    except Exception:
        return {}


def send_command_instances(req: dict, region: str) -> list[tuple[str, "Instance | None"]]:
    """The instances a SendCommand would reach: explicit ids, or what tag targets match."""
    ids = req.get("InstanceIds") or []
    if ids:
        found = {i.id: i for i in EMU.moto.instances(region, [i for i in ids if isinstance(i, str)])}
        return [(i, found.get(i)) for i in ids if isinstance(i, str)]
    matched: dict[str, Instance] | None = None
    for tgt in req.get("Targets") or []:
        key, values = tgt.get("Key", ""), tgt.get("Values") or []
        if key == "InstanceIds":
            found = {i.id: i for i in EMU.moto.instances(region, values)}
            match = {i: found.get(i) for i in values}
        elif key.startswith("tag:"):
            match = {i.id: i for i in EMU.moto.instances(region) if i.alive and i.tags.get(key[4:]) in values}
        elif key == "tag-key":
            match = {i.id: i for i in EMU.moto.instances(region) if i.alive and any(v in i.tags for v in values)}
        else:
            match = {}
        matched = match if matched is None else {k: v for k, v in matched.items() if k in match}
    return list((matched or {}).items())


def request_context(region: str, entry: dict, secure: bool = True) -> dict[str, str]:
    """Global condition keys every request carries (IAM User Guide,
    reference_policies_condition-keys.html). aws:MultiFactorAuthPresent is
    present only for temporary credentials ("not present ... long-term
    credentials"); it is true when the session was created with MFA."""
    principal = entry["principal"]
    ctx = {
        "aws:requestedregion": region,
        "aws:principalaccount": ACCOUNT_ID,
        "aws:principalarn": entry.get("role_arn") or principal,
        "aws:principaltype": "AssumedRole" if ":assumed-role/" in principal else "User",
        # AWS's API endpoints are HTTPS; the emulator's plain-HTTP port stands in
        # for them (the SDK speaks HTTPS to real AWS), so this is true on both
        # listeners. `secure` only records which listener a request came by.
        "aws:securetransport": "true",
        "aws:currenttime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "aws:epochtime": str(int(now())),
    }
    if entry.get("token"):
        ctx["aws:multifactorauthpresent"] = "true" if entry.get("mfa") else "false"
        if entry.get("mfa"):
            ctx["aws:multifactorauthage"] = str(int(now() - entry.get("issued", now())))
        ctx["aws:tokenissuetime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.get("issued", now())))
    return ctx


def check_session(entry: dict, service: str, token: str | None) -> None:
    """A session key needs its token, and works only until it expires (STS
    AssumeRole: "temporary security credentials ... expire"; the errors are in
    awsauth.expired_token / invalid_token)."""
    if entry.get("token") is None:
        if token:
            raise awsauth.invalid_token(service)
        return
    if token != entry["token"]:
        raise awsauth.invalid_token(service)
    if entry.get("expires") is not None and now() >= entry["expires"]:
        raise awsauth.expired_token(service)


def judge(entry: dict, service: str, action: str, resource: str, ctx: dict[str, str]) -> None:
    decision = awsauth.decide(entry["statements"], action, resource, ctx)
    if decision != "allow":
        raise awsauth.access_denied(service, entry["principal"], action, resource, decision)


def iam_check_send_command(entry: dict, req: dict, region: str) -> None:
    """SendCommand is authorised against the document ARN and every instance ARN
    it would reach (Service Authorization Reference, Systems Manager:
    SendCommand resources document*, instance, managed-instance; condition key
    ssm:resourceTag/${TagKey}). One refused instance refuses the whole call."""
    name = req.get("DocumentName")
    if not isinstance(name, str) or not name:
        return  # the handler answers ValidationException
    partition = partition_of(region)
    resources: list[tuple[str, dict]] = []
    doc_arn = awsauth.document_arn(name, region, ACCOUNT_ID)
    resources.append((doc_arn, {"account": doc_arn.split(":")[4], "tags": None, "doc": name}))
    for iid, inst in send_command_instances(req, region):
        arn = f"arn:{partition}:ec2:{region}:{ACCOUNT_ID}:instance/{iid}"
        resources.append((arn, {"account": ACCOUNT_ID, "tags": inst.tags if inst else {}}))
    for arn, facts in resources:
        ctx = request_context(region, entry)
        if facts["account"]:
            ctx["aws:resourceaccount"] = facts["account"]
        tags = facts["tags"]
        if tags is None:  # the document: its own tags, looked up only when asked for
            wants_tags = any("resourcetag/" in json.dumps(st.get("Condition") or {}).lower()
                             for st in entry["statements"])
            tags = document_tags(facts["doc"], region) if wants_tags else {}
        for k, v in tags.items():
            ctx[f"ssm:resourcetag/{k}".lower()] = v
            ctx[f"aws:resourcetag/{k}".lower()] = v
        judge(entry, "ssm", "ssm:SendCommand", arn, ctx)


def s3_target(path: str) -> tuple[str, str]:
    parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def verify_signature(entry: dict, service: str, method: str, raw_path: str, headers,
                     body: bytes | None) -> None:
    """The SigV4 signature of a header-signed request, with the key's secret
    (awsauth.header_signature_matches). Keys registered without a secret, and
    requests whose payload hash is unknown (a streamed body without
    x-amz-content-sha256), are not judged."""
    auth = headers.get("Authorization", "")
    if not entry.get("secret") or not auth.startswith("AWS4-HMAC-SHA256"):
        return
    body_hash = hashlib.sha256(body).hexdigest() if body is not None else None
    ok = awsauth.header_signature_matches(method, raw_path, headers.get_all, body_hash,
                                          entry["secret"], service, auth)
    if ok is False:
        raise awsauth.signature_mismatch(service)


def authorize(service: str, op: str, region: str, headers, query: dict, path: str,
              body: bytes | None, secure: bool, method: str = "", raw_path: str = "",
              peer: str = "127.0.0.1") -> None:
    """Raises awsauth.AwsError unless the request's key may make it. Requests
    with unknown keys, and the emulator's own STS operations, pass here."""
    key = access_key_of(headers, query)
    entry = identity(key) if key else None
    if entry is None:
        if service == "s3":  # a bucket policy's explicit deny applies to everyone it names
            bucket, obj = s3_target(path)
            action, resource, extra = awsauth.s3_request(op.split(":", 1)[1], bucket, obj, query,
                                                         partition_of(region))
            judge_s3(None, bucket, region, action, resource,
                     {**extra, **rest_context(headers, query, peer)}, key)
        return
    token = headers.get("X-Amz-Security-Token") or (query.get("X-Amz-Security-Token") or [None])[0]
    check_session(entry, service, token)
    if method:
        verify_signature(entry, service, method, raw_path, headers, body)
    ctx = request_context(region, entry, secure)
    name = op.split(":", 1)[1]
    if service == "s3":
        bucket, obj = s3_target(path)
        action, resource, extra = awsauth.s3_request(name, bucket, obj, query, partition_of(region))
        judge_s3(entry, bucket, region, action, resource,
                 {**ctx, **extra, **rest_context(headers, query, peer)})
    elif service == "ssm":
        if name == "SendCommand":
            return  # judged per instance in Handler.emulate, after validation
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = {}
        action, resources = awsauth.ssm_request(name, req if isinstance(req, dict) else {},
                                                region, ACCOUNT_ID)
        for r in resources:
            judge(entry, "ssm", action, r, ctx)
    elif service == "ec2":
        action, resources = awsauth.ec2_request(name)
        for r in resources:
            judge(entry, "ec2", action, r, ctx)
    elif service == "sts":
        # GetCallerIdentity needs no permission ("No permissions are required to
        # perform this operation", STS API reference); AssumeRole is judged in sts_assume_role.
        if name not in ("GetCallerIdentity", "AssumeRole"):
            judge(entry, "sts", "sts:" + name, "*", ctx)
    else:
        judge(entry, service, f"{service}:{name}", "*", ctx)


# Bucket policies live here, not in moto: moto judges a stored bucket policy
# itself on the requests it answers, with no request context (every condition
# key absent), so a Deny conditioned on aws:SourceIp, s3:authType or
# aws:SourceVpce would refuse the laptop's own PutObject that S3 lets through.
# The front server answers Put/Get/DeleteBucketPolicy (bucket_policy_op) and
# judges every S3 request against these statements (judge_s3).


def bucket_policy(bucket: str, region: str) -> list[dict] | None:
    """The bucket's policy statements, or None without a policy."""
    with EMU.state.lock:
        text = EMU.bucket_policy_text.get(bucket)
    if not text:
        return None
    try:
        return awsauth.statements(text, kind="resource")
    except awsauth.PolicyError as e:
        # Refuse rather than misjudge: a policy the emulator cannot read denies.
        return [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
                 "Sid": f"flamefire emulator cannot evaluate this bucket policy: {e}"}]


def bucket_policy_op(op: str, bucket: str, region: str, body: bytes) -> tuple[int, bytes]:
    """PutBucketPolicy / GetBucketPolicy / DeleteBucketPolicy (S3 API
    Reference): 204, 200 with the policy, or an S3 error. The bucket must
    exist (moto answers HeadBucket)."""
    try:
        EMU.moto.client("s3", region).head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError:
        raise awsauth.AwsError("NoSuchBucket", "The specified bucket does not exist", 404,
                               {"BucketName": bucket})
    if op == "s3:PutBucketPolicy":
        text = body.decode("utf-8", "replace")
        try:
            json.loads(text)
        except ValueError:
            raise awsauth.AwsError("MalformedPolicy",
                                   "Policies must be valid JSON and the first byte must be '{'", 400)
        with EMU.state.lock:
            EMU.bucket_policy_text[bucket] = text
        return 204, b""
    with EMU.state.lock:
        text = EMU.bucket_policy_text.get(bucket)
        if op == "s3:DeleteBucketPolicy":
            EMU.bucket_policy_text.pop(bucket, None)
            return 204, b""
    if text is None:
        raise awsauth.AwsError("NoSuchBucketPolicy", "The bucket policy does not exist", 404,
                               {"BucketName": bucket})
    return 200, text.encode()


def judge_s3(entry: dict | None, bucket: str, region: str, action: str, resource: str,
             ctx: dict[str, str], key: str = "") -> None:
    """S3 authorisation: the caller's identity policy and the bucket policy
    together (same account: a deny in either wins, an allow in either allows).
    Callers the emulator does not know meet only the bucket policy's denies."""
    stmts = bucket_policy(bucket, region) if bucket else None
    if entry is None:
        if stmts:
            ctx = {**ctx, "aws:securetransport": "true"}
            caller = f"arn:aws:iam::{ACCOUNT_ID}:user/{key or 'anonymous'}"
            if awsauth.decide_resource_policy(stmts, [caller], ACCOUNT_ID, action, resource, ctx) == "deny":
                raise awsauth.access_denied("s3", caller, action, resource, "deny",
                                            "a resource-based policy")
        return
    identity_decision = awsauth.decide(entry["statements"], action, resource, ctx)
    principals = [entry["principal"]] + ([entry["role_arn"]] if entry.get("role_arn") else [])
    resource_decision = awsauth.decide_resource_policy(stmts or [], principals, ACCOUNT_ID, action,
                                                       resource, ctx)
    decision = awsauth.combine(identity_decision, resource_decision)
    if decision != "allow":
        which = "a resource-based policy" if resource_decision == "deny" else "an identity-based policy"
        raise awsauth.access_denied("s3", entry["principal"], action, resource, decision, which)


def forget_bucket_policy(bucket: str) -> None:
    with EMU.state.lock:
        EMU.bucket_policy_text.pop(bucket, None)


def signature_age_ms(amz_date: str) -> str:
    """s3:signatureAge: milliseconds since the request's x-amz-date (S3 API
    Reference, "Bucket policy examples using Signature Version 4 related
    condition keys": "The length of time, in milliseconds, that a signature is
    valid in an authenticated request")."""
    try:
        signed = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return "0"
    return str(max(0, int((now() - signed) * 1000)))


def rest_context(headers, query: dict, peer: str) -> dict[str, str]:
    """What S3 knows of a REST request beyond its identity: how it was signed
    (s3:authType REST-HEADER or REST-QUERY-STRING, s3:signatureversion,
    s3:signatureAge) and where it came from (aws:SourceIp: the laptop, here
    the TCP peer)."""
    auth = headers.get("Authorization", "")
    qdate = (query.get("X-Amz-Date") or [None])[0]
    ctx = {"aws:sourceip": peer}
    if auth.startswith("AWS4-HMAC-SHA256"):
        ctx.update({"s3:authtype": "REST-HEADER", "s3:signatureversion": "AWS4-HMAC-SHA256",
                    "s3:signatureage": signature_age_ms(headers.get("X-Amz-Date", ""))})
    elif qdate:
        ctx.update({"s3:authtype": "REST-QUERY-STRING", "s3:signatureversion": "AWS4-HMAC-SHA256",
                    "s3:signatureage": signature_age_ms(qdate)})
    return ctx
