"""Real processes for the sync crash and replica tests (and `bench/bench_sync*.py`).

The emulators run as their own processes (`pieces-integration emulate ...`) so they survive
the service being killed; the service runs as `python -m pieces_integration sync|serve`.
Everything is read back the way a user would see it: the Pieces library through our Pieces
client, AIWFE through its contract API, our store through the repositories.

Setup of a user (documented in tests/e2e/test_sync_crash.py): the Pieces connection is
stored with the service's own use case (`PiecesIntegration.connect`, what
`POST /api/v1/integrations/pieces/connect` calls), from a container bootstrapped on the
same settings the service processes get.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import TokenBucket
from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.bootstrap import bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Asset, AssetBackup, content_hash
from pieces_integration.domain.queries import AssetQuery

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _clean_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIECES_INTEGRATION_")
        and key not in ("PORT", "REDIS_URL", "DATABASE_URL", "DATABASE_SCHEMA", "AIWFE_API_URL")
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pieces_integration", *args]


@contextmanager
def emulator_processes(
    tmp: Path, *, assets: int, seed: int, pieces_count: int = 1
) -> Iterator[tuple[list[str], str]]:
    """`pieces_count` Pieces OS emulators (the first seeded with `assets`) and one AIWFE."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pieces_urls = []
        for index in range(pieces_count):
            port = free_port()
            args = ["emulate", "pieces", "--port", str(port), "--seed", str(seed + index)]
            args += ["--assets", str(assets if index == 0 else 0)]
            with (tmp / f"pieces-{index}.log").open("wb") as log:  # the child keeps a copy
                processes.append(
                    subprocess.Popen(
                        cli(*args), env=_clean_env(), cwd=tmp, stdout=log, stderr=subprocess.STDOUT
                    )
                )
            pieces_urls.append(f"http://127.0.0.1:{port}")
        port = free_port()
        with (tmp / "aiwfe.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    cli("emulate", "aiwfe", "--port", str(port)),
                    env=_clean_env(),
                    cwd=tmp,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        aiwfe_url = f"http://127.0.0.1:{port}"
        for url, process in zip(pieces_urls, processes, strict=False):
            _wait_http(url + "/.well-known/health", process)
        _wait_http(aiwfe_url + "/v1/health", processes[-1])
        yield pieces_urls, aiwfe_url
    finally:
        for process in processes:
            stop(process)


@dataclass
class Service:
    """How to start this service's processes on one database."""

    data_dir: Path
    aiwfe_url: str
    database_url: str | None = None  # None: the embedded SQLite file in data_dir
    schema: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = _clean_env()
        env.update(
            PIECES_INTEGRATION_DATA_DIR=str(self.data_dir),
            AIWFE_API_URL=self.aiwfe_url,
            LOG_LEVEL="warning",
            # The emulators are local: the service's default politeness toward a laptop's
            # Pieces OS would dominate a 10k-asset push.
            PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE="600000",
            PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE="10000",
        )
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        if self.schema is not None:
            env["DATABASE_SCHEMA"] = self.schema
        env.update(self.extra)
        return env

    def settings_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {"data_dir": self.data_dir, "aiwfe_api_url": self.aiwfe_url}
        if self.database_url is not None:
            overrides["database_url"] = self.database_url
        if self.schema is not None:
            overrides["database_schema"] = self.schema
        return overrides

    def migrate(self) -> None:
        settings = load_settings(**self.settings_overrides())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(settings.sqlalchemy_url, schema=settings.database_schema)

    def connect(self, user_id: str, pieces_url: str, aiwfe_url: str) -> None:
        """Store USER's Pieces connection with the service's own connect use case."""
        httpx.post(f"{aiwfe_url}/_emulator/users", json={"user_id": user_id}, timeout=10)
        settings = load_settings(**self.settings_overrides())

        async def run() -> None:
            container = bootstrap(settings)
            try:
                result = await container.sync.pieces.connect(
                    user_id, pieces_url, api_key=None, preferences=None
                )
                assert result.success, result
            finally:
                await container.aclose()

        asyncio.run(run())

    def sync(self, user_id: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            return subprocess.Popen(
                cli("sync", "--user", user_id),
                env=self.env(),
                cwd=self.data_dir,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def local_assets(self, user_id: str) -> list[Asset]:
        settings = load_settings(**self.settings_overrides())
        engine = create_engine(settings.sqlalchemy_url, schema=settings.database_schema)
        uow = SqlUnitOfWorkFactory(engine)
        found: list[Asset] = []
        try:
            async with uow(readonly=True) as unit:
                cursor: str | None = None
                while True:
                    page = await unit.assets.page(user_id, AssetQuery(limit=1000, cursor=cursor))
                    found.extend(page.items)
                    if page.next_cursor is None:
                        return found
                    cursor = page.next_cursor
        finally:
            await engine.dispose()

    async def backups(self, user_id: str) -> list[AssetBackup]:
        """Every version the service kept before overwriting one of USER's assets."""
        settings = load_settings(**self.settings_overrides())
        engine = create_engine(settings.sqlalchemy_url, schema=settings.database_schema)
        try:
            async with SqlUnitOfWorkFactory(engine)(readonly=True) as unit:
                return await unit.conflicts.backups(user_id)
        finally:
            await engine.dispose()


def pieces_client(url: str, http: httpx.AsyncClient) -> PiecesOSClient:
    """A client acting as the developer's IDE in Pieces (not the service)."""
    return PiecesOSClient(
        HttpxPiecesTransport(http, url),
        settings=ClientSettings(timeout=60.0),
        limiter=TokenBucket(rate_per_minute=6_000_000, burst=100_000),
    )


async def pieces_contents(url: str, user_id: str) -> dict[str, str]:
    """Pieces asset id -> content."""
    async with httpx.AsyncClient() as http:
        client = pieces_client(url, http)
        await client.connect()
        try:
            return {a.id: a.content for a in await client.list_assets(user_id)}
        finally:
            await client.aclose()


async def aiwfe_contents(url: str, user_id: str) -> dict[str, str]:
    """AIWFE asset id -> content, through the contract's paged listing."""
    found: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get(f"/v1/users/{user_id}/assets", params=params)).json()
            found.update({a["id"]: a["content"] for a in page["data"]})
            cursor = page.get("next_cursor")
            if not cursor:
                return found


def hashes(contents: Any) -> Counter[str]:
    return Counter(content_hash(text) for text in contents)
