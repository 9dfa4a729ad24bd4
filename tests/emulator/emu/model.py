"""Run Command's objects: documents, commands and their per-instance
invocations, and how the agent cuts a plugin's output."""

from __future__ import annotations

import collections
import json
import math
import re
import threading
import uuid

import botocore.exceptions

from .backend import Instance, Moto
from .config import (
    ApiError, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_EXECUTION_TIMEOUT, MAX_EXECUTION_TIMEOUT,
    MAX_PLUGIN_OUTPUT, MIN_EXECUTION_TIMEOUT, TERMINAL, iso, now, prune, ts,
)
from .state import EMU


# --------------------------------------------------------------------------- documents


def java_pattern(pattern: str) -> re.Pattern:
    """Compile an SSM allowedPattern (Java regex) for Python. `\\z` -> `\\Z`."""
    return re.compile(re.sub(r"(?<!\\)\\z", r"\\Z", pattern))


def version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for p in v.split("."):
        m = re.match(r"\d+", p)
        parts.append(int(m.group()) if m else 0)
    return tuple(parts + [0] * (4 - len(parts)))


class Document:
    """A Command document fetched from moto (GetDocument, JSON format)."""

    def __init__(self, name: str, version: str, content: dict):
        self.name, self.version, self.content = name, version, content
        self.parameters: dict = content.get("parameters") or {}
        steps = content.get("mainSteps") or []
        self.step = steps[0] if steps else {}
        self.step_name = self.step.get("name", "aws:runShellScript")
        self.action = self.step.get("action", "")
        self.inputs = self.step.get("inputs") or {}

    @property
    def platforms(self) -> set[str]:
        return {"aws:runShellScript": {"Linux", "MacOS"},
                "aws:runPowerShellScript": {"Windows", "Linux"}}.get(self.action, {"Linux"})

    @classmethod
    def fetch(cls, moto: Moto, region: str, name: str, version: str | None) -> "Document":
        ssm = moto.client("ssm", region)
        name = name.split("document/")[-1] if name.startswith("arn:") else name
        kwargs = {"Name": name, "DocumentFormat": "JSON"}
        if version and version not in ("$DEFAULT", "$LATEST"):
            kwargs["DocumentVersion"] = version
        try:
            doc = ssm.get_document(**kwargs)
        except botocore.exceptions.ClientError as e:
            if "DocumentVersion" in kwargs:
                try:
                    ssm.get_document(Name=name)
                except botocore.exceptions.ClientError:
                    pass
                else:
                    raise ApiError("InvalidDocumentVersion",
                                   f"Document {name} does not have version {version}.")
            raise ApiError("InvalidDocument", "The specified document does not exist.") from e
        if doc.get("DocumentType", "Command") != "Command":
            raise ApiError("InvalidDocument",
                           f"Document {name} is of type {doc.get('DocumentType')}, not Command.")
        try:
            content = json.loads(doc["Content"])
        except ValueError as e:
            raise ApiError("InvalidDocument", f"Document {name} content is not valid JSON: {e}")
        return cls(name, doc.get("DocumentVersion", "1"), content)

    def resolve(self, given: dict) -> dict[str, str]:
        """Validate SendCommand Parameters the way SSM does; return name -> value."""
        if not isinstance(given, dict):
            raise ApiError("InvalidParameters", "Parameters must be a map of lists.")
        for name in given:
            if name not in self.parameters:
                raise ApiError("InvalidParameters",
                               f"Parameter \"{name}\" is not defined in document {self.name}.")
        out = {}
        for name, spec in self.parameters.items():
            spec = spec or {}
            ptype = spec.get("type", "String")
            if name in given:
                values = given[name]
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise ApiError("InvalidParameters",
                                   f"Parameter \"{name}\" must be a list of strings.")
                if ptype != "StringList" and len(values) != 1:
                    raise ApiError("InvalidParameters",
                                   f"Parameter \"{name}\" of type {ptype} takes exactly one value, "
                                   f"got {len(values)}.")
                pattern = spec.get("allowedPattern")
                allowed = spec.get("allowedValues")
                for v in values:
                    # SSM matches like Java's Matcher.find(): `$` also matches before a
                    # final "\n", and so does Python's re.search. Keep that leniency so
                    # the host script's own checks are exercised.
                    if pattern is not None and not java_pattern(pattern).search(v):
                        raise ApiError("InvalidParameters",
                                       f"Parameter \"{name}\" \"{v}\" failed to satisfy "
                                       f"constraint: allowedPattern {pattern}")
                    # minChars/maxChars ("Data elements and parameters" of the SSM
                    # document syntax): the service checks them at SendCommand. The
                    # agent does not for Run Command (parameterstore.go
                    # ValidateSSMParameters:138-140 runs minmaxcharparamvalidator only
                    # for aws:runDocument's inner documents).
                    for key, too in (("minChars", lambda n, lim: n < lim),
                                     ("maxChars", lambda n, lim: n > lim)):
                        if key in spec and too(len(v), int(spec[key])):
                            raise ApiError("InvalidParameters",
                                           f"Parameter \"{name}\" failed to satisfy constraint: "
                                           f"{key} {spec[key]} (the value has {len(v)} characters)")
                    if allowed is not None and v not in [str(a) for a in allowed]:
                        raise ApiError("InvalidParameters",
                                       f"Parameter \"{name}\" \"{v}\" is not one of the "
                                       f"allowedValues {allowed}")
            elif "default" in spec:
                d = spec["default"]
                values = [str(x) for x in d] if isinstance(d, list) else [
                    json.dumps(d) if isinstance(d, (dict, bool)) else str(d)]
            else:
                raise ApiError("InvalidParameters",
                               f"Parameter \"{name}\" is required by document {self.name} and "
                               "has no default.")
            out[name] = ",".join(values) if ptype == "StringList" else (values[0] if values else "")
        return out

    def script(self, params: dict[str, str]) -> str:
        run = self.inputs.get("runCommand", [])
        text = "\n".join(run) if isinstance(run, list) else str(run)
        # Classic {{ Name }} substitution, as the agent does for every parameter.
        return re.sub(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}",
                      lambda m: params.get(m.group(1), m.group(0)), text)

    def execution_timeout(self, params: dict[str, str]) -> int:
        """agent/plugins/pluginutil/pluginutil.go ValidateExecutionTimeout:138-159
        (and extractIntFromString:175-194): a number or a numeric string (a
        float is truncated), anything else the default; a value outside
        5..172800 also becomes the default, 3600."""
        raw = self.inputs.get("timeoutSeconds")
        if isinstance(raw, str):
            raw = re.sub(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}",
                         lambda m: params.get(m.group(1), ""), raw)
            try:
                num = int(raw, 10)  # strconv.Atoi: optional sign, decimal digits
            except ValueError:
                try:
                    num = int(float(raw))
                except (ValueError, OverflowError):
                    num = DEFAULT_EXECUTION_TIMEOUT
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            num = int(raw)
        else:  # missing, or a JSON type the agent does not take
            num = DEFAULT_EXECUTION_TIMEOUT
        if num < MIN_EXECUTION_TIMEOUT or num > MAX_EXECUTION_TIMEOUT:
            num = DEFAULT_EXECUTION_TIMEOUT
        return num

    def agent_values(self, given: dict) -> dict[str, object]:
        """The parameter values the agent validates: what SendCommand sent,
        and each missing one's default (docparser.go getValidatedParameters:
        460-467). A StringList stays a list, a String is its one string."""
        out: dict[str, object] = {}
        for name, spec in self.parameters.items():
            spec = spec or {}
            if name in given:
                values = given[name]
                out[name] = values if spec.get("type") == "StringList" else values[0]
            else:
                out[name] = spec.get("default")
        return out

    def env_var_params(self) -> list[str]:
        return [n for n, s in self.parameters.items()
                if (s or {}).get("interpolationType") == "ENV_VAR"]


# --------------------------------------------------------------------------- run command state


class Invocation:
    def __init__(self, command: "Command", inst: Instance | None, instance_id: str, undeliverable: bool):
        self.command = command
        self.instance_id = instance_id
        self.instance = inst
        self.status = "Pending"
        self.details = "Pending"
        self.response_code = -1
        self.started: float | None = None
        self.finished: float | None = None
        self.stdout = ""
        self.stderr = ""
        # The agent's document-level reply (SendReplyPayload.DocumentTraceOutput),
        # for a document it refused before running any step.
        self.trace_output = ""
        # CommandPlugin.Output when the agent built it (run_script); else it is
        # built from stdout/stderr (replay, emulator errors).
        self.output: str | None = None
        self.dir: str | None = None
        self.pid: int | None = None
        self.force_undeliverable = undeliverable
        self.cancel = threading.Event()
        self.note = ""  # emulator-side diagnostics, only in /_flamefire/invocations
        self.recorded: tuple[float, int] | None = None  # replay-timing=real: (start, seconds)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def finish(self, status: str, details: str, code: int | None = None) -> None:
        with EMU.state.lock:
            if self.terminal:
                return
            self.status, self.details = status, details
            if code is not None:
                self.response_code = code
            self.finished = now()

    def plugin(self) -> dict:
        cmd = self.command
        output = ""
        if self.terminal:
            output = self.output if self.output is not None \
                else plugin_output(self.stdout, self.stderr)
        return prune({
            "Name": cmd.document.step_name,
            "Status": self.status,
            "StatusDetails": self.details,
            "ResponseCode": self.response_code,
            "ResponseStartDateTime": ts(self.started),
            "ResponseFinishDateTime": ts(self.finished),
            "Output": output,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": cmd.output_s3_region or cmd.region,
            "OutputS3BucketName": cmd.output_s3_bucket,
            "OutputS3KeyPrefix": cmd.output_s3_prefix,
        })

    def shape(self, details: bool) -> dict:
        cmd = self.command
        return prune({
            "CommandId": cmd.id,
            "InstanceId": self.instance_id,
            "InstanceName": self.instance.name if self.instance else "",
            "Comment": cmd.comment,
            "DocumentName": cmd.document.name,
            "DocumentVersion": cmd.document_version,
            "RequestedDateTime": ts(cmd.requested),
            "Status": self.status,
            "StatusDetails": self.details,
            "TraceOutput": self.trace_output,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [self.plugin()] if details else [],
            "ServiceRole": cmd.service_role,
            "NotificationConfig": cmd.notification_config,
            "CloudWatchOutputConfig": cmd.cloudwatch,
        })

    def get_shape(self) -> dict:
        cmd = self.command
        done = self.terminal
        elapsed = ""
        if self.started is not None:
            end = self.finished if self.finished is not None else now()
            elapsed = "PT%.3fS" % max(0.0, end - self.started)
        return {
            "CommandId": cmd.id,
            "InstanceId": self.instance_id,
            "Comment": cmd.comment,
            "DocumentName": cmd.document.name,
            "DocumentVersion": cmd.document_version,
            "PluginName": cmd.document.step_name,
            "ResponseCode": self.response_code,
            "ExecutionStartDateTime": iso(self.started),
            "ExecutionElapsedTime": elapsed,
            "ExecutionEndDateTime": iso(self.finished if self.started is not None else None),
            "Status": self.status,
            "StatusDetails": self.details,
            "StandardOutputContent": self.stdout if done else "",
            "StandardOutputUrl": "",
            "StandardErrorContent": self.stderr if done else "",
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": cmd.cloudwatch,
        }

    def debug(self) -> dict:
        d = self.get_shape()
        d.update({"dir": self.dir, "pid": self.pid, "note": self.note,
                  "behaviour": self.instance.behaviour if self.instance else None,
                  "ssm_mode": self.instance.ssm_mode if self.instance else None,
                  "visible": self.command.visible()})
        return d


# --- the agent's output handling (see README "The real agent's contract") ---

# amazon-ssm-agent agent/framework/processor/executer/iohandler/iohandler.go:31-40
# errTitle, truncateOut, truncateError.
ERR_TITLE = b"\n----------ERROR-------\n"
TRUNCATE_OUT = b"\n---Output truncated---"
TRUNCATE_ERROR = b"\n---Error truncated----"
# agent/framework/processor/executer/iohandler/iohandler.go DefaultOutputConfig:
# OutputTruncatedSuffix, used by runpluginutil.RunPlugins with
# pluginutil.StringPrefix on StandardOutput and StandardError.
OUTPUT_TRUNCATED_SUFFIX = b"--output truncated--"


def string_prefix(data: bytes, limit: int, suffix: bytes) -> bytes:
    """agent/plugins/pluginutil/pluginutil.go StringPrefix:43-57: the first `limit`
    bytes, the last len(suffix) of them replaced by the suffix."""
    if len(data) < limit:
        return data
    if limit > len(suffix):
        return data[: limit - len(suffix)] + suffix
    return suffix[:limit]


def truncate_output(stdout: bytes, stderr: bytes, capacity: int) -> bytes:
    """iohandler.go TruncateOutput:437-472, line for line: CommandPlugin.Output
    (ListCommandInvocations with Details) keeps the START of each stream,
    stdout first, within `capacity` (MaximumPluginOutputSize = 2500)."""
    title = ERR_TITLE if stderr else b""
    available = capacity - len(title)
    if len(stdout) + len(stderr) < available:
        return stdout + title + stderr
    if len(stdout) > available // 2 and len(stderr) > available // 2:
        size = available - len(TRUNCATE_ERROR) - len(TRUNCATE_OUT)
        return stdout[: size // 2] + TRUNCATE_OUT + title + stderr[: size // 2] + TRUNCATE_ERROR
    if len(stdout) <= available // 2:
        size = available - len(TRUNCATE_ERROR)
        return stdout + title + stderr[: size - len(stdout)] + TRUNCATE_ERROR
    size = available - len(TRUNCATE_OUT)
    return stdout[: size - len(stderr)] + TRUNCATE_OUT + title + stderr


def plugin_output(stdout: str, stderr: str) -> str:
    """CommandPlugin.Output as the agent builds it (iohandler.go String)."""
    out = truncate_output(stdout.encode(), stderr.encode(), MAX_PLUGIN_OUTPUT)
    return out.decode("utf-8", errors="replace")


def limit_from(spec: str, total: int) -> int:
    """MaxConcurrency / MaxErrors: "10" or "10%" of the target count."""
    if spec.endswith("%"):
        return max(0, math.ceil(total * int(spec[:-1]) / 100))
    return int(spec)


class Command:
    def __init__(self, region: str, document: Document, req: dict, params: dict[str, str]):
        self.id = str(uuid.uuid4())
        self.region = region
        self.document = document
        self.document_version = req.get("DocumentVersion") or "$DEFAULT"
        self.given_params = req.get("Parameters") or {}
        self.params = params
        self.comment = req.get("Comment", "")
        self.requested = now()
        self.delivery_timeout = int(req.get("TimeoutSeconds") or DEFAULT_DELIVERY_TIMEOUT)
        self.execution_timeout = document.execution_timeout(params)
        self.max_concurrency = req.get("MaxConcurrency") or "50"
        self.max_errors = req.get("MaxErrors") or "0"
        self.instance_ids = list(req.get("InstanceIds") or [])
        self.targets = req.get("Targets") or []
        self.output_s3_region = req.get("OutputS3Region", "")
        self.output_s3_bucket = req.get("OutputS3BucketName", "")
        self.output_s3_prefix = req.get("OutputS3KeyPrefix", "")
        self.service_role = req.get("ServiceRoleArn", "")
        nc = req.get("NotificationConfig") or {}
        self.notification_config = {
            "NotificationArn": nc.get("NotificationArn", ""),
            "NotificationEvents": nc.get("NotificationEvents", []),
            "NotificationType": nc.get("NotificationType", ""),
        }
        cw = req.get("CloudWatchOutputConfig") or {}
        self.cloudwatch = {
            "CloudWatchLogGroupName": cw.get("CloudWatchLogGroupName", ""),
            "CloudWatchOutputEnabled": bool(cw.get("CloudWatchOutputEnabled", False)),
        }
        self.invocations: "collections.OrderedDict[str, Invocation]" = collections.OrderedDict()
        self.cancel_requested = False
        self.consistency_delay = EMU.config.consistency_delay

    @property
    def expires(self) -> float:
        # "ExpiresAfter is calculated based on the total timeout for the overall
        # command": delivery timeout + execution timeout.
        return self.requested + self.delivery_timeout + self.execution_timeout

    def visible(self) -> bool:
        """Real SSM is eventually consistent: new invocations show up a moment late."""
        return now() - self.requested >= self.consistency_delay

    def error_count(self) -> int:
        # Undeliverable and Delivery Timed Out do not count against MaxErrors.
        return sum(1 for i in self.invocations.values()
                   if (i.status == "Failed" and i.details != "Undeliverable")
                   or i.details == "ExecutionTimedOut")

    def aggregate(self) -> tuple[str, str]:
        invs = list(self.invocations.values())
        if not invs:
            return ("Cancelled", "Cancelled") if self.cancel_requested else ("Success", "Success")
        if not all(i.terminal for i in invs):
            if self.cancel_requested:
                return "Cancelling", "Cancelling"
            if all(i.status == "Pending" for i in invs):
                return "Pending", "Pending"
            return "InProgress", "InProgress"
        if self.cancel_requested:
            return "Cancelled", "Cancelled"
        if all(i.status == "Success" for i in invs):
            return "Success", "Success"
        max_errors = limit_from(self.max_errors, len(invs))
        errors = self.error_count()
        timed_out = sum(1 for i in invs if i.details == "DeliveryTimedOut")
        undeliverable = sum(1 for i in invs if i.details == "Undeliverable")
        if errors > max_errors:
            execution_timeouts = sum(1 for i in invs if i.details == "ExecutionTimedOut")
            if execution_timeouts == errors:
                return "TimedOut", "ExecutionTimedOut"
            return "Failed", "Failed"
        if timed_out and timed_out > max_errors:
            return "TimedOut", "DeliveryTimedOut"
        if undeliverable == len(invs):
            return "Failed", "Undeliverable"
        if any(i.status == "Success" for i in invs) and errors == 0 and not timed_out:
            return "Success", "Success"
        return "Success", "Incomplete"

    def shape(self) -> dict:
        status, details = self.aggregate()
        invs = list(self.invocations.values())
        return {
            "CommandId": self.id,
            "DocumentName": self.document.name,
            "DocumentVersion": self.document_version,
            "Comment": self.comment,
            "ExpiresAfter": ts(self.expires),
            "Parameters": self.given_params,
            "InstanceIds": self.instance_ids,
            "Targets": self.targets,
            "RequestedDateTime": ts(self.requested),
            "Status": status,
            "StatusDetails": details,
            "OutputS3Region": self.output_s3_region or self.region,
            "OutputS3BucketName": self.output_s3_bucket,
            "OutputS3KeyPrefix": self.output_s3_prefix,
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
            "TargetCount": len(invs),
            "CompletedCount": sum(1 for i in invs if i.terminal),
            "ErrorCount": self.error_count(),
            "DeliveryTimedOutCount": sum(1 for i in invs if i.details == "DeliveryTimedOut"),
            "ServiceRole": self.service_role,
            "NotificationConfig": self.notification_config,
            "CloudWatchOutputConfig": self.cloudwatch,
            "TimeoutSeconds": self.delivery_timeout,
        }
