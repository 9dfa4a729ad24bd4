#!/usr/bin/env python3
"""The emulator is as strict as AWS: IAM on every call, STS sessions, presigned
POST verification, the HTTPS upload URL, throttling. Run against a running
emulator (scripts/test.sh does):

    FLAMEFIRE_EMULATOR_PORT=5055 .venv/bin/python tests/emulator/strict_test.py

Each check pairs a refusal with the same request allowed, so a refusal can only
come from the rule under test. Exits non-zero on the first failure.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

os.environ.update(AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL",
            "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import awsauth  # noqa: E402

PORT = int(os.environ.get("FLAMEFIRE_EMULATOR_PORT", "5055"))
ENDPOINT = f"http://127.0.0.1:{PORT}"
REGION, ACCOUNT = "us-east-1", "123456789012"
RUN = uuid.uuid4().hex[:8]
ADMIN = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
# total_max_attempts counts the first try: one request, no retry ("max_attempts": 1
# in standard mode still retried a throttled call once).
NO_RETRY = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, signature_version="s3v4",
                                  s3={"addressing_style": "path"})


def admin(method: str, path: str, body=None) -> dict:
    req = urllib.request.Request(f"{ENDPOINT}/_flamefire/{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def client(service: str, key: str, secret: str, token: str | None = None):
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                 aws_session_token=token, region_name=REGION
                                 ).client(service, endpoint_url=ENDPOINT, config=NO_RETRY)


def check(ok: bool, what: str) -> None:
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        sys.exit(1)


def error_of(call) -> tuple[str, int, str]:
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return (e.response["Error"].get("Code", ""), e.response["ResponseMetadata"]["HTTPStatusCode"],
                e.response["Error"].get("Message", ""))
    return ("", 200, "")


def fresh_key(prefix: str = "AKIA") -> str:
    return prefix + uuid.uuid4().hex[:16].upper()


def post(url: str, fields: dict, content: bytes, extra_env: dict | None = None) -> tuple[int, str]:
    """The upload as the host script makes it: curl -q with --form-string fields."""
    argv = ["curl", "-q", "-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"]
    for k, v in fields.items():
        argv += ["--form-string", f"{k}={v}"]
    path = f"/tmp/flamefire-strict-{RUN}.bin"
    with open(path, "wb") as f:
        f.write(content)
    argv += ["-F", f"file=@{path}", url]
    env = {"PATH": os.environ["PATH"], **(extra_env or {})}
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    os.unlink(path)
    body, _, status = r.stdout.rpartition("\n")
    if r.returncode != 0:
        return 0, r.stderr
    return int(status), body


def check_against_service_authorization_reference() -> None:
    """awsauth's action table agrees with the Service Authorization Reference,
    as policy-sentry ships it: each action exists, on the resource type the
    emulator judges it on, with the condition keys the emulator sets."""
    from policy_sentry.querying.actions import get_action_data

    def formats(service: str, action: str) -> dict[str, list[str]]:
        data = get_action_data(service, action) or {}
        return {e["resource_arn_format"]: e["condition_keys"] for e in data.get(service, [])}

    want = {"bucket": "arn:${Partition}:s3:::${BucketName}",
            "object": "arn:${Partition}:s3:::${BucketName}/${ObjectName}", "*": "*"}
    for op, (action, kind) in awsauth.S3_ACTIONS.items():
        found = formats("s3", action.split(":")[1])
        check(want[kind] in found, f"SAR: {op} -> {action} on {want[kind]}")
    list_keys = formats("s3", "ListBucket")[want["bucket"]]
    check({"s3:prefix", "s3:delimiter", "s3:max-keys"} <= set(list_keys),
          "SAR: s3:ListBucket has the condition keys s3:prefix, s3:delimiter, s3:max-keys")
    send = formats("ssm", "SendCommand")
    for fmt in ("arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}",
                "arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}"):
        check(fmt in send and "ssm:resourceTag/${TagKey}" in send[fmt],
              f"SAR: ssm:SendCommand is authorised on {fmt} with ssm:resourceTag/${{TagKey}}")
    for op in awsauth.SSM_DOCUMENT_OPS:
        check("arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}" in formats("ssm", op),
              f"SAR: ssm:{op} is authorised on the document")
    for op in ("ListCommands", "ListCommandInvocations", "GetCommandInvocation",
               "DescribeInstanceInformation", "CancelCommand"):
        check(list(formats("ssm", op)) == ["*"], f"SAR: ssm:{op} has no resource-level permissions")
    check(list(formats("ec2", "DescribeInstances")) == ["*"], "SAR: ec2:DescribeInstances is on *")
    check("arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}" in formats("sts", "AssumeRole"),
          "SAR: sts:AssumeRole is authorised on the role")


def check_evaluation_rules() -> None:
    """awsauth.decide on its own: the IAM evaluation rules the emulator claims."""
    allow_prefix = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                    "Condition": {"StringLike": {"s3:prefix": "flamefire/*"}}}
    d = awsauth.decide
    check(d([allow_prefix], "s3:ListBucket", "arn:aws:s3:::b", {}) == "implicit",
          "rule: a condition on an absent key is false (HeadBucket has no s3:prefix)")
    check(d([allow_prefix], "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "flamefire/r/"}) == "allow",
          "rule: ... and true when the key matches")
    if_exists = dict(allow_prefix, Condition={"StringLikeIfExists": {"s3:prefix": "flamefire/*"}})
    check(d([if_exists], "s3:ListBucket", "arn:aws:s3:::b", {}) == "allow",
          "rule: ...IfExists holds on an absent key")
    null = dict(allow_prefix, Condition={"Null": {"s3:prefix": "true"}})
    check(d([null], "s3:ListBucket", "arn:aws:s3:::b", {}) == "allow"
          and d([null], "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "x"}) == "implicit",
          "rule: Null tests presence")
    negated = dict(allow_prefix, Condition={"StringNotLike": {"s3:prefix": "secret/*"}})
    check(d([negated], "s3:ListBucket", "arn:aws:s3:::b", {}) == "allow", "rule: a negated operator holds on an absent key")
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    check(d([allow_prefix, deny], "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "flamefire/"}) == "deny",
          "rule: an explicit deny wins over an allow")
    check(d([], "ssm:SendCommand", "*", {}) == "implicit", "rule: nothing allows -> denied by default")
    check(d([{"Effect": "Allow", "Action": "SSM:sendcommand", "Resource": "arn:aws:ssm:*"}],
            "ssm:SendCommand", "arn:aws:ssm:us-east-1:1:document/d", {}) == "allow",
          "rule: actions match case-insensitively")
    check(d([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/Flamefire/*"}],
            "s3:GetObject", "arn:aws:s3:::b/flamefire/x", {}) == "implicit",
          "rule: resources match case-sensitively")
    check(awsauth.partition_of("cn-north-1") == "aws-cn" and awsauth.partition_of("us-gov-west-1") == "aws-us-gov"
          and awsauth.document_arn("d", "cn-north-1", "1") == "arn:aws-cn:ssm:cn-north-1:1:document/d",
          "rule: ARNs carry the partition")
    tag_cond = {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "arn:aws:ec2:*:*:instance/*",
                "Condition": {"StringEquals": {"ssm:resourceTag/flamefire": "enabled"}}}
    check(d([tag_cond], "ssm:SendCommand", "arn:aws:ec2:r:1:instance/i-1",
            {"ssm:resourcetag/flamefire": "enabled"}) == "allow"
          and d([tag_cond], "ssm:SendCommand", "arn:aws:ec2:r:1:instance/i-1", {}) == "implicit",
          "rule: an untagged instance fails the opt-in tag condition")


def check_signin() -> None:
    """AWS Sign-In's refresh (emu/signin.py): each DPoP rule refuses a proof
    that breaks it, and the same request with a good proof is answered."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    user = fresh_key()
    admin("POST", "iam", {"access_key_id": user, "secret_access_key": "s" * 40,
                          "principal": f"arn:aws:iam::{ACCOUNT}:user/signin-{RUN}"})
    login = admin("POST", "signin", {"access_key_id": user})
    key = serialization.load_pem_private_key(login["dpop_key"].encode(), None)
    uri = f"{ENDPOINT}/v1/token"

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    def proof(k=key, htm="POST", htu=uri, iat=None, jti=None, typ="dpop+jwt") -> str:
        n = k.public_key().public_numbers()
        head = {"typ": typ, "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256",
                "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}}
        claims = {"jti": jti or str(uuid.uuid4()), "htm": htm, "htu": htu,
                  "iat": int(time.time() if iat is None else iat)}
        msg = b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())
        r, s_ = decode_dss_signature(k.sign(msg.encode(), ec.ECDSA(hashes.SHA256())))
        return msg + "." + b64(r.to_bytes(32, "big") + s_.to_bytes(32, "big"))

    def token(refresh: str, dpop: str | None, client_id: str | None = None) -> tuple[int, dict, str]:
        body = {"clientId": client_id or login["client_id"], "grantType": "refresh_token",
                "refreshToken": refresh}
        headers = {"Content-Type": "application/json", **({"DPoP": dpop} if dpop else {})}
        req = urllib.request.Request(uri, method="POST", data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read()), ""
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers.get("x-amzn-ErrorType", "")

    refresh = login["refresh_token"]
    for why, dpop in (("no DPoP proof", None),
                      ("a proof signed by another key", proof(k=ec.generate_private_key(ec.SECP256R1()))),
                      ("htm GET", proof(htm="GET")),
                      ("htu of another path", proof(htu=f"{ENDPOINT}/v1/other")),
                      ("iat 10 minutes old", proof(iat=time.time() - 600)),
                      ("typ JWT", proof(typ="JWT")),
                      ("a tampered signature", proof()[:-4] + "AAAA")):
        status, body, shape = token(refresh, dpop)
        check((status, shape, body.get("error")) == (400, "ValidationException", "invalid_request"),
              f"Sign-In refuses {why}: {status} {shape} {body}")
    status, body, shape = token(refresh, proof(), client_id="arn:aws:signin:::devtools/cross-device")
    check((status, body.get("error")) == (400, "invalid_client"), f"... another clientId: {body}")
    replayed = proof()
    status, body, _ = token(refresh, replayed)
    check(status == 200 and body["expiresIn"] == 900 and body["tokenType"] == "aws_sigv4"
          and body["refreshToken"] != refresh, f"... and answers a good proof: {status}")
    new = body
    status, body, _ = token(new["refreshToken"], replayed)
    check(status == 400 and "replay" in body.get("message", ""), f"a proof's jti once only: {body}")
    status, body, shape = token(refresh, proof())
    check((status, shape, body.get("error")) == (400, "AccessDeniedException", "TOKEN_EXPIRED"),
          f"a spent refresh token: TOKEN_EXPIRED {status} {body}")
    sts_new = client("sts", new["accessToken"]["accessKeyId"], new["accessToken"]["secretAccessKey"],
                     new["accessToken"]["sessionToken"])
    arn = sts_new.get_caller_identity()["Arn"]
    check(arn == f"arn:aws:iam::{ACCOUNT}:user/signin-{RUN}", f"the refreshed keys are the user's: {arn}")
    old = login["access_token"]
    code, _, _ = error_of(lambda: client("sts", old["accessKeyId"], old["secretAccessKey"],
                                         old["sessionToken"]).get_caller_identity())
    check(code == "ExpiredToken", f"the expired access token is refused: {code}")
    ended = admin("POST", "signin", {"access_key_id": user, "session_seconds": 0})
    ended_key = serialization.load_pem_private_key(ended["dpop_key"].encode(), None)
    status, body, _ = token(ended["refresh_token"], proof(k=ended_key))
    check((status, body.get("error")) == (400, "TOKEN_EXPIRED"), f"a session past its 12 h: {body}")
    admin("POST", "signin/revoke", {"login_session": login["login_session"]})
    status, body, _ = token(new["refreshToken"], proof())
    check((status, body.get("error")) == (400, "TOKEN_EXPIRED"), f"a revoked session: {body}")


def main() -> None:
    check_evaluation_rules()
    check_against_service_authorization_reference()
    health = admin("GET", "health")
    check(health.get("status") == "ok", f"emulator healthy on {ENDPOINT}")
    s3_admin = client("s3", *ADMIN)
    bucket = f"strict-{RUN}"
    s3_admin.create_bucket(Bucket=bucket)
    document = f"flamefire-record-{RUN}"

    # ---- STS: a user with an MFA device, the on-call role from the Terraform templates
    user_key, user_secret = fresh_key(), "user-secret-" + RUN
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/oncall-{RUN}"
    serial = f"arn:aws:iam::{ACCOUNT}:mfa/oncall-{RUN}"
    admin("POST", "iam", {"access_key_id": user_key, "secret_access_key": user_secret,
                          "principal": user_arn, "mfa_serial": serial, "mfa_code": "123456"})
    role = admin("POST", "roles", {"terraform": {
        "role_name": f"oncall-{RUN}", "bucket": bucket, "region": REGION, "account_id": ACCOUNT,
        "document_name": document, "trusted_principal_arns": [user_arn]}})
    check(role["trust_policy"]["Statement"][0]["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
          "role rendered from terraform/policies with the module default require_mfa = true")
    sts = client("sts", user_key, user_secret)
    arn = role["role_arn"]
    code, status, msg = error_of(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="a b"))
    check(code == "ValidationError", f"RoleSessionName with a space: ValidationError ({msg})")
    code, status, msg = error_of(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="oncall"))
    check((code, status) == ("AccessDenied", 403) and "sts:AssumeRole" in msg,
          f"AssumeRole without MFA denied by the trust policy: {msg}")
    code, _, msg = error_of(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="oncall",
                                                     SerialNumber=serial, TokenCode="000000"))
    check(code == "AccessDenied" and "MultiFactorAuthentication" in msg, "a wrong MFA code is denied")
    code, _, msg = error_of(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="oncall", SerialNumber=serial,
                                                     TokenCode="123456", DurationSeconds=7200))
    check(code == "ValidationError" and "MaxSessionDuration" in msg, f"DurationSeconds above the role's max: {msg}")
    other_key = fresh_key()
    admin("POST", "iam", {"access_key_id": other_key, "secret_access_key": "x" * 20,
                          "principal": f"arn:aws:iam::{ACCOUNT}:user/stranger-{RUN}",
                          "policy": {"Version": "2012-10-17", "Statement": [
                              {"Effect": "Allow", "Action": "*", "Resource": "*"}]}})
    code, _, msg = error_of(lambda: client("sts", other_key, "x" * 20).assume_role(
        RoleArn=arn, RoleSessionName="oncall"))
    check(code == "AccessDenied", "a principal the trust policy does not name is denied, even with Allow *")
    out = sts.assume_role(RoleArn=arn, RoleSessionName="oncall", SerialNumber=serial, TokenCode="123456",
                          DurationSeconds=900)
    c = out["Credentials"]
    check(c["AccessKeyId"].startswith("ASIA") and bool(c["SessionToken"]),
          "AssumeRole with MFA issues session credentials")
    session = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    who = client("sts", *session).get_caller_identity()
    check(who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall-{RUN}/oncall",
          f"GetCallerIdentity names the assumed role: {who['Arn']}")
    code, _, _ = error_of(lambda: client("sts", c["AccessKeyId"], c["SecretAccessKey"]).get_caller_identity())
    check(code == "InvalidClientTokenId", "a session key without its token is refused")
    forged = (c["AccessKeyId"], "not-the-secret", c["SessionToken"])
    code, status, _ = error_of(lambda: client("sts", *forged).get_caller_identity())
    check((code, status) == ("SignatureDoesNotMatch", 403), "STS: a request signed with the wrong secret")
    code, status, _ = error_of(lambda: client("ssm", *forged).list_commands(MaxResults=1))
    check((code, status) == ("InvalidSignatureException", 400), "SSM: InvalidSignatureException")
    code, status, _ = error_of(lambda: client("ec2", *forged).describe_instances())
    check((code, status) == ("AuthFailure", 401), "EC2: AuthFailure")
    code, status, _ = error_of(lambda: client("s3", *forged).list_objects_v2(Bucket=bucket, Prefix="flamefire/"))
    check((code, status) == ("SignatureDoesNotMatch", 403), "S3: SignatureDoesNotMatch")

    # ---- S3 under the role: HeadBucket has no s3:prefix, ListObjectsV2 does
    s3 = client("s3", *session)
    code, status, _ = error_of(lambda: s3.head_bucket(Bucket=bucket))
    check(status == 403, "HeadBucket is denied to the on-call role (s3:ListBucket needs s3:prefix)")
    s3.list_objects_v2(Bucket=bucket, Prefix=f"flamefire/{RUN}/", MaxKeys=1)
    check(True, "ListObjectsV2 with the run's prefix is allowed")
    code, status, msg = error_of(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="other/"))
    check((code, status) == ("AccessDenied", 403) and "s3:ListBucket" in msg,
          f"ListObjectsV2 outside the prefix: AccessDenied XML ({msg})")
    code, status, _ = error_of(lambda: s3.list_objects_v2(Bucket=bucket))
    check(code == "AccessDenied", "ListObjectsV2 without a prefix: the absent key fails StringLike")
    s3.put_object(Bucket=bucket, Key=f"flamefire/{RUN}/run.json", Body=b"{}")
    code, _, _ = error_of(lambda: s3.put_object(Bucket=bucket, Key=f"elsewhere/{RUN}", Body=b"{}"))
    check(code == "AccessDenied", "PutObject outside the prefix is denied, inside allowed")

    # ---- EC2, SSM
    ec2 = client("ec2", *session)
    ec2.describe_instances()
    code, status, msg = error_of(lambda: ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1))
    check((code, status) == ("UnauthorizedOperation", 403), f"EC2 RunInstances: UnauthorizedOperation ({msg[:80]})")
    ssm = client("ssm", *session)
    code, _, msg = error_of(lambda: ssm.get_document(Name="some-other-document"))
    check(code == "AccessDeniedException" and f"document/some-other-document" in msg,
          "SSM GetDocument of another document: AccessDeniedException JSON")
    ssm.list_commands(MaxResults=1)
    check(True, "SSM ListCommands (resource *) is allowed")

    # ---- presigned POST, signed with the session, judged against the role
    def presign(prefix: str, creds=session, expires: int = 600, max_bytes: int = 1000, bkt: str = bucket):
        s = boto3.session.Session(aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                                  aws_session_token=creds[2], region_name=REGION)
        return s.client("s3", endpoint_url=ENDPOINT, config=NO_RETRY).generate_presigned_post(
            bkt, prefix + "${filename}", Fields=None, ExpiresIn=expires,
            Conditions=[{"bucket": bkt}, ["starts-with", "$key", prefix],
                        ["content-length-range", 1, max_bytes]])

    good = presign(f"flamefire/{RUN}/")
    fields = dict(good["fields"], key=f"flamefire/{RUN}/i-1/stacks.gz")
    status, body = post(good["url"], fields, b"x" * 10)
    check(status == 204, f"a valid presigned POST uploads (HTTP {status} {body[:200]})")
    status, body = post(good["url"], dict(fields, key=f"other/{RUN}"), b"x")
    check(status == 403 and "Policy Condition failed" in body and "starts-with" in body,
          "key outside starts-with: AccessDenied, Policy Condition failed")
    status, body = post(good["url"], fields, b"x" * 1001)
    check(status == 400 and "<Code>EntityTooLarge</Code>" in body and "<MaxSizeAllowed>1000<" in body,
          "content-length-range: EntityTooLarge")
    status, body = post(good["url"], dict(fields, **{"x-amz-signature": "0" * 64}), b"x")
    check(status == 403 and "SignatureDoesNotMatch" in body, "a wrong signature: SignatureDoesNotMatch")
    status, body = post(good["url"], dict(fields, **{"x-amz-date": "20200101T000000Z"}), b"x")
    check(status == 403 and "Invalid according to Policy" in body, "a changed x-amz-date fails the policy")
    status, body = post(good["url"], dict(fields, **{"x-amz-security-token": "forged"}), b"x")
    check(status == 400 and "InvalidToken" in body, "a wrong session token: InvalidToken")
    nofield = {k: v for k, v in fields.items() if k != "x-amz-security-token"}
    status, body = post(good["url"], nofield, b"x")
    check(status == 403 and "InvalidAccessKeyId" in body, "a session key without its token is unknown to S3")
    status, body = post(good["url"], dict(fields, **{"x-amz-meta-extra": "1"}), b"x")
    check(status == 403 and "Extra input fields: x-amz-meta-extra" in body, "an extra form field is refused")
    status, body = post(good["url"].replace(bucket, bucket + "-x"), fields, b"x")
    check(status == 403 and "Policy Condition failed" in body and "bucket" in body,
          "another bucket than the policy's fails the bucket condition")
    short = presign(f"flamefire/{RUN}/", expires=1)
    time.sleep(2.1)
    status, body = post(short["url"], dict(short["fields"], key=f"flamefire/{RUN}/i-2/x"), b"x")
    check(status == 403 and "Policy expired" in body, "an expired policy: AccessDenied, Policy expired")
    outside = presign("elsewhere/")
    status, body = post(outside["url"], dict(outside["fields"], key="elsewhere/x"), b"x")
    check(status == 403 and "<Code>AccessDenied</Code>" in body and "s3:PutObject" in body,
          "a policy for a prefix the role cannot write: the signer's IAM policy refuses the upload")

    # ---- a bucket policy that denies the role's uploads (resource-based explicit deny)
    deny = {"Version": "2012-10-17", "Statement": [
        {"Sid": "NoUploadsByOnCall", "Effect": "Deny", "Principal": {"AWS": arn}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/flamefire/*"}]}
    s3_admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/i-5/x"), b"x")
    check(status == 403 and "explicit deny in a resource-based policy" in body,
          "a bucket policy denying the role's uploads refuses the POST")
    code, _, msg = error_of(lambda: s3.put_object(Bucket=bucket, Key=f"flamefire/{RUN}/run2.json", Body=b"{}"))
    check(code == "AccessDenied" and "resource-based" in msg, "... and the CLI's own PutObject")
    s3_admin.delete_bucket_policy(Bucket=bucket)
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/i-5/x"), b"x")
    check(status == 204, "the same upload without the bucket policy goes through")

    # ---- the hosts' POST is judged in its own context (authType POST, the
    # host's address or VPC endpoint), not the laptop's: policies the laptop's
    # PutObject passes can refuse every host.
    ec2_admin = client("ec2", *ADMIN)
    def host(tags: dict) -> str:
        r = ec2_admin.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
        return r["Instances"][0]["InstanceId"]
    via_nat = host({"flamefire-test:source-ip": "203.0.113.7"})
    via_vpce = host({"flamefire-test:source-vpce": "vpce-0a1b2c3d"})
    def deny_unless(op: str, key: str, value: str) -> None:
        s3_admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": {op: {key: value}}}]}))
    deny_unless("NotIpAddress", "aws:SourceIp", "127.0.0.0/8")
    s3.put_object(Bucket=bucket, Key=f"flamefire/{RUN}/office.json", Body=b"{}")
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/{via_nat}/x"), b"x")
    check(status == 403 and "explicit deny in a resource-based policy" in body,
          "aws:SourceIp: the laptop's PutObject passes, the host's POST from its NAT address is refused")
    deny_unless("StringNotEquals", "s3:authType", "REST-HEADER")
    s3.put_object(Bucket=bucket, Key=f"flamefire/{RUN}/header.json", Body=b"{}")
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/{via_nat}/x"), b"x")
    check(status == 403, "s3:authType: REST-HEADER passes, the host's POST (authType POST) is refused")
    deny_unless("NumericGreaterThan", "s3:signatureAge", "0")
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/{via_nat}/x"), b"x")
    check(status == 403, "s3:signatureAge: a POST signed before it is sent has an age")
    deny_unless("StringNotEquals", "aws:SourceVpce", "vpce-0a1b2c3d")
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/{via_vpce}/x"), b"x")
    check(status == 204, f"aws:SourceVpce: the host behind the endpoint uploads (HTTP {status} {body[:200]})")
    code, _, msg = error_of(lambda: s3.put_object(Bucket=bucket, Key=f"flamefire/{RUN}/o.json", Body=b"{}"))
    check(code == "AccessDenied", "... and the laptop, not behind it, is refused")
    deny_unless("IpAddress", "aws:SourceIp", "0.0.0.0/0")
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/{via_vpce}/x"), b"x")
    check(status == 204, "aws:SourceIp is absent for a request through a VPC endpoint")
    s3_admin.delete_bucket_policy(Bucket=bucket)
    module = json.loads(open(os.path.join(HERE, "..", "..", "terraform", "policies",
                                          "bucket-policy.json.tftpl")).read()
                        .replace("${partition}", "aws").replace("${bucket}", bucket))
    s3_admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps(module))
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/i-6/x"), b"x")
    check(status == 204, "the module's own bucket policy (deny non-TLS) lets the HTTPS-standing upload in")
    check(json.loads(s3_admin.get_bucket_policy(Bucket=bucket)["Policy"]) == module,
          "GetBucketPolicy answers the policy put")
    s3_admin.delete_bucket_policy(Bucket=bucket)
    code, status, _ = error_of(lambda: s3_admin.get_bucket_policy(Bucket=bucket))
    check((code, status) == ("NoSuchBucketPolicy", 404), "GetBucketPolicy after the delete: NoSuchBucketPolicy")

    # ---- the real URL: https://BUCKET.s3.REGION.amazonaws.com/ through the emulator's proxy + test CA
    tls = admin("GET", "tls")
    env = {"https_proxy": tls["proxy"], "CURL_CA_BUNDLE": tls["ca"]}
    real_url = f"https://{bucket}.s3.{REGION}.amazonaws.com/"
    status, body = post(real_url, dict(fields, key=f"flamefire/{RUN}/i-3/stacks.gz"), b"y" * 5, env)
    check(status == 204, f"upload to {real_url} over TLS with the test CA (HTTP {status} {body[:200]})")
    got = s3_admin.get_object(Bucket=bucket, Key=f"flamefire/{RUN}/i-3/stacks.gz")["Body"].read()
    check(got == b"y" * 5, "the virtual-hosted upload landed in the bucket")
    status, body = post(real_url, fields, b"y", {"https_proxy": tls["proxy"]})
    check(status == 0, "without the test CA curl refuses the certificate")
    dotted = f"strict.dots.{RUN}"
    s3_admin.create_bucket(Bucket=dotted)
    dot = presign("flamefire/", creds=(ADMIN[0], ADMIN[1], None), bkt=dotted)
    dot_fields = dict(dot["fields"], key="flamefire/x")
    status, body = post(f"https://{dotted}.s3.{REGION}.amazonaws.com/", dot_fields, b"x", env)
    check(status == 0 and "certificate" in body.lower(),
          f"a dotted bucket's virtual-hosted URL fails TLS, as S3's wildcard certificate does ({body.strip()[:90]})")
    status, body = post(f"https://s3.{REGION}.amazonaws.com/{dotted}/", dot_fields, b"x", env)
    check(status == 204, f"... and its path-style URL works (HTTP {status} {body[:200]})")

    # ---- a bucket in another region
    far = f"strict-eu-{RUN}"
    s3_admin.create_bucket(Bucket=far, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    raw = subprocess.run(["curl", "-sS", "-I", "-o", "/dev/null", "-w", "%{http_code}", "-D", "-",
                          "-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/"
                          "us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
                          f"{ENDPOINT}/{far}"], capture_output=True, text=True).stdout
    check("x-amz-bucket-region: eu-west-1" in raw.lower() and raw.rstrip().endswith("400"),
          "HeadBucket signed for us-east-1: bodiless 400 with x-amz-bucket-region")
    raw = subprocess.run(["curl", "-sS", "-D", "-", "-H", "Authorization: AWS4-HMAC-SHA256 Credential="
                          "AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, "
                          "Signature=0", f"{ENDPOINT}/{far}?list-type=2&max-keys=1"],
                         capture_output=True, text=True).stdout
    check(" 400 " in raw.splitlines()[0] and "<Code>AuthorizationHeaderMalformed</Code>" in raw
          and "expecting 'eu-west-1'" in raw and "<Region>eu-west-1</Region>" in raw,
          "ListObjectsV2 signed for us-east-1: AuthorizationHeaderMalformed with the Region")
    client("s3", *ADMIN).list_objects_v2(Bucket=far, MaxKeys=1)
    check(True, "... which botocore's S3 region redirector follows (the error shape is the real one)")
    boto3.session.Session(aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1],
                          region_name="eu-west-1").client(
        "s3", endpoint_url=ENDPOINT, config=NO_RETRY).list_objects_v2(Bucket=far, MaxKeys=1)
    check(True, "... and signed for eu-west-1 it works")
    east = presign("flamefire/", creds=(ADMIN[0], ADMIN[1], None), bkt=far)
    far_fields = dict(east["fields"], key="flamefire/x")
    status, body = post(f"https://{far}.s3.{REGION}.amazonaws.com/", far_fields, b"x", env)
    check(status == 301 and "<Code>PermanentRedirect</Code>" in body
          and f"<Endpoint>{far}.s3.eu-west-1.amazonaws.com</Endpoint>" in body,
          "a POST to the us-east-1 endpoint of an eu-west-1 bucket: 301 PermanentRedirect")
    status, body = post(f"https://{far}.s3.eu-west-1.amazonaws.com/", far_fields, b"x", env)
    check(status == 400 and "AuthorizationQueryParametersError" in body,
          "a POST signed for us-east-1 at the bucket's own endpoint: AuthorizationQueryParametersError")

    # ---- the session expires during the run
    admin("POST", "iam/expire", {"access_key_id": session[0], "in_seconds": 0})
    status, body = post(good["url"], dict(fields, key=f"flamefire/{RUN}/i-4/x"), b"x")
    check(status == 400 and "<Code>ExpiredToken</Code>" in body, "upload after the session expired: ExpiredToken")
    code, _, _ = error_of(lambda: ssm.list_commands(MaxResults=1))
    check(code == "ExpiredTokenException", "SSM after the session expired: ExpiredTokenException")

    # ---- botocore's own POST vectors verify with the emulator's signature check
    vectors = json.load(open(os.path.join(HERE, "..", "data", "presign", "vectors.json")))
    for case in vectors["cases"]:
        i, o = case["input"], case["output"]["fields"]
        sig = awsauth.post_signature(i["secret_access_key"], o["x-amz-credential"], o["policy"])
        check(sig == o["x-amz-signature"], f"botocore vector {case['name']}: signature verifies")

    # ---- throttling: token bucket per action, each service's error shape
    admin("POST", "throttle", {"limits": "ssm:ListCommands=0.01/1,s3:ListObjectsV2=0.01/1,"
                                         "ec2:DescribeInstances=0.01/1"})
    try:
        adm_ssm, adm_ec2 = client("ssm", *ADMIN), client("ec2", *ADMIN)
        adm_ssm.list_commands(MaxResults=1)
        code, status, _ = error_of(lambda: adm_ssm.list_commands(MaxResults=1))
        check((code, status) == ("ThrottlingException", 400), "SSM over its rate: ThrottlingException 400")
        s3_admin_nr = client("s3", *ADMIN)
        s3_admin_nr.list_objects_v2(Bucket=bucket)
        code, status, _ = error_of(lambda: s3_admin_nr.list_objects_v2(Bucket=bucket))
        check((code, status) == ("SlowDown", 503), "S3 over its rate: SlowDown 503")
        adm_ec2.describe_instances()
        code, status, _ = error_of(lambda: adm_ec2.describe_instances())
        check((code, status) == ("RequestLimitExceeded", 503), "EC2 over its rate: RequestLimitExceeded 503")
        adm_ssm.describe_instance_information()
        check(True, "actions without a limit are not throttled")
    finally:
        admin("DELETE", "throttle")
    # Limits for one key leave every other key alone.
    admin("POST", "throttle", {"limits": "ssm:*=0.01/1", "access_key_id": other_key})
    try:
        mine = client("ssm", other_key, "x" * 20)
        mine.list_commands(MaxResults=1)
        code, _, _ = error_of(lambda: mine.list_commands(MaxResults=1))
        check(code == "ThrottlingException", "a key's own limit throttles it")
        adm_ssm.list_commands(MaxResults=1)
        adm_ssm.list_commands(MaxResults=1)
        check(True, "... and no other key")
        got = admin("GET", f"throttle?access_key_id={other_key}")
        check(got["throttled"].get("ssm:ListCommands", 0) >= 1, f"throttled requests are counted: {got}")
    finally:
        admin("DELETE", f"throttle?access_key_id={other_key}")
    # A share refuses exactly that share of an operation's requests, spread
    # evenly and starting with the first (the fleet test's "30 % throttled").
    admin("POST", "throttle", {"limits": "ssm:ListCommands=30%", "access_key_id": other_key})
    try:
        refused = [error_of(lambda: mine.list_commands(MaxResults=1))[0] == "ThrottlingException"
                   for _ in range(10)]
        check(refused == [True, False, False, True, False, False, True, False, False, False],
              f"a 30% share refuses requests 1, 4 and 7 of 10: {refused}")
        code, _, _ = error_of(lambda: mine.describe_instance_information())
        check(code == "", "... of that operation only")
    finally:
        admin("DELETE", f"throttle?access_key_id={other_key}")
    check_signin()
    print("PASS all")


if __name__ == "__main__":
    main()
