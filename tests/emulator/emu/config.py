"""Constants of the emulated services and agent, the command-line Config, and the
small helpers (time stamps, ApiError) every module uses."""

from __future__ import annotations

import logging
import time


ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
TAG_PREFIX = "flamefire-test:"
TAG_SSM = TAG_PREFIX + "ssm"
TAG_PLATFORM = TAG_PREFIX + "platform"
TAG_AGENT = TAG_PREFIX + "agent-version"
TAG_BEHAVIOUR = TAG_PREFIX + "behaviour"
TAG_DELIVERY_TIMEOUT = TAG_PREFIX + "delivery-timeout"
TAG_REPLAY_CAPTURE = TAG_PREFIX + "replay-capture"
TAG_REPLAY_TIMING = TAG_PREFIX + "replay-timing"
# Seconds a replay waits before it uploads: hosts that end at staggered times.
TAG_REPLAY_DELAY = TAG_PREFIX + "replay-delay"
TAG_TERMINATE_ON_SEND = TAG_PREFIX + "terminate-on-send"
# The host's network path to S3, as S3 sees the host's POST (post_network_context).
TAG_SOURCE_IP = TAG_PREFIX + "source-ip"
TAG_SOURCE_VPCE = TAG_PREFIX + "source-vpce"
# Host conditions (agent.host_conditions, hostenv.py): a host worse off than
# this machine, for `doctor --probe` and the script's own errors.
# network=none: no network path at all (its own network namespace).
TAG_NETWORK = TAG_PREFIX + "network"
# without=perf,apt-get,...: commands the host does not have.
TAG_WITHOUT = TAG_PREFIX + "without"
# seccomp=deny-perf: the kernel refuses perf_event_open (EACCES).
TAG_SECCOMP = TAG_PREFIX + "seccomp"
DEFAULT_AGENT_VERSION = "3.3.2957.0"
# Agents older than this ignore `interpolationType: ENV_VAR` (no SSM_* vars).
ENV_VAR_AGENT_VERSION = (3, 3, 2746, 0)
BEHAVIOURS = ("record", "no-node", "undeliverable", "corrupt-upload", "replay")
# `instant`: replay uploads as soon as it runs; `real`: it first waits for the
# document's StartAt and Duration like the real script (for benchmarks).
REPLAY_TIMINGS = ("instant", "real")
SSM_MODES = ("online", "offline", "unmanaged")

# What the SSM agent keeps of a plugin's output. Line numbers here and below
# are amazon-ssm-agent at tag 3.3.484.0 (the files are unchanged up to 3.3.987.0).
# agent/framework/runpluginutil/runpluginutil.go RunPlugins:267-268 cuts BOTH
# StandardOutput and StandardError with pluginConfig.MaxStdoutLength (24000,
# iohandler.go DefaultOutputConfig:60); MaxStderrLength (8000) only applies to
# associations and file readers, not to Run Command's reply.
MAX_STDOUT = 24000
MAX_STDERR = MAX_STDOUT
# agent/framework/processor/executer/iohandler/iohandler.go:33 MaximumPluginOutputSize.
MAX_PLUGIN_OUTPUT = 2500
# agent/appconfig/constants_unix.go:97 CommandStoppedPreemptivelyExitCode
# (128 + SIGKILL), the code of a cancelled or timed-out command.
STOPPED_PREEMPTIVELY_EXIT_CODE = 137
# agent/appconfig/constants_unix.go:85 RebootExitCode; agent/contracts/model.go:50-51
# ExitWithSuccess / ExitWithFailure.
REBOOT_EXIT_CODE = 194
EXIT_WITH_SUCCESS = 168
EXIT_WITH_FAILURE = 169
DEFAULT_DELIVERY_TIMEOUT = 3600  # SendCommand TimeoutSeconds default
# agent/plugins/pluginutil/pluginutil.go:36-40: timeoutSeconds default and bounds.
DEFAULT_EXECUTION_TIMEOUT = 3600
MIN_EXECUTION_TIMEOUT = 5
MAX_EXECUTION_TIMEOUT = 172800
# What the emulated agent reports as the host's platform: the same in
# DescribeInstanceInformation and in AWS_SSM_PLATFORM_NAME/VERSION, as the real
# agent reads both from one place (agent/platform).
PLATFORM_NAME_LINUX, PLATFORM_VERSION_LINUX = "Amazon Linux", "2023"
DELIVERY_LATENCY_S = 0.1  # Pending -> InProgress for an online instance
OFFLINE_POLL_S = 1.0  # how often a Pending invocation re-reads its instance

EMULATED_SSM_OPS = (
    "SendCommand",
    "ListCommandInvocations",
    "GetCommandInvocation",
    "ListCommands",
    "CancelCommand",
    "DescribeInstanceInformation",
)
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
    "proxy-connection",
}
# systemd's default PATH for services (systemd.exec(5), "Environment variables
# in spawned processes"): what the agent, started by
# packaging/linux/amazon-ssm-agent.service, passes on to every script.
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# packaging/linux/amazon-ssm-agent.service:7 WorkingDirectory=/usr/bin/: the
# agent's own working directory, which runscript.go runCommands:156-164 gives
# every script that names no absolute workingDirectory.
DEFAULT_AGENT_CWD = "/usr/bin"

log = logging.getLogger("flamefire-emulator")


def now() -> float:
    return time.time()


def ts(t: float | None) -> float | None:
    """awsJson1.1 timestamps are epoch seconds (numbers); keep milliseconds."""
    return None if t is None else round(t, 3)


def iso(t: float | None) -> str:
    """GetCommandInvocation's StringDateTime fields, e.g. 2026-11-27T08:00:00.123Z."""
    if t is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def prune(d: dict) -> dict:
    """Drop None values: absent optional members are omitted, never null."""
    return {k: v for k, v in d.items() if v is not None}


class ApiError(Exception):
    """An AWS error answered as awsJson1.1: HTTP status + {"__type", "message"}."""

    def __init__(self, code: str, message: str = "", status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationException", "1 validation error detected: " + message)


class Config:
    port = 5055
    dir = ""
    agent_cwd = DEFAULT_AGENT_CWD
    max_procs = 64
    consistency_delay = 0.5
