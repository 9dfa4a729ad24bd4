"""moto access: the moto server in this process, boto3 clients to it, and its
EC2 instances as SSM sees them (Instance)."""

from __future__ import annotations

import http.client
import threading

import boto3
import botocore.config

from .config import (
    BEHAVIOURS, DEFAULT_AGENT_VERSION, PLATFORM_NAME_LINUX, PLATFORM_VERSION_LINUX,
    REPLAY_TIMINGS, SSM_MODES, TAG_AGENT, TAG_BEHAVIOUR, TAG_DELIVERY_TIMEOUT, TAG_PLATFORM,
    TAG_REPLAY_TIMING, TAG_SSM, now, prune, ts,
)


# --------------------------------------------------------------------------- moto access


class Moto:
    """The moto server in this process, and boto3 clients that talk to it directly."""

    def __init__(self, port: int = 0):
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        self.host, self.port = self.server.get_host_and_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self._snapshots: dict[str, tuple[float, dict]] = {}
        self._generation = 0
        self._region_locks: dict[str, threading.Lock] = {}
        self._config = botocore.config.Config(
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
            s3={"addressing_style": "path"},
        )

    def client(self, service: str, region: str):
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    region_name=region,
                )
                self._clients[key] = session.client(
                    service, endpoint_url=self.endpoint, config=self._config
                )
            return self._clients[key]

    def reset(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/moto-api/reset")
        conn.getresponse().read()
        conn.close()

    # ---- EC2 view of "managed instances"
    #
    # moto's DescribeInstances takes seconds with hundreds of instances (more
    # under load), and tag targets and DescribeInstanceInformation need the whole
    # region. So keep one snapshot per region. It is dropped whenever an EC2
    # write goes through the front server (tags or states may have changed),
    # extended in place by the seed endpoint, and expires after CACHE_TTL_S as a
    # safety net. Lookups by id without a fresh snapshot ask moto for just those.

    CACHE_TTL_S = 60.0

    def invalidate(self) -> None:
        with self._lock:
            self._snapshots = {}
            self._generation += 1

    def add(self, region: str, raws: list[dict]) -> None:
        """Fold freshly launched instances into the region's snapshot, if any."""
        with self._lock:
            self._generation += 1  # a read in flight would miss them: discard it
            hit = self._snapshots.get(region)
            if hit:
                hit[1].update({r["InstanceId"]: Instance(r, region) for r in raws})

    def _fresh(self, region: str) -> dict[str, "Instance"] | None:
        with self._lock:
            hit = self._snapshots.get(region)
            if hit and now() - hit[0] < self.CACHE_TTL_S:
                return hit[1]
            return None

    def _describe(self, region: str, instance_ids: list[str] | None) -> dict[str, "Instance"]:
        kwargs = {}
        if instance_ids is not None:
            kwargs["Filters"] = [{"Name": "instance-id", "Values": list(instance_ids)}]
        found: dict[str, Instance] = {}
        for page in self.client("ec2", region).get_paginator("describe_instances").paginate(**kwargs):
            for res in page["Reservations"]:
                for raw in res["Instances"]:
                    found[raw["InstanceId"]] = Instance(raw, region)
        return found

    def _snapshot(self, region: str) -> dict[str, "Instance"]:
        snap = self._fresh(region)
        if snap is not None:
            return snap
        with self._lock:
            region_lock = self._region_locks.setdefault(region, threading.Lock())
        with region_lock:  # one full DescribeInstances per region at a time
            snap = self._fresh(region)
            if snap is not None:
                return snap
            with self._lock:
                taken, generation = now(), self._generation
            found = self._describe(region, None)
            with self._lock:
                if generation == self._generation:  # no EC2 write raced with the read
                    self._snapshots[region] = (taken, found)
            return found

    def instances(self, region: str, instance_ids: list[str] | None = None) -> list["Instance"]:
        if instance_ids is None:
            return list(self._snapshot(region).values())
        if not instance_ids:
            return []
        snap = self._fresh(region)
        found = snap if snap is not None else self._describe(region, instance_ids)
        return [found[i] for i in instance_ids if i in found]

    def instance(self, region: str, instance_id: str) -> "Instance | None":
        found = self.instances(region, [instance_id])
        return found[0] if found else None


class Instance:
    """An EC2 instance from moto plus what its test-only tags say about SSM."""

    def __init__(self, raw: dict, region: str):
        self.raw = raw
        self.region = region
        self.id = raw["InstanceId"]
        self.state = raw.get("State", {}).get("Name", "running")
        self.tags = {t["Key"]: t["Value"] for t in raw.get("Tags", []) or []}
        ssm = self.tags.get(TAG_SSM, "unmanaged").strip().lower()
        self.ssm_mode = ssm if ssm in SSM_MODES else "unmanaged"
        plat = self.tags.get(TAG_PLATFORM, "Linux").strip().lower()
        self.platform = "Windows" if plat == "windows" else "Linux"
        self.agent_version = self.tags.get(TAG_AGENT, DEFAULT_AGENT_VERSION).strip()
        beh = self.tags.get(TAG_BEHAVIOUR, "record").strip().lower()
        self.behaviour = beh if beh in BEHAVIOURS else "record"
        try:
            self.delivery_timeout = float(self.tags[TAG_DELIVERY_TIMEOUT])
        except (KeyError, ValueError):
            self.delivery_timeout = None
        self.name = self.tags.get("Name", "")
        timing = self.tags.get(TAG_REPLAY_TIMING, "instant").strip().lower()
        self.replay_timing = timing if timing in REPLAY_TIMINGS else "instant"

    @property
    def alive(self) -> bool:
        return self.state not in ("terminated", "shutting-down")

    @property
    def managed(self) -> bool:
        """Registered with SSM: has an ssm tag of online/offline and is not terminated."""
        return self.alive and self.ssm_mode in ("online", "offline")

    @property
    def online(self) -> bool:
        return self.managed and self.ssm_mode == "online" and self.state in ("pending", "running")

    def information(self) -> dict:
        """An InstanceInformation object (DescribeInstanceInformation)."""
        windows = self.platform == "Windows"
        ip = self.raw.get("PrivateIpAddress", "")
        dns = self.raw.get("PrivateDnsName", "") or f"ip-{ip.replace('.', '-')}"
        launch = self.raw.get("LaunchTime")
        launched = launch.timestamp() if hasattr(launch, "timestamp") else now()
        return prune({
            "InstanceId": self.id,
            "PingStatus": "Online" if self.online else "ConnectionLost",
            "LastPingDateTime": ts(now() if self.online else launched),
            "AgentVersion": self.agent_version,
            "IsLatestVersion": False,
            "PlatformType": self.platform,
            "PlatformName": "Microsoft Windows Server 2022 Datacenter" if windows
            else PLATFORM_NAME_LINUX,
            "PlatformVersion": "10.0.20348" if windows else PLATFORM_VERSION_LINUX,
            "ResourceType": "EC2Instance",
            "IPAddress": ip,
            "ComputerName": (dns.split(".")[0].upper()[:15] if windows else dns),
            "SourceId": self.id,
            "SourceType": "AWS::EC2::Instance",
        })
