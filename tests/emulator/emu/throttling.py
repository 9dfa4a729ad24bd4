"""Throttling (issue 11 §3): off unless FLAMEFIRE_EMULATOR_THROTTLE or POST /_flamefire/throttle."""

from __future__ import annotations

import awsauth

from .state import EMU


# ---- throttling (issue 11 §3): off unless FLAMEFIRE_EMULATOR_THROTTLE or POST /_flamefire/throttle


def throttle_check(op: str, service: str, key: str = "") -> None:
    """One token from the bucket of the first pattern matching `op` (exact,
    then `service:*`, then `*`); none left: the service's throttling error.
    Limits set for one access key apply to its requests only (a test's own
    "account" on a shared emulator); the others to every request."""
    with EMU.state.lock:
        scoped = key in EMU.auth.key_throttle
        spec = EMU.auth.key_throttle[key] if scoped else EMU.auth.throttle
        pattern = op if op in spec else f"{service}:*" if f"{service}:*" in spec else \
            "*" if "*" in spec else None
        if pattern is None:
            return
        slot = (key if scoped else "", op)
        bucket = EMU.auth.buckets.get(slot)
        if bucket is None:
            rate, burst = spec[pattern]
            bucket = EMU.auth.buckets[slot] = awsauth.limiter(rate, burst)
    if not bucket.take():
        with EMU.state.lock:
            EMU.auth.throttled[op] += 1
            if scoped:
                EMU.auth.key_throttled[key][op] += 1
        raise awsauth.throttled(service)


def admin_throttle_set(spec, key: str = "") -> dict:
    parsed = awsauth.parse_throttle(spec) if isinstance(spec, str) else \
        {k: (float(v[0]), float(v[1])) for k, v in (spec or {}).items()}
    with EMU.state.lock:
        if key:
            EMU.auth.key_throttle[key] = parsed
            EMU.auth.key_throttled.pop(key, None)
            EMU.auth.buckets = {s: b for s, b in EMU.auth.buckets.items() if s[0] != key}
        else:
            EMU.auth.throttle = parsed
            EMU.auth.buckets = {s: b for s, b in EMU.auth.buckets.items() if s[0]}
            EMU.auth.throttled.clear()
    return admin_throttle_get(key)


def admin_throttle_get(key: str = "") -> dict:
    with EMU.state.lock:
        limits = EMU.auth.key_throttle.get(key, {}) if key else EMU.auth.throttle
        counts = EMU.auth.key_throttled.get(key, {}) if key else EMU.auth.throttled
        return {"limits": {k: {"rate": r, "burst": b} for k, (r, b) in limits.items()},
                "throttled": dict(counts), **({"access_key_id": key} if key else {})}
