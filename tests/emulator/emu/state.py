"""The emulator's mutable state, behind one object: EMU (an Emulator). Every
module reaches the config, commands, stats, IAM registry, moto, TLS and caches
through it."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

import awsauth

from .config import Config, now

if TYPE_CHECKING:
    from .model import Command


KEY_TIMELINE = 50000  # requests kept per access key for /_flamefire/stats?timeline=1


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.commands: "collections.OrderedDict[str, Command]" = collections.OrderedDict()
        self.stats: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.stats_since = now()
        self.faults: dict[str, dict] = {}
        self.started = now()
        # Per access key id (from the SigV4 Credential): operation -> count.
        self.key_stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.key_errors: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        # Per access key id: the latest KEY_TIMELINE requests as
        # (arrival epoch s, operation, HTTP status, time in the emulator ms).
        self.key_timeline: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=KEY_TIMELINE))
        # Opt-in IAM enforcement: access key id -> {"policy", "principal"} (see IAM below).
        self.iam: dict[str, dict] = {}


class Auth:
    """Roles and throttling state, beside EMU.state.iam (the key registry)."""

    def __init__(self):
        self.roles: dict[str, dict] = {}
        self.throttle: dict[str, tuple[float, float]] = {}
        self.buckets: dict[tuple[str, str], awsauth.TokenBucket] = {}
        self.throttled: collections.Counter = collections.Counter()
        # Limits for one access key only: key -> {pattern: (rate, burst)}.
        self.key_throttle: dict[str, dict[str, tuple[float, float]]] = {}
        self.key_throttled: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        # Sign-In (signin.py): refresh token -> {session, user_key, jkt, client_id,
        # state}; login session -> refreshes answered; DPoP jti -> iat (replays).
        self.signin_tokens: dict[str, dict] = {}
        self.signin_refreshes: dict[str, int] = {}
        self.signin_jti: dict[str, float] = {}


class Tls:
    """The HTTPS proxy's test CA (tls.tls_setup) and its certificates by host."""

    def __init__(self):
        self.dir = ""
        self.ca_cert = ""
        self._ca = None
        self._lock = threading.Lock()
        self._contexts: dict = {}


class Emulator:
    """All of the emulator's mutable state, reachable from one place (EMU)."""

    def __init__(self):
        self.config = Config()
        self.state = State()
        self.auth = Auth()
        self.tls = Tls()
        self.moto = None  # backend.Moto, started by server.main
        self.proc_slots: threading.BoundedSemaphore | None = None  # config.max_procs, set by main
        # capture path -> (mtime, samples) (agent.capture_samples)
        self.capture_cache: dict[str, tuple[float, int]] = {}
        self.bucket_policy_text: dict[str, str] = {}  # bucket -> policy JSON (iam)
        self.bucket_regions: dict[str, str] = {}  # bucket -> region (server.bucket_region)


EMU = Emulator()
