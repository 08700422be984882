"""Real redis-server processes a test breaks on purpose: kill, stall, restart, replicate, fail over.

Each node runs on a free loopback port in a folder of its own; Sentinels are `redis-server FILE
--sentinel` with a configuration written here. `RedisNode.stall` is SIGSTOP (``DEBUG SLEEP`` is
disabled on Redis 7), `RedisNode.kill` SIGKILL: the faults a test injects are the ones a machine
or a container runtime inflicts.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from raibid_api.embedded import find_redis_binary, free_port
from tests.support.polling import eventually_sync

MASTER = "raibid"
START_TIMEOUT = 15.0


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis (or Sentinel) on ``port`` of loopback answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisNode:
    """One redis-server (or Sentinel) child process on a fixed port, started and broken at will."""

    folder: Path
    args: list[str] = field(default_factory=list)
    sentinel_config: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The node's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisNode:
        """Start the node (again, on the same port and folder) and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        binary = str(find_redis_binary())
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                  "--logfile", str(self.folder / "redis.log"), "--save", ""]  # fmt: skip
        if self.sentinel_config is not None:
            config = self.folder / "sentinel.conf"
            if not config.exists():  # a Sentinel rewrites its file: keep what it learned
                config.write_text(self.sentinel_config)
            command = [binary, str(config), "--sentinel", *common]
        else:
            command = [binary, *common, *self.args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        eventually_sync(lambda: ping(self.port), START_TIMEOUT, f"redis on port {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: no last write, no goodbye to the clients (the kernel closes the sockets)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stall(self) -> None:
        """SIGSTOP: connections stay open and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `stall`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the node however it is (stalled ones too)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGCONT)
        self.kill()


def sentinel_config(primary: RedisNode, *, down_after_ms: int = 1000) -> str:
    """A Sentinel's configuration watching ``primary`` as `MASTER`, quorum 2, quick to act."""
    return "\n".join([
        f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2",
        f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
        f"sentinel failover-timeout {MASTER} 10000",
        f"sentinel parallel-syncs {MASTER} 1",
        "",
    ])  # fmt: skip


@dataclass
class SentinelCluster:
    """A primary, one replica and three Sentinels, all on loopback."""

    primary: RedisNode
    replica: RedisNode
    sentinels: list[RedisNode]

    @classmethod
    def start(cls, folder: Path, *, appendfsync: str = "everysec") -> SentinelCluster:
        """Start the five processes and wait until the Sentinels know the replica."""
        # a replica syncs at once (the default waits 5 s for more replicas to share the sync)
        persistence = ["--appendonly", "yes", "--appendfsync", appendfsync,
                       "--repl-diskless-sync-delay", "0"]  # fmt: skip
        primary = RedisNode(folder / "primary", persistence).start()
        replica = RedisNode(
            folder / "replica", [*persistence, "--replicaof", "127.0.0.1", str(primary.port)]
        ).start()
        sentinels = [
            RedisNode(folder / f"sentinel-{i}", sentinel_config=sentinel_config(primary)).start()
            for i in range(3)
        ]
        cluster = cls(primary, replica, sentinels)
        eventually_sync(cluster.replica_in_sync, START_TIMEOUT, "the replica to sync")
        eventually_sync(
            lambda: all(cluster.sentinel_sees_replica(s) for s in sentinels),
            START_TIMEOUT, "every Sentinel to know the replica and the other Sentinels",
        )  # fmt: skip
        return cluster

    @property
    def addresses(self) -> list[str]:
        """The Sentinels' ``host:port``."""
        return [s.address for s in self.sentinels]

    def replica_in_sync(self) -> bool:
        """Whether the replica's link to the primary is up."""
        info = _ask(self.replica.port, lambda r: r.info("replication"))
        return isinstance(info, dict) and info.get("master_link_status") == "up"

    def replica_in_sync_with_new_master(self) -> bool:
        """After a failover: whether the old primary now replicates from the old replica."""
        info = _ask(self.primary.port, lambda r: r.info("replication"))
        return (
            isinstance(info, dict)
            and info.get("master_port") == self.replica.port
            and info.get("master_link_status") == "up"
        )

    def sentinel_sees_replica(self, sentinel: RedisNode) -> bool:
        """Whether ``sentinel`` knows the replica and both other Sentinels."""
        state = _ask(sentinel.port, lambda r: r.sentinel_master(MASTER))
        return (
            isinstance(state, dict)
            and int(state.get("num-slaves", 0)) == 1
            and int(state.get("num-other-sentinels", 0)) == 2
        )

    def master_port(self) -> int | None:
        """The port the Sentinels name as master now (the first that answers)."""
        for sentinel in self.sentinels:
            found = _ask(sentinel.port, lambda r: r.sentinel_get_master_addr_by_name(MASTER))
            if isinstance(found, tuple | list) and len(found) == 2:
                return int(found[1])
        return None

    def stop(self) -> None:
        """End every process."""
        for node in [*self.sentinels, self.replica, self.primary]:
            node.stop()


def _ask(port: int, question: Callable[[Redis], object]) -> object:
    """``question`` asked of the node on ``port``; None when it does not answer."""
    try:
        with Redis(port=port, socket_timeout=1.0, decode_responses=True) as client:
            return question(client)
    except RedisError:
        return None


def wait_for_master(cluster: SentinelCluster, port: int, timeout: float) -> float:
    """Wait until the Sentinels name ``port`` as master; the seconds it took."""
    started = time.monotonic()
    eventually_sync(lambda: cluster.master_port() == port, timeout, f"master on port {port}")
    return time.monotonic() - started
