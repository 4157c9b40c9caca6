"""A real network boundary (issue 13, acceptance 1 and 5): the service in one network
namespace, Pieces OS and the bridge agent in a "laptop" namespace, Pieces bound to the
laptop's loopback only. The service cannot reach it; through the bridge it imports 300
assets, sees an edit made through the format, and its API writes reach Pieces. Taking the
link down is noticed within two heartbeat intervals on both sides.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from tests.e2e.bridge_harness import BRIDGES, STATUS, wait_until
from tests.e2e.bridge_netns import Namespaces, namespaces
from tests.e2e.sync_harness import ROOT, _clean_env, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
SECRET = "bridge-netns-secret-" + "z" * 24
HEARTBEAT = 1.0
ASSETS = 300


def bearer(user: str) -> dict[str, str]:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return {"Authorization": "Bearer " + codec.issue(user, Role.USER, ttl_seconds=900)}


class Procs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.running.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path)
    try:
        yield running
    finally:
        for process in reversed(running.running):
            stop(process, timeout=10)


def _pieces_names(ns: Namespaces, env: dict[str, str]) -> list[str] | None:
    done = subprocess.run(
        ns.python(ns.laptop, "-m", "tests.e2e.netns_pieces", "names", "http://127.0.0.1:39300"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_the_bridge_crosses_a_real_network_boundary(procs: Procs, tmp_path: Path) -> None:
    env = _clean_env()
    with namespaces() as ns:
        service_env = {
            **env,
            "JWT_SECRET": SECRET,
            "ENCRYPTION_KEY": "cd" * 32,
            "PIECES_INTEGRATION_DATA_DIR": str(tmp_path / "service"),
            "PIECES_INTEGRATION_PIECES__BRIDGE_HEARTBEAT_SECONDS": str(HEARTBEAT),
            "PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE": "600000",
            "PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE": "10000",
            "LOG_LEVEL": "info",
        }
        procs.start(
            "service",
            ns.python(
                ns.service,
                "-m",
                "pieces_integration",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                "8080",
            ),
            service_env,
        )
        procs.start(
            "pieces",
            ns.python(
                ns.laptop,
                "-m",
                "pieces_integration",
                "emulate",
                "pieces",
                "--host",
                "127.0.0.1",
                "--port",
                "39300",
                "--assets",
                str(ASSETS),
                "--seed",
                "7",
            ),
            env,
        )
        api = f"http://{ns.api_ip}:8080"
        alice = bearer("alice")
        with httpx.Client(base_url=api, timeout=30) as http:
            wait_until(lambda: _healthy(http), within=60, step=0.2)
            assert len(wait_until(lambda: _pieces_names(ns, env), within=30, step=0.2)) == ASSETS

            # The service cannot reach the laptop's Pieces OS, by address or by loopback.
            for url in (f"http://{ns.laptop_ip}:39300", "http://127.0.0.1:39300"):
                found = http.post(
                    "/api/v1/integrations/pieces/detect", json={"url": url}, headers=alice
                )
                assert found.status_code == 200 and found.json()["available"] is False, found.text
            probe = subprocess.run(
                ns.python(
                    ns.service,
                    "-c",
                    f"import socket; socket.create_connection(('{ns.laptop_ip}', 39300), 2)",
                ),
                capture_output=True,
                timeout=30,
            )
            assert probe.returncode != 0

            code = http.post(BRIDGES, json={"name": "laptop"}, headers=alice).json()["pairing_code"]
            config = tmp_path / "agent-config"
            server = f"http://{ns.service_ip}:8080"
            pair = [
                *ns.python(ns.laptop, "-m", "pieces_integration", "bridge", "pair"),
                "--server",
                server,
                "--code",
                code,
                "--config-dir",
                str(config),
            ]
            refused = subprocess.run(pair, env=env, cwd=ROOT, capture_output=True, timeout=60)
            assert refused.returncode == 2 and b"refusing plain ws://" in refused.stderr
            paired = subprocess.run(
                [*pair, "--allow-insecure"], env=env, cwd=ROOT, capture_output=True, timeout=60
            )
            assert paired.returncode == 0, paired.stderr
            assert (config / "bridge.json").stat().st_mode & 0o777 == 0o600

            procs.start(
                "agent",
                [
                    *ns.python(ns.laptop, "-m", "pieces_integration", "bridge", "run"),
                    "--server",
                    server,
                    "--allow-insecure",
                    "--config-dir",
                    str(config),
                    "--heartbeat",
                    str(HEARTBEAT),
                    "--backoff-base",
                    "0.2",
                ],
                env,
            )
            # The initial import, through the bridge (Pieces found by the agent's port scan).
            wait_until(lambda: _count(http, alice) == ASSETS, within=90, step=0.2)
            status = http.get(STATUS, headers=alice).json()
            assert status["mode"] == "bridge" and status["connected"] is True, status
            shown = subprocess.run(
                [
                    *ns.python(ns.laptop, "-m", "pieces_integration", "bridge", "status"),
                    "--config-dir",
                    str(config),
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "paired: yes" in shown.stdout and "agent: connected" in shown.stdout, shown
            assert status["bridge"]["connected"] is True

            # An edit made in Pieces, through the format, reaches the API.
            marker = "edited-in-pieces-" + uuid.uuid4().hex[:8]
            done = subprocess.run(
                ns.python(
                    ns.laptop,
                    "-m",
                    "tests.e2e.netns_pieces",
                    "edit",
                    "http://127.0.0.1:39300",
                    marker,
                ),
                env=env,
                cwd=ROOT,
                capture_output=True,
                timeout=30,
            )
            assert done.returncode == 0, done.stderr
            wait_until(lambda: _content_seen(http, alice, marker), within=30, step=0.2)

            # An asset created through the API reaches Pieces.
            name = "made-in-the-api-" + uuid.uuid4().hex[:8]
            created = http.post(
                "/api/v1/assets",
                json={"name": name, "content": "print('from the api')", "language": "python"},
                headers=alice,
            )
            assert created.status_code == 201, created.text
            wait_until(lambda: name in (_pieces_names(ns, env) or []), within=30, step=0.3)

            # The link goes dark (no FIN): both sides notice within two intervals.
            wait_until(lambda: _agent_state(config) == "connected", within=10)
            wait_until(lambda: _bridge_connected(http, alice), within=10)
            # Each side's own record of the moment it noticed (its log line) is measured, not
            # when this loop's poll of a loaded service got its answer. The cut time is taken
            # before the command, so the figure is an upper bound.
            cut = time.time()
            subprocess.run(
                ["ip", "-n", ns.service, "link", "set", ns.link_service, "down"],
                check=True,
                timeout=10,
            )
            wait_until(lambda: not _bridge_connected(http, alice), within=6 * HEARTBEAT, step=0.05)
            wait_until(
                lambda: _agent_state(config) not in (None, "connected"), within=6 * HEARTBEAT
            )
            service_noticed = _noticed(procs.log("service")) - cut
            agent_noticed = _noticed(procs.log("agent")) - cut
            assert 0 < service_noticed <= 2 * HEARTBEAT + 0.25, service_noticed
            assert 0 < agent_noticed <= 2 * HEARTBEAT + 0.25, agent_noticed


def _noticed(log: str) -> float:
    """When a side declared its peer silent: the timestamp of its last `bridge_heartbeat_lost`
    log line (the service logs JSON, the agent logs console lines that start with the time)."""
    lines = [line for line in log.splitlines() if "bridge_heartbeat_lost" in line]
    assert lines, "no bridge_heartbeat_lost in the log:\n" + log[-2000:]
    line = lines[-1].strip()
    stamp = json.loads(line)["timestamp"] if line.startswith("{") else line.split()[0]
    return datetime.fromisoformat(stamp).timestamp()


def _healthy(http: httpx.Client) -> bool:
    try:
        return http.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _count(http: httpx.Client, headers: dict[str, str]) -> int:
    response = http.get("/api/v1/assets", params={"limit": 1}, headers=headers)
    return int(response.headers.get("X-Total-Count", -1))


def _content_seen(http: httpx.Client, headers: dict[str, str], marker: str) -> bool:
    response = http.get("/api/v1/assets", params={"search": marker, "limit": 5}, headers=headers)
    return any(marker in asset["content"] for asset in response.json())


def _bridge_connected(http: httpx.Client, headers: dict[str, str]) -> bool:
    listed = http.get(BRIDGES, headers=headers).json()
    return bool(listed["data"]) and listed["data"][0]["connected"] is True


def _agent_state(config: Path) -> str | None:
    try:
        return str(json.loads((config / "bridge-status.json").read_text()).get("state"))
    except (OSError, ValueError):
        return None
