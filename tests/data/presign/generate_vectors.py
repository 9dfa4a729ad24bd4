#!/usr/bin/env python3
"""Write tests/data/presign/vectors.json: S3 presigned-POST test vectors from botocore.

    .venv/bin/python tests/data/presign/generate_vectors.py          # rewrite
    .venv/bin/python tests/data/presign/generate_vectors.py --check  # fail if stale

botocore (pinned in tests/emulator/requirements.txt) signs with its clock frozen
at 2026-11-27T08:00:00Z; nothing goes on the network. The Rust side builds the
same policy and must produce the same base64 `policy` and `x-amz-signature`
byte for byte. README.md beside this file explains botocore's serialization.

Cases:
  a_no_token       AKIDEXAMPLE credentials, no session token
  b_session_token  the same with a session token
  c_client_api     for reference only: botocore's client-level
                   generate_presigned_post(Bucket, Key=".../${filename}", ...),
                   which appends {"bucket"} and ["starts-with", "$key", ...]
                   itself after the caller's conditions.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
from unittest import mock

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)

import boto3  # noqa: E402
import botocore  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.config  # noqa: E402
import botocore.credentials  # noqa: E402
import botocore.hooks  # noqa: E402
import botocore.model  # noqa: E402
import botocore.signers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vectors.json")

FROZEN = datetime.datetime(2026, 11, 27, 8, 0, 0)  # naive UTC, like botocore's own clock
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN+/="
REGION = "eu-west-1"
ENDPOINT = f"https://s3.{REGION}.amazonaws.com"
BUCKET = "flamefire-test"
KEY_PREFIX = "flamefire/RUN1/"
EXPIRES_IN = 900
MAX_BYTES = 536870912


def conditions() -> list:
    return [
        {"bucket": BUCKET},
        ["starts-with", "$key", KEY_PREFIX],
        ["content-length-range", 1, MAX_BYTES],
    ]


def frozen_clock():
    """botocore reads the time through botocore.compat.get_current_datetime,
    imported by name into botocore.signers (policy expiration) and
    botocore.auth (x-amz-date, credential scope)."""
    fake = lambda remove_tzinfo=True: FROZEN  # noqa: E731
    return [mock.patch.object(botocore.signers, "get_current_datetime", fake),
            mock.patch.object(botocore.auth, "get_current_datetime", fake)]


def sign_exact(token: str | None) -> dict:
    """botocore's S3PostPresigner with exactly our conditions (no auto-appends)."""
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, token)
    emitter = botocore.hooks.HierarchicalEmitter()  # RequestSigner keeps only a weakref
    signer = botocore.signers.RequestSigner(
        botocore.model.ServiceId("s3"), REGION, "s3", "s3v4", creds, emitter)
    url = f"https://{BUCKET}.s3.{REGION}.amazonaws.com/"
    request_dict = {"url_path": "/", "query_string": {}, "method": "POST", "headers": {},
                    "body": b"", "url": url, "context": {}}
    return botocore.signers.S3PostPresigner(signer).generate_presigned_post(
        request_dict=request_dict,
        fields={"key": KEY_PREFIX + "${filename}"},
        conditions=conditions(),
        expires_in=EXPIRES_IN,
        region_name=REGION,
    )


def sign_client_api() -> dict:
    s3 = boto3.client(
        "s3", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(signature_version="s3v4"))
    return s3.generate_presigned_post(
        Bucket=BUCKET, Key=KEY_PREFIX + "${filename}",
        Conditions=[["content-length-range", 1, MAX_BYTES]], ExpiresIn=EXPIRES_IN)


def independent_signature(policy_b64: str, date: str) -> str:
    """SigV4 for POST: HMAC chain over the date/region/service, then the policy."""
    def h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    k = h(("AWS4" + SECRET_KEY).encode(), date[:8])
    k = h(h(h(k, REGION), "s3"), "aws4_request")
    return hmac.new(k, policy_b64.encode(), hashlib.sha256).hexdigest()


def case(name: str, token: str | None, result: dict, conds: list, note: str) -> dict:
    fields = result["fields"]
    policy_text = base64.b64decode(fields["policy"]).decode()
    policy = json.loads(policy_text)
    # Cross-checks: botocore's text is json.dumps() of the parsed policy, and the
    # signature matches an independent SigV4 computation.
    assert json.dumps(policy) == policy_text, "policy is not plain json.dumps output"
    assert independent_signature(fields["policy"], fields["x-amz-date"]) == \
        fields["x-amz-signature"], "signature mismatch"
    return {
        "name": name,
        "note": note,
        "input": {
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "session_token": token,
            "region": REGION,
            "endpoint": ENDPOINT,
            "bucket": BUCKET,
            "key_prefix": KEY_PREFIX,
            "time": FROZEN.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_in": EXPIRES_IN,
            "conditions": conds,
        },
        "output": {
            "url": result["url"],
            "fields": fields,
            "policy": fields["policy"],
            "policy_json": policy_text,
            "x-amz-signature": fields["x-amz-signature"],
        },
    }


def build() -> dict:
    patches = frozen_clock()
    for p in patches:
        p.start()
    try:
        a = sign_exact(None)
        b = sign_exact(TOKEN)
        c = sign_client_api()
    finally:
        for p in patches:
            p.stop()
    return {
        "generator": "tests/data/presign/generate_vectors.py",
        "botocore_version": botocore.__version__,
        "signature_version": "s3v4",
        "cases": [
            case("a_no_token", None, a, conditions(),
                 "botocore.signers.S3PostPresigner with exactly these conditions; botocore "
                 "appends x-amz-algorithm, x-amz-credential, x-amz-date."),
            case("b_session_token", TOKEN, b, conditions(),
                 "as a_no_token; botocore also appends x-amz-security-token (condition and "
                 "field)."),
            case("c_client_api", None, c, [["content-length-range", 1, MAX_BYTES]],
                 "reference only: client.generate_presigned_post(Bucket, Key='flamefire/RUN1/"
                 "${filename}', Conditions=[content-length-range]) appends {bucket} and "
                 "starts-with $key after the caller's conditions."),
        ],
    }


def main() -> int:
    text = json.dumps(build(), indent=2) + "\n"
    if "--check" in sys.argv[1:]:
        with open(OUT) as f:
            if f.read() != text:
                print(f"{OUT} is stale; rerun {sys.argv[0]}", file=sys.stderr)
                return 1
        print(f"{OUT} is up to date")
        return 0
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
