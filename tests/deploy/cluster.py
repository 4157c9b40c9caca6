"""A cluster on one machine (issue 14, item 4): replicas of the installed wheel on PostgreSQL +
Redis behind HAProxy (Debian's package), with the Pieces and AIWFE emulators.

`LocalCluster` is used by tests/deploy/test_local_cluster.py and bench/bench_cluster.py; the
HAProxy configuration is deploy/local-cluster/haproxy.cfg.template. Every replica runs the
`pieces-integration` command of the wheel's venv (tests/deploy/wheel_install.py) on a port
picked once, so a restarted replica comes back where HAProxy expects it.
"""

from __future__ import annotations

import csv
import io
import shutil
import signal
import socket
import string
import subprocess
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from pieces_integration.emulators.aiwfe.server import AIWFEEmulator
from pieces_integration.emulators.pieces.server import EmulatorServer
from tests.conftest import POSTGRES_URL, REDIS_URL, drop_postgres_schema, new_postgres_schema
from tests.deploy.wheel_install import ROOT, Installed
from tests.loops import BackgroundLoop

T = TypeVar("T")
SECRET = "local-cluster-secret-" + "c" * 24
TEMPLATE = ROOT / "deploy" / "local-cluster" / "haproxy.cfg.template"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bearer(user: str) -> dict[str, str]:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return {"Authorization": "Bearer " + codec.issue(user, Role.USER, ttl_seconds=3600)}


@dataclass
class Replica:
    name: str
    port: int
    data: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class LocalCluster:
    installed: Installed
    workdir: Path
    users: list[str]
    replicas: int = 3
    assets_per_user: int = 10
    drain_seconds: float = 1.5
    check_ms: int = 200
    sync_interval: float = 2.0
    schema: str = ""
    prefix: str = ""
    nodes: list[Replica] = field(default_factory=list)
    pieces: dict[str, EmulatorServer] = field(default_factory=dict)
    aiwfe: AIWFEEmulator | None = None
    kills: list[float] = field(default_factory=list)  # wall-clock times of kill -9
    port: int = 0
    _loop: BackgroundLoop | None = None
    _haproxy: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (make install installs it)")
        self.schema = new_postgres_schema("cluster" + uuid.uuid4().hex[:6])
        self.prefix = f"pi-test-cluster-{uuid.uuid4().hex[:8]}:"
        self._loop = BackgroundLoop()
        self.aiwfe = AIWFEEmulator()
        for n, user in enumerate(self.users):
            self.aiwfe.state.add_user(user)
            self.pieces[user] = EmulatorServer(assets=self.assets_per_user, seed=100 + n)
        self._loop.run(self.aiwfe.start())
        for server in self.pieces.values():
            self._loop.run(server.start())
        self.nodes = [
            Replica(f"r{i + 1}", free_port(), self.workdir / f"r{i + 1}")
            for i in range(self.replicas)
        ]
        migrated = subprocess.run(
            [str(self.installed.cli), "migrate"],
            env=self._env(self.nodes[0]),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrated.returncode != 0:
            raise RuntimeError(migrated.stderr[-2000:])
        for node in self.nodes:
            node.data.mkdir(parents=True, exist_ok=True)
            self.spawn(node)
        for node in self.nodes:
            self.wait_ready(node)
        self._start_haproxy()

    def connect_users(self) -> None:
        for user in self.users:
            response = httpx.post(
                self.url + "/api/v1/integrations/pieces/connect",
                json={"pieces_url": self.pieces[user].base_url},
                headers=bearer(user),
                timeout=60,
            )
            if response.status_code != 200:
                raise RuntimeError(f"connect {user}: {response.text}")

    def stop(self) -> None:
        for node in self.nodes:
            self._terminate(node)
        if self._haproxy is not None:
            self._haproxy.terminate()
            self._haproxy.wait(10)
        if self._loop is not None:
            for server in self.pieces.values():
                self._loop.run(server.stop())
            if self.aiwfe is not None:
                self._loop.run(self.aiwfe.stop())
            self._loop.close()
        if self.schema:
            drop_postgres_schema(self.schema)
        if self.prefix:
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{self.prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()

    def _env(self, node: Replica) -> dict[str, str]:
        assert self.aiwfe is not None
        return self.installed.env(
            HOME=str(self.workdir),
            DATABASE_URL=POSTGRES_URL,
            DATABASE_SCHEMA=self.schema,
            REDIS_URL=REDIS_URL,
            REDIS_KEY_PREFIX=self.prefix,
            JWT_SECRET=SECRET,
            ENCRYPTION_KEY="ab" * 32,
            AIWFE_API_URL=self.aiwfe.url,
            PORT=str(node.port),
            LOG_LEVEL="warning",
            RATE_LIMIT_PER_MINUTE="10000000",
            RATE_LIMIT_BURST="1000000",
            PIECES_INTEGRATION_DATA_DIR=str(node.data),
            PIECES_INTEGRATION_SERVER__DRAIN_SECONDS=str(self.drain_seconds),
            PIECES_INTEGRATION_SYNC__INTERVAL_SECONDS=str(self.sync_interval),
            PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE="6000000",
            PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE="100000",
        )

    def spawn(self, node: Replica) -> None:
        node.starts += 1
        with (node.data / f"serve-{node.starts}.log").open("wb") as log:
            node.process = subprocess.Popen(
                [str(self.installed.cli), "serve", "--host", "127.0.0.1"],
                env=self._env(node),
                cwd=node.data,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, node: Replica, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert node.process is not None
            if node.process.poll() is not None:
                log = (node.data / f"serve-{node.starts}.log").read_text()[-3000:]
                raise RuntimeError(f"{node.name} exited {node.process.returncode}: {log}")
            try:
                if httpx.get(node.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{node.name} not ready")

    def _terminate(self, node: Replica, timeout: float = 40) -> int | None:
        process = node.process
        if process is None or process.poll() is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(10)

    def restart(self, index: int) -> int | None:
        """SIGTERM (the drain), wait for the exit, start again, wait until ready."""
        node = self.nodes[index]
        code = self._terminate(node)
        self.spawn(node)
        self.wait_ready(node)
        self.wait_in_rotation(index)
        return code

    def kill(self, index: int) -> None:
        node = self.nodes[index]
        assert node.process is not None
        self.kills.append(time.time())
        node.process.kill()
        node.process.wait(10)

    def revive(self, index: int) -> None:
        self.spawn(self.nodes[index])
        self.wait_ready(self.nodes[index])
        self.wait_in_rotation(index)

    def pids(self) -> list[int]:
        return [n.process.pid for n in self.nodes if n.process and n.process.poll() is None]

    # -- HAProxy ---------------------------------------------------------------------

    def _start_haproxy(self) -> None:
        self.port = free_port()
        servers = "\n".join(f"    server {n.name} 127.0.0.1:{n.port}" for n in self.nodes)
        config = string.Template(TEMPLATE.read_text()).substitute(
            port=self.port,
            check_ms=self.check_ms,
            servers=servers,
            stats_socket=self.workdir / "haproxy.sock",
        )
        path = self.workdir / "haproxy.cfg"
        path.write_text(config)
        checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy -c: {checked.stdout}{checked.stderr}")
        with (self.workdir / "haproxy.log").open("wb") as log:
            self._haproxy = subprocess.Popen(
                ["haproxy", "-W", "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
            )
        for index in range(len(self.nodes)):
            self.wait_in_rotation(index)

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's `show stat` for the replicas' backend."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.workdir / "haproxy.sock"))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] == "replicas"]

    def wait_in_rotation(self, index: int, timeout: float = 30) -> None:
        name = self.nodes[index].name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._haproxy is not None and self._haproxy.poll() is not None:
                log = (self.workdir / "haproxy.log").read_text()[-2000:]
                raise RuntimeError(f"haproxy exited {self._haproxy.returncode}: {log}")
            try:
                rows = self.stats()
            except OSError:  # the stats socket is not there yet
                rows = []
            if any(r["svname"] == name and r["status"].startswith("UP") for r in rows):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{name} not back in HAProxy's rotation")

    def retried(self) -> dict[str, int]:
        backend = next(r for r in self.stats() if r["svname"] == "BACKEND")
        return {"retries": int(backend["wretr"] or 0), "redispatches": int(backend["wredis"] or 0)}

    # -- reading the state back ------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        assert self._loop is not None
        return self._loop.run(coro, timeout)
