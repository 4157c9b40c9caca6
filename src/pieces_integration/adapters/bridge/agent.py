"""`BridgeAgent`: the developer's side of the bridge (`pieces-integration bridge run`).

It dials the service over one WebSocket (websockets' reconnect iterator, its keepalive
pings and write limit) and serves Pieces OS calls with the `Dispatcher`. Reconnects forever:
exponential backoff with full jitter (1 s doubling to 60 s), reset once a connection held;
at once, and on the next `--server`, when a replica says it is going away. A revoked or
unknown credential (HTTP 401/403, close 4401/4403) ends the agent: retrying cannot help.
WSS is verified (optionally against a custom CA); `ws://` only to loopback unless allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import ssl
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.client import process_exception as default_verdict

from pieces_integration.adapters.bridge import agent_files
from pieces_integration.adapters.bridge.dispatcher import Dispatcher
from pieces_integration.adapters.bridge.local_pieces import LocalPieces
from pieces_integration.domain import bridge_protocol as wire
from pieces_integration.domain.backoff import exponential_backoff
from pieces_integration.ports.channel import ChannelClosed

log = structlog.get_logger(__name__)
CONNECT_PATH = "/api/v1/integrations/pieces/bridges/connect"
FATAL_STATUSES = (401, 403, 404)
FATAL_CLOSES = (4401, 4403)
HELD = 30.0  # a connection that lasted this long resets the backoff
ROTATE_AFTER = 3  # failed attempts on one server before trying the next
DEAD_AFTER = 1.8  # heartbeat intervals without a frame from the service: the link is dead


class AgentError(Exception):
    """The agent cannot go on (bad URL, revoked credential); the message says why."""


def socket_url(server: str, *, allow_insecure: bool = False) -> str:
    """The bridge endpoint of `server` (http(s) or ws(s)); plain text only to loopback."""
    parts = urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise AgentError(f"{server} is not an http(s):// or ws(s):// URL")
    if scheme == "ws" and not allow_insecure and not _loopback(parts.hostname):
        raise AgentError(
            f"refusing plain ws:// to {parts.hostname}: use wss:// (or --allow-insecure "
            "for development)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(CONNECT_PATH):
        path += CONNECT_PATH
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def full_jitter(
    base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None
) -> Generator[float]:
    # bandit B311: reconnect jitter, not a secret.
    rng = rng or random.Random()  # nosec B311
    attempt = 0
    while True:
        attempt += 1
        yield exponential_backoff(attempt, base=base, cap=cap, rng=rng)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    servers: tuple[str, ...]
    pieces_url: str
    credential: str
    device_id: str
    agent_version: str
    heartbeat: float = 15.0
    ca_file: Path | None = None
    allow_insecure: bool = False
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    status_dir: Path | None = None
    write_limit: int = 1024 * 1024


class _Rotate(Exception):
    pass


class _WsWire:
    def __init__(self, connection: Any) -> None:
        self._c = connection

    async def send_text(self, text: str) -> None:
        await self._c.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._c.send(data)

    async def receive(self) -> str | bytes:
        try:
            message: str | bytes = await self._c.recv()
        except websockets.ConnectionClosed as exc:
            raise ChannelClosed(exc.rcvd.code if exc.rcvd else None) from exc
        return message

    async def close(self, code: int, reason: str) -> None:
        await self._c.close(code, reason)


class BridgeAgent:
    def __init__(self, settings: AgentSettings, *, local: LocalPieces | None = None) -> None:
        self.settings = settings
        self.urls = [
            socket_url(server, allow_insecure=settings.allow_insecure)
            for server in settings.servers
        ]
        self._local = local or LocalPieces(settings.pieces_url)
        self._tls = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        # bandit B311: reconnect jitter, not a secret.
        self._rng = random.Random()  # nosec B311
        self._server = 0
        self._drops = 0
        self.status: dict[str, Any] = {"state": "starting", "last_error": None}
        self.connections = 0

    def _note(self, **changes: Any) -> None:
        self.status.update(changes, updated_at=datetime.now(UTC).isoformat())
        if self.settings.status_dir is not None:
            with contextlib.suppress(OSError):
                agent_files.save_status(self.settings.status_dir, self.status)

    def _connector(self, url: str) -> Any:
        failures = 0
        rotate = len(self.urls) > 1

        def process_exception(exc: Exception) -> Exception | None:
            nonlocal failures
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in FATAL_STATUSES:
                return AgentError(f"the service refused this bridge (HTTP {status}); pair again")
            verdict = default_verdict(exc)
            failures += 1
            self._note(state="waiting", last_error=f"{url}: {exc!r}"[:300])
            log.info("bridge_connect_failed", server=url, error=repr(exc), attempt=failures)
            if verdict is None and rotate and failures >= ROTATE_AFTER:
                return _Rotate()
            return verdict

        heartbeat = self.settings.heartbeat
        return ws_connect(
            url,
            additional_headers={
                "Authorization": f"Bearer {self.settings.credential}",
                "X-Bridge-Device": self.settings.device_id,
                "User-Agent": f"pieces-integration-bridge/{self.settings.agent_version}",
            },
            ssl=self._tls if url.startswith("wss") else None,
            proxy=None,
            open_timeout=10,
            ping_interval=heartbeat,
            ping_timeout=0.8 * heartbeat,  # dead link noticed within two intervals
            close_timeout=1,
            max_size=wire.CHUNK_SIZE + wire.MAX_CONTROL_FRAME,
            max_queue=64,
            # Snapshots are JSON: deflate would shrink them, but at a CPU cost on both ends
            # that halves the import rate on a LAN (bench/bench_bridge.py); off.
            compression=None,
            write_limit=self.settings.write_limit,
            reconnect_delays=lambda: full_jitter(
                self.settings.backoff_base, self.settings.backoff_cap, self._rng
            ),
            process_exception=process_exception,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set (SIGINT/SIGTERM); raises AgentError when it cannot go on."""
        self._note(state="connecting", server=self.urls[0], pieces_url=self.settings.pieces_url)
        work = asyncio.create_task(self._loop(stop), name="bridge-agent")
        stopping = asyncio.create_task(stop.wait())
        try:
            # A stop interrupts anything: a backoff sleep, a connect attempt, a session.
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()  # AgentError: revoked, or refused for good
        finally:
            stopping.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
            if self.status.get("state") != "revoked":
                self._note(state="stopped")
            await self._local.aclose()

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            url = self.urls[self._server % len(self.urls)]
            try:
                await self._serve_server(url, stop)
            except _Rotate:
                self._server += 1

    async def _serve_server(self, url: str, stop: asyncio.Event) -> None:
        async for connection in self._connector(url):
            started = time.monotonic()
            self.connections += 1
            self._note(state="connected", server=url, since=datetime.now(UTC).isoformat())
            log.info("bridge_connected", server=url)
            dispatcher = Dispatcher(_WsWire(connection), self._local)
            code = await self._serve_connection(connection, dispatcher, stop)
            if stop.is_set():
                return
            if code in FATAL_CLOSES:
                self._note(state="revoked", last_error=f"closed by the service ({code})")
                raise AgentError(f"the service closed this bridge for good (code {code})")
            if dispatcher.reconnect_asked is not None:
                self._drops = 0
                self._note(state="connecting", last_error=dispatcher.reconnect_asked)
                raise _Rotate()  # at once, and to the next server if there is one
            self._drops = 0 if time.monotonic() - started > HELD else self._drops + 1
            delay = exponential_backoff(
                self._drops,
                base=self.settings.backoff_base,
                cap=self.settings.backoff_cap,
                rng=self._rng,
            )
            self._note(state="waiting", last_error=f"connection lost (code {code})")
            log.info("bridge_disconnected", server=url, code=code, retry_in=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return

    async def _serve_connection(
        self, connection: Any, dispatcher: Dispatcher, stop: asyncio.Event
    ) -> int | None:
        await connection.send(
            wire.encode(
                wire.Hello(
                    agent_version=self.settings.agent_version, pieces_url=self.settings.pieces_url
                )
            )
        )
        serving = asyncio.create_task(dispatcher.serve())
        stopping = asyncio.create_task(stop.wait())
        try:
            while not (serving.done() or stopping.done()):
                interval = dispatcher.service_heartbeat or self.settings.heartbeat
                await asyncio.wait(
                    {serving, stopping}, timeout=interval / 10, return_when=asyncio.FIRST_COMPLETED
                )
                if time.monotonic() - dispatcher.last_received > DEAD_AFTER * interval:
                    # The service's heartbeats stopped (no FIN: a dead link). Do not wait for
                    # a closing handshake that cannot happen.
                    log.warning(
                        "bridge_heartbeat_lost", server=self.urls[self._server % len(self.urls)]
                    )
                    self._note(state="waiting", last_error="no heartbeat from the service")
                    connection.transport.abort()
                    break
        finally:
            stopping.cancel()
            if not serving.done():
                serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving
            with contextlib.suppress(Exception):
                await connection.close(1001 if stop.is_set() else 1000)
        code: int | None = connection.close_code
        return code
