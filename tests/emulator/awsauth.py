"""How AWS authenticates and authorises a request, as pure functions for the
emulator's front server (the emu package): no moto, no emulator state, no I/O.

- which IAM action, resource ARNs and request-context keys each request that
  flamefire makes carries (`s3_request`, `ssm_request`, `ec2_request`);
- IAM policy evaluation (`decide`), trust policies (`trust_allows`);
- the S3 presigned POST check (`verify_post`) with SigV4 and every policy condition;
- each service's error shape (`error_body`);
- token buckets for throttling (`TokenBucket`).

Every behaviour names its source. The two main ones:
- IAM User Guide, policy evaluation logic:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- Service Authorization Reference (actions, resources, condition keys):
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import ipaddress
import json
import re
import math
import threading
import time
import uuid
from xml.sax.saxutils import escape

# --------------------------------------------------------------------------- errors


class AwsError(Exception):
    """An AWS error: code, message, HTTP status, and extra XML elements (S3)."""

    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None,
                 headers: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status
        self.extra = extra or {}
        self.headers = headers or {}


def error_body(service: str, err: AwsError) -> tuple[bytes, str, dict]:
    """(body, content type, extra headers) in the service's own error shape.

    - S3 (restXml): <Error><Code/><Message/>…<RequestId/><HostId/></Error>
      https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#RESTErrorResponses
      (a HEAD response carries no body: the front server drops it).
    - EC2 (ec2 query): <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
      https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html#api-error-response
    - STS (awsQuery): <ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>
      https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html
    - SSM (awsJson1.1): {"__type": code, "message": …} with x-amzn-ErrorType
      https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html
    """
    rid = str(uuid.uuid4())
    if service == "s3":
        extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in err.extra.items())
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message>"
                f"{extra}<RequestId>{rid[:16].upper()}</RequestId><HostId>{rid}</HostId></Error>")
        return body.encode(), "application/xml", {"x-amz-request-id": rid[:16].upper(), **err.headers}
    if service == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Response><Errors><Error><Code>{escape(err.code)}</Code><Message>"
                f"{escape(err.message)}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return body.encode(), "text/xml;charset=UTF-8", {}
    if service == "sts":
        body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<Error><Type>Sender</Type><Code>{escape(err.code)}</Code><Message>"
                f"{escape(err.message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        return body.encode(), "text/xml", {}
    body = json.dumps({"__type": err.code, "message": err.message})
    return body.encode(), "application/x-amz-json-1.1", {"x-amzn-ErrorType": err.code}


def access_denied(service: str, principal: str, action: str, resource: str, decision: str,
                  policy: str = "an identity-based policy") -> AwsError:
    """AccessDenied as each service words it. The message format ("User: … is not
    authorized to perform: … on resource: … because no identity-based policy
    allows …" / "with an explicit deny in an identity-based policy") is IAM's:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html"""
    why = (f"with an explicit deny in {policy}" if decision == "deny"
           else f"because no identity-based policy allows the {action} action")
    on = f" on resource: {resource}" if resource != "*" else ""
    text = f"User: {principal} is not authorized to perform: {action}{on} {why}"
    if service == "s3":
        # S3 AccessDenied is 403 (ErrorResponses.html: "AccessDenied … 403 Forbidden").
        return AwsError("AccessDenied", text, 403)
    if service == "ec2":
        # EC2: UnauthorizedOperation, 403 (errors-overview.html, client error codes).
        return AwsError("UnauthorizedOperation",
                        f"You are not authorized to perform this operation. {text}", 403)
    if service == "sts":
        return AwsError("AccessDenied", text, 403)
    # SSM: AccessDeniedException, HTTP 400 (CommonErrors: "AccessDeniedException … 400").
    return AwsError("AccessDeniedException", text, 400)


def wrong_region(bucket: str, bucket_region: str, host_region: str | None,
                 signing_region: str, presigned: bool) -> AwsError | None:
    """A request that reaches a bucket in another region, or is signed for one.
    - another regional endpoint: 301 PermanentRedirect "The bucket you are
      attempting to access must be addressed using the specified endpoint…"
      with Endpoint and Bucket (ErrorResponses.html: PermanentRedirect, 301);
    - signed for another region: 400 AuthorizationHeaderMalformed "The
      authorization header is malformed; the region 'X' is wrong; expecting
      'Y'" with Region (as S3 answers, minio/s3verify#128); for a credential in
      the query or form, AuthorizationQueryParametersError "Error parsing the
      X-Amz-Credential parameter; the region 'X' is wrong; expecting 'Y'"
      (bigassforce/aws-sdk#5).
    Both carry x-amz-bucket-region, as HeadBucket does "regardless of the
    permissions on the bucket" (HeadBucket API); a HEAD gets no body."""
    headers = {"x-amz-bucket-region": bucket_region}
    if host_region and host_region != bucket_region:
        return AwsError("PermanentRedirect", "The bucket you are attempting to access must be "
                        "addressed using the specified endpoint. Please send all future requests to "
                        "this endpoint.", 301,
                        {"Endpoint": f"{bucket}.s3.{bucket_region}.amazonaws.com", "Bucket": bucket},
                        headers)
    if signing_region and signing_region != bucket_region:
        if presigned:
            return AwsError("AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential "
                            f"parameter; the region '{signing_region}' is wrong; expecting "
                            f"'{bucket_region}'", 400, {"Region": bucket_region}, headers)
        return AwsError("AuthorizationHeaderMalformed", "The authorization header is malformed; the "
                        f"region '{signing_region}' is wrong; expecting '{bucket_region}'", 400,
                        {"Region": bucket_region}, headers)
    return None


def expired_token(service: str) -> AwsError:
    """Requests signed with an expired session. Codes seen from each service:
    S3 `ExpiredToken` 400 "The provided token has expired." (romange/helio#15),
    SSM `ExpiredTokenException` (guardian/ssm-scala#33, CommonErrors),
    STS `ExpiredToken` 403 (jenkinsci/ec2-plugin#1008), EC2 `RequestExpired`
    (aws/aws-sdk-go#253 lists the three codes SDKs treat as expired credentials)."""
    if service == "s3":
        return AwsError("ExpiredToken", "The provided token has expired.", 400)
    if service == "ec2":
        return AwsError("RequestExpired", "Request has expired.", 400)
    if service == "sts":
        return AwsError("ExpiredToken", "The security token included in the request is expired", 403)
    return AwsError("ExpiredTokenException", "The security token included in the request is expired", 400)


def invalid_token(service: str) -> AwsError:
    """A session key used with a missing or wrong token (CommonErrors:
    InvalidClientTokenId 403 / UnrecognizedClientException for awsJson; S3:
    InvalidToken 400 "The provided token is malformed or otherwise invalid.")."""
    if service == "s3":
        return AwsError("InvalidToken", "The provided token is malformed or otherwise invalid.", 400)
    if service == "ssm":
        return AwsError("UnrecognizedClientException", "The security token included in the request is invalid.", 400)
    if service == "ec2":
        return AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
    return AwsError("InvalidClientTokenId", "The security token included in the request is invalid.", 403)


# --------------------------------------------------------------------------- IAM evaluation

# Condition operators evaluated here; `...IfExists` of the String/Arn/Bool ones too.
# Anything else is refused when a policy is registered, rather than misjudged.
STRING_OPS = ("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase",
              "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
              "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike", "Bool")
NUMERIC_OPS = ("NumericEquals", "NumericNotEquals", "NumericLessThan",
               "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals")
# aws:SourceIp and aws:VpcSourceIp are compared with IpAddress/NotIpAddress
# (CIDR; IAM User Guide, "IP address condition operators").
IP_OPS = ("IpAddress", "NotIpAddress")
CONDITION_OPS = STRING_OPS + NUMERIC_OPS + IP_OPS + ("Null",)


class PolicyError(ValueError):
    pass


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: `*` any run of characters, `?` one character; nothing else.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards"""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S | (re.I if ignore_case else 0)) is not None


def statements(policy, kind: str = "identity") -> list[dict]:
    """The policy's statements, or PolicyError naming what cannot be judged here.
    kind: "identity" (no Principal allowed), "trust" (Principal required) or
    "resource" (a bucket policy: Principal and Resource required)."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as e:
            raise PolicyError(f"policy is not JSON: {e}")
    if not isinstance(policy, dict) or "Statement" not in policy:
        raise PolicyError("policy must be an object with a Statement")
    if "${" in json.dumps(policy):
        raise PolicyError("policy variables (${...}) are not evaluated here; render the template first")
    out = as_list(policy["Statement"])
    for i, st in enumerate(out):
        where = f"Statement[{i}]" + (f" ({st.get('Sid')})" if isinstance(st, dict) and st.get("Sid") else "")
        if not isinstance(st, dict):
            raise PolicyError(f"{where} is not an object")
        if st.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be Allow or Deny")
        if ("Action" in st) == ("NotAction" in st):
            raise PolicyError(f"{where}: exactly one of Action, NotAction")
        if kind == "resource":
            if ("Resource" in st) == ("NotResource" in st):
                raise PolicyError(f"{where}: exactly one of Resource, NotResource")
            if "Principal" not in st:
                raise PolicyError(f"{where}: a resource-based policy statement needs a Principal")
        elif kind == "identity":
            if ("Resource" in st) == ("NotResource" in st):
                raise PolicyError(f"{where}: exactly one of Resource, NotResource")
            if "Principal" in st or "NotPrincipal" in st:
                raise PolicyError(f"{where}: an identity policy has no Principal")
        elif "Principal" not in st:
            raise PolicyError(f"{where}: a trust policy statement needs a Principal")
        for op, block in (st.get("Condition") or {}).items():
            base = op[:-len("IfExists")] if op.endswith("IfExists") else op
            if base not in CONDITION_OPS or (base == "Null" and base != op):
                raise PolicyError(f"{where}: condition operator {op} is not evaluated by the "
                                  f"flamefire emulator (it knows {', '.join(CONDITION_OPS)} and "
                                  "...IfExists); see tests/emulator/README.md")
            if not isinstance(block, dict):
                raise PolicyError(f"{where}: {op} must map keys to values")
    return out


def conditions_hold(conditions: dict, ctx: dict[str, str]) -> bool:
    """AND across operators and keys, OR across a key's values.

    A key absent from the request context makes a condition false, except for
    `...IfExists` operators and `Null` (IAM User Guide, "Condition operators":
    "If the key that you specify in a policy condition is not present in the
    request context, the values do not match and the condition is false",
    reference_policies_elements_condition_operators.html; negated operators
    match an absent key, reference_policies_condition-single-vs-multi-valued-context-keys).
    Keys are case-insensitive (reference_policies_elements_condition.html)."""
    for op, block in (conditions or {}).items():
        if_exists = op.endswith("IfExists")
        base = op[:-len("IfExists")] if if_exists else op
        for key, wanted in block.items():
            values = [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(wanted)]
            have = ctx.get(key.lower())
            if base == "Null":
                # "true": the key must be absent; "false": present.
                if not any((have is None) == (v.lower() == "true") for v in values):
                    return False
                continue
            negated = "Not" in base
            if have is None:
                if not (if_exists or negated):
                    return False
                continue
            if base == "Bool":
                hit = any(have.lower() == v.lower() for v in values)
            elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
                hit = any(have.lower() == v.lower() for v in values)
            elif base in ("StringEquals", "StringNotEquals"):
                hit = have in values
            elif base.startswith("Numeric"):
                try:
                    h = float(have)
                    nums = [float(v) for v in values]
                except ValueError:
                    return False
                cmp = {"NumericEquals": h.__eq__, "NumericNotEquals": h.__eq__,
                       "NumericLessThan": h.__lt__, "NumericLessThanEquals": h.__le__,
                       "NumericGreaterThan": h.__gt__, "NumericGreaterThanEquals": h.__ge__}[base]
                hit = any(cmp(n) for n in nums)
                negated = base == "NumericNotEquals"
            elif base in IP_OPS:
                try:
                    addr = ipaddress.ip_address(have)
                    hit = any(addr in ipaddress.ip_network(v, strict=False) for v in values)
                except ValueError:
                    return False
            else:  # StringLike / ArnEquals / ArnLike and their negations
                hit = any(glob(v, have) for v in values)
            if hit == negated:
                return False
    return True


def statement_applies(st: dict, action: str, resource: str, ctx: dict[str, str]) -> bool:
    if "Action" in st:
        if not any(glob(a, action, ignore_case=True) for a in as_list(st["Action"])):
            return False
    elif any(glob(a, action, ignore_case=True) for a in as_list(st["NotAction"])):
        return False
    if "Resource" in st:
        if not any(glob(r, resource) for r in as_list(st["Resource"])):
            return False
    elif "NotResource" in st and any(glob(r, resource) for r in as_list(st["NotResource"])):
        return False
    return conditions_hold(st.get("Condition") or {}, ctx)


def decide(stmts: list[dict], action: str, resource: str, ctx: dict[str, str]) -> str:
    """"deny" (explicit), "allow", or "implicit" (no statement allows).
    Evaluation logic: an explicit deny in any applicable statement wins; without
    one, an allow is needed; otherwise the request is implicitly denied."""
    applying = [st for st in stmts if statement_applies(st, action, resource, ctx)]
    if any(st["Effect"] == "Deny" for st in applying):
        return "deny"
    return "allow" if applying else "implicit"


def decide_resource_policy(stmts: list[dict], principals: list[str], account: str, action: str,
                           resource: str, ctx: dict[str, str]) -> str:
    """A resource-based policy (a bucket policy): only statements whose
    Principal names the caller (any of `principals`: a session matches its
    role's ARN too) apply. "deny", "allow" or "implicit"."""
    applying = [st for st in stmts
                if any(principal_matches(st.get("Principal"), p, account) for p in principals)
                and statement_applies(st, action, resource, ctx)]
    if any(st["Effect"] == "Deny" for st in applying):
        return "deny"
    return "allow" if applying else "implicit"


def combine(identity: str, resource: str) -> str:
    """Same-account evaluation: an explicit deny in either policy wins; else an
    allow in either allows (IAM User Guide, policy evaluation logic, "Identity-
    based policies with resource-based policies")."""
    if "deny" in (identity, resource):
        return "deny"
    return "allow" if "allow" in (identity, resource) else "implicit"


def principal_matches(principal_block, caller_arn: str, account: str) -> bool:
    """Trust-policy Principal: `{"AWS": [arns or account ids]}` or "*".
    An account id or `arn:…:iam::ACCOUNT:root` names the whole account
    (reference_policies_elements_principal.html#principal-accounts)."""
    if principal_block == "*":
        return True
    if not isinstance(principal_block, dict):
        return False
    for p in as_list(principal_block.get("AWS", [])):
        p = str(p)
        if p == "*" or p == caller_arn or p == account or re.fullmatch(rf"arn:[^:]+:iam::{account}:root", p):
            return True
    return False


def trust_allows(stmts: list[dict], caller_arn: str, account: str, role_arn: str,
                 ctx: dict[str, str]) -> tuple[str, bool]:
    """(decision, named_directly) of a role's trust policy for sts:AssumeRole.
    named_directly: the caller's ARN itself is the principal, in which case the
    caller needs no identity-policy allow in the same account; when the trust
    policy names the account, the caller's identity policy must allow it too
    (IAM User Guide, "Cross-account policy evaluation logic" and
    id_roles_create_for-user.html, "Trusting the account ... delegates")."""
    deny = allow = direct = False
    for st in stmts:
        if not principal_matches(st.get("Principal"), caller_arn, account):
            continue
        if not statement_applies({**st, "Resource": "*"}, "sts:AssumeRole", role_arn, ctx):
            continue
        if st["Effect"] == "Deny":
            deny = True
        else:
            allow = True
            direct = direct or caller_arn in [str(p) for p in as_list((st.get("Principal") or {}).get("AWS", []))]
    return ("deny" if deny else "allow" if allow else "implicit"), direct


def partition_of(region: str) -> str:
    """ARNs carry the partition: aws, aws-cn (cn-*), aws-us-gov (us-gov-*).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html"""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# --------------------------------------------------------------------------- request -> action

# Service Authorization Reference, Amazon S3 "Actions defined by Amazon S3":
# the action each REST operation needs, and the resource type it is judged on.
# HeadBucket and ListObjects(V2) both need s3:ListBucket (HeadBucket API page:
# "you must have permissions to perform the s3:ListBucket action"); HeadObject
# needs s3:GetObject; CopyObject and the multipart calls need s3:PutObject.
S3_ACTIONS = {
    "HeadBucket": ("s3:ListBucket", "bucket"),
    "ListObjectsV2": ("s3:ListBucket", "bucket"),
    "ListObjects": ("s3:ListBucket", "bucket"),
    "GetObject": ("s3:GetObject", "object"),
    "HeadObject": ("s3:GetObject", "object"),
    "PutObject": ("s3:PutObject", "object"),
    "PostObject": ("s3:PutObject", "object"),
    "CopyObject": ("s3:PutObject", "object"),
    "CreateMultipartUpload": ("s3:PutObject", "object"),
    "UploadPart": ("s3:PutObject", "object"),
    "CompleteMultipartUpload": ("s3:PutObject", "object"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "object"),
    "DeleteObject": ("s3:DeleteObject", "object"),
    # Judged once on the bucket's objects (`BUCKET/`), not per listed key: an
    # approximation (flamefire never deletes).
    "DeleteObjects": ("s3:DeleteObject", "object"),
    "CreateBucket": ("s3:CreateBucket", "bucket"),
    "DeleteBucket": ("s3:DeleteBucket", "bucket"),
    "ListBuckets": ("s3:ListAllMyBuckets", "*"),
    "GetBucketLocation": ("s3:GetBucketLocation", "bucket"),
    "GetBucketVersioning": ("s3:GetBucketVersioning", "bucket"),
    "GetBucketTagging": ("s3:GetBucketTagging", "bucket"),
    "PutBucketTagging": ("s3:PutBucketTagging", "bucket"),
    "GetBucketPolicy": ("s3:GetBucketPolicy", "bucket"),
    "PutBucketPolicy": ("s3:PutBucketPolicy", "bucket"),
    "DeleteBucketPolicy": ("s3:DeleteBucketPolicy", "bucket"),
    "GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration", "bucket"),
    "PutBucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration", "bucket"),
    "GetBucketEncryption": ("s3:GetEncryptionConfiguration", "bucket"),
    "PutBucketEncryption": ("s3:PutEncryptionConfiguration", "bucket"),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", "bucket"),
    "GetBucketAcl": ("s3:GetBucketAcl", "bucket"),
    "PutBucketAcl": ("s3:PutBucketAcl", "bucket"),
    "PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock", "bucket"),
}


def s3_request(op: str, bucket: str, key: str, query: dict, partition: str
               ) -> tuple[str, str, dict[str, str]]:
    """(action, resource ARN, S3-specific context keys) of one S3 request.

    s3:prefix, s3:delimiter and s3:max-keys are condition keys of ListBucket
    only, and only present when the request has those parameters (Service
    Authorization Reference, S3 condition keys; S3 User Guide,
    amazon-s3-policy-keys.html "Example 2: Getting a list of objects in a
    bucket with a specific prefix"). HeadBucket carries none of them."""
    action, kind = S3_ACTIONS.get(op, ("s3:" + op, "bucket" if not key else "object"))
    if kind == "*":
        resource = "*"
    elif kind == "object":
        resource = f"arn:{partition}:s3:::{bucket}/{key}"
    else:
        resource = f"arn:{partition}:s3:::{bucket}"
    ctx: dict[str, str] = {}
    if op in ("ListObjectsV2", "ListObjects"):
        for param in ("prefix", "delimiter", "max-keys"):
            if param in query:
                ctx["s3:" + param] = query[param][0]
    return action, resource, ctx


# Systems Manager operations whose only resource type is a document (Service
# Authorization Reference, AWS Systems Manager: "document*" for these actions).
SSM_DOCUMENT_OPS = ("GetDocument", "DescribeDocument", "CreateDocument", "UpdateDocument",
                    "DeleteDocument", "UpdateDocumentDefaultVersion", "ListDocumentVersions",
                    "DescribeDocumentPermission", "ModifyDocumentPermission")


def document_arn(name: str, region: str, account: str) -> str:
    """A document ARN. AWS-owned documents (AWS-*, Amazon*) have no account:
    arn:aws:ssm:REGION::document/AWS-RunShellScript (SSM User Guide,
    "Restricting access to root-level commands through SSM Agent" examples and
    sysman-ssm-docs.html)."""
    if name.startswith("arn:"):
        return name
    owner = "" if name.lower().startswith(("aws-", "amazon", "amzn")) else account
    return f"arn:{partition_of(region)}:ssm:{region}:{owner}:document/{name}"


def ssm_request(op: str, req: dict, region: str, account: str) -> tuple[str, list[str]]:
    """(action, resource ARNs) of an SSM call other than SendCommand (which the
    emulator judges per instance). Describe/List/Get of commands and
    invocations support no resource-level permissions: resource "*"."""
    action = "ssm:" + op
    if op in SSM_DOCUMENT_OPS and isinstance(req.get("Name"), str):
        return action, [document_arn(req["Name"], region, account)]
    return action, ["*"]


def ec2_request(action: str) -> tuple[str, list[str]]:
    """EC2 Describe* actions support only resource "*" (Service Authorization
    Reference, Amazon EC2: "Describe* ... resource types: none"). Other EC2
    calls are judged against "*" too: flamefire makes none, and tests seed
    instances with an unrestricted key."""
    return "ec2:" + action, ["*"]


# --------------------------------------------------------------------------- SigV4 and POST


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4 signing key: HMAC chain over date, region, service, "aws4_request".
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html"""
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


AUTH_HEADER_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                            r"\s*Signature=([0-9a-f]+)")


def _uri_encode(s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="~")


def canonical_query(raw_query: str) -> str:
    """Each name and value URI-encoded (RFC 3986 unreserved kept), sorted by
    name then value; a name without `=` has an empty value."""
    from urllib.parse import unquote
    pairs = []
    for part in filter(None, raw_query.split("&")):
        name, _, value = part.partition("=")
        pairs.append((_uri_encode(unquote(name)), _uri_encode(unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def header_signature_matches(method: str, raw_path: str, get_all, body_sha256: str | None,
                             secret: str, service: str, auth: str) -> bool | None:
    """Recomputes a header-signed SigV4 request's signature (IAM User Guide,
    "Create a signed AWS API request": canonical request, string to sign,
    signature). None when it cannot be judged (no payload hash known).
    S3's canonical URI is the path as sent; other services normalise and
    encode each segment twice ("Each path segment must be URI-encoded twice
    ... except for Amazon S3"). The payload hash is x-amz-content-sha256 when
    present (S3 always sends it), else the body's."""
    m = AUTH_HEADER_RE.search(auth)
    if not m:
        return False
    credential, signed, signature = m.groups()
    scope = credential.split("/", 1)[1] if "/" in credential else ""
    parts = scope.split("/")
    if len(parts) != 4:
        return False
    path, _, query = raw_path.partition("?")
    if service != "s3":
        from urllib.parse import unquote
        segs = [_uri_encode(_uri_encode(unquote(x))) for x in path.split("/")]
        path = "/".join(segs) or "/"
    headers = []
    for name in signed.split(";"):
        values = get_all(name) or []
        headers.append(f"{name}:" + ",".join(" ".join(v.strip().split()) for v in values))
    payload = (get_all("x-amz-content-sha256") or [None])[0] or body_sha256
    if payload is None:
        return None
    canonical = "\n".join([method, path or "/", canonical_query(query), "\n".join(headers) + "\n",
                           signed, payload])
    amz_date = (get_all("x-amz-date") or [""])[0]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                          hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret, parts[0], parts[1], parts[2])
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


def signature_mismatch(service: str) -> AwsError:
    """A request whose signature is not the one the key's secret gives:
    S3 SignatureDoesNotMatch 403 (ErrorResponses.html); awsJson services
    InvalidSignatureException 400 (SSM CommonErrors); query services
    SignatureDoesNotMatch 403 (STS CommonErrors); EC2 AuthFailure 401
    (errors-overview.html: "The provided credentials could not be validated")."""
    text = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation "
            "for details.")
    if service == "s3":
        return AwsError("SignatureDoesNotMatch", "The request signature we calculated does not match "
                        "the signature you provided. Check your key and signing method.", 403)
    if service == "ssm":
        return AwsError("InvalidSignatureException", text, 400)
    if service == "ec2":
        return AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
    return AwsError("SignatureDoesNotMatch", text, 403)


def post_signature(secret: str, credential: str, policy_b64: str) -> str:
    """The signature of a POST policy: HMAC-SHA256 of the base64 policy with the
    key for the credential's scope (S3 API, sigv4-authentication-HTTPPOST.html)."""
    parts = credential.split("/")
    key = signing_key(secret, parts[1], parts[2], parts[3])
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def parse_multipart(body: bytes, content_type: str) -> tuple[list[tuple[str, bytes]], bytes | None, str]:
    """(text fields in order, file content, file field's filename) of a
    multipart/form-data body. Fields after the file are ignored, as S3 does
    ("The file or content must be the last field in the form", RESTObjectPOST)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise AwsError("MalformedPOSTRequest",
                       "The body of your POST request is not well-formed multipart/form-data.", 400)
    delim = b"--" + m.group(1).encode()
    fields: list[tuple[str, bytes]] = []
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        content = content[:-2] if content.endswith(b"\r\n") else content
        disp = re.search(rb'content-disposition:[^\r\n]*?;\s*name="([^"]*)"', head, re.I)
        if not disp:
            continue
        name = disp.group(1).decode("utf-8", "replace")
        if name.lower() == "file":
            fn = re.search(rb';\s*filename="([^"]*)"', head)
            return fields, content, (fn.group(1).decode("utf-8", "replace") if fn else "")
        fields.append((name, content))
    return fields, None, ""


def iso8601(t: str) -> float:
    """Policy expiration (ISO 8601 UTC, with or without milliseconds)."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z", t)
    if not m:
        raise ValueError(t)
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))


def _policy_text(cond) -> str:
    """A condition as S3 echoes it in "Policy Condition failed: …"."""
    if isinstance(cond, dict):
        (k, v), = cond.items()
        return json.dumps(["eq", "$" + k, v])
    return json.dumps(cond)


def check_signer(key_id: str, credential: str, policy_b64: str, signature: str,
                 given_token: str | None, known, now: float) -> None:
    """The signer of a POST: a known key, its session token, its signature, its expiry."""
    if known is None:
        raise AwsError("InvalidAccessKeyId",
                       "The AWS Access Key Id you provided does not exist in our records.", 403,
                       {"AWSAccessKeyId": key_id})
    secret, token, expires = known
    if token is not None:
        if given_token is None:
            raise AwsError("InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist in our records.", 403,
                           {"AWSAccessKeyId": key_id})
        if not hmac.compare_digest(given_token, token):
            raise invalid_token("s3")
    elif given_token is not None:
        raise invalid_token("s3")
    if not hmac.compare_digest(post_signature(secret, credential, policy_b64), signature):
        raise AwsError("SignatureDoesNotMatch", "The request signature we calculated does not match "
                       "the signature you provided. Check your key and signing method.", 403,
                       {"AWSAccessKeyId": key_id, "StringToSign": policy_b64})
    if expires is not None and now >= expires:
        raise expired_token("s3")


def verify_post(fields: list[tuple[str, bytes]], file_size: int, filename: str, bucket: str,
                secret_for, now: float, check_signature: bool = True) -> dict:
    """Checks a presigned POST as S3 does; returns {"key", "access_key_id",
    "credential", "token"} or raises AwsError with S3's code and status.

    Sources: S3 API, "POST Policy" (sigv4-HTTPPOSTConstructPolicy.html: every
    form field except policy, x-amz-signature, file and x-ignore-* must be
    matched by a condition; exact match, starts-with, content-length-range;
    "if the field x-amz-date contains an expired date, the policy is
    considered expired"), "Authenticating Requests in Browser-Based Uploads"
    (sigv4-authentication-HTTPPOST.html), and ErrorResponses.html for the
    codes: AccessDenied 403, SignatureDoesNotMatch 403, InvalidAccessKeyId 403,
    EntityTooLarge 400, EntityTooSmall 400, InvalidPolicyDocument 400,
    ExpiredToken 400, InvalidToken 400. The "Invalid according to Policy: …"
    messages are S3's own wording (as returned by S3 to POST uploads).

    secret_for(access_key_id) -> (secret, token or None, expires or None) or None."""
    form: dict[str, str] = {}
    for name, value in fields:
        form.setdefault(name.lower(), value.decode("utf-8", "replace"))
    policy_b64 = form.get("policy")
    signature = form.get("x-amz-signature")
    credential = form.get("x-amz-credential", "")
    if policy_b64 is None or signature is None or not credential:
        missing = "policy" if policy_b64 is None else "x-amz-signature" if signature is None \
            else "x-amz-credential"
        raise AwsError("InvalidArgument", f"Bucket POST must contain a field named '{missing}'.  If it "
                       "is specified, please check the order of the fields.", 400,
                       {"ArgumentName": missing})
    if form.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
        raise AwsError("InvalidArgument", "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm "
                       "in a SigV4 POST.", 400, {"ArgumentName": "x-amz-algorithm"})
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request":
        raise AwsError("InvalidArgument", f"Invalid credential: {credential}", 400,
                       {"ArgumentName": "x-amz-credential"})
    key_id = parts[0]
    given_token = form.get("x-amz-security-token")
    if check_signature:
        check_signer(key_id, credential, policy_b64, signature, given_token, secret_for(key_id), now)

    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
        expiration = iso8601(policy["expiration"])
        conditions = policy["conditions"]
        if not isinstance(conditions, list):
            raise ValueError("conditions")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise AwsError("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.", 400)
    if now >= expiration:
        raise AwsError("AccessDenied", "Invalid according to Policy: Policy expired.", 403)
    date = form.get("x-amz-date", "")
    if not date.startswith(parts[1]):
        raise AwsError("AccessDenied", "Invalid according to Policy: x-amz-date does not match the "
                       "credential scope's date.", 403)
    values = dict(form)
    values["bucket"] = bucket
    key = values.get("key", "")
    if "${filename}" in key:  # RESTObjectPOST: "${filename}" is replaced by the file's name
        key = key.replace("${filename}", filename)
        values["key"] = key
    covered = {"policy", "x-amz-signature", "file"}
    for cond in conditions:
        if isinstance(cond, dict) and len(cond) == 1:
            (field, want), = cond.items()
            op, field = "eq", field.lower()
        elif isinstance(cond, list) and len(cond) == 3 and cond[0] == "content-length-range":
            lo, hi = int(cond[1]), int(cond[2])
            if file_size > hi:
                raise AwsError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                               400, {"ProposedSize": file_size, "MaxSizeAllowed": hi})
            if file_size < lo:
                raise AwsError("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                               "allowed size", 400, {"ProposedSize": file_size, "MinSizeAllowed": lo})
            continue
        elif isinstance(cond, list) and len(cond) == 3 and str(cond[0]).lower() in ("eq", "starts-with") \
                and str(cond[1]).startswith("$"):
            op, field, want = str(cond[0]).lower(), str(cond[1])[1:].lower(), cond[2]
        else:
            raise AwsError("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {_policy_text(cond)}", 400)
        covered.add(field)
        have = values.get(field)
        ok = have is not None and (have == str(want) if op == "eq" else have.startswith(str(want)))
        if not ok:
            raise AwsError("AccessDenied", "Invalid according to Policy: Policy Condition failed: "
                           + _policy_text(cond), 403)
    extra = [n for n in form if n not in covered and not n.startswith("x-ignore-")]
    if extra:
        raise AwsError("AccessDenied", "Invalid according to Policy: Extra input fields: "
                       + ", ".join(extra), 403)
    if not key:
        raise AwsError("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is "
                       "specified, please check the order of the fields.", 400, {"ArgumentName": "key"})
    return {"key": key, "access_key_id": key_id, "credential": credential, "token": given_token}


# --------------------------------------------------------------------------- throttling


class TokenBucket:
    """A token bucket: `rate` tokens a second, at most `burst` saved up. AWS
    documents its API rate limits in these terms (EC2 API "Request throttling":
    "token bucket algorithm ... bucket size ... refill rate",
    https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html)."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.at = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            t = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (t - self.at) * self.rate)
            self.at = t
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class Fraction:
    """Refuses exactly `share` of the requests, spread evenly (request n is
    refused when ceil(n * share) grows, so the first one is): a fleet
    test's "30 % of requests throttled" without randomness, so a failure
    reproduces, and every operation meets throttling at least once. Never
    two in a row while share <= 0.5."""

    def __init__(self, share: float):
        self.share, self.n = share, 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            self.n += 1
            return math.ceil(self.n * self.share) == math.ceil((self.n - 1) * self.share)


def limiter(rate: float, burst: float):
    """The limiter for one parsed limit: a negative burst marks a share."""
    return Fraction(rate) if burst < 0 else TokenBucket(rate, burst)


def parse_throttle(spec: str) -> dict[str, tuple[float, float]]:
    """`ssm:ListCommandInvocations=5/10,ssm:*=20/40,*=100` -> {pattern: (rate, burst)};
    burst defaults to the rate. `ssm:*=30%` refuses 30 % of the requests
    instead (stored as (0.3, -1))."""
    out: dict[str, tuple[float, float]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        pattern, _, limit = item.partition("=")
        if limit.strip().endswith("%"):
            try:
                share = float(limit.strip()[:-1]) / 100
            except ValueError:
                share = -1.0
            if not 0 <= share <= 1:
                raise ValueError(f"throttle spec {item!r}: a share is 0% to 100%, e.g. ssm:*=30%")
            out[pattern.strip()] = (share, -1.0)
            continue
        rate, _, burst = limit.partition("/")
        try:
            r = float(rate)
            out[pattern.strip()] = (r, float(burst) if burst else max(1.0, r))
        except ValueError:
            raise ValueError(f"throttle spec {item!r}: expected OPERATION=RATE[/BURST], "
                             "e.g. ssm:ListCommandInvocations=5/10")
    return out


def throttled(service: str) -> AwsError:
    """The throttling error each service answers:
    - SSM: ThrottlingException, HTTP 400, "Rate exceeded"
      (systems-manager/latest/APIReference/CommonErrors.html: ThrottlingException 400);
    - S3: SlowDown, HTTP 503, "Please reduce your request rate." (ErrorResponses.html);
    - EC2: RequestLimitExceeded, HTTP 503, "Request limit exceeded."
      (ec2-api-throttling.html; errors-overview.html);
    - STS: Throttling, HTTP 400, "Rate exceeded" (CommonErrors.html: ThrottlingException
      is returned with the awsQuery code "Throttling")."""
    if service == "s3":
        return AwsError("SlowDown", "Please reduce your request rate.", 503)
    if service == "ec2":
        return AwsError("RequestLimitExceeded", "Request limit exceeded.", 503)
    if service == "sts":
        return AwsError("Throttling", "Rate exceeded", 400)
    return AwsError("ThrottlingException", "Rate exceeded", 400)
