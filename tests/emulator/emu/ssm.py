"""The emulated SSM Run Command operations (awsJson1.1)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading

from .agent import dispatch
from .backend import Instance
from .config import (
    ACCOUNT_ID, ApiError, DEFAULT_REGION, TAG_TERMINATE_ON_SEND, TERMINAL, validation_error,
)
from .model import Command, Document, Invocation
from .state import EMU


# --------------------------------------------------------------------------- SSM operations

INSTANCE_ID_RE = re.compile(r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)")


def request_region(headers) -> str:
    auth = headers.get("Authorization", "")
    m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", auth)
    return m.group(1) if m else DEFAULT_REGION


def page(items: list, req: dict, key: str, default_max: int, lo: int, hi: int) -> tuple[list, str | None]:
    max_results = req.get("MaxResults")
    if max_results is None:
        max_results = default_max
    if not isinstance(max_results, int) or not lo <= max_results <= hi:
        raise validation_error(
            f"Value '{max_results}' at 'maxResults' failed to satisfy constraint: Member must "
            f"have value between {lo} and {hi}")
    start = 0
    token = req.get("NextToken")
    if token:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token.encode()))
            start, k = int(raw["o"]), raw["k"]
            if k != key or start < 0:
                raise ValueError
        except Exception:
            raise ApiError("InvalidNextToken", "The specified token isn't valid.")
    chunk = items[start:start + max_results]
    nxt = None
    if start + max_results < len(items):
        nxt = base64.urlsafe_b64encode(json.dumps({"o": start + max_results, "k": key}).encode()).decode()
    return chunk, nxt


def token_key(op: str, req: dict) -> str:
    stable = {k: v for k, v in req.items() if k not in ("NextToken", "MaxResults")}
    return hashlib.sha256((op + json.dumps(stable, sort_keys=True)).encode()).hexdigest()[:16]


def check_instance_ids(ids: list, field: str) -> None:
    if not isinstance(ids, list):
        raise validation_error(f"Value at '{field}' must be a list")
    if len(ids) > 50:
        raise validation_error(
            f"Value '[{', '.join(map(str, ids))}]' at '{field}' failed to satisfy constraint: "
            "Member must have length less than or equal to 50")
    for i in ids:
        if not isinstance(i, str) or not INSTANCE_ID_RE.search(i):
            raise ApiError("InvalidInstanceId", f"Instance id {i!r} is not valid.")
    if len(set(ids)) != len(ids):
        raise ApiError("DuplicateInstanceId", "Instance ids must not be repeated.")


def not_valid(ids: list[str]) -> ApiError:
    return ApiError("InvalidInstanceId",
                    f"Instances [[{', '.join(ids)}]] not in a valid state for account {ACCOUNT_ID}")


def op_send_command(req: dict, region: str) -> dict:
    if not req.get("DocumentName"):
        raise validation_error("Value null at 'documentName' failed to satisfy constraint: "
                               "Member must not be null")
    ids = req.get("InstanceIds") or []
    targets = req.get("Targets") or []
    check_instance_ids(ids, "instanceIds")
    if len(targets) > 5:
        raise validation_error("Value at 'targets' failed to satisfy constraint: Member must have "
                               "length less than or equal to 5")
    if ids and targets:
        raise ApiError("InvalidParameters", "Specify either InstanceIds or Targets, not both.")
    if not ids and not targets:
        raise ApiError("InvalidParameters", "Specify either InstanceIds or Targets.")
    t = req.get("TimeoutSeconds")
    if t is not None and (not isinstance(t, int) or not 30 <= t <= 2592000):
        raise validation_error(f"Value '{t}' at 'timeoutSeconds' failed to satisfy constraint: "
                               "Member must have value between 30 and 2592000")
    for field, pat in (("MaxConcurrency", r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"),
                       ("MaxErrors", r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")):
        v = req.get(field)
        if v is not None and (not isinstance(v, str) or len(v) > 7 or not re.search(pat, v)):
            raise validation_error(f"Value '{v}' at '{field[0].lower() + field[1:]}' failed to "
                                   f"satisfy constraint: Member must satisfy regular expression "
                                   f"pattern: {pat}")
    if len(req.get("Comment", "")) > 100:
        raise validation_error("Value at 'comment' failed to satisfy constraint: Member must have "
                               "length less than or equal to 100")

    document = Document.fetch(EMU.moto, region, req["DocumentName"], req.get("DocumentVersion"))
    params = document.resolve(req.get("Parameters") or {})

    # Resolve targets -> [(instance_id, Instance|None, undeliverable)]
    resolved: list[tuple[str, Instance | None, bool]] = []
    if ids:
        insts = {i.id: i for i in EMU.moto.instances(region, ids)}
        # Test-only (tag flamefire-test:terminate-on-send): the instance
        # starts terminating just before this SendCommand, as an ASG scaling
        # in between flamefire's survey and its send does.
        dying = [i for i, inst in insts.items() if inst.tags.get(TAG_TERMINATE_ON_SEND)]
        if dying:
            try:
                EMU.moto.client("ec2", region).terminate_instances(InstanceIds=dying)
            finally:
                EMU.moto.invalidate()
            insts = {i.id: i for i in EMU.moto.instances(region, ids)}
        bad = [i for i in ids if i not in insts or not insts[i].managed]
        if bad:
            raise not_valid(bad)
        wrong = [i for i in ids if insts[i].platform not in document.platforms]
        if wrong:
            raise ApiError("UnsupportedPlatformType",
                           f"The document {document.name} does not support the platform of "
                           f"instances {wrong}.")
        resolved = [(i, insts[i], False) for i in ids]
    else:
        candidates = None
        for tgt in targets:
            key, values = tgt.get("Key", ""), tgt.get("Values") or []
            if len(values) > 50:
                raise validation_error("Value at 'targets.member.values' failed to satisfy "
                                       "constraint: Member must have length less than or equal to 50")
            if key == "InstanceIds":
                check_instance_ids(values, "targets.member.values")
                insts = {i.id: i for i in EMU.moto.instances(region, values)}
                bad = [i for i in values if i not in insts or not insts[i].managed]
                if bad:
                    raise not_valid(bad)
                match = {i: insts[i] for i in values}
            elif key.startswith("tag:"):
                tag = key[4:]
                match = {i.id: i for i in EMU.moto.instances(region)
                         if i.alive and i.tags.get(tag) in values}
            elif key == "tag-key":
                match = {i.id: i for i in EMU.moto.instances(region)
                         if i.alive and any(v in i.tags for v in values)}
            else:
                raise ApiError("InvalidParameters",
                               f"Target key {key!r} is not supported by the flamefire emulator "
                               "(use tag:<Key>, tag-key or InstanceIds).")
            candidates = match if candidates is None else {
                k: v for k, v in candidates.items() if k in match}
        for iid, inst in (candidates or {}).items():
            # With tag targets an instance that is not a managed node is reported
            # as Undeliverable instead of failing the whole call.
            resolved.append((iid, inst, not inst.managed))

    cmd = Command(region, document, req, params)
    for iid, inst, undeliverable in resolved:
        cmd.invocations[iid] = Invocation(cmd, inst, iid, undeliverable)
    with EMU.state.lock:
        EMU.state.commands[cmd.id] = cmd
    threading.Thread(target=dispatch, args=(cmd,), daemon=True, name=f"cmd-{cmd.id[:8]}").start()
    return {"Command": cmd.shape()}


COMMAND_FILTER_KEYS = ("InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName")


def filter_time(v: str) -> float:
    try:
        from datetime import datetime
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError("InvalidFilterKey", f"Filter value {v!r} is not an ISO-8601 timestamp.")


def command_filter(filters: list, requested: float, status: str, document: str) -> bool:
    for f in filters or []:
        key, value = f.get("key"), f.get("value", "")
        if key not in COMMAND_FILTER_KEYS:
            raise ApiError("InvalidFilterKey", f"Filter key {key!r} is not valid.")
        if key == "InvokedAfter" and requested < filter_time(value):
            return False
        if key == "InvokedBefore" and requested > filter_time(value):
            return False
        if key == "Status" and status != value:
            return False
        if key == "DocumentName" and document != value:
            return False
        if key == "ExecutionStage":
            terminal = status in TERMINAL
            if (value == "Executing") == terminal:
                return False
    return True


def op_list_command_invocations(req: dict, region: str) -> dict:
    with EMU.state.lock:
        cmds = list(reversed(EMU.state.commands.values()))
        if req.get("CommandId"):
            cmds = [c for c in cmds if c.id == req["CommandId"]]
        rows = []
        for c in cmds:
            if c.region != region or not c.visible():
                continue
            for inv in c.invocations.values():
                if req.get("InstanceId") and inv.instance_id != req["InstanceId"]:
                    continue
                if not command_filter(req.get("Filters"), c.requested, inv.status, c.document.name):
                    continue
                rows.append(inv)
        chunk, nxt = page(rows, req, token_key("lci", req), 50, 1, 50)
        out = {"CommandInvocations": [i.shape(bool(req.get("Details"))) for i in chunk]}
    if nxt:
        out["NextToken"] = nxt
    return out


def op_get_command_invocation(req: dict, region: str) -> dict:
    cid, iid = req.get("CommandId"), req.get("InstanceId")
    if not cid or not iid:
        raise validation_error("CommandId and InstanceId are required")
    with EMU.state.lock:
        cmd = EMU.state.commands.get(cid)
        inv = cmd.invocations.get(iid) if cmd and cmd.region == region else None
        if inv is None or not cmd.visible():
            raise ApiError("InvocationDoesNotExist",
                           "An invocation with this command ID and instance ID does not exist.")
        plugin = req.get("PluginName")
        if plugin and plugin != cmd.document.step_name:
            raise ApiError("InvalidPluginName", f"Plugin {plugin} is not part of the document.")
        return inv.get_shape()


def op_list_commands(req: dict, region: str) -> dict:
    with EMU.state.lock:
        cmds = [c for c in reversed(EMU.state.commands.values()) if c.region == region]
        if req.get("CommandId"):
            cmds = [c for c in cmds if c.id == req["CommandId"]]
            if not cmds:
                raise ApiError("InvalidCommandId", "The command ID is not valid.")
        if req.get("InstanceId"):
            cmds = [c for c in cmds if req["InstanceId"] in c.invocations]
        cmds = [c for c in cmds
                if command_filter(req.get("Filters"), c.requested, c.aggregate()[0], c.document.name)]
        chunk, nxt = page(cmds, req, token_key("lc", req), 50, 1, 50)
        out = {"Commands": [c.shape() for c in chunk]}
    if nxt:
        out["NextToken"] = nxt
    return out


def op_cancel_command(req: dict, region: str) -> dict:
    cid = req.get("CommandId", "")
    with EMU.state.lock:
        cmd = EMU.state.commands.get(cid)
        if cmd is None or cmd.region != region:
            raise ApiError("InvalidCommandId", "The command ID is not valid.")
        ids = req.get("InstanceIds") or []
        if ids:
            check_instance_ids(ids, "instanceIds")
            missing = [i for i in ids if i not in cmd.invocations]
            if missing:
                raise ApiError("InvalidInstanceId",
                               f"Instances {missing} are not part of command {cid}.")
        else:
            cmd.cancel_requested = True
        for iid, inv in cmd.invocations.items():
            if (not ids or iid in ids) and not inv.terminal:
                inv.cancel.set()
    return {}


def op_describe_instance_information(req: dict, region: str) -> dict:
    insts = [i for i in EMU.moto.instances(region) if i.managed]
    filters = []
    for f in req.get("InstanceInformationFilterList") or []:
        filters.append((f.get("key"), f.get("valueSet") or []))
    for f in req.get("Filters") or []:
        filters.append((f.get("Key"), f.get("Values") or []))
    for key, values in filters:
        if not values:
            raise ApiError("InvalidInstanceInformationFilterValue",
                           f"Filter {key} needs at least one value.")
        if key == "InstanceIds":
            # "If you specify a node ID that isn't valid or a node that you
            # don't own, you receive an error" (DescribeInstanceInformation,
            # API reference). An EC2 instance without the agent is simply
            # absent; an id of no node at all (an unknown mi- hybrid node, an
            # id of no instance) refuses the whole call.
            known = {i.id for i in EMU.moto.instances(region, [v for v in values if v.startswith("i-")])}
            bad = [v for v in values if not INSTANCE_ID_RE.match(v) or
                   (v.startswith("mi-") and v not in {i.id for i in insts}) or
                   (v.startswith("i-") and v not in known)]
            if bad:
                raise ApiError("InvalidInstanceId", f"Instance Id {bad[0]} is not valid.")
            insts = [i for i in insts if i.id in values]
        elif key == "PingStatus":
            insts = [i for i in insts if i.information()["PingStatus"] in values]
        elif key == "PlatformTypes":
            insts = [i for i in insts if i.platform in values]
        elif key == "AgentVersion":
            insts = [i for i in insts if i.agent_version in values]
        elif key == "ResourceType":
            insts = [i for i in insts if "EC2Instance" in values]
        elif key and key.startswith("tag:"):
            insts = [i for i in insts if i.tags.get(key[4:]) in values]
        elif key == "tag-key":
            insts = [i for i in insts if any(v in i.tags for v in values)]
        else:
            raise ApiError("InvalidFilterKey", f"Filter key {key!r} is not valid.")
    chunk, nxt = page(insts, req, token_key("dii", req), 10, 5, 50)
    out = {"InstanceInformationList": [i.information() for i in chunk]}
    if nxt:
        out["NextToken"] = nxt
    return out


SSM_HANDLERS = {
    "SendCommand": op_send_command,
    "ListCommandInvocations": op_list_command_invocations,
    "GetCommandInvocation": op_get_command_invocation,
    "ListCommands": op_list_commands,
    "CancelCommand": op_cancel_command,
    "DescribeInstanceInformation": op_describe_instance_information,
}
