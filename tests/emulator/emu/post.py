"""Presigned POST uploads: signature, policy and network checks."""

from __future__ import annotations

import awsauth

from .config import TAG_SOURCE_IP, TAG_SOURCE_VPCE, now
from .iam import identity, judge_s3, partition_of, request_context, s3_target, signature_age_ms
from .state import EMU


# ---- presigned POST uploads


def post_secret(key: str):
    """awsauth.verify_post's view of the key registry: (secret, token, expires)."""
    entry = identity(key)
    if entry is None or not entry.get("secret"):
        return None
    return entry["secret"], entry.get("token"), entry.get("expires")


def post_network_context(key: str, region: str, peer: str) -> dict[str, str]:
    """Where S3 sees a host's POST come from. The POST is the host's, not the
    laptop's: its address or VPC endpoint is the host's network path, which
    the instance's test tags describe (the key names the instance,
    `<prefix><run-id>/<instance-id>/<file>`):
      - flamefire-test:source-vpce=vpce-...: through that VPC endpoint, so
        aws:SourceVpce, aws:SourceVpc and aws:VpcSourceIp (the private IP) are
        present and aws:SourceIp is not (IAM User Guide, global condition keys:
        aws:SourceIp "If the request comes from a host that uses an Amazon VPC
        endpoint, then the aws:SourceIp key is not available");
      - flamefire-test:source-ip=ADDR: over the internet (NAT, public IP);
      - neither: the TCP peer, as for the laptop's own requests."""
    parts = key.split("/")
    inst = EMU.moto.instance(region, parts[-2]) if len(parts) >= 2 and parts[-2].startswith("i-") else None
    tags = inst.tags if inst is not None else {}
    vpce = tags.get(TAG_SOURCE_VPCE, "").strip()
    if vpce:
        ctx = {"aws:sourcevpce": vpce}
        if inst.raw.get("VpcId"):
            ctx["aws:sourcevpc"] = inst.raw["VpcId"]
        if inst.raw.get("PrivateIpAddress"):
            ctx["aws:vpcsourceip"] = inst.raw["PrivateIpAddress"]
        return ctx
    return {"aws:sourceip": tags.get(TAG_SOURCE_IP, "").strip() or peer}


def verify_post_object(path: str, headers, body: bytes, secure: bool, peer: str = "127.0.0.1") -> str:
    """A presigned POST as S3 judges it: the form (awsauth.verify_post), then the
    signer's identity policy for s3:PutObject on the object (a presigned request
    acts with the permissions of the credentials that signed it:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html,
    "the presigned URL ... uses the permissions of the IAM principal who created it"),
    and the bucket policy, in the POST's own context: s3:authType POST, its
    signature's age and the host's network path (post_network_context): a
    bucket policy or endpoint rule that the laptop's PutObject passes can
    refuse every host (https://docs.aws.amazon.com/AmazonS3/latest/API/bucket-policy-s3-sigv4-conditions.html).
    Keys the emulator does not know: the policy and its conditions are checked,
    the signature cannot be (see README)."""
    bucket, _ = s3_target(path)
    fields, content, filename = awsauth.parse_multipart(body, headers.get("Content-Type", ""))
    if content is None:
        raise awsauth.AwsError("InvalidArgument", "POST requires exactly one file upload per request.",
                               400, {"ArgumentName": "file"})
    form = {n.lower(): v.decode("utf-8", "replace") for n, v in fields}
    key_id = form.get("x-amz-credential", "").split("/")[0]
    if identity(key_id) is not None:
        checked = awsauth.verify_post(fields, len(content), filename, bucket, post_secret, now())
    else:
        # A signer the emulator was never told about: no secret to check the
        # signature with; the policy, its expiry and conditions are still checked.
        checked = awsauth.verify_post(fields, len(content), filename, bucket,
                                      lambda k: None, now(), check_signature=False)
    region = checked["credential"].split("/")[2]
    post_ctx = {"s3:authtype": "POST", "s3:signatureversion": "AWS4-HMAC-SHA256",
                "s3:signatureage": signature_age_ms(form.get("x-amz-date", "")),
                **post_network_context(checked["key"], region, peer)}
    action, resource, _ = awsauth.s3_request("PostObject", bucket, checked["key"], {},
                                             partition_of(region))
    entry = identity(checked["access_key_id"])
    if entry is not None:
        ctx = request_context(region, entry, secure)
        judge_s3(entry, bucket, region, action, resource, {**ctx, **post_ctx})
    else:
        judge_s3(None, bucket, region, action, resource, post_ctx, checked["access_key_id"])
    return checked["key"]
