"""The /_flamefire admin API: IAM keys and roles, faults, seeding, reset."""

from __future__ import annotations

import re
import sys

import awsauth

from .config import ACCOUNT_ID, ApiError, DEFAULT_REGION, now, ts
from .iam import POLICY_DIR_HELPER
from .state import EMU
from .sts import random_id


# ---- admin


def admin_iam_register(body: dict) -> dict:
    """Registers a user key: {access_key_id, secret_access_key?, policy? | terraform?
    (module variables: the on-call policy), principal?, mfa_serial?, mfa_code?}."""
    key = body.get("access_key_id")
    if not isinstance(key, str) or not re.fullmatch(r"[A-Z0-9]{16,128}", key):
        raise ApiError("ValidationException", "access_key_id must be an access key id "
                       "(16-128 uppercase letters and digits, e.g. AKIA...)")
    policy = body.get("policy") or {"Version": "2012-10-17", "Statement": []}
    if "terraform" in body:  # the on-call role's policy, as the Terraform module renders it
        policy = terraform_role(body["terraform"])["policy"]
    try:
        statements = awsauth.statements(policy)
    except awsauth.PolicyError as e:
        raise ApiError("MalformedPolicyDocument", str(e))
    principal = body.get("principal") or f"arn:aws:iam::{ACCOUNT_ID}:user/{key}"
    with EMU.state.lock:
        EMU.state.iam[key] = {"policy": policy, "statements": statements, "principal": principal,
                          "secret": body.get("secret_access_key"), "token": None, "expires": None,
                          "mfa_serial": body.get("mfa_serial"), "mfa_code": body.get("mfa_code")}
    return {"access_key_id": key, "principal": principal, "statements": len(statements)}


def admin_iam_list() -> dict:
    with EMU.state.lock:
        return {"policies": {k: {"principal": v["principal"], "policy": v["policy"],
                                 "session": v.get("token") is not None,
                                 "expires": ts(v.get("expires"))}
                             for k, v in EMU.state.iam.items()}}


def admin_iam_expire(body: dict) -> dict:
    """Test-only: move a session's expiry to `in_seconds` from now (STS's shortest
    session is 900 s, too long for a test that needs credentials to expire mid-run)."""
    key = body.get("access_key_id", "")
    with EMU.state.lock:
        entry = EMU.state.iam.get(key)
        if entry is None or entry.get("token") is None:
            raise ApiError("ValidationException", f"{key!r} is not a session key issued by AssumeRole")
        entry["expires"] = now() + float(body.get("in_seconds", 0))
        return {"access_key_id": key, "expires": ts(entry["expires"])}


def terraform_role(vars_: dict) -> dict:
    """The on-call role as the Terraform module renders it: the module's defaults
    from terraform/variables.tf, overridden by `vars_`, fed to the module's own
    templates (terraform/test/render_policies.py)."""
    if POLICY_DIR_HELPER not in sys.path:
        sys.path.insert(0, POLICY_DIR_HELPER)
    import render_policies
    return render_policies.module_role(vars_)


def admin_role_register(body: dict) -> dict:
    """{role_name?, policy?, trust_policy?, max_session_duration?, terraform?: {module vars}}."""
    rendered = terraform_role(body["terraform"]) if "terraform" in body else {}
    name = body.get("role_name") or rendered.get("role_name")
    policy = body.get("policy") or rendered.get("policy")
    trust = body.get("trust_policy") or rendered.get("trust_policy")
    max_s = int(body.get("max_session_duration") or rendered.get("max_session_duration") or 3600)
    if not isinstance(name, str) or not re.fullmatch(r"[\w+=,.@-]{1,64}", name):
        raise ApiError("ValidationException", "role_name must be 1-64 of [\\w+=,.@-]")
    if not 3600 <= max_s <= 43200:
        # IAM CreateRole: MaxSessionDuration 3600..43200.
        raise ApiError("ValidationException", "max_session_duration must be 3600..43200")
    try:
        statements = awsauth.statements(policy)
        trust_statements = awsauth.statements(trust, kind="trust")
    except awsauth.PolicyError as e:
        raise ApiError("MalformedPolicyDocument", str(e))
    arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
    with EMU.state.lock:
        EMU.auth.roles[name] = {"arn": arn, "policy": policy, "statements": statements, "trust": trust_statements,
                            "trust_policy": trust, "max_session_duration": max_s,
                            "role_id": random_id("AROA", 17)}
    return {"role_arn": arn, "policy": policy, "trust_policy": trust, "max_session_duration": max_s}


# --------------------------------------------------------------------------- admin API


def fault_slot(op: str, access_key_id: str) -> str:
    """Faults may be scoped to one access key id (POST /_flamefire/faults with
    "access_key_id"), so that a test injecting an error into SendCommand does
    not hit the tests running beside it."""
    return f"{op}@{access_key_id}" if access_key_id else op


def take_fault(op: str, key: str) -> dict | None:
    """The fault to answer this request with, if one is armed (the caller
    holds EMU.state.lock): first one scoped to the request's key, then a global one."""
    for slot in ([fault_slot(op, key)] if key else []) + [op]:
        fault = EMU.state.faults.get(slot)
        if fault and fault["count"] > 0:
            fault["count"] -= 1
            return fault
    return None


def admin_seed(body: dict) -> dict:
    count = int(body.get("count", 1))
    if not 1 <= count <= 1000:
        raise ApiError("ValidationException", "count must be between 1 and 1000")
    region = body.get("region") or DEFAULT_REGION
    tags = body.get("tags") or {}
    ec2 = EMU.moto.client("ec2", region)
    kwargs = {"ImageId": body.get("ami") or "ami-12c6146b", "MinCount": count, "MaxCount": count,
              "InstanceType": body.get("instance_type") or "t3.micro"}
    if tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "instance",
                                        "Tags": [{"Key": k, "Value": str(v)} for k, v in tags.items()]}]
    state = body.get("state")
    if state not in (None, "running", "stopped", "terminated"):
        raise ApiError("ValidationException", "state must be running, stopped or terminated")
    try:
        raws = ec2.run_instances(**kwargs)["Instances"]
    except Exception:
        EMU.moto.invalidate()
        raise
    ids = [r["InstanceId"] for r in raws]
    if state is None or state == "running":
        EMU.moto.add(region, raws)
    else:
        try:
            if state == "stopped":
                ec2.stop_instances(InstanceIds=ids)
            else:
                ec2.terminate_instances(InstanceIds=ids)
        finally:
            EMU.moto.invalidate()
    return {"instance_ids": ids, "region": region}


def admin_invocations(query: dict) -> dict:
    cid = (query.get("command_id") or [""])[0]
    with EMU.state.lock:
        cmds = [EMU.state.commands[cid]] if cid in EMU.state.commands else (
            [] if cid else list(EMU.state.commands.values()))
        return {"commands": [
            {**c.shape(), "region": c.region, "execution_timeout": c.execution_timeout,
             "resolved_parameters": c.params,
             "invocations": [i.debug() for i in c.invocations.values()]}
            for c in cmds]}


def admin_reset() -> dict:
    with EMU.state.lock:
        for c in EMU.state.commands.values():
            for i in c.invocations.values():
                i.cancel.set()
        EMU.state.commands.clear()
        EMU.state.stats.clear()
        EMU.state.errors.clear()
        EMU.state.faults.clear()
        EMU.state.key_stats.clear()
        EMU.state.key_errors.clear()
        EMU.state.key_timeline.clear()
        EMU.state.iam.clear()
        EMU.auth.roles.clear()
        EMU.bucket_policy_text.clear()
        EMU.bucket_regions.clear()
        EMU.auth.key_throttle.clear()
        EMU.auth.key_throttled.clear()
        EMU.auth.signin_tokens.clear()
        EMU.auth.signin_refreshes.clear()
        EMU.auth.signin_jti.clear()
        EMU.state.stats_since = now()
    EMU.moto.reset()
    EMU.moto.invalidate()
    return {"reset": True}
