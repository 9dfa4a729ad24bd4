"""The emulator's STS: AssumeRole of registered roles, GetCallerIdentity of known keys."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
import uuid

import awsauth

from .config import ACCOUNT_ID, DEFAULT_REGION, now
from .iam import check_session, identity, request_context
from .state import EMU


# ---- the emulator's STS: AssumeRole of registered roles, GetCallerIdentity of known keys

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def sts_xml(action: str, result: str) -> bytes:
    return (f'<{action}Response xmlns="{STS_NS}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</{action}Response>").encode()


def random_id(prefix: str, n: int = 16) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    raw = uuid.uuid4().bytes + uuid.uuid4().bytes
    return prefix + "".join(alphabet[b % 32] for b in raw[:n])


def sts_caller_identity(entry: dict) -> bytes:
    """GetCallerIdentity of a known key: its user or assumed-role ARN."""
    user_id = entry.get("user_id") or key_user_id(entry)
    return sts_xml("GetCallerIdentity", f"<Arn>{xml_escape(entry['principal'])}</Arn>"
                   f"<UserId>{xml_escape(user_id)}</UserId><Account>{ACCOUNT_ID}</Account>")


def key_user_id(entry: dict) -> str:
    return entry.get("user_id") or "AIDA" + hashlib.sha1(entry["principal"].encode()).hexdigest()[:17].upper()


def xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sts_assume_role(params: dict, caller_key: str, headers) -> bytes | None:
    """sts:AssumeRole of a role registered with the emulator; None for roles it
    does not know (moto answers those). Follows the STS API reference for
    AssumeRole: RoleSessionName 2-64 of [\\w+=,.@-]; DurationSeconds from 900 to
    the role's MaxSessionDuration (default 3600), "The requested DurationSeconds
    exceeds the MaxSessionDuration set for this role."; SerialNumber+TokenCode
    set aws:MultiFactorAuthPresent for the trust policy; a wrong code is
    AccessDenied "MultiFactorAuthentication failed with invalid MFA one time pass code."
    https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html"""
    role_arn = params.get("RoleArn", "")
    name = role_arn.rsplit("/", 1)[-1]
    with EMU.state.lock:
        role = EMU.auth.roles.get(name)
    if role is None or role["arn"] != role_arn:
        return None
    session = params.get("RoleSessionName", "")
    if not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
        raise awsauth.AwsError("ValidationError", "1 validation error detected: Value '%s' at "
                               "'roleSessionName' failed to satisfy constraint: Member must satisfy "
                               "regular expression pattern: [\\w+=,.@-]*" % session, 400)
    try:
        duration = int(params.get("DurationSeconds") or 3600)
    except ValueError:
        raise awsauth.AwsError("ValidationError", "DurationSeconds must be a number", 400)
    if duration < 900:
        raise awsauth.AwsError("ValidationError", "1 validation error detected: Value '%d' at "
                               "'durationSeconds' failed to satisfy constraint: Member must have value "
                               "greater than or equal to 900" % duration, 400)
    if duration > role["max_session_duration"]:
        raise awsauth.AwsError("ValidationError", "The requested DurationSeconds exceeds the "
                               "MaxSessionDuration set for this role.", 400)
    caller = identity(caller_key) if caller_key else None
    caller_arn = caller["principal"] if caller else f"arn:aws:iam::{ACCOUNT_ID}:user/{caller_key}"
    if caller:
        check_session(caller, "sts", headers.get("X-Amz-Security-Token"))
    serial, code = params.get("SerialNumber"), params.get("TokenCode")
    mfa = False
    if serial or code:
        device = (caller or {}).get("mfa_serial")
        if not (serial and code and device == serial and code == caller.get("mfa_code")):
            raise awsauth.AwsError("AccessDenied", "MultiFactorAuthentication failed with invalid "
                                   "MFA one time pass code. ", 403)
        mfa = True
    region = DEFAULT_REGION
    ctx = request_context(region, caller or {"principal": caller_arn}, True)
    if caller and caller.get("token") is None:
        # Long-term credentials: aws:MultiFactorAuthPresent is present only when
        # MFA was given to this very call (IAM condition keys, MultiFactorAuthPresent).
        ctx.pop("aws:multifactorauthpresent", None)
    if mfa:
        # A code checked by this very call satisfies the trust policy's MFA
        # condition whatever signs the call, long-term keys or a session such
        # as an `aws login` one (AssumeRole, TokenCode: "The value provided by
        # the MFA device, if the trust policy of the role being assumed
        # requires MFA").
        ctx["aws:multifactorauthpresent"] = "true"
        ctx["aws:multifactorauthage"] = "0"
    decision, direct = awsauth.trust_allows(role["trust"], caller_arn, ACCOUNT_ID, role_arn, ctx)
    if decision != "allow":
        # STS words a trust-policy refusal without a policy type.
        raise awsauth.AwsError("AccessDenied", f"User: {caller_arn} is not authorized to perform: "
                               f"sts:AssumeRole on resource: {role_arn}", 403)
    if caller and not direct:
        # The trust policy names the account: the caller's own policy must allow it too.
        decision = awsauth.decide(caller["statements"], "sts:AssumeRole", role_arn, ctx)
        if decision != "allow":
            raise awsauth.access_denied("sts", caller_arn, "sts:AssumeRole", role_arn, decision)
    issued = now()
    key, secret, token = random_id("ASIA"), base64.b64encode(os.urandom(30)).decode()[:40], \
        base64.b64encode(os.urandom(96)).decode()
    principal = f"arn:{role['arn'].split(':')[1]}:sts::{ACCOUNT_ID}:assumed-role/{name}/{session}"
    role_id = role["role_id"]
    with EMU.state.lock:
        EMU.state.iam[key] = {"policy": role["policy"], "statements": role["statements"],
                          "principal": principal, "secret": secret, "token": token,
                          "expires": issued + duration, "issued": issued, "mfa": mfa,
                          "role_arn": role_arn, "user_id": f"{role_id}:{session}"}
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued + duration))
    return sts_xml("AssumeRole",
                   f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}"
                   f"</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>{expiration}"
                   f"</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>{role_id}:{session}"
                   f"</AssumedRoleId><Arn>{principal}</Arn></AssumedRoleUser>")
