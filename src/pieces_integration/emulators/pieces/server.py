"""Run the emulator with uvicorn, in-process (tests) or as a command (demos).

`EmulatorServer` owns the uvicorn server and its tasks. "Refusing connections" really stops
listening — the port is closed, clients get ECONNREFUSED and open streams drop, exactly what a
client sees when Pieces OS quits — and listening resumes on the same port with the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from pieces_integration.emulators.pieces.app import build_app
from pieces_integration.emulators.pieces.faults import FaultConfig, FaultInjector
from pieces_integration.emulators.pieces.state import EmulatorState


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """Signals belong to whoever runs the event loop (pytest, typer), not to the emulator."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmulatorServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        assets: int = 0,
        seed: int = 0,
        faults: FaultConfig | None = None,
        version: str | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.port = port
        self.state = EmulatorState(version=version) if version else EmulatorState()
        if assets:
            self.state.seed_library(assets, seed)
        self.faults = FaultInjector(faults, seed=seed)
        self.app = build_app(self.state, self.faults, refuse=self._schedule_refusal)
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._refusal: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        self._socket = _bind(self.host, self.port)
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level=self._log_level,
            access_log=self._log_level in ("info", "debug"),
            ws="websockets-sansio",
            ws_ping_interval=None,
            timeout_graceful_shutdown=1,
        )
        server = _Server(config)
        self._server = server
        self._serve_task = asyncio.create_task(server.serve(sockets=[self._socket]))
        while not server.started:
            if self._serve_task.done():
                await self._serve_task  # raises the start-up error
                raise RuntimeError("emulator exited during start-up")
            await asyncio.sleep(0.01)

    async def stop_listening(self) -> None:
        server, task, sock = self._server, self._serve_task, self._socket
        self._server = self._serve_task = self._socket = None
        if server is None or task is None:
            return
        server.should_exit = True
        await task
        if sock is not None:
            sock.close()

    async def stop(self) -> None:
        if self._refusal is not None:
            self._refusal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refusal
            self._refusal = None
        await self.stop_listening()

    async def refuse_connections(self, seconds: float) -> None:
        """Close the port for `seconds`, then listen again on the same port."""
        await self.stop_listening()
        await asyncio.sleep(seconds)
        await self.start()

    def _schedule_refusal(self, seconds: float) -> None:
        if self._refusal is not None and not self._refusal.done():
            return
        self._refusal = asyncio.get_running_loop().create_task(self._refuse_later(seconds))

    async def _refuse_later(self, seconds: float) -> None:
        await asyncio.sleep(0.05)  # let the control request's answer leave first
        await self.refuse_connections(seconds)

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()  # until cancelled (Ctrl-C)
        finally:
            await self.stop()


@dataclass(slots=True)
class EmulatorHandle:
    """What tests get: the URL, the server (state, faults, listening) and a control client."""

    server: EmulatorServer

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    def set_faults(self, **changes: Any) -> None:
        self.server.faults.apply(changes)

    def clear_faults(self) -> None:
        self.server.faults.clear()

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            response = await client.request(method, f"/_emulator{path}", json=payload)
            response.raise_for_status()
            return response.json()


@contextlib.asynccontextmanager
async def running_emulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    assets: int = 0,
    seed: int = 0,
    faults: FaultConfig | None = None,
    version: str | None = None,
) -> AsyncIterator[EmulatorHandle]:
    """Start an emulator on `port` (0 = any free port) for the duration of the block."""
    server = EmulatorServer(
        host=host, port=port, assets=assets, seed=seed, faults=faults, version=version
    )
    await server.start()
    try:
        yield EmulatorHandle(server)
    finally:
        await server.stop()
